#include "cli_common.hpp"

#include <iostream>

namespace cohort::cli {

int fail(const Status& status) {
  std::cerr << "cohort: " << status.message() << std::endl;
  return kExitFailure;
}

int usage_fail(const Status& status) {
  std::cerr << "cohort: " << status.message() << std::endl;
  return kExitUsage;
}

void add_output_option(CLI::App* verb, OutputFormat& format) {
  verb->add_option_function<std::string>(
          "-o,--output",
          [&format](const std::string& v) { format = v == "json" ? OutputFormat::kJson : OutputFormat::kTable; },
          "table (default) or json")
      ->check(CLI::IsMember({"table", "json"}));
}

}  // namespace cohort::cli
