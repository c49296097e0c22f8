// cohort-bench manager: N simulated runners heartbeating at 1 Hz against a real cohort-manager
// process. Registers N nodes of a static cluster, sends every node's heartbeat once a second
// (spread evenly over the second) through asynchronous gRPC on a few connections, and reports
// the heartbeat latency percentiles and the manager's CPU use over the measured window; then
// stops one node's heartbeats and times how long the manager takes to call it lost.
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <mutex>
#include <sstream>
#include <thread>
#include <vector>

#include "cohort/v1/cohort.grpc.pb.h"
#include "rpc.hpp"
#include "subprocess.hpp"

namespace {

namespace fs = std::filesystem;
using namespace std::chrono;
using namespace cohort;

struct SimNode {
  std::string name;
  std::string credential;
};

struct Pending {
  grpc::ClientContext ctx;
  v1::HeartbeatResponse response;
  grpc::Status status;
  steady_clock::time_point sent;
  std::unique_ptr<grpc::ClientAsyncResponseReader<v1::HeartbeatResponse>> reader;
};

double cpu_seconds(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  std::getline(in, line);
  const auto close = line.rfind(')');
  if (close == std::string::npos) return 0;
  std::istringstream rest(line.substr(close + 2));
  std::string field;
  unsigned long long utime = 0, stime = 0;
  for (int i = 3; i <= 15 && rest >> field; ++i) {
    if (i == 14) utime = std::stoull(field);
    if (i == 15) stime = std::stoull(field);
  }
  return static_cast<double>(utime + stime) / static_cast<double>(sysconf(_SC_CLK_TCK));
}

double percentile(std::vector<double>& v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<std::size_t>(p * static_cast<double>(v.size())))];
}

std::string read_word(const fs::path& p) {
  std::ifstream in(p);
  std::string w;
  in >> w;
  return w;
}

class Bench {
 public:
  Bench(int nodes, int seconds, int channels) : n_(nodes), seconds_(seconds), channels_(channels) {}

  int run(bool json) {
    dir_ = fs::temp_directory_path() / ("cohort-bench-manager-" + std::to_string(::getpid()));
    fs::remove_all(dir_);
    const fs::path self = fs::read_symlink("/proc/self/exe").parent_path();
    auto init =
        run_captured({.argv = {(self / "cohort-manager").string(), "init", "--state-dir", dir_.string()}}, seconds(60));
    if (!init.ok() || !init->status.success()) return fail("cohort-manager init failed");
    auto started = Subprocess::spawn(
        {.argv = {(self / "cohort-manager").string(), "--log-level", "warn", "serve", "--state-dir", dir_.string()}});
    if (!started.ok()) return fail(started.status().to_string());
    manager_ = std::make_unique<Subprocess>(std::move(started).value());
    const int rc = measure(json);
    manager_->terminate(seconds(5));
    fs::remove_all(dir_);
    return rc;
  }

 private:
  int fail(const std::string& why) {
    std::fprintf(stderr, "cohort-bench manager: %s\n", why.c_str());
    if (manager_) manager_->terminate(seconds(2));
    std::error_code ec;
    fs::remove_all(dir_, ec);
    return 1;
  }

