#include "exec_init.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/inotify.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <fstream>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_set>
#include <vector>

#include "cohort/status.hpp"
#include "exec_socket.hpp"
#include "file_write.hpp"
#include "orphans.hpp"

namespace cohort {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

constexpr int kInitFailure = 255;  // init's own failures (flags, setup): what cohort-exec returns for its own

// How long ranks get between SIGTERM and SIGKILL unless --grace-ms says otherwise: long enough for
// a program to flush its logs and close its files, short enough that stopping a job never waits
// long on a program that ignores SIGTERM.
constexpr milliseconds kDefaultGrace{2000};
// After the grace, the programs below the rank wrappers are SIGKILLed first and the wrappers get
// this long to reap them and write their rank reports (signal 9, stopped) before they are
// SIGKILLed too. A wrapper only has to reap one child and write one small file.
constexpr milliseconds kReportGrace{500};
// The bound on the last sweep (SIGKILL and reap all below init) and on waiting for SIGKILLed
// processes: SIGKILL cannot be ignored, only a process in uninterruptible sleep takes longer.
constexpr milliseconds kSweepLimit{2000};
constexpr milliseconds kSweepPoll{10};
// --ranks and --grace-ms bounds: guards against a typo, not resource limits.
constexpr long kMaxRanks = 4096;
constexpr long kMaxGraceMs = 3'600'000;

constexpr int kHandledSignals[] = {SIGCHLD, SIGTERM, SIGINT, SIGHUP, SIGUSR1, SIGUSR2};

const char kUsage[] =
    "usage: cohort-exec init [--ranks N] [--ready-file PATH] [--wait-file PATH] [--grace-ms MS] [--idle "
    "[--exec-socket PATH] | --plain] [--merge-output] [--] [PROGRAM [ARGS...]]";

// Where init, as pid 1, says which signal it ended by (beside the ready file); empty when none.
std::string exit_file;

struct InitOptions {
  long ranks = 1;
  std::string ready_file;
  milliseconds grace = kDefaultGrace;
  bool idle = false;
  bool merge_output = false;   // stderr onto stdout, before anything runs
  std::string wait_file;       // start nothing before it exists
  std::string exec_socket;     // --idle: where the runner asks for processes in the container
  bool plain = false;          // PROGRAM itself, once, without the rank wrapper or rank variables
  std::vector<char*> program;  // PROGRAM ARGS..., then a null; empty when none was given
};

struct Rank {
  long global = 0;  // RANK
  pid_t pid = -1;   // the wrapper (`cohort-exec rank`), leader of its own process group
  bool running = false;
};

void say(const std::string& message) {
  const std::string line = "cohort-exec init: " + message + "\n";
  ssize_t w = ::write(STDERR_FILENO, line.data(), line.size());
  (void)w;
}

[[noreturn]] void fail(const std::string& message) {
  say(message);
  _exit(kInitFailure);
}

std::optional<long> parse_number(std::string_view text, long min, long max) {
  long n = 0;
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), n);
  if (ec != std::errc() || ptr != text.data() + text.size() || n < min || n > max) return std::nullopt;
  return n;
}

Result<InitOptions> parse_options(int argc, char** argv) {
  InitOptions o;
  int i = 0;
  for (; i < argc; ++i) {
    const std::string_view arg = argv[i];
    if (arg == "--") {
      ++i;
      break;
    }
    if (arg == "--idle") {
      o.idle = true;
      continue;
    }
    if (arg == "--plain") {
      o.plain = true;
      continue;
    }
    if (arg == "--merge-output") {
      o.merge_output = true;
      continue;
    }
    if (!arg.starts_with("-")) break;  // PROGRAM
    if (arg != "--ranks" && arg != "--ready-file" && arg != "--grace-ms" && arg != "--wait-file" &&
        arg != "--exec-socket") {
      return invalid_argument("unknown flag '" + std::string(arg) + "'\n" + kUsage);
    }
    if (i + 1 >= argc) return invalid_argument(std::string(arg) + " needs a value\n" + kUsage);
    const std::string_view value = argv[++i];
    if (arg == "--ready-file" || arg == "--wait-file" || arg == "--exec-socket") {
      if (value.empty()) return invalid_argument(std::string(arg) + " needs a path");
      (arg == "--ready-file" ? o.ready_file : arg == "--wait-file" ? o.wait_file : o.exec_socket) = value;
    } else if (arg == "--ranks") {
      auto n = parse_number(value, 1, kMaxRanks);
      if (!n) return invalid_argument("--ranks '" + std::string(value) + "' must be a number from 1 to 4096");
      o.ranks = *n;
    } else {
      auto n = parse_number(value, 0, kMaxGraceMs);
      if (!n) return invalid_argument("--grace-ms '" + std::string(value) + "' must be a number from 0 to 3600000");
      o.grace = milliseconds(*n);
    }
  }
  for (; i < argc; ++i)
    o.program.push_back(argv[i]);
  if (!o.program.empty()) o.program.push_back(nullptr);
  if (!o.idle && o.program.empty()) return invalid_argument(std::string("no PROGRAM given\n") + kUsage);
  if (!o.exec_socket.empty() && !o.idle)
    return invalid_argument(std::string("--exec-socket goes with --idle\n") + kUsage);
  if (o.idle && o.plain) return invalid_argument(std::string("--idle and --plain exclude each other\n") + kUsage);
  if (o.plain && o.ranks != 1) return invalid_argument(std::string("--plain runs one program: no --ranks\n") + kUsage);
  return o;
}

