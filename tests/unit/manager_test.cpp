// The manager's model stepped by hand: a fake clock, a recording provider, heartbeats as calls.
// No process, no network: the scheduler, the autoscaler and failure detection, deterministically.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <map>

#include "manager/job_plan.hpp"
#include "manager/manager.hpp"

namespace cohort::manager {
namespace {

namespace fs = std::filesystem;

struct FakeProvider final : NodeProvider {
  std::vector<std::string> created, removed;
  std::map<std::string, Removal> how;  // by node
  Status create(const v1::ClusterSpec&, const std::string& node) override {
    created.push_back(node);
    return {};
  }
  Status remove(const v1::ClusterSpec&, const std::string& node, Removal h) override {
    removed.push_back(node);
    how[node] = h;
    return {};
  }
};

class ManagerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("cohort-manager-test-" + std::to_string(::getpid()) + "-" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    std::ofstream(dir_ / "join-token") << "join\n";
    open();
  }
  void TearDown() override {
    manager_.reset();
    fs::remove_all(dir_);
  }

  void open() {
    manager_.reset();
    auto store = Store::open(dir_, true);
    ASSERT_TRUE(store.ok()) << store.status().to_string();
    ManagerOptions o;
    o.state_dir = dir_;
    o.now_ms = [this] { return now_; };
    o.make_provider = [this](const std::string&) -> Result<std::unique_ptr<NodeProvider>> {
      auto p = std::make_unique<FakeProvider>();
      provider_ = p.get();
      return std::unique_ptr<NodeProvider>(std::move(p));
    };
    auto m = Manager::open(std::move(o), std::move(store).value());
    ASSERT_TRUE(m.ok()) << m.status().to_string();
    manager_ = std::move(m).value();
  }

  v1::Cluster cluster(int min, int max, int idle = 5, const std::string& priority = "dedicated") {
    v1::ClusterSpec s;
    s.set_name("cpu");
    s.set_vm_priority(priority);
    s.set_vm_size("local");
    s.set_min_nodes(min);
    s.set_max_nodes(max);
    s.set_idle_seconds_before_scaledown(idle);
    auto c = manager_->create_cluster(s);
    EXPECT_TRUE(c.ok()) << c.status().to_string();
    return c.ok() ? *c : v1::Cluster();
  }

  std::string submit(int nodes, int priority = 0, const std::string& more_yaml = "") {
    v1::SubmitJobRequest r;
    r.set_spec_yaml("name: train\ncommand: ./train\ncompute: cpu\npriority: " + std::to_string(priority) +
                    "\nresources:\n  instance_count: " + std::to_string(nodes) + "\n" + more_yaml);
    auto j = manager_->submit_job(r);
    EXPECT_TRUE(j.ok()) << j.status().to_string();
    return j.ok() ? j->id() : "";
  }

  // Registers every node the provider was asked for.
  void register_created() {
    for (const auto& n : provider_->created) {
      v1::RegisterRequest r;
      r.set_node_name(n);
      r.set_cluster("cpu");
      r.set_hostname(n + "-host");
      r.set_address("10.0.0." + n.substr(n.rfind('-') + 1));
      r.set_peer_endpoint(r.address() + ":4000");
      r.set_peer_certificate("PEM of " + n);
      ASSERT_TRUE(manager_->register_node(r).ok());
    }
  }

  v1::HeartbeatResponse beat(const std::string& node, std::vector<v1::TaskStatus> tasks = {}) {
    v1::HeartbeatRequest r;
    r.set_node_name(node);
    for (auto& t : tasks)
      *r.add_tasks() = t;
    auto out = manager_->heartbeat(node, r);
    EXPECT_TRUE(out.ok()) << out.status().to_string();
    return out.ok() ? *out : v1::HeartbeatResponse();
  }

  static v1::TaskStatus task(const v1::Assignment& a, const std::string& state, int code = 0) {
    v1::TaskStatus t;
    t.set_job(a.job());
    t.set_attempt(a.attempt());
    t.set_state(state);
    t.set_started_ms(1);
    if (state == "exited") {
      t.set_exit_code(code);
      t.set_exited_ms(2);
      t.set_cause(code == 0 ? "" : "exited with code " + std::to_string(code));
    }
    return t;
  }

