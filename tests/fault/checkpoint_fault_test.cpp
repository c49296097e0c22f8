// Checkpoints against real crashes: processes SIGKILLed at every filesystem operation of a save,
// killed at random moments with 2 ranks, a full disk, a stale attempt, a changed world size.
// After each, a fresh process restores and proves it got one whole save, never a mix.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <random>
#include <regex>
#include <thread>

#include "test_support.hpp"

namespace cohort::testing {
namespace {

namespace fs = std::filesystem;
using std::chrono::milliseconds;
using std::chrono::seconds;

class CheckpointFaultTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("cohort-ckpt-fault-" + std::to_string(getpid()) + "-" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
  }
  void TearDown() override {
    fs::remove_all(dir_);
    EXPECT_TRUE(wait_for_no_processes_of_job(job_, seconds(5)).empty());
  }
  // Runs the torture job in this process's namespace, without a launcher.
  Captured torture(std::vector<std::string> args, std::vector<std::pair<std::string, std::string>> env = {}) {
    SpawnOptions o;
    o.argv = {bin("cohort-ckpt-torture")};
    o.argv.insert(o.argv.end(), args.begin(), args.end());
    o.env = std::move(env);
    o.env.emplace_back("COHORT_JOB_ID", job_);
    auto r = run_captured(std::move(o), seconds(60));
    EXPECT_TRUE(r.ok() && !r->timed_out);
    return r.ok() ? std::move(r).value() : Captured{};
  }
  // The step a verify restored, or -1.
  static long long restored(const Captured& c) {
    std::smatch m;
    if (std::regex_search(c.out, m, std::regex(R"(restored step (\d+))"))) return std::stoll(m[1]);
    return -1;
  }
  std::string dir() const { return dir_.string(); }
  std::vector<std::string> leftovers() const {
    std::vector<std::string> out;
    for (auto& e : fs::directory_iterator(dir_)) {
      if (e.path().filename().string().find(".tmp-") != std::string::npos) out.push_back(e.path().filename());
    }
    return out;
  }

