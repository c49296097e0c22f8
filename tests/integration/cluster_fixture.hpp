// A real cluster for a test: `cohort up` in a state directory of its own, the CLI against it, and
// on teardown `cohort down` plus a check that no process of that directory outlived it.
#pragma once

#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>
#include <regex>
#include <thread>

#include "local_nodes.hpp"
#include "test_support.hpp"

namespace cohort::testing {

namespace fs = std::filesystem;
using namespace std::chrono;
using json = nlohmann::json;

// The digits example's final accuracy in its output ("test_accuracy=0.9694"), "" without one.
inline std::string accuracy_in(const std::string& logs) {
  std::smatch m;
  return std::regex_search(logs, m, std::regex("test_accuracy=([0-9.]+)")) ? m[1].str() : "";
}

inline std::string read_word(const fs::path& p) {
  std::ifstream in(p);
  std::string w;
  in >> w;
  return w;
}

class ClusterFixture : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / unique_job_id("cohort-cluster-test");
    fs::create_directories(dir_);
    watcher_ = std::jthread([this](std::stop_token stop) { hold_node_namespaces(stop); });
    up();
  }

  void TearDown() override {
    if (HasFailure()) print_logs();
    auto r = run_captured({.argv = {bin("cohort"), "down", "--state-dir", dir_.string()}}, seconds(30));
    watcher_.request_stop();
    if (watcher_.joinable()) watcher_.join();
    EXPECT_TRUE(r.ok() && r->status.success()) << (r.ok() ? r->err : r.status().to_string());
    // Nothing of this state directory may outlive the test.
    for (pid_t pid : processes_mentioning(dir_.string())) {
      ADD_FAILURE() << "process " << pid << " of " << dir_ << " outlived `cohort down`";
      ::kill(pid, SIGKILL);
    }
    expect_no_node_left();
    fs::remove_all(dir_);
  }

  // No node's namespace holds a process (a job's ranks find no runner path in their command
  // line), no node keeps a container bundle or runc state (a removed node's disk goes with it;
  // a stopped runner removes its own), and nothing is mounted under the state directory.
  void expect_no_node_left() {
    std::error_code ec;
    for (const auto& node : fs::directory_iterator(dir_ / "nodes", ec)) {
      if (!node.is_directory()) continue;
      ino_t recorded = 0;
      std::ifstream(node.path() / "netns") >> recorded;
      // As root every node is a namespace of its own, and the provider records which.
      if (::geteuid() == 0) {
        EXPECT_NE(recorded, 0u) << "no namespace recorded for " << node.path();
      }
      // Only a namespace held since the node was seen is known to be this node's (not a later
      // node's, of this test or another, which the kernel gave the same number).
      const auto held = held_namespaces_.find(node.path().filename().string());
      const ino_t ns = held != held_namespaces_.end() && held->second.inode() == recorded ? recorded : 0;
      std::vector<pid_t> left;
      wait_until([&] { return (left = processes_in_net_namespace(ns)).empty(); }, seconds(10));
      for (pid_t pid : left) {
        ADD_FAILURE() << "process " << pid << " still runs in the network namespace of node "
                      << node.path().filename().string();
        ::kill(pid, SIGKILL);
      }
      std::error_code e2;
      for (const auto& job : fs::directory_iterator(node.path() / "work" / "jobs", e2)) {
        for (const auto& attempt : fs::directory_iterator(job.path(), e2)) {
          EXPECT_FALSE(fs::exists(attempt.path() / "bundle")) << "a container bundle left: " << attempt.path();
        }
      }
      for (const auto& c : fs::directory_iterator(node.path() / "work" / "runc", e2))
        ADD_FAILURE() << "a runc container left: " << c.path();
    }
    std::ifstream mounts("/proc/self/mountinfo");
    for (std::string line; std::getline(mounts, line);)
      EXPECT_EQ(line.find(dir_.string()), std::string::npos) << "a mount left: " << line;
  }

  // A failed test's evidence before `cohort down` removes it: the end of the manager's and every
  // runner's log.
  void print_logs() const {
    std::vector<fs::path> logs{dir_ / "manager.log"};
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(dir_ / "nodes", ec))
      if (fs::exists(e.path() / "runner.log")) logs.push_back(e.path() / "runner.log");
    for (const auto& log : logs) {
      std::ifstream in(log);
      std::vector<std::string> lines;
      for (std::string line; std::getline(in, line);)
        lines.push_back(line);
      std::cerr << "---- the last lines of " << log.string() << "\n";
      for (std::size_t i = lines.size() > 40 ? lines.size() - 40 : 0; i < lines.size(); ++i)
        std::cerr << lines[i] << "\n";
    }
  }

  // More flags for `cohort up` (a fixture for a TLS manager adds --tls).
  virtual std::vector<std::string> up_flags() const { return {}; }

  void up() {
    std::vector<std::string> argv = {bin("cohort"), "up", "--state-dir", dir_.string()};
    for (const auto& flag : up_flags())
      argv.push_back(flag);
    auto r = run_captured({.argv = argv}, seconds(60));
    ASSERT_TRUE(r.ok() && r->status.success()) << (r.ok() ? r->out + r->err : r.status().to_string());
    std::ifstream env(dir_ / "env");
    std::string line;
    while (std::getline(env, line)) {
      const auto eq = line.find('=');
      if (line.rfind("COHORT_MANAGER=", 0) == 0) address_ = line.substr(eq + 1);
      if (line.rfind("COHORT_TOKEN=", 0) == 0) token_ = line.substr(eq + 1);
      if (line.rfind("COHORT_CA=", 0) == 0) ca_ = line.substr(eq + 1);
    }
    ASSERT_FALSE(address_.empty());
    ASSERT_FALSE(token_.empty());
  }

  // "pid 12 (sleep) state S, ..." from /proc: what a failed wait for processes to end left.
  static std::string describe_processes(const std::vector<pid_t>& pids) {
    std::string out;
    for (pid_t pid : pids) {
      std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
      std::string s;
      std::getline(stat, s);
      const auto open = s.find('('), close = s.rfind(')');
      out += (out.empty() ? "" : ", ") + std::string("pid ") + std::to_string(pid);
      if (open != std::string::npos && close != std::string::npos && close + 2 < s.size())
        out += " " + s.substr(open, close - open + 1) + " state " + s[close + 2];
    }
    return out;
  }

  static std::vector<pid_t> processes_mentioning(const std::string& text) {
    std::vector<pid_t> out;
    for (const auto& e : fs::directory_iterator("/proc")) {
      const std::string name = e.path().filename();
      if (name.find_first_not_of("0123456789") != std::string::npos) continue;
      std::ifstream in(e.path() / "cmdline");
      std::string cmd((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
      std::ifstream stat(e.path() / "stat");
      std::string s;
      std::getline(stat, s);
      const auto paren = s.rfind(')');
      const bool zombie = paren != std::string::npos && paren + 2 < s.size() && s[paren + 2] == 'Z';
      if (!zombie && cmd.find(text) != std::string::npos) out.push_back(std::stoi(name));
    }
    return out;
  }

  Captured cohort(std::vector<std::string> args, milliseconds timeout = seconds(60)) {
    args.insert(args.begin(), bin("cohort"));
    auto r = run_captured(
        {.argv = args, .env = {{"COHORT_MANAGER", address_}, {"COHORT_TOKEN", token_}, {"COHORT_CA", ca_}}}, timeout);
    EXPECT_TRUE(r.ok()) << r.status().to_string();
    return r.ok() ? *r : Captured{};
  }

  json cohort_json(std::vector<std::string> args) {
    args.insert(args.end(), {"--output", "json"});
    Captured r = cohort(args);
    EXPECT_TRUE(r.status.success()) << r.err;
    try {
      return json::parse(r.out);
    } catch (const std::exception& e) {
      ADD_FAILURE() << "not JSON: " << r.out << " (" << e.what() << ")";
      return json();
    }
  }

  void create_cluster(int min, int max, int idle, const std::string& priority = "dedicated") {
    Captured r = cohort({"cluster", "create", "cpu", "--vm-size", "local", "--min-nodes", std::to_string(min),
                         "--max-nodes", std::to_string(max), "--idle-seconds-before-scaledown", std::to_string(idle),
                         "--vm-priority", priority});
    ASSERT_TRUE(r.status.success()) << r.out << r.err;
  }

  // A job directory: job.yaml and its code.
  fs::path write_job(const std::string& name, int nodes, const std::string& script) {
    const fs::path d = dir_ / ("job-" + name);
    fs::create_directories(d / "code");
    std::ofstream(d / "code" / "work.sh") << script;
    std::ofstream(d / "job.yaml") << "name: " << name << "\ncommand: sh work.sh\ncode: code\ncompute: cpu\n"
                                  << "resources:\n  instance_count: " << nodes << "\n";
    return d / "job.yaml";
  }

  // A job directory whose code holds example-digits, the libcohort it links and the data, so it
  // runs in a container with the host image (which mounts only the node's /usr, /etc and /opt).
  fs::path digits_job(const std::string& name, const std::string& yaml) {
    const fs::path d = dir_ / ("job-" + name);
    fs::create_directories(d / "code");
    const fs::path digits = bin("example-digits");
    for (const fs::path& f : {digits, digits.parent_path().parent_path() / "lib" / "libcohort.so.0"})
      fs::copy_file(fs::canonical(f), d / "code" / f.filename(), fs::copy_options::overwrite_existing);
    fs::copy_file(fs::path(COHORT_SOURCE_DIR) / "examples" / "data" / "digits.csv.gz", d / "code" / "digits.csv.gz",
                  fs::copy_options::overwrite_existing);
    std::ofstream(d / "job.yaml") << "name: " << name << "\ncode: code\ncompute: cpu\n"
                                  << "environment_variables: {LD_LIBRARY_PATH: .}\n"
                                  << yaml;
    return d / "job.yaml";
  }

  // `cohort job submit SPEC`; the job's id ("" after a failed EXPECT).
  std::string submit_job(const fs::path& spec) {
    Captured r = cohort({"job", "submit", spec.string()});
    EXPECT_TRUE(r.status.success()) << r.err;
    return r.status.success() ? r.out.substr(0, r.out.find('\n')) : "";
  }

  // Waits (bounded) until job `id` is running and `ready(job)` holds; returns the job's JSON as
  // last read (check its state: a timeout is an EXPECT failure, not an ASSERT).
  template <typename Ready>
  json wait_for_running(const std::string& id, Ready ready, milliseconds timeout) {
    json job;
    const bool ok = wait_until(
        [&] {
          job = cohort_json({"job", "show", id});
          return job.value("state", "") == "running" && ready(job);
        },
        timeout);
    EXPECT_TRUE(ok) << job.dump(2);
    return job;
  }

  json nodes() { return cohort_json({"node", "list"}); }

  std::string node_state(const std::string& name) {
    for (const auto& n : nodes())
      if (n["name"] == name) return n.value("state", "");
    return "";
  }

  // Waits (bounded) until the node is in `state`; returns its last state.
  std::string wait_for_node_state(const std::string& name, const std::string& state, milliseconds timeout) {
    std::string now;
    wait_until([&] { return (now = node_state(name)) == state; }, timeout);
    return now;
  }

  int live_nodes() {
    int n = 0;
    for (const auto& node : nodes()) {
      const std::string s = node.value("state", "");
      n += s == "provisioning" || s == "idle" || s == "busy" || s == "draining";
    }
    return n;
  }

  template <typename F>
  bool wait_until(F f, milliseconds timeout) {
    const auto deadline = steady_clock::now() + timeout;
    while (steady_clock::now() < deadline) {
      if (f()) return true;
      std::this_thread::sleep_for(milliseconds(100));
    }
    return f();
  }

  std::string job_state(const std::string& id) { return cohort_json({"job", "show", id}).value("state", ""); }

  // An int64 field of a job's JSON, which protobuf writes as a string ("0" when absent).
  static std::int64_t int64_of(const json& j, const std::string& field) {
    if (!j.contains(field)) return 0;
    return j[field].is_string() ? std::stoll(j[field].get<std::string>()) : j[field].get<std::int64_t>();
  }

  // Holds each node's namespace from when its number is recorded (polled), for
  // expect_no_node_left(): a namespace's number is its own only while someone holds it.
  void hold_node_namespaces(const std::stop_token& stop) {
    while (!stop.stop_requested()) {
      std::error_code ec;
      for (const auto& node : fs::directory_iterator(dir_ / "nodes", ec)) {
        const std::string name = node.path().filename().string();
        if (held_namespaces_.contains(name)) continue;
        ino_t recorded = 0;
        std::ifstream(node.path() / "netns") >> recorded;
        const std::string pid = read_word(node.path() / "runner.pid");
        if (recorded == 0 || pid.empty()) continue;
        auto ns = NetNamespaceRef::of_process(std::stoi(pid));
        if (ns.ok() && ns->inode() == recorded) held_namespaces_.emplace(name, std::move(ns).value());
      }
      std::this_thread::sleep_for(milliseconds(20));
    }
  }

  fs::path dir_;
  std::string address_, token_, ca_;                        // ca_: the manager's certificate when it speaks TLS
  std::map<std::string, NetNamespaceRef> held_namespaces_;  // by node; written by watcher_ alone until it ends
  std::jthread watcher_;
};

}  // namespace cohort::testing