  v1::Job job(const std::string& id) { return manager_->get_job(id).value(); }

  // A 2-node job running on a cluster of 0..3 nodes of `priority`; its nodes' assignments go to
  // assignments_. Returns its id.
  std::string running_job(const std::string& priority, const std::string& more_yaml = "") {
    cluster(0, 3, 5, priority);
    const std::string id = submit(2, 0, more_yaml);
    manager_->tick();
    register_created();
    manager_->tick();
    const v1::Job j = job(id);
    EXPECT_EQ(j.attempts_size(), 1);
    for (const auto& n : j.attempts(0).nodes()) {
      assignments_[n] = beat(n).start(0);
      beat(n, {task(assignments_[n], "running")});
    }
    return id;
  }
  std::map<std::string, v1::Assignment> assignments_;
  std::string node_state(const std::string& name) {
    for (const auto& n : manager_->list_nodes(""))
      if (n.name() == name) return n.state();
    return "";
  }

  fs::path dir_;
  std::int64_t now_ = 1'000'000;
  std::unique_ptr<Manager> manager_;
  FakeProvider* provider_ = nullptr;
};

TEST(JobPlanTest, DataBecomesMountsWithTheirAccessAndKind) {
  std::string json;
  auto plan = plan_from_yaml(
      "command: x\n"
      "inputs: {digits: {path: /data/digits}, labels: {type: uri_file, path: /data/labels.csv}}\n"
      "outputs: {model: {path: /out/model}, score: {type: uri_file, path: /out/score.txt}}\n"
      "checkpoint: {dir: /ckpt}\n",
      json);
  ASSERT_TRUE(plan.ok()) << plan.status().to_string();
  auto find = [&](const std::string& destination) -> const PlanMount* {
    for (const auto& m : plan->mounts)
      if (m.destination == destination) return &m;
    return nullptr;
  };
  struct Want {
    const char* destination;
    const char* source;
    bool read_only, file;
  };
  for (const Want& w :
       {Want{"/inputs/digits", "/data/digits", true, false}, Want{"/inputs/labels", "/data/labels.csv", true, true},
        Want{"/outputs/model", "/out/model", false, false}, Want{"/outputs/score", "/out/score.txt", false, true},
        Want{"/checkpoints", "/ckpt", false, false}}) {
    const PlanMount* m = find(w.destination);
    ASSERT_NE(m, nullptr) << w.destination;
    EXPECT_EQ(m->source, w.source) << w.destination;
    EXPECT_EQ(m->read_only, w.read_only) << w.destination;
    EXPECT_EQ(m->file, w.file) << w.destination;
  }
  EXPECT_EQ(plan->mounts.size(), 5u);
}

TEST_F(ManagerTest, ClusterValidationNamesTheField) {
  v1::ClusterSpec s;
  s.set_name("Bad Name");
  s.set_vm_size("local");
  s.set_max_nodes(1);
  EXPECT_NE(manager_->create_cluster(s).status().message().find("cluster name"), std::string::npos);
  s.set_name("ok");
  s.set_vm_size("huge");
  EXPECT_NE(manager_->create_cluster(s).status().message().find("unknown vm size \"huge\""), std::string::npos);
  s.set_vm_size("local");
  s.set_min_nodes(3);
  EXPECT_NE(manager_->create_cluster(s).status().message().find("larger than max_nodes"), std::string::npos);
  s.set_min_nodes(0);
  s.set_vm_priority("cheap");
  EXPECT_NE(manager_->create_cluster(s).status().message().find("vm_priority"), std::string::npos);
  s.set_vm_priority("");
  auto c = manager_->create_cluster(s);
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->spec().idle_seconds_before_scaledown(), 120);
  EXPECT_EQ(c->spec().vm_priority(), "dedicated");
  EXPECT_EQ(manager_->create_cluster(s).status().code(), Code::kAlreadyExists);
}

