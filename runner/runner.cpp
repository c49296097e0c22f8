#include "runner.hpp"

#include <sched.h>

#include <algorithm>

#include "cohort/log.hpp"
#include "config.hpp"
#include "logging.hpp"
#include "scheduled_events.hpp"
#include "topology.hpp"
#include "usage.hpp"

namespace cohort::runner {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

namespace {

// A whole code snapshot (up to 256 MiB) over a slow link.
constexpr milliseconds kCodeFetchDeadline{600000};

// Failures worth retrying: the manager is away, slow, or hit a passing problem. Anything else
// (a refused token, an unknown node or cluster) will not change by asking again.
bool transient(Code code) {
  return code == Code::kUnavailable || code == Code::kTimedOut || code == Code::kInternal ||
         code == Code::kResourceExhausted || code == Code::kCanceled || code == Code::kDisconnected;
}

// The node no longer exists for the manager (restored state, a new credential table): register again.
bool forgotten(Code code) {
  return code == Code::kNotFound || code == Code::kPermissionDenied || code == Code::kAuthError;
}

std::int64_t unix_ms() {
  return std::chrono::duration_cast<milliseconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

int usable_cores() {
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof set, &set) == 0) return CPU_COUNT(&set);
  return static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
}

}  // namespace

RunnerTimeouts RunnerTimeouts::from_config() {
  return {config::get(config::kHeartbeatInterval), config::get(config::kHeartbeatDeadline),
          config::get(config::kRegisterRetry),     config::get(config::kStopGrace),
          config::get(config::kLogFlush),          config::get(config::kPeerReady)};
}

Runner::Runner(RunnerOptions options, RunnerTimeouts timeouts)
    : options_(std::move(options)), timeouts_(timeouts), interval_(timeouts.heartbeat_interval) {}

Runner::~Runner() {
  {
    std::lock_guard lock(mu_);
    stop_threads_ = true;
  }
  cv_.notify_all();
  if (client_) client_->cancel_downloads();
  if (log_thread_.joinable()) log_thread_.join();
  if (usage_thread_.joinable()) usage_thread_.join();
  if (doorbell_thread_.joinable()) doorbell_thread_.join();
  if (cloud_thread_.joinable()) cloud_thread_.join();
  peer_server_.reset();
  table_.reset();  // stops what still runs, each task with its grace
}

void Runner::request_shutdown(const std::string& why) {
  {
    std::lock_guard lock(mu_);
    if (shutdown_) return;
    shutdown_ = true;
    shutdown_why_ = why;
  }
  cv_.notify_all();
}

bool Runner::wait_or_shutdown(Clock::time_point until) {
  std::unique_lock lock(mu_);
  cv_.wait_until(lock, until, [this] { return (shutdown_ && !stopping_) || wake_; });
  wake_ = false;
  return shutdown_ && !stopping_;
}

void Runner::wake() {
  {
    std::lock_guard lock(mu_);
    wake_ = true;
  }
  cv_.notify_all();
}

void Runner::doorbell_loop() {
  std::int64_t known = 0;
  for (;;) {
    {
      std::lock_guard lock(mu_);
      if (stop_threads_) return;
    }
    auto v = client_->wait_for_work(known, std::chrono::seconds(10));
    if (v.ok()) {
      if (*v != known && known != 0) wake();
      known = *v;
      continue;
    }
    // The manager is away or older than this runner: heartbeats still carry everything.
    std::unique_lock lock(mu_);
    cv_.wait_for(lock, timeouts_.register_retry, [this] { return stop_threads_; });
  }
}

void Runner::scheduled_events_loop() {
  // Polled at most every 5 s, whatever the knob says: Azure's notice is 30 s.
  const milliseconds poll =
      std::clamp(config::get(config::kScheduledEventsPoll), milliseconds(100), milliseconds(5000));
  const milliseconds timeout = std::max(poll, milliseconds(2000));
  int failures = 0;
  std::string last;
  for (;;) {
    {
      std::unique_lock lock(mu_);
      if (stop_threads_) return;
    }
    std::vector<std::string> names{options_.hostname, options_.node_name, client_->node_name()};
    auto body = fetch_scheduled_events(options_.scheduled_events_url, timeout);
    auto event = body.ok() ? parse_scheduled_events(*body, names, unix_ms())
                           : Result<std::optional<PreemptEvent>>(body.status());
    if (!event.ok()) {
      note_failure("Polling the scheduled events", event.status(), failures, last);
    } else {
      note_success("Polling the scheduled events", failures, last);
      if (event->has_value()) {
        const PreemptEvent& e = **event;
        cloud_deadline_ms_ = e.deadline_unix_ms;
        logger()->warn("preemption notice from the cloud (event {}): this node goes in {} ms; telling its jobs",
                       e.event_id, e.deadline_unix_ms - unix_ms());
        table_->notify_preemption(e.deadline_unix_ms);  // at once, manager or not
        wake();                                         // and the manager with the next heartbeat
        return;                                         // the first notice stands
      }
    }
    std::unique_lock lock(mu_);
    cv_.wait_for(lock, poll, [this] { return stop_threads_; });
  }
}

