// The CLI's flag → request mapping, identity and tag parsing, the code snapshot, the progress
// lines of `job submit --wait`, and the error without a manager: everything short of a call.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "client.hpp"
#include "cluster_commands.hpp"
#include "code_snapshot.hpp"
#include "job_commands.hpp"
#include "subprocess.hpp"

namespace cohort::cli {
namespace {

namespace fs = std::filesystem;

TEST(CliIdentityTest, NoneSystemOrUser) {
  EXPECT_EQ(parse_identity({})->type(), "none");
  auto system = parse_identity({"[system]"});
  ASSERT_TRUE(system.ok());
  EXPECT_EQ(system->type(), "system");
  EXPECT_TRUE(system->user_assigned_ids().empty());
  auto user = parse_identity({"id-1", "id-2"});
  ASSERT_TRUE(user.ok());
  EXPECT_EQ(user->type(), "user");
  ASSERT_EQ(user->user_assigned_ids_size(), 2);
  EXPECT_EQ(user->user_assigned_ids(1), "id-2");
}

TEST(CliIdentityTest, MixingSystemAndUserIsRefused) {
  auto mixed = parse_identity({"[system]", "id-1"});
  ASSERT_FALSE(mixed.ok());
  EXPECT_EQ(mixed.status().code(), Code::kInvalidArgument);
  EXPECT_NE(mixed.status().message().find("cannot be mixed"), std::string::npos) << mixed.status().message();
}

TEST(CliTagsTest, KeyValuePairs) {
  auto tags = parse_tags({"team=vision", "empty=", "url=a=b"});
  ASSERT_TRUE(tags.ok());
  EXPECT_EQ(tags->at("team"), "vision");
  EXPECT_EQ(tags->at("empty"), "");
  EXPECT_EQ(tags->at("url"), "a=b");
  EXPECT_NE(parse_tags({"novalue"}).status().message().find("--tag novalue: expected KEY=VALUE"), std::string::npos);
  EXPECT_FALSE(parse_tags({"=v"}).ok());
  EXPECT_NE(parse_tags({"a=1", "a=2"}).status().message().find("given twice"), std::string::npos);
}

ClusterCreateOptions create_options() {
  ClusterCreateOptions o;
  o.name = "cpu-cluster";
  o.vm_size = "local-2c";
  o.min_nodes = 0;
  o.max_nodes = 4;
  return o;
}

TEST(CliClusterCreateTest, MapsEveryFlag) {
  auto o = create_options();
  o.vm_priority = "lowpriority";
  o.idle_seconds_before_scaledown = 30;
  o.assign_identity = {"[system]"};
  o.provider = "exec";
  o.exec_create = "./create.sh";
  o.exec_delete = "./delete.sh";
  o.tags = {"team=vision", "cost=low"};
  auto r = cluster_create_request(o);
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  const auto& s = r->spec();
  EXPECT_EQ(s.name(), "cpu-cluster");
  EXPECT_EQ(s.vm_size(), "local-2c");
  EXPECT_EQ(s.min_nodes(), 0);
  EXPECT_EQ(s.max_nodes(), 4);
  EXPECT_EQ(s.vm_priority(), "lowpriority");
  EXPECT_EQ(s.idle_seconds_before_scaledown(), 30);
  EXPECT_EQ(s.identity().type(), "system");
  EXPECT_EQ(s.provider(), "exec");
  EXPECT_EQ(s.exec().create_command(), "./create.sh");
  EXPECT_EQ(s.exec().delete_command(), "./delete.sh");
  EXPECT_EQ(s.tags().at("team"), "vision");
  EXPECT_EQ(s.tags().at("cost"), "low");
}

TEST(CliClusterCreateTest, Defaults) {
  auto r = cluster_create_request(create_options());
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_EQ(r->spec().vm_priority(), "dedicated");
  EXPECT_EQ(r->spec().idle_seconds_before_scaledown(), 120);
  EXPECT_EQ(r->spec().provider(), "local");
  EXPECT_EQ(r->spec().identity().type(), "none");
  EXPECT_FALSE(r->spec().has_exec());
}

TEST(CliClusterCreateTest, RefusesWhatTheCliCanTellIsWrong) {
  auto expect_error = [](ClusterCreateOptions o, const std::string& text) {
    auto r = cluster_create_request(o);
    ASSERT_FALSE(r.ok()) << text;
    EXPECT_EQ(r.status().code(), Code::kInvalidArgument);
    EXPECT_NE(r.status().message().find(text), std::string::npos) << r.status().message();
  };
  auto o = create_options();
  o.vm_priority = "spot";
  expect_error(o, "--vm-priority spot: expected dedicated or lowpriority");
  o = create_options();
  o.provider = "slurm";
  expect_error(o, "--provider slurm: expected local, static or exec");
  o = create_options();
  o.provider = "exec";
  o.exec_create = "./create.sh";
  expect_error(o, "--provider exec needs both --exec-create CMD and --exec-delete CMD");
  o = create_options();
  o.exec_delete = "./delete.sh";
  expect_error(o, "need --provider exec");
  o = create_options();
  o.tags = {"oops"};
  expect_error(o, "--tag oops");
}

TEST(CliClusterUpdateTest, SetsOnlyTheFlagsGiven) {
  ClusterUpdateOptions o;
  o.name = "cpu";
  o.max_nodes = 8;
  o.tags = {"team=nlp"};
  auto r = cluster_update_request(o);
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_EQ(r->name(), "cpu");
  EXPECT_FALSE(r->has_min_nodes());
  ASSERT_TRUE(r->has_max_nodes());
  EXPECT_EQ(r->max_nodes(), 8);
  EXPECT_FALSE(r->has_idle_seconds_before_scaledown());
  EXPECT_EQ(r->tags().at("team"), "nlp");

  o = {};
  o.name = "cpu";
  o.min_nodes = 0;  // an explicit 0 is a change, not "unset"
  r = cluster_update_request(o);
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->has_min_nodes());
}

TEST(CliClusterUpdateTest, NothingToChangeIsAUsageError) {
  ClusterUpdateOptions o;
  o.name = "cpu";
  auto r = cluster_update_request(o);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("nothing to change; give --min-nodes"), std::string::npos);
}

