#include "usage.hpp"

#include <charconv>
#include <string>
#include <vector>

#include "file_write.hpp"

namespace cohort::runner {

namespace {

// The unsigned numbers of one line after its label.
std::vector<std::uint64_t> numbers(std::string_view line) {
  std::vector<std::uint64_t> out;
  const char* p = line.data();
  const char* end = line.data() + line.size();
  while (p < end) {
    while (p < end && (*p == ' ' || *p == '\t'))
      ++p;
    std::uint64_t v = 0;
    auto r = std::from_chars(p, end, v);
    if (r.ec != std::errc()) break;
    out.push_back(v);
    p = r.ptr;
  }
  return out;
}

}  // namespace

std::optional<CpuTimes> parse_proc_stat(std::string_view text) {
  std::optional<CpuTimes> out;
  int cpus = 0;
  while (!text.empty()) {
    const auto nl = text.find('\n');
    const std::string_view line = text.substr(0, nl);
    text = nl == std::string_view::npos ? std::string_view() : text.substr(nl + 1);
    if (line.starts_with("cpu ")) {
      const auto v = numbers(line.substr(4));
      if (v.size() < 4) return std::nullopt;  // user nice system idle at the least
      auto at = [&v](std::size_t i) { return i < v.size() ? v[i] : 0; };
      CpuTimes t;
      t.busy = at(0) + at(1) + at(2) + at(5) + at(6) + at(7);
      t.total = t.busy + at(3) + at(4);
      out = t;
    } else if (line.starts_with("cpu") && line.size() > 3 && line[3] >= '0' && line[3] <= '9') {
      ++cpus;
    }
  }
  if (out) out->cpus = cpus;
  return out;
}

std::optional<MemInfo> parse_meminfo(std::string_view text) {
  std::optional<std::int64_t> total, available;
  std::int64_t free_like = 0;
  while (!text.empty()) {
    const auto nl = text.find('\n');
    const std::string_view line = text.substr(0, nl);
    text = nl == std::string_view::npos ? std::string_view() : text.substr(nl + 1);
    const auto colon = line.find(':');
    if (colon == std::string_view::npos) continue;
    const std::string_view key = line.substr(0, colon);
    const auto v = numbers(line.substr(colon + 1));
    if (v.empty()) continue;
    const auto bytes = static_cast<std::int64_t>(v[0]) * (line.ends_with("kB") ? 1024 : 1);
    if (key == "MemTotal") total = bytes;
    if (key == "MemAvailable") available = bytes;
    if (key == "MemFree" || key == "Buffers" || key == "Cached") free_like += bytes;
  }
  if (!total) return std::nullopt;
  return MemInfo{*total, available.value_or(free_like)};
}

double cores_used(const CpuTimes& before, const CpuTimes& after) {
  if (after.total <= before.total || after.busy < before.busy) return 0;
  const double share = static_cast<double>(after.busy - before.busy) / static_cast<double>(after.total - before.total);
  return share * (after.cpus > 0 ? after.cpus : 1);
}

UsageSampler::UsageSampler() : last_(parse_proc_stat(read_whole_file("/proc/stat"))), nvml_(Nvml::load()) {}

std::int64_t UsageSampler::memory_total_bytes() {
  auto m = parse_meminfo(read_whole_file("/proc/meminfo"));
  return m ? m->total_bytes : 0;
}

v1::Usage UsageSampler::sample() {
  v1::Usage u;
  auto now = parse_proc_stat(read_whole_file("/proc/stat"));
  if (now && last_) u.set_cpu_cores_used(cores_used(*last_, *now));
  if (now) last_ = now;
  if (auto m = parse_meminfo(read_whole_file("/proc/meminfo"))) {
    u.set_memory_total_bytes(m->total_bytes);
    u.set_memory_used_bytes(m->total_bytes - m->available_bytes);
  }
  if (nvml_) {
    for (double g : nvml_->utilization())
      u.add_gpu_utilization(g);
  }
  return u;
}

}  // namespace cohort::runner
