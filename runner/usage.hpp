// What a node reports about its machine in every heartbeat: CPU cores in use (from /proc/stat
// deltas), memory (from /proc/meminfo) and GPU utilization (NVML, when the driver is there).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string_view>

#include "cohort/v1/cohort.pb.h"
#include "nvml.hpp"

namespace cohort::runner {

// The aggregate "cpu" line of /proc/stat, in clock ticks.
struct CpuTimes {
  std::uint64_t busy = 0;   // user + nice + system + irq + softirq + steal (guest is inside user)
  std::uint64_t total = 0;  // busy + idle + iowait
  int cpus = 0;             // "cpuN" lines
};
std::optional<CpuTimes> parse_proc_stat(std::string_view text);

struct MemInfo {
  std::int64_t total_bytes = 0;
  std::int64_t available_bytes = 0;  // MemAvailable, or MemFree + Buffers + Cached on old kernels
};
std::optional<MemInfo> parse_meminfo(std::string_view text);

// Cores busy on average between two samples; 0 when no time passed.
double cores_used(const CpuTimes& before, const CpuTimes& after);

// Reads /proc and NVML. Not thread-safe: one owner samples.
class UsageSampler {
 public:
  UsageSampler();  // takes the first CPU sample and loads NVML when it is there
  // Usage since the previous call (or construction).
  v1::Usage sample();
  int gpu_count() const { return nvml_ ? nvml_->device_count() : 0; }
  static std::int64_t memory_total_bytes();

 private:
  std::optional<CpuTimes> last_;
  std::unique_ptr<Nvml> nvml_;  // null without a driver
};

}  // namespace cohort::runner
