// The node agent: registers with the manager, heartbeats (usage and task states out; assignments,
// stops, drain and shutdown in), runs the assigned attempts, and ships their logs.
//
// Threads: the caller's runs registration and heartbeats and nothing slow; each task has its own
// (code download, process start, stop grace); one ships logs; one samples usage; one forks the
// jobs' keepers (Spawner). A manager that is away never ends a job: the runner keeps its tasks,
// keeps trying, and registers again (reporting its tasks) when the manager has forgotten it.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "cohort/status.hpp"
#include "container.hpp"
#include "manager_client.hpp"
#include "options.hpp"
#include "peer_service.hpp"
#include "spawner.hpp"
#include "task_table.hpp"
#include "usage.hpp"

namespace cohort::runner {

// Every interval and timeout the runner uses, from common/config.hpp (COHORT_TIME_SCALE and
// COHORT_<KNOB>_MS apply).
struct RunnerTimeouts {
  std::chrono::milliseconds heartbeat_interval;  // until the manager says otherwise
  std::chrono::milliseconds call_deadline;       // kHeartbeatDeadline: Register, Heartbeat, AppendLogs
  std::chrono::milliseconds register_retry;
  std::chrono::milliseconds stop_grace;
  std::chrono::milliseconds log_flush;
  std::chrono::milliseconds peer_ready;
  static RunnerTimeouts from_config();
};

class Runner {
 public:
  // REQUIRES: options passed complete().
  Runner(RunnerOptions options, RunnerTimeouts timeouts);
  ~Runner();

  // Runs until the manager says shutdown or request_shutdown() is called: then stops every task
  // (SIGTERM, SIGKILL after the grace), ships the last logs, sends a last heartbeat and returns OK.
  // A manager that refuses the runner (join token, unknown node or cluster) ends it with that
  // error, after stopping its tasks.
  Status run();
  // Thread-safe; any thread (the signal thread) may call it.
  void request_shutdown(const std::string& why);

 private:
  Status register_node(bool again);
  void heartbeat(bool last);
  void apply(const v1::HeartbeatResponse& response);
  void log_loop();
  void usage_loop();
  void doorbell_loop();
  void scheduled_events_loop();  // the cloud's metadata endpoint, when one is configured
  void wake();                   // heartbeat now: a task changed, or the manager has news
  void set_up_containers();
  bool wait_or_shutdown(std::chrono::steady_clock::time_point until);  // true when shutdown asked
  void note_failure(const char* what, const Status& s, int& failures, std::string& last);
  void note_success(const char* what, int& failures, std::string& last);
  void finish_shutdown();

  const RunnerOptions options_;
  const RunnerTimeouts timeouts_;
  std::unique_ptr<ManagerClient> client_;  // null until run() connects
  Spawner spawner_;
  std::unique_ptr<TaskTable> table_;
  std::unique_ptr<UsageSampler> sampler_;  // made in run(); the usage thread's after that

  std::mutex mu_;
  std::condition_variable cv_;
  bool shutdown_ = false;                 // guarded by mu_
  std::string shutdown_why_;              // guarded by mu_
  bool stop_threads_ = false;             // guarded by mu_
  bool logs_wanted_ = false;              // guarded by mu_: a task exited, ship now
  bool wake_ = false;                     // guarded by mu_: heartbeat now
  v1::Usage usage_;                       // guarded by mu_
  std::chrono::milliseconds interval_;    // heartbeat thread only
  bool draining_ = false;                 // heartbeat thread only
  std::int64_t preempt_deadline_ms_ = 0;  // heartbeat thread only; 0: no preemption notice
  bool stopping_ = false;                 // heartbeat thread only
  bool reregister_ = false;               // heartbeat thread only
  std::int64_t sequence_ = 0;             // heartbeat thread only
  int heartbeat_failures_ = 0;            // heartbeat thread only
  std::string heartbeat_last_error_;      // heartbeat thread only
  int log_failures_ = 0;                  // log thread only
  std::string log_last_error_;            // log thread only
  std::thread log_thread_;
  std::thread usage_thread_;
  std::thread doorbell_thread_;
  std::thread cloud_thread_;
  // A notice from the cloud's metadata endpoint (Unix ms; 0: none): written by the cloud thread,
  // reported by every heartbeat.
  std::atomic<std::int64_t> cloud_deadline_ms_{0};
  std::unique_ptr<Runc> runc_;  // null when this node runs no containers
  std::string no_containers_;   // why not
  std::unique_ptr<PeerServer> peer_server_;
  std::string peer_certificate_;  // PEM, reported at every registration; set before the first
};

}  // namespace cohort::runner
