// A test double of the manager's RunnerService, for running the real cohort-runner against:
// it checks the join token and the node credential as the manager does, records every request,
// hands out assignments (again and again until the runner reports them, as the manager does),
// stops, drain and shutdown, collects logs and serves a code snapshot. It can be stopped and
// started again on the same port, with its memory kept or lost.
#pragma once

#include <grpcpp/grpcpp.h>

#include <chrono>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "cohort/v1/cohort.grpc.pb.h"
#include "rpc.hpp"

namespace cohort::testing {

struct FakeManagerState {
  using Clock = std::chrono::steady_clock;

  std::mutex mu;
  std::condition_variable cv;
  // Set by the test (under mu).
  std::string join_token = "join-secret";
  std::int64_t interval_ms = 100;
  std::vector<v1::Assignment> assigned;  // sent in `start` while the runner does not report them
  std::vector<v1::StopTask> stops;       // sent once
  // Sent once, in the reply to the first heartbeat that reports the job running: a stop that
  // reaches the runner as early as a manager's can.
  std::map<std::string, v1::StopTask> stops_once_running;
  bool drain = false;
  bool shutdown = false;
  std::string code_tar_gz;
  std::chrono::milliseconds code_delay{0};
  // Recorded.
  std::set<std::string> credentials;
  std::vector<v1::RegisterRequest> registrations;
  std::vector<std::pair<Clock::time_point, v1::HeartbeatRequest>> heartbeats;
  std::map<std::string, std::string> logs;  // by job
  int code_downloads = 0;

  // Waits (bounded) until pred() holds, with mu held while it is checked.
  template <typename Pred>
  bool wait(Pred pred, std::chrono::milliseconds timeout) {
    std::unique_lock lock(mu);
    return cv.wait_for(lock, timeout, pred);
  }
  // The latest status the runner reported for `job` (heartbeats, then registrations).
  std::optional<v1::TaskStatus> last_status(const std::string& job) {
    for (auto it = heartbeats.rbegin(); it != heartbeats.rend(); ++it) {
      for (const auto& t : it->second.tasks()) {
        if (t.job() == job) return t;
      }
    }
    return std::nullopt;
  }
};

class FakeRunnerService final : public v1::RunnerService::Service {
 public:
  explicit FakeRunnerService(FakeManagerState& s) : s_(s) {}

  grpc::Status Register(grpc::ServerContext* ctx, const v1::RegisterRequest* rq, v1::RegisterResponse* out) override {
    std::lock_guard lock(s_.mu);
    if (rpc::bearer_token(*ctx) != s_.join_token) return {grpc::StatusCode::PERMISSION_DENIED, "wrong join token"};
    s_.registrations.push_back(*rq);
    const std::string credential = "credential-" + std::to_string(s_.registrations.size());
    s_.credentials.insert(credential);
    out->set_node_name(rq->node_name().empty() ? "static-1" : rq->node_name());
    out->set_credential(credential);
    out->set_heartbeat_interval_ms(s_.interval_ms);
    s_.cv.notify_all();
    return grpc::Status::OK;
  }

  grpc::Status Heartbeat(grpc::ServerContext* ctx, const v1::HeartbeatRequest* rq,
                         v1::HeartbeatResponse* out) override {
    std::lock_guard lock(s_.mu);
    if (!s_.credentials.contains(rpc::bearer_token(*ctx))) {
      return {grpc::StatusCode::PERMISSION_DENIED, "unknown node credential"};
    }
    s_.heartbeats.emplace_back(FakeManagerState::Clock::now(), *rq);
    for (const auto& a : s_.assigned) {
      bool reported = false;
      for (const auto& t : rq->tasks())
        reported = reported || (t.job() == a.job() && t.attempt() == a.attempt());
      if (!reported) *out->add_start() = a;
    }
    for (const auto& t : rq->tasks()) {
      if (t.state() != "exited") continue;
      auto* f = out->add_forget();
      f->set_job(t.job());
      f->set_attempt(t.attempt());
    }
    for (const auto& stop : s_.stops)
      *out->add_stop() = stop;
    for (const auto& t : rq->tasks()) {
      auto it = s_.stops_once_running.find(t.job());
      if (t.state() != "running" || it == s_.stops_once_running.end()) continue;
      *out->add_stop() = it->second;
      s_.stops_once_running.erase(it);
    }
    s_.stops.clear();
    out->set_drain(s_.drain);
    out->set_shutdown(s_.shutdown);
    out->set_heartbeat_interval_ms(s_.interval_ms);
    s_.cv.notify_all();
    return grpc::Status::OK;
  }

  grpc::Status AppendLogs(grpc::ServerContext* ctx, const v1::AppendLogsRequest* rq, v1::AppendLogsResponse*) override {
    std::lock_guard lock(s_.mu);
    if (!s_.credentials.contains(rpc::bearer_token(*ctx))) {
      return {grpc::StatusCode::PERMISSION_DENIED, "unknown node credential"};
    }
    s_.logs[rq->job()] += rq->data();
    s_.cv.notify_all();
    return grpc::Status::OK;
  }

  grpc::Status GetCode(grpc::ServerContext* ctx, const v1::GetCodeRequest*,
                       grpc::ServerWriter<v1::CodeChunk>* writer) override {
    std::string code;
    std::chrono::milliseconds delay;
    {
      std::lock_guard lock(s_.mu);
      if (!s_.credentials.contains(rpc::bearer_token(*ctx))) {
        return {grpc::StatusCode::PERMISSION_DENIED, "unknown node credential"};
      }
      ++s_.code_downloads;
      code = s_.code_tar_gz;
      delay = s_.code_delay;
    }
    std::this_thread::sleep_for(delay);  // a slow download: heartbeats must go on meanwhile
    const std::size_t third = code.size() / 3 + 1;
    for (std::size_t at = 0; at < code.size(); at += third) {
      v1::CodeChunk chunk;
      chunk.set_data(code.substr(at, third));
      if (!writer->Write(chunk)) break;
    }
    return grpc::Status::OK;
  }

 private:
  FakeManagerState& s_;
};

// The double's server: start on 127.0.0.1:0 (or a given port), stop, start again on that port.
class FakeManager {
 public:
  FakeManagerState state;

  bool start(int port = 0) {
    service_ = std::make_unique<FakeRunnerService>(state);
    grpc::ServerBuilder builder;
    int bound = 0;
    builder.AddListeningPort("127.0.0.1:" + std::to_string(port), grpc::InsecureServerCredentials(), &bound);
    builder.RegisterService(service_.get());
    server_ = builder.BuildAndStart();
    if (!server_ || bound == 0) return false;
    port_ = bound;
    return true;
  }
  void stop() {
    if (server_) server_->Shutdown(std::chrono::system_clock::now() + std::chrono::milliseconds(500));
    server_.reset();
    service_.reset();
  }
  // Forgets every node, as a manager whose state was restored from before they registered.
  void forget_nodes() {
    std::lock_guard lock(state.mu);
    state.credentials.clear();
  }
  ~FakeManager() { stop(); }

  int port() const { return port_; }
  std::string address() const { return "127.0.0.1:" + std::to_string(port_); }

 private:
  std::unique_ptr<FakeRunnerService> service_;
  std::unique_ptr<grpc::Server> server_;
  int port_ = 0;
};

}  // namespace cohort::testing
