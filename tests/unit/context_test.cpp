#include "cohort/context.hpp"

#include <gtest/gtest.h>

#include <unistd.h>

#include <csignal>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <thread>

#include "cohort/collectives.hpp"

namespace cohort {
namespace {

Result<Context> parse(const std::map<std::string, std::string>& env) {
  return Context::from_lookup([&](std::string_view name) -> std::optional<std::string> {
    auto it = env.find(std::string(name));
    if (it == env.end()) return std::nullopt;
    return it->second;
  });
}

// The error must name the variable, so a user knows what to fix.
void expect_error_naming(const std::map<std::string, std::string>& env, const std::string& variable) {
  auto c = parse(env);
  ASSERT_FALSE(c.ok()) << "expected an error naming " << variable;
  EXPECT_EQ(c.status().code(), Code::kInvalidArgument);
  EXPECT_NE(c.status().message().find(variable), std::string::npos) << c.status().message();
}

const std::map<std::string, std::string> kMpi = {{"OMPI_COMM_WORLD_RANK", "3"},
                                                 {"OMPI_COMM_WORLD_SIZE", "4"},
                                                 {"OMPI_COMM_WORLD_LOCAL_RANK", "1"},
                                                 {"OMPI_COMM_WORLD_LOCAL_SIZE", "2"}};
const std::map<std::string, std::string> kTorch = {
    {"RANK", "5"},      {"WORLD_SIZE", "8"},         {"LOCAL_RANK", "1"},     {"LOCAL_WORLD_SIZE", "4"},
    {"NODE_RANK", "1"}, {"MASTER_ADDR", "10.0.0.1"}, {"MASTER_PORT", "29500"}};

std::map<std::string, std::string> with(std::map<std::string, std::string> env, const std::string& k,
                                        const std::string& v) {
  env[k] = v;
  return env;
}
std::map<std::string, std::string> without(std::map<std::string, std::string> env, const std::string& k) {
  env.erase(k);
  return env;
}

TEST(ContextTest, NoLauncherIsAStandaloneWorldOfOne) {
  auto c = parse({});
  ASSERT_TRUE(c.ok()) << c.status().to_string();
  EXPECT_EQ(c->launch, LaunchKind::kStandalone);
  EXPECT_EQ(c->rank, 0);
  EXPECT_EQ(c->world_size, 1);
  EXPECT_EQ(c->job_id, "local");
  EXPECT_EQ(c->attempt, 1);
  EXPECT_TRUE(c->checkpoint_dir.empty());
}

TEST(ContextTest, ReadsOpenMpiVariables) {
  auto c = parse(kMpi);
  ASSERT_TRUE(c.ok()) << c.status().to_string();
  EXPECT_EQ(c->launch, LaunchKind::kMpi);
  EXPECT_EQ(c->rank, 3);
  EXPECT_EQ(c->world_size, 4);
  EXPECT_EQ(c->local_rank, 1);
  EXPECT_EQ(c->local_world_size, 2);
  EXPECT_EQ(c->node_rank, 1);  // by-slot placement: rank 3 with 2 per node is on node 1
  EXPECT_EQ(c->num_nodes, 2);
}

TEST(ContextTest, CohortVariablesOverridePlacementAndDescribeTheJob) {
  auto env = kMpi;
  env["COHORT_NODE_RANK"] = "0";
  env["COHORT_NUM_NODES"] = "3";
  env["COHORT_JOB_ID"] = "digits-7";
  env["COHORT_ATTEMPT"] = "2";
  env["COHORT_CHECKPOINT_DIR"] = "/ckpt/digits-7";
  auto c = parse(env);
  ASSERT_TRUE(c.ok()) << c.status().to_string();
  EXPECT_EQ(c->node_rank, 0);
  EXPECT_EQ(c->num_nodes, 3);
  EXPECT_EQ(c->job_id, "digits-7");
  EXPECT_EQ(c->attempt, 2);
  EXPECT_EQ(c->checkpoint_dir, "/ckpt/digits-7");
  EXPECT_EQ(c->describe(), "job digits-7 attempt 2 rank 3/4 (local 1/2, node 0/3)");
}

TEST(ContextTest, ReadsTorchrunVariables) {
  auto c = parse(kTorch);
  ASSERT_TRUE(c.ok()) << c.status().to_string();
  EXPECT_EQ(c->launch, LaunchKind::kEnv);
  EXPECT_EQ(c->rank, 5);
  EXPECT_EQ(c->world_size, 8);
  EXPECT_EQ(c->local_rank, 1);
  EXPECT_EQ(c->local_world_size, 4);
  EXPECT_EQ(c->node_rank, 1);
  EXPECT_EQ(c->num_nodes, 2);
  EXPECT_EQ(c->master_addr, "10.0.0.1");
  EXPECT_EQ(c->master_port, 29500);
}

TEST(ContextTest, TorchrunWorldOfOneNeedsNoRendezvous) {
  auto c = parse({{"RANK", "0"}, {"WORLD_SIZE", "1"}, {"LOCAL_RANK", "0"}});
  ASSERT_TRUE(c.ok()) << c.status().to_string();
  EXPECT_EQ(c->world_size, 1);
}

TEST(ContextTest, GroupRankIsTorchrunsNodeRank) {
  auto c = parse(with(without(kTorch, "NODE_RANK"), "GROUP_RANK", "1"));
  ASSERT_TRUE(c.ok()) << c.status().to_string();
  EXPECT_EQ(c->node_rank, 1);
}

TEST(ContextTest, MissingVariablesAreNamed) {
  expect_error_naming(without(kMpi, "OMPI_COMM_WORLD_SIZE"), "OMPI_COMM_WORLD_SIZE");
  expect_error_naming(without(kMpi, "OMPI_COMM_WORLD_LOCAL_RANK"), "OMPI_COMM_WORLD_LOCAL_RANK");
  expect_error_naming(without(kTorch, "WORLD_SIZE"), "WORLD_SIZE");
  expect_error_naming(without(kTorch, "RANK"), "RANK");
  expect_error_naming(without(kTorch, "LOCAL_RANK"), "LOCAL_RANK");
  expect_error_naming(without(kTorch, "MASTER_ADDR"), "MASTER_ADDR");
  expect_error_naming(without(kTorch, "MASTER_PORT"), "MASTER_PORT");
}

TEST(ContextTest, GarbageVariablesAreNamed) {
  expect_error_naming(with(kMpi, "OMPI_COMM_WORLD_RANK", "three"), "OMPI_COMM_WORLD_RANK");
  expect_error_naming(with(kMpi, "OMPI_COMM_WORLD_SIZE", "4x"), "OMPI_COMM_WORLD_SIZE");
  expect_error_naming(with(kMpi, "OMPI_COMM_WORLD_SIZE", ""), "OMPI_COMM_WORLD_SIZE");
  expect_error_naming(with(kMpi, "OMPI_COMM_WORLD_SIZE", "99999999999"), "OMPI_COMM_WORLD_SIZE");
  expect_error_naming(with(kTorch, "RANK", "-1"), "RANK");
  expect_error_naming(with(kTorch, "MASTER_PORT", "70000"), "MASTER_PORT");
  expect_error_naming(with(kTorch, "LOCAL_WORLD_SIZE", "0"), "LOCAL_WORLD_SIZE");
  expect_error_naming(with(kTorch, "NODE_RANK", "one"), "NODE_RANK");
  expect_error_naming(with(kMpi, "COHORT_ATTEMPT", "0"), "COHORT_ATTEMPT");
  expect_error_naming(with(kMpi, "COHORT_ATTEMPT", "1.5"), "COHORT_ATTEMPT");
  expect_error_naming(with(kMpi, "COHORT_NODE_RANK", "x"), "COHORT_NODE_RANK");
  expect_error_naming(with(kMpi, "COHORT_JOB_ID", ""), "COHORT_JOB_ID");
  expect_error_naming(with(kMpi, "COHORT_JOB_ID", "a b"), "COHORT_JOB_ID");
  expect_error_naming(with(kMpi, "COHORT_CHECKPOINT_DIR", ""), "COHORT_CHECKPOINT_DIR");
}

TEST(ContextTest, ContradictionsAreNamed) {
  expect_error_naming(with(kMpi, "OMPI_COMM_WORLD_RANK", "4"), "OMPI_COMM_WORLD_RANK");
  expect_error_naming(with(kMpi, "OMPI_COMM_WORLD_LOCAL_RANK", "2"), "OMPI_COMM_WORLD_LOCAL_RANK");
  expect_error_naming(with(kTorch, "RANK", "8"), "RANK");
  expect_error_naming(with(kTorch, "LOCAL_RANK", "4"), "LOCAL_RANK");
  auto env = with(kMpi, "COHORT_NUM_NODES", "2");
  expect_error_naming(with(env, "COHORT_NODE_RANK", "2"), "COHORT_NODE_RANK");
}

TEST(ContextTest, MpiWinsOverEnvStyleWhenBothAreSet) {
  auto env = kMpi;
  env.insert(kTorch.begin(), kTorch.end());
  auto c = parse(env);
  ASSERT_TRUE(c.ok()) << c.status().to_string();
  EXPECT_EQ(c->launch, LaunchKind::kMpi);
  EXPECT_EQ(c->rank, 3);
}

// A preemption notice, a job's side: the runner's files, read with a stat, agreed collectively.
class PreemptionContextTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() / ("cohort-context-" + std::to_string(getpid()));
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  Context job() {
    auto c = parse({{"COHORT_RUN_DIR", dir_.string()},
                    {"COHORT_PROGRESS_FILE", (dir_ / "progress").string()},
                    {"COHORT_NOTICE_FILE", (dir_ / "notice").string()},
                    {"COHORT_NOTICE_SIGNAL", "SIGUSR2"}});
    EXPECT_TRUE(c.ok()) << c.status().to_string();
    return c.ok() ? *c : Context{};
  }
  static std::string read(const std::filesystem::path& p) {
    std::ifstream in(p);
    return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  }
  std::filesystem::path dir_;
};

TEST_F(PreemptionContextTest, TheRunnersFilesAndSignalAreRead) {
  const Context c = job();
  EXPECT_EQ(c.notice_file, dir_ / "notice");
  EXPECT_EQ(c.progress_file, dir_ / "progress");
  EXPECT_EQ(c.run_dir, dir_);
  EXPECT_EQ(c.notice_signal, SIGUSR2);
  EXPECT_EQ(parse({{"COHORT_NOTICE_SIGNAL", "none"}})->notice_signal, 0);
  expect_error_naming({{"COHORT_NOTICE_SIGNAL", "SIGKILL"}}, "COHORT_NOTICE_SIGNAL");
}

TEST_F(PreemptionContextTest, TheNoticeFileIsTheNoticeAndHoldsTheDeadline) {
  const Context c = job();
  auto comm = Communicator::create(c);
  ASSERT_TRUE(comm.ok()) << comm.status().to_string();
  EXPECT_FALSE(c.preemption_noticed());
  EXPECT_EQ(c.preemption_requested(**comm).value(), false);
  EXPECT_FALSE(c.preemption_deadline().has_value());
  std::ofstream(dir_ / "notice") << R"({"event": "Preempt", "deadline_unix_ms": 1796102570550})"
                                 << "\n";
  EXPECT_TRUE(c.preemption_noticed());
  EXPECT_EQ(c.preemption_requested(**comm).value(), true);
  ASSERT_TRUE(c.preemption_deadline().has_value());
  EXPECT_EQ(std::chrono::duration_cast<std::chrono::milliseconds>(c.preemption_deadline()->time_since_epoch()).count(),
            1796102570550);
  std::ofstream(dir_ / "notice") << "half a";
  EXPECT_TRUE(c.preemption_noticed()) << "a notice is a notice even before its deadline is readable";
  EXPECT_FALSE(c.preemption_deadline().has_value());
  EXPECT_FALSE(Context{}.preemption_noticed()) << "outside a Cohort job there is no notice file";
}

TEST_F(PreemptionContextTest, TheNoticeSignalIsCaughtNotFatal) {
  // In a child: the handler and its flag are the process's for good.
  EXPECT_EXIT(
      {
        ::setenv("COHORT_NOTICE_SIGNAL", "SIGUSR1", 1);
        auto c = Context::from_environment();
        if (!c.ok() || c->preemption_noticed()) _exit(3);
        std::raise(SIGUSR1);
        _exit(c->preemption_noticed() ? 0 : 4);
      },
      ::testing::ExitedWithCode(0), "");
}

TEST_F(PreemptionContextTest, ProgressIsWrittenWholeAtMostEvery50MsUnlessForced) {
  const Context c = job();
  const auto first = std::chrono::steady_clock::now();
  ASSERT_TRUE(c.report_progress(7, /*force=*/true).ok());
  EXPECT_EQ(read(dir_ / "progress"), "7\n");
  ASSERT_TRUE(c.report_progress(8).ok());
  // Only meaningful when this thread was not descheduled for 50 ms between the two calls.
  if (std::chrono::steady_clock::now() - first < std::chrono::milliseconds(40)) {
    EXPECT_EQ(read(dir_ / "progress"), "7\n") << "within 50 ms of the last write";
  }
  ASSERT_TRUE(c.report_progress(9, /*force=*/true).ok());
  EXPECT_EQ(read(dir_ / "progress"), "9\n");
  std::this_thread::sleep_for(std::chrono::milliseconds(60));
  ASSERT_TRUE(c.report_progress(10).ok());
  EXPECT_EQ(read(dir_ / "progress"), "10\n");
  EXPECT_TRUE(Context{}.report_progress(1, true).ok()) << "a no-op outside a Cohort job";
  Context gone = c;
  gone.progress_file = dir_ / "no" / "progress";
  const Status s = gone.report_progress(1, true);
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.message().find("no/progress"), std::string::npos) << s.to_string();
}

}  // namespace
}  // namespace cohort
