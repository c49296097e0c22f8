// Jobs and their attempts: submission, the attempt's state from its runners' reports, the end of
// an attempt and what follows it (success, a requeue within its retry budget, or failure).
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <optional>

#include "cohort/log.hpp"
#include "file_write.hpp"
#include "manager.hpp"
#include "rpc.hpp"

namespace cohort::manager {

namespace {

bool attempt_ended(const v1::Attempt& a) {
  return a.ended_ms() != 0;
}

double seconds(std::int64_t from_ms, std::int64_t to_ms) {
  return from_ms > 0 && to_ms >= from_ms ? static_cast<double>(to_ms - from_ms) / 1000.0 : 0.0;
}

// The snapshot is on disk and durable before the job id is given out.
Status write_durably(const std::filesystem::path& path, const std::string& bytes) {
  std::error_code ec;
  std::filesystem::create_directories(path.parent_path(), ec);
  if (ec) return Status(Code::kInternal, "cannot create " + path.parent_path().string() + ": " + ec.message());
  return write_file_replacing(path, bytes, 0600, Durability::kMachine);
}

std::string describe_failure(const v1::RankFailure& f) {
  std::string s = (f.rank() >= 0 ? "rank " + std::to_string(f.rank()) + " on " : "") + "node " + f.node();
  if (!f.host().empty() && f.host() != f.node()) s += " (" + f.host() + ")";
  return s + ": " + f.cause();
}

}  // namespace

std::string preempted_story(const v1::Attempt& a, const v1::RankFailure& f) {
  std::string s = "preemption notice; " + describe_failure(f);
  if (a.checkpoint_ms() > 0 && a.notice_ms() > 0 && a.checkpoint_ms() >= a.notice_ms()) {
    s += "; checkpoint of step " + std::to_string(a.checkpoint_step()) + " durable " +
         std::to_string(a.checkpoint_ms() - a.notice_ms()) + " ms after the notice";
  } else if (a.checkpoint_ms() > 0) {
    s += "; no checkpoint after the notice (newest: step " + std::to_string(a.checkpoint_step()) + ")";
  } else {
    s += "; no checkpoint this attempt";
  }
  return s;
}

std::filesystem::path Manager::code_path(const std::string& job) const {
  return options_.state_dir / "code" / (job + ".tar.gz");
}

std::filesystem::path Manager::log_dir(const std::string& job, int attempt) const {
  return options_.state_dir / "logs" / job / std::to_string(attempt);
}

Result<v1::Job> Manager::submit_job(const v1::SubmitJobRequest& request) {
  std::string spec_json;
  COHORT_ASSIGN_OR_RETURN(JobPlan plan, plan_from_yaml(request.spec_yaml(), spec_json));
  const std::string cluster_name = request.cluster().empty() ? plan.cluster : request.cluster();
  if (cluster_name.empty()) return invalid_argument("job spec: compute: no cluster named; set it or pass --cluster");
  if (plan.has_code && request.code_tar_gz().empty()) {
    return invalid_argument(
        "job spec: code: the spec names a code directory but no snapshot came with it "
        "(submit with `cohort job submit`, which snapshots it)");
  }
  std::lock_guard lock(mu_);
  const v1::Cluster* cluster = find_cluster(cluster_name);
  if (!cluster) {
    return Status(Code::kNotFound, "job spec: compute: no cluster " + cluster_name +
                                       " (`cohort cluster list` shows them; `cohort cluster create` makes one)");
  }
  if (plan.instance_count > cluster->spec().max_nodes()) {
    return invalid_argument("job spec: resources.instance_count: the job needs " + std::to_string(plan.instance_count) +
                            " nodes but cluster " + cluster_name + " has max_nodes " +
                            std::to_string(cluster->spec().max_nodes()) +
                            ", so it could never start (`cohort cluster " + "update " + cluster_name + " --max-nodes " +
                            std::to_string(plan.instance_count) + "`)");
  }
  if (plan.gpus_per_instance > cluster->size().gpus()) {
    return invalid_argument("job spec: resources.gpus_per_instance: the job needs " +
                            std::to_string(plan.gpus_per_instance) + " GPU(s) per node but cluster " + cluster_name +
                            "'s size " + cluster->size().name() + " has " + std::to_string(cluster->size().gpus()) +
                            ", so it could never start");
  }
  COHORT_ASSIGN_OR_RETURN(const std::int64_t number, store_->next_counter("job"));
  JobEntry entry;
  entry.plan = plan;
  entry.sequence = number;
  v1::Job& job = entry.job;
  job.set_id((plan.name.empty() ? std::string("job") : plan.name) + "-" + std::to_string(number));
  job.set_name(plan.name);
  job.set_cluster(cluster_name);
  job.set_state("queued");
  job.set_priority(plan.priority);
  job.set_instance_count(plan.instance_count);
  job.set_spec_yaml(request.spec_yaml());
  job.set_spec_json(spec_json);
  job.set_submitted_ms(now());
  job.set_message("waiting for " + std::to_string(plan.instance_count) + " node(s) of " + cluster_name);
  if (!request.code_tar_gz().empty()) {
    COHORT_TRY(write_durably(code_path(job.id()), request.code_tar_gz()).with_context("storing the code snapshot"));
    job.set_code_digest(rpc::sha256_hex(request.code_tar_gz()));
  }
  COHORT_TRY(store_->put_job({job, entry.sequence}));
  event(cluster_name, "", job.id(), "job_submitted",
        "job " + job.id() + " queued: " + std::to_string(plan.instance_count) + " node(s), distribution " +
            plan.distribution);
  v1::Job out = job;
  jobs_[job.id()] = std::move(entry);
  return out;
}

Result<v1::Job> Manager::get_job(const std::string& id) {
  std::lock_guard lock(mu_);
  auto it = jobs_.find(id);
  if (it == jobs_.end()) return Status(Code::kNotFound, "no job " + id + " (`cohort job list` shows them)");
  return it->second.job;
}

bool Manager::job_finished(const std::string& id) {
  std::lock_guard lock(mu_);
  auto it = jobs_.find(id);
  return it == jobs_.end() || it->second.job.ended_ms() != 0;
}

std::vector<v1::Job> Manager::list_jobs(const v1::ListJobsRequest& request) {
  std::lock_guard lock(mu_);
  std::vector<const JobEntry*> matching;
  for (const auto& [id, e] : jobs_) {
    if (!request.cluster().empty() && e.job.cluster() != request.cluster()) continue;
    if (!request.state().empty() && e.job.state() != request.state()) continue;
    matching.push_back(&e);
  }
  std::sort(matching.begin(), matching.end(), [](auto* a, auto* b) { return a->sequence > b->sequence; });
  const std::size_t limit = request.limit() > 0 ? static_cast<std::size_t>(request.limit()) : 100;
  std::vector<v1::Job> out;
  for (std::size_t i = 0; i < matching.size() && i < limit; ++i) {
    v1::Job j = matching[i]->job;
    j.clear_spec_yaml();  // lists stay small; `cohort job show` has everything
    out.push_back(std::move(j));
  }
  return out;
}

Result<v1::Job> Manager::cancel_job(const std::string& id) {
  std::lock_guard lock(mu_);
  auto it = jobs_.find(id);
  if (it == jobs_.end()) return Status(Code::kNotFound, "no job " + id);
  JobEntry& e = it->second;
  if (e.job.ended_ms() != 0) return e.job;  // already over: canceling twice is not an error
  if (current_attempt(e)) {
    end_attempt(e, "canceled", "canceled by a user");
  } else {
    e.job.set_state("canceled");
    e.job.set_ended_ms(now());
    e.job.set_message("canceled by a user while queued");
    save_job(e);
    event(e.job.cluster(), "", id, "job_ended", "job " + id + " canceled while queued");
  }
  return e.job;
}

v1::Attempt* Manager::current_attempt(JobEntry& e) {
  if (e.job.attempts_size() == 0) return nullptr;
  v1::Attempt* a = e.job.mutable_attempts(e.job.attempts_size() - 1);
  return attempt_ended(*a) ? nullptr : a;
}

void Manager::end_attempt(JobEntry& e, const std::string& reason, const std::string& message) {
  v1::Attempt* a = current_attempt(e);
  if (!a) return;
  const std::int64_t t = now();
  a->set_state(reason == "succeeded" ? "succeeded" : reason == "canceled" ? "canceled" : "failed");
  a->set_end_reason(reason);
  a->set_message(message);
  a->set_ended_ms(t);
  a->mutable_timings()->set_run_s(seconds(a->started_ms(), t));
  for (const auto& node : a->nodes())
    ring(node);  // its runner hears of the end now, not at its next heartbeat
  const std::string id = e.job.id();
  const std::string n = std::to_string(a->number());
  event(e.job.cluster(), "", id, "attempt_ended", "job " + id + " attempt " + n + " " + reason + ": " + message);

  bool retry = false;
  std::string budget;
  if (reason == "user_error") {
    retry = ++e.user_failures <= e.plan.retries_user_error;
    budget = "user_error " + std::to_string(e.user_failures) + "/" + std::to_string(e.plan.retries_user_error);
  } else if (reason == "node_lost" || reason == "hung") {
    retry = ++e.infra_failures <= e.plan.retries_infrastructure;
    budget = "infrastructure " + std::to_string(e.infra_failures) + "/" + std::to_string(e.plan.retries_infrastructure);
  } else if (reason == "preempted") {
    retry = ++e.preemptions <= e.plan.retries_preemption;
    budget = "preemption " + std::to_string(e.preemptions) + "/" + std::to_string(e.plan.retries_preemption);
  }
  if (reason == "succeeded") {
    e.job.set_state("succeeded");
    e.job.set_message("succeeded on attempt " + n);
  } else if (reason == "canceled") {
    e.job.set_state("canceled");
    e.job.set_message(message);
  } else if (retry) {
    e.job.set_state("queued");
    e.job.set_message("attempt " + n + " " + reason + " (" + message + "); requeued, retries used: " + budget);
  } else {
    e.job.set_state("failed");
    e.job.set_message("attempt " + n + " " + reason + ": " + message +
                      (budget.empty() ? "" : " (no retries left: " + budget + ")"));
  }
  if (e.job.state() != "queued") {
    e.job.set_ended_ms(t);
    event(e.job.cluster(), "", id, "job_ended", "job " + id + " " + e.job.state() + ": " + e.job.message());
  }
  save_job(e);
}

void Manager::evaluate_attempt(JobEntry& e) {
  v1::Attempt* a = current_attempt(e);
  if (!a) return;
  bool changed = false;
  int reported = 0, succeeded = 0, ready = 0;
  bool head_succeeded = false;
  // The first failure by time: a rank that a node's runner saw fail (it names the rank), or else
  // a node's processes that exited non-zero.
  std::optional<v1::RankFailure> first_failure;
  std::int64_t first_failure_ms = 0;
  std::int64_t first_started = 0, last_step = a->last_step(), first_progress = 0, last_ready = 0;
  std::int64_t restored_step = a->start_step(), checkpoint_step = a->checkpoint_step(), checkpoint_ms = 0;
  double unpack_s = 0;
  for (int rank = 0; rank < a->nodes_size(); ++rank) {
    const std::string& node = a->nodes(rank);
    auto it = e.tasks.find(node);
    if (it == e.tasks.end()) continue;
    const v1::TaskStatus& t = it->second;
    ++reported;
    if (t.started_ms() > 0 && (first_started == 0 || t.started_ms() < first_started)) first_started = t.started_ms();
    if (t.ready_ms() > 0) {
      ++ready;
      last_ready = std::max(last_ready, t.ready_ms());
    }
    unpack_s = std::max(unpack_s, t.image_unpack_s());
    if (t.last_step() > last_step) last_step = t.last_step();
    if (t.restored_ms() > 0) restored_step = std::max(restored_step, t.restored_step());
    if (t.checkpoint_ms() > 0 && t.checkpoint_step() >= checkpoint_step) {
      checkpoint_step = t.checkpoint_step();
      checkpoint_ms = std::max(checkpoint_ms, t.checkpoint_ms());
    }
    if (t.last_progress_ms() > 0 && (first_progress == 0 || t.last_progress_ms() < first_progress)) {
      first_progress = t.last_progress_ms();
    }
    auto n = nodes_.find(node);
    const std::string host = n != nodes_.end() ? n->second.node.hostname() : "";
    auto consider = [&](v1::RankFailure f, std::int64_t when) {
      if (first_failure && when >= first_failure_ms) return;
      f.set_node(node);
      if (f.host().empty()) f.set_host(host);
      first_failure = std::move(f);
      first_failure_ms = when;
    };
    if (t.rank_failure_ms() > 0) consider(t.rank_failure(), t.rank_failure_ms());
    if (t.state() != "exited") continue;
    if (t.exit_code() == 0 && t.signal() == 0) {
      ++succeeded;
      head_succeeded = head_succeeded || rank == 0;
    } else if (t.rank_failure_ms() == 0) {
      v1::RankFailure f;
      f.set_rank(e.plan.processes_per_node == 1 && e.plan.distribution != "mpi" ? rank : -1);
      f.set_exit_code(t.exit_code());
      f.set_signal(t.signal());
      f.set_cause(t.cause().empty() ? "exited with code " + std::to_string(t.exit_code()) : t.cause());
      consider(std::move(f), t.exited_ms());
    }
  }
  // A committed checkpoint of step S means the job got to S, even when its progress report of S
  // was still held back (rate-limited) when the node died.
  last_step = std::max(last_step, checkpoint_step);
  if (last_step != a->last_step()) {
    a->set_last_step(last_step);
    changed = true;
  }
  if (restored_step != a->start_step()) {
    a->set_start_step(restored_step);
    changed = true;
    // The previous attempt wrote that checkpoint, so it got at least that far, even when its
    // node was cut off before it could say so: every older checkpoint is at most its start_step.
    if (e.job.attempts_size() >= 2) {
      v1::Attempt& previous = *e.job.mutable_attempts(e.job.attempts_size() - 2);
      if (previous.last_step() < restored_step) previous.set_last_step(restored_step);
      if (previous.checkpoint_step() < restored_step) previous.set_checkpoint_step(restored_step);
    }
  }
  if (checkpoint_ms > a->checkpoint_ms()) {
    a->set_checkpoint_step(checkpoint_step);
    a->set_checkpoint_ms(checkpoint_ms);
    changed = true;
  }
  if (first_progress > 0 && a->timings().first_progress_s() == 0 && a->started_ms() > 0) {
    a->mutable_timings()->set_first_progress_s(seconds(a->started_ms(), first_progress));
    changed = true;
  }
  if (ready == a->nodes_size() && a->timings().container_start_s() == 0) {
    a->mutable_timings()->set_container_start_s(seconds(a->created_ms(), last_ready));
    a->mutable_timings()->set_image_unpack_s(unpack_s);
    changed = true;
  }
  if (a->state() == "provisioning" && reported == a->nodes_size()) {
    a->set_state("running");
    a->set_started_ms(now());
    a->mutable_timings()->set_provisioning_s(seconds(a->created_ms(), a->started_ms()));
    a->mutable_timings()->set_launch_s(seconds(a->created_ms(), first_started));
    e.job.set_state("running");
    e.job.set_message("running attempt " + std::to_string(a->number()) + " on " + std::to_string(a->nodes_size()) +
                      " node(s)");
    changed = true;
  }
  // An MPI job is its head's mpirun: when it ends well, the job did, and the other nodes (which
  // only host Open MPI's daemons) are stopped.
  if (e.plan.distribution == "mpi" && head_succeeded && !first_failure) {
    end_attempt(e, "succeeded", "mpirun on the head node exited with code 0");
    return;
  }
  if (first_failure) {
    *a->mutable_first_failure() = *first_failure;
    if (under_notice(*a)) {
      end_attempt(e, "preempted", preempted_story(*a, *first_failure));
      return;
    }
    if (!alive_since_failure(e, *a)) {
      if (changed) save_job(e);
      return;  // a node's heartbeat (or its loss) decides
    }
    end_attempt(e, "user_error", describe_failure(*first_failure));
    return;
  }
  if (succeeded == a->nodes_size()) {
    end_attempt(e, "succeeded", "every node's processes exited with code 0");
    return;
  }
  if (changed) save_job(e);
}

// A failure is the job's own only once every node of the attempt has shown it is alive after it:
// a node that dies takes Open MPI's daemon there with it, and mpirun on the head reports that
// (exit 205) seconds before the node is found lost. So the first failure rings every node's
// doorbell; alive ones heartbeat within milliseconds, and a dead one is `node_lost` after
// heartbeat_timeout instead of the job's fault.
bool Manager::alive_since_failure(JobEntry& e, const v1::Attempt& a) {
  if (e.failure_seen_ms == 0) {
    e.failure_seen_ms = now();
    for (const auto& node : a.nodes())
      ring(node);
  }
  return std::all_of(a.nodes().begin(), a.nodes().end(), [&](const std::string& name) {
    auto it = nodes_.find(name);
    return it != nodes_.end() && it->second.node.last_heartbeat_ms() >= e.failure_seen_ms;
  });
}

v1::Assignment Manager::assignment_for(const JobEntry& e, const v1::Attempt& a, int node_rank) {
  v1::Assignment as;
  as.set_job(e.job.id());
  as.set_attempt(a.number());
  as.set_node_rank(node_rank);
  as.set_num_nodes(a.nodes_size());
  for (const auto& n : a.nodes()) {
    auto it = nodes_.find(n);
    as.add_node_addresses(it != nodes_.end() ? it->second.node.address() : "");
    as.add_peer_endpoints(it != nodes_.end() ? it->second.node.peer_endpoint() : "");
    as.add_peer_certificates(it != nodes_.end() ? it->second.node.peer_certificate() : "");
  }
  // Derived, not stored: the same after a manager restart, and only the manager (which alone
  // knows the join token's hash) and the attempt's nodes can know it.
  as.set_secret(rpc::sha256_hex(join_hash_ + "/" + e.job.id() + "/" + std::to_string(a.number())));
  as.set_image(e.plan.image);
  as.set_runtime(e.plan.runtime);
  as.set_notice_signal(e.plan.notice_signal);
  as.set_shm_size_bytes(e.plan.shm_size_bytes);
  for (const auto& m : e.plan.mounts) {
    auto* out = as.add_mounts();
    out->set_source(m.source);
    out->set_destination(m.destination);
    out->set_read_only(m.read_only);
    out->set_file(m.file);
  }
  as.set_command(e.plan.command);
  for (const auto& [k, v] : e.plan.environment)
    (*as.mutable_environment())[k] = v;
  as.set_processes_per_node(e.plan.processes_per_node);
  as.set_distribution(e.plan.distribution);
  as.set_has_code(!e.job.code_digest().empty());
  as.set_code_digest(e.job.code_digest());
  // limits.timeout is the manager's to enforce (enforce_job_limits), so it ends as timed_out.
  return as;
}

}  // namespace cohort::manager
