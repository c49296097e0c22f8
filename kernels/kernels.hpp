// cohort::kernels: the element-wise work of the collectives (reduce, scale, cast, pack/unpack) on
// the CPU (AVX2 + F16C where the CPU has them, portable C++ otherwise) and on CUDA devices, behind
// one dispatch by dtype × op × device. Internal to Cohort: libcohort links it, users do not.
//
// Every kernel agrees bit for bit with the scalar reference in kernels/element_ops.hpp and
// kernels/float16.hpp, on every path; those headers spell out rounding and NaN policy:
// fp16/bf16 compute in fp32 with one round-to-nearest-even per element per call; arithmetic
// returns the canonical quiet NaN; casts keep a NaN's sign and top payload bits.
//
// Common contract of the functions below:
//  - `device` says where every pointer points: host memory for Device::kHost, device memory (or
//    managed memory) of the current CUDA device for Device::kCuda.
//  - On kCuda the work is queued on `stream` (a cudaStream_t; nullptr is the legacy default
//    stream) and the call returns before it has run; errors are launch errors. On kHost the work
//    is done when the call returns and `stream` is ignored.
//  - kCuda in a build without CUDA returns Unimplemented.
//  - count == 0 is a no-op and accepts null pointers.
#pragma once

#include <cstddef>
#include <span>

#include "cohort/collectives.hpp"
#include "cohort/status.hpp"

namespace cohort::kernels {

// Bytes of one element of `dtype` (0 for a value outside the enum).
std::size_t element_size(DType dtype) noexcept;

// inout[i] = inout[i] op in[i] for i < count; op is kSum, kMin or kMax, for every DType.
// kAvg is not a pairwise operation: sum all n contributions with kSum, then finish_average(n).
// REQUIRES: `inout` and `in` are the same array or do not overlap.
Status reduce(void* inout, const void* in, std::size_t count, DType dtype, ReduceOp op, Device device,
              void* stream = nullptr);

// data[i] = data[i] × factor, for fp32, fp64, fp16, bf16 (integers: InvalidArgument). factor is
// first rounded to the compute type: fp64 for fp64, fp32 for the others.
Status scale(void* data, std::size_t count, DType dtype, double factor, Device device, void* stream = nullptr);

// The second half of ReduceOp::kAvg over n contributions: scale(1/n), the reciprocal rounded to the
// compute type, as NCCL's average of floating-point types multiplies by it. REQUIRES: n ≥ 1.
Status finish_average(void* data, std::size_t count, DType dtype, std::size_t n, Device device, void* stream = nullptr);

// dst[i] = src[i] converted: fp32 -> bf16/fp16 (round to nearest even), bf16/fp16 -> fp32 (exact),
// or a copy when the types are equal (any DType).
// REQUIRES: dst and src do not overlap, unless they are the same array of the same type.
Status cast(void* dst, DType dst_type, const void* src, DType src_type, std::size_t count, Device device,
            void* stream = nullptr);

// Copies `bytes` bytes (16-byte vector loads and stores on a CUDA device). The benchmarks'
// baseline, and the identity cast. REQUIRES: no overlap.
Status copy(void* dst, const void* src, std::size_t bytes, Device device, void* stream = nullptr);

// A byte range of one tensor, for tensor fusion. Non-owning: the tensor's owner keeps it alive
// until the kernel has run (on kCuda, until `stream` reaches it).
struct ConstBufferView {
  const void* data = nullptr;
  std::size_t bytes = 0;
};
struct MutableBufferView {
  void* data = nullptr;
  std::size_t bytes = 0;
};

// Bytes that `views` occupy back to back: what pack needs in `dst` and unpack reads from `src`.
std::size_t packed_bytes(std::span<const ConstBufferView> views) noexcept;
std::size_t packed_bytes(std::span<const MutableBufferView> views) noexcept;

// Gathers `srcs` back to back, in order, into the front of `dst` (dst.bytes ≥ packed_bytes(srcs)).
// REQUIRES: no source overlaps dst.
Status pack(MutableBufferView dst, std::span<const ConstBufferView> srcs, Device device, void* stream = nullptr);

// Scatters the front of `src` back into `dsts`, in the order and sizes pack used
// (src.bytes ≥ packed_bytes(dsts)). REQUIRES: no destination overlaps src or another destination.
Status unpack(std::span<const MutableBufferView> dsts, ConstBufferView src, Device device, void* stream = nullptr);

}  // namespace cohort::kernels
