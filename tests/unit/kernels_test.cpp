// kernels/: every CPU kernel (each instruction-set path, and the public dispatch) bit-exact against
// the scalar reference of element_ops.hpp for every dtype × op, on lengths that leave every kind of
// tail, with NaN (quiet and signalling, both signs, payloads), ±inf, ±0, denormals, fp16
// subnormals, overflow and rounding ties. The reference itself is checked against oracles that do
// not share its code: nearest-value search for bf16/fp16 rounding, ldexp for fp16 values, GCC's
// _Float16 where the compiler has it, and hand-computed cases.
#include <gtest/gtest.h>

#include <array>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <limits>
#include <ostream>
#include <random>
#include <string>
#include <tuple>
#include <vector>

#include "cohort/collectives.hpp"
#include "kernels/cpu/cpu_kernels.hpp"
#include "kernels/element_ops.hpp"
#include "kernels/float16.hpp"
#include "kernels/kernels.hpp"
#include "kernels/type_switch.hpp"

// Test names and failure messages print dtypes and ops by name.
namespace cohort {
void PrintTo(DType t, std::ostream* os) {
  *os << kernels::type_label(t);
}
void PrintTo(ReduceOp op, std::ostream* os) {
  *os << kernels::op_label(op);
}
}  // namespace cohort