void Runner::set_up_containers() {
  auto runc = std::make_unique<Runc>();
  runc->root = options_.work_dir / "runc";
  if (Status s = can_run_containers(*runc); !s.ok()) {
    no_containers_ = s.message();
    logger()->info("jobs run as plain processes here: {}", no_containers_);
    return;
  }
  std::error_code ec;
  std::filesystem::create_directories(runc->root, ec);
  if (auto sealed = sealed_runc_copy(runc->binary, options_.work_dir / "bin"); sealed.ok()) {
    runc->installed_binary = runc->binary;
    runc->binary = *sealed;
  } else {
    logger()->warn("runc will copy itself at every container start: {}", sealed.status().message());
  }
  // Containers of an earlier run of this runner (killed before it could remove them). The runc
  // root is this work directory's own, so every job container in it is one, whatever the node
  // was called then (a static node learns its name from the manager only later).
  if (auto left = runc->list("cohort-"); left.ok()) {
    for (const auto& id : *left) {
      logger()->warn("removing container {}, left by an earlier run of this runner", id);
      (void)runc->remove(id);
    }
  }
  runc_ = std::move(runc);
}

void Runner::note_failure(const char* what, const Status& s, int& failures, std::string& last) {
  ++failures;
  const std::string key = s.to_string();
  if (key != last) logger()->warn("{} failed (retrying until it works): {}", what, key);
  last = key;
}

void Runner::note_success(const char* what, int& failures, std::string& last) {
  if (failures > 0) logger()->info("{} works again after {} failed attempt(s)", what, failures);
  failures = 0;
  last.clear();
}

Status Runner::register_node(bool again) {
  v1::RegisterRequest rq;
  const std::string known = client_->node_name();
  rq.set_node_name(known.empty() ? options_.node_name : known);
  rq.set_cluster(options_.cluster);
  rq.set_hostname(options_.hostname);
  rq.set_address(options_.address);
  if (peer_server_) {
    rq.set_peer_endpoint(options_.address + ":" + std::to_string(peer_server_->port()));
    rq.set_peer_certificate(peer_certificate_);
  }
  rq.set_cores(usable_cores());
  rq.set_memory_bytes(UsageSampler::memory_total_bytes());
  rq.set_gpus(sampler_->gpu_count());
  int failures = 0;
  std::string last;
  for (;;) {
    COHORT_ASSIGN_OR_RETURN(const std::string token, join_token(options_));
    rq.clear_tasks();
    if (again) {
      for (auto& t : table_->statuses())
        *rq.add_tasks() = std::move(t);
    }
    auto r = client_->register_node(rq, token);
    if (r.ok()) {
      note_success("Register", failures, last);
      if (r->heartbeat_interval_ms() > 0) interval_ = milliseconds(r->heartbeat_interval_ms());
      table_->set_node_name(r->node_name());
      name_log_lines(r->node_name());
      logger()->info(
          "registered with the manager at {} as node {} of cluster {} ({} task(s) reported); heartbeat "
          "every {} ms",
          client_->address(), r->node_name(), options_.cluster, rq.tasks_size(), interval_.count());
      return {};
    }
    if (!transient(r.status().code())) {
      const bool bad_token = r.status().code() == Code::kPermissionDenied || r.status().code() == Code::kAuthError;
      return Status(
          r.status().code(),
          "the manager refused to register node '" + rq.node_name() + "' of cluster " + options_.cluster + ": " +
              r.status().message() +
              (bad_token ? " (check the join token: --join-token-file FILE or COHORT_JOIN_TOKEN; the manager's "
                           "state directory holds it in `join-token`)"
                         : " (check --cluster and --node-name)"));
    }
    note_failure("Register", r.status(), failures, last);
    if (wait_or_shutdown(Clock::now() + timeouts_.register_retry)) {
      return Status(Code::kCanceled, "shut down before the manager answered");
    }
  }
}

