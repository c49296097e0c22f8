// The runner's edges: names that become directories, the join token, the job's environment and
// progress file, and the SpawnOptions it added (working directory, output to files).
#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <iterator>

#include "options.hpp"
#include "subprocess.hpp"
#include "task.hpp"
#include "test_support.hpp"

namespace cohort::runner {
namespace {

namespace fs = std::filesystem;

fs::path temp_dir(const std::string& name) {
  fs::path d = fs::temp_directory_path() / ("runner-options-test-" + std::to_string(getpid()) + "-" + name);
  fs::remove_all(d);
  fs::create_directories(d);
  return d;
}

using testing::slurp;

TEST(RunnerOptionsTest, PathComponentsMustBeOneDirectoryName) {
  EXPECT_TRUE(check_path_component("job-1", "job id").ok());
  for (const std::string& bad : std::vector<std::string>{"", ".", "..", "a/b", "../x", std::string("a\0b", 3)}) {
    Status s = check_path_component(bad, "job id");
    EXPECT_EQ(s.code(), Code::kInvalidArgument) << bad;
    EXPECT_NE(s.message().find("job id"), std::string::npos);
  }
}

TEST(RunnerOptionsTest, JoinTokenFromFileWinsOverTheEnvironment) {
  const fs::path dir = temp_dir("token");
  std::ofstream(dir / "join-token") << "  secret-token\n";
  RunnerOptions o;
  o.join_token = "from-env";
  EXPECT_EQ(join_token(o).value(), "from-env");
  o.join_token_file = dir / "join-token";
  EXPECT_EQ(join_token(o).value(), "secret-token");
  o.join_token_file = dir / "missing";
  auto r = join_token(o);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("--join-token-file"), std::string::npos);
  fs::remove_all(dir);
}

TEST(RunnerOptionsTest, CompleteSaysWhatIsMissing) {
  RunnerOptions o;
  o.manager.address = "127.0.0.1:1";
  Status s = complete(o);
  EXPECT_NE(s.message().find("--cluster"), std::string::npos) << s.message();
  o.cluster = "cpu";
  unsetenv("COHORT_JOIN_TOKEN");
  s = complete(o);
  EXPECT_NE(s.message().find("--join-token-file"), std::string::npos) << s.message();
  const fs::path dir = temp_dir("complete");
  o.join_token = "t";
  o.work_dir = dir / "work";
  ASSERT_TRUE(complete(o).ok());
  EXPECT_TRUE(fs::is_directory(dir / "work" / "jobs"));
  EXPECT_FALSE(o.hostname.empty());
  EXPECT_FALSE(o.address.empty());
  o.scheduled_events_url = "169.254.169.254/metadata/scheduledevents";
  s = complete(o);
  EXPECT_EQ(s.code(), Code::kInvalidArgument);
  EXPECT_NE(s.message().find("--scheduled-events-url '169.254.169.254/metadata/scheduledevents' is no http://"),
            std::string::npos)
      << s.message();
  o.scheduled_events_url.clear();
  setenv("COHORT_SCHEDULED_EVENTS_URL", "http://127.0.0.1:9/metadata", 1);
  EXPECT_TRUE(complete(o).ok());
  EXPECT_EQ(o.scheduled_events_url, "http://127.0.0.1:9/metadata") << "the environment's, when no flag";
  unsetenv("COHORT_SCHEDULED_EVENTS_URL");
  fs::remove_all(dir);
}

TEST(RunnerOptionsTest, ProgressIsOneDecimalNumber) {
  EXPECT_EQ(parse_progress("42"), 42);
  EXPECT_EQ(parse_progress(" 17\n"), 17);
  EXPECT_EQ(parse_progress("-1"), -1);
  EXPECT_FALSE(parse_progress("").has_value());
  EXPECT_FALSE(parse_progress("4 2").has_value());
  EXPECT_FALSE(parse_progress("step 3").has_value());
  EXPECT_FALSE(parse_progress("99999999999999999999999").has_value());
}

TEST(RunnerOptionsTest, JobsNeverSeeTheRunnersTokens) {
  setenv("COHORT_JOIN_TOKEN", "join-secret", 1);
  setenv("COHORT_TOKEN", "admin-secret", 1);
  for (const auto& e : runner_environment_for_jobs()) {
    EXPECT_EQ(e.find("secret"), std::string::npos) << e;
  }
  unsetenv("COHORT_JOIN_TOKEN");
  unsetenv("COHORT_TOKEN");
}

TEST(RunnerOptionsTest, SpawnRunsInADirectoryAndAppendsOutputToFiles) {
  const fs::path dir = temp_dir("spawn");
  std::ofstream(dir / "out.log") << "before\n";
  SpawnOptions o{.argv = {"sh", "-c", "pwd; echo err >&2"}};
  o.working_directory = dir.string();
  o.stdout_file = (dir / "out.log").string();
  o.stderr_file = (dir / "out.log").string();
  auto child = Subprocess::spawn(o);
  ASSERT_TRUE(child.ok()) << child.status().to_string();
  ASSERT_TRUE(child->wait().ok());
  EXPECT_EQ(slurp(dir / "out.log"), "before\n" + fs::canonical(dir).string() + "\nerr\n");
  o.working_directory = (dir / "missing").string();
  auto missing = Subprocess::spawn(o);
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.status().message().find("missing"), std::string::npos);
  fs::remove_all(dir);
}

}  // namespace
}  // namespace cohort::runner
