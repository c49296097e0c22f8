#include "services.hpp"

#include <algorithm>
#include <chrono>
#include <fstream>
#include <map>
#include <thread>

#include "cohort/log.hpp"
#include "rpc.hpp"
#include "vm_sizes.hpp"

namespace cohort::manager {

namespace {

using grpc::ServerContext;

// A refused call: logged with its peer, answered with PermissionDenied.
grpc::Status refuse(ServerContext* ctx, const std::string& why) {
  logger()->warn("refused a call from {}: {}", ctx->peer(), why);
  return {grpc::StatusCode::PERMISSION_DENIED, why};
}

bool token_matches(ServerContext* ctx, const std::string& hash) {
  const std::string token = rpc::bearer_token(*ctx);
  return !token.empty() && rpc::constant_time_equal(rpc::sha256_hex(token), hash);
}

class Admin {
 public:
  Admin(Manager& m, Tokens t) : m_(m), t_(std::move(t)) {}
  grpc::Status check(ServerContext* ctx, const char* call) {
    if (token_matches(ctx, t_.admin_hash)) return grpc::Status::OK;
    return refuse(ctx, std::string(call) + ": missing or wrong admin token");
  }
  Manager& m_;
  Tokens t_;
};

template <typename T>
grpc::Status reply(Result<T> r, T* out) {
  if (!r.ok()) return rpc::to_grpc(r.status());
  *out = std::move(r).value();
  return grpc::Status::OK;
}

#define COHORT_ADMIN(call)                                 \
  if (auto s = admin_.check(ctx, call); !s.ok()) return s; \
  Manager& m = admin_.m_

class ClusterServiceImpl final : public v1::ClusterService::Service {
 public:
  explicit ClusterServiceImpl(Admin admin) : admin_(std::move(admin)) {}
  grpc::Status CreateCluster(ServerContext* ctx, const v1::CreateClusterRequest* rq, v1::Cluster* out) override {
    COHORT_ADMIN("CreateCluster");
    return reply(m.create_cluster(rq->spec()), out);
  }
  grpc::Status GetCluster(ServerContext* ctx, const v1::GetClusterRequest* rq, v1::Cluster* out) override {
    COHORT_ADMIN("GetCluster");
    return reply(m.get_cluster(rq->name(), rq->event_limit()), out);
  }
  grpc::Status ListClusters(ServerContext* ctx, const v1::ListClustersRequest*,
                            v1::ListClustersResponse* out) override {
    COHORT_ADMIN("ListClusters");
    for (auto& c : m.list_clusters())
      *out->add_clusters() = std::move(c);
    return grpc::Status::OK;
  }
  grpc::Status UpdateCluster(ServerContext* ctx, const v1::UpdateClusterRequest* rq, v1::Cluster* out) override {
    COHORT_ADMIN("UpdateCluster");
    return reply(m.update_cluster(*rq), out);
  }
  grpc::Status DeleteCluster(ServerContext* ctx, const v1::DeleteClusterRequest* rq,
                             v1::DeleteClusterResponse*) override {
    COHORT_ADMIN("DeleteCluster");
    return rpc::to_grpc(m.delete_cluster(rq->name(), rq->force()));
  }
  grpc::Status ListVmSizes(ServerContext* ctx, const v1::ListVmSizesRequest*, v1::ListVmSizesResponse* out) override {
    COHORT_ADMIN("ListVmSizes");
    (void)m;
    for (auto& s : vm_sizes())
      *out->add_sizes() = std::move(s);
    return grpc::Status::OK;
  }

