#include "peer_service.hpp"

#include <fcntl.h>
#include <poll.h>
#include <unistd.h>

#include <cerrno>
#include <optional>
#include <thread>

#include "cohort/log.hpp"
#include "exec_socket.hpp"
#include "rpc.hpp"
#include "subprocess.hpp"

namespace cohort::runner {

namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

// How often a waiting Ready call looks whether its caller went away (readiness itself wakes it).
constexpr milliseconds kCancelCheck{100};
// A node whose runner has not taken the assignment yet (its doorbell is on its way) is asked
// again this often.
constexpr milliseconds kPeerRetry{20};
// How long one Ready call waits at most: how late a gate that is no longer needed notices.
constexpr milliseconds kReadyWaitSlice{250};

class PeerServiceImpl final : public v1::PeerService::Service {
 public:
  explicit PeerServiceImpl(TaskTable& table) : table_(table) {}

  grpc::Status Ready(grpc::ServerContext* ctx, const v1::PeerReadyRequest* rq, v1::PeerReadyResponse* out) override {
    std::shared_ptr<Task> task;
    if (auto s = find(ctx, rq->job(), rq->attempt(), task); !s.ok()) return s;
    const auto until = Clock::now() + milliseconds(std::clamp<std::int64_t>(rq->wait_ms(), 0, 10000));
    while (!task->ready() && !task->exited() && Clock::now() < until && !ctx->IsCancelled())
      task->wait_ready_for(kCancelCheck);
    out->set_ready(task->ready());
    out->set_state(task->ready() ? "running" : task->phase());
    return grpc::Status::OK;
  }

