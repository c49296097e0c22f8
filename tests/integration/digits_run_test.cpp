// The digits example through `cohort run`: data-parallel training reaches the accuracy of one
// process, and the weights of 2 and 4 ranks equal those of 1 rank with the same global batch.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>

#include "digits_support.hpp"
#include "test_support.hpp"

namespace cohort::testing {
namespace {

using std::chrono::seconds;

// Ranks sum their shards' gradients in a different order than one process does, so weights may
// differ by rounding: about 1e-15 was measured after 30 epochs. Any real sharding or averaging
// error moves them by 1e-3 or more, so 1e-9 separates the two by six orders of magnitude.
constexpr double kWeightTolerance = 1e-9;
constexpr double kMinAccuracy = 0.96;

class DigitsRunTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() / ("cohort-digits-" + std::to_string(getpid()));
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override {
    std::filesystem::remove_all(dir_);
    EXPECT_TRUE(wait_for_no_processes_of_job(job_, seconds(5)).empty())
        << "processes of " << job_ << " outlived the run";
  }
  // Trains with `ranks` ranks; returns the final accuracy and leaves the weights in weights(ranks).
  double train(int ranks) {
    auto r = cohort_run({"-n", std::to_string(ranks), bin("example-digits"), "--save-weights", weights(ranks)}, job_);
    EXPECT_EQ(r.status.code, 0) << ranks << " ranks:\n" << r.err;
    auto acc = final_accuracy(r.out);
    EXPECT_TRUE(acc.has_value()) << "no test_accuracy line from " << ranks << " ranks:\n" << r.out;
    EXPECT_NE(r.out.find("[rank 0] test_accuracy="), std::string::npos) << "only rank 0 reports, with its prefix";
    return acc.value_or(0.0);
  }
  std::string weights(int ranks) const { return (dir_ / ("w" + std::to_string(ranks) + ".bin")).string(); }

  std::filesystem::path dir_;
  std::string job_ = unique_job_id("digits");
};

TEST_F(DigitsRunTest, ManyRanksTrainTheSameModelAsOne) {
  const double acc1 = train(1);
  const double acc2 = train(2);
  const double acc4 = train(4);
  EXPECT_GE(acc1, kMinAccuracy);
  EXPECT_GE(acc2, kMinAccuracy);
  EXPECT_GE(acc4, kMinAccuracy);
  const auto w1 = read_weights(weights(1));
  ASSERT_EQ(w1.size(), 64u * 64 + 64 + 10 * 64 + 10) << "the weight file of 1 rank";
  EXPECT_LE(max_abs_diff(w1, read_weights(weights(2))), kWeightTolerance);
  EXPECT_LE(max_abs_diff(w1, read_weights(weights(4))), kWeightTolerance);
  EXPECT_EQ(acc1, acc2);
  EXPECT_EQ(acc1, acc4);
}

TEST_F(DigitsRunTest, BadDataFailsTheJobWithTheReason) {
  auto r = cohort_run({"-n", "2", bin("example-digits"), "--data", "/no/such/digits.csv.gz"}, job_);
  EXPECT_EQ(r.status.code, 2) << r.err;
  EXPECT_NE(r.err.find("/no/such/digits.csv.gz"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace cohort::testing
