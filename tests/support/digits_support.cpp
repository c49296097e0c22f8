#include "digits_support.hpp"

#include <cmath>
#include <fstream>
#include <limits>
#include <regex>

namespace cohort::testing {

std::optional<double> final_accuracy(const std::string& out) {
  std::regex line(R"(test_accuracy=([0-9.]+))");
  std::optional<double> last;
  for (auto it = std::sregex_iterator(out.begin(), out.end(), line); it != std::sregex_iterator(); ++it) {
    last = std::stod((*it)[1]);
  }
  return last;
}

std::vector<double> read_weights(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::vector<double> w;
  double v = 0;
  while (in.read(reinterpret_cast<char*>(&v), sizeof v))
    w.push_back(v);
  return w;
}

double max_abs_diff(const std::vector<double>& a, const std::vector<double>& b) {
  if (a.size() != b.size() || a.empty()) return std::numeric_limits<double>::infinity();
  double m = 0;
  for (std::size_t i = 0; i < a.size(); ++i)
    m = std::max(m, std::fabs(a[i] - b[i]));
  return m;
}

}  // namespace cohort::testing
