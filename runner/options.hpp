// What a runner is told on its command line and finds out about its machine: the manager, its
// cluster and node, the join token, the work directory, and the hostname and address it reports.
#pragma once

#include <chrono>
#include <filesystem>
#include <string>

#include "cohort/status.hpp"
#include "rpc.hpp"

namespace cohort::runner {

struct RunnerOptions {
  rpc::Endpoint manager;  // address and CA file; the token is the join token or the credential
  std::string cluster;
  std::string node_name;                  // "" lets the manager name a static node
  std::filesystem::path join_token_file;  // read at every registration, so a rotated token works
  std::string join_token;                 // COHORT_JOIN_TOKEN, when no file is given
  std::filesystem::path work_dir;         // jobs/<job>/<attempt>/ lives here
  std::string hostname;
  std::string address;
  // Azure-style Scheduled Events endpoint polled for Preempt events ("" polls nothing); see
  // scheduled_events.hpp. Its Resources are matched against the hostname and the node name.
  std::string scheduled_events_url;
};

// /var/lib/cohort-runner for root; $TMPDIR/cohort-runner-<uid> (or /tmp/...) otherwise.
std::filesystem::path default_work_dir();
// gethostname(), or "localhost" when that fails.
std::string default_hostname();
// The first IPv4 address of an interface that is up and not loopback, in this network namespace
// (each local test node has its own); 127.0.0.1 when there is none.
std::string default_address();

// --isolate-hostname: moves this process into a new network and a new UTS namespace and sets
// the hostname to `hostname`. REQUIRES: root, and no thread yet (unshare of CLONE_NEWNET
// applies to the calling thread only). The local provider then gives the namespace its eth0.
Status isolate_node(const std::string& hostname);

// How long an isolated runner waits for the provider to give its namespace an address; the
// provider does so milliseconds after the start, so this only bounds a provider that failed.
inline constexpr std::chrono::seconds kIsolatedAddressWait{10};

// Waits (bounded by `timeout`) for a non-loopback IPv4 address in this network namespace;
// TimedOut when none came.
Result<std::string> wait_for_address(std::chrono::milliseconds timeout);

// --hold-network-namespace: enters a new network namespace and waits for SIGTERM, SIGINT or
// SIGHUP, which REQUIRES blocked; holds the local nodes' bridge. Returns the exit code.
int hold_network_namespace();

// Fills what flags left empty from the environment and the machine, checks what must be there,
// and creates the work directory. The first problem is an InvalidArgument saying what to pass.
Status complete(RunnerOptions& options);

// The join token: the file's first word when a file is given, else COHORT_JOIN_TOKEN's value.
Result<std::string> join_token(const RunnerOptions& options);

// A job id or similar name that becomes one path component: non-empty, no '/', not "." or "..",
// no NUL. REQUIRES nothing; returns InvalidArgument naming `what` otherwise.
Status check_path_component(std::string_view value, std::string_view what);

}  // namespace cohort::runner
