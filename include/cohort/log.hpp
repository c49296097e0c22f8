// Logging for programs that link libcohort. libcohort itself never prints: it logs through the
// logger set here, which is silent until the program calls init_logging.
#pragma once

#include <spdlog/spdlog.h>

#include <memory>
#include <string_view>

#include "cohort/context.hpp"
#include "cohort/status.hpp"

namespace cohort {

// "trace", "debug", "info", "warn", "error", "critical" or "off"; anything else is InvalidArgument.
Result<spdlog::level::level_enum> parse_log_level(std::string_view text);

// The level from COHORT_LOG_LEVEL, or `fallback` when it is unset; garbage is InvalidArgument.
Result<spdlog::level::level_enum> log_level_from_environment(spdlog::level::level_enum fallback);

// Makes a stderr logger whose every line carries the job, attempt and rank, installs it as
// spdlog's default and as libcohort's logger, and returns it.
std::shared_ptr<spdlog::logger> init_logging(const Context& ctx, spdlog::level::level_enum level);

// What libcohort logs through; a null logger until init_logging or set_logger.
std::shared_ptr<spdlog::logger> logger();
void set_logger(std::shared_ptr<spdlog::logger> logger);

}  // namespace cohort
