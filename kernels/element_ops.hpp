// What every kernel does to one element: the scalar reference of reduce, scale and cast, shared
// by the CPU kernels (their portable path and vector tails), the CUDA kernels and the tests. The
// vector paths (cpu/avx2.hpp) are written to agree with these bit for bit.
//
// Semantics:
//  - fp16 and bf16 compute in fp32: widen both operands, one fp32 operation, one rounding back
//    (round to nearest even) per element per call. fp32 and fp64 compute in their own type.
//  - A NaN result of arithmetic (sum, min, max, scale) is the canonical quiet NaN of its type:
//    0x7fc00000 (fp32), 0x7ff8000000000000 (fp64), hence 0x7fc0 (bf16) and 0x7e00 (fp16). Which
//    input NaN hardware propagates differs between x86 (the first operand, which compilers may
//    swap) and CUDA (always 0x7fffffff), so no payload survives arithmetic.
//  - min/max propagate NaN (either operand NaN gives NaN) and order -0 below +0:
//    min(+0, -0) = -0, max(+0, -0) = +0, as IEEE 754-2019 minimum/maximum.
//  - Integer sum wraps around (two's complement); integer scale is not provided.
//  - Results assume the default floating-point environment: round to nearest, no flush-to-zero
//    (CUDA code is built without --use_fast_math, and mul/add use the _rn intrinsics there so no
//    contraction happens).
#pragma once

#include <cstdint>
#include <type_traits>

#include "kernels/float16.hpp"

namespace cohort::kernels {

inline constexpr std::uint32_t kCanonicalNaN32 = 0x7fc00000u;
inline constexpr std::uint64_t kCanonicalNaN64 = 0x7ff8000000000000ull;

// The canonical NaN of x's type (the argument only picks the overload).
COHORT_HD float canonical_nan(float) {
  return f32_from_bits(kCanonicalNaN32);
}
COHORT_HD double canonical_nan(double) {
  return f64_from_bits(kCanonicalNaN64);
}
COHORT_HD float canonicalize(float x) {
  return x != x ? canonical_nan(x) : x;
}
COHORT_HD double canonicalize(double x) {
  return x != x ? canonical_nan(x) : x;
}

COHORT_HD float add_rn(float a, float b) {
#if defined(__CUDA_ARCH__)
  return __fadd_rn(a, b);
#else
  return a + b;
#endif
}
COHORT_HD double add_rn(double a, double b) {
#if defined(__CUDA_ARCH__)
  return __dadd_rn(a, b);
#else
  return a + b;
#endif
}
COHORT_HD float mul_rn(float a, float b) {
#if defined(__CUDA_ARCH__)
  return __fmul_rn(a, b);
#else
  return a * b;
#endif
}
COHORT_HD double mul_rn(double a, double b) {
#if defined(__CUDA_ARCH__)
  return __dmul_rn(a, b);
#else
  return a * b;
#endif
}

// -0 and +0 compare equal; their bits tell them apart (OR gives -0, AND gives +0). Equal non-zero
// values have equal bits, so the same expression is right for them too.
COHORT_HD float or_bits(float a, float b) {
  return f32_from_bits(f32_bits(a) | f32_bits(b));
}
COHORT_HD float and_bits(float a, float b) {
  return f32_from_bits(f32_bits(a) & f32_bits(b));
}
COHORT_HD double or_bits(double a, double b) {
  return f64_from_bits(f64_bits(a) | f64_bits(b));
}
COHORT_HD double and_bits(double a, double b) {
  return f64_from_bits(f64_bits(a) & f64_bits(b));
}

// --- The operations, on the compute type (float, double, int32_t, int64_t). ---

struct SumOp {
  template <typename T>
  COHORT_HD static T apply(T a, T b) {
    if constexpr (std::is_floating_point_v<T>) {
      return canonicalize(add_rn(a, b));
    } else {
      using U = std::make_unsigned_t<T>;
      return static_cast<T>(static_cast<U>(static_cast<U>(a) + static_cast<U>(b)));
    }
  }
};

struct MinOp {
  template <typename T>
  COHORT_HD static T apply(T a, T b) {
    if constexpr (std::is_floating_point_v<T>) {
      if (a != a || b != b) return canonical_nan(a);
      if (a < b) return a;
      if (b < a) return b;
      return or_bits(a, b);
    } else {
      return b < a ? b : a;
    }
  }
};

struct MaxOp {
  template <typename T>
  COHORT_HD static T apply(T a, T b) {
    if constexpr (std::is_floating_point_v<T>) {
      if (a != a || b != b) return canonical_nan(a);
      if (a > b) return a;
      if (b > a) return b;
      return and_bits(a, b);
    } else {
      return b > a ? b : a;
    }
  }
};

// --- Codecs: how a dtype is stored and what it computes in. ---

struct F32Codec {
  using Storage = float;
  using Math = float;
  COHORT_HD static Math widen(Storage x) { return x; }
  COHORT_HD static Storage narrow(Math x) { return x; }
};
struct F64Codec {
  using Storage = double;
  using Math = double;
  COHORT_HD static Math widen(Storage x) { return x; }
  COHORT_HD static Storage narrow(Math x) { return x; }
};
struct Bf16Codec {
  using Storage = std::uint16_t;
  using Math = float;
  COHORT_HD static Math widen(Storage x) { return bf16_to_float(x); }
  COHORT_HD static Storage narrow(Math x) { return float_to_bf16(x); }
};
struct F16Codec {
  using Storage = std::uint16_t;
  using Math = float;
  COHORT_HD static Math widen(Storage x) { return fp16_to_float(x); }
  COHORT_HD static Storage narrow(Math x) { return float_to_fp16(x); }
};
struct I32Codec {
  using Storage = std::int32_t;
  using Math = std::int32_t;
  COHORT_HD static Math widen(Storage x) { return x; }
  COHORT_HD static Storage narrow(Math x) { return x; }
};
struct I64Codec {
  using Storage = std::int64_t;
  using Math = std::int64_t;
  COHORT_HD static Math widen(Storage x) { return x; }
  COHORT_HD static Storage narrow(Math x) { return x; }
};

// --- Per-element functions the kernels map over their arrays. ---

// inout = inout op in.
template <class Codec, class Op>
struct ReduceFn {
  using C = Codec;
  using O = Op;
  using Storage = typename Codec::Storage;
  COHORT_HD Storage operator()(Storage a, Storage b) const {
    return Codec::narrow(Op::apply(Codec::widen(a), Codec::widen(b)));
  }
};

// x = x × factor, with factor already rounded to the compute type (fp32 for fp32/fp16/bf16).
template <class Codec>
struct ScaleFn {
  using C = Codec;
  using Storage = typename Codec::Storage;
  typename Codec::Math factor;
  COHORT_HD Storage operator()(Storage x) const { return Codec::narrow(canonicalize(mul_rn(Codec::widen(x), factor))); }
};

// Conversion between two codecs of the same compute type: fp32 <-> bf16, fp32 <-> fp16. A NaN
// keeps its sign and top payload bits (float16.hpp), it is not canonicalized.
template <class From, class To>
struct CastFn {
  using F = From;
  using T = To;
  COHORT_HD typename To::Storage operator()(typename From::Storage x) const { return To::narrow(From::widen(x)); }
};

}  // namespace cohort::kernels