  fs::path dir_;
  std::string job_ = unique_job_id("ckpt");
};

// SIGKILL at every filesystem operation of a save, in turn (sync, then async where the kill lands
// in the background writer): restore yields the previous complete checkpoint or the new one.
TEST_F(CheckpointFaultTest, SigkillAtEveryOperationLeavesPreviousOrNew) {
  for (bool async : {false, true}) {
    SCOPED_TRACE(async ? "async" : "sync");
    fs::remove_all(dir_);
    std::vector<std::string> mode = async ? std::vector<std::string>{"--async"} : std::vector<std::string>{};
    auto with = [&](std::vector<std::string> a) {
      a.insert(a.end(), mode.begin(), mode.end());
      return a;
    };
    auto first = torture(with({"save", "--dir", dir(), "--step", "1"}));
    ASSERT_EQ(first.status.code, 0) << first.err;
    auto counted = torture(with({"save", "--dir", dir(), "--step", "2", "--count-ops"}));
    ASSERT_EQ(counted.status.code, 0) << counted.err;
    std::smatch m;
    ASSERT_TRUE(std::regex_search(counted.out, m, std::regex(R"(ops (\d+))"))) << counted.out;
    const int ops = std::stoi(m[1]);
    ASSERT_GE(ops, 50) << "a save must offer at least 50 distinct kill points";
    long long last = 2;
    int killed = 0;
    for (int n = 1; n <= ops; ++n) {
      const long long step = 100 + n;
      auto save =
          torture(with({"save", "--dir", dir(), "--step", std::to_string(step), "--crash-at", std::to_string(n)}));
      killed += save.status.signal == SIGKILL ? 1 : 0;
      auto check = torture({"verify", "--dir", dir(), "--expect", std::to_string(last) + "," + std::to_string(step)});
      ASSERT_EQ(check.status.code, 0) << "killed at operation " << n << ": " << check.out << check.err;
      last = restored(check);
    }
    EXPECT_EQ(killed, ops) << "every chosen operation must have been reached and killed";
  }
}

TEST_F(CheckpointFaultTest, TwoRanksKilledAtRandomMomentsLoseNoCommittedCheckpoint) {
  std::mt19937 rng(12345);  // fixed: the same moments every run
  long long committed = -1;
  for (int round = 0; round < 6; ++round) {
    SpawnOptions o;
    o.argv = {bin("cohort"), "run",   "-n",      "2",       bin("cohort-ckpt-torture"),
              "loop",        "--dir", dir(),     "--start", std::to_string(round * 1000),
              "--tensors",   "8",     "--elems", "65536"};
    o.env = {{"COHORT_JOB_ID", job_}};
    o.capture_stdout = true;
    o.capture_stderr = true;
    auto run = Subprocess::spawn(o);
    ASSERT_TRUE(run.ok());
    std::this_thread::sleep_for(milliseconds(std::uniform_int_distribution<int>(150, 900)(rng)));
    ASSERT_TRUE(run->signal(SIGKILL).ok());
    (void)run->wait();
    ASSERT_TRUE(wait_for_no_processes_of_job(job_, seconds(10)).empty());
    // What the killed run printed as committed must survive.
    std::string out;
    char buf[4096];
    for (ssize_t n; (n = ::read(run->stdout_fd(), buf, sizeof buf)) > 0;)
      out.append(buf, static_cast<std::size_t>(n));
    const std::regex committed_line(R"(committed (\d+))");
    for (auto it = std::sregex_iterator(out.begin(), out.end(), committed_line); it != std::sregex_iterator(); ++it) {
      committed = std::stoll((*it)[1]);
    }
    auto check = cohort_run({"-n", "2", bin("cohort-ckpt-torture"), "verify", "--dir", dir()}, job_);
    ASSERT_EQ(check.status.code, 0) << "round " << round << ":\n" << check.out << check.err;
    EXPECT_GE(restored(check), committed) << "a checkpoint reported committed was lost";
  }
  EXPECT_GE(committed, 0) << "no save finished in any round: the moments are too short for this machine";
}

TEST_F(CheckpointFaultTest, OneRankCrashingMidSaveLeavesPreviousOrNew) {
  auto first = cohort_run({"-n", "2", bin("cohort-ckpt-torture"), "save", "--dir", dir(), "--step", "1"}, job_);
  ASSERT_EQ(first.status.code, 0) << first.err;
  long long last = 1;
  for (int n : {1, 3, 10, 30, 45}) {
    const std::string step = std::to_string(10 + n);
    auto save = cohort_run({"-n", "2", bin("cohort-ckpt-torture"), "save", "--dir", dir(), "--step", step, "--crash-at",
                            std::to_string(n), "--crash-rank", "1"},
                           job_);
    EXPECT_EQ(save.status.code, 128 + SIGKILL) << save.err;
    EXPECT_NE(save.err.find("rank 1 on host"), std::string::npos) << save.err;
    auto check = cohort_run({"-n", "2", bin("cohort-ckpt-torture"), "verify", "--dir", dir(), "--expect",
                             std::to_string(last) + "," + step},
                            job_);
    ASSERT_EQ(check.status.code, 0) << check.out << check.err;
    last = restored(check);
  }
}

TEST_F(CheckpointFaultTest, CorruptShardOfOneRankMakesEveryRankUseThePrevious) {
  for (const char* step : {"1", "2"}) {
    auto s = cohort_run({"-n", "2", bin("cohort-ckpt-torture"), "save", "--dir", dir(), "--step", step}, job_);
    ASSERT_EQ(s.status.code, 0) << s.err;
  }
  const fs::path shard = dir_ / "step-00000000000000000002" / "rank-00001.data";
  {
    std::fstream f(shard, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(4096);
    f.put('\x5a');
  }
  auto check = cohort_run({"-n", "2", bin("cohort-ckpt-torture"), "verify", "--dir", dir(), "--expect", "1"}, job_);
  EXPECT_EQ(check.status.code, 0) << check.out << check.err;
  EXPECT_NE(check.err.find("rank-00001.data checksum mismatch"), std::string::npos) << check.err;
  fs::resize_file(dir_ / "step-00000000000000000001" / "rank-00000.data", 10);
  check = cohort_run({"-n", "2", bin("cohort-ckpt-torture"), "verify", "--dir", dir()}, job_);
  EXPECT_EQ(check.status.code, 0) << check.out << check.err;
  EXPECT_NE(check.out.find("no checkpoint"), std::string::npos) << check.out;
  EXPECT_NE(check.err.find("(truncated)"), std::string::npos) << check.err;
}

TEST_F(CheckpointFaultTest, StaleAttemptIsRefused) {
  auto newer = torture({"save", "--dir", dir(), "--step", "10"}, {{"COHORT_ATTEMPT", "2"}});
  ASSERT_EQ(newer.status.code, 0) << newer.err;
  auto stale = torture({"save", "--dir", dir(), "--step", "11"}, {{"COHORT_ATTEMPT", "1"}});
  EXPECT_EQ(stale.status.code, 5) << stale.err;
  EXPECT_NE(stale.err.find("Fenced"), std::string::npos) << stale.err;
  auto check = torture({"verify", "--dir", dir(), "--expect", "10"});
  EXPECT_EQ(check.status.code, 0) << check.out;
}

TEST_F(CheckpointFaultTest, DifferentWorldSizeIsAClearError) {
  auto two = cohort_run({"-n", "2", bin("cohort-ckpt-torture"), "save", "--dir", dir(), "--step", "3"}, job_);
  ASSERT_EQ(two.status.code, 0) << two.err;
  auto one = torture({"verify", "--dir", dir()});
  EXPECT_EQ(one.status.code, 6) << one.err;
  EXPECT_NE(one.err.find("was written by 2 ranks and this job has 1"), std::string::npos) << one.err;
}

TEST_F(CheckpointFaultTest, FullDiskFailsTheSaveAndKeepsTheOldCheckpoint) {
  if (!is_root()) GTEST_SKIP() << "a small tmpfs needs root; skipped as uid " << geteuid();
  fs::create_directories(dir_);
  // A private mount namespace: the tmpfs disappears with the shell, whatever happens.
  const std::string t = bin("cohort-ckpt-torture");
  const std::string script = "set -e; mount -t tmpfs -o size=1m cohort-test " + dir() + "; " + t + " save --dir " +
                             dir() + " --step 1 --tensors 4 --elems 8192; " + t + " save --dir " + dir() +
                             " --step 2 --tensors 8 --elems 65536 --continue-on-error; " + t + " verify --dir " +
                             dir() + " --expect 1; ls -a " + dir();
  auto r = run_captured({.argv = {"unshare", "--mount", "--propagation", "private", "sh", "-c", script},
                         .env = {{"COHORT_JOB_ID", job_}}},
                        seconds(60));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->status.code, 0) << r->out << r->err;
  EXPECT_NE(r->err.find("save failed: ResourceExhausted"), std::string::npos) << r->err;
  EXPECT_NE(r->out.find("continuing after a failed save"), std::string::npos) << r->out;
  EXPECT_NE(r->out.find("restored step 1"), std::string::npos) << r->out;
  EXPECT_EQ(r->out.find(".tmp-"), std::string::npos) << "the failed save left its temporary directory:\n" << r->out;
}

}  // namespace
}  // namespace cohort::testing
