// TLS between runners: each keeps its own key across restarts, and a peer call reaches a node's
// PeerService only when it trusts that node's own certificate, the one the manager handed out.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "peer_service.hpp"
#include "peer_tls.hpp"
#include "test_support.hpp"

namespace cohort::runner {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

class PeerTlsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    TaskEnvironment env{dir_, "n", {}, 300ms, nullptr, &spawner_, nullptr};
    table_ = std::make_unique<TaskTable>(std::move(env), 5s);
  }
  void TearDown() override {
    server_.reset();
    table_.reset();
  }

  PeerIdentity identity(const std::string& name) {
    auto id = load_or_make_peer_identity(dir_ / name);
    EXPECT_TRUE(id.ok()) << id.status().to_string();
    return id.ok() ? *id : PeerIdentity{};
  }

  // An attempt whose only node is this test's server, trusting `certificate` for it.
  v1::Assignment attempt(const std::string& certificate) const {
    v1::Assignment a;
    a.set_job("j");
    a.set_attempt(1);
    a.set_secret("s3cret");
    a.add_node_addresses("127.0.0.1");
    a.add_peer_endpoints("127.0.0.1:" + std::to_string(server_->port()));
    a.add_peer_certificates(certificate);
    return a;
  }

  // What a Ready call for job j attempt 1 gets from the server, trusting `certificate`.
  grpc::Status ready(const std::string& certificate) const {
    auto target = peer_endpoint(attempt(certificate), 0);
    EXPECT_TRUE(target.ok()) << target.status().to_string();
    auto channel = rpc::make_channel(*target);
    EXPECT_TRUE(channel.ok()) << channel.status().to_string();
    auto stub = v1::PeerService::NewStub(*channel);
    v1::PeerReadyRequest rq;
    rq.set_job("j");
    rq.set_attempt(1);
    v1::PeerReadyResponse out;
    grpc::ClientContext ctx;
    rpc::prepare(ctx, "s3cret", 5000ms);
    return stub->Ready(&ctx, rq, &out);
  }

  testing::ScratchDir scratch_{"runner-peer-tls-test"};
  const fs::path dir_ = scratch_.path();
  Spawner spawner_;
  std::unique_ptr<TaskTable> table_;
  std::unique_ptr<PeerServer> server_;
};

TEST_F(PeerTlsTest, TheKeyIsMadeOnceKeptAcrossRestartsAndRemadeWhenBroken) {
  const PeerIdentity first = identity("peer-tls");
  ASSERT_NE(first.certificate_pem.find("BEGIN CERTIFICATE"), std::string::npos);
  EXPECT_EQ(fs::status(dir_ / "peer-tls" / "key.pem").permissions() & fs::perms::all,
            fs::perms::owner_read | fs::perms::owner_write);
  EXPECT_EQ(fs::status(dir_ / "peer-tls").permissions() & fs::perms::all, fs::perms::owner_all);

  const PeerIdentity again = identity("peer-tls");
  EXPECT_EQ(again.certificate_pem, first.certificate_pem) << "a restarted runner must keep its identity";
  EXPECT_EQ(again.private_key_pem, first.private_key_pem);

  std::ofstream(dir_ / "peer-tls" / "key.pem", std::ios::trunc) << "not a key";
  const PeerIdentity remade = identity("peer-tls");
  EXPECT_NE(remade.certificate_pem, first.certificate_pem);
  EXPECT_NE(remade.private_key_pem.find("PRIVATE KEY"), std::string::npos);
}

TEST_F(PeerTlsTest, APeerCallGetsThroughOnlyTrustingThatNodesOwnCertificate) {
  const PeerIdentity node = identity("node"), stranger = identity("stranger");
  auto server = PeerServer::start("127.0.0.1:0", *table_, node);
  ASSERT_TRUE(server.ok()) << server.status().to_string();
  server_ = std::move(server).value();

  // Through TLS to the service itself, which does not run the attempt.
  const grpc::Status through = ready(node.certificate_pem);
  EXPECT_EQ(through.error_code(), grpc::StatusCode::NOT_FOUND) << through.error_message();
  EXPECT_NE(through.error_message().find("has not started job j attempt 1"), std::string::npos)
      << through.error_message();

  // Another key under the same name, and plaintext, never reach it.
  EXPECT_EQ(ready(stranger.certificate_pem).error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_EQ(ready("").error_code(), grpc::StatusCode::UNAVAILABLE);
}

TEST_F(PeerTlsTest, TheReadinessGateAsksThroughTls) {
  const PeerIdentity node = identity("node");
  auto server = PeerServer::start("127.0.0.1:0", *table_, node);
  ASSERT_TRUE(server.ok()) << server.status().to_string();
  server_ = std::move(server).value();
  const Status s =
      wait_peer_ready(attempt(node.certificate_pem), 0, std::chrono::steady_clock::now() + 300ms, [] { return false; });
  EXPECT_EQ(s.code(), Code::kTimedOut);
  // The node's own answer: the call got through.
  EXPECT_NE(s.to_string().find("has not started job j attempt 1"), std::string::npos) << s.to_string();
}

TEST(PeerChannelTest, OneChannelPerEndpointAndCertificateWhateverTheAttempt) {
  v1::Assignment first;
  first.set_job("a");
  first.set_attempt(1);
  first.set_secret("s1");
  first.add_peer_endpoints("10.0.0.1:4000");
  first.add_peer_certificates("PEM 1");
  v1::Assignment next = first;
  next.set_job("b");
  next.set_secret("s2");
  auto one = peer_channel(first, 0), two = peer_channel(next, 0);
  ASSERT_TRUE(one.ok() && two.ok());
  EXPECT_EQ(one->get(), two->get()) << "the second attempt's calls should reuse the open connection";
  v1::Assignment rekeyed = first;
  rekeyed.set_peer_certificates(0, "PEM 2");  // the node's runner came back with a new key
  auto three = peer_channel(rekeyed, 0);
  ASSERT_TRUE(three.ok());
  EXPECT_NE(one->get(), three->get());
}

TEST(PeerEndpointTest, PinsTheRanksCertificateAndNamesAMissingNode) {
  v1::Assignment a;
  a.set_job("j");
  a.set_attempt(3);
  a.set_secret("s");
  a.add_peer_endpoints("10.0.0.1:4000");
  a.add_peer_endpoints("10.0.0.2:4000");
  a.add_peer_certificates("PEM 1");
  a.add_peer_certificates("");  // a runner from before TLS between runners
  auto first = peer_endpoint(a, 0);
  ASSERT_TRUE(first.ok());
  EXPECT_EQ(first->address, "10.0.0.1:4000");
  EXPECT_EQ(first->token, "s");
  EXPECT_EQ(first->ca_pem, "PEM 1");
  EXPECT_EQ(first->tls_name, kPeerTlsName);
  auto old = peer_endpoint(a, 1);
  ASSERT_TRUE(old.ok());
  EXPECT_EQ(old->ca_pem, "");
  auto missing = peer_endpoint(a, 2);
  EXPECT_EQ(missing.status().code(), Code::kNotFound);
  EXPECT_NE(missing.status().to_string().find("node rank 2 of job j attempt 3"), std::string::npos);
}

}  // namespace
}  // namespace cohort::runner
