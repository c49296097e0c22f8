// `cohort-exec init`, the first process of a job's container: real ranks, real signals, real
// daemons. Every process a test starts carries its COHORT_JOB_ID, so TearDown can demand that
// none of them outlived init.
#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "exec_socket.hpp"
#include "rank_report.hpp"
#include "subprocess.hpp"
#include "test_support.hpp"

namespace cohort::testing {
namespace {

namespace fs = std::filesystem;
using std::chrono::milliseconds;
using std::chrono::seconds;
using Clock = std::chrono::steady_clock;

constexpr milliseconds kRunLimit = seconds(10);  // the bound on every wait of these tests

std::string read_file(const fs::path& path) {
  std::ifstream in(path);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

// Waits (bounded) until `done` holds; false if it never did.
template <typename Pred>
bool wait_until(Pred done, milliseconds timeout = kRunLimit) {
  const auto deadline = Clock::now() + timeout;
  while (!done()) {
    if (Clock::now() >= deadline) return false;
    std::this_thread::sleep_for(milliseconds(10));
  }
  return true;
}

// The parent pid of `pid` from /proc/PID/stat; -1 when it is gone.
pid_t parent_of(pid_t pid) {
  const std::string stat = read_file("/proc/" + std::to_string(pid) + "/stat");
  const auto paren = stat.rfind(')');
  if (paren == std::string::npos || paren + 4 >= stat.size()) return -1;
  return static_cast<pid_t>(std::atol(stat.c_str() + paren + 4));
}

bool is_gone(pid_t pid) {
  return ::kill(pid, 0) != 0 && errno == ESRCH;
}

// How `p` ended, waiting at most `timeout`; nullopt when it is still running.
std::optional<ExitStatus> wait_end(Subprocess& p, milliseconds timeout = kRunLimit) {
  const auto deadline = Clock::now() + timeout;
  while (Clock::now() < deadline) {
    auto r = p.wait_for(std::chrono::duration_cast<milliseconds>(deadline - Clock::now()));
    if (!r.ok()) return std::nullopt;
    if (r.value()) return *r.value();
  }
  return std::nullopt;
}

class ExecInitTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = (fs::temp_directory_path() / "exec-init-XXXXXX").string();
    ASSERT_NE(mkdtemp(tmpl.data()), nullptr) << std::strerror(errno);
    dir_ = tmpl;
  }

  void TearDown() override {
    auto left = wait_for_no_processes_of_job(job_, seconds(5));
    EXPECT_TRUE(left.empty()) << left.size() << " process(es) of job " << job_
                              << " outlived cohort-exec init, e.g. pid " << (left.empty() ? 0 : left.front());
    for (pid_t pid : left)
      ::kill(pid, SIGKILL);  // so one failure does not leave sleepers to the next test
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }

  // `cohort-exec init ARGS...` with this test's job id and run directory; NODE_RANK as given.
  SpawnOptions init(const std::vector<std::string>& args, const std::string& node_rank = "0") const {
    SpawnOptions o;
    o.argv = {bin("cohort-exec"), "init"};
    o.argv.insert(o.argv.end(), args.begin(), args.end());
    // An OMPI_COMM_WORLD_RANK of the test's own environment would win over RANK: blank it.
    o.env = {{"COHORT_JOB_ID", job_},
             {"COHORT_RUN_DIR", dir_.string()},
             {"NODE_RANK", node_rank},
             {"OMPI_COMM_WORLD_RANK", ""}};
    return o;
  }

  // `cohort-exec init --idle` with its exec socket at `socket`, once it is ready.
  Result<Subprocess> start_idle_init(const fs::path& socket) const {
    const std::string ready = (dir_ / "ready").string();
    auto spawned = Subprocess::spawn(
        init({"--idle", "--grace-ms", "500", "--ready-file", ready, "--exec-socket", socket.string()}));
    if (spawned.ok() && !wait_until([&] { return fs::exists(ready); })) return internal_error("init never got ready");
    return spawned;
  }

