// cohort-bench recovery: what a lost node costs a job. On a real cluster (`cohort up`, local
// low-priority nodes; as root each a network namespace with runc containers) the digits example
// runs as a 2-node MPI job with checkpoints, and one node is taken away mid-run:
//   notice  `cohort node preempt NODE --notice-seconds 30`: notice -> durable checkpoint, lost
//           steps, notice -> the next attempt's first step;
//   kill    every process of the node SIGKILLed at once: kill -> node found lost, lost steps,
//           kill -> the next attempt's first step, against heartbeat_timeout + the job's first
//           launch + 5 s.
// The baseline is measured in the same run: the job's own first launch (allocation to first
// step), which every recovery has to pay again.
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "local_nodes.hpp"
#include "subprocess.hpp"

namespace {

namespace fs = std::filesystem;
using namespace std::chrono;
using json = nlohmann::json;

constexpr std::int64_t kHeartbeatTimeoutMs = 5000;  // config::kHeartbeatTimeout's default

std::int64_t now_ms() {
  return duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
}

std::int64_t int64_of(const json& j, const char* field) {
  if (!j.contains(field)) return 0;
  return j[field].is_string() ? std::stoll(j[field].get<std::string>()) : j[field].get<std::int64_t>();
}

// When an attempt took its first step: started_ms + first_progress_s.
std::int64_t first_step_ms(const json& a) {
  const double s = a.contains("timings") ? a["timings"].value("first_progress_s", 0.0) : 0.0;
  return s > 0 ? int64_of(a, "started_ms") + static_cast<std::int64_t>(s * 1000) : 0;
}

struct Outcome {
  std::string scenario;
  std::int64_t fresh_launch_ms = 0;  // attempt 1: allocation to first step (the baseline)
  std::int64_t to_durable_ms = -1;   // notice -> checkpoint durable
  std::int64_t detected_ms = -1;     // kill -> attempt ended as node_lost
  std::int64_t resumed_ms = 0;       // notice or kill -> the next attempt's first step
  std::int64_t relaunch_ms = 0;      // the next attempt: allocation to first step
  std::int64_t lost_steps = 0;
  std::int64_t checkpoint_every = 0;
};

class RecoveryBench {
 public:
  RecoveryBench(int epochs, int checkpoint_every, fs::path data)
      : epochs_(epochs), every_(checkpoint_every), data_(std::move(data)) {}
  ~RecoveryBench() {
    if (dir_.empty()) return;
    (void)cohort::run_captured({.argv = {cli_, "down", "--state-dir", dir_.string()}}, seconds(60));
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }

