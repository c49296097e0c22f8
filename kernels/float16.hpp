// fp32 <-> bf16 and fp32 <-> fp16 (IEEE binary16) conversion by bit manipulation: the scalar
// reference that every CPU and CUDA kernel of kernels/ agrees with bit for bit. Host and device
// code (nvcc) share it; it uses integer operations only, so no floating-point environment (rounding
// mode, flush-to-zero) changes its results, and no compiler _Float16/__bf16 type is involved.
//
// Policy (tests/unit/kernels_test.cpp checks every 16-bit pattern and random fp32 values):
//  - Narrowing (fp32 -> bf16/fp16) rounds to nearest, ties to even. A value that rounds beyond
//    the largest finite value becomes ±inf; fp16 subnormals are produced exactly, never flushed.
//    fp32 denormals narrow to bf16 denormals the same way (bf16 has fp32's exponent range).
//  - Widening (bf16/fp16 -> fp32) is exact, fp16 subnormals included.
//  - NaN stays NaN with its sign, becomes quiet (the quiet bit, the top mantissa bit, is set) and
//    keeps the top bits of its payload: fp32 -> bf16 keeps payload bits 22..16, fp32 -> fp16 keeps
//    bits 22..13, widening keeps the whole payload. This is what x86 F16C (vcvtps2ph, vcvtph2ps)
//    does, so the CPU's F16C path needs no fix-up. Arithmetic kernels canonicalize their NaN
//    results instead (see element_ops.hpp); only casts carry payloads.
#pragma once

#include <cstdint>
#if !defined(__CUDA_ARCH__)
#include <cstring>
#endif

#if defined(__CUDACC__)
#define COHORT_HD __host__ __device__ __forceinline__
#else
#define COHORT_HD inline
#endif

namespace cohort::kernels {

COHORT_HD std::uint32_t f32_bits(float f) {
#if defined(__CUDA_ARCH__)
  return __float_as_uint(f);
#else
  std::uint32_t u;
  std::memcpy(&u, &f, sizeof u);
  return u;
#endif
}

COHORT_HD float f32_from_bits(std::uint32_t u) {
#if defined(__CUDA_ARCH__)
  return __uint_as_float(u);
#else
  float f;
  std::memcpy(&f, &u, sizeof f);
  return f;
#endif
}

COHORT_HD std::uint64_t f64_bits(double d) {
#if defined(__CUDA_ARCH__)
  return static_cast<std::uint64_t>(__double_as_longlong(d));
#else
  std::uint64_t u;
  std::memcpy(&u, &d, sizeof u);
  return u;
#endif
}

COHORT_HD double f64_from_bits(std::uint64_t u) {
#if defined(__CUDA_ARCH__)
  return __longlong_as_double(static_cast<long long>(u));
#else
  double d;
  std::memcpy(&d, &u, sizeof d);
  return d;
#endif
}

// --- bf16: fp32's sign and exponent, the top 7 of its 23 mantissa bits. ---

COHORT_HD float bf16_to_float(std::uint16_t h) {
  std::uint32_t bits = static_cast<std::uint32_t>(h) << 16;
  if ((bits & 0x7fffffffu) > 0x7f800000u) bits |= 0x00400000u;  // NaN: quiet it
  return f32_from_bits(bits);
}

COHORT_HD std::uint16_t float_to_bf16(float f) {
  const std::uint32_t bits = f32_bits(f);
  if ((bits & 0x7fffffffu) > 0x7f800000u) return static_cast<std::uint16_t>((bits >> 16) | 0x0040u);
  // Adding 0x7fff rounds halfway cases down, the extra lsb makes them round to even. The carry
  // may run into the exponent, which is the right result, up to +inf past the largest value.
  const std::uint32_t lsb = (bits >> 16) & 1u;
  return static_cast<std::uint16_t>((bits + 0x7fffu + lsb) >> 16);
}

// --- fp16: 1 sign, 5 exponent (bias 15), 10 mantissa bits; subnormals below 2^-14. ---

COHORT_HD float fp16_to_float(std::uint16_t h) {
  const std::uint32_t sign = static_cast<std::uint32_t>(h & 0x8000u) << 16;
  const std::uint32_t exp = (h >> 10) & 0x1fu;
  const std::uint32_t man = h & 0x3ffu;
  if (exp == 0x1f) {  // inf, or NaN made quiet with its payload
    return f32_from_bits(sign | 0x7f800000u | (man << 13) | (man != 0 ? 0x00400000u : 0u));
  }
  if (exp != 0) return f32_from_bits(sign | ((exp + 112u) << 23) | (man << 13));
  if (man == 0) return f32_from_bits(sign);
    // Subnormal: man × 2^-24 with its top set bit at position p becomes 2^(p-24) × 1.fraction.
#if defined(__CUDA_ARCH__)
  const std::uint32_t p = 31u - static_cast<std::uint32_t>(__clz(man));
#else
  const std::uint32_t p = 31u - static_cast<std::uint32_t>(__builtin_clz(man));
#endif
  return f32_from_bits(sign | ((p + 103u) << 23) | ((man << (23u - p)) & 0x7fffffu));
}

COHORT_HD std::uint16_t float_to_fp16(float f) {
  const std::uint32_t bits = f32_bits(f);
  const std::uint32_t sign = (bits >> 16) & 0x8000u;
  const std::uint32_t abs = bits & 0x7fffffffu;
  if (abs > 0x7f800000u) return static_cast<std::uint16_t>(sign | 0x7e00u | ((abs >> 13) & 0x3ffu));
  // 65520 is halfway between 65504 (the largest fp16, odd mantissa) and 2^16: it and everything
  // above round to inf.
  if (abs >= 0x477ff000u) return static_cast<std::uint16_t>(sign | 0x7c00u);
  if (abs >= 0x38800000u) {  // a normal fp16 (≥ 2^-14): rebias the exponent by 127 - 15
    const std::uint32_t m = abs - 0x38000000u;
    return static_cast<std::uint16_t>(sign | ((m + 0xfffu + ((m >> 13) & 1u)) >> 13));
  }
  // Subnormal fp16 or zero: units of 2^-24. 2^-25 (0x33000000) and below round to zero (2^-25
  // itself is a tie, and 0 is even).
  if (abs <= 0x33000000u) return static_cast<std::uint16_t>(sign);
  const std::uint32_t exp = abs >> 23;                      // 102..112 here
  const std::uint32_t man = (abs & 0x7fffffu) | 0x800000u;  // with the implicit bit
  const std::uint32_t shift = 126u - exp;                   // 14..24
  std::uint32_t r = man >> shift;
  const std::uint32_t rem = man & ((1u << shift) - 1u);
  const std::uint32_t half = 1u << (shift - 1u);
  if (rem > half || (rem == half && (r & 1u) != 0)) ++r;  // may carry into 0x400, the smallest normal
  return static_cast<std::uint16_t>(sign | r);
}

}  // namespace cohort::kernels