// Which node of the job this is: NODE_RANK, set by the runner; 0 when unset (a one-node job).
Result<long> node_rank_from_env() {
  const char* text = std::getenv("NODE_RANK");
  if (text == nullptr || *text == '\0') return 0L;
  auto n = parse_number(text, 0, 1'000'000);
  if (!n) return invalid_argument(std::string("NODE_RANK='") + text + "' is not a node index (0, 1, ...)");
  return *n;
}

// Blocks the signals init handles (they are read from the returned signalfd, never handled
// asynchronously) and sets them to their defaults, so an ignored SIGCHLD or SIGINT inherited from
// the parent neither reaps children behind init's back nor passes on to the ranks.
int open_signal_fd() {
  sigset_t set;
  sigemptyset(&set);
  for (int s : kHandledSignals)
    sigaddset(&set, s);
  sigprocmask(SIG_BLOCK, &set, nullptr);
  for (int s : kHandledSignals)
    std::signal(s, SIG_DFL);
  const int fd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
  if (fd < 0) fail(errno_status("signalfd", errno).message());
  return fd;
}

// The next signal init got (its number) or, with listen_fd given, kExecRequest for a connection
// waiting on the exec socket; at most until `deadline`, nullopt once it passed.
constexpr int kExecRequest = -1;
std::optional<int> next_event(int sig_fd, int listen_fd, std::optional<Clock::time_point> deadline) {
  for (;;) {
    int timeout_ms = -1;
    if (deadline) {
      auto left = std::chrono::ceil<milliseconds>(*deadline - Clock::now());
      if (left.count() <= 0) return std::nullopt;
      timeout_ms = static_cast<int>(left.count());
    }
    pollfd p[2] = {{sig_fd, POLLIN, 0}, {listen_fd, POLLIN, 0}};
    const int n = ::poll(p, listen_fd >= 0 ? 2 : 1, timeout_ms);
    if (n < 0 && errno != EINTR) fail(errno_status("poll", errno).message());
    if (n <= 0) continue;  // look at the deadline again
    if (p[0].revents & POLLIN) {
      signalfd_siginfo info{};
      if (::read(sig_fd, &info, sizeof info) == static_cast<ssize_t>(sizeof info))
        return static_cast<int>(info.ssi_signo);
    }
    if (listen_fd >= 0 && (p[1].revents & POLLIN)) return kExecRequest;
  }
}

std::optional<int> next_signal(int sig_fd, std::optional<Clock::time_point> deadline) {
  return next_event(sig_fd, -1, deadline);
}

// Reaps every child that has ended, passing each to on_exit. False when init has no child left.
template <typename OnExit>
bool reap(OnExit&& on_exit) {
  for (;;) {
    int wstatus = 0;
    const pid_t pid = waitpid(-1, &wstatus, WNOHANG);
    if (pid > 0) {
      on_exit(pid, ExitStatus::from_wait_status(wstatus));
      continue;
    }
    if (pid == 0) return true;
    if (errno != EINTR) return false;  // ECHILD
  }
}

bool is_pid1() {
  return getpid() == 1;
}

