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

#include "bridge_server.hpp"
#include "cohort/status.hpp"
#include "cohort/v1/cohort.pb.h"
#include "container.hpp"
#include "exit_status.hpp"
#include "launch_plan.hpp"
#include "spawner.hpp"
#include "subprocess.hpp"

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
  std::filesystem::path bin_dir;               // cohort-exec
  // Null when this node runs no containers; `no_containers` then says why.
  const Runc* runc = nullptr;
  std::string no_containers;
  std::string hostname;  // the container's
  uid_t job_uid = 65534;
  gid_t job_gid = 65534;
  std::chrono::milliseconds ready_timeout{120000};  // config::kPeerReady
  std::filesystem::path image_cache;                // unpacked OCI images, shared by attempts
  std::filesystem::path topology_file;              // the node's hwloc topology; empty: none
  // Waits until node `rank` of the attempt has its container up, or `until`; the error names the
  // node. Used by an MPI head before it starts mpirun.
  std::function<Status(const v1::Assignment&, int rank, std::chrono::steady_clock::time_point until,
                       const std::function<bool()>& give_up)>
      wait_peer_ready;
  std::function<void()> on_change;  // the task is up, or one of its ranks failed: report it now
};

// The runner's environment without what a job must not see (the join token, the admin token).
std::vector<std::string> runner_environment_for_jobs();

// argv as one /bin/sh command line, each word single-quoted.
std::string shell_join(const std::vector<std::string>& argv);

// The GPU device nodes of this machine (/dev/nvidia*), given to every container.
std::vector<std::filesystem::path> gpu_devices();

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

  // A preemption notice: the job gets the notice file (RUN/notice, JSON with deadline_unix_ms)
  // and the assignment's notice signal, once, as soon as its process runs. Asynchronous.
  void notify_preemption(std::int64_t deadline_ms);

  v1::TaskStatus status() const;
  bool exited() const { return exited_.load(); }
  // True when the task exited within `timeout`.
  bool wait_exited(std::chrono::milliseconds timeout) const;

  // Its container (or process) is up and has not exited: what a peer's readiness gate waits for.
  bool ready() const;
  // ready(), waiting up to `timeout` for it (woken when it turns ready or the task ends).
  bool wait_ready_for(std::chrono::milliseconds timeout) const;
  // What the node is doing while not ready, for a peer's error message.
  std::string phase() const;
  // Where a peer's bridge may start a process in this attempt (Open MPI's daemon), and the
  // environment it gets: the exec socket of an MPI worker's init, which starts it in the job's
  // container as the job's user. FailedPrecondition before it is ready or on a node that takes none.
  struct ExecTarget {
    std::filesystem::path socket;
    std::vector<std::string> env;
  };
  Result<ExecTarget> exec_target() const;

  const v1::Assignment& assignment() const { return assignment_; }
  const std::filesystem::path& dir() const { return dir_; }
  std::filesystem::path log_path() const { return dir_ / "output.log"; }
  std::filesystem::path run_dir() const { return dir_ / "run"; }
  std::filesystem::path progress_path() const { return run_dir() / "progress"; }
  std::string container_id() const;

 private:
  void run();
  Status prepare();
  Result<std::vector<std::string>> plan();  // what the keeper runs; fills plan_ and container_
  void gate_on_peers();                     // on a thread of its own: creates plan_.go_file, or stops the task
  bool stop_requested() const;
  void wait_ready(JobProcess& process);
  // Until the first process ends: how it ended and the cause to report.
  std::pair<ExitStatus, std::string> watch(JobProcess& process);
  struct StepRead {
    std::int64_t step;
    std::int64_t ms;  // the file's modification time
  };
  // A file holding one step number, when it changed since `seen`.
  static std::optional<StepRead> read_step_file(const std::filesystem::path& path,
                                                std::filesystem::file_time_type& seen);
  void read_progress();  // progress, and libcohort's restored and checkpoint files
  void deliver_notice(JobProcess& process);
  // A stop's or a notice's signal, sent where the job gets it (see task.cpp).
  Status signal_job(JobProcess& process, int sig) const;
  // What `runc run` reports as 128 + N is a signal when init, pid 1 there, says it ended by N.
  ExitStatus init_exit(ExitStatus st) const;
  void read_rank_reports();
  void set_phase(std::string phase);
  void clean_up();
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
  std::atomic<bool> gate_cancel_{false};                // the first process ended: the gate has nothing to open
  std::filesystem::file_time_type progress_mtime_{};    // task thread only
  std::filesystem::file_time_type reports_mtime_{};     // task thread only
  std::filesystem::file_time_type restored_mtime_{};    // task thread only
  std::filesystem::file_time_type checkpoint_mtime_{};  // task thread only
  std::int64_t notice_deadline_ms_ = 0;                 // guarded by mu_
  bool notice_delivered_ = false;                       // task thread only
  std::string phase_ = "starting";                      // guarded by mu_
  bool ready_ = false;                                  // guarded by mu_
  LaunchPlan plan_;                                     // written before ready_, read after
  std::optional<ContainerSpec> container_;              // likewise; set when it runs in a container
  std::unique_ptr<BridgeServer> bridge_;                // an MPI head's; task thread only
  std::thread thread_;
};

}  // namespace cohort::runner
