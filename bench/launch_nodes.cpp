// cohort-bench launch --nodes N: submit-to-all-ranks-running of an N-node MPI job through a real
// Cohort cluster (`cohort up`, local namespace nodes, each rank in a runc container) against bare
// `mpirun` across the very same namespaces (Open MPI's rsh agent entering them, plain processes),
// alternating the two. Every rank writes the wall-clock time it started to a shared directory;
// a launch ends when the last rank of the job has written it. Image unpack and container start
// are reported apart, from the attempt's timings.
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "rank_report.hpp"
#include "subprocess.hpp"

namespace {

namespace fs = std::filesystem;
using namespace std::chrono;
using json = nlohmann::json;

double median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const std::size_t n = v.size();
  return n % 2 == 1 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

std::int64_t wall_ns() {
  return duration_cast<nanoseconds>(system_clock::now().time_since_epoch()).count();
}

class NodesBench {
 public:
  NodesBench(int nodes, int per_node) : nodes_(nodes), per_node_(per_node) {}

  ~NodesBench() {
    if (!dir_.empty()) {
      (void)cohort::run_captured({.argv = {cli_, "down", "--state-dir", dir_.string()}}, seconds(60));
      // COHORT_KEEP_BENCH_DIR keeps the manager's and the runners' logs, for a launch's timeline.
      std::error_code ec;
      if (std::getenv("COHORT_KEEP_BENCH_DIR") == nullptr) fs::remove_all(dir_, ec);
    }
  }