namespace {

namespace ck = cohort::kernels;
using cohort::Code;
using cohort::Device;
using cohort::DType;
using cohort::ReduceOp;
using cohort::Status;
using Bytes = std::vector<unsigned char>;

std::uint32_t bits(float f) {
  return ck::f32_bits(f);
}
float from_bits(std::uint32_t u) {
  return ck::f32_from_bits(u);
}

// The instruction-set paths this CPU can run.
std::vector<ck::cpu::Isa> isas() {
  std::vector<ck::cpu::Isa> v = {ck::cpu::Isa::kPortable};
  if (ck::cpu::best_isa() == ck::cpu::Isa::kAvx2) v.push_back(ck::cpu::Isa::kAvx2);
  return v;
}

std::string hex(const unsigned char* p, std::size_t size) {
  std::uint64_t v = 0;
  std::memcpy(&v, p, size);
  char buf[24];
  std::snprintf(buf, sizeof buf, "0x%0*llx", static_cast<int>(2 * size), static_cast<unsigned long long>(v));
  return buf;
}

// Equal bytes, or the first differing element with its inputs.
::testing::AssertionResult same_elements(const Bytes& expected, const Bytes& got, std::size_t elem,
                                         const Bytes* a = nullptr, const Bytes* b = nullptr) {
  if (expected.size() != got.size()) return ::testing::AssertionFailure() << "sizes differ";
  for (std::size_t i = 0; i < expected.size(); i += elem) {
    if (std::memcmp(&expected[i], &got[i], elem) != 0) {
      auto f = ::testing::AssertionFailure();
      f << "element " << i / elem << ": expected " << hex(&expected[i], elem) << ", got " << hex(&got[i], elem);
      if (a != nullptr && i + elem <= a->size()) f << ", a " << hex(&(*a)[i], elem);
      if (b != nullptr && i + elem <= b->size()) f << ", b " << hex(&(*b)[i], elem);
      return f;
    }
  }
  return ::testing::AssertionSuccess();
}

// --- Oracles that share no code with float16.hpp's rounding. ---

// The value of a non-NaN fp16 pattern, from its definition.
double fp16_value(std::uint16_t h) {
  const int e = (h >> 10) & 0x1f;
  const int m = h & 0x3ff;
  const double sign = (h & 0x8000) != 0 ? -1.0 : 1.0;
  if (e == 0x1f) return sign * std::numeric_limits<double>::infinity();
  if (e == 0) return sign * std::ldexp(m, -24);
  return sign * std::ldexp(1024 + m, e - 25);
}

// Rounds |x| (not NaN) to the nearer of two neighbouring patterns lo < hi of the same sign, ties to
// the even one, by exact distances in double.
std::uint16_t nearest(double ax, std::uint16_t lo, double vlo, std::uint16_t hi, double vhi) {
  const double dlo = ax - vlo;
  const double dhi = vhi - ax;
  if (dlo < dhi) return lo;
  if (dhi < dlo) return hi;
  return (lo & 1) != 0 ? hi : lo;
}

std::uint16_t oracle_bf16(float x) {
  const std::uint32_t b = bits(x);
  const auto sign = static_cast<std::uint16_t>((b >> 16) & 0x8000);
  const auto lo = static_cast<std::uint16_t>((b >> 16) & 0x7fff);  // |x| truncated
  if ((b & 0xffff) == 0) return static_cast<std::uint16_t>(sign | lo);
  const auto hi = static_cast<std::uint16_t>(lo + 1);
  // Past the largest finite value, inf stands where 2^128 would be.
  const double vhi = hi == 0x7f80 ? std::ldexp(1.0, 128) : static_cast<double>(from_bits(std::uint32_t{hi} << 16));
  return static_cast<std::uint16_t>(
      sign | nearest(std::fabs(static_cast<double>(x)), lo, from_bits(std::uint32_t{lo} << 16), hi, vhi));
}

std::uint16_t oracle_fp16(float x) {
  const double ax = std::fabs(static_cast<double>(x));
  const auto sign = static_cast<std::uint16_t>(std::signbit(x) ? 0x8000 : 0);
  if (std::isinf(x)) return static_cast<std::uint16_t>(sign | 0x7c00);
  // The largest finite pattern whose value is ≤ |x| (values rise with patterns 0 .. 0x7bff).
  std::uint16_t lo = 0;
  std::uint16_t top = 0x7bff;
  while (lo < top) {
    const auto mid = static_cast<std::uint16_t>((lo + top + 1) / 2);
    if (fp16_value(mid) <= ax) {
      lo = mid;
    } else {
      top = static_cast<std::uint16_t>(mid - 1);
    }
  }
  if (fp16_value(lo) == ax) return static_cast<std::uint16_t>(sign | lo);
  const auto hi = static_cast<std::uint16_t>(lo + 1);
  const double vhi = hi == 0x7c00 ? 65536.0 : fp16_value(hi);
  return static_cast<std::uint16_t>(sign | nearest(ax, lo, fp16_value(lo), hi, vhi));
}

// --- Test data: special values, random bit patterns and ordinary values that make ties. ---

const std::vector<std::uint64_t>& specials(DType dtype) {
  static const std::vector<std::uint64_t> f32 = {
      0x00000000, 0x80000000, 0x7f800000, 0xff800000,  // ±0, ±inf
      0x7fc00000, 0xffc00000, 0x7f800001, 0xff800001,  // quiet and signalling NaN, both signs
      0x7fa00000, 0x7fc12345, 0xffbfffff,              // NaN payloads
      0x00000001, 0x80000001, 0x007fffff, 0x00400000,  // denormals
      0x00800000, 0x7f7fffff, 0xff7fffff,              // min normal, ±max
      0x3f800000, 0xbf800000, 0x40400000,              // ±1, 3
      0x477fe000, 0x477fefff, 0x477ff000, 0x47800000,  // fp16 max, just below its overflow tie, the tie, 2^16
      0x33000000, 0x33000001, 0x387fe000, 0x38800000,  // fp16 subnormal boundaries
      0x3f808000, 0x3f818000, 0x3f801000, 0x3f803000,  // bf16 and fp16 ties, even and odd below
      0x7f7f8000, 0x7f7f7fff, 0xff7f8000,              // bf16 overflow tie, just below it
  };
  static const std::vector<std::uint64_t> f64 = {
      0,
      0x8000000000000000,
      0x7ff0000000000000,
      0xfff0000000000000,
      0x7ff8000000000000,
      0xfff8000000000000,
      0x7ff0000000000001,
      0xfff0000000000001,
      0x7ff8000000012345,
      0x0000000000000001,
      0x800fffffffffffff,
      0x0010000000000000,
      0x7fefffffffffffff,
      0xffefffffffffffff,
      0x3ff0000000000000,
      0xbff0000000000000,
  };
  static const std::vector<std::uint64_t> f16 = {
      0x0000, 0x8000, 0x7c00, 0xfc00, 0x7e00, 0xfe00, 0x7c01, 0xfc01, 0x7d55, 0xfeff, 0x0001,
      0x8001, 0x03ff, 0x0400, 0x7bff, 0xfbff, 0x3c00, 0xbc00, 0x3c01, 0x1400, 0x0c00, 0x7800,
  };
  static const std::vector<std::uint64_t> b16 = {
      0x0000, 0x8000, 0x7f80, 0xff80, 0x7fc0, 0xffc0, 0x7f81, 0xff81, 0x7fa5, 0xffff, 0x0001,
      0x8001, 0x007f, 0x0080, 0x7f7f, 0xff7f, 0x3f80, 0xbf80, 0x3f81, 0x3b80, 0x3c00, 0x7f00,
  };
  static const std::vector<std::uint64_t> i32 = {0, 1, 0xffffffff, 0x80000000, 0x7fffffff, 0x80000001};
  static const std::vector<std::uint64_t> i64 = {0, 1, ~0ull, 0x8000000000000000, 0x7fffffffffffffff};
  switch (dtype) {
    case DType::kFloat32:
      return f32;
    case DType::kFloat64:
      return f64;
    case DType::kFloat16:
      return f16;
    case DType::kBFloat16:
      return b16;
    case DType::kInt32:
      return i32;
    case DType::kInt64:
      return i64;
  }
  return i32;
}

// An ordinary value of the dtype with few mantissa bits, so that sums of two round on ties often.
std::uint64_t ordinary(DType dtype, std::mt19937_64& rng) {
  const std::uint64_t r = rng();
  const std::uint64_t sign = r & 1;
  switch (dtype) {
    case DType::kFloat32:  // exponent 2^-8 .. 2^8, 9 mantissa bits
      return sign << 31 | (119 + (r >> 1) % 17) << 23 | ((r >> 8) & 0x1ff) << 14;
    case DType::kFloat64:
      return sign << 63 | (1015 + (r >> 1) % 17) << 52 | ((r >> 8) & 0x1ff) << 43;
    case DType::kFloat16:  // 2^-14 .. 2^14
      return sign << 15 | (1 + (r >> 1) % 29) << 10 | ((r >> 8) & 0x3ff);
    case DType::kBFloat16:
      return sign << 15 | (119 + (r >> 1) % 17) << 7 | ((r >> 8) & 0x7f);
    case DType::kInt32:
    case DType::kInt64:
      return static_cast<std::uint64_t>(static_cast<std::int64_t>(r % 2001) - 1000);
  }
  return 0;
}

void put(Bytes& v, std::size_t i, std::size_t elem, std::uint64_t x) {
  std::memcpy(&v[i * elem], &x, elem);
}
std::uint64_t get(const Bytes& v, std::size_t i, std::size_t elem) {
  std::uint64_t x = 0;
  std::memcpy(&x, &v[i * elem], elem);
  return x;
}

// n elements: a quarter special values, a quarter random bit patterns, half ordinary values.
Bytes make_values(DType dtype, std::size_t n, std::mt19937_64& rng) {
  const std::size_t elem = ck::element_size(dtype);
  const auto& sp = specials(dtype);
  Bytes v(n * elem);
  for (std::size_t i = 0; i < n; ++i) {
    const std::uint64_t pick = rng() % 4;
    put(v, i, elem, pick == 0 ? sp[rng() % sp.size()] : pick == 1 ? rng() : ordinary(dtype, rng));
  }
  return v;
}

// A second operand: mostly independent of `a`, sometimes equal to it or its negation, so that
// min/max meet ties and ±0 pairs and sums meet x + (-x).
Bytes make_partner(DType dtype, const Bytes& a, std::mt19937_64& rng) {
  const std::size_t elem = ck::element_size(dtype);
  const std::size_t n = a.size() / elem;
  Bytes b = make_values(dtype, n, rng);
  const bool is_int = dtype == DType::kInt32 || dtype == DType::kInt64;
  const std::uint64_t sign_bit = std::uint64_t{1} << (8 * elem - 1);
  for (std::size_t i = 0; i < n; ++i) {
    const std::uint64_t pick = rng() % 8;
    if (pick == 0) put(b, i, elem, get(a, i, elem));
    if (pick == 1 && !is_int) put(b, i, elem, get(a, i, elem) ^ sign_bit);
  }
  return b;
}

// --- The scalar reference, straight from element_ops.hpp. ---

Bytes reference_reduce(DType dtype, ReduceOp op, Bytes a, const Bytes& b) {
  const Status s = ck::visit_reduce(dtype, op, [&](auto fn) -> Status {
    using S = typename decltype(fn)::Storage;
    const std::size_t n = a.size() / sizeof(S);
    for (std::size_t i = 0; i < n; ++i) {
      S x;
      S y;
      std::memcpy(&x, &a[i * sizeof(S)], sizeof(S));
      std::memcpy(&y, &b[i * sizeof(S)], sizeof(S));
      x = fn(x, y);
      std::memcpy(&a[i * sizeof(S)], &x, sizeof(S));
    }
    return {};
  });
  EXPECT_TRUE(s.ok()) << s.to_string();
  return a;
}

Bytes reference_scale(DType dtype, double factor, Bytes a) {
  const Status s = ck::visit_scale(dtype, factor, [&](auto fn) -> Status {
    using S = typename decltype(fn)::Storage;
    for (std::size_t i = 0; i < a.size() / sizeof(S); ++i) {
      S x;
      std::memcpy(&x, &a[i * sizeof(S)], sizeof(S));
      x = fn(x);
      std::memcpy(&a[i * sizeof(S)], &x, sizeof(S));
    }
    return {};
  });
  EXPECT_TRUE(s.ok()) << s.to_string();
  return a;
}

Bytes reference_cast(DType dst_type, DType src_type, const Bytes& src) {
  const std::size_t n = src.size() / ck::element_size(src_type);
  Bytes dst(n * ck::element_size(dst_type));
  const Status s = ck::visit_cast(dst_type, src_type, [&](auto fn) -> Status {
    using From = typename decltype(fn)::F::Storage;
    using To = typename decltype(fn)::T::Storage;
    for (std::size_t i = 0; i < n; ++i) {
      From x;
      std::memcpy(&x, &src[i * sizeof(From)], sizeof(From));
      const To y = fn(x);
      std::memcpy(&dst[i * sizeof(To)], &y, sizeof(To));
    }
    return {};
  });
  EXPECT_TRUE(s.ok()) << s.to_string();
  return dst;
}

// Tails of every length against 8-lane (2 × 8 per iteration) and 4-lane vectors.
constexpr std::array<std::size_t, 16> kLengths = {0, 1, 3, 4, 5, 7, 8, 9, 15, 16, 17, 31, 33, 1000, 4099, 65536};

constexpr std::array<DType, 6> kAllTypes = {DType::kFloat32,  DType::kFloat64, DType::kFloat16,
                                            DType::kBFloat16, DType::kInt32,   DType::kInt64};

// ---------------------------------------------------------------------------------------------
// The conversions.

TEST(Float16Test, EveryBf16PatternWidensExactlyAndRoundTrips) {
  for (std::uint32_t h = 0; h <= 0xffff; ++h) {
    const auto h16 = static_cast<std::uint16_t>(h);
    const std::uint32_t f = bits(ck::bf16_to_float(h16));
    const bool nan = (h & 0x7fff) > 0x7f80;
    ASSERT_EQ(f, nan ? (h << 16 | 0x00400000) : h << 16) << std::hex << h;
    ASSERT_EQ(ck::float_to_bf16(from_bits(f)), nan ? (h | 0x40) : h) << std::hex << h;
  }
}

TEST(Float16Test, EveryFp16PatternWidensExactlyAndRoundTrips) {
  for (std::uint32_t h = 0; h <= 0xffff; ++h) {
    const auto h16 = static_cast<std::uint16_t>(h);
    const float f = ck::fp16_to_float(h16);
    const bool nan = (h & 0x7fff) > 0x7c00;
    if (nan) {
      ASSERT_EQ(bits(f), (h & 0x8000) << 16 | 0x7fc00000 | (h & 0x3ff) << 13) << std::hex << h;
      ASSERT_EQ(ck::float_to_fp16(f), h | 0x200) << std::hex << h;
    } else {
      const double v = fp16_value(h16);
      ASSERT_EQ(bits(f), bits(static_cast<float>(v))) << std::hex << h;  // exact: fp16 ⊂ fp32
      ASSERT_EQ(std::signbit(f), (h & 0x8000) != 0) << std::hex << h;
      ASSERT_EQ(ck::float_to_fp16(f), h) << std::hex << h;
#ifdef __FLT16_MAX__
      _Float16 g;
      std::memcpy(&g, &h16, 2);
      ASSERT_EQ(bits(f), bits(static_cast<float>(g))) << std::hex << h;
#endif
    }
  }
}

// All 65536 patterns through every vector path: F16C and the shift-based bf16 code.
TEST(Float16Test, EveryPatternWidensTheSameOnEveryPath) {
  Bytes src(65536 * 2);
  for (std::uint32_t h = 0; h <= 0xffff; ++h)
    put(src, h, 2, h);
  for (DType t : {DType::kFloat16, DType::kBFloat16}) {
    const Bytes expected = reference_cast(DType::kFloat32, t, src);
    for (ck::cpu::Isa isa : isas()) {
      Bytes got(expected.size());
      ASSERT_TRUE(ck::cpu::cast(got.data(), DType::kFloat32, src.data(), t, 65536, isa).ok());
      EXPECT_TRUE(same_elements(expected, got, 4, &src)) << ck::type_label(t) << " " << ck::cpu::isa_name(isa);
      Bytes back(src.size());
      ASSERT_TRUE(ck::cpu::cast(back.data(), t, got.data(), DType::kFloat32, 65536, isa).ok());
      EXPECT_TRUE(same_elements(reference_cast(t, DType::kFloat32, expected), back, 2))
          << ck::type_label(t) << " " << ck::cpu::isa_name(isa);
    }
  }
}

// fp32 values whose low bits sit at, just below and just above the rounding point of bf16 and
// fp16, plus random patterns and the special values.
std::vector<std::uint32_t> narrowing_inputs() {
  std::mt19937_64 rng(42);
  std::vector<std::uint32_t> v;
  for (std::uint64_t s : specials(DType::kFloat32))
    v.push_back(static_cast<std::uint32_t>(s));
  for (int i = 0; i < 1'000'000; ++i) {
    const auto r = static_cast<std::uint32_t>(rng());
    v.push_back(r);
    const std::uint32_t hi16 = r & 0xffff0000u;
    for (std::uint32_t low : {0x8000u, 0x7fffu, 0x8001u, 0x0000u})
      v.push_back(hi16 | low);
    const std::uint32_t hi19 = r & 0xffffe000u;
    for (std::uint32_t low : {0x1000u, 0x0fffu, 0x1001u})
      v.push_back(hi19 | low);
  }
  // fp16's subnormal range and the fp16/bf16 overflow boundaries, densely.
  for (std::uint32_t b = 0x32ff0000u; b < 0x38900000u; b += 0x7ffu)
    v.push_back(b);
  for (std::uint32_t b = 0x477fd000u; b < 0x47801000u; ++b)
    v.push_back(b | (b & 1u) << 31);
  for (std::uint32_t b = 0x7f7f0000u; b <= 0x7f800000u; b += 3)
    v.push_back(b);
  return v;
}

TEST(Float16Test, NarrowingMatchesNearestValueOracle) {
  const std::vector<std::uint32_t> in = narrowing_inputs();
  for (std::uint32_t b : in) {
    const float x = from_bits(b);
    const bool nan = (b & 0x7fffffffu) > 0x7f800000u;
    const std::uint16_t want_b = nan ? static_cast<std::uint16_t>(b >> 16 | 0x40) : oracle_bf16(x);
    const std::uint16_t want_h =
        nan ? static_cast<std::uint16_t>((b >> 16 & 0x8000) | 0x7e00 | (b >> 13 & 0x3ff)) : oracle_fp16(x);
    ASSERT_EQ(ck::float_to_bf16(x), want_b) << std::hex << b;
    ASSERT_EQ(ck::float_to_fp16(x), want_h) << std::hex << b;
#ifdef __FLT16_MAX__
    if (!nan) {
      const auto g = static_cast<_Float16>(x);
      std::uint16_t gb;
      std::memcpy(&gb, &g, 2);
      ASSERT_EQ(want_h, gb) << std::hex << b;
    }
#endif
  }
}

TEST(Float16Test, NarrowingIsTheSameOnEveryPath) {
  const std::vector<std::uint32_t> in = narrowing_inputs();
  Bytes src(in.size() * 4);
  std::memcpy(src.data(), in.data(), src.size());
  for (DType t : {DType::kFloat16, DType::kBFloat16}) {
    const Bytes expected = reference_cast(t, DType::kFloat32, src);
    for (ck::cpu::Isa isa : isas()) {
      Bytes got(expected.size());
      ASSERT_TRUE(ck::cpu::cast(got.data(), t, src.data(), DType::kFloat32, in.size(), isa).ok());
      EXPECT_TRUE(same_elements(expected, got, 2)) << ck::type_label(t) << " " << ck::cpu::isa_name(isa);
    }
  }
}

TEST(Float16Test, HandComputedCases) {
  struct Case {
    std::uint32_t f32;
    std::uint16_t bf16;
    std::uint16_t fp16;
  };
  const Case cases[] = {
      {0x3f800000, 0x3f80, 0x3c00},                                // 1
      {0x3f808000, 0x3f80, 0x3c04},                                // 1 + 2^-8: bf16 tie, even below: stays
      {0x3f818000, 0x3f82, 0x3c0c},                                // 1 + 3·2^-8: bf16 tie, odd below: up
      {0x3f801000, 0x3f80, 0x3c00},                                // 1 + 2^-11: fp16 tie, even below: stays
      {0x3f803000, 0x3f80, 0x3c02},                                // 1 + 3·2^-11: fp16 tie, odd below: up
      {0x477fe000, 0x4780, 0x7bff},                                // 65504, fp16's largest
      {0x477fefff, 0x4780, 0x7bff},                                // just below the overflow tie
      {0x477ff000, 0x4780, 0x7c00},                                // 65520: the tie, rounds to inf
      {0xc77ff000, 0xc780, 0xfc00}, {0x7f7f8000, 0x7f80, 0x7c00},  // bf16 overflow tie: inf
      {0x7f7f7fff, 0x7f7f, 0x7c00}, {0x33000000, 0x3300, 0x0000},  // 2^-25: fp16 tie with 0
      {0x33000001, 0x3300, 0x0001},                                // just above: the smallest subnormal
      {0x33c00000, 0x33c0, 0x0002},                                // 3·2^-25: tie, odd below: 2·2^-24
      {0x33800000, 0x3380, 0x0001},                                // 2^-24
      {0x387fe000, 0x3880, 0x0400},                                // 2^-14 - 2^-25: tie between 0x3ff and 0x400
      {0x00000001, 0x0000, 0x0000},                                // fp32's smallest denormal rounds to 0
      {0x00018000, 0x0002, 0x0000},                                // bf16 denormal tie, odd below: up
      {0x80000000, 0x8000, 0x8000},                                // -0
      {0x7f800000, 0x7f80, 0x7c00}, {0xff800000, 0xff80, 0xfc00},
      {0x7f800001, 0x7fc0, 0x7e00},                                // signalling NaN: quiet, payload's top bits (none)
      {0xff800001, 0xffc0, 0xfe00}, {0x7fa52000, 0x7fe5, 0x7f29},  // payload kept in its top bits
      {0x7fc00000, 0x7fc0, 0x7e00},
  };
  for (const Case& c : cases) {
    EXPECT_EQ(ck::float_to_bf16(from_bits(c.f32)), c.bf16) << std::hex << c.f32;
    EXPECT_EQ(ck::float_to_fp16(from_bits(c.f32)), c.fp16) << std::hex << c.f32;
  }
}

// ---------------------------------------------------------------------------------------------
// The element operations' semantics, by hand.

TEST(ElementOpsTest, NaNIsCanonicalAndMinMaxOrderSignedZeros) {
  const float nan_payload = from_bits(0xffc12345);
  const float inf = std::numeric_limits<float>::infinity();
  EXPECT_EQ(bits(ck::SumOp::apply(nan_payload, 1.0f)), ck::kCanonicalNaN32);
  EXPECT_EQ(bits(ck::SumOp::apply(1.0f, from_bits(0x7f800001))), ck::kCanonicalNaN32);
  EXPECT_EQ(bits(ck::SumOp::apply(inf, -inf)), ck::kCanonicalNaN32);
  EXPECT_EQ(bits(ck::MinOp::apply(2.0f, nan_payload)), ck::kCanonicalNaN32);
  EXPECT_EQ(bits(ck::MaxOp::apply(nan_payload, 2.0f)), ck::kCanonicalNaN32);
  EXPECT_EQ(bits(ck::MinOp::apply(0.0f, -0.0f)), 0x80000000u);
  EXPECT_EQ(bits(ck::MinOp::apply(-0.0f, 0.0f)), 0x80000000u);
  EXPECT_EQ(bits(ck::MaxOp::apply(-0.0f, 0.0f)), 0u);
  EXPECT_EQ(bits(ck::MaxOp::apply(0.0f, -0.0f)), 0u);
  EXPECT_EQ(ck::MinOp::apply(-inf, 3.0f), -inf);
  EXPECT_EQ(ck::MaxOp::apply(-inf, 3.0f), 3.0f);
  EXPECT_EQ(ck::f64_bits(ck::SumOp::apply(std::numeric_limits<double>::quiet_NaN(), 1.0)), ck::kCanonicalNaN64);
  EXPECT_EQ(ck::f64_bits(ck::MinOp::apply(0.0, -0.0)), 0x8000000000000000ull);
  EXPECT_EQ(ck::SumOp::apply(std::numeric_limits<std::int32_t>::max(), 1), std::numeric_limits<std::int32_t>::min());
  EXPECT_EQ(ck::SumOp::apply(std::numeric_limits<std::int64_t>::min(), std::int64_t{-1}),
            std::numeric_limits<std::int64_t>::max());
  // bf16 sum: one fp32 add, one rounding: 1 + 2^-8 is a tie that stays at 1, (1 + 2^-7) + 2^-8 a
  // tie that goes up to 1 + 2^-6; NaN comes back as bf16's canonical NaN.
  const ck::ReduceFn<ck::Bf16Codec, ck::SumOp> bf16_sum;
  EXPECT_EQ(bf16_sum(0x3f80, 0x3b80), 0x3f80);
  EXPECT_EQ(bf16_sum(0x3f81, 0x3b80), 0x3f82);
  EXPECT_EQ(bf16_sum(0xffa5, 0x3f80), 0x7fc0);
  const ck::ReduceFn<ck::F16Codec, ck::SumOp> fp16_sum;
  EXPECT_EQ(fp16_sum(0x7bff, 0x5000), 0x7c00);  // 65504 + 32 = 65536: overflow to inf
  EXPECT_EQ(fp16_sum(0x0001, 0x8001), 0x0000);  // subnormals cancel to +0
  EXPECT_EQ(fp16_sum(0xfe01, 0x3c00), 0x7e00);
}

// For the 16-bit types, what the reference returns for non-NaN results is the oracle's rounding
// of the exact fp32 operation, so the reference does not only agree with itself.
TEST(ElementOpsTest, HalfPrecisionReduceIsOneRoundingOfTheFp32Result) {
  std::mt19937_64 rng(7);
  for (DType t : {DType::kFloat16, DType::kBFloat16}) {
    const Bytes a = make_values(t, 100000, rng);
    const Bytes b = make_partner(t, a, rng);
    const Bytes got = reference_reduce(t, ReduceOp::kSum, a, b);
    for (std::size_t i = 0; i < a.size() / 2; ++i) {
      const auto x = static_cast<std::uint16_t>(get(a, i, 2));
      const auto y = static_cast<std::uint16_t>(get(b, i, 2));
      const float fx = t == DType::kFloat16 ? ck::fp16_to_float(x) : ck::bf16_to_float(x);
      const float fy = t == DType::kFloat16 ? ck::fp16_to_float(y) : ck::bf16_to_float(y);
      const float s = fx + fy;
      if (std::isnan(s)) continue;
      const std::uint16_t want = t == DType::kFloat16 ? oracle_fp16(s) : oracle_bf16(s);
      ASSERT_EQ(get(got, i, 2), want) << ck::type_label(t) << " " << std::hex << x << " + " << y;
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Every kernel, every path, against the reference.

class ReduceTest : public ::testing::TestWithParam<std::tuple<DType, ReduceOp>> {};

TEST_P(ReduceTest, EveryPathMatchesTheReference) {
  const auto [dtype, op] = GetParam();
  const std::size_t elem = ck::element_size(dtype);
  std::mt19937_64 rng(static_cast<std::uint64_t>(dtype) * 16 + static_cast<std::uint64_t>(op));
  for (std::size_t n : kLengths) {
    // One element of slack in front, so that the arrays also start off any vector alignment.
    for (std::size_t offset : {0, 1}) {
      const Bytes a = make_values(dtype, n + offset, rng);
      const Bytes b = make_partner(dtype, a, rng);
      const Bytes expected = reference_reduce(dtype, op, a, b);
      const auto check = [&](const Bytes& got, const std::string& path) {
        EXPECT_TRUE(same_elements(expected, got, elem, &a, &b)) << path << ", n " << n << ", offset " << offset;
      };
      for (ck::cpu::Isa isa : isas()) {
        Bytes got = a;
        Bytes src = b;
        ASSERT_TRUE(ck::cpu::reduce(got.data() + offset * elem, src.data() + offset * elem, n, dtype, op, isa).ok());
        if (offset != 0) std::memcpy(got.data(), expected.data(), offset * elem);  // the slack is not part of the call
        check(got, std::string(ck::cpu::isa_name(isa)));
      }
      Bytes got = a;
      const Status s = ck::reduce(got.data() + offset * elem, b.data() + offset * elem, n, dtype, op, Device::kHost);
      ASSERT_TRUE(s.ok()) << s.to_string();
      if (offset != 0) std::memcpy(got.data(), expected.data(), offset * elem);
      check(got, "dispatch");
      // inout and in the same array.
      Bytes self = a;
      ASSERT_TRUE(ck::reduce(self.data(), self.data(), n + offset, dtype, op, Device::kHost).ok());
      EXPECT_TRUE(same_elements(reference_reduce(dtype, op, a, a), self, elem)) << "self, n " << n;
    }
  }
}

std::string type_op_name(const ::testing::TestParamInfo<std::tuple<DType, ReduceOp>>& info) {
  return std::string(ck::type_label(std::get<0>(info.param))) + "_" +
         std::string(ck::op_label(std::get<1>(info.param)));
}

INSTANTIATE_TEST_SUITE_P(AllTypesAndOps, ReduceTest,
                         ::testing::Combine(::testing::ValuesIn(kAllTypes),
                                            ::testing::Values(ReduceOp::kSum, ReduceOp::kMin, ReduceOp::kMax)),
                         type_op_name);

class ScaleTest : public ::testing::TestWithParam<DType> {};

TEST_P(ScaleTest, EveryPathMatchesTheReference) {
  const DType dtype = GetParam();
  const std::size_t elem = ck::element_size(dtype);
  std::mt19937_64 rng(99 + static_cast<std::uint64_t>(dtype));
  const double factors[] = {0.5,
                            3.0,
                            -1.0,
                            0.0,
                            1.0 / 3.0,
                            1e-30,
                            1e30,
                            65504.0,
                            1e-300,
                            1e300,
                            0.125,
                            -0.0,
                            1e-7,
                            std::numeric_limits<double>::infinity(),
                            std::numeric_limits<double>::quiet_NaN()};
  for (std::size_t n : kLengths) {
    for (double factor : factors) {
      const Bytes a = make_values(dtype, n, rng);
      const Bytes expected = reference_scale(dtype, factor, a);
      for (ck::cpu::Isa isa : isas()) {
        Bytes got = a;
        ASSERT_TRUE(ck::cpu::scale(got.data(), n, dtype, factor, isa).ok());
        EXPECT_TRUE(same_elements(expected, got, elem, &a))
            << ck::cpu::isa_name(isa) << ", n " << n << ", factor " << factor;
      }
      Bytes got = a;
      ASSERT_TRUE(ck::scale(got.data(), n, dtype, factor, Device::kHost).ok());
      EXPECT_TRUE(same_elements(expected, got, elem, &a)) << "dispatch, n " << n << ", factor " << factor;
    }
  }
}

std::string type_name(const ::testing::TestParamInfo<DType>& info) {
  return std::string(ck::type_label(info.param));
}

INSTANTIATE_TEST_SUITE_P(FloatTypes, ScaleTest,
                         ::testing::Values(DType::kFloat32, DType::kFloat64, DType::kFloat16, DType::kBFloat16),
                         type_name);

class CastTest : public ::testing::TestWithParam<std::tuple<DType, DType>> {};  // dst, src

TEST_P(CastTest, EveryPathMatchesTheReference) {
  const auto [dst_type, src_type] = GetParam();
  std::mt19937_64 rng(5);
  for (std::size_t n : kLengths) {
    for (std::size_t offset : {0, 1}) {
      const Bytes src = make_values(src_type, n + offset, rng);
      const unsigned char* from = src.data() + offset * ck::element_size(src_type);
      Bytes tail(src.begin() + static_cast<std::ptrdiff_t>(offset * ck::element_size(src_type)), src.end());
      const Bytes expected = reference_cast(dst_type, src_type, tail);
      for (ck::cpu::Isa isa : isas()) {
        const std::size_t skip = offset * ck::element_size(dst_type);
        Bytes got(expected.size() + skip);
        ASSERT_TRUE(ck::cpu::cast(got.data() + skip, dst_type, from, src_type, n, isa).ok());
        got.erase(got.begin(), got.begin() + static_cast<std::ptrdiff_t>(skip));
        EXPECT_TRUE(same_elements(expected, got, ck::element_size(dst_type), &tail))
            << ck::cpu::isa_name(isa) << ", n " << n << ", offset " << offset;
      }
      Bytes got(expected.size());
      ASSERT_TRUE(ck::cast(got.data(), dst_type, from, src_type, n, Device::kHost).ok());
      EXPECT_TRUE(same_elements(expected, got, ck::element_size(dst_type), &tail)) << "dispatch, n " << n;
    }
  }
}

std::string cast_name(const ::testing::TestParamInfo<std::tuple<DType, DType>>& info) {
  return std::string(ck::type_label(std::get<1>(info.param))) + "_to_" +
         std::string(ck::type_label(std::get<0>(info.param)));
}

INSTANTIATE_TEST_SUITE_P(Conversions, CastTest,
                         ::testing::Values(std::tuple{DType::kBFloat16, DType::kFloat32},
                                           std::tuple{DType::kFloat16, DType::kFloat32},
                                           std::tuple{DType::kFloat32, DType::kBFloat16},
                                           std::tuple{DType::kFloat32, DType::kFloat16}),
                         cast_name);

TEST(CastTest, EqualTypesCopy) {
  std::mt19937_64 rng(3);
  for (DType t : kAllTypes) {
    const Bytes src = make_values(t, 1001, rng);
    Bytes dst(src.size());
    ASSERT_TRUE(ck::cast(dst.data(), t, src.data(), t, 1001, Device::kHost).ok());
    EXPECT_EQ(dst, src);
    ASSERT_TRUE(ck::cast(dst.data(), t, dst.data(), t, 1001, Device::kHost).ok());  // in place: nothing to do
    EXPECT_EQ(dst, src);
  }
}

TEST(AverageTest, SumThenFinishAverage) {
  std::vector<float> acc = {3.0f, 6.0f, 9.0f, -0.0f};
  const std::vector<float> more = {0.0f, 0.0f, 0.0f, -0.0f};
  ASSERT_TRUE(ck::reduce(acc.data(), more.data(), acc.size(), DType::kFloat32, ReduceOp::kSum, Device::kHost).ok());
  ASSERT_TRUE(ck::finish_average(acc.data(), acc.size(), DType::kFloat32, 3, Device::kHost).ok());
  EXPECT_EQ(acc, (std::vector<float>{1.0f, 2.0f, 3.0f, -0.0f}));
  EXPECT_TRUE(std::signbit(acc[3]));
  const Status s = ck::finish_average(acc.data(), acc.size(), DType::kFloat32, 0, Device::kHost);
  EXPECT_EQ(s.code(), Code::kInvalidArgument) << s.to_string();
}

// ---------------------------------------------------------------------------------------------
// Pack and unpack.

TEST(PackTest, RoundTripsTensorsOfAnySize) {
  std::mt19937_64 rng(11);
  const std::vector<std::size_t> sizes = {0, 1, 3, 16, 17, 4096, 0, 5, 100000, 2};
  std::vector<Bytes> tensors;
  std::vector<ck::ConstBufferView> srcs;
  for (std::size_t size : sizes) {
    Bytes t(size);
    for (auto& c : t)
      c = static_cast<unsigned char>(rng());
    tensors.push_back(std::move(t));
  }
  for (const Bytes& t : tensors)
    srcs.push_back({t.data(), t.size()});
  const std::size_t total = ck::packed_bytes(srcs);
  ASSERT_EQ(total, 104140u);
  Bytes fused(total + 7, 0xee);
  ASSERT_TRUE(ck::pack({fused.data(), fused.size()}, srcs, Device::kHost).ok());
  std::size_t at = 0;
  for (const Bytes& t : tensors) {
    ASSERT_TRUE(std::equal(t.begin(), t.end(), fused.begin() + static_cast<std::ptrdiff_t>(at)));
    at += t.size();
  }
  EXPECT_EQ(fused[total], 0xee);  // nothing written past the packed bytes

  std::vector<Bytes> back;
  std::vector<ck::MutableBufferView> dsts;
  for (std::size_t size : sizes)
    back.emplace_back(size);
  for (Bytes& t : back)
    dsts.push_back({t.data(), t.size()});
  ASSERT_TRUE(ck::unpack(dsts, {fused.data(), fused.size()}, Device::kHost).ok());
  EXPECT_EQ(back, tensors);
}

TEST(PackTest, RejectsShortBuffersAndNullTensors) {
  Bytes a(10);
  Bytes b(20);
  Bytes fused(29);
  const ck::ConstBufferView srcs[] = {{a.data(), a.size()}, {b.data(), b.size()}};
  Status s = ck::pack({fused.data(), fused.size()}, srcs, Device::kHost);
  EXPECT_EQ(s.code(), Code::kInvalidArgument);
  EXPECT_NE(s.message().find("holds 29 bytes"), std::string::npos) << s.message();
  const ck::ConstBufferView null_src[] = {{nullptr, 4}};
  s = ck::pack({fused.data(), fused.size()}, null_src, Device::kHost);
  EXPECT_EQ(s.code(), Code::kInvalidArgument);
  EXPECT_NE(s.message().find("srcs[0]"), std::string::npos) << s.message();
  const ck::MutableBufferView dsts[] = {{a.data(), a.size()}, {b.data(), b.size()}};
  s = ck::unpack(dsts, {fused.data(), fused.size()}, Device::kHost);
  EXPECT_EQ(s.code(), Code::kInvalidArgument);
  const ck::ConstBufferView overlapping[] = {{fused.data() + 3, 4}};
  s = ck::pack({fused.data(), fused.size()}, overlapping, Device::kHost);
  EXPECT_EQ(s.code(), Code::kInvalidArgument);
  EXPECT_TRUE(ck::pack({nullptr, 0}, {}, Device::kHost).ok());
}

// ---------------------------------------------------------------------------------------------
// The dispatch's checks.

TEST(DispatchTest, RejectsWhatNoKernelDoes) {
  std::vector<float> a(8);
  std::vector<float> b(8);
  std::vector<std::int32_t> ints(8);
  Status s = ck::reduce(a.data(), b.data(), 8, DType::kFloat32, ReduceOp::kAvg, Device::kHost);
  EXPECT_EQ(s.code(), Code::kInvalidArgument);
  EXPECT_NE(s.message().find("finish_average"), std::string::npos) << s.message();
  s = ck::scale(ints.data(), 8, DType::kInt32, 2.0, Device::kHost);
  EXPECT_EQ(s.code(), Code::kInvalidArgument);
  EXPECT_NE(s.message().find("int32"), std::string::npos) << s.message();
  s = ck::cast(a.data(), DType::kFloat16, b.data(), DType::kBFloat16, 8, Device::kHost);
  EXPECT_EQ(s.code(), Code::kInvalidArgument);
  EXPECT_NE(s.message().find("bf16 -> fp16"), std::string::npos) << s.message();
  s = ck::reduce(nullptr, b.data(), 8, DType::kFloat32, ReduceOp::kSum, Device::kHost);
  EXPECT_EQ(s.code(), Code::kInvalidArgument);
  EXPECT_NE(s.message().find("inout is null"), std::string::npos) << s.message();
  s = ck::reduce(a.data() + 1, a.data(), 7, DType::kFloat32, ReduceOp::kSum, Device::kHost);
  EXPECT_EQ(s.code(), Code::kInvalidArgument);
  EXPECT_NE(s.message().find("overlap"), std::string::npos) << s.message();
  s = ck::cast(a.data(), DType::kBFloat16, a.data(), DType::kFloat32, 8, Device::kHost);
  EXPECT_EQ(s.code(), Code::kInvalidArgument);
  EXPECT_TRUE(ck::reduce(nullptr, nullptr, 0, DType::kFloat32, ReduceOp::kSum, Device::kHost).ok());
  s = ck::reduce(a.data(), b.data(), 8, static_cast<DType>(42), ReduceOp::kSum, Device::kHost);
  EXPECT_EQ(s.code(), Code::kInvalidArgument);
}

#if !COHORT_KERNELS_CUDA
TEST(DispatchTest, CudaWithoutCudaBuildIsUnimplemented) {
  std::vector<float> a(8);
  const Status s = ck::reduce(a.data(), a.data(), 8, DType::kFloat32, ReduceOp::kSum, Device::kCuda);
  EXPECT_EQ(s.code(), Code::kUnimplemented);
  EXPECT_NE(s.message().find("rebuild with CUDA"), std::string::npos) << s.message();
}
#endif

}  // namespace
