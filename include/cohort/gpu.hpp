// What GPUs this process can use. Built without CUDA, or with CUDA on a machine without a GPU
// (where the driver answers "insufficient driver" or "no device"), this says so instead of failing.
#pragma once

#include <string>

#include "cohort/context.hpp"
#include "cohort/status.hpp"

namespace cohort {

struct GpuInfo {
  bool built_with_cuda = false;
  int device_count = 0;
  std::string why_none;          // set when device_count == 0: why no GPU can be used
  int cuda_runtime_version = 0;  // e.g. 13000
  int nccl_version = 0;          // e.g. 22800
};

GpuInfo probe_gpus();

// Binds this process to GPU (local_rank mod device_count) and returns its index;
// FailedPrecondition naming the reason when there is none.
Result<int> select_gpu(const Context& ctx);

}  // namespace cohort
