#include "local_nodes.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <sched.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <utility>

#include "subprocess.hpp"

namespace cohort {
namespace {

// How long one `ip -batch` may take; it is milliseconds in practice, so this only bounds a hang.
constexpr auto kIpTimeout = std::chrono::seconds(20);

// How long a holder may take to clear its namespace before it is killed outright.
constexpr auto kHolderGrace = std::chrono::seconds(5);

void kill_holder(pid_t pid) {
  if (pid <= 0) return;
  ::kill(pid, SIGTERM);
  const auto deadline = std::chrono::steady_clock::now() + kHolderGrace;
  for (;;) {
    pid_t r = waitpid(pid, nullptr, WNOHANG);
    if (r == pid || (r < 0 && errno != EINTR)) return;
    if (std::chrono::steady_clock::now() >= deadline) break;
    usleep(2000);
  }
  ::kill(pid, SIGKILL);
  while (waitpid(pid, nullptr, 0) < 0 && errno == EINTR) {
  }
}

// Ends every other process in the calling process's network namespace, until none is left.
void sweep_namespace() {
  struct stat self {};
  if (stat("/proc/self/ns/net", &self) != 0) return;
  const pid_t me = getpid();
  for (int round = 0; round < 100; ++round) {
    int found = 0;
    DIR* d = opendir("/proc");
    if (d == nullptr) return;
    while (dirent* e = readdir(d)) {
      char* end = nullptr;
      long pid = std::strtol(e->d_name, &end, 10);
      if (*end != '\0' || pid <= 0 || pid == me) continue;
      struct stat st {};
      std::string path = std::string("/proc/") + e->d_name + "/ns/net";
      if (stat(path.c_str(), &st) != 0 || st.st_ino != self.st_ino || st.st_dev != self.st_dev) continue;
      ::kill(static_cast<pid_t>(pid), SIGKILL);
      ++found;
    }
    closedir(d);
    if (found == 0) return;
    usleep(10000);
  }
}

// Forks a process that unshares the given namespaces, sets `hostname` (when it has a UTS
// namespace of its own) and then waits for SIGTERM, which its parent sends, or the kernel does
// when the parent dies (PR_SET_PDEATHSIG). It then ends everything still inside its network
// namespace, so the namespace goes with it: a rank or daemon left inside would otherwise keep
// it alive, cut off from the others once the bridge's holder is gone.
Result<pid_t> start_holder(int ns_flags, const std::string& hostname) {
  int ready[2];
  if (pipe2(ready, O_CLOEXEC) != 0) return errno_status("pipe2", errno);
  const pid_t parent = getpid();
  sigset_t term;
  sigemptyset(&term);
  sigaddset(&term, SIGTERM);
  sigset_t old_mask;
  sigprocmask(SIG_BLOCK, &term, &old_mask);  // so a SIGTERM before sigwait below is kept
  const pid_t pid = fork();
  if (pid < 0) {
    sigprocmask(SIG_SETMASK, &old_mask, nullptr);
    return errno_status("fork", errno);
  }
  if (pid == 0) {
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (getppid() != parent) _exit(1);
    char status = 0;
    if (unshare(ns_flags) != 0) status = 1;
    if (status == 0 && !hostname.empty() && sethostname(hostname.data(), hostname.size()) != 0) status = 2;
    int null_fd = ::open("/dev/null", O_RDWR);
    if (null_fd >= 0) {
      dup2(null_fd, 0);
      dup2(null_fd, 1);
      dup2(null_fd, 2);
    }
    ssize_t w = ::write(ready[1], &status, 1);
    (void)w;
    // Hold nothing of the parent's open: a pipe held here would keep a reader waiting for EOF.
    close_range(3, ~0U, 0);
    if (status != 0) _exit(1);
    int sig = 0;
    while (sigwait(&term, &sig) != 0) {
    }
    sweep_namespace();
    _exit(0);
  }
  sigprocmask(SIG_SETMASK, &old_mask, nullptr);
  ::close(ready[1]);
  char status = 1;
  ssize_t n = 0;
  do {
    n = ::read(ready[0], &status, 1);
  } while (n < 0 && errno == EINTR);
  ::close(ready[0]);
  if (n != 1 || status != 0) {
    kill_holder(pid);
    const char* what = status == 2 ? "sethostname" : "unshare(CLONE_NEWNET|CLONE_NEWUTS)";
    return Status(Code::kPermissionDenied, std::string(what) + " failed in a namespace holder");
  }
  return pid;
}

Status join(pid_t holder, const char* ns, int type) {
  std::string path = "/proc/" + std::to_string(holder) + "/ns/" + ns;
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return errno_status("open", errno, path);
  int rc = setns(fd, type);
  int err = errno;
  ::close(fd);
  if (rc != 0) return errno_status("setns", err, path);
  return {};
}

}  // namespace

Status enter_node_namespaces(pid_t holder) {
  // setns(2), not `ip netns exec`: that remounts /sys in a new mount namespace, which hides the
  // cgroup mounts that runc needs inside these nodes.
  COHORT_TRY(join(holder, "net", CLONE_NEWNET));
  return join(holder, "uts", CLONE_NEWUTS);
}

Status run_ip_batch(pid_t holder, const std::string& commands) {
  char path[] = "/tmp/cohort-ip-XXXXXX";
  int fd = mkstemp(path);
  if (fd < 0) return errno_status("mkstemp", errno, path);
  ssize_t w = ::write(fd, commands.data(), commands.size());
  ::close(fd);
  if (w != static_cast<ssize_t>(commands.size())) {
    ::unlink(path);
    return Status(Code::kIoError, std::string("writing ") + path + " failed");
  }
  SpawnOptions o;
  o.argv = {"ip", "-batch", path};
  if (holder > 0) o.in_child = [holder] { return enter_node_namespaces(holder); };
  auto r = run_captured(std::move(o), kIpTimeout);
  ::unlink(path);
  if (!r.ok()) return r.status().with_context("running ip");
  if (r->timed_out || !r->status.success()) {
    return Status(Code::kFailedPrecondition, "ip -batch " +
                                                 std::string(r->timed_out ? "timed out" : r->status.describe()) + ": " +
                                                 r->err + "commands were:\n" + commands);
  }
  return {};
}

Result<std::unique_ptr<LocalNodes>> LocalNodes::create(const LocalNodesOptions& o) {
  if (geteuid() != 0) {
    return Status(Code::kPermissionDenied,
                  "local test nodes are network and UTS namespaces, which only root can create: run as root, "
                  "or run without --nodes");
  }
  if (o.count < 1 || o.count > 250)
    return invalid_argument("node count " + std::to_string(o.count) + " is not in [1, 250]");
  std::unique_ptr<LocalNodes> self(new LocalNodes());
  COHORT_ASSIGN_OR_RETURN(self->switch_holder_, start_holder(CLONE_NEWNET, ""));
  for (int i = 0; i < o.count; ++i) {
    LocalNode node;
    node.hostname = o.hostname_prefix + "-" + std::to_string(i);
    node.address = o.subnet_prefix + "." + std::to_string(i + 1);
    COHORT_ASSIGN_OR_RETURN(node.holder, start_holder(CLONE_NEWNET | CLONE_NEWUTS, node.hostname));
    self->nodes_.push_back(node);
  }

  // One veth pair per node, made straight into the two namespaces it joins.
  std::string root_cmds;
  std::string switch_cmds = "link add br0 type bridge\nlink set br0 up\n";
  for (std::size_t i = 0; i < self->nodes_.size(); ++i) {
    const auto& node = self->nodes_[i];
    const std::string port = "port" + std::to_string(i);
    root_cmds += "link add " + port + " netns " + std::to_string(self->switch_holder_) +
                 " type veth peer name eth0 netns " + std::to_string(node.holder) + "\n";
    switch_cmds += "link set " + port + " master br0\nlink set " + port + " up\n";
  }
  COHORT_TRY(run_ip_batch(-1, root_cmds).with_context("making the nodes' veth pairs"));
  COHORT_TRY(run_ip_batch(self->switch_holder_, switch_cmds).with_context("making the nodes' bridge"));
  for (const auto& node : self->nodes_) {
    std::string cmds = "link set lo up\naddr add " + node.address + "/24 dev eth0\nlink set eth0 up\n";
    COHORT_TRY(run_ip_batch(node.holder, cmds).with_context("configuring " + node.hostname));
  }
  return self;
}

LocalNodes::~LocalNodes() {
  for (const auto& node : nodes_)
    kill_holder(node.holder);
  kill_holder(switch_holder_);
}

std::string LocalNodes::namespace_map() const {
  std::string out;
  for (const auto& node : nodes_) {
    if (!out.empty()) out += ',';
    out += node.hostname + "=" + std::to_string(node.holder);
  }
  return out;
}

Result<pid_t> find_node_holder(std::string_view map, std::string_view host) {
  std::string_view rest = map;
  while (!rest.empty()) {
    auto comma = rest.find(',');
    std::string_view entry = rest.substr(0, comma);
    rest = comma == std::string_view::npos ? std::string_view() : rest.substr(comma + 1);
    auto eq = entry.find('=');
    if (eq == std::string_view::npos || entry.substr(0, eq) != host) continue;
    std::string_view num = entry.substr(eq + 1);
    pid_t pid = 0;
    auto [ptr, ec] = std::from_chars(num.data(), num.data() + num.size(), pid);
    if (ec != std::errc() || ptr != num.data() + num.size() || pid <= 0) {
      return invalid_argument("bad node map entry '" + std::string(entry) + "'");
    }
    return pid;
  }
  return Status(Code::kNotFound,
                "host '" + std::string(host) + "' is not a local test node (nodes: " + std::string(map) + ")");
}

namespace {

std::vector<pid_t> all_processes() {
  std::vector<pid_t> out;
  DIR* d = opendir("/proc");
  if (d == nullptr) return out;
  while (dirent* e = readdir(d)) {
    char* end = nullptr;
    const long pid = std::strtol(e->d_name, &end, 10);
    if (*end == '\0' && pid > 0) out.push_back(static_cast<pid_t>(pid));
  }
  closedir(d);
  return out;
}

std::string proc_text(pid_t pid, const char* file) {
  std::string text;
  const int fd = ::open(("/proc/" + std::to_string(pid) + "/" + file).c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return text;
  char buf[512];
  for (ssize_t n; (n = ::read(fd, buf, sizeof buf)) > 0;)
    text.append(buf, static_cast<std::size_t>(n));
  ::close(fd);
  return text;
}

pid_t parent_of(pid_t pid) {
  const std::string stat = proc_text(pid, "stat");
  const auto paren = stat.rfind(')');
  if (paren == std::string::npos || paren + 4 > stat.size()) return 0;
  return static_cast<pid_t>(std::strtol(stat.c_str() + paren + 4, nullptr, 10));  // ") S PPID"
}

}  // namespace

Result<int> kill_node_processes(pid_t member, std::string_view holder_comm) {
  struct stat node_ns {};
  struct stat own_ns {};
  if (::stat(("/proc/" + std::to_string(member) + "/ns/net").c_str(), &node_ns) != 0) {
    return errno_status("stat", errno, "/proc/" + std::to_string(member) + "/ns/net");
  }
  if (::stat("/proc/self/ns/net", &own_ns) == 0 && own_ns.st_ino != node_ns.st_ino) {
    return kill_net_namespace(node_ns.st_ino, holder_comm);
  }
  // The whole tree first, then the signals: a child whose parent died is reparented and lost.
  std::vector<pid_t> tree{member};
  const std::vector<pid_t> all = all_processes();
  for (std::size_t i = 0; i < tree.size(); ++i) {
    for (pid_t pid : all) {
      if (parent_of(pid) == tree[i]) tree.push_back(pid);
    }
  }
  for (pid_t pid : tree)
    ::kill(pid, SIGKILL);
  return static_cast<int>(tree.size());
}

ino_t net_namespace_of(pid_t pid) {
  struct stat ns {};
  return ::stat(("/proc/" + std::to_string(pid) + "/ns/net").c_str(), &ns) == 0 ? ns.st_ino : 0;
}

std::vector<pid_t> processes_in_net_namespace(ino_t ns) {
  std::vector<pid_t> out;
  if (ns == 0) return out;
  for (pid_t pid : all_processes()) {
    if (net_namespace_of(pid) != ns) continue;
    const std::string stat = proc_text(pid, "stat");
    const auto paren = stat.rfind(')');
    if (paren != std::string::npos && paren + 2 < stat.size() && stat[paren + 2] == 'Z') continue;
    out.push_back(pid);
  }
  return out;
}

int kill_net_namespace(ino_t ns, std::string_view holder_comm) {
  int n = 0;
  for (pid_t pid : processes_in_net_namespace(ns)) {
    std::string comm = proc_text(pid, "comm");
    if (!comm.empty() && comm.back() == '\n') comm.pop_back();
    if (comm == holder_comm) continue;
    ::kill(pid, SIGKILL);
    ++n;
  }
  return n;
}

Result<NetNamespaceRef> NetNamespaceRef::of_process(pid_t pid) {
  const std::string path = "/proc/" + std::to_string(pid) + "/ns/net";
  Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (fd.get() < 0) return Status(Code::kNotFound, "cannot open " + path + ": " + std::strerror(errno));
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) return Status(Code::kIoError, "cannot stat " + path + ": " + std::strerror(errno));
  return NetNamespaceRef(std::move(fd), st.st_ino);
}

}  // namespace cohort
