// example-batch-infer's pure parts: generated rows, the shard plan, the shard files (commit,
// skip, stale temporaries, verification), the run manifest and the weights file.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <tuple>
#include <vector>

#include "dataset.hpp"
#include "mlp.hpp"
#include "rows.hpp"
#include "run_files.hpp"
#include "scoring.hpp"
#include "shard_files.hpp"
#include "shard_plan.hpp"
#include "shard_worker.hpp"

namespace batch_infer {
namespace {

namespace fs = std::filesystem;

const digits::Dataset& digits_data() {
  static const digits::Dataset data = [] {
    auto d = digits::load_digits(digits::default_data_path());
    EXPECT_TRUE(d.ok()) << d.status().to_string();
    return d.ok() ? *d : digits::Dataset{};
  }();
  return data;
}

std::string read_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

void write_file(const fs::path& path, const std::string& text) {
  std::ofstream(path, std::ios::binary) << text;
}

digits::Mlp trained_like_model() {
  digits::Mlp model(64, digits::Activation::kTanh);
  model.init(7);
  return model;
}

class TempDir : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    dir_ = fs::temp_directory_path() /
           ("cohort-batch-infer-" + std::to_string(getpid()) + "-" + info->test_suite_name() + "-" + info->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::vector<std::string> names() const {
    std::vector<std::string> out;
    for (const auto& e : fs::directory_iterator(dir_))
      out.push_back(e.path().filename().string());
    std::sort(out.begin(), out.end());
    return out;
  }
  fs::path dir_;
};

TEST(BatchInferRowGeneratorTest, RowsAreDeterministicInRangeAndKeepTheSourceLabel) {
  const auto& data = digits_data();
  ASSERT_GT(data.size(), 0u);
  const RowGenerator gen(data);
  const RowGenerator again(data);
  EXPECT_EQ(gen.source_rows(), data.size());
  EXPECT_EQ(gen.fingerprint(), again.fingerprint());
  std::size_t changed = 0;
  for (std::uint64_t i : {std::uint64_t{0}, std::uint64_t{1}, std::uint64_t{1796}, std::uint64_t{1797},
                          std::uint64_t{123456}, std::uint64_t{999999}, std::uint64_t{1} << 39}) {
    const Row a = gen.row(i);
    const Row b = again.row(i);
    EXPECT_EQ(a.pixels, b.pixels) << "row " << i;
    EXPECT_EQ(a.label, b.label) << "row " << i;
    const std::size_t source = i % data.size();
    EXPECT_EQ(a.label, data.labels[source]) << "row " << i;
    for (std::size_t p = 0; p < digits::kPixels; ++p) {
      ASSERT_LE(a.pixels[p], digits::kMaxPixel) << "row " << i << " pixel " << p;
      const int original = static_cast<int>(data.row(source)[p] * digits::kMaxPixel + 0.5);
      EXPECT_LE(std::abs(a.pixels[p] - original), 1) << "row " << i << " pixel " << p;
      changed += a.pixels[p] != original;
    }
  }
  // About one pixel in eight moves (less at 0 and 16, which clamp): rows are perturbed, not noise.
  EXPECT_GT(changed, 7u * 64 / 20);
  EXPECT_LT(changed, 7u * 64 / 4);
  // Two copies of one source row differ.
  EXPECT_NE(gen.row(5).pixels, gen.row(5 + data.size()).pixels);
}

TEST(BatchInferRowGeneratorTest, FeaturesAreScaledPixels) {
  const RowGenerator gen(digits_data());
  const Row row = gen.row(42);
  std::array<double, digits::kPixels> x{};
  to_features(row, x);
  for (std::size_t p = 0; p < digits::kPixels; ++p) {
    EXPECT_EQ(x[p], row.pixels[p] / 16.0);
    EXPECT_GE(x[p], 0.0);
    EXPECT_LE(x[p], 1.0);
  }
}

// (rows, shard_rows, world)
class BatchInferShardPlanTest : public ::testing::TestWithParam<std::tuple<std::uint64_t, std::uint64_t, int>> {};

TEST_P(BatchInferShardPlanTest, EveryRowBelongsToExactlyOneShardOfOneRank) {
  const auto [rows, shard_rows, world] = GetParam();
  const ShardPlan plan(rows, shard_rows);
  EXPECT_EQ(plan.num_shards(), (rows + shard_rows - 1) / shard_rows);
  std::vector<int> seen(rows, 0);
  std::vector<int> shard_seen(plan.num_shards(), 0);
  std::size_t from_rounds = 0;
  for (int rank = 0; rank < world; ++rank) {
    for (std::size_t s : plan.shards_of(rank, world)) {
      ASSERT_LT(s, plan.num_shards());
      EXPECT_EQ(ShardPlan::owner(s, world), rank);
      ++shard_seen[s];
      const ShardRange r = plan.shard(s);
      EXPECT_EQ(r.index, s);
      EXPECT_EQ(r.begin, s * shard_rows);
      EXPECT_GT(r.rows(), 0u);
      EXPECT_LE(r.rows(), shard_rows);
      for (std::uint64_t i = r.begin; i < r.end; ++i)
        ++seen[i];
    }
    for (std::size_t round = 0; round < plan.rounds(world); ++round)
      from_rounds += round * world + rank < plan.num_shards();
  }
  EXPECT_TRUE(std::all_of(seen.begin(), seen.end(), [](int n) { return n == 1; })) << "a row scored twice or never";
  EXPECT_TRUE(std::all_of(shard_seen.begin(), shard_seen.end(), [](int n) { return n == 1; }));
  EXPECT_EQ(from_rounds, plan.num_shards()) << "the rounds of the main loop visit every shard once";
  ASSERT_GT(plan.num_shards(), 0u);
  EXPECT_EQ(plan.shard(plan.num_shards() - 1).end, rows);
}

INSTANTIATE_TEST_SUITE_P(Sizes, BatchInferShardPlanTest,
                         ::testing::Values(std::make_tuple(1, 1, 1), std::make_tuple(1, 65536, 4),
                                           std::make_tuple(100, 10, 1), std::make_tuple(100, 10, 3),
                                           std::make_tuple(101, 10, 2), std::make_tuple(199, 7, 4),
                                           std::make_tuple(200000, 10000, 2), std::make_tuple(1000000, 65536, 3),
                                           std::make_tuple(5, 10, 8)));

TEST(BatchInferShardFilesTest, Names) {
  EXPECT_EQ(shard_file_name(3), "part-00003.csv");
  EXPECT_EQ(shard_file_name(123456), "part-123456.csv");
  EXPECT_TRUE(is_temp_file_name("part-00003.csv.tmp-1-4242"));
  EXPECT_TRUE(is_temp_file_name("_SUCCESS.tmp-0-1"));
  EXPECT_FALSE(is_temp_file_name("part-00003.csv"));
}

using BatchInferShardFilesDirTest = TempDir;

TEST_F(BatchInferShardFilesDirTest, CommitLeavesOnlyTheFinalFile) {
  ASSERT_TRUE(commit_file(dir_, "part-00000.csv", "0,1,1,0.5\n").ok());
  ASSERT_TRUE(commit_file(dir_, "part-00000.csv", "0,1,1,0.75\n").ok()) << "replaces";
  EXPECT_EQ(names(), std::vector<std::string>{"part-00000.csv"});
  EXPECT_EQ(read_file(dir_ / "part-00000.csv"), "0,1,1,0.75\n");
}

TEST_F(BatchInferShardFilesDirTest, CommitIntoAMissingFolderNamesTheFile) {
  const auto s = commit_file(dir_ / "missing", "part-00000.csv", "x");
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.to_string().find("missing/part-00000.csv.tmp-"), std::string::npos) << s.to_string();
}

TEST_F(BatchInferShardFilesDirTest, RemoveTempFilesKeepsCommittedOnes) {
  write_file(dir_ / "part-00000.csv", "committed");
  write_file(dir_ / "part-00001.csv.tmp-1-99999", "half a shard");
  write_file(dir_ / "_SUCCESS.tmp-0-12", "{");
  auto removed = remove_temp_files(dir_);
  ASSERT_TRUE(removed.ok()) << removed.status().to_string();
  EXPECT_EQ(*removed, 2u);
  EXPECT_EQ(names(), std::vector<std::string>{"part-00000.csv"});
}

TEST_F(BatchInferShardFilesDirTest, VerifyAcceptsItsOwnShardAndCountsCorrectRows) {
  const ShardRange range{.index = 2, .begin = 20, .end = 23};
  write_file(dir_ / "p", "20,1,1,0.900000\n21,2,3,0.400000\n22,9,9,1.000000\n");
  auto tally = verify_shard_file(dir_ / "p", range);
  ASSERT_TRUE(tally.ok()) << tally.status().to_string();
  EXPECT_EQ(tally->rows, 3u);
  EXPECT_EQ(tally->correct, 2u);
}

TEST_F(BatchInferShardFilesDirTest, VerifyRefusesABadShardNamingFileAndLine) {
  const ShardRange range{.index = 2, .begin = 20, .end = 23};
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"20,1,1,0.900000\n21,2,3,0.400000\n", "line 3"},                               // short
      {"20,1,1,0.900000\n21,2,3,0.400000\n22,9,9,1.0", "line 3"},                     // truncated line
      {"20,1,1,0.900000\n22,2,3,0.400000\n22,9,9,1.000000\n", "line 2"},              // wrong row
      {"20,1,1,0.900000\n21,2,3,0.400000\n22,9,9,1.000000\n23,1,1,0.5\n", "line 4"},  // long
      {"20,1,11,0.900000\n21,2,3,0.400000\n22,9,9,1.000000\n", "line 1"},             // bad class
  };
  for (const auto& [text, where] : cases) {
    write_file(dir_ / "part-00002.csv", text);
    auto tally = verify_shard_file(dir_ / "part-00002.csv", range);
    ASSERT_FALSE(tally.ok()) << text;
    EXPECT_EQ(tally.status().code(), cohort::Code::kDataLoss);
    const std::string msg = tally.status().to_string();
    EXPECT_NE(msg.find((dir_ / "part-00002.csv").string()), std::string::npos) << msg;
    EXPECT_NE(msg.find(where), std::string::npos) << msg;
  }
}

