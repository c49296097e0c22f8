#include "job_process.hpp"

#include <fcntl.h>
#include <poll.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstring>
#include <utility>

namespace cohort::runner {

namespace {

using Clock = std::chrono::steady_clock;

// The keeper's parent-death signal. The keeper checks getppid() when it arrives: the signal also
// fires when only the forking thread of a live runner ends.
constexpr int kRunnerGone = SIGUSR2;

// Everything the children need, made before fork: after fork in a threaded runner only
// async-signal-safe calls are allowed, so no allocation happens there.
struct Prepared {
  std::vector<char*> argv;
  std::vector<char*> envp;
  const char* cwd;
  int log_fd;
  int report_fd;
  pid_t runner;
};

void close_from(int first) {
  syscall(SYS_close_range, static_cast<unsigned>(first), ~0U, 0U);
}

void write_all(int fd, const char* data, std::size_t n) {
  while (n > 0) {
    const ssize_t w = ::write(fd, data, n);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return;
    data += w;
    n -= static_cast<std::size_t>(w);
  }
}

void write_text(int fd, const char* text) {
  write_all(fd, text, std::strlen(text));
}

// The job: leader of its own group, stdout and stderr to the log, default signal handling.
[[noreturn]] void job_main(const Prepared& p, pid_t keeper) {
  setpgid(0, 0);
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (getppid() != keeper) _exit(127);
  const int null_fd = ::open("/dev/null", O_RDONLY);
  if (null_fd >= 0) dup2(null_fd, STDIN_FILENO);
  dup2(p.log_fd, STDOUT_FILENO);
  dup2(p.log_fd, STDERR_FILENO);
  close_from(3);
  struct sigaction dfl {};
  dfl.sa_handler = SIG_DFL;
  for (int s = 1; s < NSIG; ++s)
    sigaction(s, &dfl, nullptr);  // fails harmlessly for SIGKILL, SIGSTOP and glibc's own
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, nullptr);
  if (chdir(p.cwd) != 0) {
    write_text(STDERR_FILENO, "cohort-runner: cannot enter the job's directory: ");
    write_text(STDERR_FILENO, std::strerror(errno));
    _exit(127);
  }
  execve(p.argv[0], p.argv.data(), p.envp.data());
  write_text(STDERR_FILENO, "cohort-runner: exec /bin/sh failed\n");
  _exit(127);
}

// Ends this process the way the job ended: same exit code, or same signal.
[[noreturn]] void mirror(int wstatus) {
  if (WIFSIGNALED(wstatus)) {
    const int sig = WTERMSIG(wstatus);
    const rlimit no_core{0, 0};
    setrlimit(RLIMIT_CORE, &no_core);
    struct sigaction dfl {};
    dfl.sa_handler = SIG_DFL;
    sigaction(sig, &dfl, nullptr);
    sigset_t one;
    sigemptyset(&one);
    sigaddset(&one, sig);
    kill(getpid(), sig);
    sigprocmask(SIG_UNBLOCK, &one, nullptr);  // delivered here
    _exit(128 + sig);                         // a signal whose default is not to end a process
  }
  _exit(WIFEXITED(wstatus) ? WEXITSTATUS(wstatus) : 127);
}

[[noreturn]] void keeper_main(const Prepared& p) {
  sigset_t all;
  sigfillset(&all);
  sigprocmask(SIG_SETMASK, &all, nullptr);  // taken one by one with sigwaitinfo below
  prctl(PR_SET_PDEATHSIG, kRunnerGone);
  if (getppid() != p.runner) _exit(127);
  prctl(PR_SET_CHILD_SUBREAPER, 1);  // the job's orphans come here, not to init
  const pid_t self = getpid();
  const pid_t job = fork();
  if (job < 0) {
    write_text(p.report_fd, "fork failed: ");
    write_text(p.report_fd, std::strerror(errno));
    _exit(127);
  }
  if (job == 0) job_main(p, self);
  setpgid(job, job);  // also done by the job itself: whichever runs first
  write_all(p.report_fd, reinterpret_cast<const char*>(&job), sizeof job);
  const int null_fd = ::open("/dev/null", O_RDWR);
  for (int fd = 0; fd < 3 && null_fd >= 0; ++fd)
    dup2(null_fd, fd);
  close_from(3);  // the runner's sockets, the log and the report pipe
  for (;;) {
    siginfo_t info;
    const int sig = sigwaitinfo(&all, &info);
    if (sig == kRunnerGone && getppid() != p.runner) {
      kill(-job, SIGKILL);
      int ws = 0;
      while (waitpid(job, &ws, 0) < 0 && errno == EINTR) {
      }
      mirror(ws);
    }
    if (sig != SIGCHLD) continue;  // SIGTERM, SIGINT, SIGHUP: meant for the runner, which stops the job
    int ws = 0;
    for (pid_t r; (r = waitpid(-1, &ws, WNOHANG)) > 0;) {
      if (r != job) continue;  // an orphan of the job, reaped
      kill(-job, SIGKILL);     // what the job left behind in its group
      while (waitpid(-1, nullptr, WNOHANG) > 0) {
      }
      mirror(ws);
    }
  }
}

}  // namespace