TEST_F(ManagerTest, AJobThatCanNeverFitIsRefusedAtSubmit) {
  cluster(0, 2);
  v1::SubmitJobRequest r;
  r.set_spec_yaml("command: x\ncompute: cpu\nresources:\n  instance_count: 3\n");
  auto j = manager_->submit_job(r);
  ASSERT_FALSE(j.ok());
  EXPECT_NE(j.status().message().find("max_nodes 2"), std::string::npos) << j.status().message();
  r.set_spec_yaml("command: x\ncompute: gpu\n");
  EXPECT_EQ(manager_->submit_job(r).status().code(), Code::kNotFound);
}

TEST_F(ManagerTest, ScalesUpRunsAGangAndScalesBackToZero) {
  cluster(0, 3, 5);
  const std::string id = submit(2);
  manager_->tick();
  ASSERT_EQ(provider_->created.size(), 2u) << "two nodes for a two-node job";
  manager_->tick();
  EXPECT_EQ(provider_->created.size(), 2u) << "provisioning nodes count: no second request";
  EXPECT_EQ(job(id).state(), "queued");
  register_created();
  manager_->tick();
  v1::Job j = job(id);
  ASSERT_EQ(j.state(), "provisioning");
  ASSERT_EQ(j.attempts_size(), 1);
  ASSERT_EQ(j.attempts(0).nodes_size(), 2) << "the whole gang at once";

  std::vector<v1::Assignment> as;
  for (const auto& n : j.attempts(0).nodes()) {
    auto r = beat(n);
    ASSERT_EQ(r.start_size(), 1);
    EXPECT_EQ(r.start(0).num_nodes(), 2);
    EXPECT_EQ(r.start(0).command(), "./train");
    as.push_back(r.start(0));
  }
  EXPECT_EQ(as[0].node_rank(), 0);
  EXPECT_EQ(as[1].node_rank(), 1);
  beat(j.attempts(0).nodes(0), {task(as[0], "running")});
  EXPECT_EQ(job(id).state(), "provisioning");
  EXPECT_EQ(beat(j.attempts(0).nodes(1), {task(as[1], "running")}).start_size(), 0) << "already running";
  EXPECT_EQ(job(id).state(), "running");
  auto early = beat(j.attempts(0).nodes(0), {task(as[0], "exited")});
  EXPECT_EQ(early.forget_size(), 0) << "kept until the attempt ends, so a restarted manager hears it again";
  EXPECT_EQ(early.start_size(), 0) << "an exited task is never started again";
  auto last = beat(j.attempts(0).nodes(1), {task(as[1], "exited")});
  EXPECT_EQ(last.forget_size(), 1);
  EXPECT_EQ(job(id).state(), "succeeded");
  EXPECT_EQ(job(id).attempts(0).end_reason(), "succeeded");

  for (const auto& n : j.attempts(0).nodes())
    beat(n);
  EXPECT_EQ(node_state(j.attempts(0).nodes(0)), "idle");
  now_ += 4000;
  for (const auto& n : j.attempts(0).nodes())
    beat(n);
  manager_->tick();
  EXPECT_TRUE(provider_->removed.empty()) << "idle for 4 s of 5";
  now_ += 1500;
  for (const auto& n : j.attempts(0).nodes())
    beat(n);
  manager_->tick();
  EXPECT_EQ(provider_->removed.size(), 2u) << "scale to zero after the idle time";
  for (const auto& n : provider_->removed)
    EXPECT_EQ(provider_->how[n], Removal::kGraceful) << "an idle node goes with its grace";
  auto c = manager_->get_cluster("cpu", 100).value();
  bool scale_down = false;
  for (const auto& e : c.events())
    scale_down = scale_down || (e.kind() == "scale_down" && e.message().find("idle for") != std::string::npos);
  EXPECT_TRUE(scale_down);
}

