// The real `cohort` binary against a small in-test double of the manager's ClusterService and
// JobService on 127.0.0.1:0: flags reach the wire, JSON comes back out, and `job submit --wait`
// follows a job to its end with the right exit code. The real manager has tests of its own.
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>

#include "cohort/v1/cohort.grpc.pb.h"
#include "rpc.hpp"
#include "test_support.hpp"

namespace cohort::testing {
namespace {

namespace fs = std::filesystem;
using std::chrono::seconds;

constexpr const char* kToken = "test-token";

grpc::Status check_token(const grpc::ServerContext* context) {
  if (rpc::bearer_token(*context) == kToken) return grpc::Status::OK;
  return {grpc::StatusCode::UNAUTHENTICATED, "unknown token"};
}

class FakeClusters final : public v1::ClusterService::Service {
 public:
  grpc::Status CreateCluster(grpc::ServerContext* context, const v1::CreateClusterRequest* request,
                             v1::Cluster* response) override {
    if (auto s = check_token(context); !s.ok()) return s;
    std::lock_guard lock(mu_);
    if (clusters_.count(request->spec().name()))
      return {grpc::StatusCode::ALREADY_EXISTS, "cluster " + request->spec().name() + " exists"};
    v1::Cluster& c = clusters_[request->spec().name()];
    *c.mutable_spec() = request->spec();
    c.set_created_ms(1'700'000'000'000);
    *response = c;
    return grpc::Status::OK;
  }
  grpc::Status ListClusters(grpc::ServerContext* context, const v1::ListClustersRequest*,
                            v1::ListClustersResponse* response) override {
    if (auto s = check_token(context); !s.ok()) return s;
    std::lock_guard lock(mu_);
    for (const auto& [name, c] : clusters_)
      *response->add_clusters() = c;
    return grpc::Status::OK;
  }
  v1::ClusterSpec spec(const std::string& name) {
    std::lock_guard lock(mu_);
    return clusters_.at(name).spec();
  }

 private:
  std::mutex mu_;
  std::map<std::string, v1::Cluster> clusters_;
};

// A job is queued at submit, running on two nodes at the first poll, and then ends: failed when
// its spec says `exit 3`, succeeded otherwise.
class FakeJobs final : public v1::JobService::Service {
 public:
  grpc::Status SubmitJob(grpc::ServerContext* context, const v1::SubmitJobRequest* request,
                         v1::Job* response) override {
    if (auto s = check_token(context); !s.ok()) return s;
    std::lock_guard lock(mu_);
    last_submit_ = *request;
    const std::string id = "job-" + std::to_string(jobs_.size() + 1);
    v1::Job& job = jobs_[id];
    job.set_id(id);
    job.set_cluster(request->cluster());
    job.set_state("queued");
    job.set_spec_yaml(request->spec_yaml());
    *response = job;
    return grpc::Status::OK;
  }
  grpc::Status GetJob(grpc::ServerContext* context, const v1::GetJobRequest* request, v1::Job* response) override {
    if (auto s = check_token(context); !s.ok()) return s;
    std::lock_guard lock(mu_);
    auto it = jobs_.find(request->id());
    if (it == jobs_.end()) return {grpc::StatusCode::NOT_FOUND, "no job " + request->id()};
    v1::Job& job = it->second;
    if (job.state() == "queued") {
      job.set_state("running");
      auto* a = job.add_attempts();
      a->set_number(1);
      a->set_state("running");
      a->add_nodes("node-1");
      a->add_nodes("node-2");
    } else if (job.state() == "running") {
      const bool fails = job.spec_yaml().find("exit 3") != std::string::npos;
      job.set_state(fails ? "failed" : "succeeded");
      job.mutable_attempts(0)->set_state(job.state());
      job.mutable_attempts(0)->set_end_reason(fails ? "user_error" : "succeeded");
      if (fails) job.set_message("rank 1 on node-2 (host h2) exited with code 3");
    }
    *response = job;
    return grpc::Status::OK;
  }
  v1::SubmitJobRequest last_submit() {
    std::lock_guard lock(mu_);
    return last_submit_;
  }

 private:
  std::mutex mu_;
  std::map<std::string, v1::Job> jobs_;
  v1::SubmitJobRequest last_submit_;
};

class CliManagerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    grpc::ServerBuilder builder;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port_);
    builder.RegisterService(&clusters_);
    builder.RegisterService(&jobs_);
    server_ = builder.BuildAndStart();
    ASSERT_TRUE(server_ != nullptr && port_ > 0);
    std::string pattern = (fs::temp_directory_path() / "cohort-cli-it-XXXXXX").string();
    dir_ = ::mkdtemp(pattern.data());
  }
  void TearDown() override {
    server_->Shutdown(std::chrono::system_clock::now() + seconds(2));
    fs::remove_all(dir_);
  }

  // `cohort ARGS...` pointed at the double through the environment, polling every 20 ms.
  Captured cohort(std::vector<std::string> args, std::string token = kToken) {
    args.insert(args.begin(), bin("cohort"));
    auto r = run_captured({.argv = args,
                           .env = {{"COHORT_MANAGER", "127.0.0.1:" + std::to_string(port_)},
                                   {"COHORT_TOKEN", token},
                                   {"COHORT_JOB_POLL_MS", "20"}}},
                          seconds(60));
    EXPECT_TRUE(r.ok()) << r.status().to_string();
    EXPECT_FALSE(r->timed_out);
    return r.ok() ? *r : Captured{};
  }

  void write(const fs::path& relative, const std::string& text) {
    fs::create_directories((dir_ / relative).parent_path());
    std::ofstream(dir_ / relative) << text;
  }

  FakeClusters clusters_;
  FakeJobs jobs_;
  std::unique_ptr<grpc::Server> server_;
  int port_ = 0;
  fs::path dir_;
};

