// Field readers: each checks one value and names the field and what was expected when it is wrong.
#include "spec/yaml_fields.hpp"

#include <algorithm>
#include <charconv>
#include <limits>
#include <numeric>
#include <vector>

namespace cohort::spec::detail {
namespace {

constexpr std::size_t kMaxQuoted = 80;  // longer values are cut in messages

// `"text"` with quotes, backslashes and control characters escaped, long text cut short.
std::string quote(std::string_view text) {
  std::string out = "\"";
  std::size_t n = std::min(text.size(), kMaxQuoted);
  while (n < text.size() && n > 0 && (static_cast<unsigned char>(text[n]) & 0xC0) == 0x80)
    --n;  // whole chars
  for (const char ch : text.substr(0, n)) {
    const auto c = static_cast<unsigned char>(ch);
    if (ch == '"' || ch == '\\') {
      out += '\\';
      out += ch;
    } else if (ch == '\n') {
      out += "\\n";
    } else if (ch == '\t') {
      out += "\\t";
    } else if (c < 0x20 || c == 0x7F) {
      static constexpr char kHex[] = "0123456789abcdef";
      out += "\\x";
      out += kHex[c >> 4];
      out += kHex[c & 0xF];
    } else {
      out += ch;
    }
  }
  if (n < text.size()) out += "...";
  return out + "\"";
}

bool looks_numeric_or_bool(std::string_view t) {
  if (t == "true" || t == "false" || t == "True" || t == "False" || t == "TRUE" || t == "FALSE") return true;
  const bool has_digit = std::any_of(t.begin(), t.end(), [](char c) { return c >= '0' && c <= '9'; });
  return has_digit && t.find_first_not_of("0123456789+-.eE") == std::string_view::npos;
}

bool all_digits(std::string_view t) {
  return !t.empty() && t.find_first_not_of("0123456789") == std::string_view::npos;
}

// Parses decimal digits into a uint64; false on overflow or no digits.
bool parse_digits(std::string_view t, std::uint64_t& out) {
  if (!all_digits(t)) return false;
  const auto [end, ec] = std::from_chars(t.data(), t.data() + t.size(), out);
  return ec == std::errc() && end == t.data() + t.size();
}

char lower(char c) {
  return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c;
}

std::string lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(), [](char c) { return lower(c); });
  return out;
}

std::string join(std::span<const std::string_view> words) {
  std::string out;
  for (const std::string_view w : words)
    out += (out.empty() ? "" : ", ") + std::string(w);
  return out;
}

constexpr std::int64_t kMaxDurationSeconds = 100LL * 366 * 24 * 3600;  // 100 years: "no limit" is 0
constexpr std::uint64_t kMaxSizeBytes = 1ULL << 50;                    // 1 PiB: exact as a double in every JSON reader

}  // namespace

std::string describe(const Value& value) {
  switch (value.kind) {
    case Value::Kind::kNull:
      return "nothing";
    case Value::Kind::kMap:
      return "a map";
    case Value::Kind::kList:
      return "a list";
    case Value::Kind::kScalar:
      break;
  }
  if (!value.quoted && looks_numeric_or_bool(value.text)) return value.text;
  return quote(value.text);
}

std::string join_path(std::string_view parent, std::string_view key) {
  if (parent.empty()) return std::string(key);
  return std::string(parent) + "." + std::string(key);
}

Status spec_error(std::string_view path, std::string_view message) {
  if (path.empty()) return invalid_argument("job spec: " + std::string(message));
  return invalid_argument("job spec: " + std::string(path) + ": " + std::string(message));
}

Status expected(std::string_view path, std::string_view what, const Value& got) {
  return spec_error(path, "expected " + std::string(what) + ", got " + describe(got));
}

Status expect_map(const Value& value, std::string_view path, std::string_view what) {
  if (value.kind == Value::Kind::kMap) return {};
  return expected(path, what, value);
}

