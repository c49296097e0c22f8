// cohort-exec: the small helper `cohort run` puts between Open MPI and the user's program.
//
//   cohort-exec rank -- PROGRAM [ARGS...]
//       What mpirun starts for every rank: runs PROGRAM, prefixes each line it prints with
//       "[rank N] ", forwards stop signals to it, and when it ends writes a report (exit code or
//       signal, host, time) to $COHORT_RUN_DIR/rank-N, then ends the same way PROGRAM did.
//       Its rank is $OMPI_COMM_WORLD_RANK, or $RANK (set by `cohort-exec init`) without mpirun.
//   cohort-exec node HOST COMMAND...
//       Open MPI's rsh agent for local test nodes: runs COMMAND (a shell command line, as ssh
//       would) inside HOST's network and UTS namespaces, found in $COHORT_NODE_NAMESPACES.
//   cohort-exec bridge [ssh options] HOST COMMAND...
//       Open MPI's rsh agent in a Cohort MPI job: COMMAND in the job's container on HOST, through
//       the head's runner and HOST's. See exec_bridge.hpp.
//   cohort-exec init [--ranks N] [--ready-file PATH] [--grace-ms MS] [--idle | --plain] [--merge-output]
//                    -- PROGRAM [ARGS...]
//       The first process of a job's container (or of a plain-process job) on a node: starts the
//       node's ranks under `cohort-exec rank`, reaps, fails fast. See exec_init.hpp.
//   cohort-exec keep RUNNER_PID -- PROGRAM [ARGS...]
//       What the runner starts for each job attempt: keeps PROGRAM's process group, kills it when
//       the runner dies, ends as PROGRAM did. See exec_keep.hpp.
//
// It links nothing heavy: it starts once per rank and its start-up is launch latency.
#include <fcntl.h>
#include <poll.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <string>
#include <vector>

#include "exec_bridge.hpp"
#include "exec_init.hpp"
#include "exec_keep.hpp"
#include "file_write.hpp"
#include "line_prefixer.hpp"
#include "local_nodes.hpp"
#include "rank_report.hpp"

namespace cohort {
namespace {

constexpr int kUsageError = 255;  // what ssh returns for its own failures

[[noreturn]] void die(const std::string& message, int code = kUsageError) {
  std::string line = "cohort-exec: " + message + "\n";
  ssize_t w = ::write(STDERR_FILENO, line.data(), line.size());
  (void)w;
  _exit(code);
}

std::string env_or(const char* name, const char* fallback) {
  const char* v = std::getenv(name);
  return v != nullptr ? v : fallback;
}

// The index of this host in COHORT_NODE_HOSTS ("h0,h1,..."), so ranks know their node.
void export_node_rank(const std::string& host) {
  const std::string hosts = env_or("COHORT_NODE_HOSTS", "");
  if (hosts.empty()) return;
  int index = 0;
  int count = 1;
  int mine = -1;
  std::size_t start = 0;
  for (std::size_t i = 0; i <= hosts.size(); ++i) {
    if (i < hosts.size() && hosts[i] != ',') continue;
    if (hosts.compare(start, i - start, host) == 0 && i - start == host.size()) mine = index;
    if (i < hosts.size()) {
      ++index;
      ++count;
    }
    start = i + 1;
  }
  if (mine < 0) return;
  setenv("COHORT_NODE_RANK", std::to_string(mine).c_str(), 1);
  setenv("COHORT_NUM_NODES", std::to_string(count).c_str(), 1);
}

struct Stream {
  int fd;
  int out_fd;
  LinePrefixer prefixer;
};

// Reads what is available on `s` and writes it prefixed; false at end of stream.
bool pump(Stream& s) {
  char buf[65536];
  ssize_t n = ::read(s.fd, buf, sizeof buf);
  if (n < 0 && (errno == EINTR || errno == EAGAIN)) return true;
  std::string out;
  if (n <= 0) {
    s.prefixer.finish(out);
    (void)write_all(s.out_fd, out);
    return false;
  }
  s.prefixer.feed(std::string_view(buf, static_cast<std::size_t>(n)), out);
  (void)write_all(s.out_fd, out);
  return true;
}

[[noreturn]] void run_rank(char** program) {
  // mpirun's rank when under mpirun, else the one `cohort-exec init` gives each rank it starts.
  std::string rank_text = env_or("OMPI_COMM_WORLD_RANK", "");
  if (rank_text.empty()) rank_text = env_or("RANK", "");
  if (rank_text.empty())
    die("OMPI_COMM_WORLD_RANK is not set (nor RANK): `cohort-exec rank` runs under mpirun or `cohort-exec init`");
  const std::string run_dir = env_or("COHORT_RUN_DIR", "");
  char host[256] = {};
  gethostname(host, sizeof host - 1);
  export_node_rank(host);

  // Signals are read from a signalfd in the loop below, never handled asynchronously.
  sigset_t handled;
  sigemptyset(&handled);
  for (int s : {SIGCHLD, SIGTERM, SIGINT, SIGHUP, SIGUSR1, SIGUSR2, SIGQUIT})
    sigaddset(&handled, s);
  sigprocmask(SIG_BLOCK, &handled, nullptr);
  int sig_fd = signalfd(-1, &handled, SFD_CLOEXEC);
  int out_pipe[2];
  int err_pipe[2];
  if (sig_fd < 0 || pipe2(out_pipe, O_CLOEXEC) != 0 || pipe2(err_pipe, O_CLOEXEC) != 0) die("setup failed", 1);

  const pid_t self = getpid();
  const pid_t child = fork();
  if (child < 0) die(std::string("fork failed: ") + std::strerror(errno), 1);
  if (child == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);  // the program never outlives its wrapper
    if (getppid() != self) _exit(1);
    setpgid(0, 0);  // its own group, so a stop reaches the processes it started too
    dup2(out_pipe[1], STDOUT_FILENO);
    dup2(err_pipe[1], STDERR_FILENO);
    sigprocmask(SIG_UNBLOCK, &handled, nullptr);
    execvp(program[0], program);
    // Into the pipe, so it comes out prefixed like the program's own lines.
    std::string msg = std::string("cohort-exec: cannot run ") + program[0] + ": " + std::strerror(errno) + "\n";
    (void)write_all(STDERR_FILENO, msg);
    _exit(127);
  }
  setpgid(child, child);  // also here, so a signal sent before the child ran cannot miss
  ::close(out_pipe[1]);
  ::close(err_pipe[1]);

