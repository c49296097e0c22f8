// example-digits: data-parallel training of a 64-H-10 MLP on the digits data set with libcohort.
//
// Run it alone (a world of one) or under `cohort run -n N` / mpirun: every rank loads the data,
// takes its contiguous slice of each global batch, and the gradients are summed across ranks in
// float64, so 1, 2 and 4 ranks reach the same weights up to summation-order rounding.
//
// With --checkpoint-every K it saves a checkpoint through cohort::Checkpointer after every K-th
// global step and, when started again over the same checkpoint folder, resumes from the newest
// one exactly where it was, so the result is bit-identical to an uninterrupted run (README.md).
//
// stdout (rank 0 only): "resumed from step G (epoch E, batch B)" first when resuming, one
// "epoch E/N loss L test_accuracy A" line per epoch, then "test_accuracy=A" as the last line, for
// scripts and tests to read. Diagnostics go to stderr through the logger. Exit codes: 0 done, 1 a
// collective, the launch environment, a file write or the checkpoint folder failed (a newer
// attempt owning it included), 2 bad flags, bad data, or a checkpoint written with other flags,
// 75 (cohort::kExitPreempted) stopped at a preemption notice after a durable checkpoint.
//
// In a Cohort job it reports every global step as its progress, and with --checkpoint-every it
// asks every step whether any node has a preemption notice (one small allreduce).
#include <CLI/CLI.hpp>

#include <array>
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>

#include "checkpoint_state.hpp"
#include "cohort/checkpoint.hpp"
#include "cohort/collectives.hpp"
#include "cohort/context.hpp"
#include "cohort/log.hpp"
#include "cohort/status.hpp"
#include "dataset.hpp"
#include "job_main.hpp"
#include "mlp.hpp"

