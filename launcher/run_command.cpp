#include "run_command.hpp"

#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <chrono>
#include <csignal>
#include <cstdlib>
#include <memory>
#include <random>

#include "cohort/collectives.hpp"
#include "local_nodes.hpp"
#include "mpirun_command.hpp"
#include "orphans.hpp"
#include "rank_report.hpp"
#include "subprocess.hpp"

namespace cohort {
namespace {

// After `cohort run` is told to stop, mpirun gets this long to stop the ranks before it is
// killed; Open MPI itself escalates SIGTERM to SIGKILL on the ranks within a few seconds.
constexpr auto kStopGrace = std::chrono::seconds(10);
// What a process the job left behind gets between SIGTERM and SIGKILL once the job is over.
constexpr auto kOrphanGrace = std::chrono::milliseconds(2000);
// Once a rank has failed, the others may go on for a grace period before they are stopped: ranks
// blocked in a collective with it give up after the collective timeout and report which peer they
// lost. Twice that timeout (a rank may enter its collective up to one timeout after the failure)
// plus kReportSlack, to print and exit; never more than kMaxFailureGrace, so that a job whose
// ranks would wait longer (the library's default timeout is minutes) still ends promptly.
constexpr auto kReportSlack = std::chrono::seconds(1);
constexpr auto kMaxFailureGrace = std::chrono::seconds(10);
// How often `cohort run` looks for the ranks' exit reports while the job runs.
constexpr auto kWatchInterval = std::chrono::milliseconds(100);

std::atomic<int> g_stop_signal{0};
std::atomic<pid_t> g_mpirun_pid{-1};

extern "C" void on_stop_signal(int sig) {
  g_stop_signal.store(sig);
  pid_t pid = g_mpirun_pid.load();
  if (pid > 0) ::kill(pid, sig);  // mpirun turns it into stopping every rank
}

void install_stop_handlers() {
  struct sigaction sa {};
  sa.sa_handler = on_stop_signal;
  sigemptyset(&sa.sa_mask);
  for (int sig : {SIGINT, SIGTERM, SIGHUP})
    sigaction(sig, &sa, nullptr);
}

// A directory for the ranks' reports, removed with everything in it on every return.
class RunDir {
 public:
  static Result<RunDir> create() {
    const char* tmp = std::getenv("TMPDIR");
    std::string pattern = std::string(tmp != nullptr && *tmp ? tmp : "/tmp") + "/cohort-run-XXXXXX";
    if (mkdtemp(pattern.data()) == nullptr) return errno_status("mkdtemp", errno, pattern);
    return RunDir(pattern);
  }
  RunDir(RunDir&& o) noexcept : path_(std::exchange(o.path_, {})) {}
  RunDir(const RunDir&) = delete;
  ~RunDir() {
    std::error_code ec;
    if (!path_.empty()) std::filesystem::remove_all(path_, ec);
  }
  const std::filesystem::path& path() const { return path_; }

