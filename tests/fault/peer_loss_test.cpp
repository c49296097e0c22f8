// No hangs: one rank of a `cohort run` job SIGKILLs itself in the middle of a loop of allreduces
// (cohort-peer-loss-check), and every surviving rank's collective must fail, Disconnected or
// TimedOut and naming the dead rank, within twice the collective timeout; its next call must fail
// at once; and `cohort run` must end with the dead rank's status, naming it.
//
// Parameterized over 2, 3 and 4 ranks and over the three ways a collective waits: a small
// blocking allreduce (MPI's nonblocking call, polled), a large one (MPI's blocking call on the
// call thread), and an iallreduce waited on in short steps.
#include <gtest/gtest.h>

#include <regex>
#include <string>
#include <tuple>

#include "test_support.hpp"

namespace cohort::testing {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

// Short, so the test runs in seconds; long against the few milliseconds a healthy collective
// takes here, even on a loaded 2-core machine running 4 ranks.
constexpr long kTimeoutMs = 2000;
constexpr int kVictim = 1;

class PeerLossTest : public ::testing::TestWithParam<std::tuple<int, std::string>> {
 protected:
  void TearDown() override {
    auto left = wait_for_no_processes_of_job(job_, seconds(10));
    EXPECT_TRUE(left.empty()) << left.size() << " process(es) of job " << job_ << " outlived cohort run";
  }
  std::string job_ = unique_job_id("peerloss");
};

TEST_P(PeerLossTest, EverySurvivorReportsTheDeadPeerInTime) {
  const auto [ranks, mode] = GetParam();
  SpawnOptions o;
  o.argv = {bin("cohort"),          "run", "-n", std::to_string(ranks), bin("cohort-peer-loss-check"), mode,
            std::to_string(kVictim)};
  o.env = {{"COHORT_JOB_ID", job_}, {"COHORT_COLLECTIVE_TIMEOUT_MS", std::to_string(kTimeoutMs)}};
  const auto start = std::chrono::steady_clock::now();
  auto run = run_captured(std::move(o), seconds(90));
  const auto took = std::chrono::steady_clock::now() - start;
  ASSERT_TRUE(run.ok()) << run.status().to_string();
  ASSERT_FALSE(run->timed_out) << "cohort run did not end within 90 s\n" << run->out << run->err;
  const std::string all = run->out + "\n" + run->err;

  EXPECT_EQ(run->status.code, 128 + 9) << all;
  EXPECT_TRUE(std::regex_search(run->err, std::regex("rank 1 on host \\S+ was killed by signal 9 \\(SIGKILL\\) "
                                                     "\\(the first rank to fail")))
      << all;
  for (int r = 0; r < ranks; ++r) {
    if (r == kVictim) continue;
    const std::string n = std::to_string(r);
    std::smatch m;
    const std::regex line("\\[rank " + n + "\\] peer-loss-check: rank " + n +
                          ": (Disconnected|TimedOut) after ([0-9]+) ms \\(timeout [0-9]+ ms\\): ([^\\n]*)");
    ASSERT_TRUE(std::regex_search(all, m, line)) << "rank " << r << " reported no error:\n" << all;
    EXPECT_LE(std::stol(m[2].str()), 2 * kTimeoutMs) << m[0];
    EXPECT_NE(m[3].str().find("rank 1 on host"), std::string::npos) << m[0];
    if (m[1] == "Disconnected") {
      EXPECT_NE(m[3].str().find("was killed by signal 9 (SIGKILL)"), std::string::npos) << m[0];
    }
    const std::regex next("\\[rank " + n + "\\] peer-loss-check: rank " + n + ": next call " + m[1].str() +
                          " after ([0-9]+) ms");
    std::smatch nm;
    ASSERT_TRUE(std::regex_search(all, nm, next)) << "rank " << r << "'s next call did not fail the same way:\n" << all;
    EXPECT_LE(std::stol(nm[1].str()), 100) << nm[0];
  }
  // Start-up, the victim's death, one timeout for the survivors, and exit: far from the grace.
  EXPECT_LT(took, seconds(30)) << all;
}

INSTANTIATE_TEST_SUITE_P(RanksAndWaits, PeerLossTest,
                         ::testing::Combine(::testing::Values(2, 3, 4),
                                            ::testing::Values("small", "large", "async", "fused")),
                         [](const auto& test) {
                           return std::to_string(std::get<0>(test.param)) + "ranks_" + std::get<1>(test.param);
                         });

}  // namespace
}  // namespace cohort::testing
