// The runner's log: stderr, every line naming the node ("[runner gpu-3]"), or the cluster and the
// requested name until the manager has confirmed it.
#pragma once

#include <spdlog/spdlog.h>

#include <memory>
#include <string>

namespace cohort::runner {

// Makes the runner's logger and installs it as Cohort's (cohort::logger()) and spdlog's default.
std::shared_ptr<spdlog::logger> init_runner_logging(const std::string& node, spdlog::level::level_enum level);
// Renames the node on every later line.
void name_log_lines(const std::string& node);

}  // namespace cohort::runner
