// What every manager verb of `cohort` shares: how a verb is registered so main.cpp only wires
// subcommands, its exit codes, and how an error reaches the user.
#pragma once

#include <CLI/CLI.hpp>
#include <functional>
#include <string>
#include <vector>

#include "cohort/status.hpp"

namespace cohort::cli {

// Exit codes of the manager verbs: 0 success, 1 a failed call or job, 2 a usage error (a bad or
// missing flag, no manager address).
inline constexpr int kExitOk = 0;
inline constexpr int kExitFailure = 1;
inline constexpr int kExitUsage = 2;

// A leaf subcommand and what runs when it was the one parsed. `run` owns the verb's options.
struct Command {
  CLI::App* app = nullptr;
  std::function<int()> run;
};
using Commands = std::vector<Command>;

// Prints "cohort: <message>" to stderr and returns kExitFailure (fail) or kExitUsage (usage_fail).
int fail(const Status& status);
int usage_fail(const Status& status);

enum class OutputFormat { kTable, kJson };

// Adds `--output table|json` (default table) to a read verb.
void add_output_option(CLI::App* verb, OutputFormat& format);

}  // namespace cohort::cli
