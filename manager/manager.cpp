// The manager's model: loading, clusters, nodes, events. Jobs are in jobs.cpp, the runners' calls
// in runners.cpp, and tick() in scheduler.cpp.
#include "manager.hpp"

#include <chrono>
#include <fstream>
#include <regex>
#include <sstream>

#include "cohort/log.hpp"
#include "rpc.hpp"
#include "vm_sizes.hpp"

namespace cohort::manager {

namespace {

std::int64_t system_now_ms() {
  using namespace std::chrono;
  return duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
}

Status validate_spec(v1::ClusterSpec& spec) {
  static const std::regex kName("[a-z0-9][a-z0-9-]{0,31}");
  if (!std::regex_match(spec.name(), kName)) {
    return invalid_argument("cluster name \"" + spec.name() +
                            "\": expected 1-32 characters of a-z, 0-9 and '-', starting with a letter or digit");
  }
  COHORT_TRY(find_vm_size(spec.vm_size()).status());
  if (spec.min_nodes() < 0)
    return invalid_argument("min_nodes: expected >= 0, got " + std::to_string(spec.min_nodes()));
  if (spec.max_nodes() < 1)
    return invalid_argument("max_nodes: expected >= 1, got " + std::to_string(spec.max_nodes()));
  if (spec.min_nodes() > spec.max_nodes()) {
    return invalid_argument("min_nodes (" + std::to_string(spec.min_nodes()) + ") is larger than max_nodes (" +
                            std::to_string(spec.max_nodes()) + ")");
  }
  if (spec.idle_seconds_before_scaledown() < 0) {
    return invalid_argument("idle_seconds_before_scaledown: expected >= 0");
  }
  if (spec.idle_seconds_before_scaledown() == 0) spec.set_idle_seconds_before_scaledown(120);
  if (spec.vm_priority().empty()) spec.set_vm_priority("dedicated");
  if (spec.vm_priority() != "dedicated" && spec.vm_priority() != "lowpriority") {
    return invalid_argument("vm_priority: expected dedicated or lowpriority, got \"" + spec.vm_priority() + "\"");
  }
  if (spec.provider().empty()) spec.set_provider("local");
  if (spec.provider() == "exec" && (spec.exec().create_command().empty() || spec.exec().delete_command().empty())) {
    return invalid_argument("provider exec needs both a create and a delete command (--exec-create, --exec-delete)");
  }
  auto& id = *spec.mutable_identity();
  if (id.type().empty()) id.set_type(id.user_assigned_ids().empty() ? "none" : "user");
  if (id.type() != "none" && id.type() != "system" && id.type() != "user") {
    return invalid_argument("identity: expected none, system or user, got \"" + id.type() + "\"");
  }
  if (id.type() == "user" && id.user_assigned_ids().empty()) {
    return invalid_argument("identity: a user-assigned identity needs at least one id");
  }
  return {};
}

}  // namespace

bool is_live_node_state(const std::string& s) {
  return s == "provisioning" || s == "idle" || s == "busy" || s == "draining";
}

Manager::Manager(ManagerOptions options, std::unique_ptr<Store> store)
    : options_(std::move(options)), store_(std::move(store)) {
  if (!options_.now_ms) options_.now_ms = system_now_ms;
}

Manager::~Manager() = default;

Result<std::unique_ptr<Manager>> Manager::open(ManagerOptions options, std::unique_ptr<Store> store) {
  std::unique_ptr<Manager> m(new Manager(std::move(options), std::move(store)));
  COHORT_TRY(m->load());
  return m;
}

Status Manager::load() {
  const auto join = options_.state_dir / "join-token";
  std::ifstream in(join);
  std::string token;
  if (!(in >> token)) {
    return Status(Code::kNotFound, "cannot read the join token " + join.string() +
                                       ": run `cohort-manager init --state-dir " + options_.state_dir.string() + "`");
  }
  join_hash_ = rpc::sha256_hex(token);
  COHORT_ASSIGN_OR_RETURN(auto clusters, store_->load_clusters());
  for (auto& c : clusters)
    clusters_[c.spec().name()] = std::move(c);
  COHORT_ASSIGN_OR_RETURN(auto nodes, store_->load_nodes());
  const std::int64_t t = now();
  for (auto& n : nodes) {
    // A restarted manager has heard no one yet: every live node gets a full heartbeat_timeout.
    if (is_live_node_state(n.node.state())) n.node.set_last_heartbeat_ms(t);
    if (!n.credential_hash.empty()) node_by_credential_[n.credential_hash] = n.node.name();
    std::string name = n.node.name();
    nodes_[name] = NodeEntry{std::move(n.node), std::move(n.credential_hash)};
  }
  COHORT_ASSIGN_OR_RETURN(auto jobs, store_->load_jobs());
  for (auto& j : jobs) {
    COHORT_ASSIGN_OR_RETURN(JobPlan plan, plan_from_json(j.job.spec_json()));
    JobEntry e{std::move(j.job), std::move(plan), j.sequence, {}, 0, 0, 0, 0};
    for (const auto& a : e.job.attempts()) {
      if (a.end_reason() == "user_error") ++e.user_failures;
      if (a.end_reason() == "node_lost" || a.end_reason() == "hung") ++e.infra_failures;
      if (a.end_reason() == "preempted") ++e.preemptions;
    }
    std::string id = e.job.id();
    jobs_[id] = std::move(e);
  }
  logger()->info("state loaded from {}: {} clusters, {} nodes, {} jobs", options_.state_dir.string(), clusters_.size(),
                 nodes_.size(), jobs_.size());
  return {};
}

void Manager::event(const std::string& cluster, const std::string& node, const std::string& job,
                    const std::string& kind, const std::string& message) {
  v1::Event e;
  e.set_time_ms(now());
  e.set_cluster(cluster);
  e.set_node(node);
  e.set_job(job);
  e.set_kind(kind);
  e.set_message(message);
  logger()->info("[{}] {}: {}", cluster, kind, message);
  if (Status s = store_->add_event(e); !s.ok()) logger()->error("{}", s.to_string());
}

void Manager::report(const std::string& cluster, const std::string& node, const std::string& message) {
  std::lock_guard lock(mu_);
  event(cluster, node, "", "provider_error", message);
}

void Manager::save_job(JobEntry& entry) {
  if (Status s = store_->put_job({entry.job, entry.sequence}); !s.ok()) logger()->error("{}", s.to_string());
}

void Manager::save_node(NodeEntry& entry) {
  if (Status s = store_->put_node({entry.node, entry.credential_hash}); !s.ok()) logger()->error("{}", s.to_string());
  ++entry.work_version;
  work_cv_.notify_all();
}

void Manager::ring(const std::string& node) {
  auto it = nodes_.find(node);
  if (it == nodes_.end()) return;
  ++it->second.work_version;
  work_cv_.notify_all();
}

v1::Cluster* Manager::find_cluster(const std::string& name) {
  auto it = clusters_.find(name);
  return it == clusters_.end() ? nullptr : &it->second;
}

NodeProvider* Manager::provider_for(const v1::ClusterSpec& spec) {
  auto it = providers_.find(spec.provider());
  if (it != providers_.end()) return it->second.get();
  if (!options_.make_provider) return nullptr;
  auto made = options_.make_provider(spec.provider());
  if (!made.ok()) {
    logger()->error("provider {}: {}", spec.provider(), made.status().to_string());
    return nullptr;
  }
  return (providers_[spec.provider()] = std::move(made).value()).get();
}

v1::Cluster Manager::with_counts(const v1::Cluster& cluster) {
  v1::Cluster c = cluster;
  for (const auto& [name, n] : nodes_) {
    if (n.node.cluster() == cluster.spec().name() && n.node.state() != "removed") {
      (*c.mutable_node_counts())[n.node.state()] += 1;
    }
  }
  return c;
}

Result<v1::Cluster> Manager::create_cluster(const v1::ClusterSpec& request) {
  v1::ClusterSpec spec = request;
  COHORT_TRY(validate_spec(spec));
  std::lock_guard lock(mu_);
  if (find_cluster(spec.name())) {
    return Status(Code::kAlreadyExists, "cluster " + spec.name() + " already exists (`cohort cluster show " +
                                            spec.name() + "`; `cohort cluster update` changes it)");
  }
  if (!provider_for(spec)) return invalid_argument("provider \"" + spec.provider() + "\" is not available here");
  v1::Cluster c;
  *c.mutable_spec() = spec;
  COHORT_ASSIGN_OR_RETURN(*c.mutable_size(), find_vm_size(spec.vm_size()));
  c.set_created_ms(now());
  COHORT_TRY(store_->put_cluster(c));
  clusters_[spec.name()] = c;
  event(spec.name(), "", "", "cluster_created",
        "cluster " + spec.name() + " created: " + spec.vm_size() + ", " + std::to_string(spec.min_nodes()) + ".." +
            std::to_string(spec.max_nodes()) + " nodes, " + spec.vm_priority() + ", provider " + spec.provider());
  return with_counts(c);
}

Result<v1::Cluster> Manager::get_cluster(const std::string& name, int event_limit) {
  std::lock_guard lock(mu_);
  v1::Cluster* c = find_cluster(name);
  if (!c) return Status(Code::kNotFound, "no cluster " + name + " (`cohort cluster list` shows them)");
  v1::Cluster out = with_counts(*c);
  COHORT_ASSIGN_OR_RETURN(auto events, store_->recent_events(name, event_limit > 0 ? event_limit : 50));
  for (auto& e : events)
    *out.add_events() = std::move(e);
  return out;
}

std::vector<v1::Cluster> Manager::list_clusters() {
  std::lock_guard lock(mu_);
  std::vector<v1::Cluster> out;
  for (const auto& [name, c] : clusters_)
    out.push_back(with_counts(c));
  return out;
}

Result<v1::Cluster> Manager::update_cluster(const v1::UpdateClusterRequest& request) {
  std::lock_guard lock(mu_);
  v1::Cluster* c = find_cluster(request.name());
  if (!c) return Status(Code::kNotFound, "no cluster " + request.name() + " (`cohort cluster list` shows them)");
  v1::ClusterSpec spec = c->spec();
  if (request.has_min_nodes()) spec.set_min_nodes(request.min_nodes());
  if (request.has_max_nodes()) spec.set_max_nodes(request.max_nodes());
  if (request.has_idle_seconds_before_scaledown()) {
    spec.set_idle_seconds_before_scaledown(request.idle_seconds_before_scaledown());
  }
  for (const auto& [k, v] : request.tags())
    (*spec.mutable_tags())[k] = v;
  COHORT_TRY(validate_spec(spec));
  v1::Cluster updated = *c;
  *updated.mutable_spec() = spec;
  COHORT_TRY(store_->put_cluster(updated));
  *c = updated;
  event(spec.name(), "", "", "cluster_updated",
        "min_nodes " + std::to_string(spec.min_nodes()) + ", max_nodes " + std::to_string(spec.max_nodes()) +
            ", idle " + std::to_string(spec.idle_seconds_before_scaledown()) + " s");
  return with_counts(*c);
}

Status Manager::delete_cluster(const std::string& name, bool force) {
  std::lock_guard lock(mu_);
  v1::Cluster* c = find_cluster(name);
  if (!c) return Status(Code::kNotFound, "no cluster " + name);
  std::vector<JobEntry*> live;
  for (auto& [id, j] : jobs_) {
    if (j.job.cluster() == name && j.job.ended_ms() == 0) live.push_back(&j);
  }
  if (!live.empty() && !force) {
    return failed_precondition("cluster " + name + " has " + std::to_string(live.size()) + " unfinished job(s), e.g. " +
                               live.front()->job.id() + ": cancel them or delete with --force");
  }
  for (JobEntry* j : live) {
    if (current_attempt(*j)) end_attempt(*j, "canceled", "canceled: cluster " + name + " deleted");
    j->job.set_state("canceled");
    j->job.set_ended_ms(now());
    j->job.set_message("canceled: cluster " + name + " deleted");
    save_job(*j);
  }
  for (auto& [n, node] : nodes_) {
    if (node.node.cluster() == name && is_live_node_state(node.node.state())) {
      remove_node(node, "removed", "cluster deleted");
    }
  }
  COHORT_TRY(store_->delete_cluster(name));
  event(name, "", "", "cluster_deleted", "cluster " + name + " deleted" + (live.empty() ? "" : " (forced)"));
  clusters_.erase(name);
  return {};
}

std::vector<v1::Node> Manager::list_nodes(const std::string& cluster) {
  std::lock_guard lock(mu_);
  std::vector<v1::Node> out;
  for (const auto& [name, n] : nodes_) {
    if (cluster.empty() || n.node.cluster() == cluster) out.push_back(n.node);
  }
  return out;
}

Result<v1::Node> Manager::drain_node(const std::string& name) {
  std::lock_guard lock(mu_);
  auto it = nodes_.find(name);
  if (it == nodes_.end()) return Status(Code::kNotFound, "no node " + name + " (`cohort node list` shows them)");
  NodeEntry& n = it->second;
  if (!is_live_node_state(n.node.state())) {
    return failed_precondition("node " + name + " is " + n.node.state() + ": only a live node can be drained");
  }
  if (n.node.state() != "draining") {
    n.node.set_state_reason("drained by an administrator; was " + n.node.state());
    n.node.set_state("draining");
    save_node(n);
    event(n.node.cluster(), name, n.node.job(), "node_draining", "node " + name + " drains: it takes no new jobs");
  }
  return n.node;
}

void Manager::remove_node(NodeEntry& n, const std::string& state, const std::string& reason) {
  const v1::Cluster* c = find_cluster(n.node.cluster());
  n.node.set_state(state);
  n.node.set_state_reason(reason);
  save_node(n);
  if (!c) return;
  // A lost node is gone for the manager (its attempt is already requeued), and a deadline is a
  // deadline: neither leaves anything running that could still write.
  const std::int64_t deadline = n.node.preempt_deadline_ms();
  const Removal how = state == "lost" || (state == "preempted" && deadline != 0 && now() >= deadline)
                          ? Removal::kAtOnce
                          : Removal::kGraceful;
  if (NodeProvider* p = provider_for(c->spec())) {
    if (Status s = p->remove(c->spec(), n.node.name(), how); !s.ok()) {
      event(c->spec().name(), n.node.name(), "", "provider_error", s.to_string());
    }
  }
}

}  // namespace cohort::manager