TEST_F(ManagerTest, AFailingNodeFailsTheJobAndStopsTheOthers) {
  cluster(2, 2);
  manager_->tick();
  register_created();
  const std::string id = submit(2);
  manager_->tick();
  v1::Job j = job(id);
  ASSERT_EQ(j.attempts_size(), 1);
  const auto a0 = beat(j.attempts(0).nodes(0)).start(0);
  const auto a1 = beat(j.attempts(0).nodes(1)).start(0);
  beat(j.attempts(0).nodes(0), {task(a0, "running")});
  beat(j.attempts(0).nodes(1), {task(a1, "exited", 7)});
  j = job(id);
  EXPECT_EQ(j.state(), "failed");
  EXPECT_EQ(j.attempts(0).end_reason(), "user_error");
  EXPECT_EQ(j.attempts(0).first_failure().exit_code(), 7);
  EXPECT_EQ(j.attempts(0).first_failure().node(), j.attempts(0).nodes(1));
  EXPECT_NE(j.message().find("exited with code 7"), std::string::npos) << j.message();
  auto r = beat(j.attempts(0).nodes(0), {task(a0, "running")});
  ASSERT_EQ(r.stop_size(), 1) << "the surviving node is told to stop";
  EXPECT_EQ(node_state(j.attempts(0).nodes(0)), "busy") << "busy until its processes are gone";
  beat(j.attempts(0).nodes(0), {task(a0, "exited", 143)});
  beat(j.attempts(0).nodes(0));
  EXPECT_EQ(node_state(j.attempts(0).nodes(0)), "idle");
}

TEST_F(ManagerTest, ALostNodeIsDetectedAndTheJobRequeued) {
  cluster(2, 2);
  manager_->tick();
  register_created();
  const std::string id = submit(2);
  manager_->tick();
  v1::Job j = job(id);
  const std::string a = j.attempts(0).nodes(0), b = j.attempts(0).nodes(1);
  beat(a, {task(beat(a).start(0), "running")});
  beat(b, {task(beat(b).start(0), "running")});
  now_ += 4900;
  beat(a);
  manager_->tick();
  EXPECT_EQ(node_state(b), "busy") << "4.9 s without a heartbeat is not lost yet";
  now_ += 200;
  manager_->tick();
  EXPECT_EQ(node_state(b), "lost");
  EXPECT_EQ(provider_->how[b], Removal::kAtOnce) << "a lost node's leftovers must not write on";
  EXPECT_EQ(std::count(provider_->removed.begin(), provider_->removed.end(), b), 1);
  j = job(id);
  EXPECT_EQ(j.attempts(0).end_reason(), "node_lost");
  EXPECT_EQ(j.state(), "queued") << "requeued under the infrastructure budget: " << j.message();
  EXPECT_EQ(manager_->heartbeat(b, {}).value().shutdown(), true) << "a lost node that comes back is sent away";
}

TEST_F(ManagerTest, EveryNodeOfAnAttemptGetsItsPeersEndpointsAndCertificatesInRankOrder) {
  const std::string id = running_job("dedicated");
  const v1::Job j = job(id);
  for (const auto& n : j.attempts(0).nodes()) {
    const v1::Assignment& a = assignments_[n];
    ASSERT_EQ(a.peer_certificates_size(), 2) << n;
    for (int r = 0; r < 2; ++r) {
      const std::string& peer = j.attempts(0).nodes(r);
      EXPECT_EQ(a.peer_certificates(r), "PEM of " + peer) << "assignment of " << n << ", rank " << r;
      EXPECT_EQ(a.peer_endpoints(r), a.node_addresses(r) + ":4000");
    }
  }
}

// kill -9 of a node: mpirun on the head fails first (205, its daemon there is gone), seconds
// before the node is found lost. The failure is not the job's until every node is heard from.
TEST_F(ManagerTest, AFailureWaitsForEveryNodesProofOfLifeBeforeItIsTheJobs) {
  const std::string id = running_job("dedicated");
  v1::Job j = job(id);
  const std::string head = j.attempts(0).nodes(0), dead = j.attempts(0).nodes(1);
  const v1::Assignment h = assignments_[head];
  now_ += 500;
  beat(head, {task(h, "exited", 205)});
  EXPECT_EQ(job(id).state(), "running") << "node " << dead << " has not been heard from since";
  now_ += 4600;
  beat(head, {task(h, "exited", 205)});
  manager_->tick();
  j = job(id);
  EXPECT_EQ(j.attempts(0).end_reason(), "node_lost") << j.attempts(0).message();
  EXPECT_EQ(j.state(), "queued") << "requeued under the infrastructure budget, not failed: " << j.message();
}

