// cohort-bench launch: what Cohort adds to a launch. Times `cohort run -n N true` against
// `mpirun -np N true` (the command a user would type instead), alternating the two so drift in
// the machine's load falls on both, and prints the medians and their ratio. With --nodes, the
// multi-node comparison of launch_nodes.cpp.
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include "subprocess.hpp"

namespace {

struct Series {
  std::string name;
  std::vector<std::string> argv;
  std::vector<double> ms;
};

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const std::size_t n = v.size();
  return n % 2 == 1 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

// One timed run; false (with the reason printed) when it did not succeed.
bool time_once(Series& s, bool record) {
  const auto start = std::chrono::steady_clock::now();
  auto r = cohort::run_captured({.argv = s.argv}, std::chrono::seconds(60));
  const std::chrono::duration<double, std::milli> took = std::chrono::steady_clock::now() - start;
  if (!r.ok() || r->timed_out || !r->status.success()) {
    std::fprintf(stderr, "cohort-bench launch: `%s` failed: %s\n%s", s.name.c_str(),
                 r.ok() ? r->status.describe().c_str() : r.status().to_string().c_str(), r.ok() ? r->err.c_str() : "");
    return false;
  }
  if (record) s.ms.push_back(took.count());
  return true;
}

}  // namespace

int bench_launch_nodes(int nodes, int per_node, int runs, bool json);

int bench_launch(int argc, char** argv) {
  CLI::App app{
      "Median launch time of `cohort run -n N true` against `mpirun -np N true`; with --nodes, "
      "submit-to-all-ranks-running of a multi-node job against mpirun across the same nodes"};
  int ranks = 4;
  int runs = 10;
  bool json = false;
  app.add_option("-n,--np", ranks, "ranks per launch")->check(CLI::Range(1, 256));
  app.add_option("-r,--runs", runs, "timed runs of each command (at least 5)")->check(CLI::Range(5, 10000));
  app.add_flag("--json", json, "one JSON object instead of the table");
  int nodes = 0;
  app.add_option("--nodes", nodes,
                 "instead: an MPI job of --np ranks per node on this many local namespace nodes, submitted to a "
                 "cluster (containers) against bare mpirun across the same namespaces (root)")
      ->check(CLI::Range(1, 16));
  CLI11_PARSE(app, argc, argv);
  if (nodes > 0) return bench_launch_nodes(nodes, ranks, runs, json);

  const auto self = std::filesystem::read_symlink("/proc/self/exe").parent_path();
  const std::string np = std::to_string(ranks);
  std::vector<std::string> mpirun = {"mpirun"};
  if (geteuid() == 0) mpirun.push_back("--allow-run-as-root");
  mpirun.insert(mpirun.end(), {"-np", np, "--oversubscribe", "true"});
  Series cohort{"cohort run -n " + np + " true", {(self / "cohort").string(), "run", "-n", np, "true"}, {}};
  Series baseline{"mpirun -np " + np + " true", mpirun, {}};

  // One untimed run each: the first mpirun on a machine pays for caches the rest reuse.
  if (!time_once(cohort, false) || !time_once(baseline, false)) return 1;
  for (int i = 0; i < runs; ++i) {
    if (!time_once(baseline, true) || !time_once(cohort, true)) return 1;
  }
  const double c = median(cohort.ms);
  const double b = median(baseline.ms);
  if (json) {
    std::printf(
        "{\"bench\":\"launch\",\"ranks\":%d,\"runs\":%d,\"cohort_median_ms\":%.2f,\"mpirun_median_ms\":%.2f,"
        "\"ratio\":%.3f}\n",
        ranks, runs, c, b, c / b);
    return 0;
  }
  std::printf("%-28s %6s %10s %10s %10s\n", "command", "runs", "median_ms", "min_ms", "max_ms");
  for (const Series* s : {&baseline, &cohort}) {
    std::printf("%-28s %6zu %10.2f %10.2f %10.2f\n", s->name.c_str(), s->ms.size(), median(s->ms),
                *std::min_element(s->ms.begin(), s->ms.end()), *std::max_element(s->ms.begin(), s->ms.end()));
  }
  std::printf("ratio cohort/mpirun (median): %.3f\n", c / b);
  return 0;
}
