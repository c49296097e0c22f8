// A job that checks libcohort's collectives on every rank against values it computes itself.
// Run it under `cohort run -n N`; it exits 0 when every case matches on this rank, and rank 0
// prints "collectives check passed: K cases on N ranks".
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "cohort/collectives.hpp"
#include "cohort/context.hpp"

namespace {

using cohort::DType;
using cohort::ReduceOp;

int g_failures = 0;
int g_cases = 0;

void fail(const cohort::Context& ctx, const std::string& what) {
  ++g_failures;
  std::fprintf(stderr, "rank %d: FAIL %s\n", ctx.rank, what.c_str());
}

// --- Element types: storage, the type reductions compute in, and exact conversions. ---
//
// fp16/bf16 are stored as their bit patterns in std::uint16_t. The conversions here are the test's
// own (not kernels'): round to nearest even through double arithmetic, for the normal range and
// zero that the values below stay in.

// x rounded to `bits` significant bits, ties to even (the default rounding mode of nearbyint).
double round_significand(double x, int bits) {
  if (x == 0) return x;
  int e = 0;
  std::frexp(x, &e);  // |x| in [2^(e-1), 2^e)
  const double ulp = std::ldexp(1.0, e - bits);
  return std::nearbyint(x / ulp) * ulp;
}

std::uint16_t to_bf16(float f) {
  const float r = static_cast<float>(round_significand(f, 8));
  std::uint32_t u = 0;
  std::memcpy(&u, &r, sizeof u);
  return static_cast<std::uint16_t>(u >> 16);
}
float from_bf16(std::uint16_t h) {
  const std::uint32_t u = static_cast<std::uint32_t>(h) << 16;
  float f = 0;
  std::memcpy(&f, &u, sizeof f);
  return f;
}
// Normal fp16 values and zero only (what these checks produce).
std::uint16_t to_fp16(float f) {
  const double r = round_significand(f, 11);
  if (r == 0) return std::signbit(r) ? 0x8000 : 0;
  int e = 0;
  const double m = std::frexp(std::fabs(r), &e);  // r = m × 2^e, m in [0.5, 1)
  const auto mantissa = static_cast<std::uint32_t>(std::ldexp(m, 11)) & 0x3ffu;
  const auto exponent = static_cast<std::uint32_t>(e - 1 + 15);
  return static_cast<std::uint16_t>((r < 0 ? 0x8000u : 0u) | (exponent << 10) | mantissa);
}
float from_fp16(std::uint16_t h) {
  const int exponent = (h >> 10) & 0x1f;
  const int mantissa = h & 0x3ff;
  const double v = exponent == 0 ? std::ldexp(mantissa, -24) : std::ldexp(1024 + mantissa, exponent - 25);
  return static_cast<float>((h & 0x8000) != 0 ? -v : v);
}

template <DType D>
struct Elem;
template <>
struct Elem<DType::kFloat32> {
  using S = float;
  using Math = float;
  static constexpr bool kExact = false;
  static Math widen(S x) { return x; }
  static S narrow(Math x) { return x; }
};
template <>
struct Elem<DType::kFloat64> {
  using S = double;
  using Math = double;
  static constexpr bool kExact = false;
  static Math widen(S x) { return x; }
  static S narrow(Math x) { return x; }
};
template <>
struct Elem<DType::kInt32> {
  using S = std::int32_t;
  using Math = std::int32_t;
  static constexpr bool kExact = true;
  static Math widen(S x) { return x; }
  static S narrow(Math x) { return x; }
};
template <>
struct Elem<DType::kInt64> {
  using S = std::int64_t;
  using Math = std::int64_t;
  static constexpr bool kExact = true;
  static Math widen(S x) { return x; }
  static S narrow(Math x) { return x; }
};
template <>
struct Elem<DType::kBFloat16> {
  using S = std::uint16_t;
  using Math = float;
  static constexpr bool kExact = true;
  static Math widen(S x) { return from_bf16(x); }
  static S narrow(Math x) { return to_bf16(x); }
};
template <>
struct Elem<DType::kFloat16> {
  using S = std::uint16_t;
  using Math = float;
  static constexpr bool kExact = true;
  static Math widen(S x) { return from_fp16(x); }
  static S narrow(Math x) { return to_fp16(x); }
};

// What rank r contributes at index i: distinct across ranks, small integers. Every partial sum of
// up to 4 ranks stays an integer below 256 in magnitude, exact in every dtype (bf16 has 8
// significant bits), so the result is the same whatever order MPI combines the ranks in, and a
// bit-exact comparison of fp16/bf16 is fair.
template <DType D>
typename Elem<D>::S value(int rank, std::size_t i) {
  using E = Elem<D>;
  return E::narrow(static_cast<typename E::Math>(static_cast<int>(i % 13) * (rank + 1) - rank));
}

// The reduction in rank order in the compute type, rounded back to the dtype after every hop (one
// round to nearest even per hop for fp16/bf16); avg multiplies the sum by 1/world rounded to the
// compute type, as Cohort defines it.
template <DType D>
typename Elem<D>::S expected(ReduceOp op, int world, std::size_t i) {
  using E = Elem<D>;
  using M = typename E::Math;
  typename E::S acc = value<D>(0, i);
  for (int r = 1; r < world; ++r) {
    const M a = E::widen(acc);
    const M b = E::widen(value<D>(r, i));
    if (op == ReduceOp::kSum || op == ReduceOp::kAvg) acc = E::narrow(static_cast<M>(a + b));
    if (op == ReduceOp::kMin) acc = E::narrow(std::min(a, b));
    if (op == ReduceOp::kMax) acc = E::narrow(std::max(a, b));
  }
  if (op == ReduceOp::kAvg) acc = E::narrow(static_cast<M>(E::widen(acc) * (M(1) / static_cast<M>(world))));
  return acc;
}

template <DType D>
bool same(typename Elem<D>::S got, typename Elem<D>::S want) {
  if constexpr (Elem<D>::kExact) {
    return std::memcmp(&got, &want, sizeof got) == 0;
  } else {
    return std::fabs(double(got) - double(want)) <= 1e-6 * (1 + std::fabs(double(want)));
  }
}

template <DType D>
std::string show(typename Elem<D>::S x) {
  std::string s = std::to_string(static_cast<double>(Elem<D>::widen(x)));
  if constexpr (sizeof x == 2) s += " (bits 0x" + std::to_string(x) + ")";
  return s;
}

template <DType D>
cohort::Buffer buffer(std::vector<typename Elem<D>::S>& v, std::size_t offset = 0, std::size_t count = SIZE_MAX) {
  return {v.data() + offset, count == SIZE_MAX ? v.size() - offset : count, D, cohort::Device::kHost};
}

template <DType D>
void check_allreduce(const cohort::Context& ctx, cohort::Communicator& comm, ReduceOp op, std::size_t count,
                     bool in_place) {
  using S = typename Elem<D>::S;
  ++g_cases;
  std::vector<S> in(count);
  for (std::size_t i = 0; i < count; ++i)
    in[i] = value<D>(ctx.rank, i);
  std::vector<S> out(count, S{});
  cohort::Status s = in_place ? comm.allreduce(buffer<D>(in), op) : comm.allreduce(buffer<D>(in), buffer<D>(out), op);
  const std::string name = "allreduce " + std::string(cohort::dtype_name(D)) + " " +
                           std::string(cohort::reduce_op_name(op)) + " count " + std::to_string(count) +
                           (in_place ? " in place" : " out of place");
  if (!s.ok()) return fail(ctx, name + ": " + s.to_string());
  const std::vector<S>& got = in_place ? in : out;
  for (std::size_t i = 0; i < count; ++i) {
    const S want = expected<D>(op, ctx.world_size, i);
    if (!same<D>(got[i], want))
      return fail(ctx, name + ": element " + std::to_string(i) + " is " + show<D>(got[i]) + ", want " + show<D>(want));
  }
  if (!in_place) {
    for (std::size_t i = 0; i < count; ++i) {
      if (!same<D>(in[i], value<D>(ctx.rank, i))) return fail(ctx, name + ": the input buffer changed");
    }
  }
}

// allgather of `count` elements per rank; in place: this rank's block of the output is the input.
template <DType D>
void check_allgather(const cohort::Context& ctx, cohort::Communicator& comm, std::size_t count, bool in_place) {
  using S = typename Elem<D>::S;
  ++g_cases;
  const auto world = static_cast<std::size_t>(ctx.world_size);
  const auto rank = static_cast<std::size_t>(ctx.rank);
  std::vector<S> in(count);
  std::vector<S> out(count * world, Elem<D>::narrow(-100));  // not a value any rank sends
  for (std::size_t i = 0; i < count; ++i) {
    in[i] = value<D>(ctx.rank, i);
    if (in_place) out[rank * count + i] = in[i];
  }
  const std::string name = "allgather " + std::string(cohort::dtype_name(D)) + " count " + std::to_string(count) +
                           (in_place ? " in place" : " out of place");
  cohort::Status s = comm.allgather(in_place ? buffer<D>(out, rank * count, count) : buffer<D>(in), buffer<D>(out));
  if (!s.ok()) return fail(ctx, name + ": " + s.to_string());
  for (std::size_t r = 0; r < world; ++r) {
    for (std::size_t i = 0; i < count; ++i) {
      if (!same<D>(out[r * count + i], value<D>(static_cast<int>(r), i)))
        return fail(ctx, name + ": element " + std::to_string(i) + " of rank " + std::to_string(r) + " is " +
                             show<D>(out[r * count + i]));
    }
  }
}

// reduce_scatter to `count` elements per rank; rank r's input at j is value(r, j), so block b of
// the reduction at i is expected(j = b × count + i).
template <DType D>
void check_reduce_scatter(const cohort::Context& ctx, cohort::Communicator& comm, ReduceOp op, std::size_t count,
                          bool in_place) {
  using S = typename Elem<D>::S;
  ++g_cases;
  const auto world = static_cast<std::size_t>(ctx.world_size);
  const auto rank = static_cast<std::size_t>(ctx.rank);
  std::vector<S> in(count * world);
  for (std::size_t j = 0; j < in.size(); ++j)
    in[j] = value<D>(ctx.rank, j);
  std::vector<S> out(count, S{});
  const std::string name = "reduce_scatter " + std::string(cohort::dtype_name(D)) + " " +
                           std::string(cohort::reduce_op_name(op)) + " count " + std::to_string(count) +
                           (in_place ? " in place" : " out of place");
  cohort::Status s =
      comm.reduce_scatter(buffer<D>(in), in_place ? buffer<D>(in, rank * count, count) : buffer<D>(out), op);
  if (!s.ok()) return fail(ctx, name + ": " + s.to_string());
  const S* got = in_place ? in.data() + rank * count : out.data();
  for (std::size_t i = 0; i < count; ++i) {
    const S want = expected<D>(op, ctx.world_size, rank * count + i);
    if (!same<D>(got[i], want))
      return fail(ctx, name + ": element " + std::to_string(i) + " is " + show<D>(got[i]) + ", want " + show<D>(want));
  }
}

template <DType D>
void check_dtype(const cohort::Context& ctx, cohort::Communicator& comm) {
  constexpr bool is_float = D != DType::kInt32 && D != DType::kInt64;
  for (ReduceOp op : {ReduceOp::kSum, ReduceOp::kAvg, ReduceOp::kMin, ReduceOp::kMax}) {
    if (op == ReduceOp::kAvg && !is_float) continue;
    for (std::size_t count :
         {std::size_t{0}, std::size_t{1}, std::size_t{7}, std::size_t{4099}, std::size_t{1} << 18}) {
      check_allreduce<D>(ctx, comm, op, count, true);
      check_allreduce<D>(ctx, comm, op, count, false);
    }
    for (std::size_t count : {std::size_t{0}, std::size_t{1}, std::size_t{1031}, std::size_t{1} << 16}) {
      check_reduce_scatter<D>(ctx, comm, op, count, true);
      check_reduce_scatter<D>(ctx, comm, op, count, false);
    }
  }
  for (std::size_t count : {std::size_t{0}, std::size_t{1}, std::size_t{1031}, std::size_t{1} << 16}) {
    check_allgather<D>(ctx, comm, count, true);
    check_allgather<D>(ctx, comm, count, false);
  }
}

void check_broadcast(const cohort::Context& ctx, cohort::Communicator& comm) {
  for (int root = 0; root < ctx.world_size; ++root) {
    ++g_cases;
    std::vector<double> v(1000, ctx.rank == root ? 42.5 + root : -1.0);
    cohort::Status s = comm.broadcast(std::span<double>(v), root);
    if (!s.ok()) return fail(ctx, "broadcast from " + std::to_string(root) + ": " + s.to_string());
    for (double x : v) {
      if (x != 42.5 + root)
        return fail(ctx, "broadcast from " + std::to_string(root) + " delivered " + std::to_string(x));
    }
  }
}

void check_errors(const cohort::Context& ctx, cohort::Communicator& comm) {
  ++g_cases;
  std::vector<std::int32_t> ints(4, 1);
  if (comm.allreduce(std::span<std::int32_t>(ints), ReduceOp::kAvg).code() != cohort::Code::kInvalidArgument) {
    fail(ctx, "avg of int32 was accepted");
  }
  std::vector<double> a(3), b(4);
  if (comm.allreduce(cohort::Buffer::of(std::span<double>(a)), cohort::Buffer::of(std::span<double>(b)), ReduceOp::kSum)
          .ok()) {
    fail(ctx, "allreduce with mismatched counts was accepted");
  }
  if (comm.broadcast(std::span<double>(a), ctx.world_size).ok())
    fail(ctx, "broadcast from a rank outside the world was accepted");

  const auto world = static_cast<std::size_t>(ctx.world_size);
  std::vector<double> g(3 * world + 1);
  std::vector<float> f(3 * world);
  auto dbl = [](std::vector<double>& v, std::size_t offset, std::size_t count) {
    return cohort::Buffer{v.data() + offset, count, DType::kFloat64, cohort::Device::kHost};
  };
  if (comm.allgather(dbl(a, 0, 3), dbl(g, 0, g.size())).code() != cohort::Code::kInvalidArgument)
    fail(ctx, "allgather into an output of the wrong count was accepted");
  if (comm.allgather(dbl(a, 0, 3), cohort::Buffer::of(std::span<float>(f))).code() != cohort::Code::kInvalidArgument)
    fail(ctx, "allgather into an output of another dtype was accepted");
  if (world > 1 && comm.allgather(dbl(g, 1, 3), dbl(g, 0, 3 * world)).code() != cohort::Code::kInvalidArgument)
    fail(ctx, "allgather with an input overlapping its output off its block was accepted");
  if (comm.reduce_scatter(dbl(g, 0, g.size()), dbl(a, 0, 3), ReduceOp::kSum).code() != cohort::Code::kInvalidArgument)
    fail(ctx, "reduce_scatter from an input of the wrong count was accepted");
  if (comm.reduce_scatter(cohort::Buffer::of(std::span<float>(f)), dbl(a, 0, 3), ReduceOp::kSum).code() !=
      cohort::Code::kInvalidArgument)
    fail(ctx, "reduce_scatter between dtypes was accepted");
  std::vector<std::int64_t> longs(world), one(1);
  if (comm.reduce_scatter(cohort::Buffer::of(std::span<std::int64_t>(longs)),
                          cohort::Buffer::of(std::span<std::int64_t>(one)), ReduceOp::kAvg)
          .code() != cohort::Code::kInvalidArgument)
    fail(ctx, "reduce_scatter avg of int64 was accepted");
}

// --- Asynchronous calls. ---

// iallreduce of `count` elements, in place or not, checked against the same reference as allreduce.
template <DType D>
void check_iallreduce(const cohort::Context& ctx, cohort::Communicator& comm, ReduceOp op, std::size_t count,
                      bool in_place) {
  using S = typename Elem<D>::S;
  ++g_cases;
  std::vector<S> in(count);
  for (std::size_t i = 0; i < count; ++i)
    in[i] = value<D>(ctx.rank, i);
  std::vector<S> out(count, S{});
  const std::string name = "iallreduce " + std::string(cohort::dtype_name(D)) + " " +
                           std::string(cohort::reduce_op_name(op)) + " count " + std::to_string(count) +
                           (in_place ? " in place" : " out of place");
  auto work = in_place ? comm.iallreduce(buffer<D>(in), op) : comm.iallreduce(buffer<D>(in), buffer<D>(out), op);
  if (!work.ok()) return fail(ctx, name + ": " + work.status().to_string());
  cohort::Status s = work->wait(std::chrono::seconds(60));
  if (!s.ok()) return fail(ctx, name + ": " + s.to_string());
  if (!work->done()) return fail(ctx, name + ": not done() after wait() returned OK");
  if (!work->wait(std::chrono::milliseconds(0)).ok()) return fail(ctx, name + ": a second wait() is not OK");
  const std::vector<S>& got = in_place ? in : out;
  for (std::size_t i = 0; i < count; ++i) {
    const S want = expected<D>(op, ctx.world_size, i);
    if (!same<D>(got[i], want))
      return fail(ctx, name + ": element " + std::to_string(i) + " is " + show<D>(got[i]) + ", want " + show<D>(want));
  }
}

// Several operations outstanding at once (every rank starts them in the same order), waited on in
// reverse order; then done() polled until it turns true.
void check_async_outstanding(const cohort::Context& ctx, cohort::Communicator& comm) {
  ++g_cases;
  const auto world = static_cast<std::size_t>(ctx.world_size);
  const auto rank = static_cast<std::size_t>(ctx.rank);
  const std::size_t n = 5000;
  std::vector<float> sum(n);
  std::vector<std::uint16_t> avg(n);
  for (std::size_t i = 0; i < n; ++i) {
    sum[i] = value<DType::kFloat32>(ctx.rank, i);
    avg[i] = value<DType::kBFloat16>(ctx.rank, i);
  }
  std::vector<double> bcast(n, ctx.rank == 0 ? 7.25 : -1.0);
  std::vector<std::int64_t> mine(3, static_cast<std::int64_t>(rank) * 10);
  std::vector<std::int64_t> gathered(3 * world, -1);

  std::vector<cohort::Work> works;
  auto start = [&](cohort::Result<cohort::Work> w, const char* what) {
    if (!w.ok()) return fail(ctx, std::string("outstanding ") + what + ": " + w.status().to_string());
    works.push_back(std::move(w).value());
  };
  start(comm.iallreduce(std::span<float>(sum), ReduceOp::kSum), "iallreduce fp32 sum");
  start(comm.iallreduce(buffer<DType::kBFloat16>(avg), ReduceOp::kAvg), "iallreduce bf16 avg");
  start(comm.ibroadcast(std::span<double>(bcast), 0), "ibroadcast");
  start(comm.iallgather(cohort::Buffer::of(std::span<std::int64_t>(mine)),
                        cohort::Buffer::of(std::span<std::int64_t>(gathered))),
        "iallgather");
  if (works.size() != 4) return;
  for (auto it = works.rbegin(); it != works.rend(); ++it) {
    cohort::Status s = it->wait(std::chrono::seconds(60));
    if (!s.ok()) return fail(ctx, "outstanding, waited in reverse: " + s.to_string());
  }
  for (std::size_t i = 0; i < n; ++i) {
    if (!same<DType::kFloat32>(sum[i], expected<DType::kFloat32>(ReduceOp::kSum, ctx.world_size, i)))
      return fail(ctx, "outstanding iallreduce fp32 sum: element " + std::to_string(i) + " is " +
                           show<DType::kFloat32>(sum[i]));
    if (!same<DType::kBFloat16>(avg[i], expected<DType::kBFloat16>(ReduceOp::kAvg, ctx.world_size, i)))
      return fail(ctx, "outstanding iallreduce bf16 avg: element " + std::to_string(i) + " is " +
                           show<DType::kBFloat16>(avg[i]));
    if (bcast[i] != 7.25) return fail(ctx, "outstanding ibroadcast delivered " + std::to_string(bcast[i]));
  }
  for (std::size_t j = 0; j < gathered.size(); ++j) {
    if (gathered[j] != static_cast<std::int64_t>(j / 3) * 10)
      return fail(ctx, "outstanding iallgather: element " + std::to_string(j) + " is " + std::to_string(gathered[j]));
  }

  // done() turns true by itself (each call polls MPI, which moves the operation along).
  ++g_cases;
  auto w = comm.iallreduce(std::span<float>(sum), ReduceOp::kMax);
  if (!w.ok()) return fail(ctx, "done(): " + w.status().to_string());
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (!w->done()) {
    if (std::chrono::steady_clock::now() > deadline) return fail(ctx, "done() still false after 30 s");
    std::this_thread::sleep_for(std::chrono::microseconds(50));
  }
  cohort::Status s = w->wait(std::chrono::milliseconds(0));
  if (!s.ok()) return fail(ctx, "wait(0) after done(): " + s.to_string());

  // Moved-from and empty handles.
  ++g_cases;
  cohort::Work moved = std::move(*w);
  if (!w->empty() || !w->done() || w->wait().code() != cohort::Code::kFailedPrecondition)
    fail(ctx, "a moved-from Work is not empty, done, and FailedPrecondition on wait()");
  if (!moved.wait(std::chrono::milliseconds(0)).ok()) fail(ctx, "a moved-to Work lost its completed status");
  if (comm.ibroadcast(std::span<double>(bcast), ctx.world_size).status().code() != cohort::Code::kInvalidArgument)
    fail(ctx, "ibroadcast from a rank outside the world was accepted");
  std::vector<std::int32_t> ints(4, 1);
  if (comm.iallreduce(std::span<std::int32_t>(ints), ReduceOp::kAvg).status().code() != cohort::Code::kInvalidArgument)
    fail(ctx, "iallreduce avg of int32 was accepted");
}

// Rank 1 joins an iallreduce ~300 ms late: rank 0's wait with a 50 ms timeout is TimedOut, and a
// second wait on the same handle completes it.
void check_async_timeout(const cohort::Context& ctx, cohort::Communicator& comm) {
  if (ctx.world_size < 2) return;
  ++g_cases;
  if (!comm.barrier().ok()) return fail(ctx, "timeout case: barrier");
  std::vector<float> v(1000);
  for (std::size_t i = 0; i < v.size(); ++i)
    v[i] = value<DType::kFloat32>(ctx.rank, i);
  if (ctx.rank == 1) std::this_thread::sleep_for(std::chrono::milliseconds(300));
  auto work = comm.iallreduce(std::span<float>(v), ReduceOp::kSum);
  if (!work.ok()) return fail(ctx, "timeout case: " + work.status().to_string());
  if (ctx.rank == 0) {
    const auto t0 = std::chrono::steady_clock::now();
    cohort::Status s = work->wait(std::chrono::milliseconds(50));
    const auto waited = std::chrono::steady_clock::now() - t0;
    if (s.code() != cohort::Code::kTimedOut) {
      fail(ctx, "wait(50 ms) on an iallreduce that rank 1 joins 300 ms late: want TimedOut, got " + s.to_string());
    } else {
      const std::string& m = s.message();
      if (m.find("iallreduce sum of 1000 fp32") == std::string::npos || m.find("50 ms") == std::string::npos)
        fail(ctx, "the TimedOut message does not name the operation, its size and the timeout: " + m);
    }
    if (waited < std::chrono::milliseconds(50) || waited > std::chrono::milliseconds(250))
      fail(ctx, "wait(50 ms) returned after " +
                    std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(waited).count()) + " ms");
  }
  cohort::Status s = work->wait();
  if (!s.ok()) return fail(ctx, "wait() after a timeout: " + s.to_string());
  for (std::size_t i = 0; i < v.size(); ++i) {
    if (!same<DType::kFloat32>(v[i], expected<DType::kFloat32>(ReduceOp::kSum, ctx.world_size, i)))
      return fail(ctx, "wait() after a timeout: element " + std::to_string(i) + " is " + show<DType::kFloat32>(v[i]));
  }
}

