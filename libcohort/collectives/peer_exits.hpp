// The ranks of this job that have already ended, as the launcher saw them: `cohort-exec rank`
// writes one report per rank into $COHORT_RUN_DIR when that rank's program ends (exit code or
// signal, host, time). A collective that times out reads them to name the peer it lost.
//
// The format is launcher/rank_report.cpp's (one line of key=value fields); this side parses only
// the fields it needs and ignores the others. tests/fault/collective_failure_test.cpp checks that
// the two stay in step.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace cohort::detail {

struct PeerExit {
  int rank = -1;
  std::string host;
  int code = 0;             // exit code, when it exited
  int signal = 0;           // the signal that killed it, or 0
  std::int64_t end_ns = 0;  // CLOCK_REALTIME when it ended
  bool stopped = false;     // the launcher stopped it (it did not fail on its own)
};

// One report's text; nullopt when it is not a complete report (being written, or garbage).
std::optional<PeerExit> parse_peer_exit(std::string_view text);

// Every complete report in `run_dir` of a rank other than `self`, earliest end first. An empty or
// unreadable directory gives none: the caller then only knows that its collective timed out.
std::vector<PeerExit> read_peer_exits(const std::filesystem::path& run_dir, int self);

// "rank 2 on host node-1 was killed by signal 9 (SIGKILL) 1.8 s ago", with `now_ns` the current
// CLOCK_REALTIME in nanoseconds.
std::string describe_peer_exit(const PeerExit& peer, std::int64_t now_ns);

}  // namespace cohort::detail
