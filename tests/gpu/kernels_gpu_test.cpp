// kernels/ on a CUDA device: every CUDA kernel bit-exact against the CPU kernels (which
// tests/unit/kernels_test.cpp holds to the scalar reference), on its own stream, for 16-byte
// aligned arrays (the uint4 path plus tail) and misaligned ones (the element path). Skips, saying
// why, where there is no usable CUDA device.
#include <cuda_runtime.h>
#include <gtest/gtest.h>

#include <array>
#include <cstdint>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <tuple>
#include <vector>

#include "cohort/collectives.hpp"
#include "kernels/kernels.hpp"

namespace {

namespace ck = cohort::kernels;
using cohort::Code;
using cohort::Device;
using cohort::DType;
using cohort::ReduceOp;
using cohort::Status;
using Bytes = std::vector<unsigned char>;

#define ASSERT_CUDA(expr)                                                                     \
  do {                                                                                        \
    const cudaError_t cuda_err_ = (expr);                                                     \
    ASSERT_EQ(cuda_err_, cudaSuccess) << #expr << ": " << cudaGetErrorName(cuda_err_) << ": " \
                                      << cudaGetErrorString(cuda_err_);                       \
  } while (0)

// Device memory for one test; freed at the end of the scope.
class DeviceBuffer {
 public:
  explicit DeviceBuffer(std::size_t bytes) {
    if (cudaMalloc(&p_, bytes == 0 ? 1 : bytes) != cudaSuccess) p_ = nullptr;
  }
  ~DeviceBuffer() {
    if (p_ != nullptr) cudaFree(p_);
  }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  unsigned char* get() const { return static_cast<unsigned char*>(p_); }

 private:
  void* p_ = nullptr;
};

class GpuKernelsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    int n = 0;
    const cudaError_t err = cudaGetDeviceCount(&n);
    if (err != cudaSuccess) {
      (void)cudaGetLastError();
      GTEST_SKIP() << "no CUDA device: cudaGetDeviceCount: " << cudaGetErrorName(err) << ": "
                   << cudaGetErrorString(err);
    }
    if (n == 0) GTEST_SKIP() << "no CUDA device: cudaGetDeviceCount found none";
    ASSERT_CUDA(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking));
  }
  void TearDown() override {
    if (stream_ != nullptr) cudaStreamDestroy(stream_);
  }

  // Copies `host` to the device at byte `offset` of a fresh buffer, runs `kernel(device pointer)`,
  // and returns the bytes it left there.
  template <class F>
  Bytes on_device(const Bytes& host, std::size_t offset, F&& kernel) {
    DeviceBuffer buf(host.size() + offset + 16);
    EXPECT_NE(buf.get(), nullptr);
    if (buf.get() == nullptr) return {};
    EXPECT_EQ(cudaMemcpy(buf.get() + offset, host.data(), host.size(), cudaMemcpyHostToDevice), cudaSuccess);
    const Status s = kernel(buf.get() + offset);
    EXPECT_TRUE(s.ok()) << s.to_string();
    EXPECT_EQ(cudaStreamSynchronize(stream_), cudaSuccess);
    Bytes out(host.size());
    EXPECT_EQ(cudaMemcpy(out.data(), buf.get() + offset, out.size(), cudaMemcpyDeviceToHost), cudaSuccess);
    return out;
  }

  cudaStream_t stream_ = nullptr;
};

std::string hex(const unsigned char* p, std::size_t size) {
  std::uint64_t v = 0;
  std::memcpy(&v, p, size);
  return std::to_string(v);
}

::testing::AssertionResult same_elements(const Bytes& expected, const Bytes& got, std::size_t elem) {
  if (expected.size() != got.size()) return ::testing::AssertionFailure() << "sizes differ";
  for (std::size_t i = 0; i < expected.size(); i += elem) {
    if (std::memcmp(&expected[i], &got[i], elem) != 0) {
      return ::testing::AssertionFailure() << "element " << i / elem << ": expected bits " << hex(&expected[i], elem)
                                           << ", got " << hex(&got[i], elem);
    }
  }
  return ::testing::AssertionSuccess();
}

