// What the CUDA kernels of kernels/cuda/ share: launch geometry, 16-byte vector access and the
// launch error as a Status.
#pragma once

#include <cuda_runtime.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>

#include "cohort/status.hpp"

namespace cohort::kernels::cuda {

constexpr unsigned kThreads = 256;
// Grids stop growing here and loop (grid-stride) instead: 8192 blocks of 256 threads fill the
// 132 SMs of an H100/H200 many times over, so more blocks would add only scheduling work.
constexpr std::size_t kMaxBlocks = 8192;

inline unsigned blocks_for(std::size_t work_items) {
  return static_cast<unsigned>(std::clamp<std::size_t>((work_items + kThreads - 1) / kThreads, 1, kMaxBlocks));
}

inline bool aligned16(const void* p) {
  return (reinterpret_cast<std::uintptr_t>(p) & 15u) == 0;
}

inline cudaStream_t as_stream(void* stream) {
  return static_cast<cudaStream_t>(stream);
}

// The error of the launch just made (or a sticky error of an earlier kernel), naming the kernel.
inline Status launch_status(const char* kernel) {
  const cudaError_t err = cudaGetLastError();
  if (err == cudaSuccess) return {};
  const bool no_device = err == cudaErrorNoDevice || err == cudaErrorInsufficientDriver ||
                         err == cudaErrorInitializationError || err == cudaErrorInvalidDevice;
  return {no_device ? Code::kUnavailable : Code::kInternal, std::string("launching the CUDA ") + kernel + " kernel: " +
                                                                cudaGetErrorName(err) + ": " + cudaGetErrorString(err)};
}

// Thread index and stride of a 1-D grid-stride loop.
__device__ __forceinline__ std::size_t grid_thread() {
  return static_cast<std::size_t>(blockIdx.x) * blockDim.x + threadIdx.x;
}
__device__ __forceinline__ std::size_t grid_stride() {
  return static_cast<std::size_t>(gridDim.x) * blockDim.x;
}

// 16 bytes as elements of S, moved through one 16-byte load or store (ld/st.global.v4).
template <class S>
struct Lanes16 {
  static constexpr std::size_t kN = 16 / sizeof(S);
  S e[kN];
};

template <class S>
__device__ __forceinline__ Lanes16<S> load16(const void* base, std::size_t v) {
  const uint4 raw = static_cast<const uint4*>(base)[v];
  Lanes16<S> x;
  memcpy(&x, &raw, 16);
  return x;
}

template <class S>
__device__ __forceinline__ void store16(void* base, std::size_t v, const Lanes16<S>& x) {
  uint4 raw;
  memcpy(&raw, &x, 16);
  static_cast<uint4*>(base)[v] = raw;
}

}  // namespace cohort::kernels::cuda
