// AVX2 + F16C building blocks of the CPU kernels: loads and stores that widen every dtype to its
// compute vector and narrow it back, and the operations of element_ops.hpp on those vectors, each
// written to agree with its scalar counterpart bit for bit (NaN, signed zeros, rounding).
// Everything here is compiled for AVX2 + F16C (COHORT_AVX2) and runs only where
// cpu::best_isa() found them.
#pragma once

// x86 only; elsewhere the CPU kernels have their portable path alone.
#if defined(__x86_64__) || defined(__i386__)
#define COHORT_KERNELS_X86 1

#include <immintrin.h>

#include <cstddef>
#include <cstdint>

#include "kernels/element_ops.hpp"

#define COHORT_AVX2 __attribute__((target("avx2,f16c")))

namespace cohort::kernels::cpu::avx2 {

// Compute vectors. The integer widths get their own types so overloads tell them apart.
struct VF32 {
  __m256 v;  // 8 floats
};
struct VF64 {
  __m256d v;  // 4 doubles
};
struct VI32 {
  __m256i v;  // 8 int32
};
struct VI64 {
  __m256i v;  // 4 int64
};

// Elements one vector holds, by codec.
template <class Codec>
inline constexpr std::size_t kLanes = 32 / sizeof(typename Codec::Math);

// --- Loads (unaligned) that widen, and stores that narrow, kLanes<Codec> elements. ---

COHORT_AVX2 inline VF32 load(F32Codec, const float* p) {
  return {_mm256_loadu_ps(p)};
}
COHORT_AVX2 inline void store(F32Codec, float* p, VF32 x) {
  _mm256_storeu_ps(p, x.v);
}
COHORT_AVX2 inline VF64 load(F64Codec, const double* p) {
  return {_mm256_loadu_pd(p)};
}
COHORT_AVX2 inline void store(F64Codec, double* p, VF64 x) {
  _mm256_storeu_pd(p, x.v);
}
COHORT_AVX2 inline VI32 load(I32Codec, const std::int32_t* p) {
  return {_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p))};
}
COHORT_AVX2 inline void store(I32Codec, std::int32_t* p, VI32 x) {
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(p), x.v);
}
COHORT_AVX2 inline VI64 load(I64Codec, const std::int64_t* p) {
  return {_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p))};
}
COHORT_AVX2 inline void store(I64Codec, std::int64_t* p, VI64 x) {
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(p), x.v);
}

COHORT_AVX2 inline __m256 nan_mask(__m256 x) {
  return _mm256_cmp_ps(x, x, _CMP_UNORD_Q);
}
COHORT_AVX2 inline __m256d nan_mask(__m256d x) {
  return _mm256_cmp_pd(x, x, _CMP_UNORD_Q);
}

// bf16_to_float: shift into the top half, set the quiet bit of NaNs.
COHORT_AVX2 inline __m256 widen_bf16(const std::uint16_t* p) {
  const __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
  return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
}
COHORT_AVX2 inline VF32 load(Bf16Codec, const std::uint16_t* p) {
  const __m256 f = widen_bf16(p);
  const __m256 quiet = _mm256_and_ps(nan_mask(f), _mm256_castsi256_ps(_mm256_set1_epi32(0x00400000)));
  return {_mm256_or_ps(f, quiet)};
}

// float_to_bf16 without its NaN case: round to nearest even by adding 0x7fff + lsb. Eight 32-bit
// results below 2^16.
COHORT_AVX2 inline __m256i round_bf16(__m256 x) {
  const __m256i bits = _mm256_castps_si256(x);
  const __m256i lsb = _mm256_and_si256(_mm256_srli_epi32(bits, 16), _mm256_set1_epi32(1));
  return _mm256_srli_epi32(_mm256_add_epi32(bits, _mm256_add_epi32(lsb, _mm256_set1_epi32(0x7fff))), 16);
}
// float_to_bf16 in full: NaN keeps its top bits and gets the quiet bit.
COHORT_AVX2 inline __m256i narrow_bf16(__m256 x) {
  const __m256i quiet = _mm256_or_si256(_mm256_srli_epi32(_mm256_castps_si256(x), 16), _mm256_set1_epi32(0x0040));
  return _mm256_blendv_epi8(round_bf16(x), quiet, _mm256_castps_si256(nan_mask(x)));
}
// Eight (or sixteen) 32-bit values below 2^16 stored as 16-bit ones. packus works within 128-bit
// lanes: packus(r, r) is [r0..r3 r0..r3 | r4..r7 r4..r7], quadwords 0 and 2 hold r0..r7;
// packus(r, s) is [r0..r3 s0..s3 | r4..r7 s4..s7], quadwords 0, 2, 1, 3 hold r0..r7 s0..s7.
COHORT_AVX2 inline void store_u16x8(std::uint16_t* p, __m256i r) {
  const __m256i packed = _mm256_permute4x64_epi64(_mm256_packus_epi32(r, r), 0x08);
  _mm_storeu_si128(reinterpret_cast<__m128i*>(p), _mm256_castsi256_si128(packed));
}
COHORT_AVX2 inline void store_u16x16(std::uint16_t* p, __m256i r, __m256i s) {
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(p), _mm256_permute4x64_epi64(_mm256_packus_epi32(r, s), 0xd8));
}
COHORT_AVX2 inline void store(Bf16Codec, std::uint16_t* p, VF32 x) {
  store_u16x8(p, narrow_bf16(x.v));
}