using BatchInferShardWorkerTest = TempDir;

TEST_F(BatchInferShardWorkerTest, ScoresCommitsThenSkipsWhatIsCommitted) {
  const RowGenerator rows(digits_data());
  const digits::Mlp model = trained_like_model();
  const ShardRange range{.index = 1, .begin = 100, .end = 150};
  // A temporary a killed run left for this very shard is not mistaken for it.
  write_file(dir_ / (shard_file_name(1) + ".tmp-99999"), "100,0,0,0.1\n");

  auto first = process_shard(model, rows, range, dir_);
  ASSERT_TRUE(first.ok()) << first.status().to_string();
  EXPECT_EQ(first->state, ShardState::kCommitted);
  EXPECT_EQ(first->tally.rows, 50u);
  const std::string text = read_file(dir_ / "part-00001.csv");
  EXPECT_EQ(std::count(text.begin(), text.end(), '\n'), 50);
  EXPECT_EQ(text.substr(0, 4), "100,");

  auto second = process_shard(model, rows, range, dir_);
  ASSERT_TRUE(second.ok()) << second.status().to_string();
  EXPECT_EQ(second->state, ShardState::kSkipped);
  EXPECT_EQ(second->tally.rows, first->tally.rows);
  EXPECT_EQ(second->tally.correct, first->tally.correct) << "the tally read back equals the one scored";
  EXPECT_EQ(read_file(dir_ / "part-00001.csv"), text) << "a skipped shard is not rewritten";
}