  int measure(bool json) {
    std::string address;
    for (int i = 0; i < 300 && address.empty(); ++i) {
      std::this_thread::sleep_for(milliseconds(50));
      address = read_word(dir_ / "manager.addr");
    }
    if (address.empty()) return fail("the manager did not start");
    admin_ = read_word(dir_ / "admin-token");
    const std::string join = read_word(dir_ / "join-token");
    for (int i = 0; i < channels_; ++i) {
      grpc::ChannelArguments args;
      args.SetInt("cohort.bench.connection", i);  // distinct arguments: a connection each
      stubs_.push_back(
          v1::RunnerService::NewStub(grpc::CreateCustomChannel(address, grpc::InsecureChannelCredentials(), args)));
    }
    auto admin_channel = grpc::CreateChannel(address, grpc::InsecureChannelCredentials());
    auto clusters = v1::ClusterService::NewStub(admin_channel);
    nodes_stub_ = v1::NodeService::NewStub(admin_channel);
    {
      grpc::ClientContext ctx;
      rpc::prepare(ctx, admin_, seconds(10));
      v1::CreateClusterRequest rq;
      rq.mutable_spec()->set_name("bench");
      rq.mutable_spec()->set_vm_size("local");
      rq.mutable_spec()->set_max_nodes(n_);
      rq.mutable_spec()->set_provider("static");
      v1::Cluster out;
      if (auto s = clusters->CreateCluster(&ctx, rq, &out); !s.ok()) return fail(s.error_message());
    }
    const auto reg_start = steady_clock::now();
    nodes_.resize(static_cast<std::size_t>(n_));
    std::atomic<int> next{0}, failures{0};
    std::vector<std::thread> registrars;
    for (int t = 0; t < 8; ++t) {
      registrars.emplace_back([&, t] {
        for (int i = next++; i < n_; i = next++) {
          grpc::ClientContext ctx;
          rpc::prepare(ctx, join, seconds(60));
          v1::RegisterRequest rq;
          rq.set_cluster("bench");
          rq.set_hostname("sim-" + std::to_string(i));
          rq.set_address("10.99." + std::to_string(i / 250) + "." + std::to_string(i % 250));
          rq.set_cores(2);
          v1::RegisterResponse out;
          if (!stubs_[static_cast<std::size_t>(t % channels_)]->Register(&ctx, rq, &out).ok()) {
            ++failures;
            continue;
          }
          nodes_[static_cast<std::size_t>(i)] = {out.node_name(), out.credential()};
        }
      });
    }
    for (auto& t : registrars)
      t.join();
    if (failures > 0) return fail(std::to_string(failures.load()) + " registrations failed");
    const double register_s = duration<double>(steady_clock::now() - reg_start).count();

    // Warm up for 2 s, measure for seconds_, at 1 Hz per node.
    std::vector<double> latencies;
    int errors = 0;
    run_heartbeats(seconds(2), -1, nullptr, errors);
    const double cpu0 = cpu_seconds(manager_->pid());
    const auto t0 = steady_clock::now();
    errors = 0;
    run_heartbeats(seconds(seconds_), -1, &latencies, errors);
    const double wall = duration<double>(steady_clock::now() - t0).count();
    const double cpu = (cpu_seconds(manager_->pid()) - cpu0) / wall;
    const double rate = static_cast<double>(latencies.size()) / wall;
    const double p50 = percentile(latencies, 0.50), p99 = percentile(latencies, 0.99),
                 max = latencies.empty() ? 0 : latencies.back();
    // Lost-node detection: node 0 goes silent, the others keep beating.
    const double detect_s = detection_seconds();

    if (json) {
      std::printf(
          "{\"nodes\":%d,\"register_s\":%.3f,\"heartbeats_per_s\":%.1f,\"p50_ms\":%.3f,\"p99_ms\":%.3f,"
          "\"max_ms\":%.3f,\"manager_cpu_cores\":%.3f,\"errors\":%d,\"lost_detection_s\":%.3f}\n",
          n_, register_s, rate, p50, p99, max, cpu, errors, detect_s);
    } else {
      std::printf("%8s %12s %10s %10s %10s %10s %12s %8s %14s\n", "nodes", "register_s", "hb/s", "p50_ms", "p99_ms",
                  "max_ms", "manager_cpu", "errors", "lost_detect_s");
      std::printf("%8d %12.2f %10.1f %10.3f %10.3f %10.3f %12.3f %8d %14.2f\n", n_, register_s, rate, p50, p99, max,
                  cpu, errors, detect_s);
    }
    return errors == 0 ? 0 : 1;
  }

