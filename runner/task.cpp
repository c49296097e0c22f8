#include "task.hpp"

#include <sys/inotify.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <csignal>
#include <cstring>
#include <ctime>
#include <fstream>
#include <iterator>
#include <map>

#include "cohort/log.hpp"
#include "exec_init.hpp"
#include "fd.hpp"
#include "file_write.hpp"
#include "oci_image.hpp"
#include "rank_report.hpp"
#include "subprocess.hpp"

extern char** environ;

namespace cohort::runner {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

namespace {

// How often a task looks at its process, its progress file and its deadlines: the delay of a
// stop and of seeing progress, at the cost of a stat(2) per tick.
constexpr milliseconds kTick{50};
// How often a starting task looks for its init's ready file: part of every launch's latency.
constexpr milliseconds kReadyPoll{1};
constexpr milliseconds kReadyWatchTick{20};  // how soon a stop or the ready timeout is seen meanwhile
// Unpacking a code snapshot (at most 256 MiB, the manager's message limit) on a busy disk.
constexpr milliseconds kExtractTimeout{600000};

std::int64_t epoch_ms(std::chrono::system_clock::time_point t = std::chrono::system_clock::now()) {
  return std::chrono::duration_cast<milliseconds>(t.time_since_epoch()).count();
}

// "was killed by signal 9 (SIGKILL)" reads as "killed by signal 9 (SIGKILL)" on its own.
std::string describe(const ExitStatus& s) {
  std::string d = s.describe();
  return d.starts_with("was ") ? d.substr(4) : d;
}

}  // namespace

std::vector<std::string> runner_environment_for_jobs() {
  std::vector<std::string> out;
  for (char** e = environ; e != nullptr && *e != nullptr; ++e) {
    const std::string_view entry(*e);
    if (entry.starts_with("COHORT_JOIN_TOKEN=") || entry.starts_with("COHORT_TOKEN=")) continue;
    out.emplace_back(entry);
  }
  return out;
}

std::vector<fs::path> gpu_devices() {
  std::vector<fs::path> out;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator("/dev", ec)) {
    const std::string name = e.path().filename().string();
    if (name.starts_with("nvidia") && !e.is_directory(ec)) out.push_back(e.path());
  }
  std::sort(out.begin(), out.end());
  return out;
}

std::optional<std::int64_t> parse_progress(std::string_view text) {
  auto blank = [](char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; };
  while (!text.empty() && blank(text.front()))
    text.remove_prefix(1);
  while (!text.empty() && blank(text.back()))
    text.remove_suffix(1);
  std::int64_t v = 0;
  auto r = std::from_chars(text.data(), text.data() + text.size(), v);
  if (text.empty() || r.ec != std::errc() || r.ptr != text.data() + text.size()) return std::nullopt;
  return v;
}

Task::Task(v1::Assignment assignment, TaskEnvironment env)
    : assignment_(std::move(assignment)),
      env_(std::move(env)),
      dir_(env_.work_dir / "jobs" / assignment_.job() / std::to_string(assignment_.attempt())) {
  status_.set_job(assignment_.job());
  status_.set_attempt(assignment_.attempt());
  status_.set_state("starting");
}

Task::~Task() {
  if (thread_.joinable()) {
    stop("the runner is ending");
    thread_.join();
  }
}

void Task::start() {
  thread_ = std::thread([this] { run(); });
}

void Task::stop(std::string cause) {
  {
    std::lock_guard lock(mu_);
    if (!stop_cause_) stop_cause_ = std::move(cause);
  }
  cv_.notify_all();
}

v1::TaskStatus Task::status() const {
  std::lock_guard lock(mu_);
  return status_;
}

bool Task::wait_ready_for(milliseconds timeout) const {
  std::unique_lock lock(mu_);
  cv_.wait_for(lock, timeout, [this] { return (ready_ && !exited_.load()) || exited_.load(); });
  return ready_ && !exited_.load();
}

bool Task::wait_exited(milliseconds timeout) const {
  std::unique_lock lock(mu_);
  return cv_.wait_for(lock, timeout, [this] { return exited_.load(); });
}

void Task::note(const std::string& line) const {
  std::ofstream(log_path(), std::ios::app) << "cohort-runner: " << line << "\n";
}

