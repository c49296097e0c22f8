// The runner's side of RunnerService: one object per runner, holding the node's name and
// credential once registered. Every call has a deadline. Heartbeats go over a channel of their
// own, so a code download or a burst of logs never queues in front of them.
#pragma once

#include <atomic>
#include <chrono>
#include <filesystem>
#include <memory>
#include <mutex>
#include <set>
#include <string>

#include "cohort/status.hpp"
#include "cohort/v1/cohort.grpc.pb.h"
#include "rpc.hpp"

namespace cohort::runner {

struct ClientTimeouts {
  std::chrono::milliseconds call;        // Register, Heartbeat, AppendLogs
  std::chrono::milliseconds reconnect;   // the longest wait between attempts to reach a manager that is away
  std::chrono::milliseconds code_fetch;  // GetCode, a whole snapshot
};

class ManagerClient {
 public:
  static Result<std::unique_ptr<ManagerClient>> connect(const rpc::Endpoint& endpoint, ClientTimeouts timeouts);

  // Registers with the join token; on success later calls use the node name and credential.
  Result<v1::RegisterResponse> register_node(const v1::RegisterRequest& request, const std::string& join_token);
  // Fills in the node's name.
  Result<v1::HeartbeatResponse> heartbeat(v1::HeartbeatRequest request);
  Status append_logs(const std::string& job, int attempt, std::string_view data);
  // The manager's doorbell: the node's work version once it differs from `known`, or after `wait`.
  // Canceled by cancel_downloads, like a download.
  Result<std::int64_t> wait_for_work(std::int64_t known, std::chrono::milliseconds wait);
  // Downloads the job's code snapshot to `destination`, checking it against `digest` (sha256 hex)
  // when one is given.
  Status get_code(const std::string& job, const std::string& digest, const std::filesystem::path& destination);

  // From now on calls fail at once when the manager cannot be reached, instead of waiting for it
  // up to their deadline: for the last calls of a runner that is shutting down.
  void fail_fast() { wait_for_ready_.store(false); }

  // Cancels every code download in flight and fails later ones: the runner is shutting down.
  void cancel_downloads();

  std::string node_name() const;
  const std::string& address() const { return address_; }

 private:
  ManagerClient(std::string address, std::shared_ptr<grpc::Channel> control, std::shared_ptr<grpc::Channel> bulk,
                ClientTimeouts timeouts);
  std::pair<std::string, std::string> session() const;  // node name, credential
  void prepare(grpc::ClientContext& ctx, std::string_view token, std::chrono::milliseconds deadline) const;
  Status check(const grpc::Status& s, std::string_view call, grpc::Channel& channel) const;

  const std::string address_;
  const ClientTimeouts timeouts_;
  const std::shared_ptr<grpc::Channel> control_channel_;
  const std::shared_ptr<grpc::Channel> bulk_channel_;
  std::unique_ptr<v1::RunnerService::Stub> control_;  // Register, Heartbeat
  std::unique_ptr<v1::RunnerService::Stub> bulk_;     // AppendLogs, GetCode
  mutable std::mutex mu_;
  std::string node_name_;                     // guarded by mu_
  std::string credential_;                    // guarded by mu_
  std::set<grpc::ClientContext*> downloads_;  // guarded by mu_; each owned by its get_code or wait_for_work call
  bool cancelled_ = false;                    // guarded by mu_
  std::atomic<bool> wait_for_ready_{true};
};

}  // namespace cohort::runner
