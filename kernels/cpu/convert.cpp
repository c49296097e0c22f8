// CPU scale (x × factor) and cast (fp32 <-> bf16, fp32 <-> fp16), and the probe that picks the
// instruction set for every CPU kernel.
#include <cstddef>
#include <string_view>

#include "kernels/cpu/avx2.hpp"
#include "kernels/cpu/cpu_kernels.hpp"
#include "kernels/element_ops.hpp"
#include "kernels/type_switch.hpp"

namespace cohort::kernels::cpu {

Isa best_isa() noexcept {
#if COHORT_KERNELS_X86
  // __builtin_cpu_supports also checks that the OS saves the AVX registers (XGETBV).
  static const Isa isa = [] {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("f16c") ? Isa::kAvx2 : Isa::kPortable;
  }();
  return isa;
#else
  return Isa::kPortable;
#endif
}

std::string_view isa_name(Isa isa) noexcept {
  return isa == Isa::kAvx2 ? "avx2+f16c" : "portable";
}

namespace {

template <class Fn>
void scale_portable(Fn fn, void* data, std::size_t n) {
  auto* p = static_cast<typename Fn::Storage*>(data);
  for (std::size_t i = 0; i < n; ++i)
    p[i] = fn(p[i]);
}

template <class Fn>
void cast_portable(Fn fn, void* dst, const void* src, std::size_t n) {
  auto* d = static_cast<typename Fn::T::Storage*>(dst);
  const auto* s = static_cast<const typename Fn::F::Storage*>(src);
  for (std::size_t i = 0; i < n; ++i)
    d[i] = fn(s[i]);
}

#if COHORT_KERNELS_X86
template <class Fn>
COHORT_AVX2 void scale_avx2(Fn fn, void* data, std::size_t n) {
  using C = typename Fn::C;
  constexpr std::size_t kW = avx2::kLanes<C>;
  auto* p = static_cast<typename Fn::Storage*>(data);
  const auto f = avx2::splat(fn.factor);
  std::size_t i = 0;
  for (; i + 2 * kW <= n; i += 2 * kW) {
    const auto x = avx2::load_operand_pair(C{}, p + i);
    avx2::store_result_pair(C{}, p + i, avx2::scale(x.lo, f), avx2::scale(x.hi, f));
  }
  for (; i + kW <= n; i += kW)
    avx2::store_result(C{}, p + i, avx2::scale(avx2::load_operand(C{}, p + i), f));
  for (; i < n; ++i)
    p[i] = fn(p[i]);
}

template <class Fn>
COHORT_AVX2 void cast_avx2(Fn fn, void* dst, const void* src, std::size_t n) {
  using From = typename Fn::F;
  using To = typename Fn::T;
  static_assert(avx2::kLanes<From> == avx2::kLanes<To>, "casts between codecs of one compute type");
  constexpr std::size_t kW = avx2::kLanes<From>;
  auto* d = static_cast<typename To::Storage*>(dst);
  const auto* s = static_cast<const typename From::Storage*>(src);
  std::size_t i = 0;
  for (; i + 2 * kW <= n; i += 2 * kW)
    avx2::store_pair(To{}, d + i, avx2::load(From{}, s + i), avx2::load(From{}, s + i + kW));
  for (; i + kW <= n; i += kW)
    avx2::store(To{}, d + i, avx2::load(From{}, s + i));
  for (; i < n; ++i)
    d[i] = fn(s[i]);
}
#endif

}  // namespace

Status scale(void* data, std::size_t count, DType dtype, double factor, Isa isa) {
  return visit_scale(dtype, factor, [&](auto fn) -> Status {
#if COHORT_KERNELS_X86
    if (isa == Isa::kAvx2) {
      scale_avx2(fn, data, count);
      return {};
    }
#endif
    (void)isa;
    scale_portable(fn, data, count);
    return {};
  });
}

Status cast(void* dst, DType dst_type, const void* src, DType src_type, std::size_t count, Isa isa) {
  return visit_cast(dst_type, src_type, [&](auto fn) -> Status {
#if COHORT_KERNELS_X86
    if (isa == Isa::kAvx2) {
      cast_avx2(fn, dst, src, count);
      return {};
    }
#endif
    (void)isa;
    cast_portable(fn, dst, src, count);
    return {};
  });
}

}  // namespace cohort::kernels::cpu
