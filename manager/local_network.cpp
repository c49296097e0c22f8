#include "local_network.hpp"

#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <mutex>
#include <set>
#include <thread>

#include "cohort/log.hpp"
#include "daemon.hpp"
#include "local_nodes.hpp"
#include "subprocess.hpp"

namespace cohort::manager {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

namespace {

// How long a process just started may take to enter its own network namespace: it does so
// first thing in main, so milliseconds in practice; this bounds a runner that died at start.
constexpr auto kNamespaceWait = 5s;

// One manager, one state directory: every provider instance shares the bridge and the
// addresses, so one lock serializes attaching.
std::mutex g_network_mutex;

bool ip_on_path() {
  std::string path = std::getenv("PATH") != nullptr ? std::getenv("PATH") : "";
  path += ":/usr/sbin:/sbin:/usr/bin:/bin";
  std::size_t start = 0;
  while (start <= path.size()) {
    const auto colon = path.find(':', start);
    const std::string dir = path.substr(start, colon == std::string::npos ? std::string::npos : colon - start);
    if (!dir.empty() && ::access((dir + "/ip").c_str(), X_OK) == 0) return true;
    if (colon == std::string::npos) break;
    start = colon + 1;
  }
  return false;
}

ino_t net_namespace_of(pid_t pid) {
  struct stat st {};
  const std::string path = pid > 0 ? "/proc/" + std::to_string(pid) + "/ns/net" : "/proc/self/ns/net";
  return ::stat(path.c_str(), &st) == 0 ? st.st_ino : 0;
}

// Waits until `pid` is in a network namespace other than this process's.
Status wait_for_own_namespace(pid_t pid, const std::string& what) {
  const ino_t mine = net_namespace_of(-1);
  const auto deadline = std::chrono::steady_clock::now() + kNamespaceWait;
  for (;;) {
    const ino_t theirs = net_namespace_of(pid);
    if (theirs == 0) return Status(Code::kUnavailable, what + " (pid " + std::to_string(pid) + ") exited at start");
    if (theirs != mine) return {};
    if (std::chrono::steady_clock::now() >= deadline) {
      return Status(Code::kTimedOut, what + " (pid " + std::to_string(pid) +
                                         ") did not enter a network namespace of "
                                         "its own within 5 s");
    }
    std::this_thread::sleep_for(5ms);
  }
}

void reap_in_background(pid_t pid) {
  std::thread([pid] {
    while (::waitpid(pid, nullptr, 0) < 0 && errno == EINTR) {
    }
  }).detach();
}

bool is_node_runner(pid_t pid, const std::string& node) {
  return process_matches(pid, {"cohort-runner", std::string(1, '\0') + node + std::string(1, '\0')});
}

}  // namespace

std::string bridge_holder_label(const fs::path& state_dir) {
  return (state_dir / "nodes" / "bridge").string();
}

LocalNodeNetwork::LocalNodeNetwork(fs::path state_dir, fs::path runner_binary)
    : state_dir_(std::move(state_dir)), runner_binary_(std::move(runner_binary)) {}

bool LocalNodeNetwork::available() {
  static const bool yes = [] {
    if (::geteuid() != 0) {
      logger()->info(
          "local provider: not root, so runners are plain processes sharing this machine's network "
          "and hostname (run the manager as root for a namespace per node)");
      return false;
    }
    if (!ip_on_path()) {
      logger()->warn(
          "local provider: `ip` (iproute2) is not on PATH, so runners are plain processes sharing this "
          "machine's network and hostname (install iproute2 for a namespace per node)");
      return false;
    }
    return true;
  }();
  return yes;
}

Result<pid_t> LocalNodeNetwork::bridge() {
  const fs::path pid_file = state_dir_ / "nodes" / "bridge.pid";
  const std::string label = bridge_holder_label(state_dir_);
  const pid_t recorded = read_pid_file(pid_file);
  if (process_matches(recorded, {"cohort-runner", "--hold-network-namespace", label})) return recorded;

  auto spawned =
      spawn_detached({runner_binary_.string(), "--hold-network-namespace", label}, state_dir_ / "nodes" / "bridge.log");
  if (!spawned.ok()) return spawned.status().with_context("starting the local nodes' bridge holder");
  const pid_t pid = *spawned;
  reap_in_background(pid);
  Status s = wait_for_own_namespace(pid, "the local nodes' bridge holder");
  if (s.ok()) s = run_ip_batch(pid, "link add br0 type bridge\nlink set br0 up\n");
  if (s.ok()) {
    // Recorded only once the bridge exists, so a reused holder always has one.
    std::ofstream out(pid_file);
    out << pid << "\n";
    if (!out.flush()) s = Status(Code::kIoError, "cannot write " + pid_file.string());
  }
  if (!s.ok()) {
    ::kill(pid, SIGKILL);
    return s.with_context("making the local nodes' bridge");
  }
  return pid;
}

// An address no node of this state directory ever had, while there is one: the live nodes keep
// an old node's MAC for its address in their neighbour tables for up to half a minute, and a new
// node given that address was unreachable from them meanwhile (MPI_Init waited 11 s on it).
// Then the lowest address no live node has.
Result<int> LocalNodeNetwork::free_host_number(const std::string& node) const {
  std::set<int> used, ever;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(state_dir_ / "nodes", ec)) {
    const std::string other = e.path().filename().string();
    if (other == node || !e.is_directory()) continue;
    std::ifstream in(e.path() / "address");
    std::string address;
    if (!(in >> address)) continue;
    const auto dot = address.rfind('.');
    if (dot == std::string::npos) continue;
    const int n = std::atoi(address.c_str() + dot + 1);
    ever.insert(n);
    if (is_node_runner(read_pid_file(e.path() / "runner.pid"), other)) used.insert(n);
  }
  for (int n = 1; n <= 254; ++n)
    if (ever.count(n) == 0) return n;
  for (int n = 1; n <= 254; ++n)
    if (used.count(n) == 0) return n;
  return Status(Code::kResourceExhausted,
                "all 254 addresses of " + std::string(kLocalNodeSubnet) + ".0/24 are taken by live local nodes");
}

