// TLS between the runners of one job. Each runner keeps its own self-signed certificate in its
// work directory and reports it when it registers; the manager hands every node of an attempt the
// certificates of the others (Assignment.peer_certificates), and a peer call trusts exactly the
// one certificate named for that node. No certificate authority to run: the manager, which the
// runners already trust (its own TLS, the join token), is what vouches for each node's key.
#pragma once

#include <grpcpp/grpcpp.h>

#include <filesystem>
#include <memory>
#include <string>

#include "cohort/status.hpp"
#include "cohort/v1/cohort.pb.h"
#include "rpc.hpp"

namespace cohort::runner {

// The name every runner's certificate carries, and what a peer call checks it for (the key is
// pinned, so the name need not be the node's).
inline constexpr const char* kPeerTlsName = "cohort-runner";

struct PeerIdentity {
  std::string certificate_pem;
  std::string private_key_pem;
};

// The key and certificate in `dir` (key.pem, cert.pem); a new pair when they are missing or do
// not match, so a runner restarted on the same work directory keeps the identity its running
// attempts' peers were given.
Result<PeerIdentity> load_or_make_peer_identity(const std::filesystem::path& dir);

// How to call node `rank`'s PeerService for `assignment`: its endpoint, the attempt's secret as
// the bearer token, and its pinned certificate (plaintext only for a node that reported none, a
// runner from before TLS between runners). NotFound when the attempt has no such node.
Result<rpc::Endpoint> peer_endpoint(const v1::Assignment& assignment, int rank);

// A channel to node `rank`'s PeerService (peer_endpoint), one per endpoint and certificate for
// the process's life: a fresh TLS channel costs ~3.5 ms a call here against ~0.2 ms on an open
// one, and on an MPI head the bridge's Exec follows the gate's Ready to the same node on the
// launch's critical path. The bearer token goes with each call, not with the channel.
Result<std::shared_ptr<grpc::Channel>> peer_channel(const v1::Assignment& assignment, int rank);

}  // namespace cohort::runner