TEST_F(BatchInferShardWorkerTest, ACommittedShardOfAnotherPlanIsAnError) {
  const RowGenerator rows(digits_data());
  const digits::Mlp model = trained_like_model();
  ASSERT_TRUE(process_shard(model, rows, {.index = 0, .begin = 0, .end = 10}, dir_).ok());
  auto other = process_shard(model, rows, {.index = 0, .begin = 0, .end = 20}, dir_);
  ASSERT_FALSE(other.ok());
  EXPECT_NE(other.status().to_string().find("part-00000.csv"), std::string::npos) << other.status().to_string();
}

TEST(BatchInferScoringTest, ScoresAgreeWithTheModelAndFilesAreDeterministic) {
  const RowGenerator rows(digits_data());
  const digits::Mlp model = trained_like_model();
  digits::Workspace ws(model);
  for (std::uint64_t i = 0; i < 50; ++i) {
    const Row row = rows.row(i);
    std::array<double, digits::kPixels> x{};
    to_features(row, x);
    const Score s = score_row(model, row, ws);
    EXPECT_EQ(s.predicted, model.predict(x, ws));
    EXPECT_GT(s.confidence, 0.1) << "the top class of 10 has at least 1/10";
    EXPECT_LE(s.confidence, 1.0);
  }
  std::uint64_t c1 = 0;
  std::uint64_t c2 = 0;
  const ShardRange range{.index = 0, .begin = 1000, .end = 1100};
  EXPECT_EQ(score_shard(model, rows, range, c1), score_shard(model, rows, range, c2));
  EXPECT_EQ(c1, c2);
}

