// `cohort run` on this machine's own namespace: real mpirun, real ranks, real exit codes.
#include <gtest/gtest.h>

#include <regex>
#include <thread>

#include "cohort/gpu.hpp"
#include "test_support.hpp"

namespace cohort::testing {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

class CohortRunTest : public ::testing::Test {
 protected:
  void TearDown() override {
    auto left = wait_for_no_processes_of_job(job_, seconds(5));
    EXPECT_TRUE(left.empty()) << left.size() << " process(es) of job " << job_ << " outlived cohort run, e.g. pid "
                              << (left.empty() ? 0 : left.front());
  }
  std::string job_ = unique_job_id("run");
};

TEST_F(CohortRunTest, PrefixesEveryLineWithItsRank) {
  auto r = cohort_run(
      {"-n", "3", "--", "sh", "-c", "echo out $OMPI_COMM_WORLD_RANK; echo err $OMPI_COMM_WORLD_RANK >&2"}, job_);
  ASSERT_EQ(r.status.code, 0) << r.err;
  for (int rank = 0; rank < 3; ++rank) {
    std::string n = std::to_string(rank);
    EXPECT_NE(r.out.find("[rank " + n + "] out " + n + "\n"), std::string::npos) << r.out;
    EXPECT_NE(r.err.find("[rank " + n + "] err " + n + "\n"), std::string::npos) << r.err;
  }
}

TEST_F(CohortRunTest, GivesRanksTheCohortEnvironment) {
  auto r = cohort_run({"-n", "2", "--checkpoint-dir", "/tmp/ckpt-x", "--", "sh", "-c",
                       "echo job=$COHORT_JOB_ID attempt=$COHORT_ATTEMPT ckpt=$COHORT_CHECKPOINT_DIR"},
                      job_);
  ASSERT_EQ(r.status.code, 0) << r.err;
  EXPECT_NE(r.out.find("[rank 1] job=" + job_ + " attempt=1 ckpt=/tmp/ckpt-x"), std::string::npos) << r.out;
}

TEST_F(CohortRunTest, ExitsWithTheFailingRanksCodeAndNamesIt) {
  auto start = std::chrono::steady_clock::now();
  auto r =
      cohort_run({"-n", "3", "--", "sh", "-c", "if [ $OMPI_COMM_WORLD_RANK = 1 ]; then exit 3; fi; sleep 60"}, job_);
  EXPECT_EQ(r.status.code, 3) << r.err;
  EXPECT_TRUE(std::regex_search(r.err, std::regex("rank 1 on host \\S+ exited with code 3 \\(the first rank to fail")))
      << r.err;
  // The other ranks were sleeping for a minute: they must have been stopped, not waited for.
  EXPECT_LT(std::chrono::steady_clock::now() - start, seconds(30));
}

TEST_F(CohortRunTest, NamesTheSignalThatKilledARank) {
  auto r = cohort_run({"-n", "3", "--", "sh", "-c", "if [ $OMPI_COMM_WORLD_RANK = 2 ]; then kill -9 $$; fi; sleep 60"},
                      job_);
  EXPECT_EQ(r.status.code, 128 + 9) << r.err;
  EXPECT_NE(r.err.find("rank 2 on host"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("was killed by signal 9 (SIGKILL)"), std::string::npos) << r.err;
}

TEST_F(CohortRunTest, MissingProgramIsReportedPerRank) {
  auto r = cohort_run({"-n", "2", "/no/such/program"}, job_);
  EXPECT_EQ(r.status.code, 127);
  EXPECT_NE(r.err.find("cannot run /no/such/program: No such file or directory"), std::string::npos) << r.err;
}

TEST_F(CohortRunTest, BadFlagsAreUsageErrors) {
  auto r = cohort_run({"-n", "2"}, job_);
  EXPECT_EQ(r.status.code, 2);
  EXPECT_NE(r.err.find("no PROGRAM given"), std::string::npos) << r.err;
  r = cohort_run({"--nodes", "3", "-n", "2", "true"}, job_);
  EXPECT_EQ(r.status.code, 2);
  EXPECT_NE(r.err.find("--nodes 3 needs at least as many ranks"), std::string::npos) << r.err;
  r = cohort_run({"-n", "many", "true"}, job_);
  EXPECT_EQ(r.status.code, 2);
  r = cohort_run({"--job-id", "a b", "true"}, job_);
  EXPECT_EQ(r.status.code, 2);
  EXPECT_NE(r.err.find("--job-id 'a b' may hold only"), std::string::npos) << r.err;
}

TEST_F(CohortRunTest, StoppingCohortRunStopsEveryRank) {
  SpawnOptions o;
  o.argv = {bin("cohort"), "run", "-n", "2", "--", "sleep", "60"};
  o.env = {{"COHORT_JOB_ID", job_}};
  o.capture_stdout = o.capture_stderr = true;
  auto run = Subprocess::spawn(o);
  ASSERT_TRUE(run.ok()) << run.status().to_string();
  // Once both ranks run, stop the launcher as a user would.
  ASSERT_TRUE(wait_for_processes_named(job_, "sleep", 2, seconds(20))) << "the ranks did not start within 20 s";
  ASSERT_TRUE(run->signal(SIGTERM).ok());
  auto st = run->wait_for(seconds(20));
  ASSERT_TRUE(st.ok() && st.value().has_value()) << "cohort run did not end within 20 s of SIGTERM";
  EXPECT_FALSE(st.value()->success());
}

TEST_F(CohortRunTest, KilledCohortRunLeavesNothingBehind) {
  SpawnOptions o;
  o.argv = {bin("cohort"), "run", "-n", "2", "--", "sleep", "60"};
  o.env = {{"COHORT_JOB_ID", job_}};
  o.capture_stdout = o.capture_stderr = true;
  auto run = Subprocess::spawn(o);
  ASSERT_TRUE(run.ok());
  ASSERT_TRUE(wait_for_processes_named(job_, "sleep", 2, seconds(20))) << "the ranks did not start within 20 s";
  ASSERT_TRUE(run->signal(SIGKILL).ok());
  (void)run->wait();
  // TearDown checks that mpirun, the wrappers and the sleeps all went.
}

TEST_F(CohortRunTest, CollectivesAgreeOnEveryRank) {
  for (int ranks : {1, 2, 3, 4}) {
    auto r = cohort_run({"-n", std::to_string(ranks), bin("cohort-collectives-check")}, job_);
    EXPECT_EQ(r.status.code, 0) << ranks << " ranks:\n" << r.err;
    EXPECT_NE(r.out.find("[rank 0] collectives check passed"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("on " + std::to_string(ranks) + " ranks"), std::string::npos) << r.out;
  }
}

// Without a GPU (or without CUDA in the build) a collective on device buffers fails on every
// rank alike, naming the ranks without one, instead of leaving the others waiting in NCCL's
// bootstrap; the host path goes on. On GPUs, tests/gpu/device_collectives_test.cpp checks results.
TEST_F(CohortRunTest, DeviceBuffersWithoutAGpuAreRefusedAlikeOnEveryRank) {
  if (cohort::probe_gpus().device_count > 0) GTEST_SKIP() << "this machine has a GPU: the gpu-labelled test runs";
  auto r = cohort_run({"-n", "2", bin("cohort-device-collectives-check")}, job_);
  EXPECT_EQ(r.status.code, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("[rank 0] device collectives refused as expected"), std::string::npos) << r.out;
#ifdef COHORT_HAVE_CUDA
  EXPECT_NE(r.out.find("rank(s) 0, 1 have none"), std::string::npos) << r.out;
#endif
}

TEST(StandaloneTest, CollectivesOfAWorldOfOneNeedNoLauncher) {
  auto r = run_captured({.argv = {bin("cohort-collectives-check")}}, seconds(60));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->status.code, 0) << r->err;
  EXPECT_NE(r->out.find("collectives check passed"), std::string::npos) << r->out;
}

TEST(StandaloneTest, BadLauncherVariablesStopTheJobWithTheirName) {
  auto r = run_captured({.argv = {bin("cohort-collectives-check")}, .env = {{"RANK", "0"}, {"WORLD_SIZE", "two"}}},
                        seconds(60));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->status.code, 2);
  EXPECT_NE(r->err.find("WORLD_SIZE='two' is not an integer"), std::string::npos) << r->err;
}

}  // namespace
}  // namespace cohort::testing
