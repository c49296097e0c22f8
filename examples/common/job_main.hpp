// The scaffolding of an example program's main(): its exit codes, its --log-level, and how the
// ranks of a job reach one verdict and end together (or, when they cannot, end the job).
#pragma once

#include <spdlog/spdlog.h>

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "cohort/collectives.hpp"
#include "cohort/context.hpp"
#include "cohort/status.hpp"

namespace examples {

// With 0 and cohort::kExitPreempted (75), the exit codes a launcher and the tests read.
inline constexpr int kExitFailure = 1;  // a collective, the environment or a file write failed
inline constexpr int kExitUsage = 2;    // bad flags or inputs: running again as is fails again

// The level --log-level names; an empty flag defers to $COHORT_LOG_LEVEL, else info.
cohort::Result<spdlog::level::level_enum> log_level(const std::string& flag);

// What every example starts with: its launch environment (which also catches the preemption
// signal) and its job logger at the --log-level it was given.
struct Job {
  cohort::Context ctx;
  std::shared_ptr<spdlog::logger> log;
};
// nullopt after saying why on stderr as `program`, with `exit_code` set: kExitUsage for a bad
// --log-level, kExitFailure for a bad launch environment.
std::optional<Job> start_job(std::string_view program, const std::string& log_level_flag, int& exit_code);

// How a program's work ended. `agreed`: every rank holds the same verdict, decided through a
// collective, so all can stop cleanly; otherwise a peer may be waiting in a collective and only
// an abort ends the job.
struct Outcome {
  Outcome() = default;
  Outcome(cohort::Status s) : status(std::move(s)) {}  // NOLINT(google-explicit-constructor): COHORT_TRY
  Outcome(cohort::Status s, bool a) : status(std::move(s)), agreed(a) {}
  cohort::Status status;
  bool agreed = false;
};

// The texts of one agreement's messages.
struct Agreement {
  // Context of a failed collective, and of the verdict unless verdict_context is false.
  std::string_view what;
  // The verdict of a rank that was fine itself: the reason is in another rank's log.
  std::string_view peer_failed = "another rank failed (see its log)";
  // False where the caller adds context of its own to the verdict (which folder, say).
  bool verdict_context = true;
};

// Makes one rank's verdict every rank's: when any rank's `local` is not OK, every rank returns a
// non-OK agreed Outcome, its own Status when it had one, else one with the highest code of any
// rank (a fixed choice) that points at the others' logs.
// REQUIRES: every rank of `comm` calls it at the same point.
Outcome agree(cohort::Communicator& comm, cohort::Status local, const Agreement& what);

// Ends main(): returns its exit code when every rank stops together (0, kExitUsage, kExitFailure
// or cohort::kExitPreempted), else aborts the job. `what` names the work ("training") in the log
// line of a rank that fails alone.
[[nodiscard]] int finish(const Outcome& outcome, cohort::Communicator& comm, spdlog::logger& log, std::string_view what,
                         int rank);

}  // namespace examples
