// The one mapping from the run-time (DType, ReduceOp) pair to the compile-time codec and
// operation types of element_ops.hpp. Both backends (cpu/, cuda/) instantiate their kernels
// through it, so a dtype or op added here reaches every device at once. Host code only.
#pragma once

#include <string>
#include <string_view>
#include <type_traits>

#include "cohort/collectives.hpp"
#include "cohort/status.hpp"
#include "kernels/element_ops.hpp"

namespace cohort::kernels {

// "fp32", "sum", ...: the names of cohort/collectives.hpp, kept here too so that this library does
// not depend on libcohort, which links it (dispatch.cpp).
std::string_view type_label(DType dtype) noexcept;
std::string_view op_label(ReduceOp op) noexcept;

// Calls f(Codec{}) for `dtype`'s codec and returns what it returns.
template <class F>
Status visit_codec(DType dtype, F&& f) {
  switch (dtype) {
    case DType::kFloat32:
      return f(F32Codec{});
    case DType::kFloat64:
      return f(F64Codec{});
    case DType::kFloat16:
      return f(F16Codec{});
    case DType::kBFloat16:
      return f(Bf16Codec{});
    case DType::kInt32:
      return f(I32Codec{});
    case DType::kInt64:
      return f(I64Codec{});
  }
  return invalid_argument("unknown dtype " + std::to_string(static_cast<int>(dtype)));
}

// Calls f(ReduceFn<Codec, Op>{}) for `dtype` and `op` (kSum, kMin, kMax).
template <class F>
Status visit_reduce(DType dtype, ReduceOp op, F&& f) {
  return visit_codec(dtype, [&](auto codec) -> Status {
    using C = decltype(codec);
    switch (op) {
      case ReduceOp::kSum:
        return f(ReduceFn<C, SumOp>{});
      case ReduceOp::kMin:
        return f(ReduceFn<C, MinOp>{});
      case ReduceOp::kMax:
        return f(ReduceFn<C, MaxOp>{});
      case ReduceOp::kAvg:
        break;
    }
    return invalid_argument("reduce has no pairwise " + std::string(op_label(op)) +
                            ": use kSum, then finish_average()");
  });
}

// Calls f(ScaleFn<Codec>{factor}) for the floating-point `dtype`s.
template <class F>
Status visit_scale(DType dtype, double factor, F&& f) {
  return visit_codec(dtype, [&](auto codec) -> Status {
    using C = decltype(codec);
    if constexpr (std::is_floating_point_v<typename C::Math>) {
      return f(ScaleFn<C>{static_cast<typename C::Math>(factor)});
    } else {
      return invalid_argument("scale supports fp32, fp64, fp16 and bf16, not integer types");
    }
  });
}

// Calls f(CastFn<From, To>{}) for the conversions fp32 <-> bf16 and fp32 <-> fp16.
template <class F>
Status visit_cast(DType dst_type, DType src_type, F&& f) {
  using D = DType;
  if (src_type == D::kFloat32 && dst_type == D::kBFloat16) return f(CastFn<F32Codec, Bf16Codec>{});
  if (src_type == D::kFloat32 && dst_type == D::kFloat16) return f(CastFn<F32Codec, F16Codec>{});
  if (src_type == D::kBFloat16 && dst_type == D::kFloat32) return f(CastFn<Bf16Codec, F32Codec>{});
  if (src_type == D::kFloat16 && dst_type == D::kFloat32) return f(CastFn<F16Codec, F32Codec>{});
  return invalid_argument("cast supports fp32 <-> bf16, fp32 <-> fp16 and copies between equal types, not " +
                          std::string(type_label(src_type)) + " -> " + std::string(type_label(dst_type)));
}

}  // namespace cohort::kernels