// Every process below init, from /proc/*/stat; nullopt when this /proc belongs to another pid
// namespace (then its pids would name strangers, and init must not signal them).
std::optional<std::vector<pid_t>> descendants() {
  char link[32] = {};
  const ssize_t len = ::readlink("/proc/self", link, sizeof link - 1);
  if (len <= 0 || std::atol(link) != getpid()) return std::nullopt;
  std::vector<std::pair<pid_t, pid_t>> all;  // pid, parent
  DIR* dir = ::opendir("/proc");
  if (dir == nullptr) return std::nullopt;
  while (dirent* e = ::readdir(dir)) {
    auto pid = parse_number(e->d_name, 1, INT32_MAX);
    if (!pid) continue;
    const int fd = ::open(("/proc/" + std::string(e->d_name) + "/stat").c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) continue;  // it ended meanwhile
    char buf[512];
    const ssize_t n = ::read(fd, buf, sizeof buf - 1);
    ::close(fd);
    if (n <= 0) continue;
    const std::string_view stat(buf, static_cast<std::size_t>(n));
    const auto paren = stat.rfind(')');  // the command name may hold spaces and parentheses
    if (paren == std::string_view::npos || paren + 4 >= stat.size()) continue;
    all.emplace_back(static_cast<pid_t>(*pid), static_cast<pid_t>(std::atol(buf + paren + 4)));
  }
  ::closedir(dir);
  std::unordered_set<pid_t> below = {getpid()};
  std::vector<pid_t> out;
  for (bool grew = true; grew;) {
    grew = false;
    for (auto& [pid, parent] : all) {
      if (pid <= 0 || below.count(parent) == 0) continue;
      below.insert(pid);
      out.push_back(pid);
      pid = 0;  // taken
      grew = true;
    }
  }
  return out;
}

// Sends `sig` to every process below init: as pid 1 all of the namespace (kill(-1) spares only
// init); otherwise each descendant found in /proc.
void signal_everything(int sig) {
  if (is_pid1()) {
    ::kill(-1, sig);
    return;
  }
  if (auto below = descendants()) {
    for (pid_t pid : *below)
      ::kill(pid, sig);
  }
}

// The end of every mode: nothing init started outlives it. As pid 1, kill(-1, SIGKILL) (the
// kernel ends the rest of the namespace when init exits). Otherwise SIGKILL the ranks' groups
// still there and every descendant, and reap them, until none is left or kSweepLimit passed.
void sweep(std::vector<Rank>& ranks) {
  if (is_pid1()) {
    ::kill(-1, SIGKILL);
    return;
  }
  const auto deadline = Clock::now() + kSweepLimit;
  auto mark_ended = [&](pid_t pid, const ExitStatus&) {
    for (Rank& r : ranks) {
      if (r.pid == pid) r.running = false;
    }
  };
  // No child left (the usual end: every rank reaped, no daemon): done without reading /proc.
  while (reap(mark_ended)) {
    for (const Rank& r : ranks) {
      if (r.running) ::kill(-r.pid, SIGKILL);
    }
    auto below = descendants();
    if (!below) return;  // without a /proc of its own, init can find nothing more to end
    for (pid_t pid : *below)
      ::kill(pid, SIGKILL);
    if (Clock::now() >= deadline) {
      say("some processes did not end within " + std::to_string(kSweepLimit.count()) + " ms of SIGKILL");
      return;
    }
    timespec pause{0, std::chrono::nanoseconds(kSweepPoll).count()};
    nanosleep(&pause, nullptr);
  }
}

// Processes still there once the ranks ended (an MPI head's local ranks, orphaned when mpirun
// died before them): SIGTERM, and up to kReportGrace to end and write their rank reports, before
// the sweep's SIGKILL.
void settle(int sig_fd) {
  auto ignore = [](pid_t, const ExitStatus&) {};
  if (!reap(ignore)) return;  // no child left: the usual end
  signal_everything(SIGTERM);
  const auto deadline = Clock::now() + kReportGrace;
  while (reap(ignore)) {
    if (!next_signal(sig_fd, deadline)) return;  // the grace is over
  }
}

