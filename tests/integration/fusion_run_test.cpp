// FusionBuffer under `cohort run`: fused allreduces agree bit for bit with separate ones on 1..4 ranks.
#include <gtest/gtest.h>

#include "test_support.hpp"

namespace cohort::testing {
namespace {

using std::chrono::seconds;

class FusionRunTest : public ::testing::TestWithParam<int> {
 protected:
  void TearDown() override {
    auto left = wait_for_no_processes_of_job(job_, seconds(5));
    EXPECT_TRUE(left.empty()) << left.size() << " process(es) of job " << job_ << " outlived cohort run";
  }
  std::string job_ = unique_job_id("fusion");
};

TEST_P(FusionRunTest, FusedTensorsEqualSeparateAllreduces) {
  const int ranks = GetParam();
  auto r = cohort_run({"-n", std::to_string(ranks), bin("cohort-fusion-check")}, job_);
  EXPECT_EQ(r.status.code, 0) << ranks << " ranks:\n" << r.err;
  EXPECT_NE(r.out.find("[rank 0] fusion check passed"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("on " + std::to_string(ranks) + " ranks"), std::string::npos) << r.out;
}

INSTANTIATE_TEST_SUITE_P(Ranks, FusionRunTest, ::testing::Values(1, 2, 3, 4));

TEST(FusionStandaloneTest, AWorldOfOneNeedsNoLauncher) {
  auto r = run_captured({.argv = {bin("cohort-fusion-check")}}, seconds(60));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->status.code, 0) << r->err;
  EXPECT_NE(r->out.find("fusion check passed: "), std::string::npos) << r->out;
}

}  // namespace
}  // namespace cohort::testing