// Random bit patterns (every NaN payload, denormal and subnormal occurs), special values, and
// values with few mantissa bits so that sums round on ties.
Bytes make_values(DType dtype, std::size_t n, std::mt19937_64& rng) {
  static const std::vector<std::uint64_t> f32 = {0,          0x80000000, 0x7f800000, 0xff800000, 0x7fc00000, 0xff800001,
                                                 0x7fa52000, 0x00000001, 0x807fffff, 0x7f7fffff, 0x477ff000, 0x33000000,
                                                 0x387fe000, 0x3f808000, 0x3f818000, 0x7f7f8000};
  static const std::vector<std::uint64_t> f16 = {0, 0x8000, 0x7c00, 0xfc00, 0x7e00, 0xfc01, 0x0001, 0x83ff, 0x7bff};
  static const std::vector<std::uint64_t> b16 = {0, 0x8000, 0x7f80, 0xff80, 0x7fc0, 0xff81, 0x0001, 0x7f7f, 0x3b80};
  static const std::vector<std::uint64_t> f64 = {0,
                                                 0x8000000000000000,
                                                 0x7ff0000000000000,
                                                 0x7ff0000000000001,
                                                 0xfff8000000000000,
                                                 0x0000000000000001,
                                                 0x7fefffffffffffff};
  static const std::vector<std::uint64_t> ints = {0, 1, ~0ull, 0x80000000, 0x7fffffff, 0x8000000000000000};
  const std::size_t elem = ck::element_size(dtype);
  const auto& sp = dtype == DType::kFloat32    ? f32
                   : dtype == DType::kFloat16  ? f16
                   : dtype == DType::kBFloat16 ? b16
                   : dtype == DType::kFloat64  ? f64
                                               : ints;
  Bytes v(n * elem);
  for (std::size_t i = 0; i < n; ++i) {
    const std::uint64_t r = rng();
    std::uint64_t x = r;
    if (r % 4 == 0) x = sp[(r >> 8) % sp.size()];
    if (r % 4 == 1) {  // sign, a narrow exponent range, few mantissa bits
      const std::uint64_t s = (r >> 2) & 1;
      const std::uint64_t e = (r >> 3) % 9;
      const std::uint64_t m = (r >> 8) & 0x3f;
      x = elem == 2 ? (dtype == DType::kFloat16 ? s << 15 | (11 + e) << 10 | m << 4 : s << 15 | (123 + e) << 7 | m)
          : elem == 4 && dtype == DType::kFloat32 ? s << 31 | (123 + e) << 23 | m << 17
          : dtype == DType::kFloat64              ? s << 63 | (1019 + e) << 52 | m << 46
                                                  : m;
    }
    if (i > 0 && r % 16 == 2) std::memcpy(&x, &v[(i - 1) * elem], elem);  // repeats: min/max ties
    std::memcpy(&v[i * elem], &x, elem);
  }
  return v;
}

constexpr std::array<std::size_t, 13> kLengths = {0, 1, 3, 7, 8, 9, 15, 16, 17, 31, 1000, 4099, (1 << 20) + 5};
constexpr std::array<DType, 6> kAllTypes = {DType::kFloat32,  DType::kFloat64, DType::kFloat16,
                                            DType::kBFloat16, DType::kInt32,   DType::kInt64};
// 0: 16-byte aligned (vector path); one element and 8 bytes: the element path.
std::vector<std::size_t> offsets(DType dtype) {
  std::vector<std::size_t> v = {0, ck::element_size(dtype)};
  if (ck::element_size(dtype) != 8) v.push_back(8);
  return v;
}