  // Sends every node's heartbeat once a second for `length`, skipping node `silent`.
  void run_heartbeats(steady_clock::duration length, int silent, std::vector<double>* latencies, int& errors) {
    grpc::CompletionQueue cq;
    std::atomic<bool> sending{true};
    std::mutex mu;
    std::thread reaper([&] {
      void* tag = nullptr;
      bool ok = false;
      while (cq.Next(&tag, &ok)) {
        std::unique_ptr<Pending> p(static_cast<Pending*>(tag));
        const double ms = duration<double, std::milli>(steady_clock::now() - p->sent).count();
        std::lock_guard lock(mu);
        if (!ok || !p->status.ok()) {
          ++errors;
        } else if (latencies) {
          latencies->push_back(ms);
        }
      }
    });
    const auto start = steady_clock::now();
    const auto period = duration_cast<steady_clock::duration>(seconds(1));
    for (std::int64_t k = 0;; ++k) {
      const auto due = start + period * k / n_;
      if (due - start >= length) break;
      std::this_thread::sleep_until(due);
      const int i = static_cast<int>(k % n_);
      if (i == silent) continue;
      if (i == 0) last_beat0_ = steady_clock::now();
      auto* p = new Pending;
      const SimNode& node = nodes_[static_cast<std::size_t>(i)];
      rpc::prepare(p->ctx, node.credential, seconds(5));
      v1::HeartbeatRequest rq;
      rq.set_node_name(node.name);
      rq.set_sequence(k / n_);
      rq.mutable_usage()->set_cpu_cores_used(0.5);
      p->sent = steady_clock::now();
      p->reader = stubs_[static_cast<std::size_t>(i % channels_)]->AsyncHeartbeat(&p->ctx, rq, &cq);
      p->reader->Finish(&p->response, &p->status, p);
    }
    sending = false;
    cq.Shutdown();
    reaper.join();
  }

  // From node 0's last heartbeat to the manager calling it lost.
  double detection_seconds() {
    std::atomic<bool> stop{false};
    const auto silent_from = last_beat0_;
    double detected = -1;
    std::thread watcher([&] {
      while (!stop) {
        grpc::ClientContext ctx;
        rpc::prepare(ctx, admin_, seconds(10));
        v1::ListNodesRequest rq;
        rq.set_cluster("bench");
        v1::ListNodesResponse out;
        if (nodes_stub_->ListNodes(&ctx, rq, &out).ok()) {
          for (const auto& n : out.nodes()) {
            if (n.name() == nodes_[0].name && n.state() == "lost") {
              detected = duration<double>(steady_clock::now() - silent_from).count();
              stop = true;
            }
          }
        }
        std::this_thread::sleep_for(milliseconds(100));
      }
    });
    int errors = 0;
    for (int i = 0; i < 20 && !stop; ++i)
      run_heartbeats(seconds(1), 0, nullptr, errors);
    stop = true;
    watcher.join();
    return detected;
  }

  int n_, seconds_, channels_;
  fs::path dir_;
  std::string admin_;
  std::unique_ptr<Subprocess> manager_;
  std::vector<std::unique_ptr<v1::RunnerService::Stub>> stubs_;
  std::unique_ptr<v1::NodeService::Stub> nodes_stub_;
  std::vector<SimNode> nodes_;
  steady_clock::time_point last_beat0_;
};

}  // namespace

int bench_manager(int argc, char** argv) {
  CLI::App app{"N simulated runners heartbeating at 1 Hz against a real cohort-manager"};
  int nodes = 1000, secs = 10, channels = 4;
  bool json = false;
  app.add_option("--nodes", nodes, "simulated nodes")->check(CLI::Range(1, 100000));
  app.add_option("--seconds", secs, "measured seconds (after a 2 s warm-up)")->check(CLI::Range(1, 3600));
  app.add_option("--connections", channels, "gRPC connections the simulated nodes share")->check(CLI::Range(1, 64));
  app.add_flag("--json", json, "one JSON object instead of the table");
  CLI11_PARSE(app, argc, argv);
  return Bench(nodes, secs, channels).run(json);
}
