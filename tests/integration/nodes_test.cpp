// `cohort run --nodes K`: ranks spread over local test nodes (network and UTS namespaces), and
// every namespace and process gone afterwards, whichever way the run ended.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <map>
#include <optional>
#include <regex>
#include <thread>

#include "digits_support.hpp"
#include "local_nodes.hpp"
#include "test_support.hpp"

namespace cohort::testing {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

class NodesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!is_root())
      GTEST_SKIP() << "local test nodes need root (network and UTS namespaces); skipped as uid " << geteuid();
    before_ = network_namespaces();
  }
  void TearDown() override {
    if (!is_root()) return;
    auto left = wait_for_no_processes_of_job(job_, seconds(5));
    EXPECT_TRUE(left.empty()) << left.size() << " process(es) of job " << job_ << " outlived cohort run";
    // Namespaces go with their last process; the kernel may take a moment to drop them.
    std::set<ino_t> extra;
    for (int i = 0; i < 50; ++i) {
      extra.clear();
      for (ino_t ns : network_namespaces()) {
        if (!before_.count(ns)) extra.insert(ns);
      }
      if (extra.empty()) break;
      std::this_thread::sleep_for(milliseconds(100));
    }
    EXPECT_TRUE(extra.empty()) << extra.size() << " network namespace(s) outlived cohort run";
  }
  std::string job_ = unique_job_id("nodes");
  std::set<ino_t> before_;
};

// rank -> the "host=... node=... addr=..." it printed
std::map<int, std::string> placements(const std::string& out) {
  std::map<int, std::string> m;
  std::regex line(R"(\[rank (\d+)\] (host=\S+ node=\S+ addr=\S+))");
  for (auto it = std::sregex_iterator(out.begin(), out.end(), line); it != std::sregex_iterator(); ++it) {
    m[std::stoi((*it)[1])] = (*it)[2];
  }
  return m;
}

const char* kWhere =
    "echo host=$(hostname) node=$COHORT_NODE_RANK/$COHORT_NUM_NODES addr=$(ip -4 -o addr show eth0 | awk '{print $4}')";

TEST_F(NodesTest, PlacesRanksOnTwoHostnames) {
  auto r = cohort_run({"--nodes", "2", "-n", "4", "--", "sh", "-c", kWhere}, job_);
  ASSERT_EQ(r.status.code, 0) << r.err;
  auto where = placements(r.out);
  ASSERT_EQ(where.size(), 4u) << r.out;
  EXPECT_EQ(where[0], "host=cohort-node-0 node=0/2 addr=10.231.0.1/24");
  EXPECT_EQ(where[1], "host=cohort-node-0 node=0/2 addr=10.231.0.1/24");
  EXPECT_EQ(where[2], "host=cohort-node-1 node=1/2 addr=10.231.0.2/24");
  EXPECT_EQ(where[3], "host=cohort-node-1 node=1/2 addr=10.231.0.2/24");
}

TEST_F(NodesTest, MpiCrossesNodesOverTheirNetwork) {
  auto r = cohort_run({"--nodes", "3", "-n", "3", bin("cohort-collectives-check")}, job_);
  EXPECT_EQ(r.status.code, 0) << r.err;
  EXPECT_NE(r.out.find("[rank 0] collectives check passed"), std::string::npos) << r.out;
}

TEST_F(NodesTest, FailingRankIsNamedWithItsNode) {
  auto r = cohort_run(
      {"--nodes", "2", "-n", "4", "--", "sh", "-c", "if [ $OMPI_COMM_WORLD_RANK = 3 ]; then exit 5; fi; sleep 60"},
      job_);
  EXPECT_EQ(r.status.code, 5) << r.err;
  EXPECT_NE(r.err.find("rank 3 on host cohort-node-1 exited with code 5"), std::string::npos) << r.err;
}

TEST_F(NodesTest, KilledCohortRunLeavesNoNamespace) {
  SpawnOptions o;
  o.argv = {bin("cohort"), "run", "--nodes", "2", "-n", "2", "--", "sleep", "60"};
  o.env = {{"COHORT_JOB_ID", job_}};
  o.capture_stdout = o.capture_stderr = true;
  auto run = Subprocess::spawn(o);
  ASSERT_TRUE(run.ok());
  ASSERT_TRUE(wait_for_processes_named(job_, "sleep", 2, seconds(20))) << "the ranks did not start within 20 s";
  ASSERT_TRUE(run->signal(SIGKILL).ok());
  (void)run->wait();
}

