// What runners call: registration, heartbeats (their tasks' states in, assignments and stops
// out), and logs.
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>

#include "cohort/log.hpp"
#include "file_write.hpp"
#include "manager.hpp"
#include "rpc.hpp"

namespace cohort::manager {

Result<std::string> Manager::node_for_credential(const std::string& credential) {
  std::lock_guard lock(mu_);
  auto it = node_by_credential_.find(rpc::sha256_hex(credential));
  if (it == node_by_credential_.end()) return Status(Code::kPermissionDenied, "unknown node credential");
  return it->second;
}

Result<v1::RegisterResponse> Manager::register_node(const v1::RegisterRequest& request) {
  std::lock_guard lock(mu_);
  const v1::Cluster* cluster = find_cluster(request.cluster());
  if (!cluster) return Status(Code::kNotFound, "no cluster " + request.cluster() + " to join");
  COHORT_TRY(store_->begin());
  struct Commit {
    Store& s;
    ~Commit() {
      if (Status c = s.commit(); !c.ok()) logger()->error("{}", c.to_string());
    }
  } commit{*store_};
  std::string name = request.node_name();
  if (name.empty()) {
    COHORT_ASSIGN_OR_RETURN(const std::int64_t n, store_->next_counter("node:" + request.cluster()));
    name = request.cluster() + "-" + std::to_string(n);
  }
  auto it = nodes_.find(name);
  if (it != nodes_.end() && it->second.node.cluster() != request.cluster()) {
    return Status(Code::kPermissionDenied, "node " + name + " belongs to cluster " + it->second.node.cluster());
  }
  if (it == nodes_.end()) {
    if (cluster->spec().provider() != "static") {
      return Status(Code::kPermissionDenied, "cluster " + request.cluster() + " did not create a node " + name);
    }
    it = nodes_.emplace(name, NodeEntry{}).first;
    it->second.node.set_created_ms(now());
  }
  NodeEntry& n = it->second;
  node_by_credential_.erase(n.credential_hash);  // a re-registering runner gets a fresh credential
  const std::string credential = rpc::random_token();
  n.credential_hash = rpc::sha256_hex(credential);
  node_by_credential_[n.credential_hash] = name;
  const bool had_state = is_live_node_state(n.node.state()) && n.node.state() != "provisioning";
  v1::Node& node = n.node;
  node.set_name(name);
  node.set_cluster(request.cluster());
  node.set_hostname(request.hostname());
  node.set_address(request.address());
  node.set_peer_endpoint(request.peer_endpoint());
  node.set_peer_certificate(request.peer_certificate());
  node.set_vm_size(cluster->spec().vm_size());
  node.set_vm_priority(cluster->spec().vm_priority());
  node.set_cores(request.cores());
  node.set_gpus(request.gpus());
  node.set_registered_ms(now());
  node.set_last_heartbeat_ms(now());
  if (!had_state) {
    node.set_state("idle");
    node.set_idle_since_ms(now());
    node.set_state_reason("registered");
  }
  save_node(n);
  event(request.cluster(), name, "", had_state ? "node_reregistered" : "node_registered",
        "node " + name + " (" + request.hostname() + ", " + request.address() + ") " +
            (had_state ? "registered again" : "registered"));
  v1::HeartbeatResponse ignored;
  for (const auto& t : request.tasks())
    record_task(n, t, ignored);
  v1::RegisterResponse out;
  out.set_node_name(name);
  out.set_credential(credential);
  out.set_heartbeat_interval_ms(options_.heartbeat_interval.count());
  return out;
}

// A node's last report of an attempt that has just ended (the preempted node's exit ended it
// before rank 0's node said its checkpoint was durable): the attempt's own record learns how far
// it got and what it saved. Nothing else of the report counts, and no other attempt changes.
void Manager::note_late_progress(JobEntry& e, const std::string& node, const v1::TaskStatus& t) {
  for (auto& a : *e.job.mutable_attempts()) {
    if (a.number() != t.attempt() || a.ended_ms() == 0) continue;
    if (std::find(a.nodes().begin(), a.nodes().end(), node) == a.nodes().end()) return;
    bool changed = false;
    if (t.checkpoint_ms() > a.checkpoint_ms() && t.checkpoint_step() >= a.checkpoint_step()) {
      a.set_checkpoint_step(t.checkpoint_step());
      a.set_checkpoint_ms(t.checkpoint_ms());
      changed = true;
    }
    const std::int64_t reached = std::max(t.last_step(), a.checkpoint_step());
    if (reached > a.last_step()) {
      a.set_last_step(reached);
      changed = true;
    }
    if (!changed) return;
    if (a.end_reason() == "preempted" && a.has_first_failure()) a.set_message(preempted_story(a, a.first_failure()));
    save_job(e);
    return;
  }
}

void Manager::record_task(NodeEntry& n, const v1::TaskStatus& t, v1::HeartbeatResponse& response) {
  auto j = jobs_.find(t.job());
  v1::Attempt* a = j == jobs_.end() ? nullptr : current_attempt(j->second);
  bool assigned = false;
  if (a && a->number() == t.attempt()) {
    for (const auto& node : a->nodes())
      assigned = assigned || node == n.node.name();
  }
  if (!assigned) {
    if (j != jobs_.end()) note_late_progress(j->second, n.node.name(), t);
    // A stale attempt (ended, canceled, or another generation): it must not run, and once it
    // has exited there is nothing more to learn from it.
    if (t.state() == "exited") {
      auto* f = response.add_forget();
      f->set_job(t.job());
      f->set_attempt(t.attempt());
    } else {
      auto* s = response.add_stop();
      s->set_job(t.job());
      s->set_attempt(t.attempt());
      s->set_reason(a ? "attempt " + std::to_string(t.attempt()) + " is not the current attempt" : "the attempt ended");
    }
    return;
  }
  j->second.tasks[n.node.name()] = t;
  evaluate_attempt(j->second);
  // An exited task of a running attempt is not forgotten yet: its runner keeps reporting it, so
  // a manager restarted before the attempt ends learns every node's result again. Once the
  // attempt is over, the stale branch above forgets it.
  if (t.state() == "exited" && !current_attempt(j->second)) {
    auto* f = response.add_forget();
    f->set_job(t.job());
    f->set_attempt(t.attempt());
  }
}

Result<v1::HeartbeatResponse> Manager::heartbeat(const std::string& name, const v1::HeartbeatRequest& request) {
  std::lock_guard lock(mu_);
  auto it = nodes_.find(name);
  if (it == nodes_.end()) return Status(Code::kNotFound, "node " + name + " is not known: register again");
  NodeEntry& n = it->second;
  v1::HeartbeatResponse response;
  response.set_heartbeat_interval_ms(options_.heartbeat_interval.count());
  if (!is_live_node_state(n.node.state())) {
    // Lost, preempted or removed: whatever it still runs belongs to no attempt any more.
    response.set_shutdown(true);
    return response;
  }
  n.node.set_last_heartbeat_ms(now());
  *n.node.mutable_usage() = request.usage();
  if (request.preempt_deadline_ms() != 0) give_notice(n, request.preempt_deadline_ms(), "from the node's cloud");
  if (n.node.state() == "provisioning") {
    n.node.set_state("idle");
    n.node.set_idle_since_ms(now());
    save_node(n);
  }
  bool runs_something = false;
  bool reports_assignment = false;
  for (const auto& t : request.tasks()) {
    record_task(n, t, response);
    if (t.state() != "exited") runs_something = true;
    if (t.job() == n.node.job() && t.attempt() == n.node.attempt()) reports_assignment = true;
  }
  // Its assignment, if the attempt is still on: start it unless the runner already reports it.
  if (!n.node.job().empty()) {
    auto j = jobs_.find(n.node.job());
    v1::Attempt* a = j == jobs_.end() ? nullptr : current_attempt(j->second);
    if (a && a->number() == n.node.attempt()) {
      if (!reports_assignment) {
        for (int i = 0; i < a->nodes_size(); ++i) {
          if (a->nodes(i) == name) *response.add_start() = assignment_for(j->second, *a, i);
        }
      }
    } else if (!runs_something) {
      // The attempt is over and its processes are gone here: the node is free again.
      n.node.clear_job();
      n.node.set_attempt(0);
      n.node.set_idle_since_ms(now());
      if (n.node.state() == "busy") n.node.set_state("idle");
      save_node(n);
      // A node under notice is not idle for long: it goes now rather than at the next tick.
      if (n.node.preempt_deadline_ms() != 0) enforce_preemptions();
    }
  }
  response.set_drain(n.node.state() == "draining");
  response.set_preempt_deadline_ms(n.node.preempt_deadline_ms());
  return response;
}

Result<std::int64_t> Manager::wait_for_work(const std::string& node, std::int64_t known,
                                            std::chrono::milliseconds wait) {
  std::unique_lock lock(mu_);
  const auto until = std::chrono::steady_clock::now() + wait;
  for (;;) {
    auto it = nodes_.find(node);
    if (it == nodes_.end()) return Status(Code::kNotFound, "node " + node + " is not known: register again");
    if (it->second.work_version != known) return it->second.work_version;
    if (work_cv_.wait_until(lock, until) == std::cv_status::timeout) {
      it = nodes_.find(node);
      return it == nodes_.end() ? known : it->second.work_version;
    }
  }
}

Status Manager::check_node_job(const std::string& node, const std::string& job) {
  std::lock_guard lock(mu_);
  auto j = jobs_.find(job);
  if (j != jobs_.end()) {
    for (const auto& a : j->second.job.attempts()) {
      for (const auto& n : a.nodes()) {
        if (n == node) return {};
      }
    }
  }
  logger()->warn("node {} asked for job {}, which it was never assigned: refused", node, job);
  return Status(Code::kPermissionDenied, "node " + node + " has no attempt of job " + job);
}

Status Manager::append_logs(const std::string& node, const v1::AppendLogsRequest& request) {
  COHORT_TRY(check_node_job(node, request.job()));
  const auto dir = log_dir(request.job(), request.attempt());
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  const auto path = dir / (node + ".log");
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd < 0) return errno_status("open", errno, path.string());
  const std::string& data = request.data();
  if (Status s = write_all(fd, data, path.string()); !s.ok()) {
    ::close(fd);
    return s;
  }
  ::close(fd);
  return {};
}

}  // namespace cohort::manager
