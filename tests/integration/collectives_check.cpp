// A job that checks libcohort's collectives on every rank against values it computes itself.
// Run it under `cohort run -n N`; it exits 0 when every case matches on this rank, and rank 0
// prints "collectives check passed: K cases on N ranks".
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <string>
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

// What rank r contributes at index i: distinct across ranks, exact in every dtype.
template <typename T>
T value(int rank, std::size_t i) {
  return static_cast<T>(static_cast<int>(i % 13) * (rank + 1) - rank);
}

template <typename T>
T expected(ReduceOp op, int world, std::size_t i) {
  T acc = value<T>(0, i);
  for (int r = 1; r < world; ++r) {
    T v = value<T>(r, i);
    if (op == ReduceOp::kSum || op == ReduceOp::kAvg) acc = static_cast<T>(acc + v);
    if (op == ReduceOp::kMin) acc = std::min(acc, v);
    if (op == ReduceOp::kMax) acc = std::max(acc, v);
  }
  if (op == ReduceOp::kAvg) acc = static_cast<T>(acc / static_cast<T>(world));
  return acc;
}

template <typename T>
void check_allreduce(const cohort::Context& ctx, cohort::Communicator& comm, ReduceOp op, std::size_t count,
                     bool in_place) {
  ++g_cases;
  std::vector<T> in(count);
  for (std::size_t i = 0; i < count; ++i)
    in[i] = value<T>(ctx.rank, i);
  std::vector<T> out(count, T{});
  cohort::Status s =
      in_place ? comm.allreduce(std::span<T>(in), op)
               : comm.allreduce(cohort::Buffer::of(std::span<T>(in)), cohort::Buffer::of(std::span<T>(out)), op);
  const std::string name = std::string(cohort::dtype_name(cohort::dtype_of<T>())) + " " +
                           std::string(cohort::reduce_op_name(op)) + " count " + std::to_string(count) +
                           (in_place ? " in place" : " out of place");
  if (!s.ok()) return fail(ctx, name + ": " + s.to_string());
  const std::vector<T>& got = in_place ? in : out;
  for (std::size_t i = 0; i < count; ++i) {
    T want = expected<T>(op, ctx.world_size, i);
    bool same = std::is_floating_point_v<T>
                    ? std::fabs(double(got[i]) - double(want)) <= 1e-6 * (1 + std::fabs(double(want)))
                    : got[i] == want;
    if (!same)
      return fail(ctx, name + ": element " + std::to_string(i) + " is " + std::to_string(got[i]) + ", want " +
                           std::to_string(want));
  }
  if (!in_place) {
    for (std::size_t i = 0; i < count; ++i) {
      if (in[i] != value<T>(ctx.rank, i)) return fail(ctx, name + ": the input buffer changed");
    }
  }
}

template <typename T>
void check_all_ops(const cohort::Context& ctx, cohort::Communicator& comm) {
  for (ReduceOp op : {ReduceOp::kSum, ReduceOp::kAvg, ReduceOp::kMin, ReduceOp::kMax}) {
    if (op == ReduceOp::kAvg && !std::is_floating_point_v<T>) continue;
    for (std::size_t count :
         {std::size_t{0}, std::size_t{1}, std::size_t{7}, std::size_t{4099}, std::size_t{1} << 18}) {
      check_allreduce<T>(ctx, comm, op, count, true);
      check_allreduce<T>(ctx, comm, op, count, false);
    }
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
  check_all_ops<float>(*ctx, **comm);
  check_all_ops<double>(*ctx, **comm);
  check_all_ops<std::int32_t>(*ctx, **comm);
  check_all_ops<std::int64_t>(*ctx, **comm);
  check_broadcast(*ctx, **comm);
  check_errors(*ctx, **comm);
  if (!(*comm)->barrier().ok()) fail(*ctx, "barrier");
  // Every rank learns whether any rank failed, so the job's status is the same everywhere.
  std::int64_t failures = g_failures;
  if (!(*comm)->allreduce(std::span<std::int64_t>(&failures, 1), ReduceOp::kSum).ok()) return 1;
  if (ctx->rank == 0 && failures == 0) {
    std::printf("collectives check passed: %d cases on %d ranks\n", g_cases, ctx->world_size);
  }
  return failures == 0 ? 0 : 1;
}