 private:
  Admin admin_;
};

class JobServiceImpl final : public v1::JobService::Service {
 public:
  explicit JobServiceImpl(Admin admin) : admin_(std::move(admin)) {}
  grpc::Status SubmitJob(ServerContext* ctx, const v1::SubmitJobRequest* rq, v1::Job* out) override {
    COHORT_ADMIN("SubmitJob");
    auto job = m.submit_job(*rq);
    if (job.ok()) m.tick();  // schedule it now, not at the next tick
    return reply(std::move(job), out);
  }
  grpc::Status GetJob(ServerContext* ctx, const v1::GetJobRequest* rq, v1::Job* out) override {
    COHORT_ADMIN("GetJob");
    return reply(m.get_job(rq->id()), out);
  }
  grpc::Status ListJobs(ServerContext* ctx, const v1::ListJobsRequest* rq, v1::ListJobsResponse* out) override {
    COHORT_ADMIN("ListJobs");
    for (auto& j : m.list_jobs(*rq))
      *out->add_jobs() = std::move(j);
    return grpc::Status::OK;
  }
  grpc::Status CancelJob(ServerContext* ctx, const v1::CancelJobRequest* rq, v1::Job* out) override {
    COHORT_ADMIN("CancelJob");
    return reply(m.cancel_job(rq->id()), out);
  }
  grpc::Status StreamLogs(ServerContext* ctx, const v1::StreamLogsRequest* rq,
                          grpc::ServerWriter<v1::LogChunk>* writer) override;

