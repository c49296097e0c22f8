// The real cohort-runner against an in-test double of the manager: registration and its refusal,
// heartbeats at the interval, an assignment with code (logs, progress, exit), stop, drain and
// shutdown, a manager that goes away and comes back (with and without its memory), and SIGKILL
// of the runner. Every wait is bounded; runners and job processes are killed even on failure.
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <sstream>
#include <thread>

#include "metadata_server.hpp"
#include "runner_fake_manager.hpp"
#include "subprocess.hpp"
#include "test_support.hpp"

namespace cohort::testing {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

// The ids `runc list -q` prints for this test's runner's root.
std::string runc_list(const fs::path& root) {
  auto r = run_captured({.argv = {"runc", "--root", root.string(), "list", "-q"}}, 10s);
  return r.ok() ? r->out : std::string("runc list failed");
}

// Waits (bounded) until runc's list of `root` is empty (`empty`) or not; true when it got there.
bool wait_runc_list(const fs::path& root, bool empty) {
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  while ((runc_list(root) == "") != empty && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(20ms);
  return (runc_list(root) == "") == empty;
}

class RunnerIntegrationTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("runner-it-" + std::to_string(getpid()) + "-" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    std::ofstream(dir_ / "join-token") << "join-secret\n";
    ASSERT_TRUE(manager_.start());
  }

  void TearDown() override {
    runner_.reset();  // SIGKILL: its keepers kill the jobs
    // A runner killed while a container started leaves that container's `runc init` waiting for a
    // start that never comes (the next runner on this work directory would delete it): delete
    // them here, as no runner follows.
    const fs::path root = dir_ / "work" / "runc";
    if (fs::exists(root)) {
      auto listed = run_captured({.argv = {"runc", "--root", root.string(), "list", "-q"}}, 10s);
      std::istringstream ids(listed.ok() ? listed->out : "");
      for (std::string id; std::getline(ids, id);) {
        if (!id.empty()) (void)run_captured({.argv = {"runc", "--root", root.string(), "delete", "--force", id}}, 10s);
      }
    }
    for (const auto& job : jobs_) {
      auto left = wait_for_no_processes_of_job(job, 5s);
      for (pid_t pid : left)
        ::kill(pid, SIGKILL);
      EXPECT_TRUE(left.empty()) << left.size() << " process(es) of " << job << " outlived the test";
    }
    manager_.stop();
    if (HasFailure()) std::cerr << "runner log:\n" << slurp(dir_ / "runner.log");
    if (!HasFailure() && std::getenv("COHORT_KEEP_TEST_DIRS") == nullptr) fs::remove_all(dir_);
  }

  void start_runner(const std::string& node = "node-1", const std::vector<std::string>& more = {}) {
    SpawnOptions o{.argv = {bin("cohort-runner"), "--manager", manager_.address(), "--cluster", "cpu", "--node-name",
                            node, "--join-token-file", (dir_ / "join-token").string(), "--work-dir",
                            (dir_ / "work").string(), "--log-level", "debug"},
                   .env = {{"COHORT_TIME_SCALE", "0.2"}}};  // retry 200 ms, grace 1 s, log flush 100 ms
    o.argv.insert(o.argv.end(), more.begin(), more.end());
    o.stderr_file = (dir_ / "runner.log").string();
    o.stdout_file = o.stderr_file;
    auto r = Subprocess::spawn(o);
    ASSERT_TRUE(r.ok()) << r.status().to_string();
    runner_ = std::make_unique<Subprocess>(std::move(r).value());
  }

  // An assignment of a fresh job id (its processes are swept at the end).
  v1::Assignment assign(const std::string& command) {
    v1::Assignment a;
    a.set_job(unique_job_id("runner-it"));
    a.set_attempt(1);
    a.set_num_nodes(1);
    a.add_node_addresses("127.0.0.1");
    a.set_command(command);
    jobs_.push_back(a.job());
    return a;
  }
  // A runner, and `a` (sleep 300) running in a container that runc lists: the runc root; empty
  // when this runner runs plain processes (not root, or no runc), or (a failure) never ran it.
  fs::path runner_with_a_container(const v1::Assignment& a) {
    start_runner();
    give(a);
    const fs::path root = dir_ / "work" / "runc";
    if (!reported_as(a.job(), "running")) {
      ADD_FAILURE() << "job " << a.job() << " was never reported running";
      return {};
    }
    if (!fs::exists(root)) return {};
    // "running" is reported once `runc run` has started; runc records the container a moment later.
    EXPECT_TRUE(wait_runc_list(root, false)) << "runc never listed the container in " << root;
    return root;
  }

  void give(const v1::Assignment& a) {
    std::lock_guard lock(m().mu);
    m().assigned.push_back(a);
  }
  bool reported_as(const std::string& job, const std::string& state, std::chrono::milliseconds timeout = 15s) {
    return m().wait(
        [&] {
          auto s = m().last_status(job);
          return s && s->state() == state;
        },
        timeout);
  }
  v1::TaskStatus last(const std::string& job) {
    std::lock_guard lock(m().mu);
    return m().last_status(job).value_or(v1::TaskStatus());
  }
  std::size_t heartbeat_count() {
    std::lock_guard lock(m().mu);
    return m().heartbeats.size();
  }
  std::string logs_of(const std::string& job) {
    std::lock_guard lock(m().mu);
    return m().logs[job];
  }
  std::optional<ExitStatus> runner_exit(std::chrono::milliseconds timeout) {
    auto r = runner_->wait_for(timeout);
    return r.ok() ? *r : std::nullopt;
  }
  FakeManagerState& m() { return manager_.state; }

  fs::path dir_;
  FakeManager manager_;
  std::unique_ptr<Subprocess> runner_;
  std::vector<std::string> jobs_;
};

TEST_F(RunnerIntegrationTest, AWrongJoinTokenEndsTheRunnerWithAMessage) {
  std::ofstream(dir_ / "join-token") << "forged\n";
  start_runner();
  auto end = runner_exit(20s);
  ASSERT_TRUE(end.has_value()) << "the runner kept going with a refused token";
  EXPECT_EQ(end->code, 2);
  const std::string log = slurp(dir_ / "runner.log");
  EXPECT_NE(log.find("refused to register node 'node-1' of cluster cpu"), std::string::npos) << log;
  EXPECT_NE(log.find("join token"), std::string::npos) << log;
}

TEST_F(RunnerIntegrationTest, RegistersAndHeartbeatsAtTheInterval) {
  start_runner();
  ASSERT_TRUE(m().wait([&] { return m().heartbeats.size() >= 2; }, 20s));
  {
    std::lock_guard lock(m().mu);
    const auto& r = m().registrations.at(0);
    EXPECT_EQ(r.cluster(), "cpu");
    EXPECT_EQ(r.node_name(), "node-1");
    EXPECT_FALSE(r.hostname().empty());
    EXPECT_FALSE(r.address().empty());
    EXPECT_GT(r.cores(), 0);
    EXPECT_GT(r.memory_bytes(), 0);
  }
  const std::size_t before = heartbeat_count();
  std::this_thread::sleep_for(2s);  // 20 intervals of 100 ms
  const std::size_t n = heartbeat_count() - before;
  EXPECT_GE(n, 10u) << "heartbeats should come every ~100 ms";
  EXPECT_LE(n, 25u);
  std::lock_guard lock(m().mu);
  const auto& hb = m().heartbeats.back().second;
  EXPECT_EQ(hb.node_name(), "node-1");
  EXPECT_GT(hb.usage().memory_total_bytes(), 0);
  EXPECT_GT(hb.sequence(), m().heartbeats.front().second.sequence());
}

TEST_F(RunnerIntegrationTest, RunsAnAssignmentWithCodeAndReportsItsLogsAndExit) {
  const fs::path src = dir_ / "src";
  fs::create_directories(src);
  std::ofstream(src / "run.sh") << "echo \"rank $COHORT_NODE_RANK of $COHORT_NUM_NODES on $COHORT_NODE_NAME\"\n"
                                   "echo 5 > \"$COHORT_PROGRESS_FILE\"\n"
                                   "echo oops >&2\n"
                                   "sleep 0.3\n"
                                   "exit 3\n";
  auto tar = run_captured({.argv = {"tar", "-czf", (dir_ / "code.tgz").string(), "-C", src.string(), "."}}, 30s);
  ASSERT_TRUE(tar.ok() && tar->status.success());
  {
    std::lock_guard lock(m().mu);
    m().code_tar_gz = slurp(dir_ / "code.tgz");
    m().code_delay = 1500ms;
  }
  start_runner();
  ASSERT_TRUE(m().wait([&] { return !m().heartbeats.empty(); }, 20s));
  v1::Assignment a = assign("sh run.sh");
  a.set_has_code(true);
  give(a);
  ASSERT_TRUE(reported_as(a.job(), "starting"));
  ASSERT_TRUE(reported_as(a.job(), "exited", 20s));
  const v1::TaskStatus s = last(a.job());
  EXPECT_EQ(s.exit_code(), 3);
  EXPECT_EQ(s.cause(), "exited with code 3");
  EXPECT_EQ(s.last_step(), 5);
  EXPECT_EQ(logs_of(a.job()), "rank 0 of 1 on node-1\noops\n") << "the whole log, once, before the exit";
  // The download took 1.5 s; heartbeats went on every ~100 ms meanwhile.
  std::lock_guard lock(m().mu);
  EXPECT_EQ(m().code_downloads, 1);
  Clock::duration longest{};
  for (std::size_t i = 1; i < m().heartbeats.size(); ++i)
    longest = std::max(longest, m().heartbeats[i].first - m().heartbeats[i - 1].first);
  EXPECT_LT(longest, 1000ms) << "a heartbeat waited for slow work";
}

TEST_F(RunnerIntegrationTest, ForgottenAttemptsAreNotReportedOrRunAgain) {
  start_runner();
  v1::Assignment a = assign("echo once");
  give(a);
  ASSERT_TRUE(reported_as(a.job(), "exited"));
  // The double forgets exited tasks and keeps offering the assignment: the runner must do neither.
  const std::size_t at = heartbeat_count();
  ASSERT_TRUE(m().wait([&] { return m().heartbeats.size() >= at + 5; }, 10s));
  std::lock_guard lock(m().mu);
  EXPECT_EQ(m().heartbeats.back().second.tasks_size(), 0);
  EXPECT_EQ(m().logs[a.job()], "once\n");
}

// Each wake (a task's exit, its last log lines, the doorbell) sends a heartbeat at once; a burst
// of them must not push the next regular one away: a node silent for heartbeat_timeout is lost.
TEST_F(RunnerIntegrationTest, ABurstOfWakesKeepsTheHeartbeatCadence) {
  start_runner();
  ASSERT_TRUE(m().wait([&] { return m().heartbeats.size() >= 2; }, 20s));
  std::vector<std::string> jobs;
  for (int i = 0; i < 12; ++i) {
    v1::Assignment a = assign("true");
    jobs.push_back(a.job());
    give(a);
  }
  for (const auto& job : jobs)
    ASSERT_TRUE(reported_as(job, "exited")) << job;
  const auto from = FakeManagerState::Clock::now();
  std::this_thread::sleep_for(1500ms);
  std::lock_guard lock(m().mu);
  std::chrono::milliseconds widest{0};
  auto previous = from;
  for (const auto& [when, hb] : m().heartbeats) {
    if (when < from) continue;
    widest = std::max(widest, std::chrono::duration_cast<std::chrono::milliseconds>(when - previous));
    previous = when;
  }
  widest = std::max(widest, std::chrono::duration_cast<std::chrono::milliseconds>(from + 1500ms - previous));
  EXPECT_LE(widest.count(), 400) << "heartbeats every 100 ms, yet none for " << widest.count() << " ms";
}

// The cloud's metadata endpoint (Azure Scheduled Events) is polled: a failing endpoint is
// reported and retried; a Preempt event for this node reaches the job (notice file, signal) at
// once and the manager with the next heartbeat.
TEST_F(RunnerIntegrationTest, APreemptEventFromTheCloudReachesTheJobAndTheManager) {
  MetadataServer cloud;
  ASSERT_TRUE(cloud.start());
  cloud.respond(500, "maintenance");
  start_runner("node-1", {"--scheduled-events-url", cloud.url()});  // polled every 200 ms (time scale 0.2)
  ASSERT_TRUE(m().wait([&] { return !m().heartbeats.empty(); }, 20s));
  v1::Assignment a = assign("trap 'cat \"$COHORT_NOTICE_FILE\"; exit 75' USR1; echo up; while :; do sleep 0.1; done");
  a.set_notice_signal("SIGUSR1");
  give(a);
  ASSERT_TRUE(reported_as(a.job(), "running"));
  const auto polled = [&](std::size_t n) {
    const auto until = Clock::now() + 10s;
    while (cloud.requests().size() < n && Clock::now() < until)
      std::this_thread::sleep_for(50ms);
    return cloud.requests().size() >= n;
  };
  ASSERT_TRUE(polled(3)) << "the endpoint is not polled";
  cloud.respond(200, R"({"DocumentIncarnation": 1, "Events": []})");
  const std::size_t before = cloud.requests().size();
  ASSERT_TRUE(polled(before + 2));
  EXPECT_EQ(last(a.job()).state(), "running") << "no event, no notice";

  const std::int64_t deadline_s =
      std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count() +
      30;
  const std::time_t t = static_cast<std::time_t>(deadline_s);
  std::tm utc{};
  gmtime_r(&t, &utc);
  char date[64];
  std::strftime(date, sizeof date, "%a, %d %b %Y %H:%M:%S GMT", &utc);
  cloud.respond(200, std::string(R"({"DocumentIncarnation": 2, "Events": [)") +
                         R"({"EventId": "E-other", "EventType": "Preempt", "Resources": ["node-9"], "NotBefore": ")" +
                         date + R"("},)" +
                         R"({"EventId": "E-1", "EventType": "Preempt", "ResourceType": "VirtualMachine", )" +
                         R"("Resources": ["node-1"], "EventStatus": "Scheduled", "NotBefore": ")" + date + R"("}]})");
  ASSERT_TRUE(reported_as(a.job(), "exited", 10s)) << "the job did not hear of the notice";
  EXPECT_EQ(last(a.job()).exit_code(), 75);
  EXPECT_NE(last(a.job()).notice_ms(), 0);
  ASSERT_TRUE(m().wait([&] { return m().logs[a.job()].find("deadline_unix_ms") != std::string::npos; }, 5s));
  EXPECT_NE(logs_of(a.job()).find("\"deadline_unix_ms\": " + std::to_string(deadline_s * 1000)), std::string::npos)
      << logs_of(a.job());
  ASSERT_TRUE(m().wait(
      [&] {
        return !m().heartbeats.empty() && m().heartbeats.back().second.preempt_deadline_ms() == deadline_s * 1000;
      },
      5s))
      << "the heartbeat does not carry the cloud's deadline";
  const std::string log = slurp(dir_ / "runner.log");
  EXPECT_NE(log.find("Polling the scheduled events failed (retrying until it works)"), std::string::npos) << log;
  EXPECT_NE(log.find("HTTP 500"), std::string::npos) << log;
  EXPECT_NE(log.find("preemption notice from the cloud (event E-1)"), std::string::npos) << log;
  for (const auto& r : cloud.requests())
    EXPECT_NE(r.find("\r\nMetadata: true\r\n"), std::string::npos) << r;
}

