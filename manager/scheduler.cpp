// tick(): failure detection, job limits, the gang scheduler and the autoscaler, in that order, so
// a node found lost in this tick is neither given a job nor counted as capacity.
#include <algorithm>

#include "cohort/log.hpp"
#include "manager.hpp"

namespace cohort::manager {

namespace {

std::string fmt_seconds(std::int64_t ms) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f s", static_cast<double>(ms) / 1000.0);
  return buf;
}

}  // namespace

void Manager::tick() {
  std::lock_guard lock(mu_);
  detect_lost_nodes();
  enforce_job_limits();
  enforce_preemptions();
  for (const auto& [name, c] : clusters_) {
    schedule_cluster(c);
    autoscale_cluster(c);
  }
}

void Manager::detect_lost_nodes() {
  const std::int64_t t = now();
  for (auto& [name, n] : nodes_) {
    const std::string& s = n.node.state();
    if (s == "provisioning") {
      if (t - n.node.created_ms() > options_.provisioning_timeout.count()) {
        event(n.node.cluster(), name, "", "provisioning_failed",
              "node " + name + " did not register within " + fmt_seconds(options_.provisioning_timeout.count()) +
                  ": removed");
        remove_node(n, "removed", "never registered");
      }
      continue;
    }
    if (!is_live_node_state(s) || t - n.node.last_heartbeat_ms() <= options_.heartbeat_timeout.count()) continue;
    const std::string why = "no heartbeat for " + fmt_seconds(t - n.node.last_heartbeat_ms()) + " (timeout " +
                            fmt_seconds(options_.heartbeat_timeout.count()) + ")";
    event(n.node.cluster(), name, n.node.job(), "node_lost", "node " + name + " lost: " + why);
    const std::string job = n.node.job();
    remove_node(n, "lost", why);
    auto j = jobs_.find(job);
    if (j != jobs_.end()) {
      v1::Attempt* a = current_attempt(j->second);
      if (a && a->number() == n.node.attempt()) {
        v1::RankFailure* f = a->mutable_first_failure();
        f->set_node(name);
        f->set_host(n.node.hostname());
        f->set_cause("node lost: " + why);
        for (int i = 0; i < a->nodes_size(); ++i) {
          if (a->nodes(i) == name) f->set_rank(i);
        }
        // Lost after a notice (its provider took it early): preempted, under that budget.
        end_attempt(j->second, n.node.preempt_deadline_ms() != 0 ? "preempted" : "node_lost",
                    "node " + name + " (" + n.node.hostname() + ") lost: " + why);
      }
    }
  }
}

void Manager::enforce_job_limits() {
  const std::int64_t t = now();
  for (auto& [id, e] : jobs_) {
    v1::Attempt* a = current_attempt(e);
    if (!a || a->started_ms() == 0) continue;
    if (e.plan.timeout_s > 0 && t - a->started_ms() > e.plan.timeout_s * 1000) {
      end_attempt(e, "timed_out", "ran longer than limits.timeout (" + std::to_string(e.plan.timeout_s) + " s)");
      continue;
    }
    if (e.plan.progress_timeout_s <= 0) continue;
    // Progress is the newest report of any node; before the first, the attempt's start counts.
    std::int64_t last = a->started_ms();
    for (const auto& [node, task] : e.tasks)
      last = std::max(last, task.last_progress_ms());
    if (t - last > e.plan.progress_timeout_s * 1000) {
      end_attempt(e, "hung",
                  "hung (no progress for " + std::to_string((t - last) / 1000) + " s at step " +
                      std::to_string(a->last_step()) + "; limits.progress_timeout " +
                      std::to_string(e.plan.progress_timeout_s) + " s)");
    }
  }
}

std::vector<Manager::JobEntry*> Manager::queued_jobs(const std::string& cluster) {
  std::vector<JobEntry*> q;
  for (auto& [id, e] : jobs_) {
    if (e.job.cluster() == cluster && e.job.state() == "queued") q.push_back(&e);
  }
  // Higher priority first, then submission order: FIFO with priority.
  std::sort(q.begin(), q.end(), [](const JobEntry* a, const JobEntry* b) {
    return a->job.priority() != b->job.priority() ? a->job.priority() > b->job.priority() : a->sequence < b->sequence;
  });
  return q;
}

