#include <cuda_runtime_api.h>
#include <nccl.h>

#include "cohort/gpu.hpp"

namespace cohort {

GpuInfo probe_gpus() {
  GpuInfo info;
  info.built_with_cuda = true;
  cudaRuntimeGetVersion(&info.cuda_runtime_version);
  ncclGetVersion(&info.nccl_version);
  int count = 0;
  // On a machine with no GPU the runtime answers cudaErrorInsufficientDriver or
  // cudaErrorNoDevice: that is "no GPU here", not a failure of the program.
  cudaError_t err = cudaGetDeviceCount(&count);
  if (err != cudaSuccess) {
    info.why_none = std::string("cudaGetDeviceCount: ") + cudaGetErrorString(err);
    cudaGetLastError();  // clear the sticky error so later CUDA calls start clean
    return info;
  }
  info.device_count = count;
  if (count == 0) info.why_none = "the CUDA driver reports no device";
  return info;
}

Result<int> select_gpu(const Context& ctx) {
  GpuInfo info = probe_gpus();
  if (info.device_count == 0) return failed_precondition("rank " + std::to_string(ctx.rank) + ": " + info.why_none);
  int device = ctx.local_rank % info.device_count;
  cudaError_t err = cudaSetDevice(device);
  if (err != cudaSuccess) {
    return failed_precondition("rank " + std::to_string(ctx.rank) + ": cudaSetDevice(" + std::to_string(device) +
                               "): " + cudaGetErrorString(err));
  }
  return device;
}

}  // namespace cohort