Status Task::prepare() {
  std::error_code ec;
  fs::remove_all(dir_, ec);  // a re-run of this attempt (after a runner restart) starts afresh
  fs::create_directories(dir_ / "code", ec);
  if (!ec) fs::create_directories(run_dir(), ec);
  if (ec) return Status(Code::kIoError, "cannot create " + (dir_ / "code").string() + ": " + ec.message());
  std::ofstream(log_path(), std::ios::app).flush();  // the log exists from the start, for the shipper
  if (!assignment_.has_code()) return {};
  set_phase("fetching the job's code");
  const fs::path archive = dir_ / "code.tar.gz";
  COHORT_TRY(env_.fetch_code(assignment_, archive).with_context("fetching the job's code"));
  SpawnOptions tar{.argv = {"tar", "-xzf", archive.string(), "-C", (dir_ / "code").string(), "--no-same-owner"}};
  COHORT_ASSIGN_OR_RETURN(Captured r, run_captured(std::move(tar), kExtractTimeout));
  fs::remove(archive, ec);
  if (r.timed_out || !r.status.success()) {
    return Status(Code::kDataLoss, "unpacking the job's code: tar " + describe(r.status) +
                                       (r.err.empty() ? "" : ": " + r.err.substr(0, r.err.find('\n'))));
  }
  return {};
}

std::string Task::container_id() const {
  std::string id = "cohort-" + env_.node_name + "-" + assignment_.job() + "-" + std::to_string(assignment_.attempt());
  for (char& c : id) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '_' && c != '.') c = '_';
  }
  return id;
}

Result<std::vector<std::string>> Task::plan() {
  const std::string& runtime = assignment_.runtime();
  const std::string& image = assignment_.image();
  const bool host_image = image.empty() || image == "host";
  bool container = env_.runc != nullptr;
  if (runtime == "none") {
    container = false;
  } else if (!container && (runtime == "runc" || !host_image)) {
    return Status(Code::kFailedPrecondition, "image " + (host_image ? std::string("host") : image) +
                                                 " with runtime runc cannot run on node " + env_.node_name + ": " +
                                                 env_.no_containers);
  }
  NodeFacts facts{env_.node_name, dir_, env_.bin_dir, container, geteuid() == 0, env_.stop_grace.count()};
  facts.topology_file = env_.topology_file;
  std::vector<std::string> base;
  if (container) {
    // A container starts from a clean environment: nothing of the runner's leaks into it.
    base = {"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOME=/tmp", "TMPDIR=/tmp",
            "LANG=C.UTF-8", "HOSTNAME=" + env_.hostname};
  } else {
    base = env_.base_environment;
  }
  COHORT_ASSIGN_OR_RETURN(plan_, plan_launch(assignment_, facts, base));
  if (!container) return plan_.argv;

  // The job's user must write its run directory, outputs and checkpoints.
  std::vector<fs::path> writable = {run_dir()};
  for (const auto& m : plan_.mounts) {
    if (m.read_only || m.source == run_dir()) continue;
    std::error_code ec;
    if (m.file) {  // a uri_file output: its directory, and the file itself for the mount point
      fs::create_directories(m.source.parent_path(), ec);
      if (!ec && !fs::exists(m.source, ec) && !std::ofstream(m.source).good())
        ec = std::make_error_code(std::errc::io_error);
    } else {
      fs::create_directories(m.source, ec);
    }
    if (ec)
      return Status(Code::kIoError,
                    "cannot create " + m.source.string() + " for " + m.destination + ": " + ec.message());
    writable.push_back(m.source);
  }
  for (const auto& p : writable) {
    if (::chown(p.c_str(), env_.job_uid, env_.job_gid) != 0) return errno_status("chown", errno, p.string());
  }
  for (const auto& m : plan_.mounts) {
    std::error_code ec;
    if (!fs::exists(m.source, ec)) {
      return Status(Code::kNotFound,
                    m.destination + ": " + m.source.string() + " does not exist on node " + env_.node_name);
    }
  }
  // The job's hostname must resolve to its node's address, not to nothing or loopback: gloo and
  // Open MPI bind and advertise what it resolves to.
  const fs::path hosts = dir_ / "hosts";
  const std::string own = assignment_.node_rank() < assignment_.node_addresses_size()
                              ? assignment_.node_addresses(assignment_.node_rank())
                              : "127.0.1.1";
  {
    std::ofstream out(hosts, std::ios::trunc);
    out << "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n" << own << "\t" << env_.hostname << "\n";
    if (!out.flush()) return Status(Code::kIoError, "cannot write " + hosts.string());
  }
  plan_.mounts.push_back({hosts, "/etc/hosts", true});

  ContainerSpec spec;
  spec.id = container_id();
  spec.bundle_dir = dir_ / "bundle";
  spec.hostname = env_.hostname;
  spec.uid = env_.job_uid;
  spec.gid = env_.job_gid;
  spec.args = plan_.argv;
  spec.env = plan_.env;
  spec.cwd = plan_.cwd;
  spec.mounts = plan_.mounts;
  spec.shm_size_bytes = static_cast<std::uint64_t>(assignment_.shm_size_bytes());
  spec.devices = gpu_devices();
  if (image.starts_with("dir:")) {
    spec.rootfs = image.substr(4);
    std::error_code ec;
    if (!fs::is_directory(spec.rootfs, ec)) {
      return Status(Code::kNotFound, "image " + image + ": no such directory on node " + env_.node_name);
    }
  } else if (image.starts_with("oci:")) {
    set_phase("unpacking image " + image);
    auto [layout, ref] = split_oci_reference(image.substr(4));
    COHORT_ASSIGN_OR_RETURN(UnpackedImage unpacked, unpack_oci_image(layout, ref, env_.image_cache));
    spec.rootfs = unpacked.rootfs;
    for (const auto& e : unpacked.entrypoint_env) {
      if (!e.starts_with("PATH=")) continue;  // the image's PATH: its programs may live elsewhere
      for (auto& v : spec.env) {
        if (v.starts_with("PATH=")) v = e;
      }
    }
    std::lock_guard lock(mu_);
    status_.set_image_unpack_s(unpacked.unpack_seconds);
  }
  set_phase("starting its container");
  COHORT_TRY(write_bundle(spec).with_context("writing the container's bundle"));
  std::vector<std::string> command = env_.runc->run_argv(spec);
  container_ = std::move(spec);
  return command;
}

