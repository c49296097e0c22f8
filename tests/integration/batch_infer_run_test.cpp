// example-batch-infer through `cohort run`: a 2-rank run killed after its first shards, restarted,
// skips what it committed, and its output holds every row exactly once, byte for byte what an
// uninterrupted 1-rank run writes.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "test_support.hpp"

namespace cohort::testing {
namespace {

namespace fs = std::filesystem;
using std::chrono::seconds;

constexpr std::uint64_t kRows = 200000;
constexpr std::uint64_t kShardRows = 10000;
constexpr std::size_t kShards = kRows / kShardRows;

std::string read_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// The value of `key=` in rank 0's last summary line ("[rank 0] rows=... skipped=..."), if any.
std::optional<std::uint64_t> summary_value(const std::string& out, const std::string& key) {
  const auto line_at = out.rfind("[rank 0] rows=");
  if (line_at == std::string::npos) return std::nullopt;
  const std::string line = out.substr(line_at, out.find('\n', line_at) - line_at);
  const auto at = line.find(" " + key + "=");
  if (at == std::string::npos) return std::nullopt;
  std::uint64_t v = 0;
  const char* first = line.data() + at + key.size() + 2;
  if (std::from_chars(first, line.data() + line.size(), v).ec != std::errc()) return std::nullopt;
  return v;
}

std::vector<std::string> part_files(const fs::path& dir) {
  std::vector<std::string> out;
  for (const auto& e : fs::directory_iterator(dir)) {
    const std::string name = e.path().filename().string();
    if (name.starts_with("part-")) out.push_back(name);
  }
  std::sort(out.begin(), out.end());
  return out;
}

class BatchInferRunTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("cohort-batch-infer-" + std::to_string(getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override {
    fs::remove_all(dir_);
    EXPECT_TRUE(wait_for_no_processes_of_job(job_, seconds(5)).empty())
        << "processes of " << job_ << " outlived the run";
  }
  // Weights of a short training: the scores need a model, not a good one.
  void train() {
    auto r = cohort_run({"-n", "1", bin("example-digits"), "--epochs", "3", "--save-weights", weights()}, job_);
    ASSERT_EQ(r.status.code, 0) << r.err;
    ASSERT_TRUE(fs::exists(weights()));
  }
  Captured infer(int ranks, const fs::path& out, const std::vector<std::string>& extra = {}) {
    std::vector<std::string> args = {"-n",
                                     std::to_string(ranks),
                                     bin("example-batch-infer"),
                                     "--rows",
                                     std::to_string(kRows),
                                     "--shard-rows",
                                     std::to_string(kShardRows),
                                     "--weights",
                                     weights(),
                                     "--output",
                                     out.string()};
    args.insert(args.end(), extra.begin(), extra.end());
    return cohort_run(args, job_);
  }
  std::string weights() const { return (dir_ / "w.bin").string(); }

  fs::path dir_;
  std::string job_ = unique_job_id("batch-infer");
};

TEST_F(BatchInferRunTest, AKilledRunRestartsWhereItStoppedAndWritesEveryRowOnce) {
  ASSERT_NO_FATAL_FAILURE(train());
  const fs::path out = dir_ / "resumed";

  auto killed = infer(2, out, {"--stop-after-shards", "2"});
  EXPECT_NE(killed.status.code, 0) << "a rank was SIGKILLed:\n" << killed.out << killed.err;
  EXPECT_FALSE(fs::exists(out / "_SUCCESS"));
  // Round 0's allgather completes only once both ranks committed their first shard.
  EXPECT_TRUE(fs::exists(out / "part-00000.csv"));
  EXPECT_TRUE(fs::exists(out / "part-00001.csv"));
  const std::size_t committed_before = part_files(out).size();
  EXPECT_LT(committed_before, kShards);
  // What a rank killed in the middle of a write leaves; the restart must not take it for a shard.
  std::ofstream(out / "part-00019.csv.tmp-1-99999") << "190000,1,1,0.5\n";

  auto resumed = infer(2, out);
  ASSERT_EQ(resumed.status.code, 0) << resumed.out << resumed.err;
  const auto skipped = summary_value(resumed.out, "skipped");
  const auto scored = summary_value(resumed.out, "scored");
  ASSERT_TRUE(skipped && scored) << "no summary line:\n" << resumed.out;
  EXPECT_GT(*skipped, 0u) << resumed.out;
  EXPECT_EQ(*skipped, committed_before * kShardRows) << resumed.out;
  EXPECT_EQ(*skipped + *scored, kRows) << resumed.out;
  EXPECT_NE(resumed.out.find("[rank 0] shard 0/20 skipped (part-00000.csv already committed"), std::string::npos)
      << resumed.out;

  // Every row exactly once, in the part file of its shard, and nothing else in the folder.
  std::vector<int> seen(kRows, 0);
  const auto parts = part_files(out);
  ASSERT_EQ(parts.size(), kShards);
  for (const auto& name : parts) {
    std::istringstream lines(read_file(out / name));
    for (std::string line; std::getline(lines, line);) {
      std::uint64_t row = kRows;
      std::from_chars(line.data(), line.data() + line.size(), row);
      ASSERT_LT(row, kRows) << name << ": " << line;
      ++seen[row];
    }
  }
  EXPECT_EQ(std::count(seen.begin(), seen.end(), 1), static_cast<std::ptrdiff_t>(kRows))
      << "rows missing or written twice";
  for (const auto& e : fs::directory_iterator(out)) {
    EXPECT_EQ(e.path().filename().string().find(".tmp-"), std::string::npos) << e.path() << " was left behind";
  }
  EXPECT_TRUE(fs::exists(out / "_SUCCESS"));

  // An uninterrupted run of one rank writes the very same bytes.
  const fs::path fresh = dir_ / "fresh";
  auto single = infer(1, fresh);
  ASSERT_EQ(single.status.code, 0) << single.out << single.err;
  EXPECT_EQ(summary_value(single.out, "scored"), kRows) << single.out;
  ASSERT_EQ(part_files(fresh), parts);
  for (const auto& name : parts) {
    EXPECT_TRUE(read_file(out / name) == read_file(fresh / name)) << name << " differs";
  }
  for (const char* name : {"_SUCCESS", "_MANIFEST.json"}) {
    EXPECT_EQ(read_file(out / name), read_file(fresh / name)) << name;
  }

  // A run over a finished folder scores nothing.
  auto again = infer(2, out);
  ASSERT_EQ(again.status.code, 0) << again.out << again.err;
  EXPECT_EQ(summary_value(again.out, "scored"), 0u) << again.out;
}

TEST_F(BatchInferRunTest, AnOutputFolderOfAnotherRunIsRefused) {
  ASSERT_NO_FATAL_FAILURE(train());
  const fs::path out = dir_ / "out";
  ASSERT_EQ(infer(1, out).status.code, 0);
  auto other = cohort_run({"-n", "2", bin("example-batch-infer"), "--rows", std::to_string(kRows), "--shard-rows",
                           "20000", "--weights", weights(), "--output", out.string()},
                          job_);
  EXPECT_EQ(other.status.code, 2) << other.err;
  EXPECT_NE(other.err.find("shard_rows 10000, this run 20000 (--shard-rows)"), std::string::npos) << other.err;
}

TEST_F(BatchInferRunTest, WeightsOfAnotherModelAreRefusedWithBothSizes) {
  ASSERT_NO_FATAL_FAILURE(train());
  auto r = cohort_run({"-n", "2", bin("example-batch-infer"), "--hidden", "32", "--weights", weights(), "--output",
                       (dir_ / "out").string()},
                      job_);
  EXPECT_EQ(r.status.code, 2) << r.err;
  EXPECT_NE(r.err.find("has 38480 bytes, expected 19280"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace cohort::testing