TEST_F(RunnerIntegrationTest, StopEndsTheTask) {
  start_runner();
  v1::Assignment a = assign("sleep 300");
  give(a);
  ASSERT_TRUE(reported_as(a.job(), "running"));
  {
    std::lock_guard lock(m().mu);
    v1::StopTask stop;
    stop.set_job(a.job());
    stop.set_attempt(1);
    stop.set_reason("the job was canceled");
    m().stops.push_back(stop);
  }
  ASSERT_TRUE(reported_as(a.job(), "exited", 10s));
  EXPECT_EQ(last(a.job()).signal(), SIGTERM);
  EXPECT_EQ(last(a.job()).cause(), "stopped by the manager: the job was canceled: killed by signal 15 (SIGTERM)");
  EXPECT_TRUE(processes_of_job(a.job()).empty());
}

// The stop comes in the reply to the heartbeat that first says "running", which may be before the
// container's init has started. The job may die of that SIGTERM before its trap is set, or run its
// trap; what must not happen is runc itself broken by it (its `runc init` killed midway).
TEST_F(RunnerIntegrationTest, AStopAsSoonAsTheTaskRunsReachesTheJob) {
  {
    std::lock_guard lock(m().mu);
    m().interval_ms = 10;  // the first "running" reaches the manager while runc is still starting
  }
  start_runner();
  for (int round = 0; round < 10; ++round) {
    v1::Assignment a = assign("trap 'echo bye; exit 0' TERM; while :; do sleep 0.05; done");
    {
      std::lock_guard lock(m().mu);
      v1::StopTask stop;
      stop.set_job(a.job());
      stop.set_attempt(1);
      stop.set_reason("the job was canceled");
      m().stops_once_running[a.job()] = stop;
    }
    give(a);
    ASSERT_TRUE(reported_as(a.job(), "exited", 15s)) << "round " << round;
    const v1::TaskStatus end = last(a.job());
    const bool trapped = end.exit_code() == 0 && end.signal() == 0;
    EXPECT_TRUE(trapped || end.signal() == SIGTERM) << "round " << round << ": " << end.cause();
    EXPECT_TRUE(end.cause().starts_with("stopped by the manager: the job was canceled: "))
        << "round " << round << ": " << end.cause();
    if (trapped) {
      EXPECT_TRUE(m().wait([&] { return m().logs[a.job()].find("bye\n") != std::string::npos; }, 5s))
          << logs_of(a.job());
    }
    EXPECT_EQ(logs_of(a.job()).find("runc run failed"), std::string::npos) << logs_of(a.job());
    if (HasFailure()) std::cerr << "the job's log:\n" << logs_of(a.job());
    EXPECT_TRUE(processes_of_job(a.job()).empty());
    if (HasFailure()) return;
  }
}