TEST_F(NodesTest, DigitsTrainsAcrossTwoNodesLikeOneProcess) {
  const std::string w1 = "/tmp/cohort-nodes-digits-1-" + job_ + ".bin";
  const std::string w4 = "/tmp/cohort-nodes-digits-4-" + job_ + ".bin";
  auto one = run_captured({.argv = {bin("example-digits"), "--save-weights", w1}}, seconds(120));
  ASSERT_TRUE(one.ok());
  ASSERT_EQ(one->status.code, 0) << one->err;
  auto r = cohort_run({"--nodes", "2", "-n", "4", bin("example-digits"), "--save-weights", w4}, job_);
  ASSERT_EQ(r.status.code, 0) << r.err;
  auto acc = final_accuracy(r.out);
  ASSERT_TRUE(acc.has_value()) << r.out;
  EXPECT_GE(*acc, 0.96);
  EXPECT_EQ(acc, final_accuracy(one->out));
  EXPECT_LE(max_abs_diff(read_weights(w1), read_weights(w4)), 1e-9);  // the tolerance of digits_run_test
  std::remove(w1.c_str());
  std::remove(w4.c_str());
}

// The kernel gives a freed namespace's number to the next one made, so a node's namespace is known
// by its number only while it is held: the local provider holds each node's until its removal ends,
// lest the removal's kill pass reach the node made after it.
TEST(NetNamespaceRefTest, AHeldNamespaceKeepsItsNumberFromTheNextOne) {
  if (!is_root()) GTEST_SKIP() << "making network namespaces needs root; skipped as uid " << geteuid();
  const ino_t ours = net_namespace_of(getpid());
  auto in_a_new_namespace = [&]() -> std::optional<Subprocess> {
    auto p = Subprocess::spawn({.argv = {"unshare", "--net", "sleep", "30"}});
    if (!p.ok()) return std::nullopt;
    const auto until = std::chrono::steady_clock::now() + seconds(5);
    for (;;) {
      const ino_t ns = net_namespace_of(p->pid());
      if (ns != ours && ns != 0) return std::move(p).value();
      if (std::chrono::steady_clock::now() >= until) return std::nullopt;
      std::this_thread::sleep_for(milliseconds(5));
    }
  };
  auto first = in_a_new_namespace();
  ASSERT_TRUE(first.has_value()) << "unshare --net did not make a namespace";
  auto held = NetNamespaceRef::of_process(first->pid());
  ASSERT_TRUE(held.ok()) << held.status().to_string();
  ASSERT_EQ(held->inode(), net_namespace_of(first->pid()));
  first->terminate(milliseconds(500));
  EXPECT_TRUE(processes_in_net_namespace(held->inode()).empty());
  for (int i = 0; i < 3; ++i) {
    auto next = in_a_new_namespace();
    ASSERT_TRUE(next.has_value()) << "unshare --net did not make a namespace";
    EXPECT_NE(net_namespace_of(next->pid()), held->inode()) << "a new namespace got the number of one still held";
    next->terminate(milliseconds(500));
  }
  EXPECT_FALSE(NetNamespaceRef::of_process(first->pid()).ok()) << "a gone process still names a namespace";
}

TEST(NodesWithoutRootTest, RefusedWithAClearError) {
  if (!is_root()) {
    auto r = run_captured({.argv = {bin("cohort"), "run", "--nodes", "2", "true"}}, seconds(30));
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(r->status.code, 1);
    EXPECT_NE(r->err.find("only root can create"), std::string::npos) << r->err;
    return;
  }
  // As root: drop to nobody for this one run.
  if (access("/usr/bin/setpriv", X_OK) != 0) GTEST_SKIP() << "setpriv (util-linux) is not installed";
  auto r = run_captured({.argv = {"/usr/bin/setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", bin("cohort"),
                                  "run", "--nodes", "2", "true"}},
                        seconds(30));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->status.code, 1) << r->err;
  EXPECT_NE(r->err.find("only root can create"), std::string::npos) << r->err;
}

}  // namespace
}  // namespace cohort::testing
