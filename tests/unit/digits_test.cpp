// The digits example's library: loader and its errors, the fixed split and portable shuffles, the
// MLP's gradient against finite differences, sharded gradients, a short training run, and the
// checkpoint state: an epoch saved midway and resumed gives the very bits of an uninterrupted one.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <numeric>
#include <set>
#include <string>
#include <vector>

#include "checkpoint_state.hpp"
#include "cohort/collectives.hpp"
#include "cohort/context.hpp"
#include "dataset.hpp"
#include "mlp.hpp"

namespace digits {
namespace {

constexpr std::size_t kRows = 1797;
// The first test rows of the fixed split, computed once by an independent reimplementation of
// SplitMix64 + Fisher-Yates with the split seed.
const std::vector<std::size_t> kPinnedTestRows = {1505, 1456, 1652, 732, 237};
const std::vector<std::size_t> kPinnedTrainRows = {64, 1204, 1582, 1299, 1062};

const Dataset& real_data() {
  static const Dataset data = [] {
    auto loaded = load_digits(default_data_path());
    EXPECT_TRUE(loaded.ok()) << loaded.status().to_string();
    return loaded.ok() ? std::move(loaded).value() : Dataset{};
  }();
  return data;
}

// A valid row: every pixel `pixel`, then `label`.
std::string row_text(int pixel = 3, int label = 7) {
  std::string s;
  for (std::size_t i = 0; i < kPixels; ++i)
    s += std::to_string(pixel) + ",";
  return s + std::to_string(label);
}

// row_text() with column `column` (1-based) replaced by `field`.
std::string row_with(std::size_t column, const std::string& field) {
  std::string s;
  for (std::size_t c = 1; c <= kPixels + 1; ++c) {
    if (c > 1) s += ",";
    s += c == column ? field : (c <= kPixels ? "3" : "7");
  }
  return s;
}

std::filesystem::path temp_file(const std::string& name, const std::string& bytes) {
  const auto path = std::filesystem::path(::testing::TempDir()) / name;
  std::ofstream(path, std::ios::binary) << bytes;
  return path;
}

TEST(DigitsData, LoadsTheRealFile) {
  const Dataset& data = real_data();
  ASSERT_EQ(data.size(), kRows);
  ASSERT_EQ(data.features.size(), kRows * kPixels);
  std::vector<int> per_label(kClasses, 0);
  for (int label : data.labels) {
    ASSERT_GE(label, 0);
    ASSERT_LT(label, static_cast<int>(kClasses));
    ++per_label[static_cast<std::size_t>(label)];
  }
  for (int n : per_label)
    EXPECT_GT(n, 170);  // about 180 of each digit
  for (double x : data.features) {
    ASSERT_GE(x, 0.0);
    ASSERT_LE(x, 1.0);
  }
  EXPECT_EQ(data.labels[0], 0);  // the first row of the file is a 0 with pixel 3 = 5
  EXPECT_DOUBLE_EQ(data.row(0)[2], 5.0 / 16.0);
}

TEST(DigitsData, AcceptsBlankLinesCrLfAndPlainFiles) {
  auto data = parse_digits(row_text() + "\r\n\r\n  \n" + row_text(16, 0) + "\r\n");
  ASSERT_TRUE(data.ok()) << data.status().to_string();
  ASSERT_EQ(data->size(), 2u);
  EXPECT_EQ(data->labels[1], 0);
  EXPECT_DOUBLE_EQ(data->row(1)[63], 1.0);

  auto plain = load_digits(temp_file("digits_plain.csv", row_text() + "\n"));
  ASSERT_TRUE(plain.ok()) << plain.status().to_string();
  EXPECT_EQ(plain->size(), 1u);
}

struct Malformed {
  std::string row;       // becomes line 2, after a good line 1
  std::string expected;  // in the error message
};

TEST(DigitsData, MalformedRowsNameTheLineAndTheProblem) {
  const std::vector<Malformed> cases = {
      {row_text().substr(2), "has 64 columns, expected 65"},
      {row_text() + ",1", "has 66 columns, expected 65"},
      {row_with(5, "17"), "pixel 5 is 17, outside 0..16"},
      {row_with(1, "-1"), "pixel 1 is -1, outside 0..16"},
      {row_with(65, "10"), "label (column 65) is 10, outside 0..9"},
      {row_with(65, "-3"), "label (column 65) is -3, outside 0..9"},
      {row_with(3, "abc"), "column 3: 'abc' is not an integer"},
      {row_with(3, "1.5"), "column 3: '1.5' is not an integer"},
      {row_with(2, ""), "column 2: '' is not an integer"},
      {row_with(9, "99999999999999999999"), "column 9: '99999999999999999999' is not an integer"},
  };
  for (const Malformed& c : cases) {
    auto data = parse_digits(row_text() + "\n" + c.row + "\n" + row_text() + "\n");
    ASSERT_FALSE(data.ok()) << c.expected;
    EXPECT_EQ(data.status().code(), cohort::Code::kDataLoss);
    EXPECT_NE(data.status().message().find("line 2: "), std::string::npos) << data.status().message();
    EXPECT_NE(data.status().message().find(c.expected), std::string::npos) << data.status().message();
  }
}

TEST(DigitsData, LineNumbersCountBlankLines) {
  auto data = parse_digits("\n\n" + row_with(4, "x") + "\n");
  ASSERT_FALSE(data.ok());
  EXPECT_NE(data.status().message().find("line 3: column 4"), std::string::npos) << data.status().message();
}

TEST(DigitsData, EmptyInputIsAnError) {
  for (const std::string text : {"", "\n\n", "  \r\n"}) {
    auto data = parse_digits(text);
    ASSERT_FALSE(data.ok());
    EXPECT_NE(data.status().message().find("no rows"), std::string::npos) << data.status().message();
  }
}

TEST(DigitsData, MissingFileNamesThePath) {
  const std::string path = "/nonexistent-digits-dir/digits.csv.gz";
  auto data = load_digits(path);
  ASSERT_FALSE(data.ok());
  EXPECT_EQ(data.status().code(), cohort::Code::kNotFound);
  EXPECT_NE(data.status().message().find(path), std::string::npos) << data.status().message();
}

TEST(DigitsData, BadRowInAFileNamesThePathAndLine) {
  auto data = load_digits(temp_file("digits_bad.csv", row_text() + "\n" + row_with(65, "12") + "\n"));
  ASSERT_FALSE(data.ok());
  EXPECT_NE(data.status().message().find("digits_bad.csv: line 2: label"), std::string::npos)
      << data.status().message();
}

TEST(DigitsData, TruncatedGzipIsDataLoss) {
  std::ifstream in(default_data_path(), std::ios::binary);
  const std::string whole((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  ASSERT_GT(whole.size(), 1000u);
  auto data = load_digits(temp_file("digits_truncated.csv.gz", whole.substr(0, whole.size() / 2)));
  ASSERT_FALSE(data.ok());
  EXPECT_EQ(data.status().code(), cohort::Code::kDataLoss) << data.status().to_string();
  EXPECT_NE(data.status().message().find("digits_truncated.csv.gz"), std::string::npos);
}

TEST(DigitsRandom, SplitMix64MatchesItsReferenceOutput) {
  // The published sequence for seed 1234567: the generator is the same on every platform.
  SplitMix64 rng(1234567);
  EXPECT_EQ(rng.next(), 6457827717110365317ULL);
  EXPECT_EQ(rng.next(), 3203168211198807973ULL);
  EXPECT_EQ(rng.next(), 9817491932198370423ULL);
  EXPECT_EQ(rng.next(), 4593380528125082431ULL);
  EXPECT_EQ(rng.next(), 16408922859458223821ULL);
}

TEST(DigitsRandom, BelowAndUnitStayInRange) {
  SplitMix64 rng(7);
  std::vector<int> seen(5, 0);
  for (int i = 0; i < 5000; ++i)
    ++seen[static_cast<std::size_t>(rng.below(5))];
  for (int n : seen)
    EXPECT_GT(n, 900);
  for (int i = 0; i < 1000; ++i) {
    const double u = rng.unit();
    ASSERT_GE(u, 0.0);
    ASSERT_LT(u, 1.0);
  }
}

TEST(DigitsSplit, IsAFixedEightyTwentyPartition) {
  const Split split = split_train_test(kRows);
  ASSERT_EQ(split.train.size(), 1437u);
  ASSERT_EQ(split.test.size(), 360u);
  std::set<std::size_t> all(split.train.begin(), split.train.end());
  all.insert(split.test.begin(), split.test.end());
  EXPECT_EQ(all.size(), kRows);
  EXPECT_EQ(*all.rbegin(), kRows - 1);

  const Split again = split_train_test(kRows);
  EXPECT_EQ(split.train, again.train);
  EXPECT_EQ(split.test, again.test);
  // Pinned: the split takes no seed, and these rows must not move between platforms or releases
  // (every reported accuracy depends on them).
  EXPECT_EQ(std::vector<std::size_t>(split.train.begin(), split.train.begin() + 5), kPinnedTrainRows);
  EXPECT_EQ(std::vector<std::size_t>(split.test.begin(), split.test.begin() + 5), kPinnedTestRows);
}

TEST(DigitsSplit, EpochOrderDependsOnSeedAndEpochOnly) {
  const Split split = split_train_test(kRows);
  const auto a = epoch_order(split.train, 1, 1);
  EXPECT_EQ(a, epoch_order(split.train, 1, 1));
  EXPECT_NE(a, epoch_order(split.train, 1, 2));
  EXPECT_NE(a, epoch_order(split.train, 2, 1));
  EXPECT_TRUE(std::is_permutation(a.begin(), a.end(), split.train.begin(), split.train.end()));
}

TEST(DigitsShard, SlicesCoverTheBatchContiguously) {
  for (std::size_t len : {0u, 1u, 2u, 3u, 5u, 31u, 32u, 33u}) {
    for (int world : {1, 2, 3, 4, 8}) {
      std::size_t next = 0;
      for (int rank = 0; rank < world; ++rank) {
        const Shard s = shard_of(len, rank, world);
        ASSERT_EQ(s.begin, next) << "len " << len << " world " << world << " rank " << rank;
        ASSERT_LE(s.begin, s.end);
        next = s.end;
      }
      ASSERT_EQ(next, len) << "len " << len << " world " << world;
    }
  }
}

TEST(DigitsMlp, InitIsDeterministicAndBounded) {
  Mlp a(64, Activation::kTanh);
  Mlp b(64, Activation::kTanh);
  Mlp c(64, Activation::kTanh);
  a.init(1);
  b.init(1);
  c.init(2);
  ASSERT_EQ(a.num_params(), 64u * 64 + 64 + 10 * 64 + 10);
  EXPECT_TRUE(std::equal(a.params().begin(), a.params().end(), b.params().begin()));
  EXPECT_FALSE(std::equal(a.params().begin(), a.params().end(), c.params().begin()));
  const double limit1 = std::sqrt(6.0 / (64 + 64));
  for (std::size_t i = 0; i < 64 * 64; ++i)
    ASSERT_LE(std::abs(a.params()[i]), limit1);
  for (std::size_t i = 64 * 64; i < 64 * 64 + 64; ++i)
    ASSERT_EQ(a.params()[i], 0.0);  // b1
}

// Sum of the losses of `n` fixed samples, for finite differences.
double total_loss(const Mlp& model, const std::vector<std::vector<double>>& xs, const std::vector<int>& labels) {
  Workspace ws(model);
  double sum = 0.0;
  for (std::size_t s = 0; s < xs.size(); ++s)
    sum += model.loss(xs[s], labels[s], ws);
  return sum;
}

class DigitsGradient : public ::testing::TestWithParam<Activation> {};

TEST_P(DigitsGradient, MatchesFiniteDifferences) {
  Mlp model(7, GetParam());
  model.init(3);
  SplitMix64 rng(11);
  // Non-zero biases, so their gradient paths are exercised with the weights'.
  for (double& p : model.params())
    p += 0.1 * (rng.unit() - 0.5);
  std::vector<std::vector<double>> xs(3, std::vector<double>(kPixels));
  for (auto& x : xs) {
    for (double& v : x)
      v = rng.unit();
  }
  const std::vector<int> labels = {2, 9, 0};

  std::vector<double> grad(model.num_params(), 0.0);
  Workspace ws(model);
  double loss = 0.0;
  for (std::size_t s = 0; s < xs.size(); ++s)
    loss += model.accumulate_gradient(xs[s], labels[s], grad, ws);
  EXPECT_NEAR(loss, total_loss(model, xs, labels), 1e-12);

  constexpr double kStep = 1e-5;
  double diff2 = 0.0;
  double sum2 = 0.0;
  const auto params = model.params();
  for (std::size_t i = 0; i < params.size(); ++i) {
    const double saved = params[i];
    params[i] = saved + kStep;
    const double up = total_loss(model, xs, labels);
    params[i] = saved - kStep;
    const double down = total_loss(model, xs, labels);
    params[i] = saved;
    const double numeric = (up - down) / (2 * kStep);
    ASSERT_NEAR(grad[i], numeric, 1e-7) << "parameter " << i;
    diff2 += (grad[i] - numeric) * (grad[i] - numeric);
    sum2 += (grad[i] + numeric) * (grad[i] + numeric);
  }
  EXPECT_LT(std::sqrt(diff2 / sum2), 1e-6);
}

INSTANTIATE_TEST_SUITE_P(Activations, DigitsGradient, ::testing::Values(Activation::kTanh, Activation::kRelu),
                         [](const auto& p) { return std::string(activation_name(p.param)); });

TEST(DigitsMlp, ShardedGradientSumsMatchOneRank) {
  // What W ranks allreduce equals what one rank computes, up to summation order.
  const Dataset& data = real_data();
  ASSERT_EQ(data.size(), kRows);
  Mlp model(64, Activation::kTanh);
  model.init(5);
  Workspace ws(model);
  const std::size_t len = 29;
  std::vector<double> whole(model.num_params(), 0.0);
  for (std::size_t i = 0; i < len; ++i)
    (void)model.accumulate_gradient(data.row(i), data.labels[i], whole, ws);
  for (int world : {2, 4, 32}) {
    std::vector<double> reduced(model.num_params(), 0.0);
    for (int rank = 0; rank < world; ++rank) {
      std::vector<double> part(model.num_params(), 0.0);
      const Shard s = shard_of(len, rank, world);
      for (std::size_t i = s.begin; i < s.end; ++i) {
        (void)model.accumulate_gradient(data.row(i), data.labels[i], part, ws);
      }
      for (std::size_t p = 0; p < part.size(); ++p)
        reduced[p] += part[p];
    }
    for (std::size_t p = 0; p < whole.size(); ++p)
      ASSERT_NEAR(reduced[p], whole[p], 1e-12) << "world " << world;
  }
}

TEST(DigitsTraining, AFewEpochsOnOneRankLearn) {
  const Dataset& data = real_data();
  ASSERT_EQ(data.size(), kRows);
  auto comm = cohort::Communicator::create(cohort::Context{});  // standalone: a world of one
  ASSERT_TRUE(comm.ok()) << comm.status().to_string();
  const Split split = split_train_test(data.size());
  Mlp model(64, Activation::kTanh);
  model.init(1);
  Sgd sgd(SgdOptions{.global_batch = 32, .lr = 0.1, .momentum = 0.0}, model.num_params());
  const double before = static_cast<double>(count_correct(model, data, split.test)) / 360.0;

  double first_loss = 0.0;
  double last_loss = 0.0;
  for (int epoch = 1; epoch <= 5; ++epoch) {
    auto loss = train_epoch(model, sgd, data, epoch_order(split.train, 1, epoch), **comm);
    ASSERT_TRUE(loss.ok()) << loss.status().to_string();
    (epoch == 1 ? first_loss : last_loss) = *loss / static_cast<double>(split.train.size());
  }
  const double after = static_cast<double>(count_correct(model, data, split.test)) / 360.0;
  EXPECT_LT(before, 0.5);
  EXPECT_GT(after, 0.9);
  EXPECT_LT(last_loss, first_loss);
}

// What Checkpointer::restore_latest would hand back for `shard` saved as checkpoint `step`.
cohort::Restored restored_from(const cohort::ShardView& shard, std::int64_t step) {
  cohort::Restored r;
  r.step = step;
  r.path = "/ckpt/step-" + std::to_string(step);
  for (const auto& t : shard.tensors) {
    const auto* first = static_cast<const std::byte*>(t.data);
    r.tensors.push_back({t.name, cohort::ByteBuffer(first, first + t.bytes)});
  }
  r.metadata_json = shard.metadata_json;
  return r;
}

bool same_bits(std::span<const double> a, std::span<const double> b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size_bytes()) == 0;
}

TEST(DigitsTraining, AnEpochResumedMidwayIsBitIdentical) {
  const Dataset& data = real_data();
  ASSERT_EQ(data.size(), kRows);
  auto comm = cohort::Communicator::create(cohort::Context{});
  ASSERT_TRUE(comm.ok()) << comm.status().to_string();
  const Split split = split_train_test(data.size());
  const auto order = epoch_order(split.train, 4, 2);
  // Momentum, so that a velocity lost on resume would show.
  const RunConfig config{.seed = 4,
                         .hidden = 16,
                         .activation = Activation::kTanh,
                         .sgd = {.global_batch = 32, .lr = 0.05, .momentum = 0.9}};
  const std::size_t batches = batches_per_epoch(order.size(), 32);
  ASSERT_EQ(batches, 45u);  // 1437 rows: 44 full batches and one of 29

  // Uninterrupted, after an epoch of warm-up so the velocity is far from zero.
  Mlp whole(config.hidden, config.activation);
  whole.init(config.seed);
  Sgd whole_sgd(config.sgd, whole.num_params());
  ASSERT_TRUE(train_epoch(whole, whole_sgd, data, epoch_order(split.train, 4, 1), **comm).ok());
  Mlp interrupted = whole;
  Sgd interrupted_sgd = whole_sgd;
  std::vector<std::size_t> seen;
  auto full = train_epoch(whole, whole_sgd, data, order, **comm, {}, [&](std::size_t next, double) {
    seen.push_back(next);
    return cohort::Status{};
  });
  ASSERT_TRUE(full.ok()) << full.status().to_string();
  ASSERT_EQ(seen.size(), batches);
  EXPECT_EQ(seen.front(), 1u);
  EXPECT_EQ(seen.back(), batches);

  // Stopped after batch 17 (the callback's error ends the epoch), saved, loaded into a new model.
  Progress at{.epoch = 2, .batch = 0, .global_step = static_cast<std::int64_t>(batches), .epoch_loss_sum = 0.0};
  auto stopped = train_epoch(interrupted, interrupted_sgd, data, order, **comm, {}, [&](std::size_t next, double loss) {
    at.batch = next;
    at.epoch_loss_sum = loss;
    ++at.global_step;
    return next == 17 ? cohort::Status(cohort::Code::kCanceled, "crash") : cohort::Status{};
  });
  ASSERT_EQ(stopped.status().code(), cohort::Code::kCanceled);
  const cohort::Restored saved = restored_from(make_shard(interrupted, interrupted_sgd, config, at), at.global_step);
  Mlp resumed(config.hidden, config.activation);
  Sgd resumed_sgd(config.sgd, resumed.num_params());
  auto progress = load_shard(saved, config, resumed, resumed_sgd, order.size());
  ASSERT_TRUE(progress.ok()) << progress.status().to_string();
  EXPECT_EQ(progress->epoch, 2);
  EXPECT_EQ(progress->batch, 17u);
  EXPECT_EQ(progress->global_step, static_cast<std::int64_t>(batches + 17));
  EXPECT_EQ(std::memcmp(&progress->epoch_loss_sum, &at.epoch_loss_sum, sizeof(double)), 0);

  auto rest = train_epoch(resumed, resumed_sgd, data, order, **comm,
                          {.batch = progress->batch, .loss = progress->epoch_loss_sum});
  ASSERT_TRUE(rest.ok()) << rest.status().to_string();
  EXPECT_EQ(std::memcmp(&*rest, &*full, sizeof(double)), 0) << *rest << " vs " << *full;
  EXPECT_TRUE(same_bits(resumed.params(), whole.params()));
  EXPECT_TRUE(same_bits(resumed_sgd.velocity(), whole_sgd.velocity()));

  // Resumed after the epoch's last batch: nothing left to train, the loss comes back as saved.
  auto none = train_epoch(resumed, resumed_sgd, data, order, **comm, {.batch = batches, .loss = 1.5});
  ASSERT_TRUE(none.ok());
  EXPECT_EQ(*none, 1.5);
  EXPECT_TRUE(same_bits(resumed.params(), whole.params()));
}

TEST(DigitsCheckpointState, MetadataRoundTripsExactly) {
  const RunConfig config{.seed = 18446744073709551615ULL,
                         .hidden = 64,
                         .activation = Activation::kRelu,
                         .sgd = {.global_batch = 32, .lr = 0.1, .momentum = 0.3}};
  const Progress p{.epoch = 12, .batch = 5, .global_step = 500, .epoch_loss_sum = 0.1 + 0.2};
  auto back = parse_metadata(metadata_json(config, p), config);
  ASSERT_TRUE(back.ok()) << back.status().to_string();
  EXPECT_EQ(back->epoch, 12);
  EXPECT_EQ(back->batch, 5u);
  EXPECT_EQ(back->global_step, 500);
  EXPECT_EQ(std::memcmp(&back->epoch_loss_sum, &p.epoch_loss_sum, sizeof(double)), 0);
}

TEST(DigitsCheckpointState, RefusesACheckpointOfOtherFlagsNamingThem) {
  const RunConfig saved{.seed = 1, .hidden = 64, .activation = Activation::kTanh, .sgd = {}};
  const std::string json = metadata_json(saved, Progress{});
  RunConfig now = saved;
  now.hidden = 32;
  now.sgd.lr = 0.2;
  auto refused = parse_metadata(json, now);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), cohort::Code::kInvalidArgument);
  const std::string& m = refused.status().message();
  EXPECT_NE(m.find("--hidden 64 (not 32)"), std::string::npos) << m;
  EXPECT_NE(m.find("--lr 0.1 (not 0.2)"), std::string::npos) << m;
  EXPECT_EQ(m.find("--seed"), std::string::npos) << m;
  EXPECT_NE(m.find("--checkpoint-dir"), std::string::npos) << "says what to do: " << m;

