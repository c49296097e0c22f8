// cohort: the user's command line. `cohort run` runs a job on this machine with no manager; the
// `cluster`, `job` and `node` verbs talk to a manager. This file only wires subcommands.
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>
#include <CLI/CLI.hpp>
#include <algorithm>
#include <string>
#include <vector>

#include "cli_common.hpp"
#include "cluster_commands.hpp"
#include "cohort/log.hpp"
#include "job_commands.hpp"
#include "node_commands.hpp"
#include "run_command.hpp"
#include "up_command.hpp"

namespace {

void init_cli_logging(spdlog::level::level_enum level) {
  auto log = std::make_shared<spdlog::logger>("cohort", std::make_shared<spdlog::sinks::stderr_sink_mt>());
  log->set_pattern("cohort: %^%l%$: %v");
  log->set_level(level);
  spdlog::set_default_logger(log);
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Cohort: distributed training jobs on CPU and GPU clusters"};
  app.set_version_flag("--version", std::string("cohort ") + COHORT_VERSION);
  app.require_subcommand(1);
  // Every error a user reads starts with "cohort: ", usage errors included.
  app.failure_message([](const CLI::App*, const CLI::Error& e) {
    return "cohort: " + std::string(e.what()) + "\nRun with --help for more information.\n";
  });
  std::string log_level = "info";
  app.add_option("--log-level", log_level, "trace, debug, info, warn, error or off (also COHORT_LOG_LEVEL)")
      ->envname("COHORT_LOG_LEVEL");

  cohort::RunOptions run_opts;
  auto* run = app.add_subcommand("run", "Run a job on this machine through Open MPI, with no manager");
  run->add_option("-n,--np", run_opts.ranks, "Number of ranks (default: one per node)");
  run->add_option("--nodes", run_opts.nodes,
                  "Spread the ranks over K local test nodes (network and UTS namespaces; needs root)");
  run->add_option("--job-id", run_opts.job_id, "Job id (default: $COHORT_JOB_ID or a fresh one)");
  run->add_option("--checkpoint-dir", run_opts.checkpoint_dir,
                  "Checkpoint directory, given to the job as COHORT_CHECKPOINT_DIR");
  // Everything from PROGRAM on belongs to the job, its own flags included.
  run->prefix_command();
  run->footer("Exit status: 0, or the first failing rank's exit code (128 + signal when it was killed).");

  // The manager verbs: each registers its leaf subcommands and what runs for them.
  cohort::cli::Commands commands;
  cohort::cli::add_cluster_commands(app, commands);
  cohort::cli::add_job_commands(app, commands);
  cohort::cli::add_node_commands(app, commands);
  cohort::cli::add_up_down_commands(app, commands);

  // CLI11 rejects what follows `--` in a subcommand, so the job's own command line is split off
  // here: everything after the first `--` belongs to PROGRAM.
  std::vector<std::string> args(argv + 1, argv + argc);
  std::vector<std::string> after_dashes;
  if (auto dd = std::find(args.begin(), args.end(), "--"); dd != args.end()) {
    after_dashes.assign(dd + 1, args.end());
    args.erase(dd, args.end());
  }
  std::reverse(args.begin(), args.end());  // CLI11 takes a vector in reverse order
  try {
    app.parse(args);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;  // 2 for a usage error, like the rest of cohort
  }
  auto level = cohort::parse_log_level(log_level);
  if (!level.ok()) {
    init_cli_logging(spdlog::level::info);
    spdlog::error("--log-level: {}", level.status().message());
    return 2;
  }
  init_cli_logging(*level);
  if (run->parsed()) {
    run_opts.program = run->remaining();
    run_opts.program.insert(run_opts.program.end(), after_dashes.begin(), after_dashes.end());
    run_opts.log_level = log_level;
    return cohort::run_job(std::move(run_opts));
  }
  for (const auto& command : commands) {
    if (!command.app->parsed()) continue;
    if (!after_dashes.empty()) {
      return cohort::cli::usage_fail(cohort::invalid_argument("`--` belongs to `cohort run` only; remove it"));
    }
    return command.run();
  }
  return 2;
}
