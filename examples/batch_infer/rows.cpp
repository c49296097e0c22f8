#include "rows.hpp"

#include <algorithm>
#include <cassert>
#include <cmath>

namespace batch_infer {
namespace {

// Keeps these streams apart from the training's (digits uses seed 1.. with streams 0, 1, ...).
constexpr std::uint64_t kRowSeed = 0x6261746368ULL;  // "batch"
// Each pixel takes 4 bits of a draw: 0 moves it down by one, 1 up by one, 2..15 keep it, so about
// one pixel in eight changes: rows stay recognisable digits, yet no two copies of a source row
// are alike.
constexpr int kBitsPerPixel = 4;
constexpr std::size_t kPixelsPerDraw = 64 / kBitsPerPixel;
static_assert(digits::kPixels % kPixelsPerDraw == 0);

}  // namespace

RowGenerator::RowGenerator(const digits::Dataset& data) : labels_(data.labels) {
  assert(data.size() > 0);
  pixels_.reserve(data.features.size());
  // The loader stored v / kMaxPixel, exact for a power of two, so rounding gives v back.
  for (double f : data.features)
    pixels_.push_back(static_cast<std::uint8_t>(std::lround(f * digits::kMaxPixel)));
}

Row RowGenerator::row(std::uint64_t i) const noexcept {
  const std::size_t source = static_cast<std::size_t>(i % labels_.size());
  const std::uint8_t* in = pixels_.data() + source * digits::kPixels;
  Row out;
  out.label = labels_[source];
  digits::SplitMix64 rng(digits::derive_seed(kRowSeed, i));
  for (std::size_t first = 0; first < digits::kPixels; first += kPixelsPerDraw) {
    std::uint64_t bits = rng.next();
    for (std::size_t p = first; p < first + kPixelsPerDraw; ++p, bits >>= kBitsPerPixel) {
      const unsigned nibble = static_cast<unsigned>(bits & 0xF);
      int v = in[p];
      if (nibble == 0) v = std::max(v - 1, 0);
      if (nibble == 1) v = std::min(v + 1, digits::kMaxPixel);
      out.pixels[p] = static_cast<std::uint8_t>(v);
    }
  }
  return out;
}

std::uint64_t RowGenerator::fingerprint() const noexcept {
  std::uint64_t h = 0xCBF29CE484222325ULL;
  const auto mix = [&h](std::uint64_t byte) {
    h ^= byte;
    h *= 0x100000001B3ULL;
  };
  for (std::uint8_t v : pixels_)
    mix(v);
  for (int label : labels_)
    mix(static_cast<std::uint64_t>(label));
  return h;
}

void to_features(const Row& row, std::span<double> x) noexcept {
  assert(x.size() == digits::kPixels);
  for (std::size_t p = 0; p < digits::kPixels; ++p)
    x[p] = static_cast<double>(row.pixels[p]) / digits::kMaxPixel;
}

}  // namespace batch_infer
