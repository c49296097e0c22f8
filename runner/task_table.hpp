// Every attempt this node runs or has run and not yet been told to forget, keyed by (job,
// attempt). Starting is idempotent: an assignment the table has seen (even one since forgotten)
// is never started twice. Shared by the heartbeat thread (start, stop, forget, statuses) and the
// log thread (ship_logs).
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "log_cursor.hpp"
#include "task.hpp"

namespace cohort::runner {

class TaskTable {
 public:
  // `log_drain`: how long an exited task is still reported as running while its last log bytes
  // are being shipped, so the manager has the whole log when it learns of the exit.
  TaskTable(TaskEnvironment env, std::chrono::milliseconds log_drain);
  ~TaskTable();  // stops every task (each with its grace) and joins them

  // The node's name once the manager gave it (tasks started later get it as COHORT_NODE_NAME).
  void set_node_name(const std::string& name);

  // Starts the attempt unless it is known; an invalid one (a job id that is no directory name)
  // is recorded as exited with the reason. Returns true when it started something.
  bool start(const v1::Assignment& assignment);
  void stop(const std::string& job, int attempt, const std::string& cause);
  // The task of that attempt (kept alive by the pointer), or null when this node has none.
  std::shared_ptr<Task> find(const std::string& job, int attempt) const;
  void stop_all(const std::string& cause);
  // Gives every running task the preemption notice (see Task::notify_preemption).
  void notify_preemption(std::int64_t deadline_ms);
  // No more reporting; the entry goes once its log is shipped.
  void forget(const std::string& job, int attempt);

  // Of every task not forgotten. With `hold_exits_for_logs`, an exited task whose log is still
  // being shipped reads "running" for up to log_drain.
  std::vector<v1::TaskStatus> statuses(bool hold_exits_for_logs = true) const;
  bool all_exited() const;
  std::size_t running() const;  // tasks not yet exited
  // Waits (bounded) for every task to exit; true when they did.
  bool wait_all_exited(std::chrono::milliseconds timeout) const;

  // Ships new log bytes of every task through `send` and returns the first failure; the next
  // round resends from the acknowledged offset. A manager that is away (Unavailable, TimedOut,
  // Canceled) ends the round; a refusal skips only that task.
  using LogSender = std::function<Status(const v1::Assignment&, std::string_view data)>;
  Status ship_logs(const LogSender& send);

 private:
  using Key = std::pair<std::string, int>;
  struct Entry {
    std::unique_ptr<Task> task;
    LogCursor cursor;        // log thread only
    bool forgotten = false;  // guarded by TaskTable::mu_
    bool logs_done = false;  // guarded by TaskTable::mu_: exited and every byte acknowledged
    std::chrono::steady_clock::time_point exited_seen{};  // guarded by mu_
  };

  TaskEnvironment env_;  // guarded by mu_ (node_name changes)
  const std::chrono::milliseconds log_drain_;
  mutable std::mutex mu_;
  std::map<Key, std::shared_ptr<Entry>> entries_;  // guarded by mu_
  std::set<Key> seen_;                             // guarded by mu_; every attempt ever started
};

}  // namespace cohort::runner
