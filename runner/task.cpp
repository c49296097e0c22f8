#include "task.hpp"

#include <unistd.h>

#include <charconv>
#include <csignal>
#include <fstream>
#include <iterator>
#include <map>

#include "cohort/log.hpp"
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

std::vector<std::string> job_environment(const std::vector<std::string>& base, const v1::Assignment& a,
                                         const std::string& node_name, const fs::path& progress_file) {
  std::vector<std::string> order;
  std::map<std::string, std::string> values;
  auto set = [&](const std::string& name, const std::string& value) {
    if (name.empty() || name.find('=') != std::string::npos) return;
    if (values.emplace(name, value).second) {
      order.push_back(name);
    } else {
      values[name] = value;
    }
  };
  for (const auto& entry : base) {
    const auto eq = entry.find('=');
    if (eq != std::string::npos) set(entry.substr(0, eq), entry.substr(eq + 1));
  }
  for (const auto& [name, value] : a.environment())
    set(name, value);
  std::string addresses;
  for (const auto& address : a.node_addresses())
    addresses += (addresses.empty() ? "" : ",") + address;
  set("COHORT_JOB_ID", a.job());
  set("COHORT_ATTEMPT", std::to_string(a.attempt()));
  set("COHORT_NODE_RANK", std::to_string(a.node_rank()));
  set("COHORT_NUM_NODES", std::to_string(a.num_nodes()));
  set("COHORT_NODE_NAME", node_name);
  set("COHORT_NODE_ADDRESSES", addresses);
  set("COHORT_PROGRESS_FILE", progress_file.string());
  std::vector<std::string> out;
  for (const auto& name : order)
    out.push_back(name + "=" + values[name]);
  return out;
}

std::vector<std::string> runner_environment_for_jobs() {
  std::vector<std::string> out;
  for (char** e = environ; e != nullptr && *e != nullptr; ++e) {
    const std::string_view entry(*e);
    if (entry.starts_with("COHORT_JOIN_TOKEN=") || entry.starts_with("COHORT_TOKEN=")) continue;
    out.emplace_back(entry);
  }
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
  if (ec) return Status(Code::kIoError, "cannot create " + (dir_ / "code").string() + ": " + ec.message());
  std::ofstream(log_path(), std::ios::app).flush();  // the log exists from the start, for the shipper
  if (!assignment_.has_code()) return {};
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

void Task::run() {
  const std::string name = "job " + assignment_.job() + " attempt " + std::to_string(assignment_.attempt());
  auto stop_cause = [this] {
    std::lock_guard lock(mu_);
    return stop_cause_;
  };
  if (auto stopped = stop_cause()) return finish(ExitStatus{0, SIGTERM}, *stopped + " (before it started)");
  if (Status s = prepare(); !s.ok()) {
    logger()->error("{}: {}", name, s.message());
    note(s.message());
    return finish(ExitStatus{127, 0}, "could not start: " + s.message());
  }
  if (auto stopped = stop_cause()) return finish(ExitStatus{0, SIGTERM}, *stopped + " (before it started)");
  JobProcessSpec spec{assignment_.command(), dir_ / "code", log_path(),
                      job_environment(env_.base_environment, assignment_, env_.node_name, progress_path())};
  auto process = env_.spawner->start(spec);
  if (!process.ok()) {
    logger()->error("{}: {}", name, process.status().message());
    note(process.status().message());
    return finish(ExitStatus{127, 0}, "could not start: " + process.status().message());
  }
  {
    std::lock_guard lock(mu_);
    status_.set_state("running");
    status_.set_started_ms(epoch_ms());
  }
  logger()->info("{}: started `{}` (process group {})", name, assignment_.command(), process->process_group());
  watch(*process);
}

void Task::watch(JobProcess& process) {
  const auto started = Clock::now();
  const auto timeout = std::chrono::seconds(assignment_.timeout_s());
  std::optional<Clock::time_point> term_sent;
  bool kill_sent = false;
  for (;;) {
    auto ended = process.wait_for(kTick);
    read_progress();
    if (ended.ok() && ended->has_value()) {
      std::string cause;
      ExitStatus st = **ended;
      {
        std::lock_guard lock(mu_);
        if (stop_cause_ && term_sent) cause = *stop_cause_;
      }
      const bool timed_out = cause.starts_with("timed out");
      if (timed_out && st.success()) st.code = 124;  // a job that exits 0 on SIGTERM still timed out
      return finish(st, cause.empty() ? describe(st) : timed_out ? cause : cause + ": " + describe(st));
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
      (void)process.signal_group(SIGTERM);
      term_sent = now;
    } else if (term_sent && !kill_sent && now - *term_sent >= env_.stop_grace) {
      logger()->warn("job {} attempt {}: still running {} ms after SIGTERM: SIGKILL", assignment_.job(),
                     assignment_.attempt(), env_.stop_grace.count());
      (void)process.signal_group(SIGKILL);
      kill_sent = true;
    }
  }
}

void Task::read_progress() {
  std::error_code ec;
  const auto mtime = fs::last_write_time(progress_path(), ec);
  if (ec || mtime == progress_mtime_) return;
  std::ifstream in(progress_path());
  const std::string text{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
  const auto step = parse_progress(text);
  if (!step) return;  // half written: read again next tick
  progress_mtime_ = mtime;
  const auto when = std::chrono::file_clock::to_sys(mtime);
  std::lock_guard lock(mu_);
  status_.set_last_step(*step);
  status_.set_last_progress_ms(epoch_ms(std::chrono::time_point_cast<std::chrono::system_clock::duration>(when)));
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
