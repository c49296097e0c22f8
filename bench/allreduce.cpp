// cohort-bench allreduce: libcohort's allreduce against what a user of MPI would write instead,
// measured in the same run under `cohort run -n N`. The baseline is MPI_Allreduce on MPI_FLOAT or
// MPI_DOUBLE for fp32/fp64, and for fp16/bf16 an MPI user-defined operation written here the plain
// way (a scalar loop: widen to fp32, combine, round to nearest even). avg is a sum followed by a
// loop that multiplies by 1/n, on both sides.
//
// Both are out of place. For every size: one warm-up block of each, then `rounds` blocks of
// `iters` calls alternating Cohort and the baseline, so drift in the machine's load falls on both;
// each block starts after a barrier and its time is the slowest rank's (MPI_Wtime, max over ranks);
// the median block is reported. Figures follow nccl-tests: algbw = bytes / time,
// busbw = algbw × 2(n−1)/n. --check compares Cohort's result bit for bit with a reference: every
// rank sends small integers whose partial sums stay exact in every dtype, so the exact result does
// not depend on the order MPI combines ranks in.
#include <mpi.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "cohort/collectives.hpp"
#include "cohort/context.hpp"

#include "mpi_bench_util.hpp"

using cohort::bench::median;
using cohort::bench::parse_size;
using cohort::bench::time_block;

