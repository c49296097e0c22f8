// The CLI's rendering: aligned tables with ages and JSON with every field, from hand-built
// messages, so a change of format is a visible test change.
#include <gtest/gtest.h>

#include "output.hpp"

namespace cohort::cli {
namespace {

constexpr std::int64_t kNow = 1'700'000'000'000;  // 2023-11-14T22:13:20Z

TEST(CliTableTest, AlignsColumnsUnderTheirHeaders) {
  Table t({"NAME", "STATE", "MESSAGE"});
  t.add_row({"a-long-name", "idle", "first line\nsecond"});
  t.add_row({"b", "busy", ""});
  EXPECT_EQ(t.render(),
            "NAME         STATE  MESSAGE\n"
            "a-long-name  idle   first line second\n"
            "b            busy\n");
}

TEST(CliFormatTest, AgesTimesDurationsAndBytes) {
  EXPECT_EQ(format_age(kNow - 3'000, kNow), "3s ago");
  EXPECT_EQ(format_age(kNow - 5 * 60'000, kNow), "5m ago");
  EXPECT_EQ(format_age(kNow - 2 * 3'600'000, kNow), "2h ago");
  EXPECT_EQ(format_age(kNow - 3 * 86'400'000LL, kNow), "3d ago");
  EXPECT_EQ(format_age(kNow + 500, kNow), "0s ago");  // a clock slightly ahead of ours
  EXPECT_EQ(format_age(0, kNow), "-");
  EXPECT_EQ(format_iso(kNow), "2023-11-14T22:13:20Z");
  EXPECT_EQ(format_iso(0), "-");
  EXPECT_EQ(format_duration(0.25), "250ms");
  EXPECT_EQ(format_duration(4.24), "4.2s");
  EXPECT_EQ(format_duration(42), "42s");
  EXPECT_EQ(format_duration(185), "3m05s");
  EXPECT_EQ(format_duration(7800), "2h10m");
  EXPECT_EQ(format_bytes(512), "512B");
  EXPECT_EQ(format_bytes(1536), "1.5K");
  EXPECT_EQ(format_bytes(4LL << 30), "4.0G");
  EXPECT_EQ(format_bytes(300LL << 20), "300M");
}

TEST(CliFormatTest, NodeCountsBusyFirstAndZerosLeftOut) {
  google::protobuf::Map<std::string, std::int32_t> counts;
  EXPECT_EQ(format_node_counts(counts), "0");
  counts["idle"] = 1;
  counts["busy"] = 2;
  counts["lost"] = 0;
  EXPECT_EQ(format_node_counts(counts), "2 busy, 1 idle");
}

v1::Cluster sample_cluster() {
  v1::Cluster c;
  auto* s = c.mutable_spec();
  s->set_name("cpu");
  s->set_vm_size("local-2c");
  s->set_min_nodes(0);
  s->set_max_nodes(4);
  s->set_idle_seconds_before_scaledown(120);
  s->set_vm_priority("lowpriority");
  s->set_provider("local");
  s->mutable_identity()->set_type("system");
  (*s->mutable_tags())["team"] = "vision";
  c.mutable_size()->set_name("local-2c");
  c.mutable_size()->set_cores(2);
  c.mutable_size()->set_memory_bytes(4LL << 30);
  c.set_created_ms(kNow - 60'000);
  (*c.mutable_node_counts())["busy"] = 2;
  auto* e = c.add_events();
  e->set_time_ms(kNow - 10'000);
  e->set_kind("scale_up");
  e->set_message("2 nodes for job j-1");
  return c;
}

TEST(CliOutputTest, ClustersTable) {
  v1::ListClustersResponse list;
  *list.add_clusters() = sample_cluster();
  EXPECT_EQ(clusters_table(list),
            "NAME  SIZE      PRIORITY     MIN  MAX  IDLE-S  NODES   PROVIDER\n"
            "cpu   local-2c  lowpriority  0    4    120     2 busy  local\n");
}

TEST(CliOutputTest, ClusterDetailsWithEvents) {
  const std::string out = cluster_details(sample_cluster(), kNow);
  EXPECT_NE(out.find("Name:                    cpu\n"), std::string::npos) << out;
  EXPECT_NE(out.find("local-2c (2 cores, 4.0G memory, 0 GPUs)"), std::string::npos) << out;
  EXPECT_NE(out.find("min 0, max 4, now 2 busy"), std::string::npos) << out;
  EXPECT_NE(out.find("Identity:                system\n"), std::string::npos) << out;
  EXPECT_NE(out.find("Tags:                    team=vision\n"), std::string::npos) << out;
  EXPECT_NE(out.find("(1m ago)"), std::string::npos) << out;
  EXPECT_NE(out.find("Events:\nTIME                  KIND      MESSAGE\n"
                     "2023-11-14T22:13:10Z  scale_up  2 nodes for job j-1\n"),
            std::string::npos)
      << out;
}

v1::Job sample_job() {
  v1::Job j;
  j.set_id("j-1");
  j.set_name("digits");
  j.set_cluster("cpu");
  j.set_state("failed");
  j.set_instance_count(2);
  j.set_submitted_ms(kNow - 90'000);
  j.set_message("rank 1 on node-b (host h2) exited with code 3");
  auto* a = j.add_attempts();
  a->set_number(1);
  a->add_nodes("node-a");
  a->add_nodes("node-b");
  a->set_state("failed");
  a->set_end_reason("user_error");
  a->set_started_ms(kNow - 80'000);
  a->set_ended_ms(kNow - 20'000);
  a->mutable_timings()->set_queued_s(1.5);
  a->mutable_timings()->set_provisioning_s(0.2);
  a->mutable_timings()->set_container_start_s(0.0581);
  a->mutable_timings()->set_launch_s(0.019);
  a->mutable_timings()->set_run_s(60);
  auto* f = a->mutable_first_failure();
  f->set_rank(3);
  f->set_node("node-b");
  f->set_host("h2");
  f->set_cause("rank 3 exited with code 7");
  return j;
}

TEST(CliOutputTest, JobsTable) {
  v1::ListJobsResponse list;
  *list.add_jobs() = sample_job();
  EXPECT_EQ(jobs_table(list, kNow),
            "ID   NAME    CLUSTER  STATE   ATTEMPTS  SUBMITTED  MESSAGE\n"
            "j-1  digits  cpu      failed  1         1m ago     rank 1 on node-b (host h2) exited with code 3\n");
}

TEST(CliOutputTest, JobDetailsWithAttempts) {
  const std::string out = job_details(sample_job(), kNow);
  EXPECT_NE(out.find("State:      failed\n"), std::string::npos) << out;
  EXPECT_NE(out.find("Code:       none\n"), std::string::npos) << out;
  EXPECT_NE(out.find("#  STATE   END-REASON  NODES          STARTED  DURATION  STEPS  MESSAGE\n"
                     "1  failed  user_error  node-a,node-b  1m ago   1m00s     -\n"),
            std::string::npos)
      << out;
  EXPECT_NE(out.find("#  QUEUED  PROVISIONING  IMAGE-UNPACK  CONTAINERS-UP  LAUNCH  FIRST-PROGRESS  RUN\n"
                     "1  1.500   0.200         -             0.058          0.019   -               60.000\n"),
            std::string::npos)
      << out;
  EXPECT_NE(out.find("Attempt 1 first failure: rank 3 on node node-b (host h2): rank 3 exited with code 7\n"),
            std::string::npos)
      << out;
}

TEST(CliOutputTest, NodesTable) {
  v1::ListNodesResponse list;
  auto* n = list.add_nodes();
  n->set_name("cpu-1");
  n->set_cluster("cpu");
  n->set_state("busy");
  n->set_hostname("h1");
  n->set_address("10.0.0.1");
  n->set_job("j-1");
  n->set_cores(2);
  n->mutable_usage()->set_cpu_cores_used(1.25);
  n->mutable_usage()->set_memory_used_bytes(1LL << 30);
  n->mutable_usage()->set_memory_total_bytes(4LL << 30);
  n->set_last_heartbeat_ms(kNow - 1'000);
  auto* idle = list.add_nodes();
  idle->set_name("cpu-2");
  idle->set_cluster("cpu");
  idle->set_state("provisioning");
  EXPECT_EQ(nodes_table(list, kNow),
            "NAME   CLUSTER  STATE         HOST  ADDRESS   JOB  CPU    MEM        LAST-HEARTBEAT\n"
            "cpu-1  cpu      busy          h1    10.0.0.1  j-1  1.2/2  1.0G/4.0G  1s ago\n"
            "cpu-2  cpu      provisioning  -     -         -    0.0/0  -          -\n");
}

TEST(CliOutputTest, SizesTable) {
  v1::ListVmSizesResponse list;
  auto* z = list.add_sizes();
  z->set_name("local");
  z->set_cores(2);
  z->set_memory_bytes(8LL << 30);
  z->set_description("what this machine offers");
  EXPECT_EQ(sizes_table(list),
            "NAME   CORES  MEMORY  GPUS  DESCRIPTION\n"
            "local  2      8.0G    0     what this machine offers\n");
}

TEST(CliJsonTest, JobHasStateAndAttemptsWithEveryField) {
  auto json = to_json(sample_job());
  ASSERT_TRUE(json.ok()) << json.status().to_string();
  EXPECT_NE(json->find("\"state\":\"failed\""), std::string::npos) << *json;
  EXPECT_NE(json->find("\"attempts\":[{\"number\":1,\"nodes\":[\"node-a\",\"node-b\"],\"state\":\"failed\","
                       "\"end_reason\":\"user_error\""),
            std::string::npos)
      << *json;
  EXPECT_NE(json->find("\"timings\":{\"queued_s\":1.5,\"provisioning_s\":0"), std::string::npos) << *json;
  EXPECT_NE(json->find("\"code_digest\":\"\""), std::string::npos) << *json;                // defaults are printed
  EXPECT_NE(json->find("\"submitted_ms\":\"1699999910000\""), std::string::npos) << *json;  // int64 as string
}

TEST(CliJsonTest, ListIsOneArray) {
  v1::ListClustersResponse list;
  EXPECT_EQ(*to_json_array(list.clusters()), "[]");
  *list.add_clusters() = sample_cluster();
  *list.add_clusters() = sample_cluster();
  auto json = to_json_array(list.clusters());
  ASSERT_TRUE(json.ok());
  EXPECT_EQ(json->front(), '[');
  EXPECT_EQ(json->back(), ']');
  EXPECT_NE(json->find("},{\"spec\":{\"name\":\"cpu\""), std::string::npos) << *json;
  EXPECT_NE(json->find("\"idle_seconds_before_scaledown\":120"), std::string::npos) << *json;
}

}  // namespace
}  // namespace cohort::cli
