// The cluster end to end with real processes: `cohort up` starts a real manager, the local
// provider starts real runners, jobs run as real processes, and the faults are real (kill -9 of
// the manager, of a runner). Every wait is bounded; `cohort down` and a sweep of this test's
// processes run even when an assertion fails.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <thread>

#include "cluster_fixture.hpp"
#include "cohort/v1/cohort.grpc.pb.h"
#include "rpc.hpp"
#include "test_support.hpp"
#include "tls.hpp"

namespace cohort::testing {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono;
using json = nlohmann::json;

class ClusterTest : public ClusterFixture {};

TEST_F(ClusterTest, TwoNodeJobScalesUpRunsOnBothAndScalesBackToZero) {
  create_cluster(0, 3, 5);
  EXPECT_EQ(live_nodes(), 0);
  const auto spec = write_job("hello", 2, "echo \"node $COHORT_NODE_RANK of $COHORT_NUM_NODES\"\n");
  Captured r = cohort({"job", "submit", spec.string(), "--wait"}, seconds(120));
  ASSERT_TRUE(r.status.success()) << r.out << r.err;
  const std::string id = r.out.substr(0, r.out.find('\n'));
  json job = cohort_json({"job", "show", id});
  EXPECT_EQ(job["state"], "succeeded");
  ASSERT_EQ(job["attempts"].size(), 1u);
  EXPECT_EQ(job["attempts"][0]["nodes"].size(), 2u);
  EXPECT_EQ(job["attempts"][0]["end_reason"], "succeeded");
  Captured logs = cohort({"job", "logs", id});
  EXPECT_NE(logs.out.find("node 0 of 2"), std::string::npos) << logs.out;
  EXPECT_NE(logs.out.find("node 1 of 2"), std::string::npos) << logs.out;
  // Back to zero after 5 idle seconds (plus a heartbeat and a tick).
  EXPECT_TRUE(wait_until([&] { return live_nodes() == 0; }, seconds(20))) << nodes().dump();
  const std::string events = cohort({"cluster", "show", "cpu"}).out;
  EXPECT_NE(events.find("scale_up"), std::string::npos) << events;
  EXPECT_NE(events.find("scale_down"), std::string::npos) << events;
}

// As root, the local provider gives each node a network and UTS namespace of its own: its
// hostname is the node's name, its address is on 10.233.0.0/24, and the nodes reach each other
// over a bridge in a namespace of its own. `cohort down` leaves none of these namespaces behind.
TEST_F(ClusterTest, LocalNodesHaveTheirOwnHostnameAndAddressAndReachEachOther) {
  if (!is_root()) GTEST_SKIP() << "local nodes get namespaces only as root: here they are plain processes";
  const auto before = network_namespaces();
  create_cluster(0, 2, 60);
  // Rank 0 listens on its address, rank 1 connects to it: a TCP connection across the bridge.
  const std::string script = R"(hostname
ip -4 -o addr show eth0
/usr/bin/python3 - <<'PY'
import os, socket, sys, time
addrs = os.environ["COHORT_NODE_ADDRESSES"].split(",")
rank = int(os.environ["COHORT_NODE_RANK"])
print("host=" + socket.gethostname() + " address=" + addrs[rank], flush=True)
if rank == 0:
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((addrs[0], 29555))
    s.listen()
    s.settimeout(30)
    c, peer = s.accept()
    print("accepted from " + peer[0], flush=True)
    sys.exit(0 if c.recv(2) == b"hi" else 1)
deadline = time.time() + 30
while True:
    try:
        c = socket.create_connection((addrs[0], 29555), timeout=5)
        break
    except OSError:
        if time.time() > deadline:
            raise
        time.sleep(0.1)
c.sendall(b"hi")
print("connected to " + addrs[0], flush=True)
PY
)";
  const auto spec = write_job("isolated", 2, script);
  Captured r = cohort({"job", "submit", spec.string(), "--wait"}, seconds(120));
  ASSERT_TRUE(r.status.success()) << r.out << r.err;
  const std::string id = r.out.substr(0, r.out.find('\n'));
  EXPECT_EQ(job_state(id), "succeeded");
  const std::string logs = cohort({"job", "logs", id}).out;

