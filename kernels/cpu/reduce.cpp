// CPU reduce: inout[i] = inout[i] op in[i]. The AVX2 path handles whole vectors and leaves the
// tail (fewer than one vector's elements) to the scalar reference, as the portable path does for
// everything.
#include <cstddef>

#include "kernels/cpu/avx2.hpp"
#include "kernels/cpu/cpu_kernels.hpp"
#include "kernels/element_ops.hpp"
#include "kernels/type_switch.hpp"

namespace cohort::kernels::cpu {
namespace {

template <class Fn>
void reduce_portable(Fn fn, void* inout, const void* in, std::size_t n) {
  using S = typename Fn::Storage;
  auto* a = static_cast<S*>(inout);
  const auto* b = static_cast<const S*>(in);
  for (std::size_t i = 0; i < n; ++i)
    a[i] = fn(a[i], b[i]);
}

#if COHORT_KERNELS_X86
template <class Fn>
COHORT_AVX2 void reduce_avx2(Fn fn, void* inout, const void* in, std::size_t n) {
  using C = typename Fn::C;
  using O = typename Fn::O;
  using S = typename Fn::Storage;
  constexpr std::size_t kW = avx2::kLanes<C>;
  auto* a = static_cast<S*>(inout);
  const auto* b = static_cast<const S*>(in);
  std::size_t i = 0;
  // Two vectors per iteration: the 16-bit types then fill whole cache lines per trip.
  for (; i + 2 * kW <= n; i += 2 * kW) {
    const auto x = avx2::load_operand_pair(C{}, a + i);
    const auto y = avx2::load_operand_pair(C{}, b + i);
    avx2::store_result_pair(C{}, a + i, avx2::apply(O{}, x.lo, y.lo), avx2::apply(O{}, x.hi, y.hi));
  }
  for (; i + kW <= n; i += kW) {
    avx2::store_result(C{}, a + i, avx2::apply(O{}, avx2::load_operand(C{}, a + i), avx2::load_operand(C{}, b + i)));
  }
  for (; i < n; ++i)
    a[i] = fn(a[i], b[i]);
}
#endif

}  // namespace

Status reduce(void* inout, const void* in, std::size_t count, DType dtype, ReduceOp op, Isa isa) {
  return visit_reduce(dtype, op, [&](auto fn) -> Status {
#if COHORT_KERNELS_X86
    if (isa == Isa::kAvx2) {
      reduce_avx2(fn, inout, in, count);
      return {};
    }
#endif
    (void)isa;
    reduce_portable(fn, inout, in, count);
    return {};
  });
}

}  // namespace cohort::kernels::cpu
