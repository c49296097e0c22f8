#include "logging.hpp"

#include <spdlog/sinks/stdout_sinks.h>

#include "cohort/log.hpp"

namespace cohort::runner {

namespace {

std::string pattern(const std::string& node) {
  std::string escaped;  // '%' is a pattern flag; a node name is user text
  for (char c : node) {
    if (c == '%') escaped += '%';
    escaped += c;
  }
  return "%Y-%m-%d %H:%M:%S.%e %^%-5l%$ [runner " + escaped + "] %v";
}

}  // namespace

std::shared_ptr<spdlog::logger> init_runner_logging(const std::string& node, spdlog::level::level_enum level) {
  auto log = std::make_shared<spdlog::logger>("runner", std::make_shared<spdlog::sinks::stderr_sink_mt>());
  log->set_pattern(pattern(node));
  log->set_level(level);
  log->flush_on(spdlog::level::trace);  // stderr is often a file: every line lands at once
  spdlog::set_default_logger(log);
  set_logger(log);
  return log;
}

void name_log_lines(const std::string& node) {
  logger()->set_pattern(pattern(node));
}

}  // namespace cohort::runner