TEST_F(ManagerTest, StateSurvivesARestartAndNodesGetAFreshTimeout) {
  cluster(1, 2);
  manager_->tick();
  register_created();
  const std::string id = submit(1);
  manager_->tick();
  const std::string n = job(id).attempts(0).nodes(0);
  const v1::Assignment a = beat(n).start(0);
  beat(n, {task(a, "running")});
  now_ += 60'000;  // the manager was down for a minute
  open();
  EXPECT_EQ(job(id).state(), "running");
  EXPECT_EQ(node_state(n), "busy");
  manager_->tick();
  EXPECT_EQ(node_state(n), "busy") << "no false 'lost' right after a restart";
  EXPECT_EQ(beat(n, {task(a, "running")}).start_size(), 0) << "the runner re-reports; nothing restarts";
  beat(n, {task(a, "exited")});
  EXPECT_EQ(job(id).state(), "succeeded");
}

TEST_F(ManagerTest, PriorityThenFifoAndGangsAreWholeOrNothing) {
  cluster(2, 2);
  manager_->tick();
  register_created();
  const std::string big = submit(2);
  const std::string small = submit(1);
  const std::string urgent = submit(1, 10);
  manager_->tick();
  EXPECT_EQ(job(urgent).attempts_size(), 1) << "highest priority first";
  EXPECT_EQ(job(big).attempts_size(), 0) << "one node left: the 2-node gang waits whole";
  EXPECT_EQ(job(small).attempts_size(), 0) << "strict FIFO: nothing jumps the waiting gang";
}

TEST_F(ManagerTest, CancelAndDeleteRules) {
  cluster(0, 2);
  const std::string id = submit(1);
  EXPECT_EQ(manager_->delete_cluster("cpu", false).code(), Code::kFailedPrecondition);
  EXPECT_EQ(manager_->cancel_job(id).value().state(), "canceled");
  EXPECT_TRUE(manager_->delete_cluster("cpu", false).ok());
  EXPECT_EQ(manager_->get_cluster("cpu", 0).status().code(), Code::kNotFound);
}

TEST_F(ManagerTest, MissingStateIsAnErrorNotAFreshStart) {
  auto s = Store::open(dir_ / "nope", false);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.status().message().find("cohort-manager init"), std::string::npos);
  fs::create_directories(dir_ / "empty");
  EXPECT_EQ(Store::open(dir_ / "empty", false).status().code(), Code::kNotFound);
  std::ofstream(dir_ / "empty" / "state.db") << "this is not a database, it is a text file of some length....";
  auto garbage = Store::open(dir_ / "empty", false);
  EXPECT_FALSE(garbage.ok());
}

}  // namespace
}  // namespace cohort::manager

