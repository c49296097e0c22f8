// Helpers for tests that start real Cohort processes: where the programs are, and checks that
// a run left no process or namespace behind.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <filesystem>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "subprocess.hpp"

namespace cohort::testing {

std::string bin(std::string_view program);  // a program of the build, e.g. bin("cohort")
std::string source_path(std::string_view relative);
bool is_root();

// The whole of a file; "" when it cannot be read.
std::string slurp(const std::filesystem::path& path);

// A fresh, empty directory for the running test, `TMPDIR/PREFIX-PID-TESTNAME`, removed with all
// it holds when this goes. A member of a fixture makes it before SetUp and removes it after
// TearDown.
class ScratchDir {
 public:
  explicit ScratchDir(std::string_view prefix);
  ~ScratchDir();
  ScratchDir(const ScratchDir&) = delete;
  ScratchDir& operator=(const ScratchDir&) = delete;

  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

// A job id no other test (or earlier run) uses, so leak checks can find this test's processes.
std::string unique_job_id(std::string_view prefix);

// Processes whose environment holds COHORT_JOB_ID=<job_id>: every process of a `cohort run`
// inherits it, so after the run there must be none.
std::vector<pid_t> processes_of_job(std::string_view job_id);
// Those of them whose command name (/proc/PID/comm) is `comm`.
std::vector<pid_t> processes_of_job_named(std::string_view job_id, std::string_view comm);
// Waits (bounded by timeout) until `count` processes of the job are named `comm`; false if not.
bool wait_for_processes_named(std::string_view job_id, std::string_view comm, std::size_t count,
                              std::chrono::milliseconds timeout);
// Waits (bounded) for them to go; returns those still there.
std::vector<pid_t> wait_for_no_processes_of_job(std::string_view job_id, std::chrono::milliseconds timeout);

// The inodes of every network namespace some process is in.
std::set<ino_t> network_namespaces();

// Runs `cohort run ARGS...` with COHORT_JOB_ID set to job_id; bounded by timeout.
Captured cohort_run(const std::vector<std::string>& args, std::string_view job_id,
                    std::chrono::milliseconds timeout = std::chrono::seconds(120));

}  // namespace cohort::testing