// Forks a child that runs `argv` (execv when `path` is set, else execvp of argv[0]) with the
// signal mask cleared, dying with init, with `env` set; as its own process group when asked.
pid_t start_child(const char* path, const std::vector<char*>& argv,
                  const std::vector<std::pair<std::string, std::string>>& env, bool own_group,
                  const char* fallback_path) {
  const pid_t init = getpid();
  const pid_t pid = fork();
  if (pid < 0) fail(errno_status("fork", errno).message());
  if (pid > 0) {
    if (own_group) setpgid(pid, pid);  // also here, so a signal sent before the child ran cannot miss
    return pid;
  }
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (getppid() != init) _exit(kInitFailure);
  if (own_group) setpgid(0, 0);
  for (const auto& [name, value] : env)
    setenv(name.c_str(), value.c_str(), 1);
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, nullptr);
  if (path != nullptr) {
    execv(path, argv.data());
    if (fallback_path != nullptr && std::strchr(fallback_path, '/') != nullptr) execv(fallback_path, argv.data());
  } else {
    execvp(argv[0], argv.data());
  }
  say(std::string("cannot run ") + (path != nullptr ? path : argv[0]) + ": " + std::strerror(errno));
  _exit(127);
}

// Until `path` exists. A stop signal meanwhile ends init as that signal would have, having
// started nothing. The runner creates the file once: an inotify watch on its directory wakes init
// then (and costs nothing meanwhile); without one the file is looked at every millisecond.
void wait_for_file(const std::string& path, int sig_fd) {
  const auto slash = path.rfind('/');
  const std::string dir = slash == std::string::npos ? "." : slash == 0 ? "/" : path.substr(0, slash);
  int watch = ::inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
  if (watch >= 0 && ::inotify_add_watch(watch, dir.c_str(), IN_CREATE | IN_MOVED_TO) < 0) {
    ::close(watch);
    watch = -1;
  }
  while (::access(path.c_str(), F_OK) != 0) {
    const auto event = next_event(sig_fd, watch, Clock::now() + milliseconds(watch >= 0 ? 100 : 1));
    if (event && *event == kExecRequest) {  // the directory changed
      char events[4096];
      while (::read(watch, events, sizeof events) > 0) {
      }
      continue;
    }
    if (event && *event != SIGCHLD && *event != SIGUSR1 && *event != SIGUSR2) {
      say(std::string("got ") + signal_name(*event) + " before " + path + " was there: starting nothing");
      exit_like(ExitStatus{0, SIGTERM});
    }
  }
  if (watch >= 0) ::close(watch);
}

[[noreturn]] void run_ranks(const char* self, const InitOptions& o, int sig_fd) {
  auto node_rank = node_rank_from_env();
  if (!node_rank.ok()) fail(node_rank.status().message());
  // Re-executes this very binary through /proc/self/exe, so a container needs no path to it.
  std::vector<char*> argv = {const_cast<char*>(self), const_cast<char*>("rank"), const_cast<char*>("--")};
  argv.insert(argv.end(), o.program.begin(), o.program.end());  // ends with its null
  std::vector<Rank> ranks(static_cast<std::size_t>(o.ranks));
  if (o.plain) {  // e.g. mpirun, which reports its ranks itself
    ranks[0] = Rank{*node_rank, start_child(nullptr, o.program, {}, true, nullptr), true};
  }
  for (long i = 0; i < o.ranks && !o.plain; ++i) {
    Rank& r = ranks[static_cast<std::size_t>(i)];
    r.global = *node_rank * o.ranks + i;
    r.pid = start_child("/proc/self/exe", argv,
                        {{"LOCAL_RANK", std::to_string(i)},
                         {"LOCAL_WORLD_SIZE", std::to_string(o.ranks)},
                         {"RANK", std::to_string(r.global)}},
                        true, self);
    r.running = true;
  }

  // kTerminating: SIGTERM sent, waiting out the grace. kReporting: the programs SIGKILLed, the
  // wrappers writing their reports. kKilling: the wrappers SIGKILLed too.
  enum class Phase { kRunning, kTerminating, kReporting, kKilling } phase = Phase::kRunning;
  std::optional<Clock::time_point> deadline;
  ExitStatus cause;  // how init ends: like the first rank that failed, or by SIGTERM when told to stop
  auto running = [&] { return std::count_if(ranks.begin(), ranks.end(), [](const Rank& r) { return r.running; }); };
  auto signal_ranks = [&](int sig) {
    for (const Rank& r : ranks) {
      if (r.running) ::kill(-r.pid, sig);
    }
  };
  auto stop = [&](ExitStatus why, const std::string& what) {
    if (phase != Phase::kRunning) return;  // the first cause wins
    cause = why;
    phase = Phase::kTerminating;
    deadline = Clock::now() + o.grace;
    if (running() > 0) say(what + "; stopping the " + std::to_string(running()) + " rank(s) still running");
    signal_ranks(SIGTERM);
  };

  while (running() > 0) {
    const auto sig = next_signal(sig_fd, deadline);
    if (!sig) {  // a deadline passed
      if (phase == Phase::kTerminating) {
        say("rank(s) still running " + std::to_string(o.grace.count()) + " ms after SIGTERM: killing them");
        auto below = descendants();
        if (below) {
          for (pid_t pid : *below) {
            if (std::none_of(ranks.begin(), ranks.end(), [&](const Rank& r) { return r.running && r.pid == pid; }))
              ::kill(pid, SIGKILL);
          }
          phase = Phase::kReporting;
          deadline = Clock::now() + kReportGrace;
          continue;
        }
      } else if (phase == Phase::kKilling) {
        break;  // the sweep below tries once more
      }
      signal_ranks(SIGKILL);
      phase = Phase::kKilling;
      deadline = Clock::now() + kSweepLimit;
      continue;
    }
    if (*sig == SIGCHLD) {
      reap([&](pid_t pid, const ExitStatus& st) {
        auto r = std::find_if(ranks.begin(), ranks.end(), [&](const Rank& x) { return x.running && x.pid == pid; });
        if (r == ranks.end()) return;  // an orphan that came to init
        r->running = false;
        if (!st.success()) stop(st, "rank " + std::to_string(r->global) + " " + st.describe());
      });
    } else if (*sig == SIGUSR1 || *sig == SIGUSR2) {
      signal_ranks(*sig);
    } else {
      stop(ExitStatus{0, SIGTERM}, std::string("got ") + signal_name(*sig));
    }
  }
  settle(sig_fd);
  sweep(ranks);
  exit_like(cause);
}

