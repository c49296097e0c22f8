// The local provider's node network. As root, each runner starts in a network and UTS namespace
// of its own (`cohort-runner --isolate-hostname NODE`); this joins it to a bridge that lives in
// one more namespace, held by a detached `cohort-runner --hold-network-namespace` whose pid is in
// STATE/nodes/bridge.pid. Nodes get 10.233.0.N/24 (STATE/nodes/NODE/address); nothing is added
// to the machine's own network namespace, and each namespace goes with its last process.
//
// Nothing here is tied to the manager's life: a restarted manager reuses the bridge, and the
// nodes and their jobs keep running meanwhile. `cohort down` stops the holder after the runners.
#pragma once

#include <sys/types.h>

#include <filesystem>
#include <string>

#include "cohort/status.hpp"

namespace cohort::manager {

// The nodes' /24: not 10.231.0 (`cohort run --nodes`), so the two are never confused in logs.
inline constexpr const char* kLocalNodeSubnet = "10.233.0";

// What the bridge holder's command line holds after --hold-network-namespace.
std::string bridge_holder_label(const std::filesystem::path& state_dir);

class LocalNodeNetwork {
 public:
  LocalNodeNetwork(std::filesystem::path state_dir, std::filesystem::path runner_binary);

  // True when runners get namespaces of their own: running as root with `ip` (iproute2) on
  // PATH. The first call that says false logs why.
  static bool available();

  // Connects the runner `pid` of `node`, started with --isolate-hostname, to the bridge (which
  // it starts when no live one is recorded) and gives it the lowest free address, which it
  // returns. Bounded: each step waits a few seconds at most. Safe to call from several threads.
  Result<std::string> attach(pid_t pid, const std::string& node);

 private:
  Result<pid_t> bridge();  // REQUIRES: the file's mutex held
  Result<int> free_host_number(const std::string& node) const;

  std::filesystem::path state_dir_;
  std::filesystem::path runner_binary_;
};

}  // namespace cohort::manager
