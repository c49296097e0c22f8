// The head node's end of `cohort-exec bridge`, Open MPI's rsh agent in an MPI job: the runner
// listens on the attempt's bridge socket (RUN/bridge.sock, the exec socket protocol), and for
// each request (HOST, then the command) asks HOST's runner to run the command in the job's
// container there (PeerService Exec, with the attempt's secret), writing the output straight into
// the descriptors the bridge passed, then replies with the exit.
//
// Why the runner and not the bridge itself: the bridge stays a small static program (it starts
// once per node of every launch, and a gRPC client takes ~12 ms just to load here), and the
// attempt's secret stays out of the job's environment.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <filesystem>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "cohort/status.hpp"
#include "cohort/v1/cohort.pb.h"
#include "exit_status.hpp"

namespace cohort::runner {

// Runs `argv` on the attempt's node whose address is `host` through its runner's PeerService
// Exec, writing its output to out_fd and err_fd as it comes. Its exit, or an error naming the node.
Result<ExitStatus> exec_on_peer(const v1::Assignment& assignment, const std::string& host,
                                const std::vector<std::string>& argv, int out_fd, int err_fd);

class BridgeServer {
 public:
  // Listens at `path`, which only `uid` (the job's user) and root may connect to.
  static Result<std::unique_ptr<BridgeServer>> start(const std::filesystem::path& path, v1::Assignment assignment,
                                                     uid_t uid, gid_t gid);
  // Stops taking requests. Calls in flight go on, on their own threads, holding what they need;
  // they end when the peer's process does (with the attempt at the latest).
  ~BridgeServer();
  BridgeServer(const BridgeServer&) = delete;
  BridgeServer& operator=(const BridgeServer&) = delete;

 private:
  BridgeServer() = default;
  void accept_loop();

  std::filesystem::path path_;
  std::shared_ptr<const v1::Assignment> assignment_;
  int listen_fd_ = -1;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

}  // namespace cohort::runner