namespace {

using examples::kExitFailure;
using examples::kExitUsage;
using examples::Outcome;

struct Options {
  // Plain SGD at lr 0.1 reaches 0.96-0.97 test accuracy for seeds 1-8 (0.9694 for seed 1) with
  // any number of ranks, in about half a second on one core: accuracy levels off near epoch 20,
  // and 30 leaves a margin. Momentum 0.9 at lr 0.05 does a little better but is opt-in.
  int epochs = 30;
  digits::SgdOptions sgd{.global_batch = 32, .lr = 0.1, .momentum = 0.0};
  std::uint64_t seed = 1;
  std::size_t hidden = 64;
  std::string activation = "tanh";
  std::string data;
  std::string save_weights;
  std::string log_level;              // empty: COHORT_LOG_LEVEL, else info
  std::int64_t checkpoint_every = 0;  // global steps between checkpoints; 0: neither save nor resume
  std::string checkpoint_dir;         // empty: the Context's (COHORT_CHECKPOINT_DIR)
  // Three, as libcohort: when the newest fails verification (a truncated file, bit rot), resume
  // falls back to an older one; each costs about 77 KB per rank here.
  int keep_checkpoints = 3;
  bool async_checkpoint = false;
  // Test hook: rank 0 SIGKILLs itself after this global step (0: never), a crash at a known point.
  std::int64_t stop_after_steps = 0;
};

// Returns the exit code when the flags end the program (--help, or an error CLI11 printed).
std::optional<int> parse_flags(int argc, char** argv, Options& o) {
  CLI::App app{
      "Trains a 64-H-10 MLP on the digits data across the ranks of a job; rank 0 prints one line per "
      "epoch and then test_accuracy=<value>.",
      "example-digits"};
  app.option_defaults()->always_capture_default();
  // CLI11's PositiveNumber prints DBL_MAX in its message; this says what is wrong in words.
  const CLI::Validator positive(
      [](const std::string& text) -> std::string {
        char* end = nullptr;
        const double v = std::strtod(text.c_str(), &end);
        if (end == text.c_str() || *end != '\0') return "'" + text + "' is not a number";
        return v > 0 ? std::string() : "must be above 0, not " + text;
      },
      "POSITIVE");
  app.add_option("--epochs", o.epochs, "passes over the train rows")->check(CLI::Range(1, 1'000'000));
  app.add_option("--global-batch", o.sgd.global_batch, "rows per update, summed over all ranks")
      ->check(CLI::Range(std::size_t{1}, std::size_t{1} << 20));
  app.add_option("--lr", o.sgd.lr, "learning rate")->check(positive);
  app.add_option("--momentum", o.sgd.momentum, "heavy-ball momentum, 0 for plain SGD, below 1")
      ->check(CLI::Range(0.0, 0.999));
  // CLI11 2.1 would wrap "-3" around into a huge unsigned seed.
  const CLI::Validator unsigned_int(
      [](const std::string& text) -> std::string {
        return text.find('-') == std::string::npos ? std::string() : "must not be negative, not " + text;
      },
      "UNSIGNED");
  app.add_option("--seed", o.seed, "weight init and epoch order (the train/test split is fixed)")->check(unsigned_int);
  app.add_option("--hidden", o.hidden, "hidden units")->check(CLI::Range(std::size_t{1}, std::size_t{1} << 16));
  app.add_option("--activation", o.activation, "hidden activation")->check(CLI::IsMember({"tanh", "relu"}));
  app.add_option("--data", o.data, "digits CSV, gzip-compressed or plain");
  app.add_option("--save-weights", o.save_weights,
                 "rank 0 writes the final parameters here as raw little-endian float64: W1 [hidden x 64] row-major, "
                 "b1 [hidden], W2 [10 x hidden] row-major, b2 [10]");
  app.add_option("--log-level", o.log_level,
                 "trace, debug, info, warn, error or off (default: $COHORT_LOG_LEVEL, else info)");
  app.add_option("--checkpoint-every", o.checkpoint_every,
                 "save a checkpoint after every K-th global step (global batch) and resume from the newest one "
                 "at start; 0: never")
      ->check(CLI::Range(std::int64_t{0}, std::int64_t{1} << 40));
  app.add_option("--checkpoint-dir", o.checkpoint_dir,
                 "checkpoint folder, shared by every node (default: `cohort run --checkpoint-dir`, i.e. "
                 "$COHORT_CHECKPOINT_DIR)");
  app.add_option("--keep-checkpoints", o.keep_checkpoints, "committed checkpoints kept; older ones are deleted")
      ->check(CLI::Range(1, 1'000'000));
  app.add_flag("--async-checkpoint", o.async_checkpoint, "write checkpoints in the background while training goes on");
  app.add_option(
         "--stop-after-steps", o.stop_after_steps,
         "test hook: after this global step (and its save() call, if it is a checkpoint step) rank 0 kills itself "
         "with SIGKILL, a crash at a deterministic point; 0: never")
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

// Checked before training so a typo costs no training time.
cohort::Status check_output_dir(const std::string& file) {
  if (file.empty()) return {};
  std::error_code ec;
  const auto dir = std::filesystem::absolute(file, ec).parent_path();
  if (ec || !std::filesystem::is_directory(dir, ec)) {
    return cohort::invalid_argument("--save-weights " + file + ": folder " + dir.string() + " does not exist");
  }
  return {};
}

cohort::Status check_checkpoint_flags(const Options& o, const cohort::Context& ctx) {
  if (o.checkpoint_every > 0 && o.checkpoint_dir.empty() && ctx.checkpoint_dir.empty()) {
    return cohort::invalid_argument("--checkpoint-every " + std::to_string(o.checkpoint_every) +
                                    " needs a checkpoint folder: pass --checkpoint-dir DIR, or start the job with "
                                    "`cohort run --checkpoint-dir DIR`");
  }
  return {};
}

// Loads the newest checkpoint, if any, into model and sgd; where training starts.
cohort::Result<digits::Progress> resume(const cohort::Context& ctx, cohort::Checkpointer& ckpt,
                                        const digits::RunConfig& config, const Options& o, std::size_t train_rows,
                                        digits::Mlp& model, digits::Sgd& sgd) {
  COHORT_ASSIGN_OR_RETURN(auto restored, ckpt.restore_latest());
  if (!restored) return digits::Progress{};
  // The first save would be fenced anyway; stopping now saves the training until then.
  if (restored->attempt > ctx.attempt) {
    return cohort::Status(cohort::Code::kFenced, "checkpoint " + restored->path.string() + " was written by attempt " +
                                                     std::to_string(restored->attempt) + " of job " + ctx.job_id +
                                                     ", newer than this attempt " + std::to_string(ctx.attempt) +
                                                     ": a newer attempt owns the checkpoints");
  }
  COHORT_ASSIGN_OR_RETURN(auto progress, digits::load_shard(*restored, config, model, sgd, train_rows));
  if (progress.epoch > o.epochs) {
    return cohort::invalid_argument("checkpoint " + restored->path.string() + " is in epoch " +
                                    std::to_string(progress.epoch) + ", past --epochs " + std::to_string(o.epochs) +
                                    ": training is already done");
  }
  return progress;
}

// Every rank comes here at the same step; returns kPreempted (agreed) once the checkpoint of
// this step is durable, or the reason it is not.
cohort::Status stop_for_preemption(const cohort::Context& ctx, const Options& o, cohort::Checkpointer& ckpt,
                                   const digits::Mlp& model, const digits::Sgd& sgd, const digits::RunConfig& config,
                                   const digits::Progress& progress, spdlog::logger& log) {
  const bool just_saved = progress.global_step % o.checkpoint_every == 0;
  cohort::Status saved =
      just_saved ? cohort::Status() : ckpt.save(progress.global_step, digits::make_shard(model, sgd, config, progress));
  if (saved.ok()) saved = ckpt.wait();  // an asynchronous save must be durable before the exit
  if (!saved.ok())
    return saved.with_context("checkpoint at the preemption notice, step " + std::to_string(progress.global_step));
  if (ctx.is_root()) {
    (void)ctx.report_progress(progress.global_step, /*force=*/true);
    std::printf("preemption notice: checkpoint of step %lld is durable; stopping\n",
                static_cast<long long>(progress.global_step));
    std::fflush(stdout);
  }
  log.debug("stopping for preemption at step {}", progress.global_step);
  return cohort::Status(cohort::Code::kPreempted, "stopped for preemption at step " +
                                                      std::to_string(progress.global_step) + ", checkpoint durable");
}

Outcome train(const cohort::Context& ctx, const Options& o, const digits::Dataset& data, cohort::Communicator& comm,
              spdlog::logger& log) {
  const auto start = std::chrono::steady_clock::now();
  const digits::Split split = digits::split_train_test(data.size());
  const auto activation = o.activation == "relu" ? digits::Activation::kRelu : digits::Activation::kTanh;
  const digits::RunConfig config{.seed = o.seed, .hidden = o.hidden, .activation = activation, .sgd = o.sgd};
  digits::Mlp model(o.hidden, activation);
  model.init(o.seed);
  // Every rank drew the same weights from the same seed; the broadcast makes that a guarantee
  // rather than an assumption (a rank built differently, a seed flag that differs).
  COHORT_TRY(comm.broadcast(model.params(), 0).with_context("broadcast of the initial weights"));
  digits::Sgd sgd(o.sgd, model.num_params());

  const digits::Shard test_shard = digits::shard_of(split.test.size(), comm.rank(), comm.size());
  const auto test_rows =
      std::span<const std::size_t>(split.test).subspan(test_shard.begin, test_shard.end - test_shard.begin);
  // Every rank would say the same; the others say it only at debug.
  const auto level = ctx.is_root() ? spdlog::level::info : spdlog::level::debug;
  const auto warn_level = ctx.is_root() ? spdlog::level::warn : spdlog::level::debug;
  log.log(level,
          "{} train and {} test rows; model 64-{}-10 {} ({} parameters); {} epochs, global batch {}, lr {}, "
          "momentum {}, seed {}",
          split.train.size(), split.test.size(), o.hidden, digits::activation_name(activation), model.num_params(),
          o.epochs, o.sgd.global_batch, o.sgd.lr, o.sgd.momentum, o.seed);
  log.debug("evaluating test rows [{}, {})", test_shard.begin, test_shard.end);

  digits::Progress progress;
  std::unique_ptr<cohort::Checkpointer> ckpt;
  if (o.checkpoint_every > 0) {
    const cohort::CheckpointOptions options{
        .dir = o.checkpoint_dir, .keep_last = o.keep_checkpoints, .async = o.async_checkpoint};
    COHORT_ASSIGN_OR_RETURN(ckpt, cohort::Checkpointer::open(ctx, comm, options));
    auto resumed = resume(ctx, *ckpt, config, o, split.train.size(), model, sgd);
    // A refusal (another model's checkpoint, another world size, a newer attempt's folder) is made
    // every rank's, so the job ends cleanly with exit 2 (1 when fenced) rather than an abort.
    const examples::Agreement on_resume{.what = "agreeing on resume",
                                        .peer_failed = "another rank refused the checkpoint (see its log)",
                                        .verdict_context = false};
    if (Outcome verdict = examples::agree(comm, resumed.status(), on_resume); !verdict.status.ok()) {
      return {verdict.status.with_context("resuming from " + ckpt->dir().string()), verdict.agreed};
    }
    progress = *resumed;
    if (progress.global_step > 0 && ctx.is_root()) {
      std::printf("resumed from step %lld (epoch %d, batch %zu)\n", static_cast<long long>(progress.global_step),
                  progress.epoch, progress.batch);
      std::fflush(stdout);
    }
  }

  // After each global step: a checkpoint every K steps, and the test hook's crash.
  const digits::StepCallback on_step = [&](std::size_t next_batch, double loss) -> cohort::Status {
    ++progress.global_step;
    progress.batch = next_batch;
    progress.epoch_loss_sum = loss;
    if (ckpt && progress.global_step % o.checkpoint_every == 0) {
      const cohort::Status saved = ckpt->save(progress.global_step, digits::make_shard(model, sgd, config, progress));
      // A newer attempt owns the folder: this one must stop before it overwrites anything.
      if (saved.code() == cohort::Code::kFenced) {
        return saved.with_context("checkpoint of step " + std::to_string(progress.global_step));
      }
      // Anything else (a full disk, a slow filesystem) costs only this checkpoint: training goes on.
      if (!saved.ok()) {
        log.log(warn_level, "checkpoint of step {} failed; training goes on: {}", progress.global_step,
                saved.to_string());
      } else {
        log.debug("checkpoint of step {} {}", progress.global_step, o.async_checkpoint ? "staged" : "committed");
      }
    }
    if (ctx.is_root()) {
      if (const auto st = ctx.report_progress(progress.global_step); !st.ok()) log.warn("{}", st.to_string());
    }
    // A preemption notice on any node: every rank learns it at this same step, saves this step
    // (unless it was just saved) and stops; the requeued attempt resumes here with nothing lost.
    if (ckpt) {
      COHORT_ASSIGN_OR_RETURN(const bool preempted, ctx.preemption_requested(comm));
      if (preempted) return stop_for_preemption(ctx, o, *ckpt, model, sgd, config, progress, log);
    }
    if (progress.global_step == o.stop_after_steps && ctx.is_root()) {
      log.warn("--stop-after-steps {}: test hook, killing rank 0 with SIGKILL", o.stop_after_steps);
      log.flush();
      std::raise(SIGKILL);
    }
    return {};
  };

  double accuracy = 0.0;
  for (int epoch = progress.epoch; epoch <= o.epochs; ++epoch) {
    const std::string where = "epoch " + std::to_string(epoch);
    // A resumed epoch goes on from its saved batch and partial loss; later ones start afresh.
    const digits::EpochStart from = epoch == progress.epoch
                                        ? digits::EpochStart{.batch = progress.batch, .loss = progress.epoch_loss_sum}
                                        : digits::EpochStart{};
    progress.epoch = epoch;
    const auto order = digits::epoch_order(split.train, o.seed, epoch);
    auto loss = digits::train_epoch(model, sgd, data, order, comm, from, on_step);
    if (!loss.ok()) {
      // Every rank decided to stop at the same step: a clean stop, not an abort.
      const bool agreed = loss.status().code() == cohort::Code::kPreempted;
      return {loss.status().with_context(where), agreed};
    }
    // One allreduce for both sums: [train loss, correct test rows].
    std::array<double, 2> totals{*loss, static_cast<double>(digits::count_correct(model, data, test_rows))};
    COHORT_TRY(comm.allreduce(totals, cohort::ReduceOp::kSum).with_context(where));
    const double mean_loss = totals[0] / static_cast<double>(split.train.size());
    accuracy = totals[1] / static_cast<double>(split.test.size());
    if (!std::isfinite(mean_loss)) {
      return cohort::failed_precondition("training diverged at " + where + " (loss " + std::to_string(mean_loss) +
                                         "); lower --lr");
    }
    if (ctx.is_root()) {
      std::printf("epoch %d/%d loss %.6f test_accuracy %.4f\n", epoch, o.epochs, mean_loss, accuracy);
      std::fflush(stdout);
    }
  }
  if (ckpt) {
    // The last asynchronous save: its failure is reported like any other, as a warning.
    const cohort::Status saved = ckpt->wait();
    if (saved.code() == cohort::Code::kFenced) return saved.with_context("last checkpoint");
    if (!saved.ok()) log.log(warn_level, "the last checkpoint failed: {}", saved.to_string());
  }
  const std::chrono::duration<double> took = std::chrono::steady_clock::now() - start;
  log.log(level, "trained to epoch {} in {:.3f} s", o.epochs, took.count());

  if (ctx.is_root()) {
    if (!o.save_weights.empty()) {
      COHORT_TRY(digits::save_params(model, o.save_weights).with_context("--save-weights"));
      log.info("wrote {} float64 parameters to {}", model.num_params(), o.save_weights);
    }
    std::printf("test_accuracy=%.4f\n", accuracy);
    std::fflush(stdout);
  }
  return {};
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  o.data = digits::default_data_path().string();
  if (auto code = parse_flags(argc, argv, o)) return *code;
  int exit_code = 0;
  const auto job = examples::start_job("example-digits", o.log_level, exit_code);
  if (!job) return exit_code;
  const cohort::Context& ctx = job->ctx;
  spdlog::logger& log = *job->log;

  // Data and flags are checked before the communicator exists: a rank that stops here has not
  // joined MPI, so its launcher ends the job instead of peers waiting in a collective for it.
  const auto data = digits::load_digits(o.data);
  if (!data.ok()) {
    const bool missing = data.status().code() == cohort::Code::kNotFound;
    log.error("cannot load the digits data: {}{}", data.status().to_string(),
              missing ? " (point --data at digits.csv.gz)" : "");
    return kExitUsage;
  }
  if (ctx.is_root()) {
    if (const auto st = check_output_dir(o.save_weights); !st.ok()) {
      log.error("{}", st.to_string());
      return kExitUsage;
    }
  }
  if (const auto st = check_checkpoint_flags(o, ctx); !st.ok()) {
    log.error("{}", st.to_string());
    return kExitUsage;
  }

  auto comm = cohort::Communicator::create(ctx);
  if (!comm.ok()) {
    log.error("rank {}: cannot create the communicator: {}", ctx.rank, comm.status().to_string());
    return kExitFailure;
  }
  const Outcome outcome = train(ctx, o, *data, **comm, log);
  return examples::finish(outcome, **comm, log, "training", ctx.rank);
}
