// The rows example-batch-infer scores: any number of them, generated from the digits data.
//
// Row i is digits row (i mod data.size()) with a few of its pixels moved by one (clamped to
// 0..kMaxPixel), drawn from a SplitMix64 seeded by i alone, and keeps that row's label. So row i
// is the same whichever rank generates it, in whatever order, and a restarted run regenerates
// exactly the rows it skipped before.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "dataset.hpp"

namespace batch_infer {

struct Row {
  std::array<std::uint8_t, digits::kPixels> pixels{};  // 0..digits::kMaxPixel
  int label = 0;                                       // the source row's, 0..digits::kClasses-1
};

class RowGenerator {
 public:
  // Keeps the pixels of `data` as integers again. REQUIRES: data.size() > 0.
  explicit RowGenerator(const digits::Dataset& data);

  std::size_t source_rows() const noexcept { return labels_.size(); }
  // Row `i`: a pure function of i and the source data.
  Row row(std::uint64_t i) const noexcept;
  // FNV-1a 64 of the source pixels and labels, which names the data in the run manifest.
  std::uint64_t fingerprint() const noexcept;

 private:
  std::vector<std::uint8_t> pixels_;  // source_rows() x kPixels
  std::vector<int> labels_;
};

// The model's input for `row`: each pixel scaled by 1/kMaxPixel, as digits::load_digits does.
// REQUIRES: x.size() == digits::kPixels.
void to_features(const Row& row, std::span<double> x) noexcept;

}  // namespace batch_infer
