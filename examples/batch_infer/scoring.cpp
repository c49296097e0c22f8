#include "scoring.hpp"

#include <array>
#include <bit>
#include <charconv>
#include <cmath>
#include <fstream>
#include <iterator>
#include <vector>

namespace batch_infer {
namespace {

constexpr std::size_t kBytesPerParam = sizeof(double);
// The longest field: a 20-digit row number (a confidence is "0.xxxxxx" or "1.000000").
constexpr std::size_t kMaxNumberBytes = 32;

}  // namespace

cohort::Result<digits::Mlp> load_weights(const std::filesystem::path& path, std::size_t hidden,
                                         digits::Activation activation) {
  digits::Mlp model(hidden, activation);
  std::ifstream in(path, std::ios::binary);
  if (!in) return cohort::errno_status("open", errno, path.string()).with_context("--weights");
  const std::vector<char> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (in.bad()) return cohort::errno_status("read", errno, path.string()).with_context("--weights");
  const std::size_t expected = model.num_params() * kBytesPerParam;
  if (bytes.size() != expected) {
    return cohort::invalid_argument(
        "--weights " + path.string() + " has " + std::to_string(bytes.size()) + " bytes, expected " +
        std::to_string(expected) + " (" + std::to_string(model.num_params()) + " float64 parameters of a 64-" +
        std::to_string(hidden) + "-10 model): pass the --hidden of the training, or the file that " +
        "`example-digits --save-weights` wrote");
  }
  const auto params = model.params();
  for (std::size_t i = 0; i < params.size(); ++i) {
    std::uint64_t bits = 0;
    for (std::size_t b = 0; b < kBytesPerParam; ++b)
      bits |= std::uint64_t{static_cast<unsigned char>(bytes[i * kBytesPerParam + b])} << (8 * b);
    params[i] = std::bit_cast<double>(bits);
    if (!std::isfinite(params[i])) {
      return cohort::Status(cohort::Code::kDataLoss,
                            "--weights " + path.string() + ": parameter " + std::to_string(i) +
                                " is not finite: the training diverged or the file is corrupt");
    }
  }
  return model;
}

std::uint64_t fingerprint(const digits::Mlp& model) noexcept {
  std::uint64_t h = 0xCBF29CE484222325ULL;
  for (double v : model.params()) {
    const auto bits = std::bit_cast<std::uint64_t>(v);
    for (int b = 0; b < 8; ++b) {
      h ^= (bits >> (8 * b)) & 0xFF;
      h *= 0x100000001B3ULL;
    }
  }
  return h;
}

Score score_row(const digits::Mlp& model, const Row& row, digits::Workspace& ws) {
  std::array<double, digits::kPixels> x{};
  to_features(row, x);
  Score s;
  s.predicted = model.predict(x, ws);
  // The loss of the predicted class is log-sum-exp(logits) - its logit, so exp(-loss) is its
  // softmax probability. It costs a second forward pass: digits::Mlp exposes no logits.
  s.confidence = std::exp(-model.loss(x, s.predicted, ws));
  return s;
}

std::string score_shard(const digits::Mlp& model, const RowGenerator& rows, const ShardRange& range,
                        std::uint64_t& correct) {
  std::string out;
  out.reserve(static_cast<std::size_t>(range.rows()) * 24);
  digits::Workspace ws(model);
  std::array<char, kMaxNumberBytes> number{};
  // to_chars, unlike printf, ignores the locale: the files are the same on every host.
  const auto append = [&](auto value, auto... format) {
    const auto r = std::to_chars(number.data(), number.data() + number.size(), value, format...);
    out.append(number.data(), r.ptr);
  };
  for (std::uint64_t i = range.begin; i < range.end; ++i) {
    const Row row = rows.row(i);
    const Score s = score_row(model, row, ws);
    if (s.predicted == row.label) ++correct;
    append(i);
    out.push_back(',');
    append(row.label);
    out.push_back(',');
    append(s.predicted);
    out.push_back(',');
    append(s.confidence, std::chars_format::fixed, 6);
    out.push_back('\n');
  }
  return out;
}

}  // namespace batch_infer
