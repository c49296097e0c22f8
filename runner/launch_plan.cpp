#include "launch_plan.hpp"

#include <map>

#include "topology.hpp"

namespace cohort::runner {

namespace fs = std::filesystem;

namespace {

// Ordered "NAME=value" entries where a later set of a name replaces the earlier value in place.
class EnvBuilder {
 public:
  void set(const std::string& name, const std::string& value) {
    if (name.empty() || name.find('=') != std::string::npos) return;
    if (values_.emplace(name, value).second) {
      order_.push_back(name);
    } else {
      values_[name] = value;
    }
  }
  void set_entry(const std::string& entry) {
    const auto eq = entry.find('=');
    if (eq != std::string::npos) set(entry.substr(0, eq), entry.substr(eq + 1));
  }
  bool has(const std::string& name) const { return values_.contains(name); }
  std::vector<std::string> entries() const {
    std::vector<std::string> out;
    for (const auto& name : order_)
      out.push_back(name + "=" + values_.at(name));
    return out;
  }

 private:
  std::vector<std::string> order_;
  std::map<std::string, std::string> values_;
};

std::string upper(std::string s) {
  for (char& c : s)
    c = static_cast<char>(c >= 'a' && c <= 'z' ? c - 'a' + 'A' : c);
  return s;
}

// The path the job uses for a mount.
std::string job_path(const ContainerMount& m, bool container) {
  return container ? m.destination : m.source.string();
}

std::vector<std::string> mpirun_argv(const v1::Assignment& a, const std::string& bin, const std::string& command,
                                     bool container, bool as_root) {
  const int ppn = std::max(1, a.processes_per_node());
  std::string hosts;
  for (const auto& address : a.node_addresses())
    hosts += (hosts.empty() ? "" : ",") + address + ":" + std::to_string(ppn);
  std::vector<std::string> argv = {"mpirun"};
  if (as_root) argv.push_back("--allow-run-as-root");
  argv.insert(argv.end(),
              {"-np", std::to_string(ppn * a.num_nodes()), "--host", hosts, "--map-by", "slot",
               // Several local test nodes share the machine's cores: never bind.
               "--bind-to", "none", "--oversubscribe",
               // Cohort's bridge asks the node's runner to start orted in the job's
               // container; it is mounted at the same path on every node.
               "--mca", "plm_rsh_agent", bin + "/cohort-exec bridge", "--mca", "plm_rsh_no_tree_spawn", "1"});
  // The session directory must be writable by the job's user: its own /tmp.
  if (container) argv.insert(argv.end(), {"--mca", "orte_tmpdir_base", "/tmp"});
  argv.insert(argv.end(), {bin + "/cohort-exec", "rank", "--", "/bin/sh", "-c", command});
  return argv;
}

}  // namespace

std::string substitute_paths(const std::string& command, const std::vector<ContainerMount>& mounts, bool container) {
  std::string out = command;
  for (const auto& m : mounts) {
    // /inputs/NAME -> ${{inputs.NAME}}
    const auto slash = m.destination.find('/', 1);
    if (slash == std::string::npos) continue;
    const std::string key = "${{" + m.destination.substr(1, slash - 1) + "." + m.destination.substr(slash + 1) + "}}";
    for (auto at = out.find(key); at != std::string::npos; at = out.find(key, at)) {
      const std::string path = job_path(m, container);
      out.replace(at, key.size(), path);
      at += path.size();
    }
  }
  return out;
}

Result<LaunchPlan> plan_launch(const v1::Assignment& a, const NodeFacts& node, const std::vector<std::string>& base) {
  LaunchPlan plan;
  const bool c = node.container;
  const bool host_software = !c || a.image().empty() || a.image() == "host";
  const fs::path topology = host_software ? node.topology_file : fs::path();
  plan.run_dir = node.attempt_dir / "run";
  const std::string run = c ? kContainerRunDir : plan.run_dir.string();
  const std::string bin = c ? kContainerBinDir : node.bin_dir.string();
  plan.cwd = c ? kContainerCodeDir : (node.attempt_dir / "code").string();
  if (c) {
    plan.mounts.push_back({node.attempt_dir / "code", kContainerCodeDir, true});
    plan.mounts.push_back({plan.run_dir, kContainerRunDir, false});
    plan.mounts.push_back({node.bin_dir, kContainerBinDir, true});
    if (!topology.empty()) plan.mounts.push_back({topology, kContainerTopologyFile, true});
  }
  std::vector<ContainerMount> data;
  for (const auto& m : a.mounts()) {
    if (!fs::path(m.source()).is_absolute()) {
      return Status(Code::kInvalidArgument, m.destination() + ": the path \"" + m.source() +
                                                "\" is not absolute, so no node can mount it: give the path as "
                                                "the nodes see it");
    }
    data.push_back({m.source(), m.destination(), m.read_only(), m.file()});
  }
  if (c) plan.mounts.insert(plan.mounts.end(), data.begin(), data.end());

  EnvBuilder env;
  for (const auto& entry : base)
    env.set_entry(entry);
  if (!topology.empty()) {
    for (const auto& entry : topology_environment(c ? kContainerTopologyFile : topology.string()))
      env.set_entry(entry);
  }
  for (const auto& [name, value] : a.environment())
    env.set(name, value);
  std::string addresses;
  for (const auto& address : a.node_addresses())
    addresses += (addresses.empty() ? "" : ",") + address;
  const int ppn = std::max(1, a.processes_per_node());
  env.set("COHORT_JOB_ID", a.job());
  env.set("COHORT_ATTEMPT", std::to_string(a.attempt()));
  env.set("COHORT_NODE_RANK", std::to_string(a.node_rank()));
  env.set("COHORT_NUM_NODES", std::to_string(a.num_nodes()));
  env.set("COHORT_NODE_NAME", node.node_name);
  env.set("COHORT_NODE_ADDRESSES", addresses);
  env.set("COHORT_RUN_DIR", run);
  env.set("COHORT_PROGRESS_FILE", run + "/progress");
  env.set("COHORT_NOTICE_FILE", run + "/notice");
  env.set("COHORT_NOTICE_SIGNAL", a.notice_signal().empty() ? "none" : a.notice_signal());
  for (const auto& m : data) {
    const auto slash = m.destination.find('/', 1);
    if (m.destination == "/checkpoints") {
      env.set("COHORT_CHECKPOINT_DIR", job_path(m, c));
    } else if (slash != std::string::npos) {
      const std::string kind = m.destination.substr(1, slash - 1) == "inputs" ? "INPUT" : "OUTPUT";
      env.set("COHORT_" + kind + "_" + upper(m.destination.substr(slash + 1)), job_path(m, c));
    }
  }
  const std::string command = substitute_paths(a.command(), data, c);
  plan.argv = {bin + "/cohort-exec", "init",       "--ready-file",
               run + "/ready",       "--grace-ms", std::to_string(node.stop_grace_ms)};
  if (c) plan.argv.push_back("--merge-output");  // one log in the order the job wrote it
  if (a.distribution() == "mpi") {
    // Only the head's mpirun uses it; the attempt's secret stays with the runners.
    if (a.node_rank() == 0) env.set("COHORT_BRIDGE_SOCKET", run + "/bridge.sock");
    if (node.as_root && !c) {
      env.set("OMPI_ALLOW_RUN_AS_ROOT", "1");
      env.set("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1");
    }
    if (a.node_rank() == 0) {
      if (a.num_nodes() > 1) {
        plan.bridge_socket = plan.run_dir / "bridge.sock";
        plan.go_file = plan.run_dir / "go";
        plan.argv.insert(plan.argv.end(), {"--wait-file", run + "/go"});
      }
      plan.argv.push_back("--plain");
      plan.argv.push_back("--");
      auto mpirun = mpirun_argv(a, bin, command, c, node.as_root && !c);
      plan.argv.insert(plan.argv.end(), mpirun.begin(), mpirun.end());
    } else {
      // Open MPI's daemon comes through the bridge and this node's runner, to init's socket.
      plan.exec_socket = plan.run_dir / "exec.sock";
      plan.argv.insert(plan.argv.end(), {"--idle", "--exec-socket", run + "/exec.sock"});
    }
  } else {
    if (a.distribution() == "pytorch") {
      env.set("MASTER_ADDR", a.node_addresses_size() > 0 ? a.node_addresses(0) : "127.0.0.1");
      if (!a.environment().contains("MASTER_PORT")) env.set("MASTER_PORT", std::to_string(kDefaultMasterPort));
      env.set("WORLD_SIZE", std::to_string(ppn * a.num_nodes()));
      env.set("LOCAL_WORLD_SIZE", std::to_string(ppn));
    }
    env.set("NODE_RANK", std::to_string(a.node_rank()));
    if (a.distribution() == "pytorch") {
      plan.argv.insert(plan.argv.end(), {"--ranks", std::to_string(ppn)});
    } else {
      plan.argv.push_back("--plain");  // one process whose output is the job's own, unprefixed
    }
    plan.argv.insert(plan.argv.end(), {"--", "/bin/sh", "-c", command});
  }
  plan.env = env.entries();
  return plan;
}

}  // namespace cohort::runner