Result<std::string> LocalNodeNetwork::attach(pid_t pid, const std::string& node) {
  std::lock_guard lock(g_network_mutex);
  COHORT_ASSIGN_OR_RETURN(const pid_t bridge_pid, bridge());
  COHORT_TRY(wait_for_own_namespace(pid, "the runner of " + node));
  COHORT_ASSIGN_OR_RETURN(const int n, free_host_number(node));
  const std::string address = std::string(kLocalNodeSubnet) + "." + std::to_string(n);
  const std::string port = "p" + std::to_string(n);
  // A port of that name is left only by an old node whose namespace something still holds:
  // deleting it cuts that node off, as its runner is gone. Failure means there was none.
  SpawnOptions del;
  del.argv = {"ip", "link", "del", port};
  del.in_child = [bridge_pid] { return enter_node_namespaces(bridge_pid); };
  (void)run_captured(std::move(del), 10s);
  // Made from inside the bridge's namespace, straight into the runner's: never in this one.
  COHORT_TRY(run_ip_batch(bridge_pid, "link add " + port + " type veth peer name eth0 netns " + std::to_string(pid) +
                                          "\nlink set " + port + " master br0\nlink set " + port + " up\n")
                 .with_context("connecting node " + node + " to the bridge"));
  COHORT_TRY(run_ip_batch(pid, "link set lo up\naddr add " + address + "/24 dev eth0\nlink set eth0 up\n")
                 .with_context("configuring node " + node));
  std::ofstream(state_dir_ / "nodes" / node / "address") << address << "\n";
  return address;
}

}  // namespace cohort::manager
