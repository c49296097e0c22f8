#include "collectives/comm_health.hpp"

#include <ctime>
#include <utility>

#include "collectives/peer_exits.hpp"

namespace cohort::detail {
namespace {

// What every verdict ends with: the communicator is done for, and what the user does next.
constexpr std::string_view kWhatNext =
    ". This communicator cannot be used again (MPI cannot cancel a collective, and MPI may still write its buffers): "
    "end this rank with a non-zero exit, and `cohort run` ends the job";

std::int64_t realtime_ns() {
  timespec now{};
  clock_gettime(CLOCK_REALTIME, &now);
  return static_cast<std::int64_t>(now.tv_sec) * 1'000'000'000 + now.tv_nsec;
}

}  // namespace

CommHealth::CommHealth(int rank, CommunicatorOptions options) : rank_(rank), options_(std::move(options)) {}

std::chrono::steady_clock::time_point CommHealth::deadline() const {
  return std::chrono::steady_clock::now() + timeout();
}

Status CommHealth::check(std::string_view what) const {
  if (failure_.ok()) return {};
  return {failure_.code(),
          std::string(what) + ": not run, because an earlier collective failed for good: " + failure_.message()};
}

std::string CommHealth::peers_ended() const {
  const std::vector<PeerExit> peers = read_peer_exits(options_.run_dir, rank_);
  if (peers.empty()) return {};
  const std::int64_t now = realtime_ns();
  std::string s = peers.size() == 1 ? "its peer " : "its peers ";
  for (std::size_t i = 0; i < peers.size(); ++i) {
    if (i > 0) s += "; ";
    s += describe_peer_exit(peers[i], now);
  }
  return s;
}

Status CommHealth::give_up(std::string_view what) {
  const std::string waited = " within " + std::to_string(timeout().count()) + " ms (the collective timeout, " +
                             std::string(kCollectiveTimeoutVariable) + ")";
  if (std::string peers = peers_ended(); !peers.empty()) {
    return broken_by({Code::kDisconnected, std::string(what) + " cannot complete: " + peers + "; it did not complete" +
                                               waited + std::string(kWhatNext)});
  }
  std::string why = std::string(what) + " did not complete" + waited +
                    ": a peer is not taking part in it (hung, far slower, or calling collectives in another order)";
  why += options_.run_dir.empty() ? "; without a launcher's rank reports ($COHORT_RUN_DIR) it cannot tell which"
                                  : "; no rank of the job has ended";
  return broken_by({Code::kTimedOut, why + std::string(kWhatNext)});
}

Status CommHealth::fail(std::string_view what, const Status& error) {
  std::string message = std::string(what) + ": " + error.message();
  if (std::string peers = peers_ended(); !peers.empty()) message += "; " + peers;
  return broken_by({Code::kDisconnected, message + std::string(kWhatNext)});
}

Status CommHealth::broken_by(Status failure) {
  if (failure_.ok()) failure_ = failure;
  return failure;
}

}  // namespace cohort::detail