TEST_F(GpuKernelsTest, ReduceMatchesTheCpuForEveryTypeAndOp) {
  std::mt19937_64 rng(1);
  for (DType dtype : kAllTypes) {
    for (ReduceOp op : {ReduceOp::kSum, ReduceOp::kMin, ReduceOp::kMax}) {
      for (std::size_t n : kLengths) {
        for (std::size_t offset : offsets(dtype)) {
          const Bytes a = make_values(dtype, n, rng);
          const Bytes b = make_values(dtype, n, rng);
          Bytes expected = a;
          ASSERT_TRUE(ck::reduce(expected.data(), b.data(), n, dtype, op, Device::kHost).ok());
          DeviceBuffer db(b.size() + offset);
          ASSERT_CUDA(cudaMemcpy(db.get() + offset, b.data(), b.size(), cudaMemcpyHostToDevice));
          const Bytes got = on_device(a, offset, [&](unsigned char* da) {
            return ck::reduce(da, db.get() + offset, n, dtype, op, Device::kCuda, stream_);
          });
          EXPECT_TRUE(same_elements(expected, got, ck::element_size(dtype)))
              << ck::element_size(dtype) << "-byte dtype " << static_cast<int>(dtype) << ", op " << static_cast<int>(op)
              << ", n " << n << ", offset " << offset;
          // The same array as both operands.
          Bytes self = a;
          ASSERT_TRUE(ck::reduce(self.data(), self.data(), n, dtype, op, Device::kHost).ok());
          const Bytes got_self = on_device(
              a, offset, [&](unsigned char* da) { return ck::reduce(da, da, n, dtype, op, Device::kCuda, stream_); });
          EXPECT_TRUE(same_elements(self, got_self, ck::element_size(dtype))) << "self, n " << n;
        }
      }
    }
  }
}

TEST_F(GpuKernelsTest, ScaleMatchesTheCpu) {
  std::mt19937_64 rng(2);
  const double factors[] = {0.5, -3.0, 1.0 / 3.0, 0.0, 1e-30, 1e30, std::numeric_limits<double>::quiet_NaN()};
  for (DType dtype : {DType::kFloat32, DType::kFloat64, DType::kFloat16, DType::kBFloat16}) {
    for (std::size_t n : kLengths) {
      for (std::size_t offset : offsets(dtype)) {
        for (double factor : factors) {
          const Bytes a = make_values(dtype, n, rng);
          Bytes expected = a;
          ASSERT_TRUE(ck::scale(expected.data(), n, dtype, factor, Device::kHost).ok());
          const Bytes got = on_device(
              a, offset, [&](unsigned char* d) { return ck::scale(d, n, dtype, factor, Device::kCuda, stream_); });
          EXPECT_TRUE(same_elements(expected, got, ck::element_size(dtype)))
              << "dtype " << static_cast<int>(dtype) << ", n " << n << ", offset " << offset << ", factor " << factor;
        }
      }
    }
  }
}

TEST_F(GpuKernelsTest, CastMatchesTheCpuIncludingEvery16BitPattern) {
  std::mt19937_64 rng(3);
  const std::tuple<DType, DType> pairs[] = {{DType::kBFloat16, DType::kFloat32},
                                            {DType::kFloat16, DType::kFloat32},
                                            {DType::kFloat32, DType::kBFloat16},
                                            {DType::kFloat32, DType::kFloat16}};
  std::vector<std::size_t> lengths(kLengths.begin(), kLengths.end());
  lengths.push_back(65536);
  for (const auto& [dst_type, src_type] : pairs) {
    for (std::size_t n : lengths) {
      for (std::size_t offset : {std::size_t{0}, std::size_t{2}, std::size_t{8}}) {
        Bytes src = make_values(src_type, n, rng);
        if (n == 65536 && ck::element_size(src_type) == 2) {
          for (std::uint32_t h = 0; h < 65536; ++h)
            std::memcpy(&src[2 * h], &h, 2);
        }
        Bytes expected(n * ck::element_size(dst_type));
        ASSERT_TRUE(ck::cast(expected.data(), dst_type, src.data(), src_type, n, Device::kHost).ok());
        DeviceBuffer ds(src.size() + offset);
        ASSERT_CUDA(cudaMemcpy(ds.get() + offset, src.data(), src.size(), cudaMemcpyHostToDevice));
        const Bytes got = on_device(Bytes(expected.size()), offset, [&](unsigned char* dd) {
          return ck::cast(dd, dst_type, ds.get() + offset, src_type, n, Device::kCuda, stream_);
        });
        EXPECT_TRUE(same_elements(expected, got, ck::element_size(dst_type)))
            << "src " << static_cast<int>(src_type) << " dst " << static_cast<int>(dst_type) << ", n " << n
            << ", offset " << offset;
      }
    }
  }
}