// F16C's conversions follow float16.hpp's policy exactly (NaN quieted, payload truncated,
// subnormals exact, round to nearest even from the immediate, not MXCSR); the tests check all
// 65536 patterns and random fp32 values against the scalar reference.
COHORT_AVX2 inline VF32 load(F16Codec, const std::uint16_t* p) {
  return {_mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)))};
}
COHORT_AVX2 inline void store(F16Codec, std::uint16_t* p, VF32 x) {
  _mm_storeu_si128(reinterpret_cast<__m128i*>(p), _mm256_cvtps_ph(x.v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
}

// --- The operations of element_ops.hpp. ---

COHORT_AVX2 inline __m256 canonical_nan_ps() {
  return _mm256_castsi256_ps(_mm256_set1_epi32(static_cast<int>(kCanonicalNaN32)));
}
COHORT_AVX2 inline __m256d canonical_nan_pd() {
  return _mm256_castsi256_pd(_mm256_set1_epi64x(static_cast<long long>(kCanonicalNaN64)));
}
COHORT_AVX2 inline __m256 canonicalize(__m256 r) {
  return _mm256_blendv_ps(r, canonical_nan_ps(), nan_mask(r));
}
COHORT_AVX2 inline __m256d canonicalize(__m256d r) {
  return _mm256_blendv_pd(r, canonical_nan_pd(), nan_mask(r));
}

COHORT_AVX2 inline VF32 apply(SumOp, VF32 a, VF32 b) {
  return {canonicalize(_mm256_add_ps(a.v, b.v))};
}
COHORT_AVX2 inline VF64 apply(SumOp, VF64 a, VF64 b) {
  return {canonicalize(_mm256_add_pd(a.v, b.v))};
}
COHORT_AVX2 inline VI32 apply(SumOp, VI32 a, VI32 b) {
  return {_mm256_add_epi32(a.v, b.v)};
}
COHORT_AVX2 inline VI64 apply(SumOp, VI64 a, VI64 b) {
  return {_mm256_add_epi64(a.v, b.v)};
}

// MinOp: a < b ? a : b < a ? b : (a | b) for ordered pairs (-0 wins a tie with +0), NaN if either
// is NaN. MaxOp the same with > and &.
COHORT_AVX2 inline VF32 apply(MinOp, VF32 a, VF32 b) {
  __m256 r = _mm256_blendv_ps(_mm256_or_ps(a.v, b.v), b.v, _mm256_cmp_ps(b.v, a.v, _CMP_LT_OQ));
  r = _mm256_blendv_ps(r, a.v, _mm256_cmp_ps(a.v, b.v, _CMP_LT_OQ));
  return {_mm256_blendv_ps(r, canonical_nan_ps(), _mm256_cmp_ps(a.v, b.v, _CMP_UNORD_Q))};
}
COHORT_AVX2 inline VF32 apply(MaxOp, VF32 a, VF32 b) {
  __m256 r = _mm256_blendv_ps(_mm256_and_ps(a.v, b.v), b.v, _mm256_cmp_ps(b.v, a.v, _CMP_GT_OQ));
  r = _mm256_blendv_ps(r, a.v, _mm256_cmp_ps(a.v, b.v, _CMP_GT_OQ));
  return {_mm256_blendv_ps(r, canonical_nan_ps(), _mm256_cmp_ps(a.v, b.v, _CMP_UNORD_Q))};
}
COHORT_AVX2 inline VF64 apply(MinOp, VF64 a, VF64 b) {
  __m256d r = _mm256_blendv_pd(_mm256_or_pd(a.v, b.v), b.v, _mm256_cmp_pd(b.v, a.v, _CMP_LT_OQ));
  r = _mm256_blendv_pd(r, a.v, _mm256_cmp_pd(a.v, b.v, _CMP_LT_OQ));
  return {_mm256_blendv_pd(r, canonical_nan_pd(), _mm256_cmp_pd(a.v, b.v, _CMP_UNORD_Q))};
}
COHORT_AVX2 inline VF64 apply(MaxOp, VF64 a, VF64 b) {
  __m256d r = _mm256_blendv_pd(_mm256_and_pd(a.v, b.v), b.v, _mm256_cmp_pd(b.v, a.v, _CMP_GT_OQ));
  r = _mm256_blendv_pd(r, a.v, _mm256_cmp_pd(a.v, b.v, _CMP_GT_OQ));
  return {_mm256_blendv_pd(r, canonical_nan_pd(), _mm256_cmp_pd(a.v, b.v, _CMP_UNORD_Q))};
}
COHORT_AVX2 inline VI32 apply(MinOp, VI32 a, VI32 b) {
  return {_mm256_min_epi32(a.v, b.v)};
}
COHORT_AVX2 inline VI32 apply(MaxOp, VI32 a, VI32 b) {
  return {_mm256_max_epi32(a.v, b.v)};
}
COHORT_AVX2 inline VI64 apply(MinOp, VI64 a, VI64 b) {
  return {_mm256_blendv_epi8(a.v, b.v, _mm256_cmpgt_epi64(a.v, b.v))};
}
COHORT_AVX2 inline VI64 apply(MaxOp, VI64 a, VI64 b) {
  return {_mm256_blendv_epi8(a.v, b.v, _mm256_cmpgt_epi64(b.v, a.v))};
}

// ScaleFn: x × factor, canonical NaN.
COHORT_AVX2 inline VF32 splat(float f) {
  return {_mm256_set1_ps(f)};
}
COHORT_AVX2 inline VF64 splat(double f) {
  return {_mm256_set1_pd(f)};
}
COHORT_AVX2 inline VF32 scale(VF32 x, VF32 f) {
  return {canonicalize(_mm256_mul_ps(x.v, f.v))};
}
COHORT_AVX2 inline VF64 scale(VF64 x, VF64 f) {
  return {canonicalize(_mm256_mul_pd(x.v, f.v))};
}

// --- Shortcuts for values on their way into or out of arithmetic. ---

// Two vectors at once; the 16-bit types then store 32 bytes with one instruction.
template <class Codec, class V>
COHORT_AVX2 inline void store_pair(Codec c, typename Codec::Storage* p, V x0, V x1) {
  store(c, p, x0);
  store(c, p + kLanes<Codec>, x1);
}
COHORT_AVX2 inline void store_pair(Bf16Codec, std::uint16_t* p, VF32 x0, VF32 x1) {
  store_u16x16(p, narrow_bf16(x0.v), narrow_bf16(x1.v));
}

// An operand of sum, min, max or scale: their NaN results are canonicalized whatever the input
// NaN was, so bf16 need not quiet NaNs on the way in.
template <class Codec>
COHORT_AVX2 inline auto load_operand(Codec c, const typename Codec::Storage* p) {
  return load(c, p);
}
COHORT_AVX2 inline VF32 load_operand(Bf16Codec, const std::uint16_t* p) {
  return {widen_bf16(p)};
}

// Stores of results whose only NaN is the canonical one: rounding alone takes 0x7fc00000 to
// bf16's canonical 0x7fc0 (0x7fc00000 + 0x7fff, shifted), so bf16 skips its NaN case.
template <class Codec, class V>
COHORT_AVX2 inline void store_result(Codec c, typename Codec::Storage* p, V x) {
  store(c, p, x);
}
COHORT_AVX2 inline void store_result(Bf16Codec, std::uint16_t* p, VF32 x) {
  store_u16x8(p, round_bf16(x.v));
}

// 2 × kLanes operands, in an order of lanes that store_result_pair undoes: element-wise work in
// between needs no particular order. bf16 interleaves each 32-byte load with zeros, which puts
// elements 0-3 and 8-11 in `lo`, 4-7 and 12-15 in `hi`, already shifted into fp32's top half;
// packus of the results restores the order without a cross-lane permute.
template <class V>
struct Pair {
  V lo;
  V hi;
};
template <class Codec>
COHORT_AVX2 inline auto load_operand_pair(Codec c, const typename Codec::Storage* p) {
  return Pair<decltype(load_operand(c, p))>{load_operand(c, p), load_operand(c, p + kLanes<Codec>)};
}
COHORT_AVX2 inline Pair<VF32> load_operand_pair(Bf16Codec, const std::uint16_t* p) {
  const __m256i h = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
  const __m256i zero = _mm256_setzero_si256();
  return {{_mm256_castsi256_ps(_mm256_unpacklo_epi16(zero, h))}, {_mm256_castsi256_ps(_mm256_unpackhi_epi16(zero, h))}};
}
template <class Codec, class V>
COHORT_AVX2 inline void store_result_pair(Codec c, typename Codec::Storage* p, V lo, V hi) {
  store_result(c, p, lo);
  store_result(c, p + kLanes<Codec>, hi);
}
COHORT_AVX2 inline void store_result_pair(Bf16Codec, std::uint16_t* p, VF32 lo, VF32 hi) {
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(p), _mm256_packus_epi32(round_bf16(lo.v), round_bf16(hi.v)));
}

}  // namespace cohort::kernels::cpu::avx2

#endif  // x86