TEST_F(RunnerIntegrationTest, AManagerRestartDoesNotEndTheTask) {
  start_runner();
  v1::Assignment a = assign("i=0; while :; do echo line $i; i=$((i+1)); sleep 0.05; done");
  give(a);
  ASSERT_TRUE(reported_as(a.job(), "running"));
  ASSERT_TRUE(m().wait([&] { return m().logs[a.job()].size() > 20; }, 10s));

  const int port = manager_.port();
  manager_.stop();  // away for 2 s, memory kept
  std::this_thread::sleep_for(2s);
  EXPECT_FALSE(processes_of_job(a.job()).empty()) << "the job died with the manager away";
  const std::size_t before = heartbeat_count();
  ASSERT_TRUE(manager_.start(port));
  ASSERT_TRUE(m().wait([&] { return m().heartbeats.size() >= before + 3; }, 10s)) << "no heartbeats after the restart";
  EXPECT_EQ(last(a.job()).state(), "running");

  manager_.stop();  // and back without its memory: the runner registers again with its task
  manager_.forget_nodes();
  std::size_t registrations = 0;
  {
    std::lock_guard lock(m().mu);
    registrations = m().registrations.size();
  }
  std::this_thread::sleep_for(500ms);
  ASSERT_TRUE(manager_.start(port));
  ASSERT_TRUE(m().wait([&] { return m().registrations.size() > registrations; }, 10s));
  {
    std::lock_guard lock(m().mu);
    const auto& again = m().registrations.back();
    ASSERT_EQ(again.tasks_size(), 1);
    EXPECT_EQ(again.tasks(0).job(), a.job());
    EXPECT_EQ(again.tasks(0).state(), "running");
  }
  const std::size_t after = heartbeat_count();
  ASSERT_TRUE(m().wait([&] { return m().heartbeats.size() >= after + 3; }, 10s));
  EXPECT_EQ(last(a.job()).state(), "running");
  EXPECT_FALSE(processes_of_job(a.job()).empty());

  // Every line the job wrote through both outages arrived once, in order.
  std::this_thread::sleep_for(500ms);
  std::istringstream lines(logs_of(a.job()));
  std::string line;
  int expected = 0;
  while (std::getline(lines, line)) {
    if (lines.eof()) break;  // a last line still being written
    ASSERT_EQ(line, "line " + std::to_string(expected)) << "a log line was lost or sent twice";
    ++expected;
  }
  EXPECT_GT(expected, 40);
}