 private:
  Admin admin_;
};

grpc::Status JobServiceImpl::StreamLogs(ServerContext* ctx, const v1::StreamLogsRequest* rq,
                                        grpc::ServerWriter<v1::LogChunk>* writer) {
  COHORT_ADMIN("StreamLogs");
  auto job = m.get_job(rq->id());
  if (!job.ok()) return rpc::to_grpc(job.status());
  int attempt = rq->attempt();
  std::map<std::string, std::uint64_t> offsets;  // by node
  for (;;) {
    if (attempt == 0) {
      auto j = m.get_job(rq->id());
      if (j.ok() && j->attempts_size() > 0) attempt = j->attempts(j->attempts_size() - 1).number();
    }
    const bool finished = m.job_finished(rq->id());  // read before the pass: nothing written after is missed
    bool sent = false;
    std::error_code ec;
    if (attempt > 0) {
      for (const auto& f : std::filesystem::directory_iterator(m.log_dir(rq->id(), attempt), ec)) {
        if (f.path().extension() != ".log") continue;
        const std::string node = f.path().stem().string();
        std::ifstream in(f.path(), std::ios::binary);
        in.seekg(static_cast<std::streamoff>(offsets[node]));
        std::string data((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
        if (data.empty()) continue;
        offsets[node] += data.size();
        v1::LogChunk chunk;
        chunk.set_attempt(attempt);
        chunk.set_node(node);
        chunk.set_data(std::move(data));
        if (!writer->Write(chunk)) return grpc::Status::OK;  // the client went away
        sent = true;
      }
    }
    if (!rq->follow() || ctx->IsCancelled() || (finished && !sent)) return grpc::Status::OK;
    if (!sent) std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
}

class NodeServiceImpl final : public v1::NodeService::Service {
 public:
  explicit NodeServiceImpl(Admin admin) : admin_(std::move(admin)) {}
  grpc::Status ListNodes(ServerContext* ctx, const v1::ListNodesRequest* rq, v1::ListNodesResponse* out) override {
    COHORT_ADMIN("ListNodes");
    for (auto& n : m.list_nodes(rq->cluster()))
      *out->add_nodes() = std::move(n);
    return grpc::Status::OK;
  }
  grpc::Status DrainNode(ServerContext* ctx, const v1::DrainNodeRequest* rq, v1::Node* out) override {
    COHORT_ADMIN("DrainNode");
    return reply(m.drain_node(rq->name()), out);
  }
  grpc::Status PreemptNode(ServerContext* ctx, const v1::PreemptNodeRequest* rq, v1::Node* out) override {
    COHORT_ADMIN("PreemptNode");
    return reply(m.preempt_node(rq->name(), std::chrono::milliseconds(rq->notice_ms())), out);
  }

 private:
  Admin admin_;
};

class RunnerServiceImpl final : public v1::RunnerService::Service {
 public:
  RunnerServiceImpl(Manager& m, Tokens t) : m_(m), t_(std::move(t)) {}

  grpc::Status Register(ServerContext* ctx, const v1::RegisterRequest* rq, v1::RegisterResponse* out) override {
    if (!token_matches(ctx, t_.join_hash)) return refuse(ctx, "Register: missing or wrong join token");
    return reply(m_.register_node(*rq), out);
  }
  grpc::Status Heartbeat(ServerContext* ctx, const v1::HeartbeatRequest* rq, v1::HeartbeatResponse* out) override {
    if (auto s = check_node(ctx, "Heartbeat", rq->node_name()); !s.ok()) return s;
    return reply(m_.heartbeat(rq->node_name(), *rq), out);
  }
  grpc::Status AppendLogs(ServerContext* ctx, const v1::AppendLogsRequest* rq, v1::AppendLogsResponse*) override {
    if (auto s = check_node(ctx, "AppendLogs", rq->node_name()); !s.ok()) return s;
    Status s = m_.append_logs(rq->node_name(), *rq);
    if (s.code() == Code::kPermissionDenied) return refuse(ctx, s.message());
    return rpc::to_grpc(s);
  }
  grpc::Status WaitForWork(ServerContext* ctx, const v1::WaitForWorkRequest* rq,
                           v1::WaitForWorkResponse* out) override {
    if (auto s = check_node(ctx, "WaitForWork", rq->node_name()); !s.ok()) return s;
    // Bounded well below a heartbeat timeout, so a runner notices a manager that went away.
    const auto until =
        std::chrono::steady_clock::now() + std::chrono::milliseconds(std::clamp<std::int64_t>(rq->wait_ms(), 0, 10000));
    // In slices, so a canceled call (the runner went, the server shuts down) frees its thread.
    for (;;) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(until - std::chrono::steady_clock::now());
      auto v = m_.wait_for_work(rq->node_name(), rq->known_version(),
                                std::clamp(left, std::chrono::milliseconds(0), std::chrono::milliseconds(250)));
      if (!v.ok()) return rpc::to_grpc(v.status());
      if (*v != rq->known_version() || left.count() <= 0 || ctx->IsCancelled()) {
        out->set_version(*v);
        return grpc::Status::OK;
      }
    }
  }
  grpc::Status GetCode(ServerContext* ctx, const v1::GetCodeRequest* rq,
                       grpc::ServerWriter<v1::CodeChunk>* writer) override {
    if (auto s = check_node(ctx, "GetCode", rq->node_name()); !s.ok()) return s;
    if (Status s = m_.check_node_job(rq->node_name(), rq->job()); !s.ok()) return refuse(ctx, s.message());
    std::ifstream in(m_.code_path(rq->job()), std::ios::binary);
    if (!in) return {grpc::StatusCode::NOT_FOUND, "job " + rq->job() + " has no code snapshot"};
    std::string buf(1 << 20, '\0');
    while (in) {
      in.read(buf.data(), static_cast<std::streamsize>(buf.size()));
      v1::CodeChunk chunk;
      chunk.set_data(buf.data(), static_cast<std::size_t>(in.gcount()));
      if (chunk.data().empty()) break;
      if (!writer->Write(chunk)) break;
    }
    return grpc::Status::OK;
  }

 private:
  // A node's credential acts for that node only.
  grpc::Status check_node(ServerContext* ctx, const char* call, const std::string& claimed) {
    auto node = m_.node_for_credential(rpc::bearer_token(*ctx));
    if (!node.ok()) return refuse(ctx, std::string(call) + ": missing or unknown node credential");
    if (*node != claimed) {
      return refuse(ctx, std::string(call) + ": the credential of node " + *node + " was used for node " + claimed);
    }
    return grpc::Status::OK;
  }

  Manager& m_;
  Tokens t_;
};

}  // namespace

std::vector<std::unique_ptr<grpc::Service>> make_services(Manager& manager, Tokens tokens) {
  std::vector<std::unique_ptr<grpc::Service>> out;
  out.push_back(std::make_unique<ClusterServiceImpl>(Admin(manager, tokens)));
  out.push_back(std::make_unique<JobServiceImpl>(Admin(manager, tokens)));
  out.push_back(std::make_unique<NodeServiceImpl>(Admin(manager, tokens)));
  out.push_back(std::make_unique<RunnerServiceImpl>(manager, tokens));
  return out;
}

}  // namespace cohort::manager