  // Each node: its name as hostname, an address of its own, a namespace of its own.
  std::set<std::string> addresses;
  std::set<ino_t> namespaces;
  const auto net_ns = [](pid_t pid) {
    struct stat st {};
    return ::stat(("/proc/" + std::to_string(pid) + "/ns/net").c_str(), &st) == 0 ? st.st_ino : ino_t{0};
  };
  const json listed = nodes();
  ASSERT_EQ(listed.size(), 2u) << listed.dump();
  for (const auto& n : listed) {
    const std::string name = n["name"];
    const std::string address = read_word(dir_ / "nodes" / name / "address");
    EXPECT_EQ(address.rfind("10.233.0.", 0), 0u) << name << ": " << address;
    addresses.insert(address);
    EXPECT_NE(logs.find("host=" + name + " address=" + address), std::string::npos) << logs;
    EXPECT_NE(logs.find("inet " + address + "/24"), std::string::npos) << logs;
    const ino_t ns = net_ns(std::stoi(read_word(dir_ / "nodes" / name / "runner.pid")));
    EXPECT_NE(ns, 0u);
    EXPECT_EQ(before.count(ns), 0u) << name << " runs in a namespace that existed before";
    namespaces.insert(ns);
  }
  EXPECT_EQ(addresses.size(), 2u);
  EXPECT_EQ(namespaces.size(), 2u);
  EXPECT_NE(logs.find("accepted from "), std::string::npos) << logs;
  EXPECT_NE(logs.find("connected to "), std::string::npos) << logs;
  const ino_t bridge = net_ns(std::stoi(read_word(dir_ / "nodes" / "bridge.pid")));
  EXPECT_NE(bridge, 0u);
  EXPECT_EQ(before.count(bridge), 0u) << "the bridge lives in a namespace of its own";
  namespaces.insert(bridge);

  auto down = run_captured({.argv = {bin("cohort"), "down", "--state-dir", dir_.string()}}, seconds(30));
  ASSERT_TRUE(down.ok() && down->status.success()) << (down.ok() ? down->err : down.status().to_string());
  const auto after = network_namespaces();
  for (ino_t ns : namespaces)
    EXPECT_EQ(after.count(ns), 0u) << "network namespace " << ns << " outlived `cohort down`";
  // Other programs on this machine may make namespaces of their own meanwhile: only report.
  for (ino_t ns : after)
    if (before.count(ns) == 0) std::cerr << "note: network namespace " << ns << " appeared during the test\n";
}

TEST_F(ClusterTest, ManagerKilledMidJobRestartsAndTheJobStillSucceeds) {
  create_cluster(0, 1, 60);
  const auto spec = write_job("survivor", 1, "echo started; sleep 6; echo finished\n");
  Captured r = cohort({"job", "submit", spec.string()});
  ASSERT_TRUE(r.status.success()) << r.err;
  const std::string id = r.out.substr(0, r.out.find('\n'));
  ASSERT_TRUE(wait_until([&] { return job_state(id) == "running"; }, seconds(40))) << job_state(id);
  const pid_t manager = std::stoi(read_word(dir_ / "manager.pid"));
  ASSERT_EQ(::kill(manager, SIGKILL), 0);
  ASSERT_TRUE(wait_until([&] { return ::kill(manager, 0) != 0; }, seconds(10))) << "the manager is gone";
  up();  // the same state directory: a restart, not a fresh start
  ASSERT_TRUE(wait_until([&] { return job_state(id) == "succeeded"; }, seconds(60))) << cohort({"job", "show", id}).out;
  json job = cohort_json({"job", "show", id});
  EXPECT_EQ(job["attempts"].size(), 1u) << "the running job was neither killed nor restarted";
  EXPECT_NE(cohort({"job", "logs", id}).out.find("finished"), std::string::npos);
}

