// example-digits killed mid-training and started again resumes from its newest checkpoint and
// ends with the very bits of a run that was never interrupted: the same weights file, the same
// accuracy, the same per-epoch losses. Also: a checkpoint of another model is refused, and
// checkpointing without a folder is a usage error.
//
// The crash is the example's test hook --stop-after-steps S: after global step S (and its
// checkpoint) rank 0 SIGKILLs itself, a crash at a known point rather than a timing race.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <optional>
#include <regex>
#include <set>
#include <string>
#include <vector>

#include "digits_support.hpp"
#include "test_support.hpp"

namespace cohort::testing {
namespace {

namespace fs = std::filesystem;
using std::chrono::seconds;

constexpr double kMinAccuracy = 0.96;
constexpr std::size_t kParams = 64 * 64 + 64 + 10 * 64 + 10;
constexpr int kBatchesPerEpoch = 45;  // 1437 train rows in global batches of 32
constexpr int kEvery = 20;
constexpr int kCrashStep = 500;  // epoch 12, batch 5: a crash inside an epoch

class DigitsResumeBase : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string name = ::testing::UnitTest::GetInstance()->current_test_info()->name();
    for (char& c : name) {
      if (c == '/') c = '-';
    }
    dir_ = fs::temp_directory_path() / ("cohort-digits-resume-" + std::to_string(getpid()) + "-" + name);
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override {
    fs::remove_all(dir_);
    for (const auto& job : {job_, reference_job_}) {
      EXPECT_TRUE(wait_for_no_processes_of_job(job, seconds(5)).empty()) << "processes of " << job << " outlived it";
    }
  }

  // `cohort run -n 2 example-digits ARGS...` as job `job`.
  static Captured digits(const std::vector<std::string>& args, const std::string& job) {
    std::vector<std::string> all = {"-n", "2", bin("example-digits")};
    all.insert(all.end(), args.begin(), args.end());
    return cohort_run(all, job, seconds(60));
  }
  std::vector<std::string> checkpointing(const std::string& ckpt_dir, bool async) const {
    std::vector<std::string> args = {"--checkpoint-every", std::to_string(kEvery), "--checkpoint-dir", ckpt_dir};
    if (async) args.push_back("--async-checkpoint");
    return args;
  }
  std::string path(const std::string& name) const { return (dir_ / name).string(); }

