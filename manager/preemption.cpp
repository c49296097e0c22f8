// Preemption: a low-priority node taken back with a notice. The node's jobs get the notice at
// once (their runner writes the notice file and sends the signal); the attempt ends as
// `preempted` however it ends, is requeued under the preemption budget, and the node goes at its
// deadline, or as soon as nothing of the attempt runs on it (as acknowledging Azure's Scheduled
// Event early does), so its replacement need not wait for the deadline.
#include <algorithm>

#include "manager.hpp"

namespace cohort::manager {

namespace {

constexpr std::int64_t kMaxNoticeMs = 3'600'000;

std::string seconds_text(std::int64_t ms) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f s", static_cast<double>(ms) / 1000.0);
  return buf;
}

}  // namespace

Result<v1::Node> Manager::preempt_node(const std::string& name, std::chrono::milliseconds notice) {
  std::lock_guard lock(mu_);
  auto it = nodes_.find(name);
  if (it == nodes_.end()) return Status(Code::kNotFound, "no node " + name + " (`cohort node list` shows them)");
  NodeEntry& n = it->second;
  if (!is_live_node_state(n.node.state())) {
    return failed_precondition("node " + name + " is " + n.node.state() + ": only a live node can be preempted");
  }
  if (n.node.vm_priority() != "lowpriority") {
    return failed_precondition("node " + name + " is a " + n.node.vm_priority() +
                               " node: only lowpriority nodes can be taken back (`cohort cluster create "
                               "--vm-priority lowpriority`)");
  }
  if (notice.count() < 0 || notice.count() > kMaxNoticeMs) {
    return invalid_argument("a notice of " + std::to_string(notice.count() / 1000) + " s: it must be 0 to 3600 s");
  }
  give_notice(n, now() + notice.count(), "by an administrator");
  enforce_preemptions();  // an idle node goes at once
  return n.node;
}

void Manager::give_notice(NodeEntry& n, std::int64_t deadline_ms, const std::string& from) {
  if (n.node.preempt_deadline_ms() != 0) return;  // the first notice stands
  const std::int64_t t = now();
  n.node.set_preempt_deadline_ms(deadline_ms);
  n.node.set_state_reason("preemption notice " + from + ": goes in " + seconds_text(deadline_ms - t));
  save_node(n);  // rings its doorbell: the runner hears of it at once
  event(n.node.cluster(), n.node.name(), n.node.job(), "node_preempt_notice",
        "node " + n.node.name() + " will be preempted in " + seconds_text(deadline_ms - t) + " (notice " + from + ")");
  auto j = jobs_.find(n.node.job());
  if (j == jobs_.end()) return;
  v1::Attempt* a = current_attempt(j->second);
  if (a && a->number() == n.node.attempt() && a->notice_ms() == 0) {
    a->set_notice_ms(t);
    save_job(j->second);
  }
}

bool Manager::under_notice(const v1::Attempt& a) const {
  return std::any_of(a.nodes().begin(), a.nodes().end(), [&](const std::string& name) {
    auto it = nodes_.find(name);
    return it != nodes_.end() && it->second.node.preempt_deadline_ms() != 0;
  });
}

void Manager::enforce_preemptions() {
  const std::int64_t t = now();
  for (auto& [name, n] : nodes_) {
    const std::int64_t deadline = n.node.preempt_deadline_ms();
    if (deadline == 0 || !is_live_node_state(n.node.state())) continue;
    auto j = jobs_.find(n.node.job());
    v1::Attempt* a = j == jobs_.end() ? nullptr : current_attempt(j->second);
    const bool attempt_on_it = a && a->number() == n.node.attempt();
    if (t < deadline && !n.node.job().empty()) continue;  // its attempt's processes may still be saving
    const std::string why = t >= deadline ? "its notice ran out" : "its work was done before the deadline";
    if (attempt_on_it) {
      end_attempt(j->second, "preempted",
                  "node " + name + " (" + n.node.hostname() + ") was preempted before the attempt ended");
    }
    event(n.node.cluster(), name, n.node.job(), "node_preempted", "node " + name + " preempted: " + why);
    remove_node(n, "preempted", "preempted: " + why);
  }
}

}  // namespace cohort::manager