  grpc::Status Exec(grpc::ServerContext* ctx, const v1::PeerExecRequest* rq,
                    grpc::ServerWriter<v1::PeerExecOutput>* writer) override {
    std::shared_ptr<Task> task;
    if (auto s = find(ctx, rq->job(), rq->attempt(), task); !s.ok()) return s;
    if (rq->argv_size() == 0) return {grpc::StatusCode::INVALID_ARGUMENT, "Exec: no command"};
    auto target = task->exec_target();
    if (!target.ok()) return rpc::to_grpc(target.status());
    int out[2], err[2];
    if (::pipe2(out, O_CLOEXEC) != 0) return rpc::to_grpc(errno_status("pipe2", errno));
    if (::pipe2(err, O_CLOEXEC) != 0) {
      ::close(out[0]);
      ::close(out[1]);
      return rpc::to_grpc(errno_status("pipe2", errno));
    }
    Status sent;
    int sock = -1;
    if (auto connected = connect_exec_socket(target->socket.string()); connected.ok()) {
      sock = *connected;
      sent = send_exec_request(sock, {rq->argv().begin(), rq->argv().end()}, target->env, out[1], err[1]);
    } else {
      sent = connected.status();
    }
    ::close(out[1]);
    ::close(err[1]);
    if (!sent.ok()) {
      for (int fd : {out[0], err[0], sock})
        if (fd >= 0) ::close(fd);
      return rpc::to_grpc(sent.with_context("asking the job's init on this node to start it"));
    }
    logger()->info("job {} attempt {}: {} started `{}` for a peer", rq->job(), rq->attempt(), ctx->peer(),
                   rq->argv(rq->argv_size() - 1).substr(0, 200));
    // The process's output until both its streams close, and its exit from init's reply.
    pollfd fds[3] = {{out[0], POLLIN, 0}, {err[0], POLLIN, 0}, {sock, POLLIN, 0}};
    std::optional<ExitStatus> exit;
    char buf[65536];
    while (fds[0].fd >= 0 || fds[1].fd >= 0 || fds[2].fd >= 0) {
      if (ctx->IsCancelled()) break;  // what it started stays with the attempt, and ends with it
      if (::poll(fds, 3, 200) < 0 && errno != EINTR) break;
      for (int i = 0; i < 3; ++i) {
        if (fds[i].fd < 0 || !(fds[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
        const ssize_t n = ::read(fds[i].fd, buf, sizeof buf);
        if (n < 0 && errno == EINTR) continue;
        if (n > 0 && i == 2) {
          auto parsed = parse_exec_exit(std::string_view(buf, static_cast<std::size_t>(n)));
          if (parsed.ok()) exit = *parsed;
          continue;
        }
        if (n <= 0) {
          ::close(fds[i].fd);
          fds[i].fd = -1;
          continue;
        }
        v1::PeerExecOutput chunk;
        (i == 0 ? chunk.mutable_stdout() : chunk.mutable_stderr())->assign(buf, static_cast<std::size_t>(n));
        writer->Write(chunk);
      }
    }
    for (const auto& f : fds)
      if (f.fd >= 0) ::close(f.fd);
    if (ctx->IsCancelled()) return {grpc::StatusCode::CANCELLED, "the caller went away"};
    v1::PeerExecOutput last;
    last.set_exited(true);
    // No reply: init (and the attempt with it) ended first.
    last.set_exit_code(exit ? exit->code : 255);
    last.set_signal(exit ? exit->signal : 0);
    writer->Write(last);
    return grpc::Status::OK;
  }

 private:
  grpc::Status find(grpc::ServerContext* ctx, const std::string& job, int attempt, std::shared_ptr<Task>& out) {
    out = table_.find(job, attempt);
    // The same answer for "no such attempt" and "wrong secret" would hide a node that is merely
    // late; the secret check comes first for a known attempt, so nothing leaks about it.
    if (!out)
      return {grpc::StatusCode::NOT_FOUND,
              "this node has not started job " + job + " attempt " + std::to_string(attempt) + " (yet)"};
    const std::string token = rpc::bearer_token(*ctx);
    if (token.empty() || !rpc::constant_time_equal(token, out->assignment().secret())) {
      logger()->warn("refused a peer call from {} for job {} attempt {}: wrong secret", ctx->peer(), job, attempt);
      out.reset();
      return {grpc::StatusCode::PERMISSION_DENIED,
              "wrong secret for job " + job + " attempt " + std::to_string(attempt)};
    }
    return grpc::Status::OK;
  }

  TaskTable& table_;
};

}  // namespace

Result<std::unique_ptr<PeerServer>> PeerServer::start(const std::string& address, TaskTable& table,
                                                      const PeerIdentity& identity) {
  std::unique_ptr<PeerServer> server(new PeerServer());
  server->service_ = std::make_unique<PeerServiceImpl>(table);
  grpc::SslServerCredentialsOptions ssl;
  ssl.pem_key_cert_pairs.push_back({identity.private_key_pem, identity.certificate_pem});
  grpc::ServerBuilder builder;
  builder.AddListeningPort(address, grpc::SslServerCredentials(ssl), &server->port_);
  builder.RegisterService(server->service_.get());
  server->server_ = builder.BuildAndStart();
  if (!server->server_ || server->port_ == 0) {
    return Status(Code::kUnavailable, "cannot serve the peer service on " + address);
  }
  return server;
}

PeerServer::~PeerServer() {
  if (server_) server_->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(1));
}

Status wait_peer_ready(const v1::Assignment& a, int rank, Clock::time_point until,
                       const std::function<bool()>& give_up) {
  const std::string address = rank < a.node_addresses_size() ? a.node_addresses(rank) : "";
  const std::string endpoint = rank < a.peer_endpoints_size() ? a.peer_endpoints(rank) : "";
  const std::string who = "node rank " + std::to_string(rank) + " (" + address + ")";
  if (endpoint.empty()) {
    return Status(Code::kFailedPrecondition, who + " has no peer endpoint: its runner is older than this one");
  }
  auto channel = peer_channel(a, rank);
  if (!channel.ok()) return channel.status();
  auto stub = v1::PeerService::NewStub(*channel);
  std::string last = "no answer";
  while (Clock::now() < until && !give_up()) {
    const auto left = std::chrono::duration_cast<milliseconds>(until - Clock::now());
    v1::PeerReadyRequest rq;
    rq.set_job(a.job());
    rq.set_attempt(a.attempt());
    rq.set_wait_ms(std::min<std::int64_t>(left.count(), kReadyWaitSlice.count()));
    v1::PeerReadyResponse out;
    grpc::ClientContext ctx;
    rpc::prepare(ctx, a.secret(), milliseconds(rq.wait_ms()) + milliseconds(3000));
    ctx.set_wait_for_ready(true);
    const grpc::Status s = stub->Ready(&ctx, rq, &out);
    if (s.ok() && out.ready()) return {};
    if (s.ok()) {
      last = out.state();
      if (last.starts_with("exited")) break;
    } else {
      last = s.error_message();
      if (s.error_code() == grpc::StatusCode::PERMISSION_DENIED) break;
      std::this_thread::sleep_for(kPeerRetry);
    }
  }
  return Status(Code::kTimedOut, who + " was not ready: " + last);
}

}  // namespace cohort::runner
