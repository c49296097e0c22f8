// cohort-runner: the node agent. Registers this machine with a Cohort manager, heartbeats, runs
// the attempts it is assigned and ships their logs. SIGTERM or SIGINT: stop every job (SIGTERM,
// SIGKILL after the grace), report, exit 0.
//
// Exit codes: 0 after a shutdown; 1 when it cannot start (a flag, the work directory); 2 when
// the manager refused it (join token, unknown cluster or node).
#include <pthread.h>
#include <signal.h>

#include <CLI/CLI.hpp>
#include <iostream>
#include <thread>

#include "cohort/log.hpp"
#include "logging.hpp"
#include "options.hpp"
#include "runner.hpp"

using namespace cohort;
using namespace cohort::runner;

namespace {

// The manager said no: asking again will not help.
bool refused(Code code) {
  return code == Code::kPermissionDenied || code == Code::kAuthError || code == Code::kNotFound ||
         code == Code::kInvalidArgument || code == Code::kFailedPrecondition || code == Code::kUnimplemented ||
         code == Code::kAlreadyExists;
}

}  // namespace

int main(int argc, char** argv) {
  // Signals are taken by sigwait on one thread; every thread inherits this mask. SIGUSR1 only
  // wakes that thread at the end.
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGHUP);
  sigaddset(&set, SIGUSR1);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  ::signal(SIGPIPE, SIG_IGN);

  CLI::App app{"cohort-runner: the node agent of a Cohort cluster"};
  RunnerOptions o;
  std::string work_dir, join_token_file, level, isolate_hostname, hold_label;
  app.add_option("--manager", o.manager.address, "the manager: HOST:PORT or unix:/PATH (default: $COHORT_MANAGER)");
  app.add_option("--cluster", o.cluster, "the cluster this node joins");
  app.add_option("--node-name", o.node_name, "this node's name, given by the provider; empty: the manager names it");
  app.add_option("--join-token-file", join_token_file, "file holding the join token (default: $COHORT_JOIN_TOKEN)");
  app.add_option("--work-dir", work_dir,
                 "where jobs run (default /var/lib/cohort-runner as root, else $TMPDIR/cohort-runner-UID)");
  app.add_option("--ca", o.manager.ca_file, "PEM CA certificate: TLS to the manager (default: $COHORT_CA)");
  app.add_option("--hostname", o.hostname, "hostname reported (default: this machine's)");
  app.add_option("--address", o.address,
                 "address other nodes reach this one at (default: the first non-loopback IPv4, or 127.0.0.1)");
  app.add_option("--scheduled-events-url", o.scheduled_events_url,
                 "poll this Azure-style Scheduled Events endpoint for Preempt events (e.g. "
                 "http://169.254.169.254/metadata/scheduledevents?api-version=2020-07-01; default: "
                 "$COHORT_SCHEDULED_EVENTS_URL; none: no polling)");
  app.add_option("--log-level", level, "trace, debug, info, warn, error (default: $COHORT_LOG_LEVEL or info)");
  app.add_option("--isolate-hostname", isolate_hostname,
                 "run in a new network and UTS namespace with this hostname (root; the local provider connects it)");
  app.add_option("--hold-network-namespace", hold_label,
                 "only hold a new network namespace until SIGTERM (the local provider's bridge); the value labels it");
  CLI11_PARSE(app, argc, argv);
  if (!hold_label.empty()) return hold_network_namespace();
  // Before any thread exists: unshare(CLONE_NEWNET) moves only the calling thread.
  if (!isolate_hostname.empty()) {
    if (Status s = isolate_node(isolate_hostname); !s.ok()) {
      std::cerr << "cohort-runner: " << s.message() << "\n";
      return 1;
    }
  }
  o.join_token_file = join_token_file;
  o.work_dir = work_dir;

  auto parsed = level.empty() ? log_level_from_environment(spdlog::level::info) : parse_log_level(level);
  if (!parsed.ok()) {
    std::cerr << "cohort-runner: " << parsed.status().message() << "\n";
    return 1;
  }
  init_runner_logging(o.node_name.empty() ? o.cluster + "/(unnamed)" : o.node_name, *parsed);
  if (!isolate_hostname.empty() && o.address.empty()) {
    // Reported at registration: wait for the address the provider gives this namespace.
    auto address = wait_for_address(kIsolatedAddressWait);
    if (!address.ok()) {
      std::cerr << "cohort-runner: " << address.status().message() << "\n";
      return 1;
    }
    o.address = *address;
  }
  if (Status s = complete(o); !s.ok()) {
    std::cerr << "cohort-runner: " << s.message() << "\n";
    return 1;
  }

  Runner runner(o, RunnerTimeouts::from_config());
  std::thread signals([&runner, set] {
    int sig = 0;
    sigwait(&set, &sig);
    if (sig == SIGUSR1) return;
    logger()->info("{}: shutting down", signal_name(sig));
    runner.request_shutdown("the runner got " + signal_name(sig));
  });
  const Status s = runner.run();
  pthread_kill(signals.native_handle(), SIGUSR1);
  signals.join();
  if (!s.ok()) {
    std::cerr << "cohort-runner: " << s.message() << "\n";
    return refused(s.code()) ? 2 : 1;
  }
  return 0;
}
