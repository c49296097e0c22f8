// `cohort job submit|list|show|cancel|logs`: JobService from the command line. Building the
// submit request and describing a job's progress are factored out for tests.
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "cli_common.hpp"
#include "cohort/status.hpp"
#include "cohort/v1/cohort.pb.h"

namespace cohort::cli {

struct JobSubmitOptions {
  std::filesystem::path file;  // the job's YAML spec
  std::string cluster;         // "" keeps the spec's `compute`
  bool wait = false;
};

// Reads the spec and, when it names a `code:` directory, snapshots it (code_snapshot.hpp).
// NotFound / InvalidArgument name the file.
Result<v1::SubmitJobRequest> job_submit_request(const JobSubmitOptions& options);

// What changed between two polls of a job, one line each: the job's state, a new attempt and the
// nodes it runs on, an attempt's state, and its end with reason and message. `before` is null on
// the first poll.
std::vector<std::string> progress_lines(const v1::Job* before, const v1::Job& now);
// "attempt 2: step 4200 (resumed from 2614)" when the running attempt reports a step other than
// `printed`; `--wait` prints it every few seconds at most.
std::optional<std::string> step_line(std::int64_t printed, const v1::Job& now);

bool is_terminal(const std::string& job_state);  // succeeded, failed, canceled
// The line `--wait` ends with, e.g. "job j-1 failed: rank 1 on node-b exited with code 3".
std::string end_line(const v1::Job& job);
// `cohort job submit --wait`'s exit code: 0 only when the job succeeded.
int job_exit_code(const v1::Job& job);

void add_job_commands(CLI::App& app, Commands& commands);

}  // namespace cohort::cli
