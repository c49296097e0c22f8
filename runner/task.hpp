// One job attempt on this node, from assignment to exit: its directory, its code, its process,
// its progress, its stop and its timeout. Each task has a thread of its own, so slow work (a code
// download, a process start, a stop grace period) never holds up the runner's heartbeats.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "cohort/status.hpp"
#include "cohort/v1/cohort.pb.h"
#include "exit_status.hpp"
#include "spawner.hpp"

namespace cohort::runner {

// Writes the job's code snapshot (a tar.gz) to `destination`.
using CodeFetcher = std::function<Status(const v1::Assignment& assignment, const std::filesystem::path& destination)>;

struct TaskEnvironment {
  std::filesystem::path work_dir;  // the attempt lives in work_dir/jobs/<job>/<attempt>/
  std::string node_name;
  std::vector<std::string> base_environment;   // "NAME=value": the runner's own, less its secrets
  std::chrono::milliseconds stop_grace{5000};  // SIGTERM to SIGKILL
  CodeFetcher fetch_code;                      // called only for an assignment with code
  Spawner* spawner = nullptr;                  // owned by the runner, outlives every task
  std::function<void()> on_exit;               // called on the task's thread when it has exited
};

// The environment a job gets: `base`, then the assignment's variables, then Cohort's own
// (COHORT_JOB_ID, COHORT_ATTEMPT, COHORT_NODE_RANK, COHORT_NUM_NODES, COHORT_NODE_NAME,
// COHORT_NODE_ADDRESSES, COHORT_PROGRESS_FILE), each name once, later ones winning.
std::vector<std::string> job_environment(const std::vector<std::string>& base, const v1::Assignment& assignment,
                                         const std::string& node_name, const std::filesystem::path& progress_file);

// The runner's environment without what a job must not see (the join token, the admin token).
std::vector<std::string> runner_environment_for_jobs();

// The step a progress file holds (a decimal number, surrounding blanks allowed); nullopt otherwise.
std::optional<std::int64_t> parse_progress(std::string_view text);

class Task {
 public:
  // REQUIRES: env.spawner is set; the assignment's job id is a valid path component.
  Task(v1::Assignment assignment, TaskEnvironment env);
  ~Task();  // stops a running job (with its grace) and joins the thread
  Task(const Task&) = delete;
  Task& operator=(const Task&) = delete;

  void start();  // starts the task's thread; call once
  // Ends the job: SIGTERM to its process group now, SIGKILL after the grace. `cause` becomes the
  // exit's cause ("timed out after 5 s", "stopped: the attempt was canceled"). Asynchronous.
  void stop(std::string cause);

  v1::TaskStatus status() const;
  bool exited() const { return exited_.load(); }
  // True when the task exited within `timeout`.
  bool wait_exited(std::chrono::milliseconds timeout) const;

  const v1::Assignment& assignment() const { return assignment_; }
  const std::filesystem::path& dir() const { return dir_; }
  std::filesystem::path log_path() const { return dir_ / "output.log"; }
  std::filesystem::path progress_path() const { return dir_ / "progress"; }

 private:
  void run();
  Status prepare();
  void watch(JobProcess& process);
  void read_progress();
  void finish(ExitStatus status, std::string cause);
  void note(const std::string& line) const;  // appends a runner line to output.log

  const v1::Assignment assignment_;
  const TaskEnvironment env_;
  const std::filesystem::path dir_;

  mutable std::mutex mu_;
  mutable std::condition_variable cv_;
  v1::TaskStatus status_;                  // guarded by mu_
  std::optional<std::string> stop_cause_;  // guarded by mu_
  std::atomic<bool> exited_{false};
  std::filesystem::file_time_type progress_mtime_{};  // task thread only
  std::thread thread_;
};

}  // namespace cohort::runner