 private:
  explicit RunDir(std::filesystem::path p) : path_(std::move(p)) {}
  std::filesystem::path path_;
};

std::string fresh_job_id() {
  std::random_device rd;
  const char* digits = "0123456789abcdef";
  std::string id = "run-";
  for (int i = 0; i < 8; ++i)
    id += digits[rd() % 16];
  return id;
}

Result<std::string> helper_path() {
  std::error_code ec;
  auto self = std::filesystem::read_symlink("/proc/self/exe", ec);
  if (ec) return Status(Code::kNotFound, "cannot find this program's path: " + ec.message());
  auto helper = self.parent_path() / "cohort-exec";
  if (access(helper.c_str(), X_OK) != 0) {
    return Status(Code::kNotFound, helper.string() + " is missing: cohort-exec must be installed beside cohort");
  }
  return helper.string();
}

// The failure grace for a job whose collectives give up after `collective_timeout`.
std::chrono::milliseconds failure_grace(std::chrono::milliseconds collective_timeout) {
  return std::min<std::chrono::milliseconds>(2 * collective_timeout + kReportSlack, kMaxFailureGrace);
}

// A rank that called Communicator::abort() leaves abort-RANK in the run directory: it wants the
// job ended now, not after the grace.
bool abort_requested(const std::filesystem::path& run_dir) {
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(run_dir, ec)) {
    if (entry.path().filename().string().rfind("abort-", 0) == 0) return true;
  }
  return false;
}

// What the job's status is, from mpirun's end and the ranks' reports; prints the summary. Under
// --enable-recovery mpirun exits 0 even when a rank failed, so the reports decide first.
int conclude(const ExitStatus& mpirun, const std::vector<RankReport>& reports, int ranks) {
  const bool all_succeeded =
      std::all_of(reports.begin(), reports.end(), [](const RankReport& r) { return r.status.success(); });
  if (mpirun.success() && static_cast<int>(reports.size()) == ranks && all_succeeded) {
    spdlog::debug("all {} ranks exited with code 0", ranks);
    return 0;
  }
  if (auto first = first_failure(reports)) {
    int stopped = 0;
    for (const auto& r : reports)
      stopped += r.stopped ? 1 : 0;
    spdlog::error("rank {} on host {} {} (the first rank to fail; {} of the other {} ranks were stopped after it)",
                  first->rank, first->host, first->status.describe(), stopped, ranks - 1);
    return first->status.shell_code();
  }
  if (int sig = g_stop_signal.load(); sig != 0) {
    spdlog::error("the job was stopped by {} before it finished", signal_name(sig));
    return 128 + sig;
  }
  std::string silent;
  int stopped = 0;
  for (int r = 0, i = 0; r < ranks; ++r) {
    if (i < static_cast<int>(reports.size()) && reports[static_cast<std::size_t>(i)].rank == r) {
      stopped += reports[static_cast<std::size_t>(i)].stopped ? 1 : 0;
      ++i;
    } else {
      silent += (silent.empty() ? "" : ", ") + std::to_string(r);
    }
  }
  if (!silent.empty()) {
    spdlog::error("mpirun {}; rank(s) {} reported no exit status (never started, or their wrapper was killed)",
                  mpirun.describe(), silent);
  } else if (stopped > 0) {
    spdlog::error("mpirun {}; no rank failed on its own, {} were stopped from outside", mpirun.describe(), stopped);
  } else {
    spdlog::error("mpirun {} although every rank exited with code 0", mpirun.describe());
  }
  return mpirun.success() ? 1 : mpirun.shell_code();
}

}  // namespace

Status validate(const RunOptions& o) {
  if (o.program.empty())
    return invalid_argument("no PROGRAM given: usage is `cohort run [-n NP] [--nodes K] [--] PROGRAM [ARGS...]`");
  if (o.ranks < 0)
    return invalid_argument("-n " + std::to_string(o.ranks) + ": the number of ranks must be at least 1");
  if (o.nodes < 0)
    return invalid_argument("--nodes " + std::to_string(o.nodes) + ": the number of nodes must be at least 1");
  for (char c : o.job_id) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '_' && c != '.') {
      return invalid_argument("--job-id '" + o.job_id + "' may hold only letters, digits, '-', '_' and '.'");
    }
  }
  if (o.nodes > 0 && o.ranks > 0 && o.nodes > o.ranks) {
    return invalid_argument("--nodes " + std::to_string(o.nodes) + " needs at least as many ranks (-n " +
                            std::to_string(o.ranks) + "): every node runs at least one rank");
  }
  return {};
}