Result<JobProcess> JobProcess::start(const JobProcessSpec& spec) {
  const int log_fd = ::open(spec.log_file.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (log_fd < 0) return errno_status("open", errno, spec.log_file.string());
  int report[2];
  if (pipe2(report, O_CLOEXEC) != 0) {
    const int err = errno;
    ::close(log_fd);
    return errno_status("pipe2", err);
  }
  static const char* kShell = "/bin/sh";
  static const char* kDashC = "-c";
  Prepared p{{const_cast<char*>(kShell), const_cast<char*>(kDashC), const_cast<char*>(spec.command.c_str()), nullptr},
             {},
             spec.working_directory.c_str(),
             log_fd,
             report[1],
             getpid()};
  for (const auto& e : spec.environment)
    p.envp.push_back(const_cast<char*>(e.c_str()));
  p.envp.push_back(nullptr);

  const pid_t keeper = fork();
  if (keeper == 0) keeper_main(p);
  const int fork_errno = errno;
  ::close(log_fd);
  ::close(report[1]);
  if (keeper < 0) {
    ::close(report[0]);
    return errno_status("fork", fork_errno, "the job's keeper");
  }
  JobProcess process(keeper, -1);
  std::string got;
  char buf[256];
  for (;;) {
    const ssize_t n = ::read(report[0], buf, sizeof buf);
    if (n > 0) got.append(buf, static_cast<std::size_t>(n));
    if (n == 0 || (n < 0 && errno != EINTR)) break;
  }
  ::close(report[0]);
  if (got.size() != sizeof(pid_t)) {
    (void)process.wait_for(std::chrono::seconds(1));
    return Status(Code::kResourceExhausted, "starting the job's process failed: " + (got.empty() ? "no report" : got));
  }
  std::memcpy(&process.group_, got.data(), sizeof(pid_t));
  return process;
}

JobProcess::JobProcess(JobProcess&& other) noexcept {
  *this = std::move(other);
}

JobProcess& JobProcess::operator=(JobProcess&& other) noexcept {
  if (this != &other) {
    release();
    keeper_ = std::exchange(other.keeper_, -1);
    group_ = std::exchange(other.group_, -1);
    pidfd_ = std::exchange(other.pidfd_, -1);
    status_ = std::exchange(other.status_, std::nullopt);
  }
  return *this;
}

JobProcess::~JobProcess() {
  release();
}

void JobProcess::release() {
  if (keeper_ > 0 && !status_) {
    if (group_ > 0) ::kill(-group_, SIGKILL);
    ::kill(keeper_, SIGKILL);
    while (waitpid(keeper_, nullptr, 0) < 0 && errno == EINTR) {
    }
  }
  if (pidfd_ >= 0) ::close(pidfd_);
  keeper_ = group_ = pidfd_ = -1;
}

Status JobProcess::signal_group(int sig) const {
  if (group_ <= 0 || status_) return {};
  if (::kill(-group_, sig) != 0 && errno != ESRCH)
    return errno_status("kill", errno, "group " + std::to_string(group_));
  return {};
}

Status JobProcess::signal_leader(int sig) const {
  if (group_ <= 0 || status_) return {};
  if (::kill(group_, sig) != 0 && errno != ESRCH)
    return errno_status("kill", errno, "process " + std::to_string(group_));
  return {};
}

Result<std::optional<ExitStatus>> JobProcess::wait_for(std::chrono::milliseconds timeout) {
  if (status_) return status_;
  if (pidfd_ < 0) pidfd_ = static_cast<int>(syscall(SYS_pidfd_open, keeper_, 0));
  const auto deadline = Clock::now() + timeout;
  for (;;) {
    int ws = 0;
    const pid_t r = waitpid(keeper_, &ws, WNOHANG);
    if (r < 0 && errno != EINTR) return errno_status("waitpid", errno, "keeper " + std::to_string(keeper_));
    if (r == keeper_) {
      status_ = ExitStatus::from_wait_status(ws);
      return status_;
    }
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
    if (left <= 0) return std::optional<ExitStatus>();
    pollfd pfd{pidfd_, POLLIN, 0};
    if (pidfd_ < 0 || ::poll(&pfd, 1, static_cast<int>(std::min<long long>(left, 50))) < 0) {
      ::usleep(5000);  // no pidfd (kernels before 5.3) or an interrupted poll
    }
  }
}

}  // namespace cohort::runner
