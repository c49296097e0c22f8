// What a collective that lost a peer says, and the pieces that decide it, in process and without
// MPI: the collective timeout's variable, the launcher's rank reports as the library reads them,
// the verdict's words, the call thread's deadline, and Work's accounting of the timeout.
#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <future>
#include <thread>

#include "cohort/collectives.hpp"
#include "collectives/call_thread.hpp"
#include "collectives/comm_health.hpp"
#include "collectives/peer_exits.hpp"
#include "collectives/work_backend.hpp"
#include "rank_report.hpp"

namespace cohort {
namespace {

namespace fs = std::filesystem;
using std::chrono::milliseconds;
using Clock = std::chrono::steady_clock;

class RunDir : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("cohort-collective-failure-" + std::to_string(getpid()) + "-" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  // A report as `cohort-exec rank` writes it, `ago_ms` milliseconds ago.
  void report(int rank, ExitStatus status, long ago_ms = 1500) {
    timespec now{};
    clock_gettime(CLOCK_REALTIME, &now);
    const std::int64_t now_ns = static_cast<std::int64_t>(now.tv_sec) * 1'000'000'000 + now.tv_nsec;
    RankReport r{.rank = rank, .host = "node-7", .pid = 42, .status = status, .end_ns = now_ns - ago_ms * 1'000'000};
    ASSERT_TRUE(write_report(dir_, r).ok());
  }
  detail::CommHealth health(int rank, fs::path run_dir) {
    return detail::CommHealth(rank, {.collective_timeout = milliseconds(2000), .run_dir = std::move(run_dir)});
  }

  fs::path dir_;
};

TEST(CollectiveTimeoutTest, IsAWholePositiveNumberOfMilliseconds) {
  EXPECT_EQ(CommunicatorOptions::parse_timeout("2000").value(), milliseconds(2000));
  EXPECT_EQ(CommunicatorOptions::parse_timeout("1").value(), milliseconds(1));
  for (const char* bad : {"", "0", "-5", "2s", "1.5", " 20", "99999999999999999999", "2592000001"}) {
    auto r = CommunicatorOptions::parse_timeout(bad);
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_EQ(r.status().code(), Code::kInvalidArgument);
    EXPECT_NE(r.status().message().find("COHORT_COLLECTIVE_TIMEOUT_MS='" + std::string(bad) + "'"), std::string::npos)
        << r.status().message();
  }
}

TEST(PeerExitsTest, ReadsWhatTheLauncherWrites) {
  RankReport r{.rank = 3, .host = "cohort-node-1", .pid = 77, .status = {0, 9}, .end_ns = 123456789, .stopped = true};
  auto peer = detail::parse_peer_exit(format_report(r));
  ASSERT_TRUE(peer.has_value());
  EXPECT_EQ(peer->rank, 3);
  EXPECT_EQ(peer->host, "cohort-node-1");
  EXPECT_EQ(peer->signal, 9);
  EXPECT_EQ(peer->code, 0);
  EXPECT_EQ(peer->end_ns, 123456789);
  EXPECT_TRUE(peer->stopped);
  EXPECT_FALSE(detail::parse_peer_exit("rank=3 host=h").has_value());
  EXPECT_FALSE(detail::parse_peer_exit("garbage").has_value());
  // A field from a newer launcher is skipped.
  EXPECT_TRUE(detail::parse_peer_exit("rank=1 host=h code=3 signal=0 end_ns=5 uptime=9 stopped=0").has_value());
}

TEST_F(RunDir, ATimeoutNamesTheDeadPeerItsHostAndSignal) {
  report(0, {0, 0});  // this rank's own report (it cannot be there in practice) is not a peer's
  report(2, {0, 9});
  auto h = health(0, dir_);
  const Status s = h.give_up("allreduce sum of 1024 fp32 (4096 bytes) on rank 0 of 3");
  EXPECT_EQ(s.code(), Code::kDisconnected);
  const std::string& m = s.message();
  EXPECT_NE(m.find("allreduce sum of 1024 fp32 (4096 bytes) on rank 0 of 3 cannot complete"), std::string::npos) << m;
  EXPECT_NE(m.find("its peer rank 2 on host node-7 was killed by signal 9 (SIGKILL) 1."), std::string::npos) << m;
  EXPECT_NE(m.find("within 2000 ms (the collective timeout, COHORT_COLLECTIVE_TIMEOUT_MS)"), std::string::npos) << m;
  EXPECT_NE(m.find("end this rank with a non-zero exit"), std::string::npos) << m;
  EXPECT_EQ(m.find("rank 0 on host"), std::string::npos) << m;
}

TEST_F(RunDir, SeveralDeadPeersAreNamedEarliestFirst) {
  report(3, {1, 0}, 200);
  report(1, {0, 15}, 900);
  auto h = health(0, dir_);
  const std::string m = h.give_up("barrier on rank 0 of 4").message();
  const auto first = m.find("rank 1 on host node-7 was killed by signal 15 (SIGTERM)");
  const auto second = m.find("rank 3 on host node-7 exited with code 1");
  ASSERT_NE(first, std::string::npos) << m;
  ASSERT_NE(second, std::string::npos) << m;
  EXPECT_LT(first, second);
}

TEST_F(RunDir, WithoutADeadPeerItIsATimeoutNamingTheOperation) {
  auto h = health(1, dir_);
  const Status s = h.give_up("broadcast from rank 0 of 8 fp32 (32 bytes) on rank 1 of 2");
  EXPECT_EQ(s.code(), Code::kTimedOut);
  EXPECT_NE(
      s.message().find("broadcast from rank 0 of 8 fp32 (32 bytes) on rank 1 of 2 did not complete within 2000 ms"),
      std::string::npos)
      << s.message();
  EXPECT_NE(s.message().find("no rank of the job has ended"), std::string::npos) << s.message();

  auto without_launcher = health(1, {});
  EXPECT_NE(without_launcher.give_up("barrier").message().find("cannot tell which"), std::string::npos);
}

TEST_F(RunDir, AfterAFailureEveryCallFailsAtOnceWithTheFirstError) {
  report(2, {0, 9});
  auto h = health(0, dir_);
  EXPECT_TRUE(h.check("allreduce").ok());
  const Status first = h.give_up("allreduce sum of 4 fp32 (16 bytes) on rank 0 of 3");
  EXPECT_TRUE(h.broken());
  const Status later = h.check("barrier on rank 0 of 3");
  EXPECT_EQ(later.code(), Code::kDisconnected);
  EXPECT_NE(later.message().find("barrier on rank 0 of 3: not run, because an earlier collective failed for good"),
            std::string::npos)
      << later.message();
  EXPECT_NE(later.message().find(first.message()), std::string::npos);
  // A second verdict does not replace the first.
  (void)h.give_up("something else");
  EXPECT_NE(h.check("x").message().find(first.message()), std::string::npos);
}

TEST_F(RunDir, AnMpiErrorIsDisconnectedAndNamesTheDeadPeer) {
  report(1, {0, 9});
  auto h = health(0, dir_);
  const Status s = h.fail("allgather of 4 fp32 (16 bytes) per rank on rank 0 of 2",
                          {Code::kDisconnected, "MPI_Testall failed on rank 0: MPI_ERR_PROC_FAILED"});
  EXPECT_EQ(s.code(), Code::kDisconnected);
  EXPECT_NE(s.message().find("MPI_ERR_PROC_FAILED; its peer rank 1 on host node-7 was killed by signal 9"),
            std::string::npos)
      << s.message();
  EXPECT_TRUE(h.broken());
}

TEST(CallThreadTest, ReturnsTheCallsStatus) {
  detail::CallThread t;
  auto s = t.run([] { return Status(Code::kDataLoss, "x"); }, Clock::now() + std::chrono::seconds(10));
  ASSERT_TRUE(s.has_value());
  EXPECT_EQ(s->code(), Code::kDataLoss);
  s = t.run([] { return Status(); }, Clock::now() + std::chrono::seconds(10));
  ASSERT_TRUE(s.has_value());
  EXPECT_TRUE(s->ok());
}

TEST(CallThreadTest, AbandonsACallPastItsDeadlineAndNeverBlocksOnIt) {
  std::promise<void> release;
  std::shared_future<void> released = release.get_future().share();
  const auto start = Clock::now();
  {
    detail::CallThread t;
    auto s = t.run(
        [released] {
          released.wait();
          return Status();
        },
        start + milliseconds(100));
    EXPECT_FALSE(s.has_value());
    EXPECT_TRUE(t.abandoned());
    const auto after = Clock::now();
    EXPECT_FALSE(t.run([] { return Status(); }, after + std::chrono::seconds(10)).has_value());
    EXPECT_LT(Clock::now() - after, milliseconds(50)) << "a lost thread must refuse at once";
  }  // the destructor detaches the stuck thread
  EXPECT_LT(Clock::now() - start, std::chrono::seconds(2));
  release.set_value();  // lets the detached thread end
}

// A Backend that never completes, with a collective timeout of `limit`.
class StuckBackend final : public Work::Backend {
 public:
  explicit StuckBackend(milliseconds limit, int* give_ups) : limit_(limit), give_ups_(give_ups) {}
  std::optional<Status> poll() override { return result_; }
  std::string describe() const override { return "stuck op"; }
  milliseconds limit() const override { return limit_; }
  Status give_up() override {
    ++*give_ups_;
    result_ = Status(Code::kDisconnected, "peer gone");
    return *result_;
  }

