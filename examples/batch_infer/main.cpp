// example-batch-infer: scores a million rows (or any number) generated from the digits data with
// a model that `example-digits --save-weights` trained, sharded across the ranks of a job.
//
// The rows are cut into shards of --shard-rows; shard s belongs to rank s % world. Each shard's
// CSV is committed atomically (temporary, fsync, rename, folder fsync), so a run that dies keeps
// every shard it committed and the next run over the same --output skips them: the final output
// holds every row exactly once, and the same bytes whatever the rank count or the restarts
// (README.md has the argument).
//
// The ranks go through the shards in rounds: in round r rank k takes shard r * world + k, and an
// allgather after each round tells rank 0 what every rank did, which it prints. Between rounds
// every rank stands at a shard boundary, where a job can stop without losing work.
//
// stdout (rank 0 only): one "shard S/N committed (...)" or "shard S/N skipped (...)" line per
// shard, then "rows=R shards=N scored=A skipped=B accuracy=X seconds=T rows_per_s=Y" last, for
// scripts and tests to read. Diagnostics go to stderr through the logger. Exit codes: 0 every
// shard committed, 1 a collective, the launch environment or a file write failed, 2 bad flags,
// data or weights, or an --output folder of another run, 75 (cohort::kExitPreempted) stopped
// between rounds at a preemption notice (every shard so far committed).
#include <CLI/CLI.hpp>

#include <algorithm>
#include <array>
#include <chrono>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "cohort/collectives.hpp"
#include "cohort/context.hpp"
#include "cohort/log.hpp"
#include "cohort/status.hpp"
#include "dataset.hpp"
#include "job_main.hpp"
#include "mlp.hpp"
#include "rows.hpp"
#include "run_files.hpp"
#include "scoring.hpp"
#include "shard_files.hpp"
#include "shard_plan.hpp"
#include "shard_worker.hpp"

namespace {

using examples::kExitFailure;
using examples::kExitUsage;
using examples::Outcome;

struct Options {
  std::string weights;
  std::size_t hidden = 64;
  std::string activation = "tanh";
  std::string data;
  std::uint64_t rows = 1'000'000;
  // 64 Ki rows make a file of about 1.3 MB that one core scores in about half a second: small
  // enough that a restart loses little, large enough that the per-shard fsyncs and the round's
  // allgather cost nothing next to the scoring.
  std::uint64_t shard_rows = 65536;
  std::string output;
  std::string log_level;  // empty: COHORT_LOG_LEVEL, else info
  // Test hook: every rank SIGKILLs itself after committing this many shards in this run (0: never).
  std::int64_t stop_after_shards = 0;
};

// Returns the exit code when the flags end the program (--help, or an error CLI11 printed).
std::optional<int> parse_flags(int argc, char** argv, Options& o) {
  CLI::App app{
      "Scores generated digits rows with a trained 64-H-10 MLP across the ranks of a job, one atomically "
      "committed CSV per shard; a restarted run skips the committed shards.",
      "example-batch-infer"};
  app.option_defaults()->always_capture_default();
  app.add_option("--weights", o.weights, "parameters `example-digits --save-weights` wrote (raw little-endian float64)")
      ->required();
  app.add_option("--hidden", o.hidden, "hidden units, as in the training")
      ->check(CLI::Range(std::size_t{1}, std::size_t{1} << 16));
  app.add_option("--activation", o.activation, "hidden activation, as in the training")
      ->check(CLI::IsMember({"tanh", "relu"}));
  app.add_option("--data", o.data, "digits CSV the rows are generated from, gzip-compressed or plain");
  app.add_option("--rows", o.rows, "rows to score")->check(CLI::Range(std::uint64_t{1}, std::uint64_t{1} << 40));
  app.add_option("--shard-rows", o.shard_rows, "rows per shard file")
      ->check(CLI::Range(std::uint64_t{1}, std::uint64_t{1} << 30));
  app.add_option("--output", o.output, "folder of the shard files, shared by every node; created when missing")
      ->required();
  app.add_option("--log-level", o.log_level,
                 "trace, debug, info, warn, error or off (default: $COHORT_LOG_LEVEL, else info)");
  app.add_option("--stop-after-shards", o.stop_after_shards,
                 "test hook: a rank that has committed this many shards in this run kills itself with SIGKILL, a "
                 "crash at a deterministic point; 0: never")
      ->check(CLI::Range(std::int64_t{0}, std::int64_t{1} << 40))
      ->group("Test hooks");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    // CLI11's own exit codes (105, 106, ...) mean nothing to a launcher: every bad flag is 2.
    return app.exit(e) == 0 ? 0 : kExitUsage;
  }
  return std::nullopt;
}

// Rank 0, before any rank touches the folder: creates it, checks or writes the manifest, and
// removes the temporaries of runs that died (no rank writes before the agreement that follows).
cohort::Status prepare_output(const std::filesystem::path& dir, const batch_infer::RunManifest& manifest,
                              spdlog::logger& log) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return cohort::errno_status("mkdir", ec.value(), dir.string()).with_context("--output");
  COHORT_TRY(batch_infer::check_or_write_manifest(dir, manifest));
  COHORT_ASSIGN_OR_RETURN(const std::size_t removed, batch_infer::remove_temp_files(dir));
  if (removed > 0) log.info("removed {} temporary file(s) a stopped run left in {}", removed, dir.string());
  return {};
}