// A temporary directory, removed with everything in it.
class TempDir {
 public:
  TempDir() {
    std::string pattern = (fs::temp_directory_path() / "cohort-cli-test-XXXXXX").string();
    path_ = ::mkdtemp(pattern.data());
  }
  ~TempDir() { fs::remove_all(path_); }
  const fs::path& path() const { return path_; }
  void write(const fs::path& relative, const std::string& text) const {
    fs::create_directories((path_ / relative).parent_path());
    std::ofstream(path_ / relative) << text;
  }

 private:
  fs::path path_;
};

TEST(CliCodeSnapshotTest, TarGzOfTheDirectory) {
  TempDir dir;
  dir.write("src/train.py", "print('hello')\n");
  dir.write("src/lib/util.py", "X = 1\n");
  auto tar = snapshot_code(dir.path() / "src");
  ASSERT_TRUE(tar.ok()) << tar.status().to_string();
  ASSERT_GE(tar->size(), 2u);
  EXPECT_EQ(static_cast<unsigned char>((*tar)[0]), 0x1f);  // gzip magic
  EXPECT_EQ(static_cast<unsigned char>((*tar)[1]), 0x8b);
  // What tar itself lists from those bytes.
  std::ofstream(dir.path() / "code.tar.gz", std::ios::binary) << *tar;
  auto list = run_captured({.argv = {"tar", "-tzf", (dir.path() / "code.tar.gz").string()}}, std::chrono::seconds(30));
  ASSERT_TRUE(list.ok());
  EXPECT_NE(list->out.find("./train.py"), std::string::npos) << list->out;
  EXPECT_NE(list->out.find("./lib/util.py"), std::string::npos) << list->out;
}

TEST(CliCodeSnapshotTest, OverTheLimitIsRefused) {
  TempDir dir;
  std::string noise(256 * 1024, '\0');
  unsigned x = 12345;
  for (auto& c : noise)
    c = static_cast<char>((x = x * 1103515245u + 12345u) >> 24);  // incompressible
  dir.write("data.bin", noise);
  auto tar = snapshot_code(dir.path(), 64 * 1024);
  ASSERT_FALSE(tar.ok());
  EXPECT_EQ(tar.status().code(), Code::kResourceExhausted);
  EXPECT_NE(tar.status().message().find("move data sets and checkpoints out"), std::string::npos)
      << tar.status().message();
}

TEST(CliCodeSnapshotTest, CodeIsResolvedRelativeToTheJobFile) {
  TempDir dir;
  dir.write("job/src/train.py", "");
  auto code = code_directory("name: x\ncode: src\ncommand: python train.py\n", dir.path() / "job" / "job.yaml");
  ASSERT_TRUE(code.ok()) << code.status().to_string();
  ASSERT_TRUE(code->has_value());
  EXPECT_EQ(**code, dir.path() / "job" / "src");
  auto none = code_directory("name: x\ncommand: hostname\n", dir.path() / "job.yaml");
  ASSERT_TRUE(none.ok());
  EXPECT_FALSE(none->has_value());
}

TEST(CliCodeSnapshotTest, CodeThatIsNotADirectoryIsAClearError) {
  TempDir dir;
  dir.write("train.py", "");
  const auto job = dir.path() / "job.yaml";
  auto file = code_directory("code: train.py\n", job);
  ASSERT_FALSE(file.ok());
  EXPECT_EQ(file.status().code(), Code::kInvalidArgument);
  EXPECT_NE(file.status().message().find(job.string() + ": code: "), std::string::npos) << file.status().message();
  EXPECT_NE(file.status().message().find("train.py is not a directory"), std::string::npos) << file.status().message();
  auto missing = code_directory("code: nowhere\n", job);
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.status().message().find("nowhere does not exist"), std::string::npos);
  auto list = code_directory("code: [a, b]\n", job);
  ASSERT_FALSE(list.ok());
  EXPECT_NE(list.status().message().find("expected a directory path"), std::string::npos);
  auto bad = code_directory("code: [unclosed\n", job);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("not valid YAML at line"), std::string::npos) << bad.status().message();
}

