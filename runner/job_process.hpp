// One job attempt's process tree on this node, behind a small "keeper" process.
//
// The runner forks a keeper; the keeper forks `/bin/sh -c COMMAND` as the leader of a new process
// group and waits. The keeper's PR_SET_PDEATHSIG tells it when the runner is gone (even after a
// SIGKILL), and it then kills the job's whole process group; PR_SET_PDEATHSIG on the shell alone
// would leave the shell's own children running. When the shell ends, the keeper kills what is
// left of its group (background processes of a finished job), then ends the same way the shell
// did (exit code or signal), so waiting for the keeper is waiting for the job.
//
// The runner stops a job by signalling its process group (SIGTERM, then SIGKILL).
#pragma once

#include <sys/types.h>

#include <chrono>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "cohort/status.hpp"
#include "exit_status.hpp"

namespace cohort::runner {

struct JobProcessSpec {
  std::string command;                      // run as /bin/sh -c COMMAND
  std::filesystem::path working_directory;  // must exist
  std::filesystem::path log_file;           // stdout and stderr are appended here (created 0644)
  std::vector<std::string> environment;     // "NAME=value": the job's whole environment
};

class JobProcess {
 public:
  // REQUIRES: the calling thread lives as long as the job (PR_SET_PDEATHSIG fires when the thread
  // that forked ends, not the process): call it from a Spawner's thread.
  static Result<JobProcess> start(const JobProcessSpec& spec);

  JobProcess(JobProcess&& other) noexcept;
  JobProcess& operator=(JobProcess&& other) noexcept;
  JobProcess(const JobProcess&) = delete;
  JobProcess& operator=(const JobProcess&) = delete;
  // A job still running is killed (SIGKILL to its group) and its keeper reaped: never blocks for long.
  ~JobProcess();

  pid_t process_group() const noexcept { return group_; }  // the shell's pid
  pid_t keeper() const noexcept { return keeper_; }

  // Sends `sig` to every process of the job's group; a no-op once the job has ended.
  Status signal_group(int sig) const;
  // Sends `sig` to the group's leader alone (the shell, or what it exec'd); a no-op once the job has ended.
  Status signal_leader(int sig) const;
  // The job's end, or nullopt when it still runs after `timeout`.
  Result<std::optional<ExitStatus>> wait_for(std::chrono::milliseconds timeout);

 private:
  JobProcess(pid_t keeper, pid_t group) : keeper_(keeper), group_(group) {}
  void release();

  pid_t keeper_ = -1;
  pid_t group_ = -1;
  int pidfd_ = -1;  // the keeper's, opened by the first wait_for
  std::optional<ExitStatus> status_;
};

}  // namespace cohort::runner