void check_async(const cohort::Context& ctx, cohort::Communicator& comm) {
  for (ReduceOp op : {ReduceOp::kSum, ReduceOp::kAvg}) {
    for (std::size_t count : {std::size_t{0}, std::size_t{1}, std::size_t{4099}, std::size_t{1} << 18}) {
      for (bool in_place : {true, false}) {
        check_iallreduce<DType::kFloat32>(ctx, comm, op, count, in_place);
        check_iallreduce<DType::kBFloat16>(ctx, comm, op, count, in_place);
      }
    }
  }
  check_iallreduce<DType::kFloat16>(ctx, comm, ReduceOp::kAvg, 4099, false);
  check_async_outstanding(ctx, comm);
  check_async_timeout(ctx, comm);
}

}  // namespace

int main() {
  auto ctx = cohort::Context::from_environment();
  if (!ctx.ok()) {
    std::fprintf(stderr, "context: %s\n", ctx.status().to_string().c_str());
    return 2;
  }
  auto comm = cohort::Communicator::create(*ctx);
  if (!comm.ok()) {
    std::fprintf(stderr, "rank %d: communicator: %s\n", ctx->rank, comm.status().to_string().c_str());
    return 2;
  }
  check_dtype<DType::kFloat32>(*ctx, **comm);
  check_dtype<DType::kFloat64>(*ctx, **comm);
  check_dtype<DType::kInt32>(*ctx, **comm);
  check_dtype<DType::kInt64>(*ctx, **comm);
  check_dtype<DType::kFloat16>(*ctx, **comm);
  check_dtype<DType::kBFloat16>(*ctx, **comm);
  check_broadcast(*ctx, **comm);
  check_errors(*ctx, **comm);
  check_async(*ctx, **comm);
  if (!(*comm)->barrier().ok()) fail(*ctx, "barrier");
  // Every rank learns whether any rank failed, so the job's status is the same everywhere.
  std::int64_t failures = g_failures;
  if (!(*comm)->allreduce(std::span<std::int64_t>(&failures, 1), ReduceOp::kSum).ok()) return 1;
  if (ctx->rank == 0 && failures == 0) {
    std::printf("collectives check passed: %d cases on %d ranks\n", g_cases, ctx->world_size);
  }
  return failures == 0 ? 0 : 1;
}