int run_job(RunOptions o) {
  if (Status s = validate(o); !s.ok()) {
    spdlog::error("{}", s.message());
    return 2;
  }
  if (o.ranks == 0) o.ranks = std::max(1, o.nodes);
  if (o.job_id.empty()) {
    const char* env = std::getenv("COHORT_JOB_ID");
    o.job_id = env != nullptr && *env ? env : fresh_job_id();
    if (Status s = validate(o); !s.ok()) {
      spdlog::error("COHORT_JOB_ID: {}", s.message());
      return 2;
    }
  }
  // From here on every line names the job, as the ranks' own lines do.
  spdlog::default_logger()->set_pattern("cohort run [job " + o.job_id + "]: %^%l%$: %v");
  auto helper = helper_path();
  auto run_dir = RunDir::create();
  if (!helper.ok() || !run_dir.ok()) {
    spdlog::error("{}", (!helper.ok() ? helper.status() : run_dir.status()).message());
    return 1;
  }

  std::unique_ptr<LocalNodes> nodes;
  MpirunPlan plan;
  if (o.nodes > 0) {
    auto made = LocalNodes::create({.count = o.nodes});
    if (!made.ok()) {
      spdlog::error("--nodes {}: {}", o.nodes, made.status().message());
      return 1;
    }
    nodes = std::move(made).value();
    for (const auto& n : nodes->nodes()) {
      plan.hosts.push_back(n.hostname);
      spdlog::info("local test node {} at {}", n.hostname, n.address);
    }
  }

  std::string hosts_csv;
  for (const auto& h : plan.hosts)
    hosts_csv += (hosts_csv.empty() ? "" : ",") + h;
  SpawnOptions spawn;
  spawn.env = {{"COHORT_JOB_ID", o.job_id},
               {"COHORT_ATTEMPT", "1"},
               {"COHORT_RUN_DIR", run_dir->path().string()},
               {"COHORT_LOG_LEVEL", o.log_level}};
  if (!o.checkpoint_dir.empty())
    spawn.env.emplace_back("COHORT_CHECKPOINT_DIR", std::filesystem::absolute(o.checkpoint_dir).string());
  // The ranks' collective timeout sizes the failure grace; passed on so that ranks on other nodes
  // use the same one.
  std::chrono::milliseconds collective_timeout = CommunicatorOptions::kDefaultCollectiveTimeout;
  if (const char* v = std::getenv(std::string(kCollectiveTimeoutVariable).c_str()); v != nullptr) {
    auto parsed = CommunicatorOptions::parse_timeout(v);
    if (!parsed.ok()) {
      spdlog::error("{}", parsed.status().message());
      return 2;
    }
    collective_timeout = parsed.value();
    spawn.env.emplace_back(std::string(kCollectiveTimeoutVariable), v);
  }
  const std::chrono::milliseconds grace = failure_grace(collective_timeout);
  if (nodes) {
    spawn.env.emplace_back("COHORT_NODE_HOSTS", hosts_csv);
    spawn.env.emplace_back("COHORT_NODE_NAMESPACES", nodes->namespace_map());
    // mpirun runs on the first node, as the head of a multi-node job does.
    pid_t head = nodes->nodes().front().holder;
    spawn.in_child = [head] { return enter_node_namespaces(head); };
  }
  for (const auto& [name, value] : spawn.env)
    plan.exported_env.push_back(name);

  plan.exec_helper = helper.value();
  plan.ranks = o.ranks;
  plan.as_root = geteuid() == 0;
  plan.oversubscribed = o.ranks > sysconf(_SC_NPROCESSORS_ONLN);
  plan.program = o.program;
  spawn.argv = mpirun_argv(plan);
  // If `cohort run` dies, mpirun is told to stop the job rather than left running it.
  spawn.parent_death_signal = SIGTERM;

  spdlog::info("starting {} rank(s){} for job {}: {}", o.ranks,
               nodes ? " on " + std::to_string(o.nodes) + " local nodes" : std::string(), o.job_id, o.program.front());
  spdlog::debug("mpirun command: {}", fmt::join(spawn.argv, " "));
  install_stop_handlers();
  // Daemons the job starts (Open MPI's orted daemonizes) come back to us when orphaned, so none
  // outlives the run.
  if (Status s = become_subreaper(); !s.ok()) spdlog::warn("{}; processes the job orphans may outlive it", s.message());
  auto mpirun = Subprocess::spawn(spawn);
  if (!mpirun.ok()) {
    spdlog::error("cannot start mpirun: {}", mpirun.status().message());
    return 1;
  }
  g_mpirun_pid.store(mpirun->pid());
  using Clock = std::chrono::steady_clock;
  std::optional<ExitStatus> ended;
  std::optional<Clock::time_point> stop_deadline;
  std::optional<Clock::time_point> failure_deadline;  // when the ranks still running are stopped
  while (!ended) {
    auto r = mpirun->wait_for(kWatchInterval);
    if (r.ok() && r.value()) ended = *r.value();
    if (ended) continue;
    if (!failure_deadline && !stop_deadline) {
      if (auto first = first_failure(read_reports(run_dir->path()))) {
        const bool now = abort_requested(run_dir->path());
        failure_deadline = Clock::now() + (now ? std::chrono::milliseconds(0) : grace);
        spdlog::info("rank {} {}; {}", first->rank, first->status.describe(),
                     now ? "a rank asked to abort the job: stopping the others"
                         : fmt::format("the others may run {} ms more, to finish or report, before they are stopped",
                                       grace.count()));
      }
    }
    if (failure_deadline && !stop_deadline && Clock::now() >= *failure_deadline) {
      spdlog::info("stopping the ranks still running");
      (void)mpirun->signal(SIGTERM);  // mpirun turns it into stopping every rank
      stop_deadline = Clock::now() + kStopGrace;
    }
    if (g_stop_signal.load() == 0 && !stop_deadline) continue;
    if (!stop_deadline) stop_deadline = Clock::now() + kStopGrace;
    if (Clock::now() >= *stop_deadline) {
      spdlog::warn("mpirun did not stop within {} s; killing it", kStopGrace.count());
      ended = mpirun->terminate(std::chrono::milliseconds(0));
    }
  }
  g_mpirun_pid.store(-1);
  const int code = conclude(*ended, read_reports(run_dir->path()), o.ranks);
  nodes.reset();
  if (int left = end_remaining_children(kOrphanGrace); left > 0) {
    spdlog::debug("ended {} process(es) the job left behind", left);
  }
  return code;
}

}  // namespace cohort