namespace {

using cohort::DType;
using cohort::ReduceOp;

constexpr int kRounds = 3;

// --- The baseline's fp16/bf16 operations, as a user would write them without Cohort. ---

float bf16_to_float(std::uint16_t h) {
  const std::uint32_t u = static_cast<std::uint32_t>(h) << 16;
  float f;
  std::memcpy(&f, &u, sizeof f);
  return f;
}
std::uint16_t float_to_bf16(float f) {  // round to nearest even (NaN handling left out)
  std::uint32_t u;
  std::memcpy(&u, &f, sizeof u);
  return static_cast<std::uint16_t>((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
}
float fp16_to_float(std::uint16_t h) {
  _Float16 x;
  std::memcpy(&x, &h, sizeof x);
  return static_cast<float>(x);
}
std::uint16_t float_to_fp16(float f) {
  const auto x = static_cast<_Float16>(f);  // round to nearest even
  std::uint16_t h;
  std::memcpy(&h, &x, sizeof h);
  return h;
}

struct Bf16 {
  static float widen(std::uint16_t h) { return bf16_to_float(h); }
  static std::uint16_t narrow(float f) { return float_to_bf16(f); }
};
struct Fp16 {
  static float widen(std::uint16_t h) { return fp16_to_float(h); }
  static std::uint16_t narrow(float f) { return float_to_fp16(f); }
};

template <class T, ReduceOp kOp>
void user_op(void* in, void* inout, int* len, MPI_Datatype*) {
  const auto* a = static_cast<const std::uint16_t*>(in);
  auto* b = static_cast<std::uint16_t*>(inout);
  for (int i = 0; i < *len; ++i) {
    const float x = T::widen(a[i]);
    const float y = T::widen(b[i]);
    const float r = kOp == ReduceOp::kMin ? std::min(x, y) : kOp == ReduceOp::kMax ? std::max(x, y) : x + y;
    b[i] = T::narrow(r);
  }
}

template <class T>
MPI_User_function* user_fn(ReduceOp op) {
  if (op == ReduceOp::kMin) return user_op<T, ReduceOp::kMin>;
  if (op == ReduceOp::kMax) return user_op<T, ReduceOp::kMax>;
  return user_op<T, ReduceOp::kSum>;
}

// The baseline's avg: the sum scaled by 1/n in a loop.
void scale(void* data, std::size_t count, DType dtype, int n) {
  if (dtype == DType::kFloat32) {
    auto* p = static_cast<float*>(data);
    for (std::size_t i = 0; i < count; ++i)
      p[i] *= 1.0f / static_cast<float>(n);
  } else if (dtype == DType::kFloat64) {
    auto* p = static_cast<double*>(data);
    for (std::size_t i = 0; i < count; ++i)
      p[i] *= 1.0 / n;
  } else {
    auto* p = static_cast<std::uint16_t*>(data);
    const bool bf = dtype == DType::kBFloat16;
    for (std::size_t i = 0; i < count; ++i) {
      const float x = (bf ? bf16_to_float(p[i]) : fp16_to_float(p[i])) * (1.0f / static_cast<float>(n));
      p[i] = bf ? float_to_bf16(x) : float_to_fp16(x);
    }
  }
}

// --- Inputs and the reference. ---

// Rank r's element i: a small integer (ranks repeat the pattern of ranks 0..3). Up to 8 ranks,
// every partial sum is an integer below 2^8 in magnitude, exact in bf16 and fp16; with more ranks
// --check may report FAIL for bf16 sums that MPI combined in another order.
int input(int rank, std::size_t i) {
  return static_cast<int>(i % 13) * ((rank % 4) + 1) - (rank % 4);
}

// Writes `v` (exact in the dtype, or the fp32/fp64 product of avg) as one element of `dtype`.
void store(void* data, std::size_t i, DType dtype, double v) {
  switch (dtype) {
    case DType::kFloat32:
      static_cast<float*>(data)[i] = static_cast<float>(v);
      break;
    case DType::kFloat64:
      static_cast<double*>(data)[i] = v;
      break;
    case DType::kBFloat16:
      static_cast<std::uint16_t*>(data)[i] = float_to_bf16(static_cast<float>(v));
      break;
    default:
      static_cast<std::uint16_t*>(data)[i] = float_to_fp16(static_cast<float>(v));
      break;
  }
}

// The result at any index with i % 13 == k, computed in the compute type (fp64 for fp64, fp32
// otherwise): the exact integer reduction, then avg's multiplication by 1/n.
double reference(std::size_t k, DType dtype, ReduceOp op, int n) {
  int acc = input(0, k);
  for (int r = 1; r < n; ++r) {
    const int v = input(r, k);
    acc = op == ReduceOp::kMin ? std::min(acc, v) : op == ReduceOp::kMax ? std::max(acc, v) : acc + v;
  }
  if (op != ReduceOp::kAvg) return acc;
  if (dtype == DType::kFloat64) return acc * (1.0 / n);
  return static_cast<double>(static_cast<float>(acc) * (1.0f / static_cast<float>(n)));
}

bool check(const void* out, std::size_t count, DType dtype, ReduceOp op, int n) {
  const std::size_t elem = cohort::dtype_size(dtype);
  std::vector<unsigned char> want(13 * elem);
  for (std::size_t k = 0; k < 13; ++k)
    store(want.data(), k, dtype, reference(k, dtype, op, n));
  const auto* got = static_cast<const unsigned char*>(out);
  for (std::size_t i = 0; i < count; ++i) {
    if (std::memcmp(got + i * elem, want.data() + (i % 13) * elem, elem) != 0) return false;
  }
  return true;
}

// --- Options. ---

struct Row {
  std::uint64_t bytes = 0;
  std::size_t count = 0;
  double time_us = 0;
  double base_time_us = 0;
  std::string check = "skipped";
};

}  // namespace

int bench_allreduce(int argc, char** argv) {
  CLI::App app{"libcohort allreduce against MPI_Allreduce (or an MPI user-op for fp16/bf16); run under cohort run"};
  std::string min_bytes = "8";
  std::string max_bytes = "256M";
  std::uint64_t factor = 2;
  std::string dtype_s = "fp32";
  std::string op_s = "sum";
  int iters = 20;
  int warmup = 5;
  std::string baseline = "mpi";
  bool do_check = false;
  bool json = false;
  app.add_option("-b,--minbytes", min_bytes, "smallest message, bytes (K, M, G suffixes)");
  app.add_option("-e,--maxbytes", max_bytes, "largest message, bytes (K, M, G suffixes)");
  app.add_option("-f,--stepfactor", factor, "multiply the size by this between steps")->check(CLI::Range(2, 1024));
  app.add_option("-d,--datatype", dtype_s, "element type")->check(CLI::IsMember({"fp32", "fp64", "fp16", "bf16"}));
  app.add_option("-o,--op", op_s, "reduction")->check(CLI::IsMember({"sum", "avg", "min", "max"}));
  app.add_option("-n,--iters", iters, "timed calls per block")->check(CLI::Range(1, 1000000));
  app.add_option("-w,--warmup", warmup, "untimed calls before the first block")->check(CLI::Range(0, 1000000));
  app.add_option("--baseline", baseline, "what to compare with")->check(CLI::IsMember({"mpi", "none"}));
  app.add_flag("--check", do_check, "verify Cohort's result bit for bit at every size");
  app.add_flag("--json", json, "one JSON object per size instead of the table");
  CLI11_PARSE(app, argc, argv);
  const std::uint64_t lo = parse_size(min_bytes);
  const std::uint64_t hi = parse_size(max_bytes);
  if (lo == 0 || hi < lo) {
    std::fprintf(stderr, "cohort-bench allreduce: -b %s -e %s is not a range of sizes such as -b 8 -e 256M\n",
                 min_bytes.c_str(), max_bytes.c_str());
    return 2;
  }
  const DType dtype = dtype_s == "fp64"   ? DType::kFloat64
                      : dtype_s == "fp16" ? DType::kFloat16
                      : dtype_s == "bf16" ? DType::kBFloat16
                                          : DType::kFloat32;
  const ReduceOp op = op_s == "avg"   ? ReduceOp::kAvg
                      : op_s == "min" ? ReduceOp::kMin
                      : op_s == "max" ? ReduceOp::kMax
                                      : ReduceOp::kSum;
  const std::size_t elem = cohort::dtype_size(dtype);

  auto ctx = cohort::Context::from_environment();
  if (!ctx.ok()) {
    std::fprintf(stderr, "cohort-bench allreduce: %s\n", ctx.status().to_string().c_str());
    return 2;
  }
  auto made = cohort::Communicator::create(*ctx);
  if (!made.ok()) {
    std::fprintf(stderr, "cohort-bench allreduce: rank %d: %s\n", ctx->rank, made.status().to_string().c_str());
    return 2;
  }
  std::unique_ptr<cohort::Communicator> comm = std::move(made).value();
  int mpi_ready = 0;
  MPI_Initialized(&mpi_ready);
  if (!mpi_ready) {
    std::fprintf(stderr, "cohort-bench allreduce needs an MPI launch: run it under `cohort run -n N`\n");
    return 2;
  }
  const int n = comm->size();

  MPI_Datatype base_type = dtype == DType::kFloat32 ? MPI_FLOAT : dtype == DType::kFloat64 ? MPI_DOUBLE : MPI_UINT16_T;
  MPI_Op base_op = op == ReduceOp::kMin ? MPI_MIN : op == ReduceOp::kMax ? MPI_MAX : MPI_SUM;
  MPI_Op user = MPI_OP_NULL;
  if (dtype == DType::kBFloat16 || dtype == DType::kFloat16) {
    MPI_Op_create(dtype == DType::kBFloat16 ? user_fn<Bf16>(op) : user_fn<Fp16>(op), 1, &user);
    base_op = user;
  }
  const bool with_baseline = baseline == "mpi";

  std::vector<Row> rows;
  bool all_ok = true;
  for (std::uint64_t bytes = lo; bytes <= hi; bytes *= factor) {
    Row row;
    row.count = static_cast<std::size_t>(bytes / elem);
    row.bytes = row.count * elem;
    std::vector<unsigned char> in(row.bytes), out(row.bytes), base_out(row.bytes);
    for (std::size_t i = 0; i < row.count; ++i)
      store(in.data(), i, dtype, input(comm->rank(), i));
    const cohort::Buffer bin{in.data(), row.count, dtype, cohort::Device::kHost};
    const cohort::Buffer bout{out.data(), row.count, dtype, cohort::Device::kHost};
    cohort::Status failure;
    auto cohort_call = [&] {
      cohort::Status s = comm->allreduce(bin, bout, op);
      if (!s.ok() && failure.ok()) failure = s;
    };
    auto base_call = [&] {
      MPI_Allreduce(in.data(), base_out.data(), static_cast<int>(row.count), base_type, base_op, MPI_COMM_WORLD);
      if (op == ReduceOp::kAvg) scale(base_out.data(), row.count, dtype, n);
    };
    for (int i = 0; i < warmup; ++i) {
      cohort_call();
      if (with_baseline) base_call();
    }
    std::vector<double> t, tb;
    for (int r = 0; r < kRounds; ++r) {
      t.push_back(time_block(cohort_call, iters));
      if (with_baseline) tb.push_back(time_block(base_call, iters));
    }
    if (!failure.ok()) {
      std::fprintf(stderr, "cohort-bench allreduce: rank %d: %s\n", comm->rank(), failure.to_string().c_str());
      comm->abort(1);
    }
    row.time_us = median(t) * 1e6;
    row.base_time_us = with_baseline ? median(tb) * 1e6 : 0;
    if (do_check) {
      int ok = check(out.data(), row.count, dtype, op, n) ? 1 : 0;
      MPI_Allreduce(MPI_IN_PLACE, &ok, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
      row.check = ok ? "ok" : "FAIL";
      all_ok = all_ok && ok;
    }
    rows.push_back(row);
    if (bytes > hi / factor) break;  // the next step would pass -e (or overflow)
  }
  if (user != MPI_OP_NULL) MPI_Op_free(&user);

  if (comm->rank() == 0) {
    const double bus = 2.0 * (n - 1) / n;
    if (!json) {
      std::printf("# allreduce %s %s, %d ranks, %d blocks of %d calls (median), out of place, baseline %s\n",
                  dtype_s.c_str(), op_s.c_str(), n, kRounds, iters,
                  !with_baseline                                         ? "none"
                  : dtype == DType::kFloat32 || dtype == DType::kFloat64 ? "MPI_Allreduce"
                                                                         : "MPI_Allreduce with a scalar user op");
      std::printf("%12s %12s %5s %12s %10s %10s %12s %10s %7s %6s\n", "size", "count", "type", "time_us", "algbw_GB/s",
                  "busbw_GB/s", "base_time_us", "base_busbw", "ratio", "check");
    }
    for (const Row& r : rows) {
      const double algbw = static_cast<double>(r.bytes) / (r.time_us * 1e-6) / 1e9;
      const double base_algbw = with_baseline ? static_cast<double>(r.bytes) / (r.base_time_us * 1e-6) / 1e9 : 0;
      const double ratio = with_baseline ? r.base_time_us / r.time_us : 0;
      if (json) {
        std::printf(
            "{\"collective\":\"allreduce\",\"dtype\":\"%s\",\"op\":\"%s\",\"ranks\":%d,\"bytes\":%llu,\"count\":%zu,"
            "\"time_us\":%.2f,\"algbw_gbps\":%.4f,\"busbw_gbps\":%.4f,\"baseline\":\"%s\",\"baseline_time_us\":%.2f,"
            "\"baseline_busbw_gbps\":%.4f,\"ratio\":%.3f,\"check\":\"%s\"}\n",
            dtype_s.c_str(), op_s.c_str(), n, static_cast<unsigned long long>(r.bytes), r.count, r.time_us, algbw,
            algbw * bus, baseline.c_str(), r.base_time_us, base_algbw * bus, ratio, r.check.c_str());
      } else {
        std::printf("%12llu %12zu %5s %12.2f %10.3f %10.3f %12.2f %10.3f %7.3f %6s\n",
                    static_cast<unsigned long long>(r.bytes), r.count, dtype_s.c_str(), r.time_us, algbw, algbw * bus,
                    r.base_time_us, base_algbw * bus, ratio, r.check.c_str());
      }
    }
    std::fflush(stdout);
  }
  return all_ok ? 0 : 1;
}