TEST_F(ClusterTest, AKilledRunnerIsLostWithinTheHeartbeatTimeout) {
  create_cluster(1, 1, 60);
  ASSERT_TRUE(wait_until(
      [&] {
        auto n = nodes();
        return n.size() == 1 && n[0].value("state", "") == "idle";
      },
      seconds(30)));
  const std::string node = nodes()[0]["name"];
  const pid_t runner = std::stoi(read_word(dir_ / "nodes" / node / "runner.pid"));
  const auto killed = steady_clock::now();
  ASSERT_EQ(::kill(runner, SIGKILL), 0);
  ASSERT_EQ(wait_for_node_state(node, "lost", seconds(15)), "lost");
  const double took = duration<double>(steady_clock::now() - killed).count();
  // heartbeat_timeout (5 s) + one interval (1 s), and the CLI's own poll.
  EXPECT_LE(took, 6.5) << "lost after " << took << " s";
  // min_nodes 1: the autoscaler replaces it.
  EXPECT_TRUE(wait_until([&] { return live_nodes() == 1; }, seconds(30)));
}

// At its deadline a preempted node goes at once, as the cloud takes it: a job that ignores the
// notice and SIGTERM does not get the stop grace (5 s) on top, and the node's disk goes with it.
TEST_F(ClusterTest, APreemptedNodeGoesAtItsDeadlineWhateverItsJobDoes) {
  if (::geteuid() != 0) GTEST_SKIP() << "nodes are network namespaces only as root";
  create_cluster(0, 1, 60, "lowpriority");
  const fs::path spec = write_job("stubborn", 1, "trap '' TERM USR1\necho up\nwhile :; do sleep 1; done\n");
  {
    // The job's first process itself ignores SIGTERM (exec: no shell above it to end).
    std::ifstream in(spec);
    std::string yaml((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    yaml.replace(yaml.find("command: sh work.sh"), 19, "command: exec sh work.sh");
    std::ofstream(spec) << yaml << "preemption: {signal: none}\n";
  }
  const std::string id = submit_job(spec);
  ASSERT_FALSE(id.empty());
  const json job = wait_for_running(
      id,
      [&](const json&) {
        return cohort({"job", "logs", id}).out.find("up") != std::string::npos;
      },
      seconds(60));
  ASSERT_EQ(job.value("state", ""), "running");
  const std::string node = job["attempts"][0]["nodes"][0];
  // Held: the node made after this one's removal would get its namespace's number.
  auto held = NetNamespaceRef::of_process(std::stoi(read_word(dir_ / "nodes" / node / "runner.pid")));
  ASSERT_TRUE(held.ok()) << held.status().to_string();
  const ino_t ns = held->inode();
  const auto noticed = steady_clock::now();
  Captured p = cohort({"node", "preempt", node, "--notice-seconds", "2"});
  ASSERT_TRUE(p.status.success()) << p.err;
  std::vector<pid_t> left;
  ASSERT_TRUE(wait_until([&] { return (left = processes_in_net_namespace(ns)).empty(); }, seconds(20)))
      << "still in the preempted node's namespace: " << describe_processes(left);
  const double took = duration<double>(steady_clock::now() - noticed).count();
  // The 2 s notice, a scheduler tick and the kill; a graceful stop would add its 5 s grace.
  EXPECT_LE(took, 4.0) << "the node's processes went " << took << " s after a 2 s notice";
  EXPECT_GE(took, 1.5) << "the node went before its deadline";
  EXPECT_EQ(wait_for_node_state(node, "preempted", seconds(10)), "preempted");
  EXPECT_TRUE(wait_until([&] { return !fs::exists(dir_ / "nodes" / node / "work"); }, seconds(10)))
      << "the preempted node's work directory (its disk) is still there";
  EXPECT_TRUE(cohort({"job", "cancel", id}).status.success());
}

TEST_F(ClusterTest, NoFalseLostWhileEveryCoreIsSaturated) {
  create_cluster(1, 1, 60);
  ASSERT_TRUE(wait_until([&] { return live_nodes() == 1; }, seconds(30)));
  // Twice as many spinning processes as cores, for longer than heartbeat_timeout.
  std::vector<Subprocess> spinners;
  const unsigned cores = std::max(1u, std::thread::hardware_concurrency());
  for (unsigned i = 0; i < 2 * cores; ++i) {
    auto s = Subprocess::spawn({.argv = {"/bin/sh", "-c", "while :; do :; done"}});
    ASSERT_TRUE(s.ok()) << s.status().to_string();
    spinners.push_back(std::move(s).value());
  }
  std::this_thread::sleep_for(seconds(8));
  for (auto& s : spinners)
    s.terminate(milliseconds(500));
  for (const auto& n : nodes())
    EXPECT_NE(n.value("state", ""), "lost") << n.dump();
  EXPECT_EQ(cohort({"cluster", "show", "cpu"}).out.find("node_lost"), std::string::npos);
}

// The exec provider runs the cluster's own scripts, as Slurm's ResumeProgram does: here they
// start and stop a runner that dials the manager's TCP address with the join token they are given.
TEST_F(ClusterTest, ExecProviderScriptsCreateAndDeleteNodes) {
  const fs::path nodes_dir = dir_ / "exec-nodes";
  fs::create_directories(nodes_dir);
  const std::string create = "mkdir -p " + nodes_dir.string() + "/$COHORT_NODE_NAME && " + bin("cohort-runner") +
                             " --manager $COHORT_MANAGER --cluster $COHORT_CLUSTER --node-name $COHORT_NODE_NAME" +
                             " --work-dir " + nodes_dir.string() + "/$COHORT_NODE_NAME >" + nodes_dir.string() +
                             "/$COHORT_NODE_NAME/log 2>&1 & echo $! >" + nodes_dir.string() + "/$COHORT_NODE_NAME.pid";
  const std::string remove = "kill $(cat " + nodes_dir.string() + "/$COHORT_NODE_NAME.pid)";
  Captured r = cohort({"cluster", "create", "cpu", "--vm-size", "Standard_D4s_v3", "--min-nodes", "0", "--max-nodes",
                       "2", "--idle-seconds-before-scaledown", "3", "--provider", "exec", "--exec-create", create,
                       "--exec-delete", remove});
  ASSERT_TRUE(r.status.success()) << r.out << r.err;
  const auto spec = write_job("exec", 1, "echo ran on $COHORT_NODE_NAME\n");
  r = cohort({"job", "submit", spec.string(), "--wait"}, seconds(120));
  ASSERT_TRUE(r.status.success()) << r.out << r.err;
  const std::string node = nodes()[0]["name"];
  EXPECT_TRUE(wait_until([&] { return live_nodes() == 0; }, seconds(20))) << nodes().dump();
  const pid_t runner = std::stoi(read_word(nodes_dir / (node + ".pid")));
  EXPECT_TRUE(wait_until([&] { return ::kill(runner, 0) != 0; }, seconds(15))) << "the delete script ran";
}

TEST_F(ClusterTest, BadSpecIsRefusedWithItsFieldPath) {
  create_cluster(0, 2, 60);
  const fs::path bad = dir_ / "bad.yaml";
  std::ofstream(bad) << "command: x\ncompute: cpu\nresources:\n  instance_count: two\n";
  Captured r = cohort({"job", "submit", bad.string()});
  EXPECT_FALSE(r.status.success());
  EXPECT_NE(r.err.find("resources.instance_count"), std::string::npos) << r.err;
  std::ofstream(bad) << "command: x\ncompute: cpu\nresources:\n  instance_count: 5\n";
  r = cohort({"job", "submit", bad.string()});
  EXPECT_FALSE(r.status.success());
  EXPECT_NE(r.err.find("max_nodes 2"), std::string::npos) << r.err;
}

TEST_F(ClusterTest, UnauthenticatedAndCrossNodeCallsAreRefused) {
  Captured r = cohort({"cluster", "list", "--token", "forged"});
  EXPECT_FALSE(r.status.success());
  EXPECT_NE(r.err.find("admin token"), std::string::npos) << r.err;

  auto channel = grpc::CreateChannel(address_, grpc::InsecureChannelCredentials());
  auto clusters = v1::ClusterService::NewStub(channel);
  auto runners = v1::RunnerService::NewStub(channel);
  {
    grpc::ClientContext ctx;
    rpc::prepare(ctx, token_, seconds(10));
    v1::CreateClusterRequest rq;
    rq.mutable_spec()->set_name("static");
    rq.mutable_spec()->set_vm_size("local");
    rq.mutable_spec()->set_max_nodes(2);
    rq.mutable_spec()->set_provider("static");
    v1::Cluster out;
    ASSERT_TRUE(clusters->CreateCluster(&ctx, rq, &out).ok());
  }
  auto do_register = [&](const std::string& token) {
    grpc::ClientContext ctx;
    rpc::prepare(ctx, token, seconds(10));
    v1::RegisterRequest rq;
    rq.set_cluster("static");
    v1::RegisterResponse out;
    grpc::Status s = runners->Register(&ctx, rq, &out);
    return std::make_pair(s, out);
  };
  EXPECT_EQ(do_register("forged").first.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  const std::string join = read_word(dir_ / "join-token");
  auto [sa, a] = do_register(join);
  auto [sb, b] = do_register(join);
  ASSERT_TRUE(sa.ok() && sb.ok());
  grpc::ClientContext ctx;
  rpc::prepare(ctx, a.credential(), seconds(10));
  v1::HeartbeatRequest hb;
  hb.set_node_name(b.node_name());
  v1::HeartbeatResponse out;
  EXPECT_EQ(runners->Heartbeat(&ctx, hb, &out).error_code(), grpc::StatusCode::PERMISSION_DENIED)
      << "node A's credential must not act for node B";
  grpc::ClientContext code_ctx;
  rpc::prepare(code_ctx, a.credential(), seconds(10));
  v1::GetCodeRequest code;
  code.set_node_name(a.node_name());
  code.set_job("someone-elses-job-1");
  auto reader = runners->GetCode(&code_ctx, code);
  v1::CodeChunk chunk;
  while (reader->Read(&chunk)) {
  }
  EXPECT_EQ(reader->Finish().error_code(), grpc::StatusCode::PERMISSION_DENIED);
  std::ifstream log(dir_ / "manager.log");
  std::string text((std::istreambuf_iterator<char>(log)), std::istreambuf_iterator<char>());
  EXPECT_NE(text.find("refused"), std::string::npos) << "refusals are logged";
}

class TlsClusterTest : public ClusterFixture {
 protected:
  std::vector<std::string> up_flags() const override { return {"--tls"}; }

  Captured cluster_list_trusting(const std::string& ca) {
    auto r = run_captured({.argv = {bin("cohort"), "cluster", "list"},
                           .env = {{"COHORT_MANAGER", address_}, {"COHORT_TOKEN", token_}, {"COHORT_CA", ca}}},
                          seconds(30));
    EXPECT_TRUE(r.ok()) << r.status().to_string();
    return r.ok() ? *r : Captured{};
  }
};

TEST_F(TlsClusterTest, TheManagerAnswersOnlyClientsThatTrustItsCertificate) {
  ASSERT_FALSE(ca_.empty()) << "`cohort up --tls` wrote no COHORT_CA into " << (dir_ / "env");
  const Captured trusted = cluster_list_trusting(ca_);
  EXPECT_TRUE(trusted.status.success()) << trusted.err;

  const Captured plaintext = cluster_list_trusting("");
  EXPECT_FALSE(plaintext.status.success()) << "a plaintext client got an answer: " << plaintext.out;

  ASSERT_TRUE(
      rpc::generate_self_signed(dir_ / "other.pem", dir_ / "other.key", "cohort-manager", {"localhost"}, {"127.0.0.1"})
          .ok());
  const Captured stranger = cluster_list_trusting((dir_ / "other.pem").string());
  EXPECT_FALSE(stranger.status.success()) << "a client trusting another certificate got an answer: " << stranger.out;
}

}  // namespace
}  // namespace cohort::testing
