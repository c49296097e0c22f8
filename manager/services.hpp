// The gRPC services over a Manager: authentication (admin token, join token, node credentials)
// and the translation between the wire and the model. Refused calls are logged with the peer.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "cohort/v1/cohort.grpc.pb.h"
#include "manager.hpp"

namespace cohort::manager {

struct Tokens {
  std::string admin_hash;  // sha256 of the admin token
  std::string join_hash;   // sha256 of the join token
};

// The four services, each checking its callers, ready to register on a ServerBuilder.
std::vector<std::unique_ptr<grpc::Service>> make_services(Manager& manager, Tokens tokens);

}  // namespace cohort::manager
