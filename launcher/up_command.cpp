#include "up_command.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>
#include <thread>
#include <vector>

#include "cohort/v1/cohort.grpc.pb.h"
#include "config.hpp"
#include "daemon.hpp"
#include "rpc.hpp"
#include "subprocess.hpp"

namespace cohort::cli {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

namespace {

std::string read_word(const fs::path& path) {
  std::ifstream in(path);
  std::string v;
  in >> v;
  return v;
}

bool is_process(pid_t pid, const std::string& program) {
  return process_matches(pid, {program});
}

std::string tail(const fs::path& path, std::size_t bytes) {
  std::ifstream in(path, std::ios::binary);
  std::string s((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  return s.size() > bytes ? s.substr(s.size() - bytes) : s;
}

fs::path sibling(const std::string& program) {
  return fs::read_symlink("/proc/self/exe").parent_path() / program;
}

// Sends SIGTERM to each, then SIGKILL to those still there after `grace`, and returns once each has
// exited. Exited is what its pidfd says: a process whose command line is already gone may still
// be freeing its memory and files, and still be in its network namespace.
void stop_all(const std::vector<std::pair<pid_t, std::string>>& procs, std::chrono::milliseconds grace) {
  std::vector<int> pidfds;
  for (const auto& [pid, program] : procs) {
    if (!is_process(pid, program)) continue;
    const int fd = static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
    if (fd >= 0 && !is_process(pid, program)) {  // the pid was reused between the two looks
      ::close(fd);
      continue;
    }
    if (fd >= 0) pidfds.push_back(fd);
    ::kill(pid, SIGTERM);
  }
  auto ended = [&](std::chrono::milliseconds within) {
    const auto deadline = std::chrono::steady_clock::now() + within;
    for (;;) {
      bool all = true;
      for (int fd : pidfds) {
        pollfd p{fd, POLLIN, 0};
        all = all && ::poll(&p, 1, 0) == 1;
      }
      if (all || std::chrono::steady_clock::now() >= deadline) return all;
      std::this_thread::sleep_for(20ms);
    }
  };
  if (!ended(grace)) {
    for (const auto& [pid, program] : procs) {
      if (is_process(pid, program)) {
        std::cerr << "cohort: " << program << " " << pid << " did not stop within " << grace.count() << " ms: killed\n";
        ::kill(pid, SIGKILL);
      }
    }
    (void)ended(5s);
  }
  for (int fd : pidfds)
    ::close(fd);
}

}  // namespace

int run_up(const UpOptions& options) {
  std::error_code ec;
  const fs::path dir = fs::absolute(options.state_dir, ec);
  if (!fs::exists(dir / "state.db")) {
    std::vector<std::string> init = {sibling("cohort-manager").string(), "init", "--state-dir", dir.string()};
    if (options.tls) init.push_back("--tls");
    auto r = run_captured({.argv = init}, 60s);
    if (!r.ok() || !r->status.success()) {
      std::cerr << "cohort: cohort-manager init failed: " << (r.ok() ? r->err : r.status().to_string()) << "\n";
      return 1;
    }
  }
  const pid_t running = read_pid_file(dir / "manager.pid");
  pid_t pid = -1;
  if (is_process(running, "cohort-manager")) {
    pid = running;
  } else {
    auto spawned = spawn_detached(
        {sibling("cohort-manager").string(), "serve", "--state-dir", dir.string(), "--listen", options.listen},
        dir / "manager.log");
    if (!spawned.ok()) {
      std::cerr << "cohort: " << spawned.status().to_string() << "\n";
      return 1;
    }
    pid = *spawned;
  }
  const std::string token = read_word(dir / "admin-token");
  const std::string ca = fs::exists(dir / "tls" / "cert.pem") ? (dir / "tls" / "cert.pem").string() : "";
  const auto deadline = std::chrono::steady_clock::now() + config::get(config::kManagerStart);
  std::string address;
  Status last;
  while (std::chrono::steady_clock::now() < deadline) {
    // Our own child: waitpid says whether it ended (its /proc cmdline is briefly empty during exec).
    int wstatus = 0;
    const bool ended = pid == running ? !is_process(pid, "cohort-manager") : ::waitpid(pid, &wstatus, WNOHANG) == pid;
    if (ended) {
      std::cerr << "cohort: the manager exited while starting; the end of " << (dir / "manager.log").string() << ":\n"
                << tail(dir / "manager.log", 2000);
      return 1;
    }
    address = read_word(dir / "manager.addr");
    if (!address.empty()) {
      auto channel = rpc::make_channel({address, token, ca});
      if (channel.ok()) {
        auto stub = v1::ClusterService::NewStub(*channel);
        grpc::ClientContext ctx;
        rpc::prepare(ctx, token, 2s);
        v1::ListClustersResponse out;
        last = rpc::from_grpc(stub->ListClusters(&ctx, {}, &out), "ListClusters", address);
        if (last.ok()) break;
      }
    }
    std::this_thread::sleep_for(100ms);
  }
  if (address.empty() || !last.ok()) {
    std::cerr << "cohort: the manager did not answer within " << config::get(config::kManagerStart).count() << " ms ("
              << last.to_string() << "); see " << (dir / "manager.log").string() << "\n";
    return 1;
  }
  {
    const fs::path env = dir / "env";
    std::ofstream out(env.string() + ".tmp");
    out << "COHORT_MANAGER=" << address << "\nCOHORT_TOKEN=" << token << "\n";
    if (!ca.empty()) out << "COHORT_CA=" << ca << "\n";
    out << "export COHORT_MANAGER COHORT_TOKEN" << (ca.empty() ? "" : " COHORT_CA") << "\n";
    out.close();
    fs::permissions(env.string() + ".tmp", fs::perms::owner_read | fs::perms::owner_write, ec);
    fs::rename(env.string() + ".tmp", env, ec);
  }
  std::cout << "cohort manager " << (pid == running ? "already running" : "started") << " (pid " << pid << ") at "
            << address << "\n"
            << "  source " << (dir / "env").string() << "   # sets COHORT_MANAGER and COHORT_TOKEN\n"
            << "  cohort down --state-dir " << dir.string() << "   # stops it and its nodes\n";
  return 0;
}

int run_down(const std::string& state_dir) {
  std::error_code ec;
  const fs::path dir = fs::absolute(state_dir, ec);
  if (!fs::exists(dir / "state.db")) {
    std::cerr << "cohort: " << dir.string() << " is not a Cohort state directory (no state.db)\n";
    return 1;
  }
  const pid_t manager = read_pid_file(dir / "manager.pid");
  // The manager first, so it does not replace the runners being stopped.
  stop_all({{manager, "cohort-manager"}}, 10s);
  std::vector<std::pair<pid_t, std::string>> runners;
  for (const auto& node : fs::directory_iterator(dir / "nodes", ec)) {
    const pid_t pid = read_pid_file(node.path() / "runner.pid");
    if (is_process(pid, "cohort-runner")) runners.emplace_back(pid, "cohort-runner");
  }
  stop_all(runners, config::get(config::kStopGrace) + 3s);
  // Then the holder of the local nodes' bridge namespace (as root only): the namespace, and with
  // it the bridge and every node's port, goes with it.
  const pid_t bridge = read_pid_file(dir / "nodes" / "bridge.pid");
  if (is_process(bridge, "--hold-network-namespace")) stop_all({{bridge, "--hold-network-namespace"}}, 5s);
  fs::remove(dir / "nodes" / "bridge.pid", ec);
  fs::remove(dir / "env", ec);
  std::cout << "cohort manager stopped" << (manager > 0 ? " (pid " + std::to_string(manager) + ")" : "") << ", "
            << runners.size() << " runner(s) stopped\n";
  return 0;
}

void add_up_down_commands(CLI::App& app, Commands& commands) {
  auto up_options = std::make_shared<UpOptions>();
  auto* up = app.add_subcommand("up", "Start an embedded manager (local provider) in the background; write DIR/env");
  up->add_option("--state-dir", up_options->state_dir, "the manager's state directory (made when new)")->required();
  up->add_option("--listen", up_options->listen, "the manager's TCP address (port 0: any free port)");
  up->add_flag("--tls", up_options->tls, "a new state directory gets a self-signed TLS certificate");
  commands.push_back({up, [up_options] { return run_up(*up_options); }});

  auto dir = std::make_shared<std::string>();
  auto* down = app.add_subcommand("down", "Stop the manager of `cohort up` and every runner it started");
  down->add_option("--state-dir", *dir, "the state directory given to `cohort up`")->required();
  commands.push_back({down, [dir] { return run_down(*dir); }});
}

}  // namespace cohort::cli
