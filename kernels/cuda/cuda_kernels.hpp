// The CUDA backend of kernels/ (built when COHORT_KERNELS_CUDA is 1): called by dispatch.cpp once
// it has checked the arguments. Every kernel is queued on `stream` (a cudaStream_t, nullptr for the
// legacy default stream) and reads 16 bytes per load where the pointers are 16-byte aligned,
// element by element where they are not; errors are launch errors (cudaGetLastError).
#pragma once

#include <cstddef>
#include <span>

#include "cohort/collectives.hpp"
#include "cohort/status.hpp"
#include "kernels/kernels.hpp"

namespace cohort::kernels::cuda {

// REQUIRES for all: arguments checked as dispatch.cpp does; pointers are device (or managed)
// memory of the current device.
Status reduce(void* inout, const void* in, std::size_t count, DType dtype, ReduceOp op, void* stream);
Status scale(void* data, std::size_t count, DType dtype, double factor, void* stream);
// The conversions only (fp32 <-> bf16, fp32 <-> fp16); equal types are a copy().
Status cast(void* dst, DType dst_type, const void* src, DType src_type, std::size_t count, void* stream);

Status copy(void* dst, const void* src, std::size_t bytes, void* stream);
Status pack(MutableBufferView dst, std::span<const ConstBufferView> srcs, void* stream);
Status unpack(std::span<const MutableBufferView> dsts, ConstBufferView src, void* stream);

}  // namespace cohort::kernels::cuda
