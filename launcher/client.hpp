// The manager as the CLI sees it: where it is (flags, then COHORT_MANAGER / COHORT_TOKEN /
// COHORT_CA), one channel, the three user-facing service stubs, and unary calls that always carry
// the bearer token and a deadline (config::kCallDeadline).
#pragma once

#include <CLI/CLI.hpp>
#include <chrono>
#include <memory>
#include <string>
#include <string_view>

#include "cohort/status.hpp"
#include "cohort/v1/cohort.grpc.pb.h"
#include "rpc.hpp"

namespace cohort::cli {

struct ConnectionOptions {
  std::string manager;  // "" → COHORT_MANAGER
  std::string token;    // "" → COHORT_TOKEN
  std::string ca_file;  // "" → COHORT_CA
};

// Adds --manager, --token and --ca to a manager verb.
void add_connection_options(CLI::App* verb, ConnectionOptions& options);

class Client {
 public:
  // InvalidArgument (saying how to set one) when no manager address is given anywhere; NotFound
  // when the CA file cannot be read. Connects lazily: a manager that is down shows on the first call.
  static Result<Client> connect(const ConnectionOptions& options);

  v1::ClusterService::Stub& clusters() { return *clusters_; }
  v1::JobService::Stub& jobs() { return *jobs_; }
  v1::NodeService::Stub& nodes() { return *nodes_; }
  const rpc::Endpoint& endpoint() const { return endpoint_; }

  // One unary call named `name` in errors: `invoke(context, response)` does the stub call on a
  // context that already has the token and the deadline.
  template <typename Response, typename Invoke>
  Result<Response> call(std::string_view name, Invoke&& invoke) {
    grpc::ClientContext context;
    prepare(context);
    Response response;
    grpc::Status status = invoke(&context, &response);
    if (!status.ok()) return rpc::from_grpc(status, name, endpoint_.address);
    return response;
  }

  // Sets the token and the call deadline on a context (also for streaming calls).
  void prepare(grpc::ClientContext& context) const;
  // The same with another deadline: a followed log stream lives as long as its job.
  void prepare(grpc::ClientContext& context, std::chrono::milliseconds deadline) const;

 private:
  Client(rpc::Endpoint endpoint, std::shared_ptr<grpc::Channel> channel);

  rpc::Endpoint endpoint_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::ClusterService::Stub> clusters_;
  std::unique_ptr<v1::JobService::Stub> jobs_;
  std::unique_ptr<v1::NodeService::Stub> nodes_;
};

}  // namespace cohort::cli
