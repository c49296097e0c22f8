// The chaos suite: the examples run on a real cluster (`cohort up`, the local provider) while
// nodes are killed without notice or cut off, nodes are preempted again and again, and the manager is killed,
// and every job must still end succeeded with correct results: the digits accuracy of an
// uninterrupted run, at most one checkpoint interval of lost steps for a kill and none for a
// notice, and batch inference output holding every row exactly once. The fixture's teardown checks
// that nothing of the cluster is left.
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include "cluster_fixture.hpp"
#include "local_nodes.hpp"

namespace cohort::testing {
namespace {

constexpr int kEpochs = 600;
constexpr int kCheckpointEvery = 500;

class ChaosTest : public ClusterFixture {
 protected:
  // The accuracy of the digits job without faults: 2 ranks, the same flags.
  std::string reference_accuracy() {
    Captured ref = cohort({"run", "-n", "2", bin("example-digits"), "--epochs", std::to_string(kEpochs)}, seconds(120));
    EXPECT_TRUE(ref.status.success()) << ref.err;
    return accuracy_in(ref.out);
  }

  std::string submit_digits() {
    const auto spec =
        digits_job("digits", "command: ./example-digits --epochs " + std::to_string(kEpochs) +
                                 " --data digits.csv.gz --checkpoint-every " + std::to_string(kCheckpointEvery) +
                                 "\ndistribution: {type: mpi, process_count_per_instance: 1}\n"
                                 "resources: {instance_count: 2}\ncheckpoint: {dir: " +
                                 (dir_ / "checkpoints").string() + "}\n");
    Captured r = cohort({"job", "submit", spec.string()});
    EXPECT_TRUE(r.status.success()) << r.err;
    return r.out.substr(0, r.out.find('\n'));
  }

  // Waits until attempt `number` runs and `done()` says it got far enough; returns the job.
  // `done` looks at what the job wrote (its checkpoints, its output), which shows progress the
  // moment it happens; the manager hears of steps only at the next heartbeat.
  template <typename Done>
  json wait_for(const std::string& id, int number, Done done, const std::string& what) {
    json job;
    const bool reached = wait_until(
        [&] {
          if (!done()) return false;
          job = cohort_json({"job", "show", id});
          return job.value("state", "") == "running" && static_cast<int>(job["attempts"].size()) == number &&
                 job["attempts"][number - 1].value("state", "") == "running";
        },
        seconds(120));
    EXPECT_TRUE(reached) << "attempt " << number << " never got to " << what << ":\n" << job.dump(2);
    return job;
  }

  // The newest digits checkpoint's step on disk, -1 without one.
  std::int64_t newest_checkpoint() const {
    std::int64_t newest = -1;
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(dir_ / "checkpoints", ec)) {
      const std::string name = e.path().filename();
      if (name.starts_with("step-") && name.find(".tmp") == std::string::npos && fs::exists(e.path() / "MANIFEST.json"))
        newest = std::max<std::int64_t>(newest, std::stoll(name.substr(5)));
    }
    return newest;
  }

  json wait_for_success(const std::string& id) {
    EXPECT_TRUE(wait_until([&] { return job_state(id) == "succeeded"; }, seconds(240)))
        << cohort({"job", "show", id}).out << cohort({"job", "logs", id}).out;
    return cohort_json({"job", "show", id});
  }

  // kill -9 of a whole node: its runner and everything it started, at once.
  void kill_node(const std::string& node) {
    const pid_t runner = std::stoi(read_word(dir_ / "nodes" / node / "runner.pid"));
    auto killed = kill_node_processes(runner, "cohort-manager");
    ASSERT_TRUE(killed.ok()) << killed.status().to_string();
    ASSERT_GT(*killed, 0);
  }

  // The digits job on a dedicated cluster, waited for until its checkpoint of step 2000 is
  // committed; sets `want` to the accuracy of the same run without faults.
  json digits_past_step_2000(std::string& id, std::string& want) {
    want = reference_accuracy();
    EXPECT_FALSE(want.empty());
    create_cluster(0, 3, 5);
    id = submit_digits();
    return wait_for(
        id, 1, [&] { return newest_checkpoint() >= 2000; }, "checkpoint 2000");
  }

  // Attempt 1 lost `victim`; attempt 2 ran elsewhere from a checkpoint, lost at most one
  // checkpoint interval of steps, and reached the accuracy `want`.
  void expect_resumed_after_loss(const std::string& id, const json& job, const std::string& victim,
                                 const std::string& want) {
    ASSERT_EQ(job["attempts"].size(), 2u) << job.dump(2);
    const json& first = job["attempts"][0];
    EXPECT_EQ(first["end_reason"], "node_lost") << first.dump(2);
    for (const auto& n : job["attempts"][1]["nodes"])
      EXPECT_NE(n, victim);
    const std::int64_t lost = int64_of(first, "last_step") - int64_of(job["attempts"][1], "start_step");
    EXPECT_GE(lost, 0);
    EXPECT_LE(lost, kCheckpointEvery) << "a lost node loses at most the steps since the last checkpoint";
    EXPECT_GT(int64_of(job["attempts"][1], "start_step"), 0) << "it resumed from a checkpoint, not from the start";
    EXPECT_EQ(accuracy_in(cohort({"job", "logs", id}).out), want);
  }