void Task::gate_on_peers() {
  const auto until = Clock::now() + env_.ready_timeout;
  auto give_up = [this] { return gate_cancel_.load() || stop_requested(); };
  Status s;
  for (int rank = 1; rank < assignment_.num_nodes() && s.ok() && !give_up(); ++rank)
    s = env_.wait_peer_ready(assignment_, rank, until, give_up);
  if (give_up()) return;
  if (s.ok()) {
    std::ofstream go(plan_.go_file);
    if (go.flush()) return;
    s = Status(Code::kIoError, "cannot write " + plan_.go_file.string());
  }
  note(s.message());
  stop("could not start: " + s.message());
}

bool Task::stop_requested() const {
  std::lock_guard lock(mu_);
  return stop_cause_.has_value();
}

void Task::run() {
  const std::string name = "job " + assignment_.job() + " attempt " + std::to_string(assignment_.attempt());
  auto stop_cause = [this] {
    std::lock_guard lock(mu_);
    return stop_cause_;
  };
  auto fail = [&](const Status& s) {
    logger()->error("{}: {}", name, s.message());
    note(s.message());
    clean_up();
    finish(ExitStatus{127, 0}, "could not start: " + s.message());
  };
  if (auto stopped = stop_cause()) return finish(ExitStatus{0, SIGTERM}, *stopped + " (before it started)");
  if (Status s = prepare(); !s.ok()) return fail(s);
  auto command = plan();
  if (!command.ok()) return fail(command.status());
  if (auto stopped = stop_cause()) {
    clean_up();
    return finish(ExitStatus{0, SIGTERM}, *stopped + " (before it started)");
  }
  if (!plan_.bridge_socket.empty()) {
    auto bridge = BridgeServer::start(plan_.bridge_socket, assignment_, container_ ? env_.job_uid : geteuid(),
                                      container_ ? env_.job_gid : getegid());
    if (!bridge.ok()) return fail(bridge.status().with_context("the bridge socket for mpirun"));
    bridge_ = std::move(bridge).value();
  }
  // The keeper's environment: the container's is in its bundle, and runc wants the runner's.
  JobProcessSpec spec{*command, env_.bin_dir / "cohort-exec", dir_ / "code", log_path(),
                      container_ ? env_.base_environment : plan_.env};
  if (container_) spec.cleanup = env_.runc->force_delete_argv(container_->id);
  auto process = env_.spawner->start(spec);
  if (!process.ok()) return fail(process.status());
  {
    std::lock_guard lock(mu_);
    status_.set_state("running");
    status_.set_started_ms(epoch_ms());
  }
  logger()->info("{}: started {} (process group {})", name,
                 container_ ? "container " + container_->id : "`" + assignment_.command() + "`",
                 process->process_group());
  // An MPI head's container starts at once; mpirun in it waits for the go file, created once every
  // other node's container is up (or the attempt is stopped, naming the node that was not).
  std::thread gate;
  if (!plan_.go_file.empty()) gate = std::thread([this] { gate_on_peers(); });
  wait_ready(*process);
  auto [status, cause] = watch(*process);
  gate_cancel_ = true;
  if (gate.joinable()) gate.join();
  // The containers go before the status says the attempt ended: whoever reads the end may reuse
  // the node at once.
  clean_up();
  finish(status, std::move(cause));
}

