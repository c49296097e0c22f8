// The cluster manager's model: clusters, nodes, jobs and attempts, kept in memory behind one
// mutex and written through to the Store on every state change (heartbeats stay in memory).
//
// The RPC services are thin wrappers over these methods; tick() runs failure detection, the
// gang scheduler and the autoscaler. Time comes from an injected clock, so tests step tick()
// deterministically instead of sleeping.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "cohort/status.hpp"
#include "cohort/v1/cohort.pb.h"
#include "job_plan.hpp"
#include "provider.hpp"
#include "store.hpp"

namespace cohort::manager {

// provisioning, idle, busy or draining: a node that counts toward its cluster's size and must
// heartbeat (lost, preempted and removed ones do neither).
bool is_live_node_state(const std::string& state);

// How a preempted attempt ended: what stopped, and whether (and how soon after the notice) its
// checkpoint was durable.
std::string preempted_story(const v1::Attempt& attempt, const v1::RankFailure& first_failure);

struct ManagerOptions {
  std::filesystem::path state_dir;
  std::function<std::int64_t()> now_ms;  // default: the system clock
  std::chrono::milliseconds heartbeat_interval{1000};
  std::chrono::milliseconds heartbeat_timeout{5000};
  std::chrono::milliseconds provisioning_timeout{120000};
  // Makes a provider by name; tests pass their own.
  std::function<Result<std::unique_ptr<NodeProvider>>(const std::string&)> make_provider;
};

class Manager {
 public:
  static Result<std::unique_ptr<Manager>> open(ManagerOptions options, std::unique_ptr<Store> store);
  ~Manager();

  // Clusters.
  Result<v1::Cluster> create_cluster(const v1::ClusterSpec& spec);
  Result<v1::Cluster> get_cluster(const std::string& name, int event_limit);
  std::vector<v1::Cluster> list_clusters();
  Result<v1::Cluster> update_cluster(const v1::UpdateClusterRequest& request);
  Status delete_cluster(const std::string& name, bool force);

  // Jobs.
  Result<v1::Job> submit_job(const v1::SubmitJobRequest& request);
  Result<v1::Job> get_job(const std::string& id);
  std::vector<v1::Job> list_jobs(const v1::ListJobsRequest& request);
  Result<v1::Job> cancel_job(const std::string& id);
  std::filesystem::path code_path(const std::string& job) const;
  std::filesystem::path log_dir(const std::string& job, int attempt) const;
  bool job_finished(const std::string& id);

  // Nodes.
  std::vector<v1::Node> list_nodes(const std::string& cluster);
  Result<v1::Node> drain_node(const std::string& name);
  // Takes a low-priority node back as its cloud would: its jobs get the notice now, and the node
  // goes at the deadline, or as soon as nothing runs on it. FailedPrecondition for a dedicated
  // node or one that is not live.
  Result<v1::Node> preempt_node(const std::string& name, std::chrono::milliseconds notice);

  // Runners. `credential` checks: the node a bearer credential belongs to, or PermissionDenied.
  Result<std::string> node_for_credential(const std::string& credential);
  Result<v1::RegisterResponse> register_node(const v1::RegisterRequest& request);
  Result<v1::HeartbeatResponse> heartbeat(const std::string& node, const v1::HeartbeatRequest& request);
  // PermissionDenied unless `node` runs (or ran) an attempt of `job`.
  Status check_node_job(const std::string& node, const std::string& job);
  Status append_logs(const std::string& node, const v1::AppendLogsRequest& request);
  // The doorbell: returns the node's work version as soon as it differs from `known` (it got an
  // assignment or a stop), or after `wait`. Holds one server thread per waiting node.
  Result<std::int64_t> wait_for_work(const std::string& node, std::int64_t known, std::chrono::milliseconds wait);

  // Failure detection, scheduling and autoscaling, at now_ms().
  void tick();

  // An event seen outside the model (a provider's script failed), recorded and logged.
  void report(const std::string& cluster, const std::string& node, const std::string& message);

 private:
  struct JobEntry {
    v1::Job job;
    JobPlan plan;
    std::int64_t sequence = 0;
    // The attempt's processes on each node, as the runners last reported them.
    std::map<std::string, v1::TaskStatus> tasks;
    int infra_failures = 0;
    int user_failures = 0;
    int preemptions = 0;
    std::int64_t failure_seen_ms = 0;  // when the current attempt's first failure came in
  };
  struct NodeEntry {
    v1::Node node;
    std::string credential_hash;
    std::int64_t work_version = 1;  // bumped on every change its runner should hear of at once
  };

  explicit Manager(ManagerOptions options, std::unique_ptr<Store> store);
  Status load();
  std::int64_t now() const { return options_.now_ms(); }

  // All below: REQUIRES mu_ held.
  void event(const std::string& cluster, const std::string& node, const std::string& job, const std::string& kind,
             const std::string& message);
  void save_job(JobEntry& entry);
  void save_node(NodeEntry& entry);  // also rings the node's doorbell
  void ring(const std::string& node);
  v1::Cluster* find_cluster(const std::string& name);
  NodeProvider* provider_for(const v1::ClusterSpec& spec);
  v1::Attempt* current_attempt(JobEntry& entry);
  void end_attempt(JobEntry& entry, const std::string& end_reason, const std::string& message);
  void evaluate_attempt(JobEntry& entry);
  bool alive_since_failure(JobEntry& entry, const v1::Attempt& attempt);
  void record_task(NodeEntry& node, const v1::TaskStatus& task, v1::HeartbeatResponse& response);
  void note_late_progress(JobEntry& entry, const std::string& node, const v1::TaskStatus& task);
  v1::Assignment assignment_for(const JobEntry& entry, const v1::Attempt& attempt, int node_rank);
  void detect_lost_nodes();
  void enforce_job_limits();
  // A notice for the node (from an administrator, its provider or its own runner), once.
  void give_notice(NodeEntry& node, std::int64_t deadline_ms, const std::string& from);
  // Nodes whose deadline passed, or whose jobs are over, go; an attempt still on one is preempted.
  void enforce_preemptions();
  // Some node of the attempt has a preemption notice: however the attempt ends, that is why.
  bool under_notice(const v1::Attempt& attempt) const;
  void schedule_cluster(const v1::Cluster& cluster);
  void autoscale_cluster(const v1::Cluster& cluster);
  bool runs_current_attempt(NodeEntry& node);
  void remove_node(NodeEntry& node, const std::string& state, const std::string& reason);
  std::vector<JobEntry*> queued_jobs(const std::string& cluster);
  v1::Cluster with_counts(const v1::Cluster& cluster);

  ManagerOptions options_;
  std::unique_ptr<Store> store_;
  std::mutex mu_;
  std::condition_variable work_cv_;  // with mu_: some node's work_version changed
  std::map<std::string, v1::Cluster> clusters_;
  std::map<std::string, std::unique_ptr<NodeProvider>> providers_;  // by provider name
  std::map<std::string, NodeEntry> nodes_;
  std::map<std::string, std::string> node_by_credential_;  // credential hash -> node
  std::map<std::string, JobEntry> jobs_;
  std::string join_hash_;
};

}  // namespace cohort::manager