// Takes one request from the exec socket and starts its process; returns the process and the
// connection its exit goes to, or nothing (the request was bad and is answered, or the caller left).
std::optional<std::pair<pid_t, int>> start_requested(int listen_fd) {
  const int conn = ::accept4(listen_fd, nullptr, nullptr, SOCK_CLOEXEC);
  if (conn < 0) return std::nullopt;
  // A connection that says nothing must not hold init up.
  const timeval limit{1, 0};
  ::setsockopt(conn, SOL_SOCKET, SO_RCVTIMEO, &limit, sizeof limit);
  auto request = receive_exec_request(conn);
  if (!request.ok()) {
    say(request.status().message());
    (void)send_exec_exit(conn, ExitStatus{kInitFailure, 0});
    ::close(conn);
    return std::nullopt;
  }
  std::vector<char*> argv, env;
  for (auto& a : request->argv)
    argv.push_back(a.data());
  argv.push_back(nullptr);
  for (auto& e : request->env)
    env.push_back(e.data());
  env.push_back(nullptr);
  const pid_t pid = fork();
  if (pid == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    setpgid(0, 0);
    const int null = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (null < 0 || ::dup2(null, STDIN_FILENO) < 0 || ::dup2(request->stdout_fd, STDOUT_FILENO) < 0 ||
        ::dup2(request->stderr_fd, STDERR_FILENO) < 0)
      _exit(kInitFailure);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    execvpe(argv[0], argv.data(), env.data());
    say(std::string("cannot run ") + argv[0] + ": " + std::strerror(errno));
    _exit(127);
  }
  ::close(request->stdout_fd);
  ::close(request->stderr_fd);
  if (pid < 0) {
    (void)send_exec_exit(conn, ExitStatus{kInitFailure, 0});
    ::close(conn);
    return std::nullopt;
  }
  return std::make_pair(pid, conn);
}

// A notice signal for an MPI worker node's ranks: the children of what the exec socket started
// (Open MPI's daemon starts each rank under `cohort-exec rank`, which passes it to its rank's
// group). The daemon itself is spared: it has no use for it.
void signal_children_of(const std::map<pid_t, int>& requested, int sig) {
  for (const auto& [pid, conn] : requested) {
    std::ifstream in("/proc/" + std::to_string(pid) + "/task/" + std::to_string(pid) + "/children");
    for (pid_t child = 0; in >> child;)
      ::kill(child, sig);
  }
}

