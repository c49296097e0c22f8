// `cohort run`: a job on this machine with no manager. Starts NP ranks through Open MPI's
// mpirun with the Cohort environment, optionally spread over local test nodes, and exits with
// the job's status: 0, or the first failing rank's code (128 + signal when it was killed).
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "cohort/status.hpp"

namespace cohort {

struct RunOptions {
  int ranks = 0;       // 0: one per node
  int nodes = 0;       // 0: no local test nodes, every rank in this machine's own namespace
  std::string job_id;  // empty: $COHORT_JOB_ID, else a fresh "run-..." id
  std::filesystem::path checkpoint_dir;
  std::string log_level = "info";
  std::vector<std::string> program;
};

// Checks the options before anything starts; InvalidArgument names the flag.
Status validate(const RunOptions& options);

// Runs the job to its end and returns the process exit code for `cohort run`.
int run_job(RunOptions options);

}  // namespace cohort
