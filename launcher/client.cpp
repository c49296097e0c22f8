#include "client.hpp"

#include "config.hpp"

namespace cohort::cli {

void add_connection_options(CLI::App* verb, ConnectionOptions& options) {
  verb->add_option("--manager", options.manager, "Manager address HOST:PORT (default: $COHORT_MANAGER)");
  verb->add_option("--token", options.token, "Bearer token (default: $COHORT_TOKEN)");
  verb->add_option("--ca", options.ca_file, "PEM CA certificate: TLS to the manager (default: $COHORT_CA)");
}

Result<Client> Client::connect(const ConnectionOptions& options) {
  COHORT_ASSIGN_OR_RETURN(rpc::Endpoint endpoint,
                          rpc::resolve_endpoint(options.manager, options.token, options.ca_file));
  COHORT_ASSIGN_OR_RETURN(auto channel, rpc::make_channel(endpoint));
  return Client(std::move(endpoint), std::move(channel));
}

Client::Client(rpc::Endpoint endpoint, std::shared_ptr<grpc::Channel> channel)
    : endpoint_(std::move(endpoint)),
      channel_(std::move(channel)),
      clusters_(v1::ClusterService::NewStub(channel_)),
      jobs_(v1::JobService::NewStub(channel_)),
      nodes_(v1::NodeService::NewStub(channel_)) {}

void Client::prepare(grpc::ClientContext& context) const {
  prepare(context, config::get(config::kCallDeadline));
}

void Client::prepare(grpc::ClientContext& context, std::chrono::milliseconds deadline) const {
  rpc::prepare(context, endpoint_.token, deadline);
}

}  // namespace cohort::cli
