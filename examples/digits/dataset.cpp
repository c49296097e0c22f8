#include "dataset.hpp"

#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <memory>
#include <string>
#include <system_error>

namespace digits {
namespace {

using cohort::Code;
using cohort::Result;
using cohort::Status;

// Fixed forever: changing it moves rows between train and test, and so every accuracy that was
// ever reported for this example.
constexpr std::uint64_t kSplitSeed = 0x6469676974733830ULL;  // "digits80"
// Epoch streams start far above stream 0, which the weight init uses (mlp.cpp).
constexpr std::uint64_t kEpochStreamBase = 1ULL << 32;
constexpr std::size_t kColumns = kPixels + 1;
// A bad field is quoted in the error; a whole binary line is not.
constexpr std::size_t kMaxQuoted = 24;

Status bad_line(std::size_t line, const std::string& what) {
  return {Code::kDataLoss, "line " + std::to_string(line) + ": " + what};
}

std::string quote(std::string_view field) {
  if (field.size() <= kMaxQuoted) return "'" + std::string(field) + "'";
  return "'" + std::string(field.substr(0, kMaxQuoted)) + "...'";
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t'))
    s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r'))
    s.remove_suffix(1);
  return s;
}

// One row into `out`; `line` only names it in errors.
Status parse_row(std::string_view text, std::size_t line, Dataset& out) {
  const std::size_t columns = static_cast<std::size_t>(std::count(text.begin(), text.end(), ',')) + 1;
  if (columns != kColumns) {
    return bad_line(line, "has " + std::to_string(columns) + " columns, expected " + std::to_string(kColumns) + " (" +
                              std::to_string(kPixels) + " pixels then a label)");
  }
  for (std::size_t column = 1; column <= kColumns; ++column) {
    const std::size_t comma = text.find(',');
    const std::string_view field = trim(text.substr(0, comma));
    text = comma == std::string_view::npos ? std::string_view{} : text.substr(comma + 1);

    int value = 0;
    const auto [end, ec] = std::from_chars(field.data(), field.data() + field.size(), value);
    if (field.empty() || ec != std::errc{} || end != field.data() + field.size()) {
      return bad_line(line, "column " + std::to_string(column) + ": " + quote(field) + " is not an integer");
    }
    if (column <= kPixels) {
      if (value < 0 || value > kMaxPixel) {
        return bad_line(line, "pixel " + std::to_string(column) + " is " + std::to_string(value) + ", outside 0.." +
                                  std::to_string(kMaxPixel));
      }
      out.features.push_back(static_cast<double>(value) / kMaxPixel);
    } else {
      if (value < 0 || value >= static_cast<int>(kClasses)) {
        return bad_line(line, "label (column " + std::to_string(column) + ") is " + std::to_string(value) +
                                  ", outside 0.." + std::to_string(kClasses - 1));
      }
      out.labels.push_back(value);
    }
  }
  return {};
}

struct GzCloser {
  void operator()(gzFile_s* f) const noexcept { gzclose(f); }
};
using GzFile = std::unique_ptr<gzFile_s, GzCloser>;

Result<std::string> read_gz(const std::filesystem::path& path) {
  errno = 0;
  GzFile file(gzopen(path.c_str(), "rb"));
  if (!file) {
    if (errno != 0) return cohort::errno_status("gzopen", errno, path.string());
    return Status(Code::kResourceExhausted, "gzopen(" + path.string() + ") failed: zlib could not allocate its state");
  }
  std::string text;
  char chunk[1 << 16];
  for (;;) {
    // gzread rather than gzgets: lines stay the parser's business, and a NUL byte cannot hide
    // the rest of a line from it.
    const int n = gzread(file.get(), chunk, sizeof(chunk));
    if (n > 0) text.append(chunk, static_cast<std::size_t>(n));
    if (n < static_cast<int>(sizeof(chunk))) break;
  }
  int err = Z_OK;
  const char* message = gzerror(file.get(), &err);
  if (err == Z_ERRNO) return cohort::errno_status("gzread", errno, path.string());
  if (err != Z_OK) {
    return Status(Code::kDataLoss, path.string() + " is not a valid gzip file: " + message);
  }
  return text;
}

std::uint64_t mix64(std::uint64_t z) noexcept {
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

}  // namespace

Result<Dataset> parse_digits(std::string_view text) {
  Dataset data;
  std::size_t line = 0;
  while (!text.empty()) {
    ++line;
    const std::size_t newline = text.find('\n');
    const std::string_view row = text.substr(0, newline);
    text = newline == std::string_view::npos ? std::string_view{} : text.substr(newline + 1);
    if (trim(row).empty()) continue;
    COHORT_TRY(parse_row(row, line, data));
  }
  if (data.size() == 0)
    return Status(Code::kDataLoss,
                  "no rows: expected lines of " + std::to_string(kColumns) + " comma-separated integers");
  return data;
}

Result<Dataset> load_digits(const std::filesystem::path& path) {
  COHORT_ASSIGN_OR_RETURN(const std::string text, read_gz(path));
  auto data = parse_digits(text);
  if (!data.ok()) return data.status().with_context(path.string());
  return data;
}

std::filesystem::path default_data_path() {
  const std::filesystem::path source = DIGITS_SOURCE_DATA;
  std::error_code ec;
  if (std::filesystem::exists(source, ec)) return source;
  const auto exe = std::filesystem::read_symlink("/proc/self/exe", ec);
  if (!ec) {
    // DIGITS_INSTALLED_DATA is relative to the install prefix, the folder above bin/.
    const auto installed = exe.parent_path().parent_path() / DIGITS_INSTALLED_DATA;
    if (std::filesystem::exists(installed, ec)) return installed;
  }
  return source;
}

std::uint64_t SplitMix64::next() noexcept {
  state_ += 0x9E3779B97F4A7C15ULL;
  return mix64(state_);
}

std::uint64_t SplitMix64::below(std::uint64_t bound) noexcept {
  // Rejects the lowest (2^64 mod bound) values so every residue is equally likely.
  const std::uint64_t threshold = (0 - bound) % bound;
  for (;;) {
    const std::uint64_t r = next();
    if (r >= threshold) return r % bound;
  }
}

double SplitMix64::unit() noexcept {
  return static_cast<double>(next() >> 11) * 0x1.0p-53;
}

std::uint64_t derive_seed(std::uint64_t seed, std::uint64_t stream) noexcept {
  return mix64(mix64(seed) + stream * 0xD1B54A32D192ED03ULL);
}

void shuffle(std::span<std::size_t> items, SplitMix64& rng) noexcept {
  for (std::size_t i = items.size(); i > 1; --i) {
    const auto j = static_cast<std::size_t>(rng.below(i));
    std::swap(items[i - 1], items[j]);
  }
}

Split split_train_test(std::size_t rows) {
  std::vector<std::size_t> order(rows);
  for (std::size_t i = 0; i < rows; ++i)
    order[i] = i;
  SplitMix64 rng(kSplitSeed);
  shuffle(order, rng);
  const std::size_t train = rows * 4 / 5;
  Split split;
  split.train.assign(order.begin(), order.begin() + static_cast<std::ptrdiff_t>(train));
  split.test.assign(order.begin() + static_cast<std::ptrdiff_t>(train), order.end());
  return split;
}

std::vector<std::size_t> epoch_order(std::span<const std::size_t> train, std::uint64_t seed, int epoch) {
  std::vector<std::size_t> order(train.begin(), train.end());
  SplitMix64 rng(derive_seed(seed, kEpochStreamBase + static_cast<std::uint64_t>(epoch)));
  shuffle(order, rng);
  return order;
}

}  // namespace digits