TEST_F(RunnerIntegrationTest, AFileOutputIsAFileAndADirectoryOutputADirectory) {
  start_runner();
  v1::Assignment a = assign("echo scored > /outputs/score && echo model > /outputs/model/weights");
  auto* file = a.add_mounts();
  file->set_source((dir_ / "results" / "score.txt").string());
  file->set_destination("/outputs/score");
  file->set_file(true);
  auto* folder = a.add_mounts();
  folder->set_source((dir_ / "results" / "model").string());
  folder->set_destination("/outputs/model");
  give(a);
  ASSERT_TRUE(reported_as(a.job(), "exited", 20s));
  if (!fs::exists(dir_ / "work" / "runc")) GTEST_SKIP() << "plain processes here: no /outputs paths";
  EXPECT_EQ(last(a.job()).exit_code(), 0) << logs_of(a.job());
  EXPECT_TRUE(fs::is_regular_file(dir_ / "results" / "score.txt"));
  EXPECT_EQ(slurp(dir_ / "results" / "score.txt"), "scored\n");
  EXPECT_EQ(slurp(dir_ / "results" / "model" / "weights"), "model\n");
}

TEST_F(RunnerIntegrationTest, SigkillOfTheRunnerKillsItsJobs) {
  start_runner();
  v1::Assignment a = assign("sleep 300 & sleep 300 & wait");
  give(a);
  ASSERT_TRUE(reported_as(a.job(), "running"));
  ASSERT_TRUE(wait_for_processes_named(a.job(), "sleep", 2, 10s));
  ASSERT_EQ(::kill(runner_->pid(), SIGKILL), 0);
  ASSERT_TRUE(runner_exit(5s).has_value());
  auto left = wait_for_no_processes_of_job(a.job(), 5s);
  EXPECT_TRUE(left.empty()) << left.size() << " job process(es) outlived their runner";
}

