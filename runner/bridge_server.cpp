#include "bridge_server.hpp"

#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <optional>

#include "cohort/log.hpp"
#include "cohort/v1/cohort.grpc.pb.h"
#include "exec_socket.hpp"
#include "file_write.hpp"
#include "peer_tls.hpp"
#include "rpc.hpp"

namespace cohort::runner {

namespace {

// How often the accepting thread looks at its stop flag.
constexpr int kAcceptPollMs = 100;

// One request, on its own thread: the bridge's descriptors are written to and closed here.
void serve(std::shared_ptr<const v1::Assignment> a, int conn) {
  const timeval limit{1, 0};  // a connection that says nothing must not hold a thread
  ::setsockopt(conn, SOL_SOCKET, SO_RCVTIMEO, &limit, sizeof limit);
  auto request = receive_exec_request(conn);
  if (!request.ok()) {
    logger()->warn("job {} attempt {}: bridge socket: {}", a->job(), a->attempt(), request.status().message());
    (void)send_exec_exit(conn, ExitStatus{255, 0});
    ::close(conn);
    return;
  }
  const std::string host = request->argv.front();
  const std::vector<std::string> argv(request->argv.begin() + 1, request->argv.end());
  auto exit = argv.empty() ? Result<ExitStatus>(invalid_argument("no command for node " + host))
                           : exec_on_peer(*a, host, argv, request->stdout_fd, request->stderr_fd);
  if (!exit.ok()) {
    (void)write_all(request->stderr_fd, "cohort-runner: " + exit.status().message() + "\n");
    exit = ExitStatus{255, 0};
  }
  ::close(request->stdout_fd);
  ::close(request->stderr_fd);
  (void)send_exec_exit(conn, *exit);
  ::close(conn);
}

}  // namespace

Result<ExitStatus> exec_on_peer(const v1::Assignment& a, const std::string& host, const std::vector<std::string>& argv,
                                int out_fd, int err_fd) {
  int rank = -1;
  for (int i = 0; i < a.node_addresses_size() && i < a.peer_endpoints_size(); ++i) {
    if (a.node_addresses(i) == host && !a.peer_endpoints(i).empty()) rank = i;
  }
  if (rank < 0) return Status(Code::kNotFound, "no node " + host + " in this attempt");
  const std::string& address = a.peer_endpoints(rank);
  COHORT_ASSIGN_OR_RETURN(auto channel, peer_channel(a, rank));
  auto stub = v1::PeerService::NewStub(channel);
  v1::PeerExecRequest rq;
  rq.set_job(a.job());
  rq.set_attempt(a.attempt());
  for (const auto& word : argv)
    rq.add_argv(word);
  grpc::ClientContext ctx;
  ctx.AddMetadata("authorization", "Bearer " + a.secret());
  // Connecting is bounded by gRPC's own connect timeout; the command itself (Open MPI's daemon)
  // may run as long as the job.
  auto reader = stub->Exec(&ctx, rq);
  v1::PeerExecOutput out;
  std::optional<ExitStatus> exit;
  while (reader->Read(&out)) {
    // A bridge that went away only loses the output; its exit is still sent.
    if (!out.stdout().empty()) (void)write_all(out_fd, out.stdout());
    if (!out.stderr().empty()) (void)write_all(err_fd, out.stderr());
    if (out.exited()) exit = ExitStatus{out.exit_code(), out.signal()};
  }
  const grpc::Status s = reader->Finish();
  if (!s.ok()) return rpc::from_grpc(s, "PeerService.Exec", "node " + host + " (" + address + ")");
  if (!exit) return Status(Code::kDataLoss, "node " + host + " (" + address + ") ended the call without an exit");
  return *exit;
}

Result<std::unique_ptr<BridgeServer>> BridgeServer::start(const std::filesystem::path& path, v1::Assignment assignment,
                                                          uid_t uid, gid_t gid) {
  std::unique_ptr<BridgeServer> server(new BridgeServer());
  server->path_ = path;
  server->assignment_ = std::make_shared<const v1::Assignment>(std::move(assignment));
  COHORT_ASSIGN_OR_RETURN(server->listen_fd_, listen_exec_socket(path.string()));
  if (::chown(path.c_str(), uid, gid) != 0) return errno_status("chown", errno, path.string());
  server->thread_ = std::thread([s = server.get()] { s->accept_loop(); });
  return server;
}

BridgeServer::~BridgeServer() {
  stop_ = true;
  if (thread_.joinable()) thread_.join();
  if (listen_fd_ >= 0) ::close(listen_fd_);
  std::error_code ec;
  std::filesystem::remove(path_, ec);
}

void BridgeServer::accept_loop() {
  while (!stop_) {
    pollfd p{listen_fd_, POLLIN, 0};
    if (::poll(&p, 1, kAcceptPollMs) <= 0) continue;
    const int conn = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (conn < 0) continue;
    std::thread(serve, assignment_, conn).detach();
  }
}

}  // namespace cohort::runner