namespace cohort::manager {
namespace {

// Preemption, requeue by cause, hang detection: the manager's side, by hand.
class PreemptionTest : public ManagerTest {
 protected:
  // A running 2-node job on a lowpriority cluster; returns its id.
  std::string running_job(const std::string& more_yaml = "") {
    return ManagerTest::running_job("lowpriority", more_yaml);
  }
};

TEST_F(PreemptionTest, TheNoticeReachesTheNodeTheAttemptEndsPreemptedAndOnlyThatNodeIsReplaced) {
  const std::string id = running_job();
  v1::Job j = job(id);
  const std::string a = j.attempts(0).nodes(0), b = j.attempts(0).nodes(1);
  ASSERT_EQ(provider_->created.size(), 2u);
  auto n = manager_->preempt_node(b, std::chrono::seconds(30));
  ASSERT_TRUE(n.ok()) << n.status().to_string();
  EXPECT_EQ(beat(b, {task(assignments_[b], "running")}).preempt_deadline_ms(), now_ + 30000);
  EXPECT_EQ(beat(a, {task(assignments_[a], "running")}).preempt_deadline_ms(), 0) << "only that node";
  EXPECT_EQ(job(id).attempts(0).notice_ms(), now_);

  // Rank 0's node says its checkpoint of step 120 is durable; then b's ranks exit 75.
  now_ += 400;
  v1::TaskStatus head = task(assignments_[a], "running");
  head.set_last_step(120);
  head.set_checkpoint_step(120);
  head.set_checkpoint_ms(now_);
  beat(a, {head});
  beat(b, {task(assignments_[b], "exited", 75)});
  j = job(id);
  EXPECT_EQ(j.attempts(0).end_reason(), "preempted") << "exit 75 under a notice is no user error";
  EXPECT_EQ(j.state(), "queued");
  EXPECT_NE(j.message().find("retries used: preemption 1/100"), std::string::npos) << j.message();
  EXPECT_NE(j.attempts(0).message().find("checkpoint of step 120 durable 400 ms after the notice"), std::string::npos)
      << j.attempts(0).message();
  EXPECT_EQ(j.attempts(0).last_step(), 120);

  // The survivor is stopped and freed; the preempted node goes as soon as nothing runs on it,
  // long before its deadline; one node, not two, replaces it.
  EXPECT_EQ(beat(a, {head}).stop_size(), 1);
  beat(a, {task(assignments_[a], "exited", 143)});
  beat(b);
  manager_->tick();
  EXPECT_EQ(node_state(b), "preempted");
  EXPECT_EQ(std::count(provider_->removed.begin(), provider_->removed.end(), b), 1);
  EXPECT_EQ(provider_->how[b], Removal::kGraceful) << "nothing ran there any more: no need to rush";
  EXPECT_EQ(provider_->created.size(), 3u) << "only the preempted node is replaced";
  register_created();
  beat(a);
  manager_->tick();
  j = job(id);
  ASSERT_EQ(j.attempts_size(), 2);
  EXPECT_EQ(j.attempts(1).nodes_size(), 2);
  for (const auto& node : j.attempts(1).nodes())
    EXPECT_NE(node, b);
  EXPECT_EQ(j.attempts(1).start_step(), 0) << "until a node says what it restored";
  const std::string head2 = j.attempts(1).nodes(0);
  v1::TaskStatus restored = task(beat(head2).start(0), "running");
  restored.set_restored_step(120);
  restored.set_restored_ms(now_);
  beat(head2, {restored});
  EXPECT_EQ(job(id).attempts(1).start_step(), 120) << "nothing lost: attempt 1 reached step 120";
}

// The preempted node's exit can end the attempt before rank 0's node reports the checkpoint it
// committed: that late report still completes the attempt's record and its story.
TEST_F(PreemptionTest, ACheckpointReportedAfterTheEndStillCounts) {
  const std::string id = running_job();
  const v1::Job j = job(id);
  const std::string a = j.attempts(0).nodes(0), b = j.attempts(0).nodes(1);
  ASSERT_TRUE(manager_->preempt_node(b, std::chrono::seconds(30)).ok());
  now_ += 100;
  beat(b, {task(assignments_[b], "exited", 75)});
  EXPECT_NE(job(id).attempts(0).message().find("no checkpoint this attempt"), std::string::npos);
  v1::TaskStatus head = task(assignments_[a], "exited", 75);
  head.set_last_step(300);
  head.set_checkpoint_step(300);
  head.set_checkpoint_ms(now_ - 20);
  beat(a, {head});
  const v1::Attempt first = job(id).attempts(0);
  EXPECT_EQ(first.last_step(), 300);
  EXPECT_EQ(first.checkpoint_step(), 300);
  EXPECT_NE(first.message().find("checkpoint of step 300 durable 80 ms after the notice"), std::string::npos)
      << first.message();
}

// A node cut off stops reporting while its ranks still run and checkpoint: the next attempt
// restoring a later step than the manager heard of proves the lost attempt got that far.
TEST_F(PreemptionTest, ARestoredStepLaterThanTheLostAttemptReportedIsItsProgress) {
  const std::string id = running_job();
  const std::string a = job(id).attempts(0).nodes(0), b = job(id).attempts(0).nodes(1);
  v1::TaskStatus head = task(assignments_[a], "running");
  head.set_last_step(100);
  beat(a, {head});
  beat(b, {task(assignments_[b], "running")});
  now_ += 5100;  // a (rank 0) falls silent; b goes on
  beat(b, {task(assignments_[b], "running")});
  manager_->tick();
  ASSERT_EQ(job(id).attempts(0).end_reason(), "node_lost");
  EXPECT_EQ(job(id).attempts(0).last_step(), 100);
  beat(b, {task(assignments_[b], "exited", 143)});
  manager_->tick();
  register_created();
  beat(b);
  manager_->tick();
  const v1::Job j = job(id);
  ASSERT_EQ(j.attempts_size(), 2);
  const std::string head2 = j.attempts(1).nodes(0);
  v1::TaskStatus restored = task(beat(head2).start(0), "running");
  restored.set_restored_step(300);
  restored.set_restored_ms(now_);
  beat(head2, {restored});
  EXPECT_EQ(job(id).attempts(1).start_step(), 300);
  EXPECT_EQ(job(id).attempts(0).last_step(), 300) << "it wrote the checkpoint of step 300";
  EXPECT_EQ(job(id).attempts(0).checkpoint_step(), 300);
}

TEST_F(PreemptionTest, AtTheDeadlineTheNodeGoesWhateverTheJobDid) {
  const std::string id = running_job();
  const std::string b = job(id).attempts(0).nodes(1);
  ASSERT_TRUE(manager_->preempt_node(b, std::chrono::seconds(30)).ok());
  now_ += 29000;
  for (const auto& [node, as] : assignments_)
    beat(node, {task(as, "running")});
  manager_->tick();
  EXPECT_EQ(node_state(b), "busy") << "still within its notice";
  now_ += 1000;
  manager_->tick();
  EXPECT_EQ(node_state(b), "preempted");
  EXPECT_EQ(provider_->how[b], Removal::kAtOnce) << "at the deadline the machine goes, its job's grace or not";
  const v1::Job j = job(id);
  EXPECT_EQ(j.attempts(0).end_reason(), "preempted");
  EXPECT_NE(j.attempts(0).message().find("was preempted before the attempt ended"), std::string::npos)
      << j.attempts(0).message();
  EXPECT_EQ(j.state(), "queued");
  EXPECT_TRUE(beat(b).shutdown());
}

// A node's own cloud (its metadata endpoint) gave the notice: the runner reports it in its
// heartbeat, and the manager treats it as its own, with the first notice standing.
TEST_F(PreemptionTest, ANoticeFromTheNodesCloudCountsAsTheManagersOwn) {
  const std::string id = running_job();
  const std::string a = job(id).attempts(0).nodes(0), b = job(id).attempts(0).nodes(1);
  v1::HeartbeatRequest r;
  r.set_node_name(b);
  *r.add_tasks() = task(assignments_[b], "running");
  r.set_preempt_deadline_ms(now_ + 30000);
  auto out = manager_->heartbeat(b, r);
  ASSERT_TRUE(out.ok()) << out.status().to_string();
  EXPECT_EQ(out->preempt_deadline_ms(), now_ + 30000) << "the notice goes back to the runner as given";
  EXPECT_EQ(job(id).attempts(0).notice_ms(), now_);
  r.set_preempt_deadline_ms(now_ + 90000);
  EXPECT_EQ(manager_->heartbeat(b, r)->preempt_deadline_ms(), now_ + 30000) << "the first notice stands";
  EXPECT_EQ(beat(a, {task(assignments_[a], "running")}).preempt_deadline_ms(), 0);
  for (const auto& n : manager_->list_nodes("cpu")) {
    if (n.name() == b) {
      EXPECT_NE(n.state_reason().find("from the node's cloud"), std::string::npos) << n.state_reason();
    }
  }
  now_ += 29000;
  for (const auto& [node, as] : assignments_)
    beat(node, {task(as, "running")});
  now_ += 1000;
  manager_->tick();
  EXPECT_EQ(node_state(b), "preempted");
  EXPECT_EQ(job(id).attempts(0).end_reason(), "preempted");
}

TEST_F(PreemptionTest, OnlyLiveLowPriorityNodesAreTakenAndAnIdleOneGoesAtOnce) {
  cluster(1, 1, 5, "dedicated");
  manager_->tick();
  register_created();
  const std::string n = provider_->created.at(0);
  auto r = manager_->preempt_node(n, std::chrono::seconds(30));
  EXPECT_EQ(r.status().code(), Code::kFailedPrecondition);
  EXPECT_NE(r.status().message().find("only lowpriority nodes"), std::string::npos) << r.status().message();
  EXPECT_EQ(manager_->preempt_node("nope", std::chrono::seconds(1)).status().code(), Code::kNotFound);
  ASSERT_TRUE(manager_->delete_cluster("cpu", true).ok());

  v1::ClusterSpec s;
  s.set_name("spot");
  s.set_vm_size("local");
  s.set_vm_priority("lowpriority");
  s.set_min_nodes(1);
  s.set_max_nodes(1);
  ASSERT_TRUE(manager_->create_cluster(s).ok());
  manager_->tick();
  const std::string spot = provider_->created.back();
  v1::RegisterRequest reg;
  reg.set_node_name(spot);
  reg.set_cluster("spot");
  ASSERT_TRUE(manager_->register_node(reg).ok());
  ASSERT_TRUE(manager_->preempt_node(spot, std::chrono::seconds(30)).ok());
  EXPECT_EQ(node_state(spot), "preempted") << "nothing runs on it: it goes at once";
  EXPECT_EQ(manager_->preempt_node(spot, std::chrono::seconds(30)).status().code(), Code::kFailedPrecondition);
}

TEST_F(PreemptionTest, TheBudgetOfEachCauseIsItsOwn) {
  const std::string id = running_job("retries: {preemption: 0, user_error: 5}\n");
  const std::string b = job(id).attempts(0).nodes(1);
  ASSERT_TRUE(manager_->preempt_node(b, std::chrono::seconds(30)).ok());
  beat(b, {task(assignments_[b], "exited", 75)});
  const v1::Job j = job(id);
  EXPECT_EQ(j.state(), "failed") << "user_error retries do not pay for a preemption";
  EXPECT_NE(j.message().find("no retries left: preemption 1/0"), std::string::npos) << j.message();
}

TEST_F(PreemptionTest, NoProgressForTheTimeoutIsHungAndRequeuedAsInfrastructure) {
  const std::string id = running_job("limits: {progress_timeout: 60}\n");
  const v1::Job started = job(id);
  const std::string a = started.attempts(0).nodes(0), b = started.attempts(0).nodes(1);
  v1::TaskStatus t = task(assignments_[a], "running");
  t.set_last_step(42);
  t.set_last_progress_ms(now_ + 10000);
  now_ += 10000;
  beat(a, {t});
  now_ += 60000;
  beat(a, {t});
  beat(b, {task(assignments_[b], "running")});
  manager_->tick();
  EXPECT_EQ(job(id).state(), "running") << "60 s since the last progress is not more than the limit";
  now_ += 1000;
  beat(a, {t});
  beat(b, {task(assignments_[b], "running")});
  manager_->tick();
  const v1::Job j = job(id);
  EXPECT_EQ(j.attempts(0).end_reason(), "hung");
  EXPECT_NE(j.attempts(0).message().find("hung (no progress for 61 s at step 42"), std::string::npos)
      << j.attempts(0).message();
  EXPECT_EQ(j.state(), "queued");
  EXPECT_NE(j.message().find("infrastructure 1/3"), std::string::npos) << j.message();
}

}  // namespace
}  // namespace cohort::manager
