// No lost work on preemption, with real processes: a lowpriority cluster from `cohort up`, the
// digits example as a 2-node MPI job in containers (as root), `cohort node preempt` of one node
// mid-run. The job checkpoints at the notice, is requeued as preempted, resumes on a new node
// from that very step, and ends with the accuracy of an uninterrupted run, bit for bit.
#include <gtest/gtest.h>

#include "cluster_fixture.hpp"

namespace cohort::testing {
namespace {

// 45 steps per epoch: 27,000 steps, a few seconds of training on a quiet machine: long enough to
// preempt mid-run, short enough for CI.
constexpr int kEpochs = 600;
constexpr int kCheckpointEvery = 500;

class PreemptionTest : public ClusterFixture {};

TEST_F(PreemptionTest, DigitsSurvivesANoticeWithNothingLostAndTheSameAccuracy) {
  const std::string flags = " --epochs " + std::to_string(kEpochs) + " --data digits.csv.gz";
  // The uninterrupted run it must match: the same 2 ranks, the same flags.
  Captured ref = cohort({"run", "-n", "2", bin("example-digits"), "--epochs", std::to_string(kEpochs)}, seconds(120));
  ASSERT_TRUE(ref.status.success()) << ref.err;
  const std::string want = accuracy_in(ref.out);
  ASSERT_FALSE(want.empty()) << ref.out;

  create_cluster(0, 3, 5, "lowpriority");
  const fs::path ckpt = dir_ / "checkpoints";
  const auto spec = digits_job("digits", "command: ./example-digits" + flags + " --checkpoint-every " +
                                             std::to_string(kCheckpointEvery) +
                                             "\ndistribution: {type: mpi, process_count_per_instance: 1}\n"
                                             "resources: {instance_count: 2}\n"
                                             "checkpoint: {dir: " +
                                             ckpt.string() + "}\n");
  const std::string id = submit_job(spec);
  ASSERT_FALSE(id.empty());

  // Mid-run, off a checkpoint step, so the notice's own checkpoint is what saves the work.
  json job = wait_for_running(
      id, [](const json& j) { return int64_of(j["attempts"][0], "last_step") >= 2000; }, seconds(90));
  ASSERT_EQ(job.value("state", ""), "running");
  const std::string victim = job["attempts"][0]["nodes"][1];
  Captured p = cohort({"node", "preempt", victim, "--notice-seconds", "30"});
  ASSERT_TRUE(p.status.success()) << p.err;
  EXPECT_NE(p.out.find("has the notice"), std::string::npos) << p.out;

  ASSERT_TRUE(wait_until([&] { return job_state(id) == "succeeded"; }, seconds(150)))
      << cohort({"job", "show", id}).out << cohort({"job", "logs", id}).out;
  job = cohort_json({"job", "show", id});
  ASSERT_EQ(job["attempts"].size(), 2u) << job.dump(2);
  const json& first = job["attempts"][0];
  const json& second = job["attempts"][1];
  EXPECT_EQ(first["end_reason"], "preempted") << first.dump(2);
  const std::int64_t reached = int64_of(first, "last_step");
  EXPECT_EQ(int64_of(first, "checkpoint_step"), reached) << "the notice's checkpoint is of the last step";
  EXPECT_EQ(int64_of(second, "start_step"), reached) << "0 lost steps";
  const std::int64_t notice_to_durable = int64_of(first, "checkpoint_ms") - int64_of(first, "notice_ms");
  EXPECT_GE(notice_to_durable, 0);
  EXPECT_LE(notice_to_durable, 15000) << "half of a 30 s notice";
  for (const auto& n : second["nodes"])
    EXPECT_NE(n, victim) << "the preempted node runs nothing more";
  const std::string logs = cohort({"job", "logs", id}).out;
  EXPECT_NE(logs.find("resumed from step " + std::to_string(reached)), std::string::npos) << logs;
  EXPECT_EQ(accuracy_in(logs), want) << "the same final accuracy as without the preemption";
  // It goes as soon as nothing of the attempt runs there (its runner may still be shipping logs).
  EXPECT_EQ(wait_for_node_state(victim, "preempted", seconds(20)), "preempted")
      << cohort({"cluster", "show", "cpu"}).out;
}

}  // namespace
}  // namespace cohort::testing
