// What one node's attempt starts with: the first process per distribution, the environment the
// job sees, its mounts, and ${{inputs.X}} substitution, in a container and as plain processes.
#include <gtest/gtest.h>

#include <algorithm>

#include "launch_plan.hpp"

namespace cohort::runner {
namespace {

v1::Assignment assignment(const std::string& distribution, int node_rank, int nodes, int ppn) {
  v1::Assignment a;
  a.set_job("j1");
  a.set_attempt(2);
  a.set_node_rank(node_rank);
  a.set_num_nodes(nodes);
  a.set_processes_per_node(ppn);
  a.set_distribution(distribution);
  a.set_command("python3 train.py --data ${{inputs.digits}} --out ${{outputs.model}}");
  a.set_secret("s3cret");
  for (int i = 0; i < nodes; ++i) {
    a.add_node_addresses("10.77.0." + std::to_string(i + 2));
    a.add_peer_endpoints("10.77.0." + std::to_string(i + 2) + ":4100" + std::to_string(i));
  }
  auto* in = a.add_mounts();
  in->set_source("/data/digits");
  in->set_destination("/inputs/digits");
  in->set_read_only(true);
  auto* out = a.add_mounts();
  out->set_source("/results/model");
  out->set_destination("/outputs/model");
  auto* ckpt = a.add_mounts();
  ckpt->set_source("/ckpt/j1");
  ckpt->set_destination("/checkpoints");
  return a;
}

NodeFacts node(bool container) {
  NodeFacts n;
  n.node_name = "node-1";
  n.attempt_dir = "/var/lib/cohort/jobs/j1/2";
  n.bin_dir = "/opt/cohort/bin";
  n.container = container;
  n.as_root = true;
  n.stop_grace_ms = 1500;
  return n;
}

// The value of NAME in "NAME=value" entries; "<unset>" when absent. Fails the test on a duplicate.
std::string value(const std::vector<std::string>& env, const std::string& name) {
  std::string found = "<unset>";
  int seen = 0;
  for (const auto& entry : env) {
    if (entry.rfind(name + "=", 0) == 0) {
      found = entry.substr(name.size() + 1);
      ++seen;
    }
  }
  EXPECT_LE(seen, 1) << name << " set " << seen << " times";
  return found;
}

bool has(const std::vector<std::string>& argv, const std::string& word) {
  return std::find(argv.begin(), argv.end(), word) != argv.end();
}

// The words after "--" of init: what init runs.
std::vector<std::string> program(const std::vector<std::string>& argv) {
  auto dash = std::find(argv.begin(), argv.end(), "--");
  return dash == argv.end() ? std::vector<std::string>{} : std::vector<std::string>(dash + 1, argv.end());
}

TEST(LaunchPlanTest, PytorchRanksGetTheRendezvousVariablesAndContainerPaths) {
  auto plan = plan_launch(assignment("pytorch", 1, 2, 2), node(true), {"PATH=/usr/bin", "HOME=/root"});
  ASSERT_TRUE(plan.ok()) << plan.status().to_string();
  const auto& p = plan.value();
  EXPECT_EQ(value(p.env, "MASTER_ADDR"), "10.77.0.2");
  EXPECT_EQ(value(p.env, "MASTER_PORT"), "29500");
  EXPECT_EQ(value(p.env, "WORLD_SIZE"), "4");
  EXPECT_EQ(value(p.env, "LOCAL_WORLD_SIZE"), "2");
  EXPECT_EQ(value(p.env, "NODE_RANK"), "1");
  EXPECT_EQ(value(p.env, "COHORT_NODE_RANK"), "1");
  EXPECT_EQ(value(p.env, "COHORT_NUM_NODES"), "2");
  EXPECT_EQ(value(p.env, "COHORT_JOB_ID"), "j1");
  EXPECT_EQ(value(p.env, "COHORT_ATTEMPT"), "2");
  EXPECT_EQ(value(p.env, "COHORT_NODE_NAME"), "node-1");
  EXPECT_EQ(value(p.env, "COHORT_NODE_ADDRESSES"), "10.77.0.2,10.77.0.3");
  EXPECT_EQ(value(p.env, "COHORT_RUN_DIR"), "/.cohort/run");
  EXPECT_EQ(value(p.env, "COHORT_PROGRESS_FILE"), "/.cohort/run/progress");
  EXPECT_EQ(value(p.env, "COHORT_CHECKPOINT_DIR"), "/checkpoints");
  EXPECT_EQ(value(p.env, "COHORT_INPUT_DIGITS"), "/inputs/digits");
  EXPECT_EQ(value(p.env, "COHORT_OUTPUT_MODEL"), "/outputs/model");
  EXPECT_EQ(value(p.env, "PATH"), "/usr/bin");
  EXPECT_EQ(value(p.env, "COHORT_BRIDGE_SOCKET"), "<unset>");
  // RANK and LOCAL_RANK differ per rank: init sets them.
  EXPECT_EQ(value(p.env, "RANK"), "<unset>");

  EXPECT_EQ(p.argv.front(), "/.cohort/bin/cohort-exec");
  EXPECT_EQ(p.argv[1], "init");
  EXPECT_TRUE(has(p.argv, "/.cohort/run/ready"));
  EXPECT_TRUE(has(p.argv, "1500"));
  EXPECT_TRUE(has(p.argv, "--merge-output"));
  auto ranks = std::find(p.argv.begin(), p.argv.end(), "--ranks");
  ASSERT_NE(ranks, p.argv.end());
  EXPECT_EQ(*(ranks + 1), "2");
  EXPECT_EQ(program(p.argv),
            (std::vector<std::string>{"/bin/sh", "-c", "python3 train.py --data /inputs/digits --out /outputs/model"}));
  EXPECT_EQ(p.cwd, "/code");
  EXPECT_TRUE(p.go_file.empty());
  EXPECT_TRUE(p.exec_socket.empty());
  EXPECT_EQ(p.run_dir, "/var/lib/cohort/jobs/j1/2/run");
}

TEST(LaunchPlanTest, ContainerMountsCodeRunBinAndTheSpecsData) {
  auto plan = plan_launch(assignment("pytorch", 0, 1, 1), node(true), {});
  ASSERT_TRUE(plan.ok()) << plan.status().to_string();
  const auto& mounts = plan.value().mounts;
  auto find = [&](const std::string& destination) -> const ContainerMount* {
    for (const auto& m : mounts)
      if (m.destination == destination) return &m;
    return nullptr;
  };
  struct Want {
    const char* destination;
    const char* source;
    bool read_only;
  };
  for (const Want& w : {Want{"/code", "/var/lib/cohort/jobs/j1/2/code", true},
                        Want{"/.cohort/run", "/var/lib/cohort/jobs/j1/2/run", false},
                        Want{"/.cohort/bin", "/opt/cohort/bin", true}, Want{"/inputs/digits", "/data/digits", true},
                        Want{"/outputs/model", "/results/model", false}, Want{"/checkpoints", "/ckpt/j1", false}}) {
    const ContainerMount* m = find(w.destination);
    ASSERT_NE(m, nullptr) << "no mount at " << w.destination;
    EXPECT_EQ(m->source, w.source) << w.destination;
    EXPECT_EQ(m->read_only, w.read_only) << w.destination;
  }
  EXPECT_EQ(mounts.size(), 6u);
}

TEST(LaunchPlanTest, PlainProcessesSeeTheNodesOwnPaths) {
  auto plan = plan_launch(assignment("none", 0, 1, 1), node(false), {});
  ASSERT_TRUE(plan.ok()) << plan.status().to_string();
  const auto& p = plan.value();
  EXPECT_TRUE(p.mounts.empty());
  EXPECT_FALSE(has(p.argv, "--merge-output"));  // the keeper already writes both to one file
  EXPECT_EQ(p.cwd, "/var/lib/cohort/jobs/j1/2/code");
  EXPECT_EQ(p.argv.front(), "/opt/cohort/bin/cohort-exec");
  EXPECT_EQ(value(p.env, "COHORT_RUN_DIR"), "/var/lib/cohort/jobs/j1/2/run");
  EXPECT_EQ(value(p.env, "COHORT_CHECKPOINT_DIR"), "/ckpt/j1");
  EXPECT_EQ(value(p.env, "COHORT_INPUT_DIGITS"), "/data/digits");
  EXPECT_EQ(value(p.env, "MASTER_ADDR"), "<unset>");
  // One process, whose output stays the job's own: no rank wrapper.
  EXPECT_TRUE(has(p.argv, "--plain"));
  EXPECT_FALSE(has(p.argv, "--ranks"));
  EXPECT_EQ(program(p.argv).back(), "python3 train.py --data /data/digits --out /results/model");
}

TEST(LaunchPlanTest, MpiHeadRunsMpirunOverEveryNodeThroughTheBridge) {
  auto plan = plan_launch(assignment("mpi", 0, 2, 2), node(true), {});
  ASSERT_TRUE(plan.ok()) << plan.status().to_string();
  const auto& p = plan.value();
  EXPECT_EQ(p.go_file, "/var/lib/cohort/jobs/j1/2/run/go");
  EXPECT_TRUE(has(p.argv, "/.cohort/run/go"));  // --wait-file, as the container sees it
  EXPECT_TRUE(has(p.argv, "--plain"));
  auto run = program(p.argv);
  ASSERT_FALSE(run.empty());
  EXPECT_EQ(run.front(), "mpirun");
  EXPECT_TRUE(has(run, "10.77.0.2:2,10.77.0.3:2"));
  auto np = std::find(run.begin(), run.end(), "-np");
  ASSERT_NE(np, run.end());
  EXPECT_EQ(*(np + 1), "4");
  EXPECT_TRUE(has(run, "/.cohort/bin/cohort-exec bridge"));
  EXPECT_TRUE(has(run, "plm_rsh_agent"));
  EXPECT_TRUE(has(run, "orte_tmpdir_base"));  // the job's user cannot write the node's session dir
  // In a container the job is not root: mpirun must not be told it may run as root.
  EXPECT_FALSE(has(run, "--allow-run-as-root"));
  // Each rank is wrapped so it writes a rank report.
  auto rank = std::find(run.begin(), run.end(), "rank");
  ASSERT_NE(rank, run.end());
  EXPECT_EQ(*(rank - 1), "/.cohort/bin/cohort-exec");
  EXPECT_EQ(value(p.env, "COHORT_BRIDGE_SOCKET"), "/.cohort/run/bridge.sock");
  EXPECT_EQ(p.bridge_socket, "/var/lib/cohort/jobs/j1/2/run/bridge.sock");
  // The attempt's secret stays with the runners: nothing in the job can call a peer itself.
  for (const auto& entry : p.env)
    EXPECT_EQ(entry.find("s3cret"), std::string::npos) << entry;
}

TEST(LaunchPlanTest, MpiWorkerOnlyWaitsForOrtedAndPlainRootMayRunMpi) {
  auto worker = plan_launch(assignment("mpi", 1, 2, 2), node(true), {});
  ASSERT_TRUE(worker.ok()) << worker.status().to_string();
  EXPECT_TRUE(has(worker.value().argv, "--idle"));
  EXPECT_TRUE(has(worker.value().argv, "/.cohort/run/exec.sock"));  // --exec-socket, as the container sees it
  EXPECT_EQ(worker.value().exec_socket, "/var/lib/cohort/jobs/j1/2/run/exec.sock");
  EXPECT_FALSE(has(worker.value().argv, "mpirun"));
  EXPECT_TRUE(worker.value().go_file.empty());

  auto head = plan_launch(assignment("mpi", 0, 2, 1), node(false), {});
  ASSERT_TRUE(head.ok()) << head.status().to_string();
  EXPECT_TRUE(has(head.value().argv, "--allow-run-as-root"));
  EXPECT_TRUE(has(head.value().argv, "/opt/cohort/bin/cohort-exec bridge"));
  EXPECT_FALSE(has(head.value().argv, "orte_tmpdir_base"));
  EXPECT_EQ(value(head.value().env, "OMPI_ALLOW_RUN_AS_ROOT"), "1");
}

TEST(LaunchPlanTest, TheSpecsVariablesWinOverTheBaseAndCohortsOverBoth) {
  auto a = assignment("pytorch", 0, 1, 1);
  (*a.mutable_environment())["PATH"] = "/opt/venv/bin:/usr/bin";
  (*a.mutable_environment())["MASTER_PORT"] = "6000";
  (*a.mutable_environment())["COHORT_JOB_ID"] = "spoofed";
  auto plan = plan_launch(a, node(true), {"PATH=/usr/bin", "LANG=C.UTF-8"});
  ASSERT_TRUE(plan.ok()) << plan.status().to_string();
  EXPECT_EQ(value(plan.value().env, "PATH"), "/opt/venv/bin:/usr/bin");
  EXPECT_EQ(value(plan.value().env, "LANG"), "C.UTF-8");
  EXPECT_EQ(value(plan.value().env, "MASTER_PORT"), "6000");
  EXPECT_EQ(value(plan.value().env, "COHORT_JOB_ID"), "j1");
}

TEST(LaunchPlanTest, OpenMpiAndPmixReadTheNodesTopologyFileMountedReadOnly) {
  NodeFacts n = node(true);
  n.topology_file = "/var/lib/cohort/topology.xml";
  auto plan = plan_launch(assignment("mpi", 0, 2, 2), n, {});
  ASSERT_TRUE(plan.ok()) << plan.status().to_string();
  const auto& p = plan.value();
  auto m = std::find_if(p.mounts.begin(), p.mounts.end(),
                        [](const ContainerMount& x) { return x.destination == "/.cohort/topology.xml"; });
  ASSERT_NE(m, p.mounts.end());
  EXPECT_EQ(m->source, "/var/lib/cohort/topology.xml");
  EXPECT_TRUE(m->read_only);
  EXPECT_EQ(value(p.env, "OMPI_MCA_hwloc_base_topo_file"), "/.cohort/topology.xml");
  EXPECT_EQ(value(p.env, "PMIX_MCA_pmix_hwloc_topo_file"), "/.cohort/topology.xml");

  // Plain processes read it where it is; the base environment's value gives way to the node's.
  auto plain = plan_launch(assignment("mpi", 1, 2, 2),
                           [&] {
                             NodeFacts f = n;
                             f.container = false;
                             return f;
                           }(),
                           {"OMPI_MCA_hwloc_base_topo_file=/stale.xml"});
  ASSERT_TRUE(plain.ok()) << plain.status().to_string();
  EXPECT_TRUE(plain.value().mounts.empty());
  EXPECT_EQ(value(plain.value().env, "OMPI_MCA_hwloc_base_topo_file"), "/var/lib/cohort/topology.xml");
}

TEST(LaunchPlanTest, AJobThatNamesItsOwnTopologyKeepsItAndImagesOrANodeWithoutOneGetNone) {
  NodeFacts n = node(true);
  n.topology_file = "/var/lib/cohort/topology.xml";
  auto a = assignment("mpi", 0, 1, 2);
  (*a.mutable_environment())["OMPI_MCA_hwloc_base_topo_file"] = "/code/my-topology.xml";
  auto plan = plan_launch(a, n, {});
  ASSERT_TRUE(plan.ok()) << plan.status().to_string();
  EXPECT_EQ(value(plan.value().env, "OMPI_MCA_hwloc_base_topo_file"), "/code/my-topology.xml");

  auto image = assignment("mpi", 0, 1, 2);
  image.set_image("oci:/images/openmpi5");  // its own Open MPI and hwloc: they discover their own
  auto imaged = plan_launch(image, n, {});
  ASSERT_TRUE(imaged.ok()) << imaged.status().to_string();
  EXPECT_EQ(value(imaged.value().env, "OMPI_MCA_hwloc_base_topo_file"), "<unset>");
  for (const auto& m : imaged.value().mounts)
    EXPECT_NE(m.destination, "/.cohort/topology.xml");

  auto none = plan_launch(assignment("mpi", 0, 1, 2), node(true), {});
  ASSERT_TRUE(none.ok()) << none.status().to_string();
  EXPECT_EQ(value(none.value().env, "OMPI_MCA_hwloc_base_topo_file"), "<unset>");
  EXPECT_EQ(value(none.value().env, "PMIX_MCA_pmix_hwloc_topo_file"), "<unset>");
  for (const auto& m : none.value().mounts)
    EXPECT_NE(m.destination, "/.cohort/topology.xml");
}

TEST(LaunchPlanTest, ARelativeMountPathIsRefusedNamingTheMount) {
  auto a = assignment("none", 0, 1, 1);
  a.mutable_mounts(0)->set_source("data/digits");
  auto plan = plan_launch(a, node(true), {});
  ASSERT_FALSE(plan.ok());
  EXPECT_EQ(plan.status().code(), Code::kInvalidArgument);
  EXPECT_NE(plan.status().message().find("/inputs/digits"), std::string::npos) << plan.status().message();
  EXPECT_NE(plan.status().message().find("not absolute"), std::string::npos) << plan.status().message();
}

TEST(LaunchPlanTest, SubstitutionReplacesEveryOccurrenceAndLeavesUnknownNames) {
  std::vector<ContainerMount> mounts = {{"/data/a", "/inputs/a", true}, {"/out/b", "/outputs/b", false}};
  EXPECT_EQ(substitute_paths("cp ${{inputs.a}}/x ${{outputs.b}}; ls ${{inputs.a}} ${{inputs.zz}}", mounts, true),
            "cp /inputs/a/x /outputs/b; ls /inputs/a ${{inputs.zz}}");
  EXPECT_EQ(substitute_paths("cat ${{inputs.a}}", mounts, false), "cat /data/a");
}

}  // namespace
}  // namespace cohort::runner
