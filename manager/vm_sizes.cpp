#include "vm_sizes.hpp"

#include <unistd.h>

#include <filesystem>
#include <thread>

namespace cohort::manager {

namespace {

v1::VmSize size(std::string name, int cores, std::int64_t memory_gib, int gpus, std::string description) {
  v1::VmSize s;
  s.set_name(std::move(name));
  s.set_cores(cores);
  s.set_memory_bytes(memory_gib << 30);
  s.set_gpus(gpus);
  s.set_description(std::move(description));
  return s;
}

int local_gpus() {
  int n = 0;
  std::error_code ec;
  while (std::filesystem::exists("/dev/nvidia" + std::to_string(n), ec))
    ++n;
  return n;
}

}  // namespace

std::vector<v1::VmSize> vm_sizes() {
  const int cores = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  const std::int64_t memory = static_cast<std::int64_t>(sysconf(_SC_PHYS_PAGES)) * sysconf(_SC_PAGESIZE);
  v1::VmSize local = size("local", cores, 0, local_gpus(), "a node that takes what this machine offers");
  local.set_memory_bytes(memory);
  // Cloud-like sizes for the exec provider (shaped like Azure's; a script maps them to a machine).
  return {local,
          size("local-1c", 1, 2, 0, "a local node that schedules as one core"),
          size("local-2c", 2, 4, 0, "a local node that schedules as two cores"),
          size("Standard_D4s_v3", 4, 16, 0, "4 vCPU, 16 GiB"),
          size("Standard_D16s_v3", 16, 64, 0, "16 vCPU, 64 GiB"),
          size("Standard_F72s_v2", 72, 144, 0, "72 vCPU, 144 GiB, compute-optimized"),
          size("Standard_NC24ads_A100_v4", 24, 220, 1, "24 vCPU, 220 GiB, 1 A100 80 GB"),
          size("Standard_ND96isr_H100_v5", 96, 1900, 8, "96 vCPU, 1900 GiB, 8 H100 80 GB, InfiniBand")};
}

Result<v1::VmSize> find_vm_size(const std::string& name) {
  std::string known;
  for (const auto& s : vm_sizes()) {
    if (s.name() == name) return s;
    known += (known.empty() ? "" : ", ") + s.name();
  }
  return Status(Code::kNotFound,
                "unknown vm size \"" + name + "\": known sizes are " + known + " (`cohort cluster sizes` lists them)");
}

}  // namespace cohort::manager
