// cohort-bench kernels: the bandwidth of kernels/ against a plain copy of the same bytes in the same
// run. On the CPU the baseline is memcpy (glibc's, vectorized); on a CUDA device it is kernels'
// own 16-byte-vector copy kernel. Bandwidth counts the bytes a kernel must move: memcpy and scale
// read and write N bytes (2N), reduce reads both inputs and writes one (3N), a cast reads its source
// and writes its destination. Rounds are interleaved (every kernel once per round, after one
// warm-up round) so drift in the machine's load falls on all of them; medians are reported.
// Target: reduce ≥ 0.8 × the baseline's bandwidth.
#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "cohort/collectives.hpp"
#include "cohort/status.hpp"
#include "kernels/cpu/cpu_kernels.hpp"
#include "kernels/float16.hpp"
#include "kernels/kernels.hpp"
#if COHORT_KERNELS_CUDA
#include <cuda_runtime.h>
#endif

namespace {

namespace ck = cohort::kernels;
using cohort::DType;
using cohort::Result;
using cohort::Status;

constexpr double kTargetReduceVsBaseline = 0.8;

struct Options {
  std::uint64_t bytes = std::uint64_t{64} << 20;
  std::string dtype = "all";
  int iters = 20;
  bool json = false;
  std::string device = "cpu";
  std::string isa = "auto";
};

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const std::size_t n = v.size();
  return n % 2 == 1 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

using Owned = std::unique_ptr<void, void (*)(void*)>;

// Where the buffers live and how an operation is timed: the host, or a CUDA device.
class Target {
 public:
  virtual ~Target() = default;
  virtual std::string describe() const = 0;
  virtual std::string baseline_name() const = 0;
  virtual Result<Owned> alloc(std::size_t bytes) = 0;
  virtual Status upload(void* dst, const void* src, std::size_t bytes) = 0;
  virtual Status baseline(void* dst, const void* src, std::size_t bytes) = 0;
  virtual Status reduce(void* a, const void* b, std::size_t n, DType t, cohort::ReduceOp op) = 0;
  virtual Status scale(void* a, std::size_t n, DType t, double factor) = 0;
  virtual Status cast(void* dst, DType dt, const void* src, DType st, std::size_t n) = 0;
  // Seconds `op` takes to complete.
  virtual Result<double> time(const std::function<Status()>& op) = 0;
};

class CpuTarget : public Target {
 public:
  // dispatch: through kernels:: as a caller would (isa is then what it picks); else cpu:: with `isa`.
  CpuTarget(bool dispatch, ck::cpu::Isa isa) : dispatch_(dispatch), isa_(isa) {}
  std::string describe() const override {
    return "cpu (" + std::string(ck::cpu::isa_name(isa_)) + (dispatch_ ? ", via kernels:: dispatch)" : ")");
  }
  std::string baseline_name() const override { return "memcpy"; }
  Result<Owned> alloc(std::size_t bytes) override {
    const std::size_t rounded = (bytes + 4095) / 4096 * 4096;
    void* p = std::aligned_alloc(4096, rounded == 0 ? 4096 : rounded);
    if (p == nullptr) return Status(cohort::Code::kResourceExhausted, "aligned_alloc of " + std::to_string(bytes));
    return Owned(p, std::free);
  }
  Status upload(void* dst, const void* src, std::size_t bytes) override {
    std::memcpy(dst, src, bytes);
    return {};
  }
  Status baseline(void* dst, const void* src, std::size_t bytes) override {
    std::memcpy(dst, src, bytes);
    return {};
  }
  Status reduce(void* a, const void* b, std::size_t n, DType t, cohort::ReduceOp op) override {
    return dispatch_ ? ck::reduce(a, b, n, t, op, cohort::Device::kHost) : ck::cpu::reduce(a, b, n, t, op, isa_);
  }
  Status scale(void* a, std::size_t n, DType t, double factor) override {
    return dispatch_ ? ck::scale(a, n, t, factor, cohort::Device::kHost) : ck::cpu::scale(a, n, t, factor, isa_);
  }
  Status cast(void* dst, DType dt, const void* src, DType st, std::size_t n) override {
    return dispatch_ ? ck::cast(dst, dt, src, st, n, cohort::Device::kHost) : ck::cpu::cast(dst, dt, src, st, n, isa_);
  }
  Result<double> time(const std::function<Status()>& op) override {
    const auto start = std::chrono::steady_clock::now();
    COHORT_TRY(op());
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  }

