#include "task_table.hpp"

#include "cohort/log.hpp"
#include "options.hpp"

namespace cohort::runner {

using Clock = std::chrono::steady_clock;

TaskTable::TaskTable(TaskEnvironment env, std::chrono::milliseconds log_drain)
    : env_(std::move(env)), log_drain_(log_drain) {}

TaskTable::~TaskTable() {
  stop_all("the runner is ending");
  std::map<Key, std::shared_ptr<Entry>> all;
  {
    std::lock_guard lock(mu_);
    all.swap(entries_);
  }
  all.clear();  // each Task's destructor joins its thread, after the stop grace at most
}

void TaskTable::set_node_name(const std::string& name) {
  std::lock_guard lock(mu_);
  env_.node_name = name;
}

bool TaskTable::start(const v1::Assignment& assignment) {
  Key key{assignment.job(), assignment.attempt()};
  std::lock_guard lock(mu_);
  if (!seen_.insert(key).second) return false;
  Status valid = check_path_component(assignment.job(), "job id");
  if (valid.ok() && assignment.command().empty()) valid = invalid_argument("the assignment has no command");
  auto entry = std::make_shared<Entry>(Entry{std::make_unique<Task>(assignment, env_), LogCursor("")});
  if (valid.ok()) entry->cursor = LogCursor(entry->task->log_path());  // else there is no directory
  if (!valid.ok()) {
    logger()->error("job {} attempt {}: refused: {}", assignment.job(), assignment.attempt(), valid.message());
    entry->task->stop("refused: " + valid.message());  // ends "before it started", never runs
  }
  entry->task->start();
  entries_.emplace(std::move(key), std::move(entry));
  return valid.ok();
}

void TaskTable::stop(const std::string& job, int attempt, const std::string& cause) {
  std::lock_guard lock(mu_);
  auto it = entries_.find({job, attempt});
  if (it != entries_.end() && !it->second->task->exited()) it->second->task->stop(cause);
}

void TaskTable::notify_preemption(std::int64_t deadline_ms) {
  std::lock_guard lock(mu_);
  for (auto& [key, e] : entries_) {
    if (!e->task->exited()) e->task->notify_preemption(deadline_ms);
  }
}

void TaskTable::stop_all(const std::string& cause) {
  std::lock_guard lock(mu_);
  for (auto& [key, e] : entries_) {
    if (!e->task->exited()) e->task->stop(cause);
  }
}

void TaskTable::forget(const std::string& job, int attempt) {
  std::lock_guard lock(mu_);
  auto it = entries_.find({job, attempt});
  if (it == entries_.end() || !it->second->task->exited()) return;  // never forget a live process
  it->second->forgotten = true;
  if (it->second->logs_done) entries_.erase(it);
}

std::shared_ptr<Task> TaskTable::find(const std::string& job, int attempt) const {
  std::lock_guard lock(mu_);
  auto it = entries_.find({job, attempt});
  if (it == entries_.end()) return nullptr;
  return std::shared_ptr<Task>(it->second, it->second->task.get());  // shares the entry's lifetime
}

std::vector<v1::TaskStatus> TaskTable::statuses(bool hold_exits_for_logs) const {
  std::lock_guard lock(mu_);
  std::vector<v1::TaskStatus> out;
  const auto now = Clock::now();
  for (const auto& [key, e] : entries_) {
    if (e->forgotten) continue;
    v1::TaskStatus s = e->task->status();
    if (hold_exits_for_logs && s.state() == "exited" && !e->logs_done) {
      if (e->exited_seen == Clock::time_point{}) e->exited_seen = now;
      if (now - e->exited_seen < log_drain_) s.set_state("running");  // its last log lines are on their way
    }
    out.push_back(std::move(s));
  }
  return out;
}

bool TaskTable::all_exited() const {
  return running() == 0;
}

std::size_t TaskTable::running() const {
  std::lock_guard lock(mu_);
  std::size_t n = 0;
  for (const auto& [key, e] : entries_)
    n += e->task->exited() ? 0 : 1;
  return n;
}

bool TaskTable::wait_all_exited(std::chrono::milliseconds timeout) const {
  std::vector<std::shared_ptr<Entry>> all;
  {
    std::lock_guard lock(mu_);
    for (const auto& [key, e] : entries_)
      all.push_back(e);
  }
  const auto deadline = Clock::now() + timeout;
  for (const auto& e : all) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    if (!e->task->wait_exited(std::max(left, std::chrono::milliseconds(0)))) return false;
  }
  return true;
}

Status TaskTable::ship_logs(const LogSender& send) {
  std::vector<std::shared_ptr<Entry>> all;
  {
    std::lock_guard lock(mu_);
    for (const auto& [key, e] : entries_) {
      if (!e->logs_done) all.push_back(e);
    }
  }
  Status first;
  for (const auto& e : all) {
    const bool exited = e->task->exited();  // before reading: bytes written before the exit are all there
    Status s = e->cursor.ship([&](std::string_view data) { return send(e->task->assignment(), data); });
    std::lock_guard lock(mu_);
    const bool refused = s.code() == Code::kPermissionDenied || s.code() == Code::kNotFound;
    if ((s.ok() && exited) || (refused && e->forgotten)) {
      e->logs_done = true;  // a forgotten attempt whose log the manager refuses is given up
      if (e->forgotten) entries_.erase({e->task->assignment().job(), e->task->assignment().attempt()});
    }
    if (s.ok()) continue;
    if (first.ok()) first = s;
    // The manager is away: the other tasks would fail the same way. A refusal is this task's own.
    if (s.code() == Code::kUnavailable || s.code() == Code::kTimedOut || s.code() == Code::kCanceled) break;
  }
  return first;
}

}  // namespace cohort::runner
