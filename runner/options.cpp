#include "options.hpp"

#include <arpa/inet.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sched.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <thread>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>

namespace cohort::runner {

namespace fs = std::filesystem;

fs::path default_work_dir() {
  if (geteuid() == 0) return "/var/lib/cohort-runner";
  const char* tmp = std::getenv("TMPDIR");
  const fs::path base = tmp != nullptr && *tmp != '\0' ? tmp : "/tmp";
  return base / ("cohort-runner-" + std::to_string(geteuid()));
}

std::string default_hostname() {
  char name[256] = {};
  if (gethostname(name, sizeof name - 1) != 0 || name[0] == '\0') return "localhost";
  return name;
}

std::string default_address() {
  ifaddrs* list = nullptr;
  if (getifaddrs(&list) != 0) return "127.0.0.1";
  std::string found;
  for (ifaddrs* i = list; i != nullptr && found.empty(); i = i->ifa_next) {
    if (i->ifa_addr == nullptr || i->ifa_addr->sa_family != AF_INET) continue;
    if ((i->ifa_flags & IFF_UP) == 0 || (i->ifa_flags & IFF_LOOPBACK) != 0) continue;
    char text[INET_ADDRSTRLEN] = {};
    const auto* in = reinterpret_cast<const sockaddr_in*>(i->ifa_addr);
    if (inet_ntop(AF_INET, &in->sin_addr, text, sizeof text) != nullptr) found = text;
  }
  freeifaddrs(list);
  return found.empty() ? "127.0.0.1" : found;
}

Status isolate_node(const std::string& hostname) {
  if (::unshare(CLONE_NEWNET | CLONE_NEWUTS) != 0) {
    const int err = errno;
    return Status(err == EPERM ? Code::kPermissionDenied : Code::kIoError,
                  std::string("unshare(CLONE_NEWNET|CLONE_NEWUTS) failed: ") + std::strerror(err) +
                      " (--isolate-hostname needs root; leave the flag out otherwise)");
  }
  if (::sethostname(hostname.data(), hostname.size()) != 0) return errno_status("sethostname", errno, hostname);
  return {};
}

Result<std::string> wait_for_address(std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    std::string address = default_address();
    if (address != "127.0.0.1") return address;
    if (std::chrono::steady_clock::now() >= deadline) {
      return Status(Code::kTimedOut,
                    "no address on eth0 within " + std::to_string(timeout.count()) +
                        " ms: the provider that started this runner with --isolate-hostname did not connect its "
                        "namespace (see the manager's log and the cluster's events)");
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

int hold_network_namespace() {
  if (::unshare(CLONE_NEWNET) != 0) {
    const int err = errno;
    std::fprintf(stderr, "cohort-runner: unshare(CLONE_NEWNET): %s (--hold-network-namespace needs root)\n",
                 std::strerror(err));
    return 1;
  }
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGHUP);
  int sig = 0;
  while (sigwait(&set, &sig) != 0) {
  }
  return 0;
}

Status check_path_component(std::string_view value, std::string_view what) {
  if (value.empty() || value == "." || value == ".." || value.find('/') != std::string_view::npos ||
      value.find('\0') != std::string_view::npos) {
    return invalid_argument(std::string(what) + " '" + std::string(value) +
                            "' cannot be used as a directory name (empty, '.', '..', or has '/')");
  }
  return {};
}

Status complete(RunnerOptions& o) {
  COHORT_ASSIGN_OR_RETURN(rpc::Endpoint e, rpc::resolve_endpoint(o.manager.address, "", o.manager.ca_file));
  o.manager = std::move(e);
  o.manager.token.clear();  // COHORT_TOKEN is the CLI's admin token: a runner never sends it
  if (o.cluster.empty()) return invalid_argument("no cluster: pass --cluster NAME (the cluster this node joins)");
  if (!o.node_name.empty()) COHORT_TRY(check_path_component(o.node_name, "--node-name"));
  if (o.join_token_file.empty() && o.join_token.empty()) {
    const char* env = std::getenv("COHORT_JOIN_TOKEN");
    if (env != nullptr) o.join_token = env;
  }
  if (o.join_token_file.empty() && o.join_token.empty()) {
    return invalid_argument(
        "no join token: pass --join-token-file FILE or set COHORT_JOIN_TOKEN (the manager's state directory "
        "holds it in `join-token`)");
  }
  COHORT_TRY(join_token(o).status());  // an unreadable file is better reported now than at every retry
  if (o.work_dir.empty()) o.work_dir = default_work_dir();
  std::error_code ec;
  fs::create_directories(o.work_dir / "jobs", ec);
  if (ec) {
    return Status(Code::kIoError, "cannot create the work directory " + o.work_dir.string() + ": " + ec.message() +
                                      " (pass --work-dir DIR where this user may write)");
  }
  o.work_dir = fs::absolute(o.work_dir, ec);
  if (o.hostname.empty()) o.hostname = default_hostname();
  if (o.address.empty()) o.address = default_address();
  if (o.scheduled_events_url.empty()) {
    const char* env = std::getenv("COHORT_SCHEDULED_EVENTS_URL");
    if (env != nullptr) o.scheduled_events_url = env;
  }
  const std::string& url = o.scheduled_events_url;
  if (!url.empty() && url.rfind("http://", 0) != 0 && url.rfind("https://", 0) != 0 && url.rfind("file://", 0) != 0) {
    return invalid_argument("--scheduled-events-url '" + url +
                            "' is no http://, https:// or file:// URL (Azure's is "
                            "http://169.254.169.254/metadata/scheduledevents?api-version=2020-07-01)");
  }
  return {};
}

Result<std::string> join_token(const RunnerOptions& o) {
  if (o.join_token_file.empty()) return o.join_token;
  std::ifstream in(o.join_token_file);
  std::string token;
  if (!in || !(in >> token)) {
    return Status(Code::kNotFound,
                  "cannot read a join token from " + o.join_token_file.string() + " (check --join-token-file)");
  }
  return token;
}

}  // namespace cohort::runner