// A runner's direct children: its jobs' keepers (spawned from any of its threads).
std::vector<pid_t> children_of(pid_t pid) {
  std::vector<pid_t> out;
  std::error_code ec;
  for (const auto& task : fs::directory_iterator("/proc/" + std::to_string(pid) + "/task", ec)) {
    std::ifstream in(task.path() / "children");
    for (pid_t child; in >> child;)
      out.push_back(child);
  }
  return out;
}

TEST_F(RunnerIntegrationTest, AKilledRunnersKeeperDeletesItsContainer) {
  const v1::Assignment a = assign("sleep 300");
  const fs::path root = runner_with_a_container(a);
  if (root.empty()) GTEST_SKIP() << "this runner runs plain processes (not root, or no runc)";
  ASSERT_NE(runc_list(root), "");
  ASSERT_EQ(::kill(runner_->pid(), SIGKILL), 0);
  ASSERT_TRUE(runner_exit(5s).has_value());
  // No runner comes back: the keeper's `runc delete --force` alone must leave nothing.
  EXPECT_TRUE(wait_runc_list(root, true)) << "containers left in " << root << ": " << runc_list(root);
  auto left = wait_for_no_processes_of_job(a.job(), 5s);
  EXPECT_TRUE(left.empty()) << left.size() << " job process(es) outlived their runner";
}

