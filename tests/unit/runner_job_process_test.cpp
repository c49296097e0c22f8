// The job's keeper (`cohort-exec keep`, spawned by JobProcess): it ends as the job's first process
// did, takes the job's group with it, and outlives the spawning thread but not the runner.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <optional>
#include <string>
#include <thread>

#include "job_process.hpp"
#include "test_support.hpp"

namespace cohort::runner {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

using testing::slurp;

class JobProcessTest : public ::testing::Test {
 protected:
  JobProcessSpec spec(const std::string& script) const {
    return {
        {"/bin/sh", "-c", script}, testing::bin("cohort-exec"), dir_, dir_ / "log", {"PATH=/usr/bin:/bin", "FOO=bar"}};
  }
  ExitStatus end_of(JobProcess& p) {
    auto end = p.wait_for(10s);
    EXPECT_TRUE(end.ok() && end->has_value()) << "the job did not end within 10 s";
    return end.ok() && end->has_value() ? **end : ExitStatus{-1, 0};
  }
  std::string log() const { return slurp(dir_ / "log"); }
  // A zombie is dead: killed leftovers go to an init that may be slow to reap them.
  static bool alive(pid_t pid) {
    const std::string stat = slurp("/proc/" + std::to_string(pid) + "/stat");
    const auto paren = stat.rfind(')');
    return paren != std::string::npos && paren + 2 < stat.size() && stat[paren + 2] != 'Z';
  }