 private:
  bool dispatch_;
  ck::cpu::Isa isa_;
};

#if COHORT_KERNELS_CUDA
Status cuda_status(cudaError_t err, const char* call) {
  if (err == cudaSuccess) return {};
  return {cohort::Code::kUnavailable,
          std::string(call) + ": " + cudaGetErrorName(err) + ": " + cudaGetErrorString(err)};
}

class CudaTarget : public Target {
 public:
  static Result<std::unique_ptr<CudaTarget>> create() {
    int n = 0;
    COHORT_TRY(cuda_status(cudaGetDeviceCount(&n), "cudaGetDeviceCount").with_context("no CUDA device"));
    if (n == 0) return Status(cohort::Code::kUnavailable, "no CUDA device: cudaGetDeviceCount found none");
    auto t = std::unique_ptr<CudaTarget>(new CudaTarget);
    COHORT_TRY(cuda_status(cudaStreamCreateWithFlags(&t->stream_, cudaStreamNonBlocking), "cudaStreamCreate"));
    COHORT_TRY(cuda_status(cudaEventCreate(&t->start_), "cudaEventCreate"));
    COHORT_TRY(cuda_status(cudaEventCreate(&t->stop_), "cudaEventCreate"));
    cudaDeviceProp prop{};
    if (cudaGetDeviceProperties(&prop, 0) == cudaSuccess) t->name_ = prop.name;
    return t;
  }
  ~CudaTarget() override {
    if (start_ != nullptr) cudaEventDestroy(start_);
    if (stop_ != nullptr) cudaEventDestroy(stop_);
    if (stream_ != nullptr) cudaStreamDestroy(stream_);
  }
  std::string describe() const override { return "cuda (" + name_ + ")"; }
  std::string baseline_name() const override { return "copy16"; }
  Result<Owned> alloc(std::size_t bytes) override {
    void* p = nullptr;
    COHORT_TRY(cuda_status(cudaMalloc(&p, bytes == 0 ? 1 : bytes), "cudaMalloc"));
    return Owned(p, [](void* q) { cudaFree(q); });
  }
  Status upload(void* dst, const void* src, std::size_t bytes) override {
    return cuda_status(cudaMemcpy(dst, src, bytes, cudaMemcpyHostToDevice), "cudaMemcpy");
  }
  Status baseline(void* dst, const void* src, std::size_t bytes) override {
    return ck::copy(dst, src, bytes, cohort::Device::kCuda, stream_);
  }
  Status reduce(void* a, const void* b, std::size_t n, DType t, cohort::ReduceOp op) override {
    return ck::reduce(a, b, n, t, op, cohort::Device::kCuda, stream_);
  }
  Status scale(void* a, std::size_t n, DType t, double factor) override {
    return ck::scale(a, n, t, factor, cohort::Device::kCuda, stream_);
  }
  Status cast(void* dst, DType dt, const void* src, DType st, std::size_t n) override {
    return ck::cast(dst, dt, src, st, n, cohort::Device::kCuda, stream_);
  }
  Result<double> time(const std::function<Status()>& op) override {
    COHORT_TRY(cuda_status(cudaEventRecord(start_, stream_), "cudaEventRecord"));
    COHORT_TRY(op());
    COHORT_TRY(cuda_status(cudaEventRecord(stop_, stream_), "cudaEventRecord"));
    COHORT_TRY(cuda_status(cudaEventSynchronize(stop_), "cudaEventSynchronize"));
    float ms = 0;
    COHORT_TRY(cuda_status(cudaEventElapsedTime(&ms, start_, stop_), "cudaEventElapsedTime"));
    return static_cast<double>(ms) / 1e3;
  }

