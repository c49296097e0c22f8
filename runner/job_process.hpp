// One job attempt's process tree on this node, behind a small "keeper" process.
//
// The runner spawns `cohort-exec keep` (launcher/exec_keep.hpp); the keeper forks the job's
// program as the leader of a new process group and waits. The keeper's PR_SET_PDEATHSIG tells it
// when the runner is gone (even after a SIGKILL), and it then kills the job's whole process group;
// PR_SET_PDEATHSIG on the job alone would leave its own children running. When the job's leader
// ends, the keeper kills what is left of its group (background processes of a finished job), then
// ends the same way the leader did (exit code or signal), so waiting for the keeper is waiting for
// the job.
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
  std::vector<std::string> argv;            // the job's program (looked up on its PATH) and arguments
  std::filesystem::path keeper;             // cohort-exec
  std::filesystem::path working_directory;  // must exist
  std::filesystem::path log_file;           // stdout and stderr are appended here (created 0644)
  std::vector<std::string> environment;     // "NAME=value": the job's whole environment
  // Run by the keeper after it killed the job because the runner died first (the runner cleans up
  // after itself otherwise): a container's `runc delete --force`. Empty: nothing.
  std::vector<std::string> cleanup;
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
  // The job's end, or nullopt when it still runs after `timeout` or, sooner, once `also` (a file
  // descriptor, -1 for none) is readable.
  Result<std::optional<ExitStatus>> wait_for(std::chrono::milliseconds timeout, int also = -1);

 private:
  JobProcess(pid_t keeper, pid_t group) : keeper_(keeper), group_(group) {}
  void release();

  pid_t keeper_ = -1;
  pid_t group_ = -1;
  int pidfd_ = -1;  // the keeper's, opened by the first wait_for
  std::optional<ExitStatus> status_;
};

}  // namespace cohort::runner
