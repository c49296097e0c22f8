#include "job_process.hpp"

#include <fcntl.h>
#include <poll.h>
#include <spawn.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstring>
#include <string>
#include <utility>
#include <vector>

namespace cohort::runner {

namespace {

using Clock = std::chrono::steady_clock;

}  // namespace

Result<JobProcess> JobProcess::start(const JobProcessSpec& spec) {
  if (spec.argv.empty()) return Status(Code::kInvalidArgument, "the job's command is empty");
  const int log_fd = ::open(spec.log_file.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (log_fd < 0) return errno_status("open", errno, spec.log_file.string());
  int report[2];
  if (pipe2(report, O_CLOEXEC) != 0) {
    const int err = errno;
    ::close(log_fd);
    return errno_status("pipe2", err);
  }
  std::vector<std::string> words = {"cohort-exec", "keep", std::to_string(getpid())};
  for (const auto& word : spec.cleanup)
    words.insert(words.end(), {"--cleanup", word});
  words.push_back("--");
  words.insert(words.end(), spec.argv.begin(), spec.argv.end());
  std::vector<char*> argv;
  for (auto& w : words)
    argv.push_back(w.data());
  argv.push_back(nullptr);
  std::vector<char*> envp;
  for (const auto& e : spec.environment)
    envp.push_back(const_cast<char*>(e.c_str()));
  envp.push_back(nullptr);

  // posix_spawn is a vfork: the runner's address space is not copied (a fork of it took ~20 ms
  // on a VM where a small process forks and execs in 4). The keeper gets the log as stdout and
  // stderr, the report pipe as fd 3, the job's directory, and every signal blocked and defaulted.
  posix_spawn_file_actions_t actions;
  posix_spawnattr_t attr;
  posix_spawn_file_actions_init(&actions);
  posix_spawnattr_init(&attr);
  posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&actions, log_fd, STDOUT_FILENO);
  posix_spawn_file_actions_adddup2(&actions, log_fd, STDERR_FILENO);
  posix_spawn_file_actions_adddup2(&actions, report[1], 3);
  posix_spawn_file_actions_addchdir_np(&actions, spec.working_directory.c_str());
  sigset_t all, defaults;
  sigfillset(&all);
  sigfillset(&defaults);
  posix_spawnattr_setsigmask(&attr, &all);
  posix_spawnattr_setsigdefault(&attr, &defaults);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
  pid_t keeper = -1;
  const int spawned = posix_spawn(&keeper, spec.keeper.c_str(), &actions, &attr, argv.data(), envp.data());
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attr);
  ::close(log_fd);
  ::close(report[1]);
  if (spawned != 0) {
    ::close(report[0]);
    // A failed chdir fails the spawn the same way: name both.
    return Status(Code::kFailedPrecondition, "cannot start the job's keeper " + spec.keeper.string() + " in " +
                                                 spec.working_directory.string() + ": " + std::strerror(spawned));
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

Result<std::optional<ExitStatus>> JobProcess::wait_for(std::chrono::milliseconds timeout, int also) {
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
    // Rounded up: truncated, a wait of under a millisecond returned at once, and a loop of them spun.
    const auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - Clock::now()).count();
    if (left <= 0) return std::optional<ExitStatus>();
    pollfd pfd[2] = {{pidfd_, POLLIN, 0}, {also, POLLIN, 0}};
    const int n = ::poll(pfd, also >= 0 ? 2 : 1, static_cast<int>(std::min<long long>(left, 50)));
    if (n > 0 && also >= 0 && (pfd[1].revents & POLLIN) != 0) return std::optional<ExitStatus>();
    if (pidfd_ < 0 || n < 0) ::usleep(5000);  // no pidfd (kernels before 5.3) or an interrupted poll
  }
}

}  // namespace cohort::runner