void Runner::heartbeat(bool last) {
  v1::HeartbeatRequest rq;
  {
    std::lock_guard lock(mu_);
    *rq.mutable_usage() = usage_;
  }
  for (auto& t : table_->statuses(/*hold_exits_for_logs=*/!last))
    *rq.add_tasks() = std::move(t);
  rq.set_sequence(++sequence_);
  rq.set_preempt_deadline_ms(cloud_deadline_ms_.load());
  auto r = client_->heartbeat(std::move(rq));
  if (r.ok()) {
    note_success("Heartbeat", heartbeat_failures_, heartbeat_last_error_);
    return apply(*r);
  }
  if (forgotten(r.status().code()) && !stopping_) {
    logger()->warn("the manager does not know this node any more ({}): registering again, reporting {} task(s)",
                   r.status().message(), table_->statuses().size());
    reregister_ = true;
    return;
  }
  note_failure("Heartbeat", r.status(), heartbeat_failures_, heartbeat_last_error_);
}

void Runner::apply(const v1::HeartbeatResponse& response) {
  if (response.heartbeat_interval_ms() > 0 && response.heartbeat_interval_ms() != interval_.count()) {
    interval_ = milliseconds(response.heartbeat_interval_ms());
    logger()->info("heartbeat interval is now {} ms", interval_.count());
  }
  for (const auto& f : response.forget())
    table_->forget(f.job(), f.attempt());
  for (const auto& s : response.stop()) {
    logger()->info("job {} attempt {}: stop asked by the manager: {}", s.job(), s.attempt(), s.reason());
    table_->stop(s.job(), s.attempt(), "stopped by the manager" + (s.reason().empty() ? "" : ": " + s.reason()));
  }
  if (response.preempt_deadline_ms() != 0) {
    if (preempt_deadline_ms_ != response.preempt_deadline_ms()) {
      preempt_deadline_ms_ = response.preempt_deadline_ms();
      logger()->warn("preemption notice: this node goes in {} ms; telling its jobs", preempt_deadline_ms_ - unix_ms());
    }
    table_->notify_preemption(preempt_deadline_ms_);  // also tasks that started since
  }
  if (response.drain() != draining_) {
    draining_ = response.drain();
    logger()->info(draining_ ? "draining: no new assignments" : "no longer draining: taking assignments again");
  }
  for (const auto& a : response.start()) {
    if (draining_ || stopping_) {
      logger()->debug("job {} attempt {}: not started, the node is {}", a.job(), a.attempt(),
                      stopping_ ? "shutting down" : "draining");
      continue;
    }
    if (table_->start(a)) {
      logger()->info("job {} attempt {}: assigned (node rank {} of {}): starting", a.job(), a.attempt(), a.node_rank(),
                     a.num_nodes());
    }
  }
  if (response.shutdown()) request_shutdown("the manager is removing this node");
}

void Runner::log_loop() {
  const auto send = [this](const v1::Assignment& a, std::string_view data) {
    return client_->append_logs(a.job(), a.attempt(), data);
  };
  std::unique_lock lock(mu_);
  for (;;) {
    cv_.wait_for(lock, timeouts_.log_flush, [this] { return stop_threads_ || logs_wanted_; });
    if (stop_threads_) return;
    const bool exited = logs_wanted_;
    logs_wanted_ = false;
    lock.unlock();
    Status s = table_->ship_logs(send);
    if (s.ok()) {
      if (exited) wake();  // an exit held back for its last log lines can be reported now
      note_success("AppendLogs", log_failures_, log_last_error_);
    } else {
      note_failure("AppendLogs", s, log_failures_, log_last_error_);
    }
    lock.lock();
  }
}

void Runner::usage_loop() {
  std::unique_lock lock(mu_);
  while (!stop_threads_) {
    lock.unlock();
    v1::Usage u = sampler_->sample();
    lock.lock();
    usage_ = std::move(u);
    cv_.wait_for(lock, timeouts_.heartbeat_interval, [this] { return stop_threads_; });
  }
}