  Captured run_init(const std::vector<std::string>& args, const std::string& node_rank = "0") const {
    auto r = run_captured(init(args, node_rank), kRunLimit);
    EXPECT_TRUE(r.ok()) << r.status().to_string();
    if (!r.ok()) return {};
    EXPECT_FALSE(r.value().timed_out) << "cohort-exec init ran past " << kRunLimit.count() << " ms";
    return r.value();
  }

  std::vector<RankReport> reports() const { return read_reports(dir_); }

  std::string job_ = unique_job_id("init");
  fs::path dir_;
};

const RankReport* find_rank(const std::vector<RankReport>& reports, int rank) {
  auto it = std::find_if(reports.begin(), reports.end(), [&](const RankReport& r) { return r.rank == rank; });
  return it == reports.end() ? nullptr : &*it;
}

TEST_F(ExecInitTest, StartsTheNodesRanksWithTheirRanksAndReportsEach) {
  const std::string ready = (dir_ / "ready").string();
  auto r = run_init(
      {"--ranks", "3", "--ready-file", ready, "--", "sh", "-c", "echo $RANK $LOCAL_RANK $LOCAL_WORLD_SIZE"}, "2");
  ASSERT_EQ(r.status.shell_code(), 0) << r.err;
  for (int local = 0; local < 3; ++local) {
    const std::string rank = std::to_string(6 + local);
    EXPECT_NE(r.out.find("[rank " + rank + "] " + rank + " " + std::to_string(local) + " 3\n"), std::string::npos)
        << r.out;
  }
  EXPECT_EQ(read_file(ready), "ready\n");
  auto all = reports();
  ASSERT_EQ(all.size(), 3u) << r.err;
  for (int rank = 6; rank <= 8; ++rank) {
    const RankReport* report = find_rank(all, rank);
    ASSERT_NE(report, nullptr) << "no report of rank " << rank;
    EXPECT_TRUE(report->status.success()) << report->status.describe();
    EXPECT_FALSE(report->stopped);
  }
  for (const auto& entry : fs::directory_iterator(dir_))
    EXPECT_EQ(entry.path().filename().string().find(".tmp"), std::string::npos) << entry.path();
}

TEST_F(ExecInitTest, FailsFastWithTheFirstFailingRanksCode) {
  const auto start = Clock::now();
  auto r = run_init({"--ranks", "3", "--", "sh", "-c", "if [ $LOCAL_RANK = 1 ]; then sleep 0.2; exit 7; fi; sleep 30"});
  EXPECT_EQ(r.status.signal, 0);
  EXPECT_EQ(r.status.code, 7) << r.err;
  EXPECT_LT(Clock::now() - start, seconds(3)) << "the sleepers were waited for, not stopped";
  EXPECT_NE(r.err.find("rank 1 exited with code 7"), std::string::npos) << r.err;

  auto all = reports();
  ASSERT_EQ(all.size(), 3u) << r.err;
  const RankReport* failed = find_rank(all, 1);
  ASSERT_NE(failed, nullptr);
  EXPECT_EQ(failed->status.code, 7);
  EXPECT_FALSE(failed->stopped);
  for (int rank : {0, 2}) {
    const RankReport* sleeper = find_rank(all, rank);
    ASSERT_NE(sleeper, nullptr);
    EXPECT_EQ(sleeper->status.signal, SIGTERM) << "rank " << rank << " " << sleeper->status.describe();
    EXPECT_TRUE(sleeper->stopped) << "rank " << rank;
    EXPECT_LT(failed->end_ns, sleeper->end_ns) << "rank " << rank;
  }
  auto first = first_failure(all);
  ASSERT_TRUE(first.has_value());
  EXPECT_EQ(first->rank, 1);
}

TEST_F(ExecInitTest, KillsARankThatIgnoresSigtermAfterTheGrace) {
  // Rank 1 fails only once rank 0 ignores SIGTERM, so the stop always meets the trap.
  const auto start = Clock::now();
  auto r = run_init({"--ranks", "2", "--grace-ms", "300", "--", "sh", "-c",
                     "if [ $LOCAL_RANK = 0 ]; then trap '' TERM; touch $COHORT_RUN_DIR/trapped; sleep 30; exit 0; fi; "
                     "while [ ! -e $COHORT_RUN_DIR/trapped ]; do sleep 0.02; done; exit 3"});
  const auto took = Clock::now() - start;
  EXPECT_EQ(r.status.code, 3) << r.err;
  EXPECT_GE(took, milliseconds(300));
  EXPECT_LT(took, seconds(3));
  EXPECT_NE(r.err.find("killing them"), std::string::npos) << r.err;
  auto all = reports();
  const RankReport* stubborn = find_rank(all, 0);
  ASSERT_NE(stubborn, nullptr) << "the wrapper of rank 0 got no time to write its report";
  EXPECT_EQ(stubborn->status.signal, SIGKILL) << stubborn->status.describe();
  EXPECT_TRUE(stubborn->stopped);
}

TEST_F(ExecInitTest, SigtermEndsEveryRankWithinTheGraceAndInitBySigterm) {
  auto o =
      init({"--ranks", "2", "--grace-ms", "1000", "--", "sh", "-c",
            "if [ $LOCAL_RANK = 1 ]; then trap '' TERM; fi; touch $COHORT_RUN_DIR/up-$LOCAL_RANK; sleep 30; exit 0"});
  o.stdout_file = (dir_ / "out").string();
  o.stderr_file = (dir_ / "err").string();
  auto spawned = Subprocess::spawn(o);
  ASSERT_TRUE(spawned.ok()) << spawned.status().to_string();
  Subprocess& p = spawned.value();
  ASSERT_TRUE(wait_until([&] { return fs::exists(dir_ / "up-0") && fs::exists(dir_ / "up-1"); }));
  ASSERT_TRUE(p.signal(SIGTERM).ok());
  const auto start = Clock::now();
  auto st = wait_end(p);
  const auto took = Clock::now() - start;
  ASSERT_TRUE(st.has_value()) << "init did not end " << kRunLimit.count() << " ms after SIGTERM";
  EXPECT_EQ(st->shell_code(), 128 + SIGTERM) << st->describe() << "\n" << read_file(dir_ / "err");
  EXPECT_GE(took, milliseconds(1000)) << "rank 1 ignores SIGTERM: only the SIGKILL after the grace ends it";
  EXPECT_LT(took, milliseconds(1000) + seconds(2));
  auto all = reports();
  ASSERT_EQ(all.size(), 2u) << read_file(dir_ / "err");
  EXPECT_EQ(all[0].status.signal, SIGTERM) << all[0].status.describe();
  EXPECT_EQ(all[1].status.signal, SIGKILL) << all[1].status.describe();
  EXPECT_TRUE(all[0].stopped && all[1].stopped);
}

TEST_F(ExecInitTest, IdleReapsDaemonsAndEndsThemOnSigterm) {
  // The setup command leaves two daemons (their parent exits at once), one ignoring SIGTERM, and
  // fails itself: neither its exit nor its code may end init.
  const std::string ready = (dir_ / "ready").string();
  auto o = init({"--idle", "--grace-ms", "500", "--ready-file", ready, "--", "sh", "-c",
                 "setsid sleep 30 >/dev/null 2>&1 & echo $! > $COHORT_RUN_DIR/daemon.tmp; "
                 "setsid sh -c \"trap '' TERM; sleep 30\" >/dev/null 2>&1 & echo $! > $COHORT_RUN_DIR/stubborn.tmp; "
                 "mv $COHORT_RUN_DIR/daemon.tmp $COHORT_RUN_DIR/daemon; "
                 "mv $COHORT_RUN_DIR/stubborn.tmp $COHORT_RUN_DIR/stubborn; exit 4"});
  o.stderr_file = (dir_ / "err").string();
  auto spawned = Subprocess::spawn(o);
  ASSERT_TRUE(spawned.ok()) << spawned.status().to_string();
  Subprocess& p = spawned.value();
  ASSERT_TRUE(wait_until([&] { return fs::exists(dir_ / "daemon") && fs::exists(dir_ / "stubborn"); }));
  const pid_t daemon = std::atoi(read_file(dir_ / "daemon").c_str());
  const pid_t stubborn = std::atoi(read_file(dir_ / "stubborn").c_str());
  ASSERT_GT(daemon, 0);
  ASSERT_GT(stubborn, 0);
  // Their parent exited: as a subreaper, init is theirs now.
  EXPECT_TRUE(wait_until([&] { return parent_of(daemon) == p.pid() && parent_of(stubborn) == p.pid(); }))
      << "daemon's parent " << parent_of(daemon) << ", stubborn's " << parent_of(stubborn) << ", init " << p.pid();
  EXPECT_EQ(read_file(ready), "ready\n");
  auto early = p.wait_for(milliseconds(200));
  ASSERT_TRUE(early.ok());
  ASSERT_FALSE(early.value().has_value()) << "the setup command's exit ended init: " << early.value()->describe();

  ASSERT_TRUE(p.signal(SIGTERM).ok());
  const auto start = Clock::now();
  auto st = wait_end(p);
  ASSERT_TRUE(st.has_value()) << "init --idle did not end after SIGTERM";
  EXPECT_TRUE(st->success()) << st->describe() << "\n" << read_file(dir_ / "err");
  EXPECT_GE(Clock::now() - start, milliseconds(500)) << "the stubborn daemon ignores SIGTERM";
  EXPECT_LT(Clock::now() - start, seconds(3));
  EXPECT_TRUE(is_gone(daemon));
  EXPECT_TRUE(is_gone(stubborn));
  EXPECT_NE(read_file(dir_ / "err").find("setup command sh exited with code 4"), std::string::npos)
      << read_file(dir_ / "err");
}

// What the runner does for a peer's bridge: one request on init's exec socket, the process's
// output on the pipes it passed, its exit in the reply.
struct ExecResult {
  std::string out, err;
  std::optional<ExitStatus> exit;
};
ExecResult exec_through(const fs::path& socket, const std::vector<std::string>& argv,
                        const std::vector<std::string>& env) {
  ExecResult r;
  int out[2], err[2];
  EXPECT_EQ(::pipe2(out, O_CLOEXEC), 0);
  EXPECT_EQ(::pipe2(err, O_CLOEXEC), 0);
  auto sock = connect_exec_socket(socket.string());
  EXPECT_TRUE(sock.ok()) << sock.status().to_string();
  if (sock.ok()) {
    Status sent = send_exec_request(*sock, argv, env, out[1], err[1]);
    EXPECT_TRUE(sent.ok()) << sent.to_string();
  }
  ::close(out[1]);
  ::close(err[1]);
  auto drain = [](int fd) {
    std::string text;
    char buf[4096];
    for (ssize_t n; (n = ::read(fd, buf, sizeof buf)) > 0;)
      text.append(buf, static_cast<std::size_t>(n));
    ::close(fd);
    return text;
  };
  r.out = drain(out[0]);
  r.err = drain(err[0]);
  if (sock.ok()) {
    char reply[64];
    const ssize_t n = ::recv(*sock, reply, sizeof reply, 0);
    if (n > 0) {
      auto parsed = parse_exec_exit(std::string_view(reply, static_cast<std::size_t>(n)));
      if (parsed.ok()) r.exit = *parsed;
    }
    ::close(*sock);
  }
  return r;
}

TEST_F(ExecInitTest, IdleStartsWhatItsExecSocketIsAskedForAndReportsItsExit) {
  // A deep directory: the socket's path is longer than a sockaddr_un holds.
  const fs::path deep = dir_ / std::string(60, 'd') / std::string(60, 'e');
  fs::create_directories(deep);
  const fs::path socket = deep / "exec.sock";
  auto spawned = start_idle_init(socket);
  ASSERT_TRUE(spawned.ok()) << spawned.status().to_string();
  Subprocess& p = spawned.value();
  EXPECT_EQ(fs::status(socket).permissions() & fs::perms::all, fs::perms::owner_read | fs::perms::owner_write);

  auto r = exec_through(socket, {"sh", "-c", "echo \"out $GREETING\"; echo err >&2; exit 3"},
                        {"GREETING=hi", "PATH=/usr/bin:/bin"});
  EXPECT_EQ(r.out, "out hi\n");
  EXPECT_EQ(r.err, "err\n");
  ASSERT_TRUE(r.exit.has_value()) << "no exit reply";
  EXPECT_EQ(r.exit->code, 3);

  // Exactly the environment asked for: nothing of init's own.
  r = exec_through(socket, {"/usr/bin/env"}, {"ONLY=this"});
  EXPECT_EQ(r.out, "ONLY=this\n");

  // A request without its two descriptors is refused; init goes on.
  auto sock = connect_exec_socket(socket.string());
  ASSERT_TRUE(sock.ok());
  const char bad[] = "1\0true";
  ASSERT_EQ(::send(*sock, bad, sizeof bad, 0), static_cast<ssize_t>(sizeof bad));
  char reply[64];
  const ssize_t n = ::recv(*sock, reply, sizeof reply, 0);
  ASSERT_GT(n, 0);
  auto refused = parse_exec_exit(std::string_view(reply, static_cast<std::size_t>(n)));
  ASSERT_TRUE(refused.ok());
  EXPECT_EQ(refused->code, 255);
  ::close(*sock);
  r = exec_through(socket, {"true"}, {"PATH=/usr/bin:/bin"});
  ASSERT_TRUE(r.exit.has_value());
  EXPECT_TRUE(r.exit->success());

  // A daemon it started (parent exits at once) is init's to end.
  r = exec_through(socket, {"sh", "-c", "sleep 30 >/dev/null 2>&1 & echo $! > $0", (dir_ / "daemon").string()},
                   {"PATH=/usr/bin:/bin"});
  ASSERT_TRUE(r.exit.has_value());
  const pid_t daemon = std::atoi(read_file(dir_ / "daemon").c_str());
  ASSERT_GT(daemon, 0);
  ASSERT_TRUE(p.signal(SIGTERM).ok());
  auto st = wait_end(p);
  ASSERT_TRUE(st.has_value());
  EXPECT_TRUE(st->success()) << st->describe();
  EXPECT_TRUE(is_gone(daemon));
}

// A preemption notice on an MPI worker node: init passes the signal to the processes Open MPI's
// daemon started (its ranks' wrappers), not to the daemon.
TEST_F(ExecInitTest, IdlePassesANoticeSignalToTheChildrenOfWhatItStarted) {
  const fs::path socket = dir_ / "exec.sock";
  auto spawned = start_idle_init(socket);
  ASSERT_TRUE(spawned.ok()) << spawned.status().to_string();
  Subprocess& p = spawned.value();
  const fs::path up = dir_ / "up", got = dir_ / "got";
  // The outer shell stands for the daemon (it would die of an unexpected SIGUSR1), the inner one
  // for a rank.
  const std::string rank =
      "trap 'echo got > " + got.string() + "; exit 5' USR1; echo > " + up.string() + "; while :; do sleep 0.05; done";
  ExecResult r;
  std::thread daemon([&] {
    r = exec_through(socket, {"sh", "-c", "sh -c \"$0\"; echo \"rank $?\"", rank}, {"PATH=/usr/bin:/bin"});
  });
  const bool started = wait_until([&] { return fs::exists(up); });
  if (started) (void)p.signal(SIGUSR1);
  const bool delivered = started && wait_until([&] { return fs::exists(got); });
  if (!delivered) (void)p.signal(SIGTERM);  // so the thread ends either way
  daemon.join();
  EXPECT_TRUE(delivered) << "the rank never got SIGUSR1";
  EXPECT_EQ(r.out, "rank 5\n") << "the daemon outlived the signal and saw its rank's exit";
  ASSERT_TRUE(p.signal(SIGTERM).ok());
  ASSERT_TRUE(wait_end(p).has_value());
}

TEST_F(ExecInitTest, DiesWithItsParent) {
  // A shell stands for `runc run` (or the runner's keeper): SIGKILL it, and init and its ranks go.
  SpawnOptions o;
  o.argv = {"sh", "-c", "\"$0\" init --ranks 2 -- sleep 30 & wait", bin("cohort-exec")};
  o.env = {{"COHORT_JOB_ID", job_}, {"OMPI_COMM_WORLD_RANK", ""}};
  auto spawned = Subprocess::spawn(o);
  ASSERT_TRUE(spawned.ok()) << spawned.status().to_string();
  Subprocess& parent = spawned.value();
  ASSERT_TRUE(wait_for_processes_named(job_, "sleep", 2, kRunLimit));
  // init and the two rank wrappers, each named as ps users expect (not "exe").
  EXPECT_TRUE(wait_for_processes_named(job_, "cohort-exec", 3, kRunLimit));
  ASSERT_TRUE(parent.signal(SIGKILL).ok());
  ASSERT_TRUE(wait_end(parent).has_value());
  auto left = wait_for_no_processes_of_job(job_, seconds(5));
  EXPECT_TRUE(left.empty()) << left.size() << " process(es) outlived init's parent";
}

TEST_F(ExecInitTest, AsPid1EndsEveryProcessOfItsNamespace) {
  if (!is_root()) GTEST_SKIP() << "a pid namespace needs root";
  // Rank 1 leaves a daemon behind and fails; rank 0 sleeps. As pid 1, init must take the daemon
  // down too (kill(-1, SIGKILL)), and exit with rank 1's code.
  auto o = init({"--ranks", "2", "--grace-ms", "300", "--", "sh", "-c",
                 "if [ $LOCAL_RANK = 1 ]; then setsid sleep 30 >/dev/null 2>&1 & sleep 0.2; exit 5; fi; sleep 30"});
  o.argv.insert(o.argv.begin(), {"unshare", "--pid", "--fork", "--mount-proc"});
  auto r = run_captured(o, kRunLimit);
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  if (r.value().err.find("unshare failed") != std::string::npos) GTEST_SKIP() << r.value().err;
  EXPECT_EQ(r.value().status.shell_code(), 5) << r.value().err;
  auto all = reports();
  ASSERT_EQ(all.size(), 2u) << r.value().err;
  EXPECT_EQ(all[0].status.signal, SIGTERM);
  EXPECT_EQ(all[1].status.code, 5);
}

TEST_F(ExecInitTest, PlainRunsTheProgramOnceUnwrappedWithItsExit) {
  auto r = run_init({"--plain", "--", "sh", "-c", "echo \"rank=${RANK:-none}\"; exit 3"});
  EXPECT_EQ(r.status.code, 3) << r.err;
  EXPECT_EQ(r.out, "rank=none\n") << "plain mode prefixed or set rank variables";
  EXPECT_TRUE(reports().empty()) << "plain mode wrote a rank report";
}

// The readiness gate's go file: init says ready, then starts nothing until the file is there (made
// by rename, as the runner does), or ends as a stop signal would with nothing started.
TEST_F(ExecInitTest, WaitFileHoldsTheProgramUntilItIsThereOrAStop) {
  const fs::path go = dir_ / "gate" / "go";
  const fs::path started = dir_ / "started";
  fs::create_directories(go.parent_path());
  auto p = Subprocess::spawn(init({"--ready-file", (dir_ / "ready").string(), "--wait-file", go.string(), "--plain",
                                   "--", "sh", "-c", "touch " + started.string()}));
  ASSERT_TRUE(p.ok()) << p.status().to_string();
  ASSERT_TRUE(wait_until([&] { return fs::exists(dir_ / "ready"); })) << "init never said ready";
  std::this_thread::sleep_for(milliseconds(200));
  EXPECT_FALSE(fs::exists(started)) << "the program started before the go file";
  std::ofstream(go.string() + ".tmp") << "go\n";
  fs::rename(go.string() + ".tmp", go);
  auto end = wait_end(*p);
  ASSERT_TRUE(end.has_value()) << "init did not go on once the file was there";
  EXPECT_EQ(end->code, 0);
  EXPECT_TRUE(fs::exists(started));

  fs::remove(started);
  fs::remove(go);
  auto q = Subprocess::spawn(init({"--ready-file", (dir_ / "ready2").string(), "--wait-file", go.string(), "--plain",
                                   "--", "sh", "-c", "touch " + started.string()}));
  ASSERT_TRUE(q.ok()) << q.status().to_string();
  ASSERT_TRUE(wait_until([&] { return fs::exists(dir_ / "ready2"); })) << "init never said ready";
  ASSERT_EQ(::kill(q->pid(), SIGTERM), 0);
  end = wait_end(*q);
  ASSERT_TRUE(end.has_value()) << "a stop while init waited for its go file did not end it";
  EXPECT_EQ(end->signal, SIGTERM);
  EXPECT_FALSE(fs::exists(started));
}

TEST_F(ExecInitTest, MergeOutputSendsStderrToStdoutInOrder) {
  auto r = run_init({"--merge-output", "--plain", "--", "sh", "-c", "echo one; echo two >&2; echo three"});
  EXPECT_EQ(r.status.code, 0) << r.err;
  EXPECT_EQ(r.out, "one\ntwo\nthree\n");
  EXPECT_EQ(r.err, "");
}

TEST_F(ExecInitTest, OrphansLeftByThePlainProgramGetSigtermBeforeTheSweep) {
  // As an MPI head's local ranks when mpirun dies first: they must have the time to write their
  // reports, not be SIGKILLed mid-write.
  auto r = run_init({"--plain", "--", "sh", "-c",
                     "(trap 'touch $COHORT_RUN_DIR/termed; exit 0' TERM; sleep 30 & wait) & sleep 0.2; exit 0"});
  EXPECT_EQ(r.status.code, 0) << r.err;
  EXPECT_TRUE(fs::exists(dir_ / "termed")) << "the orphan was killed without a SIGTERM first";
}

TEST_F(ExecInitTest, SigtermStopsAPlainProgramsWholeGroup) {
  auto o =
      init({"--plain", "--grace-ms", "300", "--", "sh", "-c", "sleep 30 & sleep 30 & touch $COHORT_RUN_DIR/up; wait"});
  auto spawned = Subprocess::spawn(o);
  ASSERT_TRUE(spawned.ok()) << spawned.status().to_string();
  Subprocess& p = spawned.value();
  ASSERT_TRUE(wait_until([&] { return fs::exists(dir_ / "up"); }));
  ASSERT_TRUE(p.signal(SIGTERM).ok());
  const auto start = Clock::now();
  auto st = wait_end(p);
  ASSERT_TRUE(st.has_value()) << "init --plain did not end after SIGTERM";
  EXPECT_EQ(st->shell_code(), 128 + SIGTERM) << st->describe();
  EXPECT_LT(Clock::now() - start, seconds(2));
  // TearDown checks that neither sleeper outlived init.
}

TEST_F(ExecInitTest, BadFlagsAreUsageErrors) {
  auto r = run_init({});
  EXPECT_EQ(r.status.code, 255);
  EXPECT_NE(r.err.find("no PROGRAM given"), std::string::npos) << r.err;
  r = run_init({"--ranks", "0", "--", "true"});
  EXPECT_EQ(r.status.code, 255);
  EXPECT_NE(r.err.find("--ranks '0' must be a number from 1 to 4096"), std::string::npos) << r.err;
  r = run_init({"--idle", "--plain", "true"});
  EXPECT_EQ(r.status.code, 255);
  EXPECT_NE(r.err.find("--idle and --plain exclude each other"), std::string::npos) << r.err;
  r = run_init({"--exec-socket", (dir_ / "s").string(), "true"});
  EXPECT_EQ(r.status.code, 255);
  EXPECT_NE(r.err.find("--exec-socket goes with --idle"), std::string::npos) << r.err;
  r = run_init({"--grace-ms"});
  EXPECT_EQ(r.status.code, 255);
  EXPECT_NE(r.err.find("--grace-ms needs a value"), std::string::npos) << r.err;
  r = run_init({"--fast", "true"});
  EXPECT_EQ(r.status.code, 255);
  EXPECT_NE(r.err.find("unknown flag '--fast'"), std::string::npos) << r.err;
  r = run_init({"true"}, "two");
  EXPECT_EQ(r.status.code, 255);
  EXPECT_NE(r.err.find("NODE_RANK='two' is not a node index"), std::string::npos) << r.err;
  r = run_init({"--ready-file", (dir_ / "no/such/dir/ready").string(), "true"});
  EXPECT_EQ(r.status.code, 255);
  EXPECT_NE(r.err.find("writing the ready file"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace cohort::testing
