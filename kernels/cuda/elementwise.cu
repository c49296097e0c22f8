// CUDA reduce, scale and cast: grid-stride loops over 16-byte vectors (uint4) when every pointer
// is 16-byte aligned, then a scalar tail; element by element otherwise. Each element goes through
// the same element_ops.hpp function as on the CPU, so results agree bit for bit.
#include <cuda_runtime.h>

#include <cstddef>

#include "kernels/cuda/cuda_kernels.hpp"
#include "kernels/cuda/launch.cuh"
#include "kernels/element_ops.hpp"
#include "kernels/type_switch.hpp"

namespace cohort::kernels::cuda {
namespace {

template <class Fn>
__global__ void reduce_kernel(typename Fn::Storage* a, const typename Fn::Storage* b, std::size_t n, bool vec, Fn fn) {
  using S = typename Fn::Storage;
  constexpr std::size_t kN = Lanes16<S>::kN;
  const std::size_t tid = grid_thread();
  const std::size_t stride = grid_stride();
  std::size_t done = 0;
  if (vec) {
    const std::size_t nv = n / kN;
    for (std::size_t v = tid; v < nv; v += stride) {
      Lanes16<S> x = load16<S>(a, v);
      const Lanes16<S> y = load16<S>(b, v);
#pragma unroll
      for (std::size_t k = 0; k < kN; ++k)
        x.e[k] = fn(x.e[k], y.e[k]);
      store16<S>(a, v, x);
    }
    done = nv * kN;
  }
  for (std::size_t i = done + tid; i < n; i += stride)
    a[i] = fn(a[i], b[i]);
}

template <class Fn>
__global__ void scale_kernel(typename Fn::Storage* p, std::size_t n, bool vec, Fn fn) {
  using S = typename Fn::Storage;
  constexpr std::size_t kN = Lanes16<S>::kN;
  const std::size_t tid = grid_thread();
  const std::size_t stride = grid_stride();
  std::size_t done = 0;
  if (vec) {
    const std::size_t nv = n / kN;
    for (std::size_t v = tid; v < nv; v += stride) {
      Lanes16<S> x = load16<S>(p, v);
#pragma unroll
      for (std::size_t k = 0; k < kN; ++k)
        x.e[k] = fn(x.e[k]);
      store16<S>(p, v, x);
    }
    done = nv * kN;
  }
  for (std::size_t i = done + tid; i < n; i += stride)
    p[i] = fn(p[i]);
}

// One unit is as many elements as fill 16 bytes of the narrower type: 8 for fp32 <-> bf16/fp16,
// read as two uint4 of fp32 and written as one of 16-bit values (or the other way round).
template <class Fn>
__global__ void cast_kernel(typename Fn::T::Storage* d, const typename Fn::F::Storage* s, std::size_t n, bool vec,
                            Fn fn) {
  using From = typename Fn::F::Storage;
  using To = typename Fn::T::Storage;
  constexpr std::size_t kIn = Lanes16<From>::kN;
  constexpr std::size_t kOut = Lanes16<To>::kN;
  constexpr std::size_t kUnit = kIn > kOut ? kIn : kOut;
  const std::size_t tid = grid_thread();
  const std::size_t stride = grid_stride();
  std::size_t done = 0;
  if (vec) {
    const std::size_t nu = n / kUnit;
    for (std::size_t u = tid; u < nu; u += stride) {
      Lanes16<From> in[kUnit / kIn];
      Lanes16<To> out[kUnit / kOut];
#pragma unroll
      for (std::size_t l = 0; l < kUnit / kIn; ++l)
        in[l] = load16<From>(s, u * (kUnit / kIn) + l);
#pragma unroll
      for (std::size_t k = 0; k < kUnit; ++k)
        out[k / kOut].e[k % kOut] = fn(in[k / kIn].e[k % kIn]);
#pragma unroll
      for (std::size_t l = 0; l < kUnit / kOut; ++l)
        store16<To>(d, u * (kUnit / kOut) + l, out[l]);
    }
    done = nu * kUnit;
  }
  for (std::size_t i = done + tid; i < n; i += stride)
    d[i] = fn(s[i]);
}

// Threads needed: one per vector (or unit) and one per tail element; one per element unaligned.
std::size_t work_items(std::size_t n, std::size_t per_vector, bool vec) {
  return vec ? n / per_vector + n % per_vector : n;
}

}  // namespace

Status reduce(void* inout, const void* in, std::size_t count, DType dtype, ReduceOp op, void* stream) {
  return visit_reduce(dtype, op, [&](auto fn) -> Status {
    using Fn = decltype(fn);
    using S = typename Fn::Storage;
    const bool vec = aligned16(inout) && aligned16(in);
    reduce_kernel<Fn><<<blocks_for(work_items(count, Lanes16<S>::kN, vec)), kThreads, 0, as_stream(stream)>>>(
        static_cast<S*>(inout), static_cast<const S*>(in), count, vec, fn);
    return launch_status("reduce");
  });
}

Status scale(void* data, std::size_t count, DType dtype, double factor, void* stream) {
  return visit_scale(dtype, factor, [&](auto fn) -> Status {
    using Fn = decltype(fn);
    using S = typename Fn::Storage;
    const bool vec = aligned16(data);
    scale_kernel<Fn><<<blocks_for(work_items(count, Lanes16<S>::kN, vec)), kThreads, 0, as_stream(stream)>>>(
        static_cast<S*>(data), count, vec, fn);
    return launch_status("scale");
  });
}

Status cast(void* dst, DType dst_type, const void* src, DType src_type, std::size_t count, void* stream) {
  return visit_cast(dst_type, src_type, [&](auto fn) -> Status {
    using Fn = decltype(fn);
    using From = typename Fn::F::Storage;
    using To = typename Fn::T::Storage;
    const bool vec = aligned16(dst) && aligned16(src);
    const std::size_t unit = Lanes16<From>::kN > Lanes16<To>::kN ? Lanes16<From>::kN : Lanes16<To>::kN;
    cast_kernel<Fn><<<blocks_for(work_items(count, unit, vec)), kThreads, 0, as_stream(stream)>>>(
        static_cast<To*>(dst), static_cast<const From*>(src), count, vec, fn);
    return launch_status("cast");
  });
}

}  // namespace cohort::kernels::cuda