TEST_F(RunnerIntegrationTest, ContainersLeftByAKilledRunnerAreRemovedAtTheNextStartWhateverItsName) {
  const v1::Assignment a = assign("sleep 300");
  const fs::path root = runner_with_a_container(a);
  if (root.empty()) GTEST_SKIP() << "this runner runs plain processes (not root, or no runc)";
  ASSERT_NE(runc_list(root), "");
  // The runner and its keepers at once (a whole machine's processes killed), so that no keeper
  // deletes the container: stopped first, the runner cannot react to its keepers' deaths.
  ASSERT_EQ(::kill(runner_->pid(), SIGSTOP), 0);
  for (pid_t keeper : children_of(runner_->pid()))
    ::kill(keeper, SIGKILL);
  ASSERT_EQ(::kill(runner_->pid(), SIGKILL), 0);
  ASSERT_TRUE(runner_exit(5s).has_value());
  ASSERT_NE(runc_list(root), "") << "the container went with its keeper: nothing left for the next runner to remove";
  {
    // Not handed out again: the next runner would start it anew, and its container is no leftover.
    std::lock_guard lock(m().mu);
    m().assigned.clear();
  }
  // The next runner on this work directory may be named otherwise (a static node named by the
  // manager): every container of its runc root is a leftover.
  start_runner("node-renamed");
  EXPECT_TRUE(wait_runc_list(root, true)) << "containers left in " << root << ": " << runc_list(root);
}

