#include "peer_service.hpp"

#include <poll.h>
#include <unistd.h>

#include <cerrno>
#include <thread>

#include "cohort/log.hpp"
#include "rpc.hpp"
#include "subprocess.hpp"

namespace cohort::runner {

namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

// How often a Ready call looks at the task while it waits: the gate's added latency.
constexpr milliseconds kReadyPoll{5};
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
      std::this_thread::sleep_for(kReadyPoll);
    out->set_ready(task->ready());
    out->set_state(task->ready() ? "running" : task->phase());
    return grpc::Status::OK;
  }

  grpc::Status Exec(grpc::ServerContext* ctx, const v1::PeerExecRequest* rq,
                    grpc::ServerWriter<v1::PeerExecOutput>* writer) override {
    std::shared_ptr<Task> task;
    if (auto s = find(ctx, rq->job(), rq->attempt(), task); !s.ok()) return s;
    if (rq->argv_size() == 0) return {grpc::StatusCode::INVALID_ARGUMENT, "Exec: no command"};
    auto options = task->exec_options({rq->argv().begin(), rq->argv().end()});
    if (!options.ok()) return rpc::to_grpc(options.status());
    options->capture_stdout = true;
    options->capture_stderr = true;
    options->parent_death_signal = 0;  // Open MPI's daemon outlives this call's thread
    auto child = Subprocess::spawn(*options);
    if (!child.ok()) return rpc::to_grpc(child.status());
    logger()->info("job {} attempt {}: {} started `{}` for a peer", rq->job(), rq->attempt(), ctx->peer(),
                   rq->argv(rq->argv_size() - 1).substr(0, 200));
    pollfd fds[2] = {{child->stdout_fd(), POLLIN, 0}, {child->stderr_fd(), POLLIN, 0}};
    int open = 2;
    char buf[65536];
    while (open > 0) {
      if (ctx->IsCancelled()) {
        (void)child->terminate(milliseconds(1000));
        return {grpc::StatusCode::CANCELLED, "the caller went away"};
      }
      if (::poll(fds, 2, 200) < 0 && errno != EINTR) break;
      for (int i = 0; i < 2; ++i) {
        if (fds[i].fd < 0 || !(fds[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
        const ssize_t n = ::read(fds[i].fd, buf, sizeof buf);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) {
          fds[i].fd = -1;
          --open;
          continue;
        }
        v1::PeerExecOutput chunk;
        (i == 0 ? chunk.mutable_stdout() : chunk.mutable_stderr())->assign(buf, static_cast<std::size_t>(n));
        writer->Write(chunk);
      }
    }
    auto st = child->wait();
    v1::PeerExecOutput last;
    last.set_exited(true);
    if (st.ok()) {
      last.set_exit_code(st->code);
      last.set_signal(st->signal);
    } else {
      last.set_exit_code(255);
    }
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

Result<std::unique_ptr<PeerServer>> PeerServer::start(const std::string& address, TaskTable& table) {
  std::unique_ptr<PeerServer> server(new PeerServer());
  server->service_ = std::make_unique<PeerServiceImpl>(table);
  grpc::ServerBuilder builder;
  builder.AddListeningPort(address, grpc::InsecureServerCredentials(), &server->port_);
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
  auto channel = rpc::make_channel({endpoint, a.secret(), ""});
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
