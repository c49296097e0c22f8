// Child processes with RAII: a Subprocess that goes out of scope while its child still runs
// kills (SIGKILL) and reaps it, so no error path leaves a process behind.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <csignal>
#include <functional>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "cohort/status.hpp"
#include "exit_status.hpp"

namespace cohort {

struct SpawnOptions {
  std::vector<std::string> argv;                         // argv[0] is looked up on PATH when it has no '/'
  std::vector<std::pair<std::string, std::string>> env;  // set (or replaced) in the child
  // Runs in the child after fork, before exec. REQUIRES: the parent is single-threaded (only
  // async-signal-safe work is safe after fork in a threaded parent). A non-OK Status fails spawn.
  std::function<Status()> in_child;
  // Sent to the child when the thread that spawned it dies, so a killed parent (even SIGKILL)
  // leaves nothing behind. 0 keeps the child alive.
  int parent_death_signal = SIGKILL;
  bool capture_stdout = false;  // else inherited
  bool capture_stderr = false;
  bool new_process_group = false;
  // The child's working directory; "" keeps the parent's.
  std::string working_directory;
  // Appends the child's stdout / stderr to these files (created 0644) instead of inheriting them;
  // "" keeps the default. Ignored for a stream that is captured. Both may name the same file.
  std::string stdout_file;
  std::string stderr_file;
};

class Subprocess {
 public:
  static Result<Subprocess> spawn(const SpawnOptions& options);

  Subprocess(Subprocess&& other) noexcept;
  Subprocess& operator=(Subprocess&& other) noexcept;
  Subprocess(const Subprocess&) = delete;
  Subprocess& operator=(const Subprocess&) = delete;
  ~Subprocess();

  pid_t pid() const noexcept { return pid_; }
  int stdout_fd() const noexcept { return out_fd_; }  // -1 unless captured
  int stderr_fd() const noexcept { return err_fd_; }

  Status signal(int sig) const;
  // Blocks until the child ends.
  Result<ExitStatus> wait();
  // nullopt when it is still running after `timeout`, or when a signal arrived first.
  Result<std::optional<ExitStatus>> wait_for(std::chrono::milliseconds timeout);
  // SIGTERM, then SIGKILL when it has not ended after `grace`; never blocks longer than that.
  ExitStatus terminate(std::chrono::milliseconds grace);

 private:
  Subprocess(pid_t pid, int out_fd, int err_fd) : pid_(pid), out_fd_(out_fd), err_fd_(err_fd) {}
  void release();

  pid_t pid_ = -1;  // -1 once reaped
  int out_fd_ = -1;
  int err_fd_ = -1;
  int pidfd_ = -1;  // opened by the first wait_for
  std::optional<ExitStatus> status_;
};

// Runs a command to its end, capturing stdout and stderr; kills it at `timeout`.
struct Captured {
  ExitStatus status;
  std::string out;
  std::string err;
  bool timed_out = false;
};
Result<Captured> run_captured(SpawnOptions options, std::chrono::milliseconds timeout);

}  // namespace cohort
