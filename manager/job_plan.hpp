// What the manager needs of a validated job spec, kept with the job as the spec's normalized
// JSON and rebuilt from it after a restart.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "cohort/status.hpp"

namespace cohort::manager {

// A directory (or file) of the node that the job sees at `destination` (its path in a container).
struct PlanMount {
  std::string source;
  std::string destination;  // /inputs/NAME, /outputs/NAME, /checkpoints
  bool read_only = true;
  bool file = false;  // a uri_file: one file, not a directory
};

struct JobPlan {
  std::string name;
  std::string cluster;  // `compute`
  std::string command;
  std::string distribution = "none";
  int instance_count = 1;
  int processes_per_node = 1;
  int gpus_per_instance = 0;
  int priority = 0;
  std::map<std::string, std::string> environment;
  std::int64_t timeout_s = 0;  // 0: none
  std::int64_t progress_timeout_s = 0;
  int retries_user_error = 0;
  int retries_infrastructure = 3;
  int retries_preemption = 100;
  std::string notice_signal = "SIGUSR1";  // "" for none
  bool has_code = false;                  // the spec names a `code` directory
  std::string image = "host";             // "host", "oci:PATH", "dir:PATH"
  std::string runtime = "auto";
  std::int64_t shm_size_bytes = 0;
  std::vector<PlanMount> mounts;
};

// Parses and validates the YAML (the first bad field by its path); `spec_json` gets the
// normalized spec to store.
Result<JobPlan> plan_from_yaml(std::string_view yaml, std::string& spec_json);
Result<JobPlan> plan_from_json(const std::string& spec_json);

}  // namespace cohort::manager