 private:
  CudaTarget() = default;
  cudaStream_t stream_ = nullptr;
  cudaEvent_t start_ = nullptr;
  cudaEvent_t stop_ = nullptr;
  std::string name_ = "device 0";
};
#endif

struct Series {
  std::string dtype;
  std::string kernel;
  double bytes_moved = 0;  // per call
  bool is_baseline = false;
  bool is_reduce = false;
  std::function<Status()> op;
  std::vector<double> sec;
};

// `count` elements of `t`, all equal to `v`.
std::vector<unsigned char> filled(DType t, std::size_t count, float v) {
  std::vector<unsigned char> out(count * ck::element_size(t));
  for (std::size_t i = 0; i < count; ++i) {
    if (t == DType::kFloat32) {
      std::memcpy(&out[i * 4], &v, 4);
    } else {
      const std::uint16_t h = t == DType::kBFloat16 ? ck::float_to_bf16(v) : ck::float_to_fp16(v);
      std::memcpy(&out[i * 2], &h, 2);
    }
  }
  return out;
}

struct DtypeBuffers {
  Owned a{nullptr, std::free}, b{nullptr, std::free}, copy_dst{nullptr, std::free}, f32{nullptr, std::free};
};

// The series of one dtype on buffers it allocates into `bufs`.
Status add_series(Target& target, const Options& o, DType t, DtypeBuffers& bufs, std::vector<Series>& out) {
  const std::string name = t == DType::kFloat32 ? "fp32" : t == DType::kBFloat16 ? "bf16" : "fp16";
  const std::size_t count = o.bytes / ck::element_size(t);
  const std::size_t bytes = count * ck::element_size(t);
  COHORT_ASSIGN_OR_RETURN(bufs.a, target.alloc(bytes));
  COHORT_ASSIGN_OR_RETURN(bufs.b, target.alloc(bytes));
  COHORT_ASSIGN_OR_RETURN(bufs.copy_dst, target.alloc(bytes));
  // Values that stay normal however often they are summed, scaled by 1 or cast.
  COHORT_TRY(target.upload(bufs.a.get(), filled(t, count, 1.0f).data(), bytes));
  COHORT_TRY(target.upload(bufs.b.get(), filled(t, count, 0.0009765625f).data(), bytes));
  COHORT_TRY(target.upload(bufs.copy_dst.get(), filled(t, count, 0.0f).data(), bytes));
  void* a = bufs.a.get();
  const void* b = bufs.b.get();
  void* dst = bufs.copy_dst.get();
  const double n = static_cast<double>(bytes);
  out.push_back({name, target.baseline_name(), 2 * n, true, false,
                 [&target, dst, b, bytes] { return target.baseline(dst, b, bytes); }});
  out.push_back({name, "reduce sum", 3 * n, false, true,
                 [&target, a, b, count, t] { return target.reduce(a, b, count, t, cohort::ReduceOp::kSum); }});
  out.push_back({name, "reduce max", 3 * n, false, true,
                 [&target, a, b, count, t] { return target.reduce(a, b, count, t, cohort::ReduceOp::kMax); }});
  out.push_back(
      {name, "scale", 2 * n, false, false, [&target, a, count, t] { return target.scale(a, count, t, 1.0); }});
  if (t != DType::kFloat32) {
    COHORT_ASSIGN_OR_RETURN(bufs.f32, target.alloc(count * 4));
    COHORT_TRY(target.upload(bufs.f32.get(), filled(DType::kFloat32, count, 1.5f).data(), count * 4));
    void* f = bufs.f32.get();
    const double moved = static_cast<double>(count) * (4 + 2);
    out.push_back({name, "cast fp32->" + name, moved, false, false,
                   [&target, dst, f, count, t] { return target.cast(dst, t, f, DType::kFloat32, count); }});
    out.push_back({name, "cast " + name + "->fp32", moved, false, false,
                   [&target, dst, f, count, t] { return target.cast(f, DType::kFloat32, dst, t, count); }});
  }
  return {};
}

Status measure(Target& target, const Options& o, std::vector<Series>& series) {
  std::vector<DType> types;
  if (o.dtype == "all" || o.dtype == "fp32") types.push_back(DType::kFloat32);
  if (o.dtype == "all" || o.dtype == "bf16") types.push_back(DType::kBFloat16);
  if (o.dtype == "all" || o.dtype == "fp16") types.push_back(DType::kFloat16);
  // One dtype at a time, so that only its buffers are allocated.
  for (DType t : types) {
    DtypeBuffers bufs;
    std::vector<Series> mine;
    COHORT_TRY(add_series(target, o, t, bufs, mine));
    for (int round = 0; round <= o.iters; ++round) {  // round 0 warms up: page faults, caches, clocks
      for (Series& s : mine) {
        COHORT_ASSIGN_OR_RETURN(const double sec, target.time(s.op));
        if (round > 0) s.sec.push_back(sec);
      }
    }
    for (Series& s : mine)
      series.push_back(std::move(s));
  }
  return {};
}

// The baseline's bandwidth for the dtype of `s`.
double baseline_gbps(const std::vector<Series>& all, const Series& s) {
  for (const Series& b : all) {
    if (b.is_baseline && b.dtype == s.dtype) return b.bytes_moved / 1e9 / median(b.sec);
  }
  return 0;
}

void print_table(const Target& target, const Options& o, const std::vector<Series>& all) {
  std::printf("kernels on %s, %.2f MiB per buffer, %d rounds after a warm-up, medians\n", target.describe().c_str(),
              static_cast<double>(o.bytes) / (1 << 20), o.iters);
  std::printf("%-5s %-16s %12s %10s %8s %10s\n", "dtype", "kernel", "MB/call", "median_ms", "GB/s",
              ("vs " + target.baseline_name()).c_str());
  for (const Series& s : all) {
    const double m = median(s.sec);
    const double gbps = s.bytes_moved / 1e9 / m;
    std::printf("%-5s %-16s %12.1f %10.3f %8.2f %10.3f\n", s.dtype.c_str(), s.kernel.c_str(), s.bytes_moved / 1e6,
                m * 1e3, gbps, gbps / baseline_gbps(all, s));
  }
  std::printf("\ntarget: reduce >= %.2f x %s\n", kTargetReduceVsBaseline, target.baseline_name().c_str());
  for (const Series& s : all) {
    if (!s.is_reduce) continue;
    const double r = s.bytes_moved / 1e9 / median(s.sec) / baseline_gbps(all, s);
    std::printf("  %-5s %-12s %6.3f %s\n", s.dtype.c_str(), s.kernel.c_str(), r,
                r >= kTargetReduceVsBaseline ? "met" : "NOT MET");
  }
  std::printf(
      "\nGB = 1e9 bytes moved: %s and scale count 2N (read + write), reduce 3N (two reads, one write), a cast "
      "its source plus destination bytes.\n",
      target.baseline_name().c_str());
}

void print_json(const Target& target, const Options& o, const std::vector<Series>& all) {
  std::printf("{\"bench\":\"kernels\",\"device\":\"%s\",\"bytes\":%llu,\"iters\":%d,\"baseline\":\"%s\",\"results\":[",
              target.describe().c_str(), static_cast<unsigned long long>(o.bytes), o.iters,
              target.baseline_name().c_str());
  double worst_reduce = 1e9;
  for (std::size_t i = 0; i < all.size(); ++i) {
    const Series& s = all[i];
    const double m = median(s.sec);
    const double gbps = s.bytes_moved / 1e9 / m;
    const double ratio = gbps / baseline_gbps(all, s);
    if (s.is_reduce) worst_reduce = std::min(worst_reduce, ratio);
    std::printf("%s{\"dtype\":\"%s\",\"kernel\":\"%s\",\"median_s\":%.6f,\"gbps\":%.3f,\"vs_baseline\":%.3f}",
                i == 0 ? "" : ",", s.dtype.c_str(), s.kernel.c_str(), m, gbps, ratio);
  }
  std::printf("],\"reduce_vs_baseline_min\":%.3f,\"target\":%.2f}\n", worst_reduce, kTargetReduceVsBaseline);
}

Result<std::unique_ptr<Target>> make_target(const Options& o) {
  if (o.device == "cuda") {
#if COHORT_KERNELS_CUDA
    COHORT_ASSIGN_OR_RETURN(std::unique_ptr<CudaTarget> t, CudaTarget::create());
    return std::unique_ptr<Target>(std::move(t));
#else
    return Status(cohort::Code::kUnimplemented, "--device cuda, but this build has no CUDA kernels");
#endif
  }
  if (o.isa == "auto") return std::unique_ptr<Target>(new CpuTarget(true, ck::cpu::best_isa()));
  if (o.isa == "portable") return std::unique_ptr<Target>(new CpuTarget(false, ck::cpu::Isa::kPortable));
  if (ck::cpu::best_isa() != ck::cpu::Isa::kAvx2) {
    return cohort::failed_precondition("--isa avx2, but this CPU lacks AVX2 or F16C: use --isa auto or portable");
  }
  return std::unique_ptr<Target>(new CpuTarget(false, ck::cpu::Isa::kAvx2));
}

}  // namespace

