// What every gRPC client and server of Cohort shares: where the manager is, the bearer token on
// every call, the deadline on every call, TLS, and the mapping between gRPC's status and ours.
#pragma once

#include <grpcpp/grpcpp.h>

#include <chrono>
#include <memory>
#include <string>
#include <string_view>

#include "cohort/status.hpp"

namespace cohort::rpc {

struct Endpoint {
  std::string address;  // "host:port" or "unix:/path"
  std::string token;    // bearer token; "" sends none
  std::string ca_file;  // PEM roots: TLS when set, plaintext otherwise
  // PEM roots given inline, for a certificate pinned by whoever named the endpoint (a peer runner's,
  // from the manager): TLS when set, and it wins over ca_file.
  std::string ca_pem;
  // The name the server's certificate must carry, when it is not the address's host.
  std::string tls_name;
};

// Flags win over the environment (COHORT_MANAGER, COHORT_TOKEN, COHORT_CA). A missing address is
// an InvalidArgument that says how to get one.
Result<Endpoint> resolve_endpoint(std::string manager, std::string token, std::string ca_file);

// `args` may carry the caller's own settings (reconnect backoff, a distinct connection).
Result<std::shared_ptr<grpc::Channel>> make_channel(const Endpoint& endpoint,
                                                    grpc::ChannelArguments args = grpc::ChannelArguments());

// Sets the deadline and the `authorization: Bearer` metadata of one call.
void prepare(grpc::ClientContext& context, std::string_view token, std::chrono::milliseconds deadline);

// A failed call as our Status, naming the call and the address, with what to do next where that
// is clear (manager not running, token refused).
Status from_grpc(const grpc::Status& status, std::string_view call, std::string_view address);
grpc::Status to_grpc(const Status& status);

// The bearer token a call carried, "" when none.
std::string bearer_token(const grpc::ServerContext& context);

std::string random_token();  // 256 random bits (OpenSSL), hex
std::string sha256_hex(std::string_view data);
bool constant_time_equal(std::string_view a, std::string_view b);

}  // namespace cohort::rpc