void Task::wait_ready(JobProcess& process) {
  auto until = Clock::now() + env_.ready_timeout;
  bool stop_seen = false;
  const fs::path ready_file = run_dir() / "ready";
  // Init writes the ready file by rename into the run directory: a watch there wakes this loop at
  // once and costs nothing meanwhile. Without one (no inotify) the file is polled every millisecond.
  Fd watch(::inotify_init1(IN_NONBLOCK | IN_CLOEXEC));
  if (watch.get() >= 0 && ::inotify_add_watch(watch.get(), run_dir().c_str(), IN_CREATE | IN_MOVED_TO) < 0) {
    logger()->warn("job {}: cannot watch {}: {}", assignment_.job(), run_dir().string(), std::strerror(errno));
    watch = Fd();  // polled, then
  }
  for (;;) {
    std::error_code ec;
    if (fs::exists(ready_file, ec)) {
      {
        std::lock_guard lock(mu_);
        ready_ = true;
        phase_ = "running";
        status_.set_ready_ms(epoch_ms());
      }
      cv_.notify_all();
      if (env_.on_change) env_.on_change();
      return;
    }
    auto ended = process.wait_for(watch.get() >= 0 ? kReadyWatchTick : kReadyPoll, watch.get());
    if (watch.get() >= 0) {
      char events[4096];
      while (::read(watch.get(), events, sizeof events) > 0) {
      }
    }
    bool stopping;
    {
      std::lock_guard lock(mu_);
      stopping = stop_cause_.has_value();
    }
    if (ended.ok() && ended->has_value()) return;  // watch() reports the end
    // A container's init is pid 1 of its namespace: a SIGTERM that runc forwards before init
    // blocked it (init says ready after) is dropped, and the job would wait out the grace for its
    // SIGKILL. So a stop waits for init, as long as a grace, before watch() signals.
    if (stopping && !container_) return;
    if (stopping && !stop_seen) {
      stop_seen = true;
      until = std::min(until, Clock::now() + env_.stop_grace);
    }
    if (stopping && Clock::now() >= until) return;
    if (Clock::now() >= until) {
      const std::string why = std::string(container_ ? "its container" : "its first process") + " was not up after " +
                              std::to_string(env_.ready_timeout.count() / 1000) + " s";
      note(why);
      stop("could not start: " + why);
      return;
    }
  }
}

