#include "exec_keep.hpp"

#include <fcntl.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <csignal>
#include <cstring>
#include <string_view>

namespace cohort {
namespace {

constexpr int kReportFd = 3;
// The keeper's parent-death signal (checked against getppid(), see the header).
constexpr int kRunnerGone = SIGUSR2;

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

void write_text(int fd, std::string_view text) {
  write_all(fd, text.data(), text.size());
}

[[noreturn]] void refuse(std::string_view why) {
  write_text(kReportFd, why);
  write_text(STDERR_FILENO, std::string_view("cohort-exec keep: "));
  write_text(STDERR_FILENO, why);
  write_text(STDERR_FILENO, "\n");
  _exit(127);
}

// The job: leader of its own group, stdin from /dev/null, default signal handling, nothing open
// beyond stdout and stderr (the log).
[[noreturn]] void job_main(char** program, pid_t keeper) {
  setpgid(0, 0);
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (getppid() != keeper) _exit(127);
  const int null_fd = ::open("/dev/null", O_RDONLY);
  if (null_fd >= 0) dup2(null_fd, STDIN_FILENO);
  close_from(3);
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, nullptr);
  execvp(program[0], program);
  const int e = errno;
  write_text(STDERR_FILENO, "cohort-exec keep: cannot run ");
  write_text(STDERR_FILENO, program[0]);
  write_text(STDERR_FILENO, ": ");
  write_text(STDERR_FILENO, std::strerror(e));
  write_text(STDERR_FILENO, "\n");
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

}  // namespace

void run_keep(int argc, char** argv) {
  sigset_t all;
  sigfillset(&all);
  sigprocmask(SIG_SETMASK, &all, nullptr);  // taken one by one with sigwaitinfo below
  pid_t runner = 0;
  const std::string_view pid_arg = argc >= 1 ? argv[0] : "";
  const auto parsed = std::from_chars(pid_arg.data(), pid_arg.data() + pid_arg.size(), runner);
  if (argc < 3 || parsed.ec != std::errc() || parsed.ptr != pid_arg.data() + pid_arg.size() || runner <= 1 ||
      std::strcmp(argv[1], "--") != 0) {
    refuse("usage: cohort-exec keep RUNNER_PID -- PROGRAM [ARGS...]");
  }
  close_from(kReportFd + 1);
  prctl(PR_SET_PDEATHSIG, kRunnerGone);
  if (getppid() != runner) _exit(127);  // the runner went before the signal was armed
  prctl(PR_SET_CHILD_SUBREAPER, 1);     // the job's orphans come here, not to init
  const pid_t self = getpid();
  const pid_t job = fork();
  if (job < 0) refuse("cannot fork the job's first process");
  if (job == 0) job_main(argv + 2, self);
  setpgid(job, job);  // also done by the job itself: whichever runs first
  write_all(kReportFd, reinterpret_cast<const char*>(&job), sizeof job);
  const int null_fd = ::open("/dev/null", O_RDWR);
  for (int fd = 0; fd < 3 && null_fd >= 0; ++fd)
    dup2(null_fd, fd);
  close_from(3);  // the log and the report pipe
  for (;;) {
    siginfo_t info;
    const int sig = sigwaitinfo(&all, &info);
    if (sig == kRunnerGone && getppid() != runner) {
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

}  // namespace cohort