  // `cohort up`, a static cluster of N local nodes, and the nodes' addresses and namespaces.
  bool set_up() {
    const fs::path self = fs::read_symlink("/proc/self/exe").parent_path();
    cli_ = (self / "cohort").string();
    exec_ = (self / "cohort-exec").string();
    dir_ = fs::temp_directory_path() / ("cohort-bench-launch-" + std::to_string(::getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_ / "marks");
    // The job's user (not root) writes its marks here.
    fs::permissions(dir_ / "marks", fs::perms::all | fs::perms::sticky_bit);
    progress("starting a cluster manager in " + dir_.string());
    auto up = cohort::run_captured({.argv = {cli_, "up", "--state-dir", dir_.string()}}, seconds(60));
    if (!ok(up, "cohort up")) return false;
    std::ifstream env(dir_ / "env");
    for (std::string line; std::getline(env, line);) {
      const auto eq = line.find('=');
      if (line.starts_with("COHORT_MANAGER=")) manager_ = line.substr(eq + 1);
      if (line.starts_with("COHORT_TOKEN=")) token_ = line.substr(eq + 1);
    }
    const std::string n = std::to_string(nodes_);
    if (!cli({"cluster", "create", "bench", "--vm-size", "local", "--min-nodes", n, "--max-nodes", n,
              "--idle-seconds-before-scaledown", "3600"})) {
      return false;
    }
    progress("waiting for " + n + " idle node(s)");
    const auto until = steady_clock::now() + seconds(120);
    while (steady_clock::now() < until) {
      auto list = cli_json({"node", "list"});
      addresses_.clear();
      namespaces_.clear();
      for (const auto& node : list) {
        if (node.value("state", "") != "idle") continue;
        const std::string name = node.value("name", "");
        const std::string address = node.value("address", "");
        std::ifstream pid_file(dir_ / "nodes" / name / "runner.pid");
        pid_t pid = 0;
        pid_file >> pid;
        if (address.empty() || pid <= 0) continue;
        addresses_.push_back(address);
        // The runner lives in its node's namespaces: they are the node's.
        namespaces_ += (namespaces_.empty() ? "" : ",") + address + "=" + std::to_string(pid);
      }
      if (static_cast<int>(addresses_.size()) == nodes_) break;
      std::this_thread::sleep_for(milliseconds(200));
    }
    if (static_cast<int>(addresses_.size()) != nodes_) {
      std::fprintf(stderr, "cohort-bench launch: %d node(s) were not idle after 120 s\n", nodes_);
      return false;
    }
    return true;
  }

  // A job spec whose ranks write their marks under marks/NAME.
  fs::path write_spec(const std::string& name) {
    const fs::path spec = dir_ / (name + ".yaml");
    std::ofstream(spec) << "name: launch-bench\ncompute: bench\n"
                        << "command: date +%s%N > ${{outputs.marks}}/" << name << "/rank-$OMPI_COMM_WORLD_RANK\n"
                        << "distribution: {type: mpi, process_count_per_instance: " << per_node_ << "}\n"
                        << "resources: {instance_count: " << nodes_ << "}\n"
                        << "outputs: {marks: {path: " << (dir_ / "marks").string() << "}}\n";
    return spec;
  }

  // Submit to the last rank's mark; the job must then succeed. Nullopt when it did not.
  std::optional<double> cohort_once(int trial, double* container_start_s, double* unpack_s) {
    const std::string marks = "cohort-" + std::to_string(trial);
    if (!make_marks(marks)) return std::nullopt;
    const fs::path spec = write_spec(marks);
    const std::int64_t start = wall_ns();
    auto submitted = run({cli_, "job", "submit", spec.string()});
    if (!ok(submitted, "cohort job submit")) return std::nullopt;
    const std::string id = submitted->out.substr(0, submitted->out.find('\n'));
    auto last = wait_marks(marks);
    // The next trial needs the nodes free: wait for the end.
    json job;
    const auto until = steady_clock::now() + seconds(120);
    while (steady_clock::now() < until) {
      job = cli_json({"job", "show", id});
      const std::string state = job.value("state", "");
      if (state == "succeeded" || state == "failed" || state == "canceled") break;
      std::this_thread::sleep_for(milliseconds(20));
    }
    if (job.value("state", "") != "succeeded" || !last) {
      std::fprintf(stderr, "cohort-bench launch: job %s ended %s: %s\n", id.c_str(), job.value("state", "?").c_str(),
                   job.value("message", "").c_str());
      return std::nullopt;
    }
    const auto& attempts = job["attempts"];
    if (!attempts.empty()) {
      const auto& timings = attempts.back()["timings"];
      *container_start_s = timings.value("container_start_s", 0.0);
      *unpack_s = timings.value("image_unpack_s", 0.0);
    }
    return static_cast<double>(*last - start) / 1e6;
  }

  // A job whose last rank exits 7 while the others sleep: from that rank's end (its own report)
  // until every node's container of the attempt is gone (its bundle is removed after `runc
  // delete`, once no process of it is left). Nullopt when the job did not end as it should.
  struct Teardown {
    double ranks_ms = 0;       // to the last rank report's end (a rank Open MPI SIGKILLs has none)
    double containers_ms = 0;  // to every container gone (Open MPI's daemons included)
  };
  std::optional<Teardown> teardown_once(int trial) {
    const std::string name = "teardown-" + std::to_string(trial);
    const fs::path spec = dir_ / (name + ".yaml");
    const int last = nodes_ * per_node_ - 1;
    std::ofstream(spec) << "name: " << name << "\ncompute: bench\n"
                        << "command: if [ $OMPI_COMM_WORLD_RANK = " << last
                        << " ]; then sleep 0.5; exit 7; fi; sleep 60\n"
                        << "distribution: {type: mpi, process_count_per_instance: " << per_node_ << "}\n"
                        << "resources: {instance_count: " << nodes_ << "}\n";
    auto submitted = run({cli_, "job", "submit", spec.string()});
    if (!ok(submitted, "cohort job submit")) return std::nullopt;
    const std::string id = submitted->out.substr(0, submitted->out.find('\n'));
    std::vector<fs::path> attempts;
    for (const auto& node : fs::directory_iterator(dir_ / "nodes"))
      attempts.push_back(node.path() / "work" / "jobs" / id / "1");
    std::int64_t failed = 0, gone = 0;
    const auto until = steady_clock::now() + seconds(60);
    while (steady_clock::now() < until && gone == 0) {
      for (const auto& a : attempts) {
        for (const auto& r : cohort::read_reports(a / "run"))
          if (r.rank == last && failed == 0) failed = r.end_ns;
      }
      const bool started = std::any_of(attempts.begin(), attempts.end(),
                                       [](const fs::path& a) { return fs::exists(a / "run" / "ready"); });
      const bool left =
          std::any_of(attempts.begin(), attempts.end(), [](const fs::path& a) { return fs::exists(a / "bundle"); });
      if (failed != 0 && started && !left) gone = wall_ns();
      std::this_thread::sleep_for(milliseconds(2));
    }
    json job = cli_json({"job", "show", id});
    if (gone == 0 || job.value("state", "") != "failed") {
      progress("job " + id + " did not fail and end within 60 s: " + job.value("state", "?") + ": " +
               job.value("message", ""));
      return std::nullopt;
    }
    std::int64_t last_rank = failed;
    for (const auto& a : attempts) {
      for (const auto& r : cohort::read_reports(a / "run"))
        last_rank = std::max(last_rank, r.end_ns);
    }
    return Teardown{static_cast<double>(last_rank - failed) / 1e6, static_cast<double>(gone - failed) / 1e6};
  }

  // The same ranks, the same hosts and slots, from the first node's namespaces.
  std::optional<double> mpirun_once(int trial) {
    const std::string marks = "mpirun-" + std::to_string(trial);
    if (!make_marks(marks)) return std::nullopt;
    std::string hosts;
    for (const auto& a : addresses_)
      hosts += (hosts.empty() ? "" : ",") + a + ":" + std::to_string(per_node_);
    std::vector<std::string> argv = {exec_, "node", addresses_.front(), "mpirun"};
    if (geteuid() == 0) argv.push_back("--allow-run-as-root");
    argv.insert(argv.end(), {"-np",
                             std::to_string(nodes_ * per_node_),
                             "--host",
                             hosts,
                             "--map-by",
                             "slot",
                             "--bind-to",
                             "none",
                             "--oversubscribe",
                             "--mca",
                             "plm_rsh_agent",
                             "'" + exec_ + " node'",
                             "--mca",
                             "plm_rsh_no_tree_spawn",
                             "1",
                             "-x",
                             "COHORT_NODE_NAMESPACES",
                             "sh",
                             "-c",
                             "'date +%s%N > " + (dir_ / "marks" / marks).string() + "/rank-$OMPI_COMM_WORLD_RANK'"});
    const std::int64_t start = wall_ns();
    auto r = cohort::run_captured({.argv = argv, .env = {{"COHORT_NODE_NAMESPACES", namespaces_}}}, seconds(60));
    if (!ok(r, "mpirun")) return std::nullopt;
    auto last = wait_marks(marks);
    if (!last) return std::nullopt;
    return static_cast<double>(*last - start) / 1e6;
  }

 private:
  static void progress(const std::string& what) { std::fprintf(stderr, "cohort-bench launch: %s\n", what.c_str()); }

  static bool ok(const cohort::Result<cohort::Captured>& r, const std::string& what) {
    if (r.ok() && !r->timed_out && r->status.success()) return true;
    std::fprintf(stderr, "cohort-bench launch: %s failed: %s\n%s%s\n", what.c_str(),
                 r.ok() ? r->status.describe().c_str() : r.status().to_string().c_str(), r.ok() ? r->out.c_str() : "",
                 r.ok() ? r->err.c_str() : "");
    return false;
  }

  cohort::Result<cohort::Captured> run(const std::vector<std::string>& argv) const {
    return cohort::run_captured({.argv = argv, .env = {{"COHORT_MANAGER", manager_}, {"COHORT_TOKEN", token_}}},
                                seconds(60));
  }

  bool cli(std::vector<std::string> args) {
    args.insert(args.begin(), cli_);
    return ok(run(args), args[1] + " " + args[2]);
  }

  json cli_json(std::vector<std::string> args) {
    args.insert(args.begin(), cli_);
    args.insert(args.end(), {"--output", "json"});
    auto r = run(args);
    if (!r.ok() || !r->status.success()) return json();
    try {
      return json::parse(r->out);
    } catch (const std::exception&) {
      return json();
    }
  }

  bool make_marks(const std::string& name) {
    std::error_code ec;
    fs::create_directories(dir_ / "marks" / name, ec);
    fs::permissions(dir_ / "marks" / name, fs::perms::all, ec);
    if (ec) progress("cannot make " + (dir_ / "marks" / name).string() + ": " + ec.message());
    return !ec;
  }

  // The latest start time of every rank, once all have written theirs (60 s at most).
  std::optional<std::int64_t> wait_marks(const std::string& name) {
    const int ranks = nodes_ * per_node_;
    const auto until = steady_clock::now() + seconds(60);
    while (steady_clock::now() < until) {
      std::int64_t latest = 0;
      int seen = 0;
      for (int r = 0; r < ranks; ++r) {
        std::ifstream in(dir_ / "marks" / name / ("rank-" + std::to_string(r)));
        std::int64_t t = 0;
        if (in >> t) {
          ++seen;
          latest = std::max(latest, t);
        }
      }
      if (seen == ranks) return latest;
      std::this_thread::sleep_for(milliseconds(1));
    }
    progress("not every rank of " + name + " started within 60 s");
    return std::nullopt;
  }

  int nodes_, per_node_;
  fs::path dir_;
  std::string cli_, exec_, manager_, token_, namespaces_;
  std::vector<std::string> addresses_;
};

}  // namespace

int bench_launch_nodes(int nodes, int per_node, int runs, bool json_output) {
  if (geteuid() != 0) {
    std::fprintf(stderr, "cohort-bench launch --nodes: local namespace nodes need root\n");
    return 1;
  }
  NodesBench bench(nodes, per_node);
  if (!bench.set_up()) return 1;
  std::vector<double> cohort_ms, mpirun_ms, container_s, unpack_s;
  double c = 0, u = 0;
  // One untimed run each: the first container and the first mpirun pay for caches.
  if (!bench.cohort_once(0, &c, &u) || !bench.mpirun_once(0)) return 1;
  for (int i = 1; i <= runs; ++i) {
    auto m = bench.mpirun_once(i);
    auto k = bench.cohort_once(i, &c, &u);
    if (!m || !k) return 1;
    mpirun_ms.push_back(*m);
    cohort_ms.push_back(*k);
    container_s.push_back(c * 1000);
    unpack_s.push_back(u * 1000);
    std::fprintf(stderr, "cohort-bench launch: run %d/%d: cohort %.1f ms, mpirun %.1f ms\n", i, runs, *k, *m);
  }
  std::vector<double> teardown_ms, ranks_down_ms;
  for (int i = 1; i <= std::max(3, runs / 3); ++i) {
    auto t = bench.teardown_once(i);
    if (!t) return 1;
    teardown_ms.push_back(t->containers_ms);
    ranks_down_ms.push_back(t->ranks_ms);
    std::fprintf(stderr, "cohort-bench launch: gang teardown %d: ranks %.1f ms, containers %.1f ms\n", i, t->ranks_ms,
                 t->containers_ms);
  }
  const double cm = median(cohort_ms), mm = median(mpirun_ms);
  if (json_output) {
    std::printf(
        "{\"bench\":\"launch\",\"nodes\":%d,\"ranks_per_node\":%d,\"runs\":%d,\"cohort_median_ms\":%.2f,"
        "\"mpirun_median_ms\":%.2f,\"ratio\":%.3f,\"container_start_median_ms\":%.2f,\"image_unpack_median_ms\":%.2f,"
        "\"gang_teardown_ranks_max_ms\":%.2f,\"gang_teardown_max_ms\":%.2f}\n",
        nodes, per_node, runs, cm, mm, cm / mm, median(container_s), median(unpack_s),
        *std::max_element(ranks_down_ms.begin(), ranks_down_ms.end()),
        *std::max_element(teardown_ms.begin(), teardown_ms.end()));
    return 0;
  }
  std::printf("submit to all %d ranks running, %d nodes x %d ranks, %d runs each\n", nodes * per_node, nodes, per_node,
              runs);
  std::printf("%-44s %10s %10s %10s\n", "launch", "median_ms", "min_ms", "max_ms");
  auto row = [](const char* name, const std::vector<double>& v) {
    std::printf("%-44s %10.1f %10.1f %10.1f\n", name, median(v), *std::min_element(v.begin(), v.end()),
                *std::max_element(v.begin(), v.end()));
  };
  row("mpirun across the nodes' namespaces (plain)", mpirun_ms);
  row("cohort job submit (runc containers)", cohort_ms);
  row("  of which: submit to every container up", container_s);
  row("  image unpack (apart; host image: none)", unpack_s);
  std::printf("ratio cohort/mpirun (median): %.3f\n", cm / mm);
  std::printf(
      "gang teardown after the first failing rank's end (%zu jobs): ranks' last report median %.1f ms, max "
      "%.1f ms; every container gone median %.1f ms, max %.1f ms\n",
      teardown_ms.size(), median(ranks_down_ms), *std::max_element(ranks_down_ms.begin(), ranks_down_ms.end()),
      median(teardown_ms), *std::max_element(teardown_ms.begin(), teardown_ms.end()));
  return 0;
}