std::pair<ExitStatus, std::string> Task::watch(JobProcess& process) {
  const auto started = Clock::now();
  const auto timeout = std::chrono::seconds(assignment_.timeout_s());
  std::optional<Clock::time_point> term_sent;
  bool kill_sent = false;
  for (;;) {
    auto ended = process.wait_for(kTick);
    deliver_notice(process);
    read_progress();
    read_rank_reports();
    if (ended.ok() && ended->has_value()) {
      std::string cause;
      ExitStatus st = container_ ? init_exit(**ended) : **ended;
      {
        std::lock_guard lock(mu_);
        if (stop_cause_ && term_sent) cause = *stop_cause_;
      }
      const bool timed_out = cause.starts_with("timed out");
      return {st, cause.empty() ? describe(st) : timed_out ? cause : cause + ": " + describe(st)};
    }
    if (!ended.ok()) logger()->warn("job {}: {}", assignment_.job(), ended.status().message());
    const auto now = Clock::now();
    if (assignment_.timeout_s() > 0 && now - started >= timeout) {
      stop("timed out after " + std::to_string(assignment_.timeout_s()) + " s");
    }
    bool stopping;
    {
      std::lock_guard lock(mu_);
      stopping = stop_cause_.has_value();
    }
    if (stopping && !term_sent) {
      (void)signal_job(process, SIGTERM);
      term_sent = now;
    } else if (term_sent && !kill_sent && now - *term_sent >= env_.stop_grace) {
      logger()->warn("job {} attempt {}: still running {} ms after SIGTERM: SIGKILL", assignment_.job(),
                     assignment_.attempt(), env_.stop_grace.count());
      (void)process.signal_group(SIGKILL);
      kill_sent = true;
    }
  }
}

Status Task::signal_job(JobProcess& process, int sig) const {
  // A container's group holds `runc run` and, while it starts, the `runc init` it re-executed: a
  // signal there breaks the start ("can't get final child's PID from pipe"). `runc run` forwards
  // what it gets to the container's init, queued until that init exists; the container's own
  // processes are in a session of their own, out of the group's reach anyway.
  return container_ ? process.signal_leader(sig) : process.signal_group(sig);
}

ExitStatus Task::init_exit(ExitStatus st) const {
  if (st.signal != 0 || st.code <= 128) return st;
  std::ifstream in(run_dir() / kExitFileName);
  std::string word;
  int signal = 0;
  if (in >> word >> signal && word == "signal" && signal == st.code - 128) return ExitStatus{0, signal};
  return st;
}

void Task::read_rank_reports() {
  std::error_code ec;
  const auto mtime = fs::last_write_time(run_dir(), ec);
  if (ec || mtime == reports_mtime_) return;
  reports_mtime_ = mtime;
  const auto failed = first_failure(read_reports(run_dir()));
  if (!failed) return;
  {
    std::lock_guard lock(mu_);
    if (status_.rank_failure_ms() != 0) return;  // the first one stays the first
    v1::RankFailure* f = status_.mutable_rank_failure();
    f->set_rank(failed->rank);
    f->set_host(failed->host);
    f->set_exit_code(failed->status.code);
    f->set_signal(failed->status.signal);
    f->set_cause("rank " + std::to_string(failed->rank) + " " + describe(failed->status));
    status_.set_rank_failure_ms(failed->end_ns / 1'000'000);
  }
  logger()->warn("job {} attempt {}: rank {} on {} {}", assignment_.job(), assignment_.attempt(), failed->rank,
                 failed->host, describe(failed->status));
  if (env_.on_change) env_.on_change();
}

bool Task::ready() const {
  std::lock_guard lock(mu_);
  return ready_ && !exited_.load();
}

std::string Task::phase() const {
  std::lock_guard lock(mu_);
  return exited_.load() ? "exited: " + status_.cause() : phase_;
}

void Task::set_phase(std::string phase) {
  std::lock_guard lock(mu_);
  phase_ = std::move(phase);
}

Result<Task::ExecTarget> Task::exec_target() const {
  if (!ready()) return Status(Code::kFailedPrecondition, "attempt is not running here: " + phase());
  if (plan_.exec_socket.empty()) {
    return Status(Code::kFailedPrecondition, "node rank " + std::to_string(assignment_.node_rank()) +
                                                 " of this attempt starts no processes for its peers");
  }
  return ExecTarget{plan_.exec_socket, container_ ? container_->env : plan_.env};
}

