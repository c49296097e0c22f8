// Reading what example-digits leaves: its accuracy line and its --save-weights file.
#pragma once

#include <optional>
#include <string>
#include <vector>

namespace cohort::testing {

// The value of the last "test_accuracy=<v>" line rank 0 printed (behind its "[rank 0] " prefix).
std::optional<double> final_accuracy(const std::string& out);

// The raw float64 values of a --save-weights file; empty when it cannot be read.
std::vector<double> read_weights(const std::string& path);

// The largest |a[i] - b[i]|; infinity when the sizes differ.
double max_abs_diff(const std::vector<double>& a, const std::vector<double>& b);

}  // namespace cohort::testing