  now = saved;
  now.activation = Activation::kRelu;
  auto other = parse_metadata(json, now);
  ASSERT_FALSE(other.ok());
  EXPECT_NE(other.status().message().find("--activation \"tanh\" (not \"relu\")"), std::string::npos)
      << other.status().message();
}

TEST(DigitsCheckpointState, MalformedMetadataIsDataLossNamingTheField) {
  const RunConfig config;
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"not json", "not a JSON object"},
      {"[1, 2]", "not a JSON object"},
      {R"({"format": "other/2"})", "other/2"},
      {R"({"format": "example-digits/1"})", "\"seed\""},
      {R"({"format": "example-digits/1", "seed": "1"})", "\"seed\" has the wrong type"},
  };
  for (const auto& [json, expected] : cases) {
    auto p = parse_metadata(json, config);
    ASSERT_FALSE(p.ok()) << json;
    EXPECT_EQ(p.status().code(), cohort::Code::kDataLoss) << json;
    EXPECT_NE(p.status().message().find(expected), std::string::npos) << p.status().message();
  }
}

TEST(DigitsCheckpointState, ABadShardLeavesTheModelAlone) {
  const RunConfig config{.seed = 1, .hidden = 8, .activation = Activation::kTanh, .sgd = {}};
  Mlp model(config.hidden, config.activation);
  model.init(1);
  Sgd sgd(config.sgd, model.num_params());
  const Progress p{.epoch = 2, .batch = 3, .global_step = 48, .epoch_loss_sum = 1.0};  // 45 + 3
  const cohort::Restored good = restored_from(make_shard(model, sgd, config, p), 48);
  Mlp target(config.hidden, config.activation);
  Sgd target_sgd(config.sgd, target.num_params());
  ASSERT_TRUE(load_shard(good, config, target, target_sgd, 1437).ok());
  EXPECT_TRUE(same_bits(target.params(), model.params()));

  Mlp untouched(config.hidden, config.activation);
  cohort::Restored short_velocity = good;
  short_velocity.tensors[1].bytes.pop_back();
  auto bad = load_shard(short_velocity, config, untouched, target_sgd, 1437);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), cohort::Code::kDataLoss);
  EXPECT_NE(bad.status().message().find("\"velocity\""), std::string::npos) << bad.status().message();
  EXPECT_TRUE(std::all_of(untouched.params().begin(), untouched.params().end(), [](double v) { return v == 0.0; }));

  cohort::Restored other_step = good;
  other_step.step = 60;
  auto contradicts = load_shard(other_step, config, untouched, target_sgd, 1437);
  ASSERT_FALSE(contradicts.ok());
  EXPECT_EQ(contradicts.status().code(), cohort::Code::kDataLoss);
  EXPECT_NE(contradicts.status().message().find("contradicts step 60"), std::string::npos);
}

TEST(DigitsMlp, SaveParamsWritesLittleEndianFloat64InLayoutOrder) {
  Mlp model(3, Activation::kRelu);
  model.init(9);
  const auto path = std::filesystem::path(::testing::TempDir()) / "digits_weights.bin";
  ASSERT_TRUE(save_params(model, path).ok());
  std::ifstream in(path, std::ios::binary);
  const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  ASSERT_EQ(bytes.size(), model.num_params() * 8);
  for (std::size_t i = 0; i < model.num_params(); ++i) {
    std::uint64_t bits = 0;
    for (std::size_t b = 8; b-- > 0;)
      bits = (bits << 8) | static_cast<unsigned char>(bytes[i * 8 + b]);
    double v = 0.0;
    std::memcpy(&v, &bits, sizeof v);
    ASSERT_EQ(v, model.params()[i]) << "parameter " << i;
  }
  auto bad = save_params(model, "/nonexistent-digits-dir/w.bin");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.message().find("/nonexistent-digits-dir/w.bin"), std::string::npos);
}

}  // namespace
}  // namespace digits
