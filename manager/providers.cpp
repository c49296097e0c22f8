// The node providers: `local` starts runners as processes of this machine, `exec` runs the
// user's create and delete scripts, `static` waits for runners that register themselves.
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <map>
#include <memory>
#include <mutex>
#include <thread>

#include "cohort/log.hpp"
#include "config.hpp"
#include "daemon.hpp"
#include "local_network.hpp"
#include "local_nodes.hpp"
#include "provider.hpp"
#include "subprocess.hpp"

namespace cohort::manager {

namespace {

using namespace std::chrono_literals;

// Runners must outlive the manager (a restarted manager finds them still running their jobs),
// so they are started in a session of their own, with no parent-death signal, and reaped by a
// thread while this manager lives. As root each gets a network and UTS namespace of its own
// (local_network.hpp); otherwise they are plain processes.
class LocalProvider final : public NodeProvider {
 public:
  explicit LocalProvider(ProviderContext context) : c_(std::move(context)), network_(c_.state_dir, c_.runner_binary) {}

  Status create(const v1::ClusterSpec& cluster, const std::string& node) override {
    const auto dir = node_dir(node);
    std::error_code ec;
    std::filesystem::create_directories(dir / "work", ec);
    if (ec) return Status(Code::kIoError, "cannot create " + dir.string() + ": " + ec.message());
    std::vector<std::string> argv = {c_.runner_binary.string(),
                                     "--manager",
                                     c_.runner_manager_address,
                                     "--cluster",
                                     cluster.name(),
                                     "--node-name",
                                     node,
                                     "--join-token-file",
                                     c_.join_token_file.string(),
                                     "--work-dir",
                                     (dir / "work").string()};
    const bool isolated = LocalNodeNetwork::available();
    if (isolated) argv.insert(argv.end(), {"--isolate-hostname", node});
    auto spawned = spawn_detached(argv, dir / "runner.log");
    if (!spawned.ok()) return spawned.status();
    const pid_t pid = *spawned;
    std::ofstream(dir / "runner.pid") << pid << "\n";
    // The runner waits (bounded) for its address before it registers; a failure here is an
    // event, and the runner, left without one, exits and is never registered.
    std::thread([network = network_, namespaces = namespaces_, pid, isolated, dir, cluster = cluster.name(), node,
                 report = c_.report]() mutable {
      if (isolated) {
        auto address = network.attach(pid, node);
        if (address.ok()) {
          // The node's namespace, by which its processes are found once the runner is gone; held
          // until the node is removed, so that no later node's namespace gets its number.
          auto ns = NetNamespaceRef::of_process(pid);
          std::ofstream(dir / "netns") << (ns.ok() ? ns->inode() : 0) << "\n";
          if (ns.ok()) namespaces->hold(node, std::move(ns).value());
          logger()->info("local provider: node {} is {} (runner pid {})", node, *address, pid);
        } else {
          logger()->error("local provider: node {}: {}", node, address.status().to_string());
          if (report) report(cluster, node, "local provider: " + address.status().to_string());
        }
      }
      int status = 0;
      while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
      }
    }).detach();
    return {};
  }

  // The machine goes: its runner (SIGTERM, or SIGKILL at once), then anything left in its network
  // namespace, then its disk (the work directory: bundles, runc state, image cache), as a cloud
  // deletes a VM with its disk. runner.log stays, for the post-mortem.
  Status remove(const v1::ClusterSpec&, const std::string& node, Removal how) override {
    const auto dir = node_dir(node);
    const pid_t pid = read_pid_file(dir / "runner.pid");
    if (pid <= 1) return {};  // never started
    ino_t recorded = 0;
    std::ifstream(dir / "netns") >> recorded;
    // The pid may be reused once the runner is gone: only signal a process that is our runner.
    const bool alive = is_runner(pid, node);
    std::shared_ptr<NetNamespaceRef> held = namespaces_->take(node);
    if (!held && recorded != 0 && alive) {  // a manager restarted since the node was made
      auto ns = NetNamespaceRef::of_process(pid);
      if (ns.ok() && ns->inode() == recorded) held = std::make_shared<NetNamespaceRef>(std::move(ns).value());
    }
    // Without a hold (the runner gone before this manager saw it) the recorded number is the best
    // there is, unless a node this manager holds has it now.
    const ino_t ns = held ? held->inode() : namespaces_->holds(recorded) ? 0 : recorded;
    if (how == Removal::kAtOnce) {
      // The runner is in its namespace: one pass takes it and everything else there. Without a
      // namespace of its own (not root), its process tree.
      if (ns != 0) {
        kill_net_namespace(ns, kHolderComm);
      } else if (alive) {
        (void)kill_node_processes(pid, kHolderComm);
      }
    } else if (alive) {
      ::kill(pid, SIGTERM);  // the runner stops its job's processes with their grace, then exits
    }
    const auto grace = how == Removal::kAtOnce ? 2s : config::get(config::kStopGrace) + 2s;
    std::thread([pid, node, grace, ns, held, dir] {
      const auto deadline = std::chrono::steady_clock::now() + grace;
      while (std::chrono::steady_clock::now() < deadline && is_runner(pid, node))
        std::this_thread::sleep_for(50ms);
      if (is_runner(pid, node)) ::kill(pid, SIGKILL);
      // A job's processes outlive a runner killed with -9 only in its namespace.
      const auto until = std::chrono::steady_clock::now() + 5s;
      while (std::chrono::steady_clock::now() < until &&
             (is_runner(pid, node) || kill_net_namespace(ns, kHolderComm) > 0))
        std::this_thread::sleep_for(50ms);
      std::error_code ec;
      std::filesystem::remove_all(dir / "work", ec);
      if (ec)
        logger()->warn("local provider: node {}: cannot remove {}: {}", node, (dir / "work").string(), ec.message());
    }).detach();
    return {};
  }