// What each rank tells the others after a round, as int64 for the allgather.
enum Field : std::size_t { kShard, kState, kRows, kMicros, kFields };
enum State : std::int64_t { kIdle = 0, kCommitted = 1, kSkipped = 2, kFailed = 3 };
using Record = std::array<std::int64_t, kFields>;

// Counts summed over the ranks at the end, as int64 for the allreduce.
enum Total : std::size_t { kScoredRows, kSkippedRows, kCorrect, kCommittedShards, kSkippedShards, kTotals };

Outcome run(const cohort::Context& ctx, const Options& o, const batch_infer::RowGenerator& rows,
            const digits::Mlp& model, cohort::Communicator& comm, spdlog::logger& log) {
  const batch_infer::ShardPlan plan(o.rows, o.shard_rows);
  const std::filesystem::path dir = o.output;
  const int world = comm.size();
  const int rank = comm.rank();
  const batch_infer::RunManifest manifest{.rows = o.rows,
                                          .shard_rows = o.shard_rows,
                                          .hidden = o.hidden,
                                          .activation = o.activation,
                                          .weights = batch_infer::hex64(batch_infer::fingerprint(model)),
                                          .source_rows = rows.source_rows(),
                                          .source = batch_infer::hex64(rows.fingerprint())};
  const auto level = ctx.is_root() ? spdlog::level::info : spdlog::level::debug;
  log.log(level, "{} rows in {} shards of {} across {} rank(s); model 64-{}-10 {}, weights {}", plan.rows(),
          plan.num_shards(), plan.shard_rows(), world, o.hidden, o.activation, manifest.weights);

  const cohort::Status prepared = ctx.is_root() ? prepare_output(dir, manifest, log) : cohort::Status{};
  if (Outcome v = examples::agree(comm, prepared, {.what = "preparing the output folder"}); !v.status.ok()) return v;
  // The folder must be shared: a rank on another node that cannot see it would write elsewhere.
  std::error_code ec;
  const cohort::Status visible =
      std::filesystem::is_directory(dir, ec)
          ? cohort::Status{}
          : cohort::failed_precondition("rank " + std::to_string(rank) + " cannot see --output " + o.output +
                                        " that rank 0 created: it must be a folder every node shares");
  if (Outcome v = examples::agree(comm, visible, {.what = "checking --output"}); !v.status.ok()) return v;

  const auto start = std::chrono::steady_clock::now();
  std::array<std::int64_t, kTotals> totals{};
  std::int64_t committed_now = 0;
  std::vector<std::int64_t> all(static_cast<std::size_t>(world) * kFields);
  for (std::size_t round = 0; round < plan.rounds(world); ++round) {
    // Every rank is here together, at a shard boundary: a preemption notice stops them all here,
    // with every shard so far committed, and the requeued run skips those.
    COHORT_ASSIGN_OR_RETURN(const bool preempted, ctx.preemption_requested(comm));
    if (preempted) {
      if (ctx.is_root()) {
        std::printf("preemption notice: stopping before round %zu; every shard so far is committed\n", round);
        std::fflush(stdout);
      }
      return {cohort::Status(cohort::Code::kPreempted, "stopped for preemption before round " + std::to_string(round)),
              true};
    }
    const std::size_t s = round * static_cast<std::size_t>(world) + static_cast<std::size_t>(rank);
    Record record{-1, kIdle, 0, 0};
    cohort::Status failed;
    if (s < plan.num_shards()) {
      const batch_infer::ShardRange range = plan.shard(s);
      record[kShard] = static_cast<std::int64_t>(s);
      auto result = batch_infer::process_shard(model, rows, range, dir);
      if (!result.ok()) {
        failed = result.status().with_context("shard " + std::to_string(s));
        log.error("{}", failed.to_string());
        record[kState] = kFailed;
      } else {
        const bool committed = result->state == batch_infer::ShardState::kCommitted;
        const auto n = static_cast<std::int64_t>(result->tally.rows);
        record[kState] = committed ? kCommitted : kSkipped;
        record[kRows] = n;
        record[kMicros] = static_cast<std::int64_t>(result->seconds * 1e6);
        totals[committed ? kScoredRows : kSkippedRows] += n;
        totals[committed ? kCommittedShards : kSkippedShards] += 1;
        totals[kCorrect] += static_cast<std::int64_t>(result->tally.correct);
        log.debug("shard {} {} ({} rows, {:.3f} s)", s, committed ? "committed" : "skipped", n, result->seconds);
        if (committed && ++committed_now == o.stop_after_shards) {
          log.warn("--stop-after-shards {}: test hook, killing rank {} with SIGKILL", o.stop_after_shards, rank);
          log.flush();
          std::raise(SIGKILL);
        }
      }
    }
    COHORT_TRY(comm.allgather(cohort::Buffer::of(std::span(record)), cohort::Buffer::of(std::span(all)))
                   .with_context("round " + std::to_string(round)));
    std::optional<int> failed_rank;
    for (int r = 0; r < world; ++r) {
      const std::int64_t* rec = all.data() + static_cast<std::size_t>(r) * kFields;
      if (rec[kState] == kFailed && !failed_rank) failed_rank = r;
      if (!ctx.is_root() || rec[kState] == kIdle || rec[kState] == kFailed) continue;
      const auto file = batch_infer::shard_file_name(static_cast<std::size_t>(rec[kShard]));
      if (rec[kState] == kCommitted) {
        std::printf("shard %lld/%zu committed (%s, rank %d, %lld rows, %.2f s)\n", static_cast<long long>(rec[kShard]),
                    plan.num_shards(), file.c_str(), r, static_cast<long long>(rec[kRows]),
                    static_cast<double>(rec[kMicros]) / 1e6);
      } else {
        std::printf("shard %lld/%zu skipped (%s already committed, rank %d)\n", static_cast<long long>(rec[kShard]),
                    plan.num_shards(), file.c_str(), r);
      }
    }
    if (ctx.is_root()) {
      std::fflush(stdout);
      // The job's progress is the shards done: what a hang detector and `cohort job show` see.
      const auto done = std::min(plan.num_shards(), (round + 1) * static_cast<std::size_t>(world));
      (void)ctx.report_progress(static_cast<std::int64_t>(done), done == plan.num_shards());
    }
    if (failed_rank) {
      // Every rank saw the same records, so every rank stops here: the job ends cleanly.
      if (failed.ok()) failed = {cohort::Code::kIoError, "rank " + std::to_string(*failed_rank) + " failed a shard"};
      return {failed.with_context("see rank " + std::to_string(*failed_rank) + "'s log"), true};
    }
  }

  // No barrier needed before it: this allreduce completes only after every rank contributed its
  // counts, which it does after its last commit, so _SUCCESS follows every shard.
  COHORT_TRY(comm.allreduce(totals, cohort::ReduceOp::kSum).with_context("summing the counts"));
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (!ctx.is_root()) return {};
  const auto scored = static_cast<std::uint64_t>(totals[kScoredRows]);
  const auto done = scored + static_cast<std::uint64_t>(totals[kSkippedRows]);
  const auto correct = static_cast<std::uint64_t>(totals[kCorrect]);
  if (done != plan.rows()) {
    return {
        cohort::internal_error("the shards hold " + std::to_string(done) + " rows, not " + std::to_string(plan.rows())),
        true};
  }
  const cohort::Status success = batch_infer::commit_file(
      dir, batch_infer::kSuccessFile, batch_infer::success_json(plan.rows(), plan.num_shards(), correct));
  if (!success.ok()) return {success.with_context("writing " + std::string(batch_infer::kSuccessFile)), true};
  const double accuracy = static_cast<double>(correct) / static_cast<double>(plan.rows());
  std::printf("rows=%llu shards=%zu scored=%llu skipped=%llu accuracy=%.4f seconds=%.3f rows_per_s=%.0f\n",
              static_cast<unsigned long long>(plan.rows()), plan.num_shards(), static_cast<unsigned long long>(scored),
              static_cast<unsigned long long>(totals[kSkippedRows]), accuracy, seconds,
              seconds > 0 ? static_cast<double>(scored) / seconds : 0.0);
  std::fflush(stdout);
  return {};
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  o.data = digits::default_data_path().string();
  if (auto code = parse_flags(argc, argv, o)) return *code;
  int exit_code = 0;
  const auto job = examples::start_job("example-batch-infer", o.log_level, exit_code);
  if (!job) return exit_code;
  const cohort::Context& ctx = job->ctx;
  spdlog::logger& log = *job->log;

  // Data and weights are checked before the communicator exists: a rank that stops here has not
  // joined MPI, so its launcher ends the job instead of peers waiting in a collective for it.
  const auto data = digits::load_digits(o.data);
  if (!data.ok()) {
    const bool missing = data.status().code() == cohort::Code::kNotFound;
    log.error("cannot load the digits data: {}{}", data.status().to_string(),
              missing ? " (point --data at digits.csv.gz)" : "");
    return kExitUsage;
  }
  const auto activation = o.activation == "relu" ? digits::Activation::kRelu : digits::Activation::kTanh;
  const auto model = batch_infer::load_weights(o.weights, o.hidden, activation);
  if (!model.ok()) {
    log.error("{}", model.status().to_string());
    return kExitUsage;
  }
  const batch_infer::RowGenerator rows(*data);

  auto comm = cohort::Communicator::create(ctx);
  if (!comm.ok()) {
    log.error("rank {}: cannot create the communicator: {}", ctx.rank, comm.status().to_string());
    return kExitFailure;
  }
  const Outcome outcome = run(ctx, o, rows, *model, **comm, log);
  return examples::finish(outcome, **comm, log, "batch inference", ctx.rank);
}