std::size_t edit_distance(std::string_view a, std::string_view b) {
  // Optimal string alignment distance over three rows of the dynamic-programming table.
  std::vector<std::size_t> prev2(b.size() + 1), prev(b.size() + 1), cur(b.size() + 1);
  std::iota(prev.begin(), prev.end(), std::size_t{0});
  for (std::size_t i = 1; i <= a.size(); ++i) {
    cur[0] = i;
    for (std::size_t j = 1; j <= b.size(); ++j) {
      const std::size_t cost = lower(a[i - 1]) == lower(b[j - 1]) ? 0 : 1;
      cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + cost});
      if (i > 1 && j > 1 && lower(a[i - 1]) == lower(b[j - 2]) && lower(a[i - 2]) == lower(b[j - 1])) {
        cur[j] = std::min(cur[j], prev2[j - 2] + 1);
      }
    }
    std::swap(prev2, prev);
    std::swap(prev, cur);
  }
  return prev[b.size()];
}

std::string_view nearest(std::string_view word, std::span<const std::string_view> candidates) {
  // A third of the word's letters may be wrong: "comand", "enviroment", "instnce_count".
  const std::size_t limit = std::max<std::size_t>(1, word.size() / 3);
  std::string_view best;
  std::size_t best_distance = limit + 1;
  for (const std::string_view c : candidates) {
    const std::size_t d = edit_distance(word, c);
    if (d < best_distance && d < std::max(word.size(), c.size())) {
      best = c;
      best_distance = d;
    }
  }
  return best;
}

Status check_field_name(std::string_view key, std::string_view path, std::span<const std::string_view> names,
                        std::span<const std::string_view> elsewhere) {
  std::string_view suggestion = nearest(key, names);
  std::size_t distance = suggestion.empty() ? std::numeric_limits<std::size_t>::max() : edit_distance(key, suggestion);
  for (const std::string_view full : elsewhere) {
    const std::string_view leaf = full.substr(full.rfind('.') + 1);
    const std::string_view one[] = {leaf};
    if (nearest(key, one).empty() && key != leaf) continue;
    if (const std::size_t d = edit_distance(key, leaf); d < distance) {
      suggestion = full;
      distance = d;
    }
  }
  std::string message = "unknown field " + quote(key);
  if (!suggestion.empty()) {
    message += " (did you mean \"" + std::string(suggestion) + "\"?)";
  } else {
    message += "; the fields here are " + join(names);
  }
  return spec_error(path, message);
}

Result<std::string> read_string(const Value& value, std::string_view path) {
  if (value.kind != Value::Kind::kScalar || value.text.empty()) return expected(path, "a non-empty string", value);
  if (value.text.find('\0') != std::string::npos) return spec_error(path, "must not contain a NUL character");
  return value.text;
}

Result<std::int64_t> read_int(const Value& value, std::string_view path, std::int64_t min, std::int64_t max) {
  std::string what = "an integer >= " + std::to_string(min);
  if (max < std::numeric_limits<int>::max())
    what = "an integer from " + std::to_string(min) + " to " + std::to_string(max);
  if (value.kind != Value::Kind::kScalar) return expected(path, what, value);
  std::string_view t = value.text;
  const bool negative = !t.empty() && t.front() == '-';
  if (!t.empty() && (t.front() == '-' || t.front() == '+')) t.remove_prefix(1);
  std::uint64_t magnitude = 0;
  if (!parse_digits(t, magnitude)) return expected(path, what, value);
  // Compare magnitudes without overflowing: the bounds are well inside int64.
  const auto limit = negative ? static_cast<std::uint64_t>(-(min < 0 ? min : 0)) : static_cast<std::uint64_t>(max);
  if (magnitude > limit) return expected(path, what, value);
  const std::int64_t n = negative ? -static_cast<std::int64_t>(magnitude) : static_cast<std::int64_t>(magnitude);
  if (n < min || n > max) return expected(path, what, value);
  return n;
}

