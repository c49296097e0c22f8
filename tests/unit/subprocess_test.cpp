#include "subprocess.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include "orphans.hpp"

namespace cohort {
namespace {

using std::chrono::milliseconds;

TEST(SubprocessTest, CapturesOutputAndExitCode) {
  auto r = run_captured({.argv = {"sh", "-c", "echo out; echo err >&2; exit 3"}}, milliseconds(10000));
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_EQ(r->out, "out\n");
  EXPECT_EQ(r->err, "err\n");
  EXPECT_EQ(r->status.code, 3);
  EXPECT_EQ(r->status.describe(), "exited with code 3");
}

TEST(SubprocessTest, ReportsSignalsTheWayAShellDoes) {
  auto r = run_captured({.argv = {"sh", "-c", "kill -9 $$"}}, milliseconds(10000));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->status.signal, 9);
  EXPECT_EQ(r->status.shell_code(), 137);
  EXPECT_EQ(r->status.describe(), "was killed by signal 9 (SIGKILL)");
}

TEST(SubprocessTest, MissingProgramIsNotFound) {
  auto r = Subprocess::spawn({.argv = {"/no/such/program"}});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Code::kNotFound);
  EXPECT_NE(r.status().message().find("/no/such/program"), std::string::npos);
}

TEST(SubprocessTest, FailingChildHookFailsTheSpawn) {
  auto r = Subprocess::spawn({.argv = {"true"}, .in_child = [] { return invalid_argument("hook says no"); }});
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("hook says no"), std::string::npos);
}

TEST(SubprocessTest, TimeoutKillsTheChild) {
  auto r = run_captured({.argv = {"sleep", "30"}}, milliseconds(200));
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->timed_out);
  EXPECT_FALSE(r->status.success());
}

TEST(SubprocessTest, DestructorKillsARunningChild) {
  pid_t pid = -1;
  {
    auto child = Subprocess::spawn({.argv = {"sleep", "30"}});
    ASSERT_TRUE(child.ok());
    pid = child->pid();
  }
  EXPECT_NE(::kill(pid, 0), 0) << "the child outlived its Subprocess";
}

TEST(SubprocessTest, TerminateEscalatesToSigkill) {
  // A busy loop, not `sleep`: a grandchild would outlive the test holding its output pipe.
  auto child = Subprocess::spawn({.argv = {"sh", "-c", "trap '' TERM; while :; do :; done"}});
  ASSERT_TRUE(child.ok());
  usleep(100000);  // let the shell install its trap
  ExitStatus st = child->terminate(milliseconds(200));
  EXPECT_EQ(st.signal, SIGKILL);
}

TEST(OrphansTest, SubreaperEndsOrphanedGrandchildren) {
  // Run in a child process: the subreaper flag must not change this test binary itself.
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    if (!become_subreaper().ok()) _exit(10);
    // sh starts a sleeper in the background and exits: the sleeper is orphaned to us.
    auto r = run_captured({.argv = {"sh", "-c", "sleep 30 >/dev/null 2>&1 & echo $!"}}, milliseconds(5000));
    if (!r.ok()) _exit(11);
    pid_t orphan = std::stoi(r->out);
    if (::kill(orphan, 0) != 0) _exit(12);
    if (end_remaining_children(milliseconds(1000)) != 1) _exit(13);
    _exit(::kill(orphan, 0) == 0 ? 14 : 0);
  }
  int ws = 0;
  waitpid(pid, &ws, 0);
  EXPECT_TRUE(WIFEXITED(ws));
  EXPECT_EQ(WEXITSTATUS(ws), 0);
}

}  // namespace
}  // namespace cohort
