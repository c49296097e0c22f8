#include "nvml.hpp"

#include <dlfcn.h>

namespace cohort::runner {

namespace {

// The few NVML types used, from nvml.h (the header is not needed to build).
using nvmlReturn_t = int;
using nvmlDevice_t = void*;
struct nvmlUtilization_t {
  unsigned int gpu;
  unsigned int memory;
};
constexpr nvmlReturn_t kNvmlSuccess = 0;

}  // namespace

struct Nvml::Api {
  nvmlReturn_t (*init)() = nullptr;
  nvmlReturn_t (*shutdown)() = nullptr;
  nvmlReturn_t (*device_count)(unsigned int*) = nullptr;
  nvmlReturn_t (*device_by_index)(unsigned int, nvmlDevice_t*) = nullptr;
  nvmlReturn_t (*utilization)(nvmlDevice_t, nvmlUtilization_t*) = nullptr;
};

std::unique_ptr<Nvml> Nvml::load() {
  void* lib = dlopen("libnvidia-ml.so.1", RTLD_NOW | RTLD_LOCAL);
  if (lib == nullptr) return nullptr;
  auto api = std::make_unique<Api>();
  auto sym = [lib](auto& fn, const char* name) {
    fn = reinterpret_cast<std::remove_reference_t<decltype(fn)>>(dlsym(lib, name));
    return fn != nullptr;
  };
  if (!sym(api->init, "nvmlInit_v2") || !sym(api->shutdown, "nvmlShutdown") ||
      !sym(api->device_count, "nvmlDeviceGetCount_v2") || !sym(api->device_by_index, "nvmlDeviceGetHandleByIndex_v2") ||
      !sym(api->utilization, "nvmlDeviceGetUtilizationRates") || api->init() != kNvmlSuccess) {
    dlclose(lib);
    return nullptr;
  }
  return std::unique_ptr<Nvml>(new Nvml(lib, std::move(api)));
}

Nvml::Nvml(void* library, std::unique_ptr<Api> api) : library_(library), api_(std::move(api)) {
  unsigned int count = 0;
  if (api_->device_count(&count) != kNvmlSuccess) return;
  for (unsigned int i = 0; i < count; ++i) {
    nvmlDevice_t d = nullptr;
    if (api_->device_by_index(i, &d) == kNvmlSuccess) devices_.push_back(d);
  }
}

Nvml::~Nvml() {
  api_->shutdown();
  dlclose(library_);
}

std::vector<double> Nvml::utilization() const {
  std::vector<double> out;
  for (void* d : devices_) {
    nvmlUtilization_t u{};
    out.push_back(api_->utilization(d, &u) == kNvmlSuccess ? static_cast<double>(u.gpu) : 0.0);
  }
  return out;
}

}  // namespace cohort::runner
