// A job's side of a preemption notice and of progress: the notice file and signal the runner
// gives it, the agreement that makes every rank stop at the same step, and the progress file.
#include <sys/stat.h>

#include <atomic>
#include <csignal>
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>
#include <span>

#include "cohort/collectives.hpp"
#include "cohort/context.hpp"

namespace cohort {
namespace {

std::atomic<bool> g_notice_signal{false};
std::atomic<std::int64_t> g_last_progress_ms{0};

extern "C" void on_notice_signal(int) {
  g_notice_signal.store(true, std::memory_order_relaxed);  // lock-free: safe in a handler
}

std::int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

}  // namespace

void catch_notice_signal(int sig) {
  struct sigaction sa {};
  sa.sa_handler = on_notice_signal;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESTART;  // a notice must not fail a read or a collective with EINTR
  ::sigaction(sig, &sa, nullptr);
}

bool Context::preemption_noticed() const {
  if (g_notice_signal.load(std::memory_order_relaxed)) return true;
  struct stat st {};
  return !notice_file.empty() && ::stat(notice_file.c_str(), &st) == 0;
}

Result<bool> Context::preemption_requested(Communicator& comm) const {
  std::int32_t noticed = preemption_noticed() ? 1 : 0;
  COHORT_TRY(comm.allreduce(std::span<std::int32_t>(&noticed, 1), ReduceOp::kMax)
                 .with_context("agreeing on a preemption notice"));
  return noticed != 0;
}

std::optional<std::chrono::system_clock::time_point> Context::preemption_deadline() const {
  if (notice_file.empty()) return std::nullopt;
  std::ifstream in(notice_file);
  if (!in) return std::nullopt;
  const auto j = nlohmann::json::parse(in, nullptr, /*allow_exceptions=*/false);
  if (!j.is_object() || !j.contains("deadline_unix_ms") || !j["deadline_unix_ms"].is_number_integer()) {
    return std::nullopt;
  }
  return std::chrono::system_clock::time_point(std::chrono::milliseconds(j["deadline_unix_ms"].get<std::int64_t>()));
}

Status Context::report_progress(std::int64_t step, bool force) const {
  if (progress_file.empty()) return {};
  const std::int64_t t = now_ms();
  if (!force && t - g_last_progress_ms.load(std::memory_order_relaxed) < 50) return {};
  g_last_progress_ms.store(t, std::memory_order_relaxed);
  // Written aside and renamed over, so the runner never reads half a number.
  const std::string tmp = progress_file.string() + ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << step << "\n";
    if (!out.flush()) return errno_status("write", errno, tmp);
  }
  if (std::rename(tmp.c_str(), progress_file.c_str()) != 0)
    return errno_status("rename", errno, progress_file.string());
  return {};
}

}  // namespace cohort
