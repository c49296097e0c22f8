// The launcher's pure parts: line prefixing, rank reports, the mpirun command line.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>

#include "line_prefixer.hpp"
#include "mpirun_command.hpp"
#include "rank_report.hpp"

namespace cohort {
namespace {

TEST(LinePrefixerTest, PrefixesWholeLinesAcrossChunks) {
  LinePrefixer p("[rank 2] ");
  std::string out;
  p.feed("hel", out);
  EXPECT_EQ(out, "");
  p.feed("lo\nwor", out);
  EXPECT_EQ(out, "[rank 2] hello\n");
  p.feed("ld\n\nlast", out);
  EXPECT_EQ(out, "[rank 2] hello\n[rank 2] world\n[rank 2] \n");
  p.finish(out);
  EXPECT_EQ(out, "[rank 2] hello\n[rank 2] world\n[rank 2] \n[rank 2] last\n");
  p.finish(out);  // nothing held back any more
  EXPECT_EQ(out, "[rank 2] hello\n[rank 2] world\n[rank 2] \n[rank 2] last\n");
}

TEST(LinePrefixerTest, CutsEndlessLines) {
  LinePrefixer p("> ");
  std::string out;
  std::string chunk(70 * 1024, 'x');
  p.feed(chunk, out);
  EXPECT_FALSE(out.empty());
  EXPECT_EQ(out.substr(0, 2), "> ");
  EXPECT_EQ(out.back(), '\n');
}

TEST(RankReportTest, RoundTripsAndRejectsGarbage) {
  RankReport r{.rank = 3, .host = "cohort-node-1", .pid = 77, .status = {0, 9}, .end_ns = 123456789, .stopped = true};
  auto back = parse_report(format_report(r));
  ASSERT_TRUE(back.ok()) << back.status().to_string();
  EXPECT_EQ(back->rank, 3);
  EXPECT_EQ(back->host, "cohort-node-1");
  EXPECT_EQ(back->status.signal, 9);
  EXPECT_EQ(back->end_ns, 123456789);
  EXPECT_TRUE(back->stopped);
  EXPECT_FALSE(parse_report("rank=1 host=x").ok());
  EXPECT_FALSE(parse_report("rank=one host=x pid=1 code=0 signal=0 end_ns=1 stopped=0").ok());
}

TEST(RankReportTest, FirstFailureIgnoresSuccessesAndStoppedRanks) {
  std::vector<RankReport> reports = {
      {.rank = 0, .host = "a", .pid = 1, .status = {0, 15}, .end_ns = 50, .stopped = true},   // stopped first
      {.rank = 1, .host = "a", .pid = 2, .status = {0, 0}, .end_ns = 10, .stopped = false},   // succeeded
      {.rank = 2, .host = "b", .pid = 3, .status = {7, 0}, .end_ns = 100, .stopped = false},  // failed later
      {.rank = 3, .host = "b", .pid = 4, .status = {3, 0}, .end_ns = 60, .stopped = false},   // failed first
  };
  auto first = first_failure(reports);
  ASSERT_TRUE(first.has_value());
  EXPECT_EQ(first->rank, 3);
  reports[3].status = {0, 0};
  reports[2].status = {0, 0};
  EXPECT_FALSE(first_failure(reports).has_value());
}

TEST(RankReportTest, WritesAndReadsADirectory) {
  auto dir = std::filesystem::temp_directory_path() / ("cohort-report-test-" + std::to_string(getpid()));
  std::filesystem::create_directories(dir);
  ASSERT_TRUE(
      write_report(dir, {.rank = 1, .host = "h", .pid = 5, .status = {3, 0}, .end_ns = 9, .stopped = false}).ok());
  ASSERT_TRUE(
      write_report(dir, {.rank = 0, .host = "h", .pid = 4, .status = {0, 0}, .end_ns = 8, .stopped = false}).ok());
  auto reports = read_reports(dir);
  std::filesystem::remove_all(dir);
  ASSERT_EQ(reports.size(), 2u);
  EXPECT_EQ(reports[0].rank, 0);
  EXPECT_EQ(reports[1].status.code, 3);
}

TEST(MpirunCommandTest, SpreadsRanksBySlot) {
  EXPECT_EQ(ranks_per_node(4, 2), (std::vector<int>{2, 2}));
  EXPECT_EQ(ranks_per_node(5, 2), (std::vector<int>{3, 2}));
  EXPECT_EQ(ranks_per_node(3, 3), (std::vector<int>{1, 1, 1}));
}

TEST(MpirunCommandTest, LocalNodesGetHostsSlotsAndTheAgent) {
  MpirunPlan plan{.mpirun = "mpirun",
                  .exec_helper = "/opt/cohort/bin/cohort-exec",
                  .ranks = 5,
                  .hosts = {"n-0", "n-1"},
                  .as_root = true,
                  .exported_env = {"COHORT_JOB_ID"},
                  .program = {"train", "--epochs", "3"}};
  auto argv = mpirun_argv(plan);
  auto has = [&](const std::vector<std::string>& seq) {
    return std::search(argv.begin(), argv.end(), seq.begin(), seq.end()) != argv.end();
  };
  EXPECT_TRUE(has({"--allow-run-as-root"}));
  EXPECT_TRUE(has({"-np", "5"}));
  EXPECT_TRUE(has({"--host", "n-0:3,n-1:2"}));
  EXPECT_TRUE(has({"--mca", "plm_rsh_agent", "/opt/cohort/bin/cohort-exec node"}));
  EXPECT_TRUE(has({"-x", "COHORT_JOB_ID"}));
  // The user's program comes last, behind the rank wrapper, with its own flags untouched.
  std::vector<std::string> tail = {"/opt/cohort/bin/cohort-exec", "rank", "--", "train", "--epochs", "3"};
  EXPECT_TRUE(std::equal(tail.rbegin(), tail.rend(), argv.rbegin()));
}

TEST(MpirunCommandTest, OversubscribedRanksYieldTheCpu) {
  auto argv = mpirun_argv({.exec_helper = "cohort-exec", .ranks = 8, .oversubscribed = true, .program = {"true"}});
  std::vector<std::string> yield = {"--mca", "mpi_yield_when_idle", "1"};
  EXPECT_NE(std::search(argv.begin(), argv.end(), yield.begin(), yield.end()), argv.end());
  argv = mpirun_argv({.exec_helper = "cohort-exec", .ranks = 1, .program = {"true"}});
  EXPECT_EQ(std::search(argv.begin(), argv.end(), yield.begin(), yield.end()), argv.end());
}

TEST(MpirunCommandTest, NoNodesMeansNoHostList) {
  auto argv = mpirun_argv({.exec_helper = "cohort-exec", .ranks = 2, .program = {"true"}});
  EXPECT_EQ(std::find(argv.begin(), argv.end(), "--host"), argv.end());
  EXPECT_EQ(std::find(argv.begin(), argv.end(), "--allow-run-as-root"), argv.end());
}

}  // namespace
}  // namespace cohort