[[noreturn]] void run_idle(const InitOptions& o, int sig_fd, int listen_fd) {
  const pid_t setup = o.program.empty() ? -1 : start_child(nullptr, o.program, {}, false, nullptr);
  bool stopping = false;
  bool killed = false;
  std::optional<Clock::time_point> deadline;
  std::map<pid_t, int> requested;  // processes started through the exec socket: their connection
  auto on_exit = [&](pid_t pid, const ExitStatus& st) {
    if (pid == setup && !st.success()) say(std::string("setup command ") + o.program[0] + " " + st.describe());
    if (auto it = requested.find(pid); it != requested.end()) {
      (void)send_exec_exit(it->second, st);
      ::close(it->second);
      requested.erase(it);
    }
  };
  for (;;) {
    const auto sig = next_event(sig_fd, stopping ? -1 : listen_fd, deadline);
    if (!sig) {  // a deadline passed
      if (killed) break;
      say("processes still running " + std::to_string(o.grace.count()) + " ms after SIGTERM: killing them");
      signal_everything(SIGKILL);
      killed = true;
      deadline = Clock::now() + kSweepLimit;
      continue;
    }
    if (*sig == kExecRequest) {
      if (auto started = start_requested(listen_fd)) requested.insert(*started);
    } else if (*sig == SIGCHLD) {
      if (!reap(on_exit) && stopping) break;
    } else if (*sig == SIGUSR1 || *sig == SIGUSR2) {
      signal_children_of(requested, *sig);
    } else if (!stopping) {
      stopping = true;
      deadline = Clock::now() + o.grace;
      signal_everything(SIGTERM);
      if (!reap(on_exit)) break;  // nothing there to wait for
    }
  }
  std::vector<Rank> none;
  sweep(none);
  _exit(0);
}

}  // namespace

[[noreturn]] void exit_like(const ExitStatus& st) {
  if (st.signal == 0) _exit(st.code);
  if (is_pid1() && !exit_file.empty()) {
    // The signal cannot end pid 1: tell the runner, which sees only 128 + N from runc, which it was.
    (void)write_file_replacing(exit_file, "signal " + std::to_string(st.signal) + "\n", 0644);
  }
  // End by the same signal, so the parent sees what the program did; no core of this wrapper.
  rlimit no_core{0, 0};
  setrlimit(RLIMIT_CORE, &no_core);
  std::signal(st.signal, SIG_DFL);
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, st.signal);
  sigprocmask(SIG_UNBLOCK, &set, nullptr);
  raise(st.signal);
  _exit(128 + st.signal);
}

[[noreturn]] void run_init(const char* self, int argc, char** argv) {
  auto options = parse_options(argc, argv);
  if (!options.ok()) fail(options.status().message());
  const InitOptions& o = options.value();
  // Its parent is `runc run` or the runner's keeper: when that dies, the job on this node must too.
  const pid_t parent = getppid();
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (getppid() != parent) _exit(kInitFailure);  // it died before the prctl took hold
  if (o.merge_output && ::dup2(STDOUT_FILENO, STDERR_FILENO) < 0) fail(std::string("dup2: ") + std::strerror(errno));
  const int sig_fd = open_signal_fd();
  // pid 1 reaps every orphan of its namespace already; elsewhere daemonized grandchildren (Open
  // MPI's orted) must come to init, not to the machine's init, so that init can end them.
  if (!is_pid1()) {
    Status s = become_subreaper();
    if (!s.ok()) fail(s.message());
  }
  // Before the ready file: once that is there, the runner may pass requests on.
  int listen_fd = -1;
  if (!o.exec_socket.empty()) {
    auto l = listen_exec_socket(o.exec_socket);
    if (!l.ok()) fail("the exec socket: " + l.status().message());
    listen_fd = *l;
  }
  if (!o.ready_file.empty()) {
    Status s = write_file_replacing(o.ready_file, "ready\n", 0644);
    if (!s.ok()) fail("writing the ready file: " + s.message());
    const auto slash = o.ready_file.rfind('/');
    exit_file = (slash == std::string::npos ? std::string() : o.ready_file.substr(0, slash + 1)) + kExitFileName;
  }
  if (!o.wait_file.empty()) wait_for_file(o.wait_file, sig_fd);
  if (o.idle) run_idle(o, sig_fd, listen_fd);
  run_ranks(self, o, sig_fd);
}

}  // namespace cohort