void Task::clean_up() {
  bridge_.reset();
  if (container_) {
    if (Status s = env_.runc->remove(container_->id); !s.ok()) {
      logger()->error("job {} attempt {}: removing container {}: {}", assignment_.job(), assignment_.attempt(),
                      container_->id, s.to_string());
    }
    std::error_code ec;
    fs::remove_all(container_->bundle_dir, ec);
  }
}

std::optional<Task::StepRead> Task::read_step_file(const fs::path& path, fs::file_time_type& seen) {
  std::error_code ec;
  const auto mtime = fs::last_write_time(path, ec);
  if (ec || mtime == seen) return std::nullopt;
  std::ifstream in(path);
  const std::string text{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
  const auto step = parse_progress(text);
  if (!step) return std::nullopt;  // half written: read again next tick
  seen = mtime;
  const auto when = std::chrono::file_clock::to_sys(mtime);
  return StepRead{*step, epoch_ms(std::chrono::time_point_cast<std::chrono::system_clock::duration>(when))};
}

void Task::read_progress() {
  const auto progress = read_step_file(progress_path(), progress_mtime_);
  const auto restored = read_step_file(run_dir() / "restored", restored_mtime_);
  const auto checkpoint = read_step_file(run_dir() / "checkpoint", checkpoint_mtime_);
  if (!progress && !restored && !checkpoint) return;
  std::lock_guard lock(mu_);
  if (progress) {
    status_.set_last_step(progress->step);
    status_.set_last_progress_ms(progress->ms);
  }
  if (restored) {
    status_.set_restored_step(restored->step);
    status_.set_restored_ms(restored->ms);
  }
  if (checkpoint) {
    status_.set_checkpoint_step(checkpoint->step);
    status_.set_checkpoint_ms(checkpoint->ms);
  }
}

void Task::notify_preemption(std::int64_t deadline_ms) {
  {
    std::lock_guard lock(mu_);
    if (notice_deadline_ms_ != 0) return;
    notice_deadline_ms_ = deadline_ms;
  }
  cv_.notify_all();
}

// On the task's thread, once: the notice file first (so a rank woken by the signal finds it),
// then the signal to the job's process group (through `runc run`, which passes it to init).
void Task::deliver_notice(JobProcess& process) {
  std::int64_t deadline = 0;
  {
    std::lock_guard lock(mu_);
    deadline = notice_deadline_ms_;
  }
  if (deadline == 0 || notice_delivered_) return;
  notice_delivered_ = true;
  const std::int64_t now = epoch_ms();
  const std::time_t secs = static_cast<std::time_t>(deadline / 1000);
  std::tm utc{};
  gmtime_r(&secs, &utc);
  char iso[32];
  std::strftime(iso, sizeof iso, "%Y-%m-%dT%H:%M:%SZ", &utc);
  const std::string text = "{\"event\": \"Preempt\", \"deadline_unix_ms\": " + std::to_string(deadline) +
                           ", \"deadline\": \"" + iso + "\", \"notice_ms\": " + std::to_string(deadline - now) + "}\n";
  if (Status s = write_file_replacing(run_dir() / "notice", text, 0644); !s.ok()) {
    logger()->warn("job {}: cannot write the preemption notice: {}", assignment_.job(), s.message());
  }
  const std::string& sig = assignment_.notice_signal();
  const int signo = sig == "SIGUSR1" ? SIGUSR1 : sig == "SIGUSR2" ? SIGUSR2 : 0;
  if (signo != 0) (void)signal_job(process, signo);
  note("preemption notice: the node goes at " + std::string(iso) + " (in " + std::to_string((deadline - now) / 1000) +
       " s)" + (signo != 0 ? "; sent " + sig : ""));
  std::lock_guard lock(mu_);
  status_.set_notice_ms(now);
}

void Task::finish(ExitStatus st, std::string cause) {
  logger()->info("job {} attempt {}: {}", assignment_.job(), assignment_.attempt(), cause);
  {
    std::lock_guard lock(mu_);
    status_.set_state("exited");
    status_.set_exit_code(st.code);
    status_.set_signal(st.signal);
    status_.set_cause(std::move(cause));
    status_.set_exited_ms(epoch_ms());
    exited_.store(true);
  }
  cv_.notify_all();
  if (env_.on_exit) env_.on_exit();
}

}  // namespace cohort::runner
