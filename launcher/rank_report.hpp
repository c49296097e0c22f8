// What each rank's wrapper (cohort-exec rank) leaves behind when its program ends, and how
// `cohort run` picks the rank that failed first from those reports. libcohort reads them too
// (libcohort/collectives/peer_exits.*, to name the peer a timed-out collective lost): keep the
// format in step with it (tests/fault/collective_failure_test.cpp checks).
//
// A rank that calls Communicator::abort() also leaves an empty abort-RANK file beside them, which
// makes `cohort run` stop the other ranks without its failure grace.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "cohort/status.hpp"
#include "exit_status.hpp"

namespace cohort {

struct RankReport {
  int rank = -1;
  std::string host;
  pid_t pid = -1;
  ExitStatus status;
  std::int64_t end_ns = 0;  // CLOCK_REALTIME when the program ended
  bool stopped = false;     // the wrapper was told to stop (SIGTERM/SIGINT/SIGHUP) before it ended
};

std::string format_report(const RankReport& report);
Result<RankReport> parse_report(const std::string& text);

// Writes dir/rank-N atomically (a temporary file renamed into place).
Status write_report(const std::filesystem::path& dir, const RankReport& report);
// Every readable report in dir; unreadable ones are skipped (their rank then counts as silent).
std::vector<RankReport> read_reports(const std::filesystem::path& dir);

// The rank that failed on its own first (earliest end among failed ranks that were not told to
// stop); nullopt when no rank failed that way.
std::optional<RankReport> first_failure(const std::vector<RankReport>& reports);

}  // namespace cohort
