// NVIDIA's management library, loaded at run time with dlopen("libnvidia-ml.so.1") so the runner
// builds and runs on machines without a driver; there it is simply absent.
#pragma once

#include <memory>
#include <vector>

namespace cohort::runner {

class Nvml {
 public:
  // Null when the library is not there or nvmlInit fails (no GPU, driver mismatch).
  static std::unique_ptr<Nvml> load();
  ~Nvml();
  Nvml(const Nvml&) = delete;
  Nvml& operator=(const Nvml&) = delete;

  int device_count() const { return static_cast<int>(devices_.size()); }
  // Per device, percent of the last sample period a kernel ran (as nvidia-smi's "GPU-Util");
  // a device that cannot be read reports 0.
  std::vector<double> utilization() const;

 private:
  struct Api;
  Nvml(void* library, std::unique_ptr<Api> api);

  void* library_;  // dlopen handle, owned; closed by the destructor after nvmlShutdown
  std::unique_ptr<Api> api_;
  std::vector<void*> devices_;  // nvmlDevice_t handles: owned by the library, valid until shutdown
};

}  // namespace cohort::runner
