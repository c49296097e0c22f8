#include "manager_client.hpp"

#include <fstream>
#include <sstream>

namespace cohort::runner {

namespace {

int ms(std::chrono::milliseconds d) {
  return static_cast<int>(std::min<long long>(d.count(), 1LL << 30));
}

// rpc::make_channel's channel, plus reconnection limits: gRPC's default backoff grows to 120 s,
// and a runner must see its manager again within about one heartbeat of it coming back, or the
// node would be declared lost after a mere manager restart. `tag` keeps the two channels on
// separate connections.
Result<std::shared_ptr<grpc::Channel>> make_channel(const rpc::Endpoint& endpoint, const ClientTimeouts& t,
                                                    const char* tag) {
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, ms(std::min(t.reconnect, std::chrono::milliseconds(100))));
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, ms(t.reconnect));
  args.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, ms(t.call));  // the connect timeout, in fact
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  args.SetString("cohort.runner.channel", tag);
  return rpc::make_channel(endpoint, std::move(args));
}

}  // namespace

Result<std::unique_ptr<ManagerClient>> ManagerClient::connect(const rpc::Endpoint& endpoint, ClientTimeouts t) {
  COHORT_ASSIGN_OR_RETURN(auto control, make_channel(endpoint, t, "control"));
  COHORT_ASSIGN_OR_RETURN(auto bulk, make_channel(endpoint, t, "bulk"));
  return std::unique_ptr<ManagerClient>(new ManagerClient(endpoint.address, std::move(control), std::move(bulk), t));
}

ManagerClient::ManagerClient(std::string address, std::shared_ptr<grpc::Channel> control,
                             std::shared_ptr<grpc::Channel> bulk, ClientTimeouts timeouts)
    : address_(std::move(address)),
      timeouts_(timeouts),
      control_channel_(std::move(control)),
      bulk_channel_(std::move(bulk)),
      control_(v1::RunnerService::NewStub(control_channel_)),
      bulk_(v1::RunnerService::NewStub(bulk_channel_)) {}

void ManagerClient::prepare(grpc::ClientContext& ctx, std::string_view token,
                            std::chrono::milliseconds deadline) const {
  rpc::prepare(ctx, token, deadline);
  // A call that waits for the connection is what drives gRPC's reconnection (the handshake of a
  // new connection runs on the threads of waiting calls); failing fast would leave it to a
  // backup poller that runs every few seconds.
  ctx.set_wait_for_ready(wait_for_ready_.load());
}

Status ManagerClient::check(const grpc::Status& s, std::string_view call, grpc::Channel& channel) const {
  if (s.ok()) return {};
  // rpc::from_grpc's code, without its hints for the command line (tokens, `cohort up`): the
  // runner says what to do in its own words.
  Code code = rpc::from_grpc(s, call, address_).code();
  std::string message = std::string(call) + " at " + address_ + ": " + s.error_message();
  if (code == Code::kTimedOut && channel.GetState(false) != GRPC_CHANNEL_READY) {
    code = Code::kUnavailable;
    message =
        std::string(call) + ": cannot reach the manager at " + address_ + " (is it running, and is this its address?)";
  }
  return {code, std::move(message)};
}

std::pair<std::string, std::string> ManagerClient::session() const {
  std::lock_guard lock(mu_);
  return {node_name_, credential_};
}

std::string ManagerClient::node_name() const {
  return session().first;
}

Result<v1::RegisterResponse> ManagerClient::register_node(const v1::RegisterRequest& request,
                                                          const std::string& join_token) {
  grpc::ClientContext ctx;
  prepare(ctx, join_token, timeouts_.call);
  v1::RegisterResponse response;
  COHORT_TRY(check(control_->Register(&ctx, request, &response), "Register", *control_channel_));
  if (response.node_name().empty() || response.credential().empty()) {
    return Status(Code::kInternal, "Register at " + address_ + ": the reply has no node name or credential");
  }
  std::lock_guard lock(mu_);
  node_name_ = response.node_name();
  credential_ = response.credential();
  return response;
}

Result<v1::HeartbeatResponse> ManagerClient::heartbeat(v1::HeartbeatRequest request) {
  auto [name, credential] = session();
  request.set_node_name(name);
  grpc::ClientContext ctx;
  prepare(ctx, credential, timeouts_.call);
  v1::HeartbeatResponse response;
  COHORT_TRY(check(control_->Heartbeat(&ctx, request, &response), "Heartbeat", *control_channel_));
  return response;
}

Result<std::int64_t> ManagerClient::wait_for_work(std::int64_t known, std::chrono::milliseconds wait) {
  auto [name, credential] = session();
  v1::WaitForWorkRequest request;
  request.set_node_name(name);
  request.set_known_version(known);
  request.set_wait_ms(wait.count());
  grpc::ClientContext ctx;
  prepare(ctx, credential, wait + timeouts_.call);
  {
    std::lock_guard lock(mu_);
    if (cancelled_) return Status(Code::kCanceled, "the runner is shutting down");
    downloads_.insert(&ctx);
  }
  v1::WaitForWorkResponse response;
  const grpc::Status s = bulk_->WaitForWork(&ctx, request, &response);
  {
    std::lock_guard lock(mu_);
    downloads_.erase(&ctx);
  }
  COHORT_TRY(check(s, "WaitForWork", *bulk_channel_));
  return response.version();
}

Status ManagerClient::append_logs(const std::string& job, int attempt, std::string_view data) {
  auto [name, credential] = session();
  v1::AppendLogsRequest request;
  request.set_node_name(name);
  request.set_job(job);
  request.set_attempt(attempt);
  request.set_data(data.data(), data.size());
  grpc::ClientContext ctx;
  prepare(ctx, credential, timeouts_.call);
  v1::AppendLogsResponse response;
  return check(bulk_->AppendLogs(&ctx, request, &response), "AppendLogs", *bulk_channel_);
}

Status ManagerClient::get_code(const std::string& job, const std::string& digest,
                               const std::filesystem::path& destination) {
  auto [name, credential] = session();
  v1::GetCodeRequest request;
  request.set_node_name(name);
  request.set_job(job);
  grpc::ClientContext ctx;
  prepare(ctx, credential, timeouts_.code_fetch);
  {
    std::lock_guard lock(mu_);
    if (cancelled_) return Status(Code::kCanceled, "GetCode: the runner is shutting down");
    downloads_.insert(&ctx);
  }
  auto reader = bulk_->GetCode(&ctx, request);
  std::string data;
  v1::CodeChunk chunk;
  while (reader->Read(&chunk))
    data += chunk.data();
  const grpc::Status finished = reader->Finish();
  {
    std::lock_guard lock(mu_);
    downloads_.erase(&ctx);
  }
  COHORT_TRY(check(finished, "GetCode", *bulk_channel_));
  if (!digest.empty() && rpc::sha256_hex(data) != digest) {
    return Status(Code::kDataLoss, "the code of job " + job + " does not match its digest " + digest);
  }
  std::ofstream out(destination, std::ios::binary | std::ios::trunc);
  out.write(data.data(), static_cast<std::streamsize>(data.size()));
  out.close();
  if (!out) return Status(Code::kIoError, "cannot write " + destination.string());
  return {};
}

void ManagerClient::cancel_downloads() {
  std::lock_guard lock(mu_);
  cancelled_ = true;
  for (grpc::ClientContext* ctx : downloads_)
    ctx->TryCancel();
}

}  // namespace cohort::runner