Status Runner::run() {
  COHORT_ASSIGN_OR_RETURN(
      client_, ManagerClient::connect(options_.manager,
                                      {timeouts_.call_deadline, timeouts_.register_retry, kCodeFetchDeadline}));
  TaskEnvironment env{options_.work_dir,
                      options_.node_name,
                      runner_environment_for_jobs(),
                      timeouts_.stop_grace,
                      [this](const v1::Assignment& a, const std::filesystem::path& to) {
                        return client_->get_code(a.job(), a.code_digest(), to);
                      },
                      &spawner_,
                      [this] {
                        {
                          std::lock_guard lock(mu_);
                          logs_wanted_ = true;
                        }
                        cv_.notify_all();
                      }};
  set_up_containers();
  env.bin_dir = std::filesystem::read_symlink("/proc/self/exe").parent_path();
  env.runc = runc_.get();
  env.no_containers = no_containers_;
  env.hostname = options_.hostname;
  env.ready_timeout = timeouts_.peer_ready;
  env.image_cache = options_.work_dir / "images";
  env.topology_file = options_.work_dir / "topology.xml";
  if (Status s = write_node_topology(env.topology_file); !s.ok()) {
    logger()->warn("jobs' Open MPI will discover the node's topology at each start: {}", s.to_string());
    env.topology_file.clear();
  }
  env.wait_peer_ready = wait_peer_ready;
  env.on_change = [this] { wake(); };
  table_ = std::make_unique<TaskTable>(std::move(env), timeouts_.call_deadline);
  auto identity = load_or_make_peer_identity(options_.work_dir / "peer-tls");
  if (!identity.ok()) return identity.status().with_context("the peer service's TLS key");
  peer_certificate_ = identity->certificate_pem;
  auto peers = PeerServer::start(options_.address + ":0", *table_, *identity);
  if (!peers.ok()) return peers.status().with_context("starting the peer service");
  peer_server_ = std::move(*peers);
  sampler_ = std::make_unique<UsageSampler>();
  usage_thread_ = std::thread([this] { usage_loop(); });
  logger()->info("cohort-runner for cluster {} on {} ({}), work directory {}: registering with {}", options_.cluster,
                 options_.hostname, options_.address, options_.work_dir.string(), options_.manager.address);
  if (Status s = register_node(false); !s.ok()) return s.code() == Code::kCanceled ? Status() : s;
  log_thread_ = std::thread([this] { log_loop(); });
  doorbell_thread_ = std::thread([this] { doorbell_loop(); });
  if (!options_.scheduled_events_url.empty()) {
    logger()->info("polling {} for preemption notices", options_.scheduled_events_url);
    cloud_thread_ = std::thread([this] { scheduled_events_loop(); });
  }

  Status fatal;
  auto next = Clock::now();
  Clock::time_point stop_deadline{};
  for (;;) {
    if (wait_or_shutdown(next) && !stopping_) {
      std::string why;
      {
        std::lock_guard lock(mu_);
        why = shutdown_why_;
        stopping_ = true;
      }
      logger()->info("shutting down ({}): stopping {} task(s)", why, table_->running());
      client_->cancel_downloads();
      table_->stop_all(why);
      stop_deadline = Clock::now() + timeouts_.stop_grace + timeouts_.call_deadline;
    }
    if (stopping_ && (table_->all_exited() || Clock::now() >= stop_deadline)) break;
    if (reregister_ && !stopping_) {
      Status s = register_node(true);
      if (s.ok()) {
        reregister_ = false;
      } else if (s.code() != Code::kCanceled) {
        logger()->error("{}", s.to_string());
        fatal = s;
        request_shutdown("the manager refused this node");
      }
      continue;
    }
    heartbeat(/*last=*/false);
    // One interval after this heartbeat, whether it was due or woken early: advancing from the
    // previous due time instead let a burst of wakes push the next one seconds away, long enough
    // for the manager to call the node lost.
    next = reregister_ ? Clock::now() : Clock::now() + interval_;
  }
  finish_shutdown();
  return fatal;
}

void Runner::finish_shutdown() {
  {
    std::lock_guard lock(mu_);
    stop_threads_ = true;
  }
  cv_.notify_all();
  client_->cancel_downloads();  // the doorbell's call
  if (log_thread_.joinable()) log_thread_.join();
  if (doorbell_thread_.joinable()) doorbell_thread_.join();
  if (cloud_thread_.joinable()) cloud_thread_.join();
  client_->fail_fast();  // a manager that is away gets no more waiting: the runner is ending
  if (Status s = table_->ship_logs([this](const v1::Assignment& a, std::string_view data) {
        return client_->append_logs(a.job(), a.attempt(), data);
      });
      !s.ok()) {
    logger()->warn("the last log lines could not be shipped: {}", s.to_string());
  }
  if (!table_->all_exited()) logger()->error("{} task(s) did not end in time: killing them", table_->running());
  if (!reregister_) heartbeat(/*last=*/true);
  logger()->info("stopped");
}

}  // namespace cohort::runner