TEST_F(GpuKernelsTest, CopyAnySizeAndAlignment) {
  std::mt19937_64 rng(4);
  for (std::size_t bytes : {std::size_t{0}, std::size_t{1}, std::size_t{15}, std::size_t{16}, std::size_t{17},
                            std::size_t{4099}, std::size_t{(1 << 22) + 3}}) {
    for (std::size_t offset : {0, 1, 4, 16}) {
      Bytes src(bytes);
      for (auto& c : src)
        c = static_cast<unsigned char>(rng());
      DeviceBuffer ds(bytes + offset);
      ASSERT_CUDA(cudaMemcpy(ds.get() + offset, src.data(), bytes, cudaMemcpyHostToDevice));
      const Bytes got = on_device(Bytes(bytes), 0, [&](unsigned char* dd) {
        return ck::copy(dd, ds.get() + offset, bytes, Device::kCuda, stream_);
      });
      EXPECT_EQ(got, src) << bytes << " bytes, offset " << offset;
    }
  }
}

// More tensors than one kernel launch takes (64), of sizes that put later ones off alignment.
TEST_F(GpuKernelsTest, PackAndUnpackRoundTripManyTensors) {
  std::mt19937_64 rng(5);
  std::vector<std::size_t> sizes;
  for (int i = 0; i < 150; ++i)
    sizes.push_back(rng() % 4 == 0 ? rng() % 20000 : rng() % 40);
  std::size_t total = 0;
  for (std::size_t s : sizes)
    total += s;
  Bytes host(total);
  for (auto& c : host)
    c = static_cast<unsigned char>(rng());
  // The tensors live in one device allocation, 64 bytes apart.
  DeviceBuffer tensors(total + 64 * sizes.size());
  std::vector<ck::ConstBufferView> srcs;
  std::vector<ck::MutableBufferView> dsts;
  std::size_t at = 0;
  std::size_t dev_at = 0;
  for (std::size_t s : sizes) {
    ASSERT_CUDA(cudaMemcpy(tensors.get() + dev_at, host.data() + at, s, cudaMemcpyHostToDevice));
    srcs.push_back({tensors.get() + dev_at, s});
    dsts.push_back({tensors.get() + dev_at, s});
    at += s;
    dev_at += s + 64;
  }
  DeviceBuffer fused(total);
  ASSERT_TRUE(ck::pack({fused.get(), total}, srcs, Device::kCuda, stream_).ok());
  ASSERT_CUDA(cudaStreamSynchronize(stream_));
  Bytes packed(total);
  ASSERT_CUDA(cudaMemcpy(packed.data(), fused.get(), total, cudaMemcpyDeviceToHost));
  EXPECT_EQ(packed, host);

  ASSERT_CUDA(cudaMemset(tensors.get(), 0, total + 64 * sizes.size()));
  ASSERT_TRUE(ck::unpack(dsts, {fused.get(), total}, Device::kCuda, stream_).ok());
  ASSERT_CUDA(cudaStreamSynchronize(stream_));
  at = 0;
  dev_at = 0;
  for (std::size_t s : sizes) {
    Bytes back(s);
    ASSERT_CUDA(cudaMemcpy(back.data(), tensors.get() + dev_at, s, cudaMemcpyDeviceToHost));
    ASSERT_TRUE(std::equal(back.begin(), back.end(), host.begin() + static_cast<std::ptrdiff_t>(at)));
    at += s;
    dev_at += s + 64;
  }
}

TEST_F(GpuKernelsTest, DispatchChecksApplyOnTheDevice) {
  DeviceBuffer a(64);
  Status s = ck::reduce(a.get(), nullptr, 4, DType::kFloat32, ReduceOp::kSum, Device::kCuda, stream_);
  EXPECT_EQ(s.code(), Code::kInvalidArgument) << s.to_string();
  s = ck::reduce(a.get(), a.get(), 4, DType::kFloat32, ReduceOp::kAvg, Device::kCuda, stream_);
  EXPECT_EQ(s.code(), Code::kInvalidArgument) << s.to_string();
  s = ck::scale(a.get(), 4, DType::kInt64, 2.0, Device::kCuda, stream_);
  EXPECT_EQ(s.code(), Code::kInvalidArgument) << s.to_string();
}

}  // namespace