  // Every row of a batch inference output, once: the row numbers of all part files.
  static void expect_every_row_once(const fs::path& out, std::int64_t rows) {
    std::vector<char> seen(static_cast<std::size_t>(rows), 0);
    std::int64_t total = 0, twice = 0;
    for (const auto& e : fs::directory_iterator(out)) {
      const std::string name = e.path().filename();
      EXPECT_EQ(name.find(".tmp-"), std::string::npos) << "a temporary left behind: " << name;
      if (!name.starts_with("part-")) continue;
      std::ifstream in(e.path());
      for (std::string line; std::getline(in, line);) {
        const std::int64_t row = std::stoll(line.substr(0, line.find(',')));
        ASSERT_TRUE(row >= 0 && row < rows) << line;
        twice += seen[static_cast<std::size_t>(row)]++ != 0;
        ++total;
      }
    }
    EXPECT_EQ(total, rows);
    EXPECT_EQ(twice, 0);
    EXPECT_TRUE(fs::exists(out / "_SUCCESS"));
  }
};

TEST_F(ChaosTest, ANodeKilledWithoutNoticeCostsAtMostOneCheckpointInterval) {
  std::string id, want;
  json job = digits_past_step_2000(id, want);
  const std::string victim = job["attempts"][0]["nodes"][1];
  const auto killed_ms = duration_cast<milliseconds>(std::chrono::system_clock::now().time_since_epoch()).count();
  kill_node(victim);
  job = wait_for_success(id);
  expect_resumed_after_loss(id, job, victim, want);
  if (HasFatalFailure()) return;
  // Resumed (its first step) within heartbeat_timeout + one heartbeat + the job's launch + 5 s.
  // The launch is the first attempt's, allocation to first step: a relaunch that is slower (a new
  // node unreachable for a while, say) eats into the 5 s.
  const auto first_step_ms = [&](const json& a) {
    return int64_of(a, "started_ms") + static_cast<std::int64_t>(a["timings"].value("first_progress_s", 0.0) * 1000);
  };
  const json& first = job["attempts"][0];
  const std::int64_t launch_ms = first_step_ms(first) - int64_of(first, "created_ms");
  const std::int64_t resumed_ms = first_step_ms(job["attempts"][1]) - killed_ms;
  EXPECT_LE(resumed_ms, 5000 + 1000 + launch_ms + 5000)
      << "resumed " << resumed_ms << " ms after the kill; the job's launch takes " << launch_ms << " ms";
}

// A node cut off: its link goes down (no MPI traffic in or out) and its runner falls silent, as
// when a machine drops off the network with its processes still running. Local runners reach
// the manager through a path socket, which no link carries, so the runner is frozen (SIGSTOP)
// to cut that path too. The manager calls the node lost, takes it at once (nothing there may
// write on), and the job resumes on other nodes from its last checkpoint.
TEST_F(ChaosTest, ANodeCutOffIsLostAndTheJobResumesFromItsCheckpoint) {
  if (::geteuid() != 0) GTEST_SKIP() << "cutting a node's link needs root (nodes are network namespaces)";
  std::string id, want;
  json job = digits_past_step_2000(id, want);
  const std::string victim = job["attempts"][0]["nodes"][0];  // the head: mpirun and rank 0
  const pid_t runner = std::stoi(read_word(dir_ / "nodes" / victim / "runner.pid"));
  // Held: the node made to replace this one would get its namespace's number.
  auto held = NetNamespaceRef::of_process(runner);
  ASSERT_TRUE(held.ok()) << held.status().to_string();
  const ino_t ns = held->inode();
  ASSERT_TRUE(run_ip_batch(runner, "link set eth0 down\n").ok());
  ASSERT_EQ(::kill(runner, SIGSTOP), 0);
  EXPECT_EQ(wait_for_node_state(victim, "lost", seconds(30)), "lost");
  EXPECT_TRUE(wait_until([&] { return processes_in_net_namespace(ns).empty(); }, seconds(15)))
      << "the cut-off node's processes outlived its removal";
  expect_resumed_after_loss(id, wait_for_success(id), victim, want);
}

TEST_F(ChaosTest, RepeatedNoticesLoseNoStepAndKeepTheAccuracy) {
  const std::string want = reference_accuracy();
  ASSERT_FALSE(want.empty());
  create_cluster(0, 3, 5, "lowpriority");
  const std::string id = submit_digits();
  for (int attempt = 1; attempt <= 2; ++attempt) {
    const std::int64_t step = 2000 + 6000 * (attempt - 1);
    json job = wait_for(
        id, attempt, [&] { return newest_checkpoint() >= step; }, "checkpoint " + std::to_string(step));
    const std::string victim = job["attempts"][attempt - 1]["nodes"][attempt % 2];
    Captured p = cohort({"node", "preempt", victim, "--notice-seconds", "30"});
    ASSERT_TRUE(p.status.success()) << p.out << p.err << job.dump(2);
  }
  const json job = wait_for_success(id);
  ASSERT_EQ(job["attempts"].size(), 3u) << job.dump(2);
  for (int i = 0; i < 2; ++i) {
    const json& a = job["attempts"][i];
    EXPECT_EQ(a["end_reason"], "preempted") << a.dump(2);
    EXPECT_EQ(int64_of(job["attempts"][i + 1], "start_step"), int64_of(a, "last_step")) << "0 lost steps";
  }
  EXPECT_NE(job["message"].get<std::string>().find("succeeded on attempt 3"), std::string::npos);
  EXPECT_EQ(accuracy_in(cohort({"job", "logs", id}).out), want);
}

TEST_F(ChaosTest, AManagerKilledMidRunThenANoticeStillLosesNothing) {
  const std::string want = reference_accuracy();
  ASSERT_FALSE(want.empty());
  create_cluster(0, 3, 5, "lowpriority");
  const std::string id = submit_digits();
  wait_for(
      id, 1, [&] { return newest_checkpoint() >= 1000; }, "checkpoint 1000");
  const pid_t manager = std::stoi(read_word(dir_ / "manager.pid"));
  ASSERT_EQ(::kill(manager, SIGKILL), 0);
  ASSERT_TRUE(wait_until([&] { return ::kill(manager, 0) != 0; }, seconds(10)));
  up();  // the same state: the running attempt is picked up again, not restarted
  json job = wait_for(
      id, 1, [&] { return newest_checkpoint() >= 2500; }, "checkpoint 2500");
  Captured p = cohort({"node", "preempt", job["attempts"][0]["nodes"][1].get<std::string>(), "--notice-seconds", "30"});
  ASSERT_TRUE(p.status.success()) << p.err;
  job = wait_for_success(id);
  ASSERT_EQ(job["attempts"].size(), 2u) << job.dump(2);
  EXPECT_EQ(job["attempts"][0]["end_reason"], "preempted");
  EXPECT_EQ(int64_of(job["attempts"][1], "start_step"), int64_of(job["attempts"][0], "last_step"));
  EXPECT_EQ(accuracy_in(cohort({"job", "logs", id}).out), want);
}

TEST_F(ChaosTest, BatchInferenceThroughNoticesAndAKillHoldsEveryRowOnce) {
  // A model to score with, trained quickly in one process.
  const fs::path weights = dir_ / "weights.bin";
  auto trained =
      run_captured({.argv = {bin("example-digits"), "--epochs", "3", "--save-weights", weights.string()}}, seconds(60));
  ASSERT_TRUE(trained.ok() && trained->status.success());
  create_cluster(0, 3, 5, "lowpriority");
  constexpr std::int64_t kRows = 1'000'000;
  const fs::path out = dir_ / "scores";
  fs::create_directories(out);
  const auto spec = digits_job("infer",
                               "command: ./example-batch-infer --weights weights.bin --data digits.csv.gz "
                               "--rows 1000000 --shard-rows 20000 --output ${{outputs.scores}}\n"
                               "distribution: {type: mpi, process_count_per_instance: 1}\n"
                               "resources: {instance_count: 2}\n"
                               "outputs: {scores: {path: " +
                                   out.string() + "}}\nretries: {infrastructure: 3}\n");
  fs::copy_file(bin("example-batch-infer"), spec.parent_path() / "code" / "example-batch-infer");
  fs::copy_file(weights, spec.parent_path() / "code" / "weights.bin");
  Captured r = cohort({"job", "submit", spec.string()});
  ASSERT_TRUE(r.status.success()) << r.err;
  const std::string id = r.out.substr(0, r.out.find('\n'));
  const auto parts = [&] {
    int n = 0;
    for (const auto& e : fs::directory_iterator(out)) {
      const std::string name = e.path().filename();
      n += name.starts_with("part-") && name.find(".tmp-") == std::string::npos;
    }
    return n;
  };
  // Attempt 1 preempted after 8 of 50 shards, attempt 2 killed after 20, attempt 3 finishes.
  json job = wait_for(
      id, 1, [&] { return parts() >= 8; }, "8 shards");
  ASSERT_TRUE(cohort({"node", "preempt", job["attempts"][0]["nodes"][1].get<std::string>(), "--notice-seconds", "30"})
                  .status.success());
  job = wait_for(
      id, 2, [&] { return parts() >= 20; }, "20 shards");
  kill_node(job["attempts"][1]["nodes"][0]);
  job = wait_for_success(id);
  ASSERT_EQ(job["attempts"].size(), 3u) << job.dump(2);
  EXPECT_EQ(job["attempts"][0]["end_reason"], "preempted");
  EXPECT_EQ(job["attempts"][1]["end_reason"], "node_lost");
  expect_every_row_once(out, kRows);
  const std::string logs = cohort({"job", "logs", id}).out;
  EXPECT_NE(logs.find("skipped"), std::string::npos) << "the restarted runs skipped committed shards";
}

}  // namespace
}  // namespace cohort::testing
