#include "subprocess.hpp"

#include <fcntl.h>
#include <poll.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <thread>

namespace cohort {
namespace {

using Clock = std::chrono::steady_clock;

void close_fd(int& fd) {
  if (fd >= 0) ::close(fd);
  fd = -1;
}

// In the child: report `message` to the parent through the exec pipe and exit.
[[noreturn]] void child_fail(int report_fd, const std::string& message) {
  ssize_t ignored = ::write(report_fd, message.data(), message.size());
  (void)ignored;
  _exit(127);
}

// In the child: `target_fd` appends to `path`.
void redirect_to_file(int report_fd, const std::string& path, int target_fd) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd < 0) child_fail(report_fd, "open " + path + ": " + std::strerror(errno));
  if (dup2(fd, target_fd) < 0) child_fail(report_fd, "dup2 " + path + " failed");
  ::close(fd);
}

[[noreturn]] void run_child(const SpawnOptions& o, pid_t parent, int report_fd, int out_w, int err_w) {
  if (o.parent_death_signal != 0) {
    prctl(PR_SET_PDEATHSIG, o.parent_death_signal);
    if (getppid() != parent) _exit(127);  // the parent died before prctl took hold
  }
  if (o.new_process_group) setpgid(0, 0);
  if (out_w >= 0 && dup2(out_w, STDOUT_FILENO) < 0) child_fail(report_fd, "dup2 stdout failed");
  if (err_w >= 0 && dup2(err_w, STDERR_FILENO) < 0) child_fail(report_fd, "dup2 stderr failed");
  if (out_w < 0 && !o.stdout_file.empty()) redirect_to_file(report_fd, o.stdout_file, STDOUT_FILENO);
  if (err_w < 0 && !o.stderr_file.empty()) redirect_to_file(report_fd, o.stderr_file, STDERR_FILENO);
  if (!o.working_directory.empty() && chdir(o.working_directory.c_str()) != 0) {
    child_fail(report_fd, "chdir " + o.working_directory + ": " + std::strerror(errno));
  }
  // A parent that blocks signals for its own handling must not pass the mask on.
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, nullptr);
  for (const auto& [name, value] : o.env)
    setenv(name.c_str(), value.c_str(), 1);
  if (o.in_child) {
    Status s = o.in_child();
    if (!s.ok()) child_fail(report_fd, s.message());
  }
  std::vector<char*> argv;
  for (const auto& a : o.argv)
    argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  execvp(argv[0], argv.data());
  child_fail(report_fd, "exec " + o.argv[0] + ": " + std::strerror(errno));
}

}  // namespace

Result<Subprocess> Subprocess::spawn(const SpawnOptions& o) {
  if (o.argv.empty()) return invalid_argument("spawn: empty command");
  int report[2];
  if (pipe2(report, O_CLOEXEC) != 0) return errno_status("pipe2", errno);
  int out[2] = {-1, -1};
  int err[2] = {-1, -1};
  if (o.capture_stdout && pipe2(out, O_CLOEXEC) != 0) return errno_status("pipe2", errno);
  if (o.capture_stderr && pipe2(err, O_CLOEXEC) != 0) return errno_status("pipe2", errno);

  const pid_t parent = getpid();
  const pid_t pid = fork();
  if (pid < 0) return errno_status("fork", errno, o.argv[0]);
  if (pid == 0) run_child(o, parent, report[1], out[1], err[1]);

  close_fd(report[1]);
  close_fd(out[1]);
  close_fd(err[1]);
  Subprocess child(pid, out[0], err[0]);
  // The pipe closes on a successful exec (O_CLOEXEC); anything read is the child's error.
  std::string message;
  char buf[512];
  for (;;) {
    ssize_t n = ::read(report[0], buf, sizeof buf);
    if (n > 0) message.append(buf, static_cast<std::size_t>(n));
    if (n == 0 || (n < 0 && errno != EINTR)) break;
  }
  close_fd(report[0]);
  if (!message.empty()) {
    (void)child.wait();
    Code code = message.find("No such file") != std::string::npos ? Code::kNotFound : Code::kFailedPrecondition;
    return Status(code, message);
  }
  return child;
}

Subprocess::Subprocess(Subprocess&& other) noexcept {
  *this = std::move(other);
}

Subprocess& Subprocess::operator=(Subprocess&& other) noexcept {
  if (this != &other) {
    release();
    pid_ = std::exchange(other.pid_, -1);
    out_fd_ = std::exchange(other.out_fd_, -1);
    err_fd_ = std::exchange(other.err_fd_, -1);
    pidfd_ = std::exchange(other.pidfd_, -1);
    status_ = std::exchange(other.status_, std::nullopt);
  }
  return *this;
}

Subprocess::~Subprocess() {
  release();
}

