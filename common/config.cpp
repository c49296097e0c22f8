#include "config.hpp"

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <optional>
#include <string>

namespace cohort::config {

namespace {

std::optional<double> parse_positive(const char* text) {
  if (text == nullptr || *text == '\0') return std::nullopt;
  char* end = nullptr;
  const double v = std::strtod(text, &end);
  if (end == text || *end != '\0' || !(v > 0)) return std::nullopt;
  return v;
}

}  // namespace

double time_scale() {
  static const double scale = parse_positive(std::getenv("COHORT_TIME_SCALE")).value_or(1.0);
  return scale;
}

std::chrono::milliseconds get(const Knob& knob) {
  std::string var = "COHORT_";
  for (char c : knob.name)
    var += static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  var += "_MS";
  if (auto ms = parse_positive(std::getenv(var.c_str()))) return std::chrono::milliseconds(static_cast<long long>(*ms));
  const double scaled = static_cast<double>(knob.base.count()) * time_scale();
  return std::chrono::milliseconds(std::max<long long>(1, static_cast<long long>(scaled)));
}

}  // namespace cohort::config
