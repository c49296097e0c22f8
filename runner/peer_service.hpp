// Between the nodes of one job attempt, without sshd: every runner serves PeerService on its
// node's address. An MPI head asks each other node whether its container is up (the readiness
// gate) before it starts mpirun; mpirun's rsh agent, `cohort-exec bridge`, through the head's runner, asks a node to
// start Open MPI's daemon in that node's container. Every call carries the attempt's secret, which only the manager and
// the attempt's nodes know; a runner answers only for the attempt it runs with it. The calls go over TLS, each
// trusting only the called node's own certificate (peer_tls.hpp).
#pragma once

#include <grpcpp/grpcpp.h>

#include <chrono>
#include <functional>
#include <memory>
#include <string>

#include "cohort/status.hpp"
#include "cohort/v1/cohort.grpc.pb.h"
#include "peer_tls.hpp"
#include "task_table.hpp"

namespace cohort::runner {

class PeerServer {
 public:
  // Listens on `address` ("ip:port", port 0 picks one), TLS with `identity`. REQUIRES: `table`
  // outlives the server.
  static Result<std::unique_ptr<PeerServer>> start(const std::string& address, TaskTable& table,
                                                   const PeerIdentity& identity);
  ~PeerServer();  // cancels the calls in flight and stops
  PeerServer(const PeerServer&) = delete;
  PeerServer& operator=(const PeerServer&) = delete;

  int port() const { return port_; }

 private:
  PeerServer() = default;
  std::unique_ptr<grpc::Service> service_;
  std::unique_ptr<grpc::Server> server_;
  int port_ = 0;
};

// Waits until node `rank` of the attempt answers that its container is up, or `until`; asks
// again while that node's runner has not started the attempt yet or cannot be reached; stops
// asking (with an error) once give_up() is true. The error names the node, its address and what
// it was doing.
Status wait_peer_ready(const v1::Assignment& assignment, int rank, std::chrono::steady_clock::time_point until,
                       const std::function<bool()>& give_up);

}  // namespace cohort::runner
