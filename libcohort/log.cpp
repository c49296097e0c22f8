#include "cohort/log.hpp"

#include <spdlog/sinks/null_sink.h>
#include <spdlog/sinks/stdout_sinks.h>

#include <cstdlib>
#include <mutex>
#include <string>

namespace cohort {
namespace {

std::mutex g_mu;
std::shared_ptr<spdlog::logger> g_logger;  // guarded by g_mu

// spdlog patterns treat '%' as a flag: a job id is user text and must not be one.
std::string escape_pattern(std::string_view text) {
  std::string out;
  for (char c : text) {
    if (c == '%') out += '%';
    out += c;
  }
  return out;
}

}  // namespace

Result<spdlog::level::level_enum> parse_log_level(std::string_view text) {
  static constexpr std::string_view kNames[] = {"trace", "debug", "info", "warn", "error", "critical", "off"};
  for (std::size_t i = 0; i < std::size(kNames); ++i) {
    if (text == kNames[i]) return static_cast<spdlog::level::level_enum>(i);
  }
  if (text == "warning") return spdlog::level::warn;
  return invalid_argument("log level '" + std::string(text) +
                          "' is not one of trace, debug, info, warn, error, critical, off");
}

Result<spdlog::level::level_enum> log_level_from_environment(spdlog::level::level_enum fallback) {
  const char* v = std::getenv("COHORT_LOG_LEVEL");
  if (v == nullptr || *v == '\0') return fallback;
  auto level = parse_log_level(v);
  if (!level.ok()) return level.status().with_context("COHORT_LOG_LEVEL");
  return level;
}

std::shared_ptr<spdlog::logger> init_logging(const Context& ctx, spdlog::level::level_enum level) {
  auto log = std::make_shared<spdlog::logger>("cohort", std::make_shared<spdlog::sinks::stderr_sink_mt>());
  log->set_pattern("%Y-%m-%d %H:%M:%S.%e %^%-5l%$ [job " + escape_pattern(ctx.job_id) + " attempt " +
                   std::to_string(ctx.attempt) + " rank " + std::to_string(ctx.rank) + "] %v");
  log->set_level(level);
  spdlog::set_default_logger(log);
  set_logger(log);
  return log;
}

std::shared_ptr<spdlog::logger> logger() {
  std::lock_guard lock(g_mu);
  if (!g_logger) g_logger = std::make_shared<spdlog::logger>("cohort", std::make_shared<spdlog::sinks::null_sink_mt>());
  return g_logger;
}

void set_logger(std::shared_ptr<spdlog::logger> logger) {
  std::lock_guard lock(g_mu);
  g_logger = std::move(logger);
}

}  // namespace cohort
