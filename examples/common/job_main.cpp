#include "job_main.hpp"

#include <array>
#include <cstdint>
#include <cstdio>
#include <utility>

#include "cohort/context.hpp"
#include "cohort/log.hpp"

namespace examples {

cohort::Result<spdlog::level::level_enum> log_level(const std::string& flag) {
  if (flag.empty()) return cohort::log_level_from_environment(spdlog::level::info);
  auto level = cohort::parse_log_level(flag);
  if (!level.ok()) return level.status().with_context("--log-level");
  return level;
}

std::optional<Job> start_job(std::string_view program, const std::string& log_level_flag, int& exit_code) {
  const auto level = log_level(log_level_flag);
  if (!level.ok()) {
    std::fprintf(stderr, "%.*s: %s\n", static_cast<int>(program.size()), program.data(),
                 level.status().to_string().c_str());
    exit_code = kExitUsage;
    return std::nullopt;
  }
  auto ctx = cohort::Context::from_environment();
  if (!ctx.ok()) {
    std::fprintf(stderr, "%.*s: bad launch environment: %s\n", static_cast<int>(program.size()), program.data(),
                 ctx.status().to_string().c_str());
    exit_code = kExitFailure;
    return std::nullopt;
  }
  Job job{std::move(ctx).value(), nullptr};
  job.log = cohort::init_logging(job.ctx, *level);
  job.log->debug("{}", job.ctx.describe());
  return job;
}

Outcome agree(cohort::Communicator& comm, cohort::Status local, const Agreement& what) {
  std::array<std::int64_t, 1> worst{local.ok() ? 0 : static_cast<std::int64_t>(local.code())};
  if (auto st = comm.allreduce(worst, cohort::ReduceOp::kMax); !st.ok()) return st.with_context(what.what);
  if (worst[0] == 0) return {};
  if (local.ok()) local = {static_cast<cohort::Code>(worst[0]), std::string(what.peer_failed)};
  if (what.verdict_context) local = local.with_context(what.what);
  return {std::move(local), true};
}

int finish(const Outcome& outcome, cohort::Communicator& comm, spdlog::logger& log, std::string_view what, int rank) {
  if (outcome.status.ok()) return 0;
  if (outcome.agreed) {
    // Every rank stops here together, so MPI can shut down cleanly.
    const auto code = outcome.status.code();
    // Not an error: the work stopped where a requeued attempt resumes it.
    if (code == cohort::Code::kPreempted) {
      log.info("{}", outcome.status.to_string());
      return cohort::kExitPreempted;
    }
    const bool usage = code == cohort::Code::kInvalidArgument || code == cohort::Code::kFailedPrecondition;
    log.error("{}", outcome.status.to_string());
    return usage ? kExitUsage : kExitFailure;
  }
  log.error("rank {}: {} failed: {}", rank, what, outcome.status.to_string());
  log.flush();
  // Peers may be inside a collective waiting for this rank: end the job rather than wait.
  comm.abort(kExitFailure);
  return kExitFailure;  // not reached: GCC does not see [[noreturn]] through a virtual call
}

}  // namespace examples