TEST_F(CliManagerTest, ClusterCreateThenListAsJson) {
  auto created = cohort({"cluster", "create", "cpu", "--vm-size", "local-2c", "--min-nodes", "0", "--max-nodes", "3",
                         "--vm-priority", "lowpriority", "--idle-seconds-before-scaledown", "5", "--assign-identity",
                         "[system]", "--tag", "team=vision", "--tag", "cost=low"});
  ASSERT_EQ(created.status.code, 0) << created.err;
  EXPECT_NE(created.out.find("cluster cpu created"), std::string::npos) << created.out;
  const auto spec = clusters_.spec("cpu");
  EXPECT_EQ(spec.max_nodes(), 3);
  EXPECT_EQ(spec.vm_priority(), "lowpriority");
  EXPECT_EQ(spec.idle_seconds_before_scaledown(), 5);
  EXPECT_EQ(spec.identity().type(), "system");
  EXPECT_EQ(spec.tags().size(), 2u);

  auto list = cohort({"cluster", "list", "--output", "json"});
  ASSERT_EQ(list.status.code, 0) << list.err;
  EXPECT_EQ(list.out.rfind("[{\"spec\":{\"name\":\"cpu\",\"vm_size\":\"local-2c\",\"min_nodes\":0,\"max_nodes\":3", 0),
            0u)
      << list.out;
  EXPECT_EQ(list.out.substr(list.out.size() - 2), "]\n") << list.out;

  auto again = cohort({"cluster", "create", "cpu", "--vm-size", "local-2c", "--min-nodes", "0", "--max-nodes", "3"});
  EXPECT_EQ(again.status.code, 1);
  EXPECT_EQ(again.err.rfind("cohort: CreateCluster at 127.0.0.1:", 0), 0u) << again.err;
  EXPECT_NE(again.err.find("cluster cpu exists"), std::string::npos) << again.err;
}

TEST_F(CliManagerTest, SubmitWaitFollowsTheJobToSuccess) {
  write("job/job.yaml", "name: hello\ncode: src\ncommand: sh run.sh\n");
  write("job/src/run.sh", "echo hello\n");
  auto r = cohort({"job", "submit", (dir_ / "job" / "job.yaml").string(), "--cluster", "cpu", "--wait"});
  EXPECT_EQ(r.status.code, 0) << r.out << r.err;
  EXPECT_EQ(r.out.substr(0, r.out.find('\n')), "job-1") << r.out;  // `head -1` gets the id
  EXPECT_NE(r.out.find("job job-1: running\nattempt 1: running on node-1, node-2\n"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("job job-1 succeeded\n"), std::string::npos) << r.out;
  const auto submitted = jobs_.last_submit();
  EXPECT_EQ(submitted.cluster(), "cpu");
  EXPECT_FALSE(submitted.code_tar_gz().empty());
}

TEST_F(CliManagerTest, SubmitWaitExitsOneWithTheFailure) {
  write("job.yaml", "name: bad\ncommand: exit 3\n");
  auto r = cohort({"job", "submit", (dir_ / "job.yaml").string(), "--wait"});
  EXPECT_EQ(r.status.code, 1) << r.out << r.err;
  EXPECT_NE(r.out.find("job job-1 failed: rank 1 on node-2 (host h2) exited with code 3"), std::string::npos) << r.out;
  EXPECT_TRUE(jobs_.last_submit().code_tar_gz().empty());
}

TEST_F(CliManagerTest, RefusedTokenAndMissingManagerSayWhatToDo) {
  auto refused = cohort({"cluster", "list"}, "wrong");
  EXPECT_EQ(refused.status.code, 1);
  EXPECT_NE(refused.err.find("check --token or COHORT_TOKEN"), std::string::npos) << refused.err;

  auto r = run_captured({.argv = {bin("cohort"), "job", "list"}, .env = {{"COHORT_MANAGER", ""}}}, seconds(30));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->status.code, 2);
  EXPECT_EQ(r->err.rfind("cohort: no manager address: pass --manager HOST:PORT or set COHORT_MANAGER", 0), 0u)
      << r->err;
}

}  // namespace
}  // namespace cohort::testing