void Subprocess::release() {
  if (pid_ > 0 && !status_) {
    ::kill(pid_, SIGKILL);
    int ws = 0;
    while (waitpid(pid_, &ws, 0) < 0 && errno == EINTR) {
    }
  }
  pid_ = -1;
  close_fd(pidfd_);
  close_fd(out_fd_);
  close_fd(err_fd_);
}

Status Subprocess::signal(int sig) const {
  if (pid_ <= 0 || status_) return {};
  if (::kill(pid_, sig) != 0 && errno != ESRCH) return errno_status("kill", errno, std::to_string(pid_));
  return {};
}

Result<ExitStatus> Subprocess::wait() {
  if (status_) return *status_;
  int ws = 0;
  for (;;) {
    if (waitpid(pid_, &ws, 0) >= 0) break;
    if (errno != EINTR) return errno_status("waitpid", errno, std::to_string(pid_));
  }
  status_ = ExitStatus::from_wait_status(ws);
  close_fd(pidfd_);
  return *status_;
}

Result<std::optional<ExitStatus>> Subprocess::wait_for(std::chrono::milliseconds timeout) {
  if (status_) return std::optional<ExitStatus>(*status_);
  // A pidfd turns "has it ended?" into poll(2): the end is seen the moment it happens, with no
  // polling interval added to every launch. A signal interrupts the poll, so callers that wait
  // in a loop see their own signal flags promptly.
  if (pidfd_ < 0) pidfd_ = static_cast<int>(syscall(SYS_pidfd_open, pid_, 0));
  const auto deadline = Clock::now() + timeout;
  for (;;) {
    int ws = 0;
    pid_t r = waitpid(pid_, &ws, WNOHANG);
    if (r < 0 && errno != EINTR) return errno_status("waitpid", errno, std::to_string(pid_));
    if (r == pid_) {
      status_ = ExitStatus::from_wait_status(ws);
      close_fd(pidfd_);
      return std::optional<ExitStatus>(*status_);
    }
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
    if (left <= 0) return std::optional<ExitStatus>();
    if (pidfd_ >= 0) {
      pollfd p{pidfd_, POLLIN, 0};
      if (::poll(&p, 1, static_cast<int>(left)) < 0 && errno == EINTR) return std::optional<ExitStatus>();
    } else {
      std::this_thread::sleep_for(std::chrono::milliseconds(std::min<long>(left, 5)));  // kernels before 5.3
    }
  }
}

ExitStatus Subprocess::terminate(std::chrono::milliseconds grace) {
  (void)signal(SIGTERM);
  const auto deadline = Clock::now() + grace;
  do {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    auto done = wait_for(std::max(left, std::chrono::milliseconds(0)));
    if (!done.ok()) break;
    if (done.value()) return *done.value();
  } while (Clock::now() < deadline);
  (void)signal(SIGKILL);
  auto killed = wait();
  return killed.ok() ? killed.value() : ExitStatus{0, SIGKILL};
}

Result<Captured> run_captured(SpawnOptions options, std::chrono::milliseconds timeout) {
  options.capture_stdout = true;
  options.capture_stderr = true;
  COHORT_ASSIGN_OR_RETURN(Subprocess child, Subprocess::spawn(options));
  Captured result;
  const auto deadline = Clock::now() + timeout;
  pollfd fds[2] = {{child.stdout_fd(), POLLIN, 0}, {child.stderr_fd(), POLLIN, 0}};
  std::string* sinks[2] = {&result.out, &result.err};
  int open_fds = 2;
  while (open_fds > 0) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
    if (left <= 0) {
      result.timed_out = true;
      break;
    }
    int n = ::poll(fds, 2, static_cast<int>(left));
    if (n < 0 && errno != EINTR) return errno_status("poll", errno);
    for (int i = 0; i < 2; ++i) {
      if (fds[i].fd < 0 || (fds[i].revents & (POLLIN | POLLHUP | POLLERR)) == 0) continue;
      char buf[8192];
      ssize_t r = ::read(fds[i].fd, buf, sizeof buf);
      if (r > 0) {
        sinks[i]->append(buf, static_cast<std::size_t>(r));
      } else if (r == 0 || errno != EINTR) {
        fds[i].fd = -1;  // the Subprocess still owns and closes it
        --open_fds;
      }
    }
  }
  if (result.timed_out) {
    result.status = child.terminate(std::chrono::milliseconds(2000));
    return result;
  }
  // Both pipes closed; the child may still be finishing (or a grandchild held the pipes).
  auto left = std::max<std::chrono::milliseconds::rep>(
      0, std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count());
  COHORT_ASSIGN_OR_RETURN(auto st, child.wait_for(std::chrono::milliseconds(left)));
  if (!st) {
    result.timed_out = true;
    result.status = child.terminate(std::chrono::milliseconds(2000));
  } else {
    result.status = *st;
  }
  return result;
}

}  // namespace cohort
