#include "cohort/gpu.hpp"

namespace cohort {

GpuInfo probe_gpus() {
  GpuInfo info;
  info.why_none = "libcohort was built without CUDA (COHORT_WITH_CUDA found no nvcc or NCCL)";
  return info;
}

Result<int> select_gpu(const Context& ctx) {
  return failed_precondition("rank " + std::to_string(ctx.rank) + ": " + probe_gpus().why_none);
}

}  // namespace cohort