TEST_F(RunnerIntegrationTest, SigtermStopsTheTasksAndSendsALastHeartbeat) {
  start_runner();
  v1::Assignment a = assign("trap 'echo bye; exit 0' TERM; while :; do sleep 0.05; done");
  give(a);
  ASSERT_TRUE(reported_as(a.job(), "running"));
  ASSERT_EQ(::kill(runner_->pid(), SIGTERM), 0);
  auto end = runner_exit(15s);
  ASSERT_TRUE(end.has_value()) << "the runner did not exit after SIGTERM";
  EXPECT_EQ(end->code, 0);
  EXPECT_EQ(last(a.job()).state(), "exited") << "the last heartbeat reports the exit";
  // sh may say "Terminated" of its sleep around it.
  EXPECT_NE(logs_of(a.job()).find("bye\n"), std::string::npos) << logs_of(a.job());
  EXPECT_TRUE(processes_of_job(a.job()).empty());
}

TEST_F(RunnerIntegrationTest, DrainTakesNothingNewAndShutdownEndsTheRunner) {
  {
    std::lock_guard lock(m().mu);
    m().drain = true;
  }
  start_runner();
  v1::Assignment a = assign("echo should not run");
  give(a);
  ASSERT_TRUE(m().wait([&] { return m().heartbeats.size() >= 5; }, 20s));
  EXPECT_TRUE(last(a.job()).job().empty()) << "a draining node started a job";
  {
    std::lock_guard lock(m().mu);
    m().shutdown = true;
  }
  auto end = runner_exit(15s);
  ASSERT_TRUE(end.has_value()) << "shutdown did not end the runner";
  EXPECT_EQ(end->code, 0);
}

}  // namespace
}  // namespace cohort::testing