  bool set_up() {
    bin_ = fs::read_symlink("/proc/self/exe").parent_path();
    cli_ = (bin_ / "cohort").string();
    dir_ = fs::temp_directory_path() / ("cohort-bench-recovery-" + std::to_string(::getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    progress("starting a cluster manager in " + dir_.string());
    auto up = cohort::run_captured({.argv = {cli_, "up", "--state-dir", dir_.string()}}, seconds(60));
    if (!up.ok() || !up->status.success()) return fail("cohort up", up.ok() ? up->err : up.status().to_string());
    std::ifstream env(dir_ / "env");
    for (std::string line; std::getline(env, line);) {
      const auto eq = line.find('=');
      if (line.starts_with("COHORT_MANAGER=")) manager_ = line.substr(eq + 1);
      if (line.starts_with("COHORT_TOKEN=")) token_ = line.substr(eq + 1);
    }
    return cli({"cluster", "create", "bench", "--vm-size", "local", "--vm-priority", "lowpriority", "--min-nodes", "0",
                "--max-nodes", "3", "--idle-seconds-before-scaledown", "60"});
  }

  std::optional<Outcome> run(const std::string& scenario) {
    const fs::path job = dir_ / scenario;
    const fs::path ckpt = dir_ / (scenario + "-checkpoints");
    fs::create_directories(job / "code");
    for (const fs::path& f : {bin_ / "example-digits", bin_.parent_path() / "lib" / "libcohort.so.0", data_})
      fs::copy_file(fs::canonical(f), job / "code" / f.filename(), fs::copy_options::overwrite_existing);
    std::ofstream(job / "job.yaml") << "name: " << scenario << "\ncode: code\ncompute: bench\n"
                                    << "command: ./example-digits --epochs " << epochs_ << " --data "
                                    << data_.filename().string() << " --checkpoint-every " << every_ << "\n"
                                    << "distribution: {type: mpi, process_count_per_instance: 1}\n"
                                    << "resources: {instance_count: 2}\n"
                                    << "environment_variables: {LD_LIBRARY_PATH: .}\n"
                                    << "checkpoint: {dir: " << ckpt.string() << "}\n";
    auto submitted = captured({"job", "submit", (job / "job.yaml").string()});
    if (!submitted) return std::nullopt;
    const std::string id = submitted->substr(0, submitted->find('\n'));
    progress(scenario + ": job " + id + " submitted; waiting for its checkpoint of step " + std::to_string(2 * every_));
    // Mid-interval, past two checkpoints: a kill then loses what the interval had done.
    json j;
    const auto until = steady_clock::now() + seconds(180);
    while (steady_clock::now() < until) {
      j = cli_json({"job", "show", id});
      if (j.value("state", "") == "running" && newest_checkpoint(ckpt) >= 2 * every_) break;
      std::this_thread::sleep_for(milliseconds(20));
    }
    std::this_thread::sleep_for(milliseconds(300));
    if (j.value("state", "") != "running") return fail_opt(scenario + ": the job never got running: " + j.dump());
    const std::string victim = j["attempts"][0]["nodes"][1];
    const std::int64_t event_ms = now_ms();
    if (scenario == "notice") {
      progress("notice: preempting node " + victim + " with a 30 s notice");
      if (!cli({"node", "preempt", victim, "--notice-seconds", "30"})) return std::nullopt;
    } else {
      progress("kill: SIGKILL of every process of node " + victim);
      std::ifstream pid_file(dir_ / "nodes" / victim / "runner.pid");
      pid_t runner = 0;
      pid_file >> runner;
      auto killed = cohort::kill_node_processes(runner, "cohort-manager");
      if (!killed.ok()) return fail_opt("kill: " + killed.status().to_string());
    }
    const auto end = steady_clock::now() + seconds(300);
    while (steady_clock::now() < end) {
      j = cli_json({"job", "show", id});
      const std::string state = j.value("state", "");
      if (state == "succeeded") break;
      if (state == "failed" || state == "canceled") return fail_opt(scenario + ": the job " + state + ": " + j.dump());
      std::this_thread::sleep_for(milliseconds(100));
    }
    if (j.value("state", "") != "succeeded" || j["attempts"].size() < 2) {
      return fail_opt(scenario + ": no recovery within 300 s: " + j.dump());
    }
    const json& first = j["attempts"][0];
    const json& second = j["attempts"][1];
    Outcome o;
    o.scenario = scenario;
    o.checkpoint_every = every_;
    o.fresh_launch_ms = first_step_ms(first) - int64_of(first, "created_ms");
    o.relaunch_ms = first_step_ms(second) - int64_of(second, "created_ms");
    o.resumed_ms = first_step_ms(second) - (scenario == "notice" ? int64_of(first, "notice_ms") : event_ms);
    o.lost_steps = int64_of(first, "last_step") - int64_of(second, "start_step");
    if (scenario == "notice") {
      o.to_durable_ms = int64_of(first, "checkpoint_ms") - int64_of(first, "notice_ms");
    } else {
      o.detected_ms = int64_of(first, "ended_ms") - event_ms;
    }
    progress(scenario + ": " + first.value("end_reason", "?") + ", resumed at step " +
             std::to_string(int64_of(second, "start_step")) + " of " + std::to_string(int64_of(first, "last_step")) +
             "; attempt 2 timings " + second.value("timings", json::object()).dump());
    return o;
  }

 private:
  static std::int64_t newest_checkpoint(const fs::path& dir) {
    std::int64_t newest = -1;
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(dir, ec)) {
      const std::string name = e.path().filename();
      if (name.starts_with("step-") && name.find(".tmp") == std::string::npos && fs::exists(e.path() / "MANIFEST.json"))
        newest = std::max<std::int64_t>(newest, std::stoll(name.substr(5)));
    }
    return newest;
  }
  static void progress(const std::string& what) { std::fprintf(stderr, "cohort-bench recovery: %s\n", what.c_str()); }
  static bool fail(const std::string& what, const std::string& why) {
    progress(what + " failed: " + why);
    return false;
  }
  static std::optional<Outcome> fail_opt(const std::string& why) {
    progress(why);
    return std::nullopt;
  }
  std::optional<std::string> captured(std::vector<std::string> args) {
    args.insert(args.begin(), cli_);
    auto r = cohort::run_captured({.argv = args, .env = {{"COHORT_MANAGER", manager_}, {"COHORT_TOKEN", token_}}},
                                  seconds(60));
    if (!r.ok() || !r->status.success()) {
      fail(args[1] + " " + (args.size() > 2 ? args[2] : ""), r.ok() ? r->err : r.status().to_string());
      return std::nullopt;
    }
    return r->out;
  }
  bool cli(std::vector<std::string> args) { return captured(std::move(args)).has_value(); }
  json cli_json(std::vector<std::string> args) {
    args.insert(args.end(), {"--output", "json"});
    auto out = captured(std::move(args));
    if (!out) return json::object();
    return json::parse(*out, nullptr, false);
  }

  int epochs_, every_;
  fs::path data_, dir_, bin_;
  std::string cli_, manager_, token_;
};

}  // namespace

int bench_recovery(int argc, char** argv) {
  int epochs = 800, every = 1000;
  bool json_output = false;
  fs::path data = COHORT_DIGITS_DATA;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--json") {
      json_output = true;
    } else if (a == "--epochs" && i + 1 < argc) {
      epochs = std::atoi(argv[++i]);
    } else if (a == "--checkpoint-every" && i + 1 < argc) {
      every = std::atoi(argv[++i]);
    } else if (a == "--data" && i + 1 < argc) {
      data = argv[++i];
    } else {
      std::fprintf(stderr,
                   "usage: cohort-bench recovery [--epochs N (800)] [--checkpoint-every K (1000)] [--data FILE] "
                   "[--json]\n"
                   "  the digits example as a 2-node job on a local low-priority cluster; one node preempted with "
                   "a notice, then (another job) one node killed; what each cost\n");
      return 2;
    }
  }
  if (epochs < 10 || every < 10) {
    std::fprintf(stderr, "cohort-bench recovery: --epochs and --checkpoint-every must be at least 10\n");
    return 2;
  }
  if (!fs::exists(data)) {
    std::fprintf(stderr, "cohort-bench recovery: no digits data at %s (--data FILE)\n", data.c_str());
    return 2;
  }
  RecoveryBench bench(epochs, every, data);
  if (!bench.set_up()) return 1;
  std::vector<Outcome> rows;
  for (const char* scenario : {"notice", "kill"}) {
    auto o = bench.run(scenario);
    if (!o) return 1;
    rows.push_back(*o);
  }
  if (json_output) {
    for (const auto& o : rows) {
      json j = {
          {"scenario", o.scenario},
          {"fresh_launch_ms", o.fresh_launch_ms},
          {"relaunch_ms", o.relaunch_ms},
          {"resumed_ms", o.resumed_ms},
          {"lost_steps", o.lost_steps},
          {"checkpoint_every", o.checkpoint_every},
          {"resumed_vs_fresh_launch",
           o.fresh_launch_ms > 0 ? static_cast<double>(o.resumed_ms) / static_cast<double>(o.fresh_launch_ms) : 0.0}};
      if (o.to_durable_ms >= 0) j["notice_to_durable_ms"] = o.to_durable_ms;
      if (o.detected_ms >= 0) {
        j["detected_ms"] = o.detected_ms;
        j["budget_ms"] = kHeartbeatTimeoutMs + o.fresh_launch_ms + 5000;
      }
      std::printf("%s\n", j.dump().c_str());
    }
    return 0;
  }
  std::printf("%-8s %12s %10s %12s %12s %12s %12s %8s\n", "scenario", "to-durable", "lost", "detected", "resumed",
              "fresh-launch", "budget", "ratio");
  for (const auto& o : rows) {
    auto ms = [](std::int64_t v) {
      char b[32];
      std::snprintf(b, sizeof b, "%.2f s", static_cast<double>(v) / 1000.0);
      return std::string(b);
    };
    const std::string budget = o.scenario == "notice" ? "15.00 s" : ms(kHeartbeatTimeoutMs + o.fresh_launch_ms + 5000);
    std::printf(
        "%-8s %12s %10lld %12s %12s %12s %12s %7.2fx\n", o.scenario.c_str(),
        o.to_durable_ms >= 0 ? ms(o.to_durable_ms).c_str() : "-", static_cast<long long>(o.lost_steps),
        o.detected_ms >= 0 ? ms(o.detected_ms).c_str() : "-", ms(o.resumed_ms).c_str(), ms(o.fresh_launch_ms).c_str(),
        budget.c_str(),
        o.fresh_launch_ms > 0 ? static_cast<double>(o.resumed_ms) / static_cast<double>(o.fresh_launch_ms) : 0.0);
  }
  std::printf(
      "to-durable: notice -> checkpoint durable (budget: half a 30 s notice); lost: steps between the last one reached "
      "and the one resumed from (checkpoint every %lld); detected: kill -> attempt ended node_lost; resumed: notice or "
      "kill -> the next attempt's first step; budget (kill): heartbeat_timeout + the job's first launch + 5 s; ratio: "
      "resumed / the job's own first launch, in this run\n",
      static_cast<long long>(rows.front().checkpoint_every));
  return 0;
}
