// CUDA copy, pack and unpack. One kernel copies a batch of up to kMaxBatch (src, dst, bytes)
// entries passed by value as its parameter, one grid row (blockIdx.y) per entry, so fusing many
// small tensors costs one launch per 64 of them rather than one per tensor. Each entry moves
// 16 bytes per load/store when both its pointers are 16-byte aligned (4 bytes when 4-aligned,
// bytes otherwise). copy() is the same kernel with one entry: the benchmarks' device-copy baseline.
#include <cuda_runtime.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>

#include "kernels/cuda/cuda_kernels.hpp"
#include "kernels/cuda/launch.cuh"

namespace cohort::kernels::cuda {
namespace {

// 64 entries × 24 bytes stay well inside the 4 KiB of kernel parameters every CUDA version allows.
constexpr int kMaxBatch = 64;

struct CopyBatch {
  const unsigned char* src[kMaxBatch];
  unsigned char* dst[kMaxBatch];
  std::size_t bytes[kMaxBatch];
};

template <class U>
__device__ void copy_units(unsigned char* d, const unsigned char* s, std::size_t bytes, std::size_t tid,
                           std::size_t stride) {
  const std::size_t n = bytes / sizeof(U);
  auto* du = reinterpret_cast<U*>(d);
  const auto* su = reinterpret_cast<const U*>(s);
  for (std::size_t i = tid; i < n; i += stride)
    du[i] = su[i];
  for (std::size_t i = n * sizeof(U) + tid; i < bytes; i += stride)
    d[i] = s[i];
}

__global__ void copy_batch_kernel(CopyBatch batch) {
  const unsigned e = blockIdx.y;
  unsigned char* d = batch.dst[e];
  const unsigned char* s = batch.src[e];
  const std::size_t bytes = batch.bytes[e];
  const std::size_t tid = grid_thread();
  const std::size_t stride = grid_stride();
  const auto align = reinterpret_cast<std::uintptr_t>(d) | reinterpret_cast<std::uintptr_t>(s);
  if (align % 16 == 0) {
    copy_units<uint4>(d, s, bytes, tid, stride);
  } else if (align % 4 == 0) {
    copy_units<std::uint32_t>(d, s, bytes, tid, stride);
  } else {
    copy_units<unsigned char>(d, s, bytes, tid, stride);
  }
}

// Collects entries and launches a kernel for every kMaxBatch of them, in order, on one stream.
class Batcher {
 public:
  explicit Batcher(void* stream) : stream_(as_stream(stream)) {}

  Status add(void* dst, const void* src, std::size_t bytes) {
    if (bytes == 0) return {};
    batch_.dst[n_] = static_cast<unsigned char*>(dst);
    batch_.src[n_] = static_cast<const unsigned char*>(src);
    batch_.bytes[n_] = bytes;
    largest_ = std::max(largest_, bytes);
    return ++n_ == kMaxBatch ? flush() : Status{};
  }

  Status flush() {
    if (n_ == 0) return {};
    const dim3 grid(blocks_for(largest_ / 16 + largest_ % 16), static_cast<unsigned>(n_));
    copy_batch_kernel<<<grid, kThreads, 0, stream_>>>(batch_);
    n_ = 0;
    largest_ = 0;
    return launch_status("copy");
  }

 private:
  cudaStream_t stream_;
  CopyBatch batch_{};
  int n_ = 0;
  std::size_t largest_ = 0;
};

}  // namespace

Status copy(void* dst, const void* src, std::size_t bytes, void* stream) {
  Batcher b(stream);
  COHORT_TRY(b.add(dst, src, bytes));
  return b.flush();
}

Status pack(MutableBufferView dst, std::span<const ConstBufferView> srcs, void* stream) {
  Batcher b(stream);
  auto* out = static_cast<unsigned char*>(dst.data);
  for (const ConstBufferView& s : srcs) {
    COHORT_TRY(b.add(out, s.data, s.bytes));
    out += s.bytes;
  }
  return b.flush();
}

Status unpack(std::span<const MutableBufferView> dsts, ConstBufferView src, void* stream) {
  Batcher b(stream);
  const auto* in = static_cast<const unsigned char*>(src.data);
  for (const MutableBufferView& d : dsts) {
    COHORT_TRY(b.add(d.data, in, d.bytes));
    in += d.bytes;
  }
  return b.flush();
}

}  // namespace cohort::kernels::cuda
