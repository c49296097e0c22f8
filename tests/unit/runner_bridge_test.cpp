// `cohort-exec bridge` against the head runner's BridgeServer: what Open MPI sees when the node it
// names is not in the attempt or its runner cannot be reached (ssh's 255 and a message naming it).
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>

#include "bridge_server.hpp"
#include "subprocess.hpp"
#include "test_support.hpp"

namespace cohort::runner {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

class RunnerBridgeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("runner-bridge-test-" + std::to_string(getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    v1::Assignment a;
    a.set_job("j");
    a.set_attempt(1);
    a.set_secret("s");
    a.add_node_addresses("10.0.0.1");
    a.add_peer_endpoints("127.0.0.1:1");  // nothing listens there
    auto server = BridgeServer::start(dir_ / "bridge.sock", a, geteuid(), getegid());
    ASSERT_TRUE(server.ok()) << server.status().to_string();
    server_ = std::move(server).value();
  }
  void TearDown() override {
    server_.reset();
    fs::remove_all(dir_);
  }
  Captured bridge(std::vector<std::string> args, bool with_socket = true) {
    args.insert(args.begin(), {testing::bin("cohort-exec"), "bridge"});
    SpawnOptions o{.argv = args};
    o.env = {{"COHORT_BRIDGE_SOCKET", with_socket ? (dir_ / "bridge.sock").string() : ""}};
    auto r = run_captured(o, 20s);
    EXPECT_TRUE(r.ok()) << r.status().to_string();
    return r.ok() ? *r : Captured{};
  }

  fs::path dir_;
  std::unique_ptr<BridgeServer> server_;
};

TEST_F(RunnerBridgeTest, ANodeNotInTheAttemptIsNamed) {
  Captured r = bridge({"-x", "10.9.9.9", "orted", "--daemonize"});
  EXPECT_EQ(r.status.code, 255);
  EXPECT_NE(r.err.find("no node 10.9.9.9 in this attempt"), std::string::npos) << r.err;
}

TEST_F(RunnerBridgeTest, AnUnreachableRunnerIsNamedWithItsEndpoint) {
  Captured r = bridge({"10.0.0.1", "true"});
  EXPECT_EQ(r.status.code, 255);
  EXPECT_NE(r.err.find("node 10.0.0.1 (127.0.0.1:1)"), std::string::npos) << r.err;
}

TEST_F(RunnerBridgeTest, OutsideAJobTheBridgeSaysSo) {
  Captured r = bridge({"10.0.0.1", "true"}, false);
  EXPECT_EQ(r.status.code, 255);
  EXPECT_NE(r.err.find("COHORT_BRIDGE_SOCKET is not set"), std::string::npos) << r.err;
  EXPECT_EQ(fs::status(dir_ / "bridge.sock").permissions() & fs::perms::all,
            fs::perms::owner_read | fs::perms::owner_write);
}

}  // namespace
}  // namespace cohort::runner