 private:
  std::filesystem::path node_dir(const std::string& node) const { return c_.state_dir / "nodes" / node; }

  // The local network enters a node's namespace from a fork of the manager, which the kill passes by.
  static constexpr std::string_view kHolderComm = "cohort-manager";

  // A runner's command line holds its node name as a separate argument.
  static bool is_runner(pid_t pid, const std::string& node) {
    return process_matches(pid, {"cohort-runner", std::string(1, '\0') + node + std::string(1, '\0')});
  }

  // Each node's namespace, held from its making to the end of its removal (threads of either
  // may outlive the provider).
  class Namespaces {
   public:
    void hold(const std::string& node, NetNamespaceRef ns) {
      std::lock_guard lock(mu_);
      held_[node] = std::make_shared<NetNamespaceRef>(std::move(ns));
    }
    std::shared_ptr<NetNamespaceRef> take(const std::string& node) {
      std::lock_guard lock(mu_);
      auto it = held_.find(node);
      if (it == held_.end()) return nullptr;
      auto ns = std::move(it->second);
      held_.erase(it);
      return ns;
    }
    bool holds(ino_t inode) {
      std::lock_guard lock(mu_);
      for (const auto& [node, ns] : held_) {
        if (ns->inode() == inode) return true;
      }
      return false;
    }

   private:
    std::mutex mu_;
    std::map<std::string, std::shared_ptr<NetNamespaceRef>> held_;
  };

  ProviderContext c_;
  LocalNodeNetwork network_;
  std::shared_ptr<Namespaces> namespaces_ = std::make_shared<Namespaces>();
};

// Runs the cluster's scripts in the background, as Slurm runs ResumeProgram: the node's
// registration tells the manager it worked; a failing script is reported as an event.
class ExecProvider final : public NodeProvider {
 public:
  explicit ExecProvider(ProviderContext context) : c_(std::move(context)) {}

  Status create(const v1::ClusterSpec& cluster, const std::string& node) override {
    run(cluster, node, cluster.exec().create_command(), "create");
    return {};
  }
  Status remove(const v1::ClusterSpec& cluster, const std::string& node, Removal how) override {
    run(cluster, node, cluster.exec().delete_command(), "delete", how == Removal::kAtOnce ? "at_once" : "graceful");
    return {};
  }

 private:
  void run(const v1::ClusterSpec& cluster, const std::string& node, const std::string& command, const std::string& what,
           const std::string& removal = "") {
    std::string token;
    std::ifstream(c_.join_token_file) >> token;
    SpawnOptions o;
    o.argv = {"/bin/sh", "-c", command};
    o.env = {{"COHORT_NODE_NAME", node},
             {"COHORT_CLUSTER", cluster.name()},
             {"COHORT_VM_SIZE", cluster.vm_size()},
             {"COHORT_VM_PRIORITY", cluster.vm_priority()},
             {"COHORT_MANAGER", c_.public_address},
             {"COHORT_JOIN_TOKEN", token}};
    if (!removal.empty()) o.env.emplace_back("COHORT_REMOVAL", removal);
    o.parent_death_signal = 0;
    o.capture_stdout = true;
    o.capture_stderr = true;
    auto report = c_.report;
    const auto timeout = config::get(config::kProvisioningTimeout);
    std::thread([o = std::move(o), report, cluster = cluster.name(), node, what, timeout] {
      auto r = run_captured(o, timeout);
      std::string failure;
      if (!r.ok()) {
        failure = r.status().to_string();
      } else if (r->timed_out) {
        failure = "timed out";
      } else if (!r->status.success()) {
        failure = r->status.describe() + ": " + r->err.substr(r->err.size() > 400 ? r->err.size() - 400 : 0);
      }
      if (!failure.empty() && report)
        report(cluster, node, "exec provider " + what + " script for " + node + ": " + failure);
    }).detach();
  }

  ProviderContext c_;
};

class StaticProvider final : public NodeProvider {
 public:
  Status create(const v1::ClusterSpec& cluster, const std::string&) override {
    return failed_precondition("cluster " + cluster.name() + " is static: its nodes register themselves");
  }
  Status remove(const v1::ClusterSpec&, const std::string&, Removal) override { return {}; }
  bool can_scale() const override { return false; }
};

}  // namespace

Result<std::unique_ptr<NodeProvider>> make_provider(const std::string& name, const ProviderContext& context) {
  if (name == "local") return std::unique_ptr<NodeProvider>(new LocalProvider(context));
  if (name == "exec") return std::unique_ptr<NodeProvider>(new ExecProvider(context));
  if (name == "static") return std::unique_ptr<NodeProvider>(new StaticProvider());
  return invalid_argument("provider \"" + name + "\": expected local, static or exec");
}

}  // namespace cohort::manager
