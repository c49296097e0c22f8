// The runner's set of attempts: idempotent starts, forgetting, and log shipping that survives a
// manager that is away (resend from the acknowledged offset: nothing lost, nothing twice).
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <thread>

#include "log_cursor.hpp"
#include "task_table.hpp"
#include "test_support.hpp"

namespace cohort::runner {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

class RunnerTableTest : public ::testing::Test {
 protected:
  void SetUp() override {
    TaskEnvironment env{dir_, "n", {}, 300ms, nullptr, &spawner_, nullptr};
    env.bin_dir = fs::path(testing::bin("cohort-exec")).parent_path();
    table_ = std::make_unique<TaskTable>(std::move(env), 5s);
  }
  void TearDown() override { table_.reset(); }
  static v1::Assignment assignment(const std::string& job, const std::string& command) {
    v1::Assignment a;
    a.set_job(job);
    a.set_attempt(1);
    a.set_command(command);
    return a;
  }
  std::string state_of(const std::string& job, bool hold = true) {
    for (const auto& s : table_->statuses(hold)) {
      if (s.job() == job) return s.state();
    }
    return "absent";
  }

  testing::ScratchDir scratch_{"runner-table-test"};
  const fs::path dir_ = scratch_.path();
  Spawner spawner_;
  std::unique_ptr<TaskTable> table_;
};

TEST_F(RunnerTableTest, StartsAnAttemptOnce) {
  EXPECT_TRUE(table_->start(assignment("a", "sleep 30")));
  EXPECT_FALSE(table_->start(assignment("a", "sleep 30")));
  EXPECT_EQ(table_->statuses().size(), 1u);
  EXPECT_EQ(table_->running(), 1u);
  table_->stop("a", 1, "done");
  ASSERT_TRUE(table_->wait_all_exited(10s));
  EXPECT_TRUE(table_->all_exited());
}

TEST_F(RunnerTableTest, RefusesAJobIdThatIsNoDirectoryName) {
  EXPECT_FALSE(table_->start(assignment("../escape", "touch x")));
  ASSERT_TRUE(table_->wait_all_exited(10s));
  auto st = table_->statuses(false);
  ASSERT_EQ(st.size(), 1u);
  EXPECT_EQ(st[0].state(), "exited");
  EXPECT_NE(st[0].cause().find("refused"), std::string::npos) << st[0].cause();
  EXPECT_FALSE(fs::exists(dir_ / "escape"));
}

TEST_F(RunnerTableTest, ShipsEveryByteOnceAcrossFailuresAndHoldsTheExitUntilThen) {
  ASSERT_TRUE(table_->start(assignment("a", "for i in 1 2 3 4 5; do echo line $i; done")));
  ASSERT_TRUE(table_->wait_all_exited(10s));
  EXPECT_EQ(state_of("a"), "running") << "the exit waits for its log";
  EXPECT_EQ(state_of("a", /*hold=*/false), "exited");

  std::string received;
  int calls = 0;
  auto flaky = [&](const v1::Assignment&, std::string_view data) {
    if (++calls % 2 == 1) return Status(Code::kUnavailable, "manager away");
    received += data;
    return Status();
  };
  EXPECT_EQ(table_->ship_logs(flaky).code(), Code::kUnavailable);
  EXPECT_EQ(received, "");
  EXPECT_TRUE(table_->ship_logs(flaky).ok());
  EXPECT_EQ(received, "line 1\nline 2\nline 3\nline 4\nline 5\n");
  EXPECT_EQ(state_of("a"), "exited");
  EXPECT_TRUE(table_->ship_logs(flaky).ok());
  EXPECT_EQ(calls, 2) << "nothing more to send";

  table_->forget("a", 1);
  EXPECT_EQ(state_of("a"), "absent");
  EXPECT_FALSE(table_->start(assignment("a", "true"))) << "a forgotten attempt is never run again";
}

TEST_F(RunnerTableTest, ARefusedLogHoldsUpOnlyItsOwnTask) {
  ASSERT_TRUE(table_->start(assignment("a", "echo from a")));
  ASSERT_TRUE(table_->start(assignment("b", "echo from b")));
  ASSERT_TRUE(table_->wait_all_exited(10s));
  std::map<std::string, std::string> got;
  Status s = table_->ship_logs([&](const v1::Assignment& a, std::string_view data) {
    if (a.job() == "a") return Status(Code::kPermissionDenied, "not yours");
    got[a.job()] += data;
    return Status();
  });
  EXPECT_EQ(s.code(), Code::kPermissionDenied);
  EXPECT_EQ(got["b"], "from b\n");
  EXPECT_EQ(state_of("b"), "exited");
  EXPECT_EQ(state_of("a"), "running") << "held while its log is undelivered, up to the drain time";
}

TEST_F(RunnerTableTest, ForgetKeepsARunningTask) {
  ASSERT_TRUE(table_->start(assignment("a", "sleep 30")));
  table_->forget("a", 1);
  EXPECT_NE(state_of("a"), "absent");
}

TEST_F(RunnerTableTest, StopAllEndsEveryTask) {
  ASSERT_TRUE(table_->start(assignment("a", "sleep 30")));
  ASSERT_TRUE(table_->start(assignment("b", "trap '' TERM; sleep 30")));
  table_->stop_all("shutting down");
  EXPECT_TRUE(table_->wait_all_exited(5s));
  for (const auto& s : table_->statuses(false))
    EXPECT_NE(s.cause().find("shutting down"), std::string::npos) << s.cause();
}

TEST(RunnerLogCursorTest, ResendsFromTheLastAcknowledgedOffset) {
  const fs::path file = fs::temp_directory_path() / ("runner-log-cursor-" + std::to_string(getpid()));
  LogCursor cursor(file);
  EXPECT_EQ(cursor.pending(10).value(), "") << "no file yet";
  std::ofstream(file) << "abcdefghij";
  int calls = 0;
  std::string got;
  Status s = cursor.ship(
      [&](std::string_view d) {
        if (++calls == 2) return Status(Code::kUnavailable, "away");
        got += d;
        return Status();
      },
      /*chunk=*/4);
  EXPECT_EQ(s.code(), Code::kUnavailable);
  EXPECT_EQ(got, "abcd");
  EXPECT_EQ(cursor.offset(), 4u);
  ASSERT_TRUE(cursor.ship([&](std::string_view d) { return got += d, Status(); }, 4).ok());
  EXPECT_EQ(got, "abcdefghij");
  std::ofstream(file, std::ios::app) << "kl";
  EXPECT_EQ(cursor.pending(100).value(), "kl");
  fs::remove(file);
}

}  // namespace
}  // namespace cohort::runner