  const std::string prefix = "[rank " + rank_text + "] ";
  Stream streams[2] = {{out_pipe[0], STDOUT_FILENO, LinePrefixer(prefix)},
                       {err_pipe[0], STDERR_FILENO, LinePrefixer(prefix)}};
  bool open[2] = {true, true};
  bool stopped = false;
  bool exited = false;
  int wstatus = 0;
  while (!exited || open[0] || open[1]) {
    pollfd fds[3] = {
        {sig_fd, POLLIN, 0}, {open[0] ? streams[0].fd : -1, POLLIN, 0}, {open[1] ? streams[1].fd : -1, POLLIN, 0}};
    // Once the program is gone, only drain what its pipes still hold: a daemon it left behind
    // may keep them open forever.
    int n = ::poll(fds, 3, exited ? 0 : -1);
    if (n < 0 && errno != EINTR) break;
    if (exited && n == 0) break;
    for (int i = 0; i < 2; ++i) {
      if (open[i] && (fds[i + 1].revents & (POLLIN | POLLHUP | POLLERR))) open[i] = pump(streams[i]);
    }
    if (fds[0].revents & POLLIN) {
      signalfd_siginfo info{};
      if (::read(sig_fd, &info, sizeof info) != sizeof info) continue;
      const int sig = static_cast<int>(info.ssi_signo);
      if (sig == SIGCHLD) {
        if (waitpid(child, &wstatus, WNOHANG) == child) exited = true;
        continue;
      }
      if (sig == SIGTERM || sig == SIGINT || sig == SIGHUP) stopped = true;
      ::kill(-child, sig);
    }
  }
  if (!exited) waitpid(child, &wstatus, 0);
  for (auto& s : streams) {
    std::string out;
    s.prefixer.finish(out);
    (void)write_all(s.out_fd, out);
  }

  RankReport report;
  report.rank = std::atoi(rank_text.c_str());
  report.host = host;
  report.pid = child;
  report.status = ExitStatus::from_wait_status(wstatus);
  timespec now{};
  clock_gettime(CLOCK_REALTIME, &now);
  report.end_ns = static_cast<std::int64_t>(now.tv_sec) * 1'000'000'000 + now.tv_nsec;
  report.stopped = stopped;
  if (!run_dir.empty()) {
    Status s = write_report(run_dir, report);
    if (!s.ok()) (void)write_all(STDERR_FILENO, prefix + "cohort-exec: " + s.message() + "\n");
  }
  exit_like(report.status);
}

[[noreturn]] void run_node(const std::string& host, int argc, char** argv) {
  const std::string map = env_or("COHORT_NODE_NAMESPACES", "");
  auto holder = find_node_holder(map, host);
  if (!holder.ok()) die(holder.status().message());
  Status s = enter_node_namespaces(holder.value());
  if (!s.ok()) die("entering " + host + ": " + s.message());
  // Like ssh: the remote side gets one command line and runs it with a shell.
  std::string command;
  for (int i = 0; i < argc; ++i) {
    if (i > 0) command += ' ';
    command += argv[i];
  }
  execl("/bin/sh", "sh", "-c", command.c_str(), static_cast<char*>(nullptr));
  die(std::string("exec /bin/sh failed: ") + std::strerror(errno));
}

}  // namespace
}  // namespace cohort

int main(int argc, char** argv) {
  const std::string usage =
      "usage: cohort-exec rank -- PROGRAM [ARGS...]\n"
      "       cohort-exec node HOST COMMAND...\n"
      "       cohort-exec bridge [ssh options] HOST COMMAND...\n"
      "       cohort-exec init [--ranks N] [--ready-file PATH] [--grace-ms MS] [--idle | --plain] [--merge-output]\n"
      "                        -- PROGRAM [ARGS...]\n"
      "       cohort-exec keep RUNNER_PID -- PROGRAM [ARGS...]";
  if (argc >= 2 && std::strcmp(argv[1], "init") == 0) cohort::run_init(argv[0], argc - 2, argv + 2);
  if (argc >= 2 && std::strcmp(argv[1], "keep") == 0) cohort::run_keep(argc - 2, argv + 2);
  // `cohort-exec init` starts ranks through /proc/self/exe, which names them "exe": name them
  // as ps and pgrep users expect.
  char comm[16] = {};
  if (prctl(PR_GET_NAME, comm) == 0 && std::strcmp(comm, "exe") == 0) {
    const char* slash = std::strrchr(argv[0], '/');
    prctl(PR_SET_NAME, slash != nullptr ? slash + 1 : argv[0]);
  }
  if (argc >= 4 && std::strcmp(argv[1], "rank") == 0 && std::strcmp(argv[2], "--") == 0) cohort::run_rank(argv + 3);
  if (argc >= 4 && std::strcmp(argv[1], "node") == 0) cohort::run_node(argv[2], argc - 3, argv + 3);
  if (argc >= 2 && std::strcmp(argv[1], "bridge") == 0) cohort::run_bridge(argc - 2, argv + 2);
  cohort::die(usage);
}
