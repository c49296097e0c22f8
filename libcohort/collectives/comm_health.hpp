// Whether a communicator's collectives can still complete, and the verdict on one that did not:
// the collective timeout, where the launcher reports ranks that ended, and, once a collective has
// failed for good, that failure, which every later call on the communicator returns at once.
//
// Shared (shared_ptr) by a communicator and its Work handles; used from the communicator's
// thread only. It touches no MPI, so it is tested on its own.
#pragma once

#include <chrono>
#include <filesystem>
#include <string>
#include <string_view>

#include "cohort/collectives.hpp"

namespace cohort::detail {

class CommHealth {
 public:
  // `rank`: this process, whose own report is not a peer's. REQUIRES: options are valid
  // (collective_timeout in [1 ms, kMaxCollectiveTimeout]).
  CommHealth(int rank, CommunicatorOptions options);

  std::chrono::milliseconds timeout() const noexcept { return options_.collective_timeout; }
  const std::filesystem::path& run_dir() const noexcept { return options_.run_dir; }
  // When a collective that starts now must have completed.
  std::chrono::steady_clock::time_point deadline() const;
  bool broken() const noexcept { return !failure_.ok(); }

  // OK while the communicator is usable; otherwise why `what` cannot run: the failure that broke
  // it, with the same code, so a caller that missed the first error still learns which peer.
  Status check(std::string_view what) const;

  // `what` has waited timeout() for its peers without completing. Disconnected naming every peer
  // that has ended (from the launcher's reports: rank, host, exit code or signal, how long ago);
  // TimedOut naming `what` and the timeout when none has. Breaks the communicator.
  Status give_up(std::string_view what);

  // `what` failed with `error` (an MPI error): Disconnected with that error and the peers that
  // have ended, if any. Breaks the communicator.
  Status fail(std::string_view what, const Status& error);

 private:
  Status broken_by(Status failure);  // records the first failure, returns `failure`
  // "; its peer rank 2 on host h was killed by signal 9 (SIGKILL) 1.2 s ago" or "" when none ended.
  std::string peers_ended() const;

  int rank_;
  CommunicatorOptions options_;
  Status failure_;  // OK until a collective fails for good; then the first such failure
};

}  // namespace cohort::detail