TEST(CliJobSubmitTest, RequestCarriesSpecClusterAndSnapshot) {
  TempDir dir;
  const std::string spec = "name: t\ncode: .\ncommand: sh run.sh\n";
  dir.write("job.yaml", spec);
  dir.write("run.sh", "echo hi\n");
  auto r = job_submit_request({.file = dir.path() / "job.yaml", .cluster = "cpu"});
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_EQ(r->spec_yaml(), spec);
  EXPECT_EQ(r->cluster(), "cpu");
  EXPECT_FALSE(r->code_tar_gz().empty());

  dir.write("nocode.yaml", "name: t\ncommand: hostname\n");
  auto plain = job_submit_request({.file = dir.path() / "nocode.yaml"});
  ASSERT_TRUE(plain.ok());
  EXPECT_TRUE(plain->code_tar_gz().empty());

  auto missing = job_submit_request({.file = dir.path() / "missing.yaml"});
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.status().message().find("missing.yaml"), std::string::npos);
}

v1::Job job_in(const std::string& state) {
  v1::Job j;
  j.set_id("j-7");
  j.set_state(state);
  return j;
}

TEST(CliProgressTest, StateAndAttemptChanges) {
  v1::Job queued = job_in("queued");
  EXPECT_EQ(progress_lines(nullptr, queued), std::vector<std::string>{"job j-7: queued"});
  EXPECT_TRUE(progress_lines(&queued, queued).empty());

  v1::Job running = job_in("running");
  auto* a = running.add_attempts();
  a->set_number(1);
  a->set_state("running");
  a->add_nodes("node-a");
  a->add_nodes("node-b");
  EXPECT_EQ(progress_lines(&queued, running),
            (std::vector<std::string>{"job j-7: running", "attempt 1: running on node-a, node-b"}));

  v1::Job requeued = running;
  requeued.set_state("queued");
  auto* first = requeued.mutable_attempts(0);
  first->set_state("failed");
  first->set_end_reason("node_lost");
  first->set_message("node-b stopped heartbeating");
  auto* second = requeued.add_attempts();
  second->set_number(2);
  second->set_state("provisioning");
  EXPECT_EQ(progress_lines(&running, requeued),
            (std::vector<std::string>{"job j-7: queued", "attempt 1: failed (node_lost): node-b stopped heartbeating",
                                      "attempt 2: provisioning on (no nodes yet)"}));
}

TEST(CliProgressTest, ANoticeAndTheStepsAreShown) {
  v1::Job running = job_in("running");
  auto* a = running.add_attempts();
  a->set_number(1);
  a->set_state("running");
  a->set_last_step(2614);
  EXPECT_EQ(step_line(0, running), "attempt 1: step 2614");
  EXPECT_EQ(step_line(2614, running), std::nullopt) << "no new step, no line";
  v1::Job noticed = running;
  noticed.mutable_attempts(0)->set_notice_ms(5);
  EXPECT_EQ(progress_lines(&running, noticed),
            (std::vector<std::string>{"attempt 1: preemption notice at step 2614; the job checkpoints and stops"}));
  a->set_number(2);
  a->set_start_step(2614);
  a->set_last_step(4000);
  EXPECT_EQ(step_line(2614, running), "attempt 2: step 4000 (resumed from 2614)");
}

TEST(CliProgressTest, EndLineAndExitCode) {
  v1::Job failed = job_in("failed");
  failed.set_message("rank 1 on node-b (host h2) exited with code 3");
  EXPECT_EQ(end_line(failed), "job j-7 failed: rank 1 on node-b (host h2) exited with code 3");
  EXPECT_EQ(job_exit_code(failed), 1);
  EXPECT_EQ(job_exit_code(job_in("canceled")), 1);
  EXPECT_EQ(job_exit_code(job_in("succeeded")), 0);
  EXPECT_TRUE(is_terminal("canceled"));
  EXPECT_FALSE(is_terminal("running"));
}

TEST(CliClientTest, MissingManagerSaysHowToSetOne) {
  const char* saved = std::getenv("COHORT_MANAGER");
  const std::string keep = saved ? saved : "";
  ::unsetenv("COHORT_MANAGER");
  auto client = Client::connect({});
  if (saved) ::setenv("COHORT_MANAGER", keep.c_str(), 1);
  ASSERT_FALSE(client.ok());
  EXPECT_EQ(client.status().code(), Code::kInvalidArgument);
  EXPECT_NE(client.status().message().find("--manager HOST:PORT"), std::string::npos) << client.status().message();
  EXPECT_NE(client.status().message().find("COHORT_MANAGER"), std::string::npos) << client.status().message();
}

TEST(CliClientTest, UnreadableCaIsNamed) {
  auto client = Client::connect({.manager = "127.0.0.1:1", .ca_file = "/no/such/ca.pem"});
  ASSERT_FALSE(client.ok());
  EXPECT_NE(client.status().message().find("/no/such/ca.pem"), std::string::npos) << client.status().message();
}

}  // namespace
}  // namespace cohort::cli