 private:
  milliseconds limit_;
  int* give_ups_;
  std::optional<Status> result_;
};

TEST(WorkTimeoutTest, ShortWaitsAreLocalAndAddUpToTheCollectiveTimeout) {
  int give_ups = 0;
  Work w(std::make_unique<StuckBackend>(milliseconds(300), &give_ups));
  const auto start = Clock::now();
  Status s = w.wait(milliseconds(100));
  EXPECT_EQ(s.code(), Code::kTimedOut);
  EXPECT_NE(s.message().find("stuck op did not complete within 100 ms"), std::string::npos) << s.message();
  EXPECT_FALSE(w.done());
  s = w.wait(milliseconds(100));
  EXPECT_EQ(s.code(), Code::kTimedOut);
  EXPECT_EQ(give_ups, 0);
  s = w.wait(milliseconds(1000));  // only 100 ms of the collective timeout are left
  const auto took = Clock::now() - start;
  EXPECT_EQ(s.code(), Code::kDisconnected);
  EXPECT_EQ(give_ups, 1);
  EXPECT_TRUE(w.done());
  EXPECT_GE(took, milliseconds(300));
  EXPECT_LT(took, milliseconds(600));
  EXPECT_EQ(w.wait().code(), Code::kDisconnected);  // final, at once
  EXPECT_EQ(give_ups, 1);
}

TEST(WorkTimeoutTest, AWaitWithoutTimeoutEndsAtTheCollectiveTimeout) {
  int give_ups = 0;
  Work w(std::make_unique<StuckBackend>(milliseconds(200), &give_ups));
  const auto start = Clock::now();
  EXPECT_EQ(w.wait().code(), Code::kDisconnected);
  EXPECT_LT(Clock::now() - start, milliseconds(500));
  EXPECT_EQ(give_ups, 1);
}

}  // namespace
}  // namespace cohort