  testing::ScratchDir scratch_{"job-process"};
  const fs::path dir_ = scratch_.path();
};

TEST_F(JobProcessTest, EndsWithTheJobsExitCodeInItsDirectoryAndEnvironment) {
  auto p = JobProcess::start(spec("pwd; echo \"FOO=$FOO\"; echo oops >&2; exit 7"));
  ASSERT_TRUE(p.ok()) << p.status().to_string();
  EXPECT_GT(p->process_group(), 1);
  EXPECT_EQ(end_of(*p).describe(), (ExitStatus{7, 0}).describe());
  EXPECT_EQ(log(), dir_.string() + "\nFOO=bar\noops\n");
}

TEST_F(JobProcessTest, EndsByTheJobsSignal) {
  auto p = JobProcess::start(spec("kill -USR1 $$"));
  ASSERT_TRUE(p.ok()) << p.status().to_string();
  EXPECT_EQ(end_of(*p).describe(), (ExitStatus{0, SIGUSR1}).describe());
}

TEST_F(JobProcessTest, WhatTheJobLeftInItsGroupIsKilledAtItsEnd) {
  auto p = JobProcess::start(spec("sleep 300 & echo $! > pid; exit 0"));
  ASSERT_TRUE(p.ok()) << p.status().to_string();
  EXPECT_EQ(end_of(*p).describe(), (ExitStatus{0, 0}).describe());
  const pid_t left = std::stoi(slurp(dir_ / "pid"));
  const auto until = std::chrono::steady_clock::now() + 5s;
  while (alive(left) && std::chrono::steady_clock::now() < until)
    std::this_thread::sleep_for(10ms);
  EXPECT_FALSE(alive(left)) << "the job's background sleep outlived it";
}

TEST_F(JobProcessTest, AStopSignalToTheGroupReachesTheJob) {
  auto p = JobProcess::start(spec("trap 'echo stopping; exit 3' TERM; echo up; while :; do sleep 0.05; done"));
  ASSERT_TRUE(p.ok()) << p.status().to_string();
  const auto until = std::chrono::steady_clock::now() + 5s;
  while (log().find("up") == std::string::npos && std::chrono::steady_clock::now() < until)
    std::this_thread::sleep_for(10ms);
  ASSERT_TRUE(p->signal_group(SIGTERM).ok());
  EXPECT_EQ(end_of(*p).describe(), (ExitStatus{3, 0}).describe());
  EXPECT_NE(log().find("stopping"), std::string::npos) << log();
}

TEST_F(JobProcessTest, AProgramThatCannotRunEndsWith127AndSaysWhy) {
  JobProcessSpec s = spec("");
  s.argv = {"/nonexistent/program", "arg"};
  auto p = JobProcess::start(s);
  ASSERT_TRUE(p.ok()) << p.status().to_string();
  EXPECT_EQ(end_of(*p).describe(), (ExitStatus{127, 0}).describe());
  EXPECT_NE(log().find("cannot run /nonexistent/program: No such file or directory"), std::string::npos) << log();
}

TEST_F(JobProcessTest, AMissingKeeperOrDirectoryIsAnErrorThatNamesIt) {
  JobProcessSpec s = spec("true");
  s.keeper = "/nonexistent/cohort-exec";
  auto p = JobProcess::start(s);
  ASSERT_FALSE(p.ok());
  EXPECT_NE(p.status().message().find("/nonexistent/cohort-exec"), std::string::npos) << p.status().to_string();
  s = spec("true");
  s.working_directory = dir_ / "gone";
  p = JobProcess::start(s);
  ASSERT_FALSE(p.ok());
  EXPECT_NE(p.status().message().find((dir_ / "gone").string()), std::string::npos) << p.status().to_string();
}

// A wait shorter than the rest of a millisecond must still wait: the runner's readiness loop calls
// wait_for(1 ms) in a loop, and it spun on a core (returning at once) while containers started.
TEST_F(JobProcessTest, AShortWaitWaitsItsTime) {
  auto p = JobProcess::start(spec("sleep 300"));
  ASSERT_TRUE(p.ok()) << p.status().to_string();
  for (int i = 0; i < 20; ++i) {
    const auto before = std::chrono::steady_clock::now();
    auto end = p->wait_for(1ms);
    const auto waited = std::chrono::steady_clock::now() - before;
    ASSERT_TRUE(end.ok() && !end->has_value());
    ASSERT_GE(waited, 1ms) << "wait_for(1 ms) came back after "
                           << std::chrono::duration_cast<std::chrono::microseconds>(waited).count() << " us";
  }
}

// PR_SET_PDEATHSIG fires when the spawning thread ends: the keeper must check that its runner is
// really gone before it kills the job.
TEST_F(JobProcessTest, TheJobOutlivesTheThreadThatStartedIt) {
  std::optional<JobProcess> p;
  std::thread([&] {
    auto started = JobProcess::start(spec("sleep 300"));
    ASSERT_TRUE(started.ok()) << started.status().to_string();
    p.emplace(std::move(started).value());
  }).join();
  ASSERT_TRUE(p.has_value());
  std::this_thread::sleep_for(300ms);
  auto end = p->wait_for(0ms);
  ASSERT_TRUE(end.ok());
  EXPECT_FALSE(end->has_value()) << "the job ended with the thread that started it";
  EXPECT_TRUE(alive(p->process_group()));
}

// The cleanup is for a runner that can no longer do its own: a job that ends under a live runner
// leaves it to the runner.
TEST_F(JobProcessTest, TheCleanupIsNotRunWhenTheJobEndsUnderItsRunner) {
  JobProcessSpec s = spec("exit 0");
  s.cleanup = {"/bin/sh", "-c", "echo cleaned > " + (dir_ / "cleanup").string()};
  auto p = JobProcess::start(s);
  ASSERT_TRUE(p.ok()) << p.status().to_string();
  EXPECT_EQ(end_of(*p).code, 0);
  std::this_thread::sleep_for(100ms);
  EXPECT_FALSE(fs::exists(dir_ / "cleanup"));
}

// A runner killed with -9: its keepers kill their jobs' groups, then run each job's cleanup (a
// container's `runc delete --force`: its init may wait outside the group for a start that never
// comes).
TEST_F(JobProcessTest, TheJobDiesWithItsRunnerAndItsCleanupRuns) {
  int pipe_fds[2];
  ASSERT_EQ(::pipe(pipe_fds), 0);
  const pid_t runner = ::fork();
  ASSERT_GE(runner, 0);
  if (runner == 0) {  // a stand-in runner: starts the job, says its group, waits to be killed
    ::close(pipe_fds[0]);
    JobProcessSpec s = spec("sleep 300");
    s.cleanup = {"/bin/sh", "-c", "echo cleaned > " + (dir_ / "cleanup").string()};
    auto p = JobProcess::start(s);
    const pid_t group = p.ok() ? p->process_group() : -1;
    (void)!::write(pipe_fds[1], &group, sizeof group);
    if (!p.ok()) _exit(1);  // nothing to wait for: the test fails on the group
    ::pause();
    _exit(0);
  }
  ::close(pipe_fds[1]);
  pid_t group = -1;
  ASSERT_EQ(::read(pipe_fds[0], &group, sizeof group), static_cast<ssize_t>(sizeof group));
  ::close(pipe_fds[0]);
  if (group <= 1) {
    ::kill(runner, SIGKILL);
    ::waitpid(runner, nullptr, 0);
  }
  ASSERT_GT(group, 1);
  EXPECT_TRUE(alive(group));
  ::kill(runner, SIGKILL);
  ::waitpid(runner, nullptr, 0);
  const auto until = std::chrono::steady_clock::now() + 5s;
  while (alive(group) && std::chrono::steady_clock::now() < until)
    std::this_thread::sleep_for(10ms);
  EXPECT_FALSE(alive(group)) << "the job outlived its runner";
  if (alive(group)) ::kill(-group, SIGKILL);
  const auto cleaned_by = std::chrono::steady_clock::now() + 5s;
  while (slurp(dir_ / "cleanup") != "cleaned\n" && std::chrono::steady_clock::now() < cleaned_by)
    std::this_thread::sleep_for(10ms);
  EXPECT_EQ(slurp(dir_ / "cleanup"), "cleaned\n") << "the keeper did not run the cleanup";
}

}  // namespace
}  // namespace cohort::runner