  fs::path dir_;
  std::string job_ = unique_job_id("digits-resume");  // the crashed run and its restart: one job
  std::string reference_job_ = unique_job_id("digits-reference");
};

// Parameter: --async-checkpoint.
class DigitsResumeTest : public DigitsResumeBase, public ::testing::WithParamInterface<bool> {
 protected:
  struct Reference {
    std::string out;  // rank 0's stdout
    std::vector<double> weights;
  };
  // The uninterrupted run both modes are compared with, checkpointing synchronously into a fresh
  // folder; run once per test program. Asynchronous saving changes when files are written, not
  // the arithmetic, so one reference serves both (and the async case shows just that).
  const Reference& reference() {
    static std::optional<Reference> ref;
    if (!ref) {
      auto args = checkpointing(path("reference-ckpt"), /*async=*/false);
      args.insert(args.end(), {"--save-weights", path("reference.bin")});
      auto run = digits(args, reference_job_);
      EXPECT_EQ(run.status.code, 0) << run.err;
      ref = Reference{run.out, read_weights(path("reference.bin"))};
    }
    return *ref;
  }
};

// The step of the "resumed from step G (epoch E, batch B)" line, checking E and B follow from G;
// -1 when there is no such line.
long long resumed_step(const std::string& out) {
  std::smatch m;
  if (!std::regex_search(out, m, std::regex(R"(\[rank 0\] resumed from step (\d+) \(epoch (\d+), batch (\d+)\))"))) {
    return -1;
  }
  const long long step = std::stoll(m[1]);
  // Step G done: batch B of epoch E next, B = 45 (not 0 of E+1) when G ends an epoch.
  const long long epoch = (step - 1) / kBatchesPerEpoch + 1;
  EXPECT_EQ(std::stoll(m[2]), epoch) << m[0];
  EXPECT_EQ(std::stoll(m[3]), step - (epoch - 1) * kBatchesPerEpoch) << m[0];
  return step;
}

// The "epoch E/N loss L test_accuracy A" lines rank 0 printed.
std::vector<std::string> epoch_lines(const std::string& out) {
  std::vector<std::string> lines;
  const std::regex line(R"(\[rank 0\] epoch \d+/\d+ loss [0-9.]+ test_accuracy [0-9.]+)");
  for (auto it = std::sregex_iterator(out.begin(), out.end(), line); it != std::sregex_iterator(); ++it) {
    lines.push_back(it->str());
  }
  return lines;
}

TEST_P(DigitsResumeTest, AKilledRunResumesBitIdentically) {
  const bool async = GetParam();
  const std::string ckpt = path("ckpt");
  auto args = checkpointing(ckpt, async);
  args.insert(args.end(), {"--save-weights", path("resumed.bin")});

  auto crash_args = args;
  crash_args.insert(crash_args.end(), {"--stop-after-steps", std::to_string(kCrashStep)});
  auto crashed = digits(crash_args, job_);
  ASSERT_FALSE(crashed.timed_out) << crashed.err;
  ASSERT_EQ(crashed.status.code, 128 + 9) << crashed.err;
  EXPECT_NE(crashed.err.find("rank 0 on host"), std::string::npos) << crashed.err;
  EXPECT_NE(crashed.err.find("SIGKILL"), std::string::npos) << crashed.err;
  EXPECT_EQ(final_accuracy(crashed.out), std::nullopt) << "it died before the end:\n" << crashed.out;
  EXPECT_FALSE(fs::exists(path("resumed.bin")));
  ASSERT_TRUE(wait_for_no_processes_of_job(job_, seconds(10)).empty()) << "the crashed run left processes";

  // The same command again, as a requeue would run it.
  auto resumed = digits(args, job_);
  ASSERT_EQ(resumed.status.code, 0) << resumed.err;
  const long long step = resumed_step(resumed.out);
  if (async) {
    // Rank 0 died right after staging step 500, so that save may not have committed; the one
    // before it had (save() waits for the previous one first).
    EXPECT_TRUE(step == kCrashStep || step == kCrashStep - kEvery) << resumed.out;
  } else {
    EXPECT_EQ(step, kCrashStep) << resumed.out;  // committed on every rank before the kill
  }
  // The crash's torn save is gone, and --keep-checkpoints' default of 3 holds.
  std::vector<std::string> steps;
  for (const auto& e : fs::directory_iterator(ckpt)) {
    const std::string name = e.path().filename().string();
    EXPECT_EQ(name.find(".tmp-"), std::string::npos) << name << " left in " << ckpt;
    if (name.starts_with("step-")) steps.push_back(name);
  }
  std::sort(steps.begin(), steps.end());
  EXPECT_EQ(steps, (std::vector<std::string>{"step-00000000000000001300", "step-00000000000000001320",
                                             "step-00000000000000001340"}));
  const auto accuracy = final_accuracy(resumed.out);
  ASSERT_TRUE(accuracy.has_value()) << resumed.out;
  EXPECT_GE(*accuracy, kMinAccuracy);

  // Uninterrupted, into a fresh folder.
  const Reference& reference = this->reference();
  EXPECT_EQ(resumed_step(reference.out), -1) << "a fresh folder has nothing to resume";
  EXPECT_EQ(final_accuracy(reference.out), accuracy);

  const auto w_resumed = read_weights(path("resumed.bin"));
  const auto& w_reference = reference.weights;
  ASSERT_EQ(w_resumed.size(), kParams);
  EXPECT_EQ(max_abs_diff(w_resumed, w_reference), 0.0);
  EXPECT_EQ(w_resumed, w_reference) << "bit for bit";

  // Every epoch the resumed run reported, the partly redone one included, reads as in the
  // reference: the saved partial loss sum carried over exactly.
  const auto reference_lines = epoch_lines(reference.out);
  ASSERT_EQ(reference_lines.size(), 30u) << reference.out;
  const std::set<std::string> expected(reference_lines.begin(), reference_lines.end());
  const auto resumed_lines = epoch_lines(resumed.out);
  const auto first_epoch = static_cast<std::size_t>((step - 1) / kBatchesPerEpoch + 1);
  EXPECT_EQ(resumed_lines.size(), 30u - first_epoch + 1) << resumed.out;
  for (const auto& line : resumed_lines) {
    EXPECT_TRUE(expected.count(line)) << line << " is not in the uninterrupted run's output:\n" << reference.out;
  }
}

INSTANTIATE_TEST_SUITE_P(Modes, DigitsResumeTest, ::testing::Bool(),
                         [](const auto& p) { return std::string(p.param ? "Async" : "Sync"); });

using DigitsResumeRefusalTest = DigitsResumeBase;

TEST_F(DigitsResumeRefusalTest, ACheckpointOfAnotherModelIsRefused) {
  const std::string ckpt = path("ckpt");
  auto first = digits({"--epochs", "1", "--hidden", "64", "--checkpoint-every", "20", "--checkpoint-dir", ckpt}, job_);
  ASSERT_EQ(first.status.code, 0) << first.err;
  ASSERT_TRUE(fs::exists(fs::path(ckpt) / "step-00000000000000000040")) << "epoch 1 saves steps 20 and 40";

  auto other = digits({"--epochs", "1", "--hidden", "32", "--checkpoint-every", "20", "--checkpoint-dir", ckpt}, job_);
  EXPECT_EQ(other.status.code, 2) << other.err;
  EXPECT_NE(other.err.find("--hidden 64 (not 32)"), std::string::npos) << other.err;
  EXPECT_EQ(final_accuracy(other.out), std::nullopt) << "it must not train:\n" << other.out;
  EXPECT_TRUE(fs::exists(fs::path(ckpt) / "step-00000000000000000040")) << "a refusal leaves the checkpoints";
}

TEST_F(DigitsResumeRefusalTest, CheckpointingWithoutAFolderIsAUsageError) {
  auto r = digits({"--checkpoint-every", "20"}, job_);
  EXPECT_EQ(r.status.code, 2) << r.err;
  EXPECT_NE(r.err.find("--checkpoint-dir"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("cohort run --checkpoint-dir"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace cohort::testing
