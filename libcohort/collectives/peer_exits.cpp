#include "collectives/peer_exits.hpp"

#include <algorithm>
#include <charconv>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iterator>

namespace cohort::detail {
namespace {

// "SIGKILL", or "signal 77" for one without a name; the launcher's words for the same signal.
std::string signal_name(int signal) {
  const char* abbrev = sigabbrev_np(signal);
  if (abbrev == nullptr) return "signal " + std::to_string(signal);
  return std::string("SIG") + abbrev;
}

bool parse_int(std::string_view text, std::int64_t& out) {
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), out);
  return ec == std::errc() && ptr == text.data() + text.size();
}

}  // namespace

std::optional<PeerExit> parse_peer_exit(std::string_view text) {
  PeerExit peer;
  // rank, host, code, signal, end_ns: a report missing any of them is not complete.
  unsigned seen = 0;
  while (!text.empty()) {
    const std::size_t start = text.find_first_not_of(" \t\n");
    if (start == std::string_view::npos) break;
    text.remove_prefix(start);
    const std::size_t end = std::min(text.find_first_of(" \t\n"), text.size());
    const std::string_view field = text.substr(0, end);
    text.remove_prefix(end);
    const std::size_t eq = field.find('=');
    if (eq == std::string_view::npos) return std::nullopt;
    const std::string_view key = field.substr(0, eq);
    const std::string_view value = field.substr(eq + 1);
    if (key == "host") {
      peer.host = std::string(value);
      seen |= 1u << 1;
      continue;
    }
    std::int64_t n = 0;
    if (key != "rank" && key != "code" && key != "signal" && key != "end_ns" && key != "stopped") continue;
    if (!parse_int(value, n)) return std::nullopt;
    if (key == "rank") {
      peer.rank = static_cast<int>(n);
      seen |= 1u << 0;
    } else if (key == "code") {
      peer.code = static_cast<int>(n);
      seen |= 1u << 2;
    } else if (key == "signal") {
      peer.signal = static_cast<int>(n);
      seen |= 1u << 3;
    } else if (key == "end_ns") {
      peer.end_ns = n;
      seen |= 1u << 4;
    } else {
      peer.stopped = n != 0;
    }
  }
  if (seen != 0x1f || peer.rank < 0) return std::nullopt;
  return peer;
}

std::vector<PeerExit> read_peer_exits(const std::filesystem::path& run_dir, int self) {
  std::vector<PeerExit> out;
  if (run_dir.empty()) return out;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(run_dir, ec)) {
    const std::string name = entry.path().filename().string();
    if (name.rfind("rank-", 0) != 0 || name.ends_with(".tmp")) continue;
    std::ifstream in(entry.path());
    const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    auto peer = parse_peer_exit(text);
    if (peer && peer->rank != self) out.push_back(std::move(*peer));
  }
  std::sort(out.begin(), out.end(), [](const PeerExit& a, const PeerExit& b) {
    return a.end_ns != b.end_ns ? a.end_ns < b.end_ns : a.rank < b.rank;
  });
  return out;
}

std::string describe_peer_exit(const PeerExit& peer, std::int64_t now_ns) {
  std::string s = "rank " + std::to_string(peer.rank) + " on host " + peer.host;
  if (peer.signal != 0) {
    s += " was killed by signal " + std::to_string(peer.signal) + " (" + signal_name(peer.signal) + ")";
  } else {
    s += " exited with code " + std::to_string(peer.code);
  }
  if (peer.stopped) s += " after the launcher stopped it";
  if (peer.end_ns > 0 && now_ns >= peer.end_ns) {
    char ago[32];
    std::snprintf(ago, sizeof ago, " %.1f s ago", static_cast<double>(now_ns - peer.end_ns) / 1e9);
    s += ago;
  }
  return s;
}

}  // namespace cohort::detail