int bench_kernels(int argc, char** argv) {
  CLI::App app{"kernels/ reduce, scale and cast bandwidth against a copy of the same bytes"};
  Options o;
  app.add_option("--bytes", o.bytes, "bytes of each buffer (K, M, G suffixes: powers of 1024)")
      ->transform(CLI::AsSizeValue(false))
      ->check(CLI::Range(std::uint64_t{16}, std::uint64_t{1} << 36));
  app.add_option("--dtype", o.dtype, "element type")->check(CLI::IsMember({"fp32", "bf16", "fp16", "all"}));
  app.add_option("--iters", o.iters, "timed rounds of every kernel, interleaved; medians are reported")
      ->check(CLI::Range(1, 100000));
  app.add_option("--device", o.device, "where the buffers live")->check(CLI::IsMember({"cpu", "cuda"}));
  app.add_option("--isa", o.isa, "CPU path: auto (the dispatch's choice), portable or avx2")
      ->check(CLI::IsMember({"auto", "portable", "avx2"}));
  app.add_flag("--json", o.json, "one JSON object instead of the table");
  CLI11_PARSE(app, argc, argv);

  auto target = make_target(o);
  if (!target.ok()) {
    std::fprintf(stderr, "cohort-bench kernels: %s\n", target.status().to_string().c_str());
    return 1;
  }
  std::vector<Series> series;
  if (const Status s = measure(**target, o, series); !s.ok()) {
    std::fprintf(stderr, "cohort-bench kernels: %s\n", s.to_string().c_str());
    return 1;
  }
  if (o.json) {
    print_json(**target, o, series);
  } else {
    print_table(**target, o, series);
  }
  return 0;
}
