#include "exec_keep.hpp"

#include <fcntl.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <chrono>
#include <csignal>
#include <cstring>
#include <string_view>
#include <vector>

#include "exec_init.hpp"
#include "file_write.hpp"

namespace cohort {
namespace {

constexpr int kReportFd = 3;
// The keeper's parent-death signal (checked against getppid(), see the header).
constexpr int kRunnerGone = SIGUSR2;

void close_from(int first) {
  syscall(SYS_close_range, static_cast<unsigned>(first), ~0U, 0U);
}

void write_out(int fd, std::string_view text) {
  (void)write_all(fd, text);
}

[[noreturn]] void refuse(std::string_view why) {
  write_out(kReportFd, why);
  write_out(STDERR_FILENO, std::string_view("cohort-exec keep: "));
  write_out(STDERR_FILENO, why);
  write_out(STDERR_FILENO, "\n");
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
  write_out(STDERR_FILENO, "cohort-exec keep: cannot run ");
  write_out(STDERR_FILENO, program[0]);
  write_out(STDERR_FILENO, ": ");
  write_out(STDERR_FILENO, std::strerror(e));
  write_out(STDERR_FILENO, "\n");
  _exit(127);
}

// Runs `cleanup` (argv, null-terminated) to its end, for at most kCleanupLimit, then kills it.
// The keeper's signals are all blocked: SIGCHLD is taken with sigtimedwait.
void run_cleanup(char** cleanup) {
  using namespace std::chrono;
  constexpr seconds kCleanupLimit{20};  // runc's delete takes ~10 ms; a loaded node, far more
  const pid_t pid = fork();
  if (pid < 0) return;
  if (pid == 0) {
    setpgid(0, 0);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    execvp(cleanup[0], cleanup);
    _exit(127);
  }
  sigset_t child;
  sigemptyset(&child);
  sigaddset(&child, SIGCHLD);
  const auto deadline = steady_clock::now() + kCleanupLimit;
  for (;;) {
    const pid_t r = waitpid(pid, nullptr, WNOHANG);
    if (r == pid || (r < 0 && errno != EINTR)) return;
    const auto left = duration_cast<nanoseconds>(deadline - steady_clock::now()).count();
    if (left <= 0) break;
    const timespec wait{left / 1'000'000'000, left % 1'000'000'000};
    sigtimedwait(&child, nullptr, &wait);
  }
  kill(-pid, SIGKILL);
  while (waitpid(pid, nullptr, 0) < 0 && errno == EINTR) {
  }
}

}  // namespace

void run_keep(int argc, char** argv) {
  sigset_t all;
  sigfillset(&all);
  sigprocmask(SIG_SETMASK, &all, nullptr);  // taken one by one with sigwaitinfo below
  pid_t runner = 0;
  const std::string_view pid_arg = argc >= 1 ? argv[0] : "";
  const auto parsed = std::from_chars(pid_arg.data(), pid_arg.data() + pid_arg.size(), runner);
  std::vector<char*> cleanup;
  int at = 1;
  for (; at + 1 < argc && std::strcmp(argv[at], "--cleanup") == 0; at += 2)
    cleanup.push_back(argv[at + 1]);
  cleanup.push_back(nullptr);
  if (at + 1 >= argc || parsed.ec != std::errc() || parsed.ptr != pid_arg.data() + pid_arg.size() || runner <= 1 ||
      std::strcmp(argv[at], "--") != 0) {
    refuse("usage: cohort-exec keep RUNNER_PID [--cleanup WORD]... -- PROGRAM [ARGS...]");
  }
  char** program = argv + at + 1;
  close_from(kReportFd + 1);
  prctl(PR_SET_PDEATHSIG, kRunnerGone);
  if (getppid() != runner) _exit(127);  // the runner went before the signal was armed
  prctl(PR_SET_CHILD_SUBREAPER, 1);     // the job's orphans come here, not to init
  const pid_t self = getpid();
  const pid_t job = fork();
  if (job < 0) refuse("cannot fork the job's first process");
  if (job == 0) job_main(program, self);
  setpgid(job, job);  // also done by the job itself: whichever runs first
  write_out(kReportFd, std::string_view(reinterpret_cast<const char*>(&job), sizeof job));
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
      if (cleanup.front() != nullptr) run_cleanup(cleanup.data());
      exit_like(ExitStatus::from_wait_status(ws));
    }
    if (sig != SIGCHLD) continue;  // SIGTERM, SIGINT, SIGHUP: meant for the runner, which stops the job
    int ws = 0;
    for (pid_t r; (r = waitpid(-1, &ws, WNOHANG)) > 0;) {
      if (r != job) continue;  // an orphan of the job, reaped
      kill(-job, SIGKILL);     // what the job left behind in its group
      while (waitpid(-1, nullptr, WNOHANG) > 0) {
      }
      exit_like(ExitStatus::from_wait_status(ws));
    }
  }
}

}  // namespace cohort
