// `cohort cluster create|show|list|update|delete|sizes`: ClusterService from the command line.
// The flag → request mapping is factored out so tests check it without a manager.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "cli_common.hpp"
#include "cohort/status.hpp"
#include "cohort/v1/cohort.pb.h"

namespace cohort::cli {

struct ClusterCreateOptions {
  std::string name;
  std::string vm_size;
  int min_nodes = 0;
  int max_nodes = 0;
  std::string vm_priority = "dedicated";     // or "lowpriority"
  int idle_seconds_before_scaledown = 120;   // the documented default
  std::vector<std::string> assign_identity;  // "[system]" or user-assigned ids
  std::string provider = "local";            // "local", "static" or "exec"
  std::string exec_create;                   // exec provider only, both required there
  std::string exec_delete;
  std::vector<std::string> tags;  // "K=V"
};

struct ClusterUpdateOptions {
  std::string name;
  std::optional<int> min_nodes;
  std::optional<int> max_nodes;
  std::optional<int> idle_seconds_before_scaledown;
  std::vector<std::string> tags;
};

// InvalidArgument naming the flag for what the CLI itself can tell is wrong (an unknown priority
// or provider, exec commands without the exec provider, a tag without '='); the manager checks the
// rest (known size, min ≤ max, ...).
Result<v1::CreateClusterRequest> cluster_create_request(const ClusterCreateOptions& options);
Result<v1::UpdateClusterRequest> cluster_update_request(const ClusterUpdateOptions& options);

// No values: type "none". "[system]": type "system". Ids: type "user" with those ids. Mixing the
// two is refused (Cohort keeps one identity type per cluster).
Result<v1::Identity> parse_identity(const std::vector<std::string>& values);
// "K=V" each (V may be empty or hold '='); an empty key or a key given twice is refused.
Result<std::map<std::string, std::string>> parse_tags(const std::vector<std::string>& values);

// Adds `cluster` and its verbs under `app`.
void add_cluster_commands(CLI::App& app, Commands& commands);

}  // namespace cohort::cli