using BatchInferWeightsTest = TempDir;

TEST_F(BatchInferWeightsTest, TheFileExampleDigitsWritesLoadsBack) {
  const digits::Mlp model = trained_like_model();
  ASSERT_TRUE(digits::save_params(model, dir_ / "w.bin").ok());
  auto loaded = load_weights(dir_ / "w.bin", 64, digits::Activation::kTanh);
  ASSERT_TRUE(loaded.ok()) << loaded.status().to_string();
  EXPECT_TRUE(std::equal(model.params().begin(), model.params().end(), loaded->params().begin()));
  EXPECT_EQ(fingerprint(*loaded), fingerprint(model));
}

TEST_F(BatchInferWeightsTest, AFileOfTheWrongSizeIsRefusedWithBothSizes) {
  const digits::Mlp model = trained_like_model();  // 64 hidden: 4810 parameters, 38480 bytes
  ASSERT_TRUE(digits::save_params(model, dir_ / "w.bin").ok());
  auto loaded = load_weights(dir_ / "w.bin", 32, digits::Activation::kTanh);
  ASSERT_FALSE(loaded.ok());
  EXPECT_EQ(loaded.status().code(), cohort::Code::kInvalidArgument);
  const std::string msg = loaded.status().to_string();
  EXPECT_NE(msg.find("has 38480 bytes"), std::string::npos) << msg;
  EXPECT_NE(msg.find("expected 19280"), std::string::npos) << msg;  // 32*64 + 32 + 10*32 + 10 = 2410 doubles
  EXPECT_NE(msg.find("--hidden"), std::string::npos) << msg;

  write_file(dir_ / "short.bin", std::string(100, '\0'));
  auto truncated = load_weights(dir_ / "short.bin", 64, digits::Activation::kTanh);
  ASSERT_FALSE(truncated.ok());
  EXPECT_NE(truncated.status().to_string().find("has 100 bytes, expected 38480"), std::string::npos)
      << truncated.status().to_string();
}

TEST_F(BatchInferWeightsTest, AMissingFileNamesIt) {
  auto loaded = load_weights(dir_ / "none.bin", 64, digits::Activation::kTanh);
  ASSERT_FALSE(loaded.ok());
  EXPECT_EQ(loaded.status().code(), cohort::Code::kNotFound);
  EXPECT_NE(loaded.status().to_string().find("none.bin"), std::string::npos) << loaded.status().to_string();
}

using BatchInferManifestTest = TempDir;

TEST_F(BatchInferManifestTest, WrittenOnceThenCheckedFieldByField) {
  RunManifest m{.rows = 1000,
                .shard_rows = 100,
                .hidden = 64,
                .activation = "tanh",
                .weights = hex64(1),
                .source_rows = 1797,
                .source = hex64(2)};
  ASSERT_TRUE(check_or_write_manifest(dir_, m).ok());
  EXPECT_EQ(read_file(dir_ / kManifestFile), encode(m));
  EXPECT_TRUE(check_or_write_manifest(dir_, m).ok()) << "the same run again";
  RunManifest other = m;
  other.shard_rows = 200;
  const auto s = check_or_write_manifest(dir_, other);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.code(), cohort::Code::kInvalidArgument);
  EXPECT_NE(s.to_string().find("shard_rows 100, this run 200 (--shard-rows)"), std::string::npos) << s.to_string();
  other = m;
  other.weights = hex64(3);
  EXPECT_NE(check_or_write_manifest(dir_, other).to_string().find("--weights"), std::string::npos);
}

TEST(BatchInferRunFilesTest, SuccessJson) {
  EXPECT_EQ(success_json(200, 20, 150), "{\"rows\":200,\"shards\":20,\"correct\":150,\"accuracy\":0.75}\n");
  EXPECT_EQ(hex64(0xabc), "0000000000000abc");
}

}  // namespace
}  // namespace batch_infer