Result<std::int64_t> read_duration(const Value& value, std::string_view path) {
  static constexpr std::string_view kWhat = R"(a duration >= 0: seconds, or text like "90s", "10m", "2h", "1d")";
  if (value.kind != Value::Kind::kScalar) return expected(path, kWhat, value);
  std::string_view t = value.text;
  std::uint64_t total = 0;
  if (all_digits(t)) {
    if (!parse_digits(t, total) || total > kMaxDurationSeconds) return spec_error(path, "longer than 100 years");
    return static_cast<std::int64_t>(total);
  }
  if (t.empty()) return expected(path, kWhat, value);
  while (!t.empty()) {  // one or more NUMBER UNIT pairs: "1h30m"
    const std::size_t digits = std::min(t.find_first_not_of("0123456789"), t.size());
    std::uint64_t n = 0;
    if (digits == 0 || digits == t.size()) return expected(path, kWhat, value);
    if (!parse_digits(t.substr(0, digits), n)) return spec_error(path, "longer than 100 years");
    std::uint64_t unit = 0;
    switch (t[digits]) {
      case 's':
        unit = 1;
        break;
      case 'm':
        unit = 60;
        break;
      case 'h':
        unit = 3600;
        break;
      case 'd':
        unit = 86400;
        break;
      default:
        return expected(path, kWhat, value);
    }
    if (n > kMaxDurationSeconds / unit || total + n * unit > kMaxDurationSeconds) {
      return spec_error(path, "longer than 100 years");
    }
    total += n * unit;
    t.remove_prefix(digits + 1);
  }
  return static_cast<std::int64_t>(total);
}

Result<std::uint64_t> read_size(const Value& value, std::string_view path) {
  static constexpr std::string_view kWhat = R"(a size >= 0: bytes, or text like "512m", "1g")";
  if (value.kind != Value::Kind::kScalar) return expected(path, kWhat, value);
  const std::string_view t = value.text;
  const std::size_t digits = std::min(t.find_first_not_of("0123456789"), t.size());
  std::uint64_t n = 0;
  if (digits == 0) return expected(path, kWhat, value);
  if (!parse_digits(t.substr(0, digits), n)) return spec_error(path, "larger than 1p (2^50 bytes)");
  const std::string unit = lower(t.substr(digits));
  // Powers of 1024 for every spelling, as `docker run --shm-size` reads them.
  static constexpr std::pair<std::string_view, int> kUnits[] = {
      {"", 0},    {"b", 0},    {"k", 10}, {"kb", 10}, {"ki", 10}, {"kib", 10}, {"m", 20}, {"mb", 20},
      {"mi", 20}, {"mib", 20}, {"g", 30}, {"gb", 30}, {"gi", 30}, {"gib", 30}, {"t", 40}, {"tb", 40},
      {"ti", 40}, {"tib", 40}, {"p", 50}, {"pb", 50}, {"pi", 50}, {"pib", 50}};
  for (const auto& [name, shift] : kUnits) {
    if (unit != name) continue;
    if (n > (kMaxSizeBytes >> shift)) return spec_error(path, "larger than 1p (2^50 bytes)");
    return n << shift;
  }
  return expected(path, kWhat, value);
}

Result<std::size_t> read_choice(const Value& value, std::string_view path, std::span<const std::string_view> choices) {
  const std::string what = "one of " + join(choices);
  if (value.kind != Value::Kind::kScalar) return expected(path, what, value);
  for (std::size_t i = 0; i < choices.size(); ++i) {
    if (value.text == choices[i]) return i;
  }
  Status status = expected(path, what, value);
  if (const std::string_view near = nearest(value.text, choices); !near.empty()) {
    return Status(status.code(), status.message() + " (did you mean \"" + std::string(near) + "\"?)");
  }
  return status;
}

}  // namespace cohort::spec::detail
