// One attempt's lifecycle with real /bin/sh processes: exit code, signal, stop with grace and
// escalation, timeout, progress file, output log, code, and what a finished job leaves behind.
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <thread>

#include "task.hpp"
#include "test_support.hpp"

namespace cohort::runner {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

using testing::slurp;

// A live (non-zombie) process.
bool alive(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string s((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  auto paren = s.rfind(')');
  return paren != std::string::npos && paren + 2 < s.size() && s[paren + 2] != 'Z';
}

template <typename F>
bool eventually(F&& condition, std::chrono::milliseconds timeout = 10s) {
  const auto deadline = Clock::now() + timeout;
  while (Clock::now() < deadline) {
    if (condition()) return true;
    std::this_thread::sleep_for(10ms);
  }
  return condition();
}

class RunnerTaskTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("runner-task-test-" + std::to_string(getpid()) + "-" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override {
    tasks_.clear();  // stops whatever a failed test left running
    fs::remove_all(dir_);
  }

  Task& start(const std::string& command, int timeout_s = 0, CodeFetcher fetch = nullptr,
              const std::string& notice_signal = "") {
    v1::Assignment a;
    a.set_job("job-" + std::to_string(tasks_.size()));
    a.set_attempt(1);
    a.set_num_nodes(2);
    a.add_node_addresses("10.1.0.1");
    a.add_node_addresses("10.1.0.2");
    a.set_command(command);
    a.set_timeout_s(timeout_s);
    a.set_has_code(fetch != nullptr);
    a.set_notice_signal(notice_signal);
    (*a.mutable_environment())["GREETING"] = "hello";
    TaskEnvironment env{dir_, "node-a", runner_environment_for_jobs(), 300ms, std::move(fetch), &spawner_, nullptr};
    env.bin_dir = fs::path(testing::bin("cohort-exec")).parent_path();
    tasks_.push_back(std::make_unique<Task>(a, env));
    tasks_.back()->start();
    return *tasks_.back();
  }

  static v1::TaskStatus finished(Task& t) {
    EXPECT_TRUE(t.wait_exited(20s)) << "the task did not end";
    return t.status();
  }

  // Waits until the job's log holds `text` (the job got that far).
  static bool log_has(const Task& t, const std::string& text) {
    return eventually([&] { return slurp(t.log_path()).find(text) != std::string::npos; });
  }

  fs::path dir_;
  Spawner spawner_;
  std::vector<std::unique_ptr<Task>> tasks_;
};

TEST_F(RunnerTaskTest, ReportsTheExitCodeAndKeepsTheOutput) {
  Task& t = start("echo out; echo err >&2; exit 3");
  v1::TaskStatus s = finished(t);
  EXPECT_EQ(s.state(), "exited");
  EXPECT_EQ(s.exit_code(), 3);
  EXPECT_EQ(s.signal(), 0);
  EXPECT_EQ(s.cause(), "exited with code 3");
  EXPECT_GT(s.started_ms(), 0);
  EXPECT_GE(s.exited_ms(), s.started_ms());
  EXPECT_EQ(slurp(t.log_path()), "out\nerr\n");
  EXPECT_EQ(t.log_path(), dir_ / "jobs" / "job-0" / "1" / "output.log");
}

TEST_F(RunnerTaskTest, ReportsTheSignalThatKilledIt) {
  v1::TaskStatus s = finished(start("kill -9 $$"));
  EXPECT_EQ(s.signal(), SIGKILL);
  EXPECT_EQ(s.cause(), "killed by signal 9 (SIGKILL)");
}

TEST_F(RunnerTaskTest, GivesTheJobItsEnvironmentAndDirectory) {
  Task& t = start(
      "echo \"$COHORT_JOB_ID $COHORT_ATTEMPT $COHORT_NODE_RANK $COHORT_NUM_NODES $COHORT_NODE_NAME\"; "
      "echo \"$COHORT_NODE_ADDRESSES $GREETING\"; echo \"$COHORT_PROGRESS_FILE\"; pwd");
  EXPECT_EQ(finished(t).exit_code(), 0);
  EXPECT_EQ(slurp(t.log_path()), "job-0 1 0 2 node-a\n10.1.0.1,10.1.0.2 hello\n" + t.progress_path().string() + "\n" +
                                     fs::canonical(t.dir() / "code").string() + "\n");
}

TEST_F(RunnerTaskTest, StopSendsSigtermToTheWholeGroup) {
  Task& t = start("sleep 30 & echo $! > bg.pid; echo started; wait");
  ASSERT_TRUE(log_has(t, "started"));
  EXPECT_EQ(t.status().state(), "running");
  t.stop("stopped by the test");
  v1::TaskStatus s = finished(t);
  EXPECT_EQ(s.signal(), SIGTERM);
  EXPECT_EQ(s.cause(), "stopped by the test: killed by signal 15 (SIGTERM)");
  const pid_t bg = std::stoi(slurp(t.dir() / "code" / "bg.pid"));
  EXPECT_TRUE(eventually([bg] { return !alive(bg); }, 5s)) << "the job's child " << bg << " survived the stop";
}

TEST_F(RunnerTaskTest, StopEscalatesToSigkillAfterTheGrace) {
  Task& t = start("trap '' TERM; echo ready; while :; do sleep 0.05; done");
  ASSERT_TRUE(log_has(t, "ready"));
  const auto asked = Clock::now();
  t.stop("stopped by the test");
  v1::TaskStatus s = finished(t);
  EXPECT_GE(Clock::now() - asked, 300ms);
  EXPECT_EQ(s.signal(), SIGKILL);
  EXPECT_EQ(s.cause(), "stopped by the test: killed by signal 9 (SIGKILL)");
}

TEST_F(RunnerTaskTest, TimesOut) {
  const auto begin = Clock::now();
  v1::TaskStatus s = finished(start("sleep 30", /*timeout_s=*/1));
  EXPECT_GE(Clock::now() - begin, 1s);
  EXPECT_EQ(s.signal(), SIGTERM);
  EXPECT_EQ(s.cause(), "timed out after 1 s");
}

TEST_F(RunnerTaskTest, AJobThatExitsZeroOnSigtermStillTimedOut) {
  Task& t = start("trap 'exit 0' TERM; echo ready; while :; do sleep 0.05; done", /*timeout_s=*/1);
  v1::TaskStatus s = finished(t);
  // init was told to stop: it ends by SIGTERM whatever its program then did.
  EXPECT_EQ(s.signal(), SIGTERM) << s.exit_code();
  EXPECT_EQ(s.cause(), "timed out after 1 s");
}

TEST_F(RunnerTaskTest, ReportsTheStepOfTheProgressFile) {
  Task& t = start("echo 7 > \"$COHORT_PROGRESS_FILE\"; sleep 0.3; echo 42 > \"$COHORT_PROGRESS_FILE\"; sleep 0.3");
  ASSERT_TRUE(eventually([&] { return t.status().last_step() == 7; }));
  v1::TaskStatus s = finished(t);
  EXPECT_EQ(s.last_step(), 42);
  EXPECT_GT(s.last_progress_ms(), 0);
  EXPECT_LE(s.last_progress_ms(), s.exited_ms());
}

// A preemption notice: the notice file first, then the signal; the job's checkpoint and restore
// notes come back in its status.
TEST_F(RunnerTaskTest, ANoticeGivesTheJobItsFileAndSignal) {
  Task& t = start(
      "echo 3 > \"$COHORT_RUN_DIR/restored\"\n"
      "trap 'cat \"$COHORT_NOTICE_FILE\"; echo; echo 9 > \"$COHORT_RUN_DIR/checkpoint\"; exit 75' USR1\n"
      "echo \"ready $COHORT_NOTICE_SIGNAL\"; while :; do sleep 0.05; done",
      0, nullptr, "SIGUSR1");
  ASSERT_TRUE(log_has(t, "ready SIGUSR1"));
  const std::int64_t deadline = 1796102570550;
  t.notify_preemption(deadline);
  const v1::TaskStatus s = finished(t);
  EXPECT_EQ(s.exit_code(), 75) << s.cause() << "\n" << slurp(t.log_path());
  EXPECT_GT(s.notice_ms(), 0);
  EXPECT_EQ(s.checkpoint_step(), 9);
  EXPECT_GT(s.checkpoint_ms(), 0);
  EXPECT_EQ(s.restored_step(), 3);
  const std::string log = slurp(t.log_path());
  EXPECT_NE(log.find("\"deadline_unix_ms\": 1796102570550"), std::string::npos) << "the job read the file:\n" << log;
  EXPECT_NE(log.find("preemption notice: the node goes at"), std::string::npos) << log;
}

TEST_F(RunnerTaskTest, WithoutANoticeSignalTheJobOnlyGetsTheFile) {
  Task& t =
      start("echo ready; while [ ! -e \"$COHORT_NOTICE_FILE\" ]; do sleep 0.02; done; echo noticed", 0, nullptr, "");
  ASSERT_TRUE(log_has(t, "ready"));
  t.notify_preemption(1796102570550);
  const v1::TaskStatus s = finished(t);
  EXPECT_EQ(s.exit_code(), 0) << "no signal, so nothing killed it: " << s.cause();
  EXPECT_TRUE(log_has(t, "noticed"));
}

TEST_F(RunnerTaskTest, RunsInTheUnpackedCode) {
  const fs::path src = dir_ / "src";
  fs::create_directories(src / "sub");
  std::ofstream(src / "run.sh") << "echo \"code says $(cat sub/data.txt)\"\n";
  std::ofstream(src / "sub" / "data.txt") << "hi";
  ASSERT_EQ(std::system(("tar -czf " + (dir_ / "code.tgz").string() + " -C " + src.string() + " .").c_str()), 0);
  Task& t = start("sh run.sh", 0, [this](const v1::Assignment&, const fs::path& to) {
    fs::copy_file(dir_ / "code.tgz", to);
    return Status();
  });
  EXPECT_EQ(finished(t).exit_code(), 0);
  EXPECT_EQ(slurp(t.log_path()), "code says hi\n");
  EXPECT_FALSE(fs::exists(t.dir() / "code.tar.gz")) << "the archive is removed once unpacked";
}

TEST_F(RunnerTaskTest, ACodeDownloadThatFailsEndsTheTaskWithTheReason) {
  Task& t = start("true", 0, [](const v1::Assignment&, const fs::path&) {
    return Status(Code::kUnavailable, "GetCode at m:1: connection refused");
  });
  v1::TaskStatus s = finished(t);
  EXPECT_EQ(s.exit_code(), 127);
  EXPECT_NE(s.cause().find("could not start"), std::string::npos) << s.cause();
  EXPECT_NE(s.cause().find("connection refused"), std::string::npos) << s.cause();
  EXPECT_NE(slurp(t.log_path()).find("connection refused"), std::string::npos);
}

TEST_F(RunnerTaskTest, WhatTheJobLeftInItsGroupEndsWithIt) {
  Task& t = start("sleep 30 & echo $! > bg.pid; exit 0");
  EXPECT_EQ(finished(t).exit_code(), 0);
  const pid_t bg = std::stoi(slurp(t.dir() / "code" / "bg.pid"));
  EXPECT_TRUE(eventually([bg] { return !alive(bg); }, 5s)) << "background process " << bg << " survived its job";
}

TEST_F(RunnerTaskTest, AStopBeforeTheStartRunsNothing) {
  v1::Assignment a;
  a.set_job("never");
  a.set_attempt(1);
  a.set_command("touch ran");
  Task t(a, TaskEnvironment{dir_, "node-a", {}, 300ms, nullptr, &spawner_, nullptr});
  t.stop("canceled");
  t.start();
  v1::TaskStatus s = finished(t);
  EXPECT_EQ(s.signal(), SIGTERM);
  EXPECT_EQ(s.cause(), "canceled (before it started)");
  EXPECT_FALSE(fs::exists(t.dir() / "code" / "ran"));
}

TEST_F(RunnerTaskTest, AnImageJobOnANodeWithoutContainersIsRefusedWithTheReason) {
  v1::Assignment a;
  a.set_job("image");
  a.set_attempt(1);
  a.set_command("touch ran");
  a.set_image("dir:/srv/rootfs");
  a.set_runtime("runc");
  TaskEnvironment env{dir_, "node-a", {}, 300ms, nullptr, &spawner_, nullptr};
  env.bin_dir = fs::path(testing::bin("cohort-exec")).parent_path();
  env.no_containers = "runc is not installed";
  Task t(a, env);
  t.start();
  v1::TaskStatus s = finished(t);
  EXPECT_EQ(s.exit_code(), 127);
  EXPECT_EQ(
      s.cause(),
      "could not start: image dir:/srv/rootfs with runtime runc cannot run on node node-a: runc is not installed");
  EXPECT_FALSE(fs::exists(t.dir() / "code" / "ran"));
}

TEST_F(RunnerTaskTest, AnMpiHeadWhosePeerIsNotReadyStartsNothingAndNamesThePeer) {
  v1::Assignment a;
  a.set_job("gate");
  a.set_attempt(1);
  a.set_node_rank(0);
  a.set_num_nodes(2);
  a.add_node_addresses("10.1.0.1");
  a.add_node_addresses("10.1.0.2");
  a.set_distribution("mpi");
  a.set_processes_per_node(1);
  a.set_command("touch ran");
  TaskEnvironment env{dir_, "node-a", runner_environment_for_jobs(), 300ms, nullptr, &spawner_, nullptr};
  env.bin_dir = fs::path(testing::bin("cohort-exec")).parent_path();
  std::atomic<int> asked{0};
  env.wait_peer_ready = [&](const v1::Assignment&, int rank, std::chrono::steady_clock::time_point,
                            const std::function<bool()>&) {
    ++asked;
    return Status(Code::kTimedOut,
                  "node rank " + std::to_string(rank) + " (10.1.0.2) was not ready: starting its container");
  };
  Task t(a, env);
  t.start();
  v1::TaskStatus s = finished(t);
  EXPECT_EQ(asked.load(), 1);
  EXPECT_NE(s.cause().find("could not start: node rank 1 (10.1.0.2) was not ready: starting its container"),
            std::string::npos)
      << s.cause();
  EXPECT_FALSE(s.exit_code() == 0 && s.signal() == 0) << s.cause();
  EXPECT_FALSE(fs::exists(t.dir() / "run" / "go"));
  EXPECT_FALSE(fs::exists(t.dir() / "code" / "ran")) << "mpirun ran although the gate never opened";
  EXPECT_NE(slurp(t.log_path()).find("was not ready"), std::string::npos) << "the log does not say why";
}

}  // namespace
}  // namespace cohort::runner
