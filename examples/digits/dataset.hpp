// The digits data set (8x8 images of handwritten digits, 64 pixels 0..16 and a label 0..9 per
// CSV row) and the randomness the example needs: a fixed train/test split and per-epoch orders.
//
// Every shuffle here uses SplitMix64 and our own Fisher-Yates rather than std::shuffle or the
// std::*_distribution classes: the standard fixes neither algorithm, so libstdc++ and libc++
// would split and order the data differently, and runs on different machines could not be
// compared.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <span>
#include <string_view>
#include <vector>

#include "cohort/status.hpp"

namespace digits {

inline constexpr std::size_t kPixels = 64;   // an 8x8 image
inline constexpr std::size_t kClasses = 10;  // the digits 0..9
inline constexpr int kMaxPixel = 16;         // pixels are counts of set bits in 4x4 blocks

struct Dataset {
  std::vector<double> features;  // size() rows of kPixels, each scaled to [0, 1] by 1/kMaxPixel
  std::vector<int> labels;       // 0..kClasses-1

  std::size_t size() const noexcept { return labels.size(); }
  // REQUIRES: i < size().
  std::span<const double> row(std::size_t i) const noexcept {
    return std::span<const double>(features).subspan(i * kPixels, kPixels);
  }
};

// Parses CSV text: one row per line, kPixels integers 0..16 then a label 0..9, comma-separated,
// no header. Blank lines are skipped; "\r\n" endings are accepted. The first bad line gives a
// DataLoss status naming its line number (1-based) and what is wrong with it.
cohort::Result<Dataset> parse_digits(std::string_view text);

// Reads a gzip-compressed (or plain) CSV file and parses it as parse_digits does. Errors name the
// path: NotFound/PermissionDenied when it cannot be opened, DataLoss when it is corrupt or bad.
cohort::Result<Dataset> load_digits(const std::filesystem::path& path);

// The data the build knows about: the source tree's examples/data/digits.csv.gz when it exists
// (a build tree, the tests), else the installed copy beside the running program
// (<prefix>/bin/../share/cohort/examples/), else the source path again so an error names it.
std::filesystem::path default_data_path();

// A 64-bit generator with a published reference output (Steele, Lea, Flood 2014), small enough to
// specify here so every platform draws the same numbers.
class SplitMix64 {
 public:
  explicit SplitMix64(std::uint64_t seed) noexcept : state_(seed) {}
  std::uint64_t next() noexcept;
  // Uniform on [0, bound) without modulo bias. REQUIRES: bound > 0.
  std::uint64_t below(std::uint64_t bound) noexcept;
  // Uniform on [0, 1) with 53 random bits.
  double unit() noexcept;

 private:
  std::uint64_t state_;
};

// A seed for stream `stream` of `seed` (weight init, epoch 1, epoch 2, ...), so that nearby seeds
// and streams give unrelated sequences.
std::uint64_t derive_seed(std::uint64_t seed, std::uint64_t stream) noexcept;

// Fisher-Yates with `rng`: the same permutation for the same generator state on every platform.
void shuffle(std::span<std::size_t> items, SplitMix64& rng) noexcept;

struct Split {
  std::vector<std::size_t> train;  // row indices, the first 80% of a fixed permutation
  std::vector<std::size_t> test;   // the remaining 20%
};

// The fixed 80/20 split of `rows` rows (1437/360 for the 1797 digits). It depends on nothing but
// `rows`: training seeds must not change which rows are tested, or accuracies of runs with
// different seeds would not be comparable.
Split split_train_test(std::size_t rows);

// This epoch's order of the train rows: a shuffle seeded by (seed, epoch), the same on every rank.
std::vector<std::size_t> epoch_order(std::span<const std::size_t> train, std::uint64_t seed, int epoch);

}  // namespace digits