void Manager::schedule_cluster(const v1::Cluster& cluster) {
  const std::string& name = cluster.spec().name();
  std::vector<NodeEntry*> idle;
  for (auto& [n, node] : nodes_) {
    if (node.node.cluster() == name && node.node.state() == "idle" && node.node.job().empty() &&
        node.node.preempt_deadline_ms() == 0) {
      idle.push_back(&node);
    }
  }
  std::sort(idle.begin(), idle.end(), [](auto* a, auto* b) { return a->node.name() < b->node.name(); });
  for (JobEntry* e : queued_jobs(name)) {
    const int need = e->plan.instance_count;
    // Strict FIFO: the head job waits for its whole gang, and nothing behind it jumps ahead (no
    // backfill yet), so a large job is never starved by a stream of small ones.
    if (static_cast<int>(idle.size()) < need) break;
    v1::Attempt* a = e->job.add_attempts();
    const std::int64_t t = now();
    a->set_number(e->job.attempts_size());
    a->set_state("provisioning");
    a->set_created_ms(t);
    const std::int64_t waited_from =
        e->job.attempts_size() > 1 ? e->job.attempts(e->job.attempts_size() - 2).ended_ms() : e->job.submitted_ms();
    a->mutable_timings()->set_queued_s(static_cast<double>(t - waited_from) / 1000.0);
    std::string list;
    for (int i = 0; i < need; ++i) {
      NodeEntry* node = idle[static_cast<std::size_t>(i)];
      a->add_nodes(node->node.name());
      node->node.set_state("busy");
      node->node.set_job(e->job.id());
      node->node.set_attempt(a->number());
      node->node.set_state_reason("running " + e->job.id());
      save_node(*node);
      list += (list.empty() ? "" : ", ") + node->node.name();
    }
    idle.erase(idle.begin(), idle.begin() + need);
    e->tasks.clear();
    e->failure_seen_ms = 0;
    e->job.set_state("provisioning");
    e->job.set_message("attempt " + std::to_string(a->number()) + " starting on " + list);
    save_job(*e);
    event(name, "", e->job.id(), "job_allocated",
          "job " + e->job.id() + " attempt " + std::to_string(a->number()) + " gets " + list);
  }
}

bool Manager::runs_current_attempt(NodeEntry& node) {
  auto j = jobs_.find(node.node.job());
  const v1::Attempt* a = j == jobs_.end() ? nullptr : current_attempt(j->second);
  return a && a->number() == node.node.attempt();
}

void Manager::autoscale_cluster(const v1::Cluster& cluster) {
  const v1::ClusterSpec& spec = cluster.spec();
  NodeProvider* provider = provider_for(spec);
  if (!provider || !provider->can_scale()) return;
  const std::int64_t t = now();
  // freeing: nodes whose attempt is over but whose processes have not reported their end yet;
  // they are idle in a moment, so the queue's demand does not create nodes for them.
  int active = 0, provisioning = 0, freeing = 0;
  std::vector<NodeEntry*> idle;
  for (auto& [n, node] : nodes_) {
    // A node under a preemption notice is already leaving: it neither serves nor counts.
    if (node.node.cluster() != spec.name() || !is_live_node_state(node.node.state()) ||
        node.node.preempt_deadline_ms() != 0) {
      continue;
    }
    ++active;
    if (node.node.state() == "provisioning") ++provisioning;
    if (node.node.state() == "idle" && node.node.job().empty()) idle.push_back(&node);
    if (!node.node.job().empty() && !runs_current_attempt(node)) ++freeing;
  }
  int demand = 0;  // nodes queued jobs wait for
  std::string waiting;
  for (JobEntry* e : queued_jobs(spec.name())) {
    demand += e->plan.instance_count;
    if (waiting.empty()) waiting = e->job.id();
  }
  // Busy and draining nodes serve running jobs; idle and provisioning ones will serve the queue.
  const int serving = active - static_cast<int>(idle.size()) - provisioning - freeing;
  const int wanted = std::clamp(serving + demand, spec.min_nodes(), spec.max_nodes());
  if (active < wanted) {
    const int add = wanted - active;
    const std::string reason = demand > 0
                                   ? "job " + waiting + " and others wait for " + std::to_string(demand) + " node(s)"
                                   : "below min_nodes " + std::to_string(spec.min_nodes());
    for (int i = 0; i < add; ++i) {
      auto number = store_->next_counter("node:" + spec.name());
      if (!number.ok()) {
        logger()->error("{}", number.status().to_string());
        return;
      }
      const std::string node_name = spec.name() + "-" + std::to_string(*number);
      NodeEntry& node = nodes_[node_name];
      node.node.set_name(node_name);
      node.node.set_cluster(spec.name());
      node.node.set_state("provisioning");
      node.node.set_vm_size(spec.vm_size());
      node.node.set_vm_priority(spec.vm_priority());
      node.node.set_created_ms(t);
      node.node.set_state_reason(reason);
      save_node(node);
      event(spec.name(), node_name, "", "scale_up", "creating node " + node_name + ": " + reason);
      if (Status s = provider->create(spec, node_name); !s.ok()) {
        event(spec.name(), node_name, "", "provider_error", "creating " + node_name + " failed: " + s.to_string());
        remove_node(node, "removed", "the provider failed: " + s.to_string());
      }
    }
    return;
  }
  // Scale down: idle past the cluster's idle time, above min_nodes, and not needed by the queue
  // (a node a queued gang is about to use is never removed).
  int removable = std::min(active - spec.min_nodes(), static_cast<int>(idle.size()) - demand);
  const std::int64_t idle_ms = static_cast<std::int64_t>(spec.idle_seconds_before_scaledown()) * 1000;
  std::sort(idle.begin(), idle.end(),
            [](auto* a, auto* b) { return a->node.idle_since_ms() < b->node.idle_since_ms(); });
  for (NodeEntry* node : idle) {
    if (removable <= 0) break;
    if (t - node->node.idle_since_ms() < idle_ms) continue;
    --removable;
    const std::string why = "idle for " + fmt_seconds(t - node->node.idle_since_ms()) +
                            " (idle_seconds_before_scaledown " + std::to_string(spec.idle_seconds_before_scaledown()) +
                            ")";
    event(spec.name(), node->node.name(), "", "scale_down", "removing node " + node->node.name() + ": " + why);
    remove_node(*node, "removed", why);
  }
}

}  // namespace cohort::manager
