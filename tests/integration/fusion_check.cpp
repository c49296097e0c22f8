// A job that checks FusionBuffer on every rank: many tensors of varied sizes (0 elements, a few,
// thousands, one above the threshold) fused through small buckets must come out bit for bit as
// separate Communicator::allreduce calls leave them. Run it under `cohort run -n N`; rank 0 prints
// "fusion check passed: K cases on N ranks".
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "cohort/collectives.hpp"
#include "cohort/context.hpp"
#include "cohort/fusion.hpp"

namespace {

using cohort::Buffer;
using cohort::DType;
using cohort::FusionBuffer;
using cohort::ReduceOp;

int g_failures = 0;
int g_cases = 0;

void fail(const cohort::Context& ctx, const std::string& what) {
  ++g_failures;
  std::fprintf(stderr, "rank %d: FAIL %s\n", ctx.rank, what.c_str());
}

// Writes the small integer v as one element of `dtype` (exact in every dtype: |v| < 256).
void store(unsigned char* data, std::size_t i, DType dtype, int v) {
  switch (dtype) {
    case DType::kFloat32: {
      const auto x = static_cast<float>(v);
      std::memcpy(data + i * 4, &x, 4);
      break;
    }
    case DType::kFloat64: {
      const auto x = static_cast<double>(v);
      std::memcpy(data + i * 8, &x, 8);
      break;
    }
    case DType::kBFloat16: {  // an integer below 2^8 is exact in bf16: truncating fp32 is exact
      const auto x = static_cast<float>(v);
      std::uint32_t u = 0;
      std::memcpy(&u, &x, 4);
      const auto h = static_cast<std::uint16_t>(u >> 16);
      std::memcpy(data + i * 2, &h, 2);
      break;
    }
    case DType::kInt32: {
      const auto x = static_cast<std::int32_t>(v);
      std::memcpy(data + i * 4, &x, 4);
      break;
    }
    default: {
      const auto x = static_cast<std::int64_t>(v);
      std::memcpy(data + i * 8, &x, 8);
      break;
    }
  }
}

// Rank r's element i of tensor t: partial sums over up to 4 ranks stay below 2^7 in magnitude.
int input(int rank, std::size_t t, std::size_t i) {
  return static_cast<int>((t * 7 + i) % 13) * ((rank % 4) + 1) - (rank % 4);
}

struct Tensor {
  DType dtype;
  std::size_t count;
  std::vector<unsigned char> fused, separate;  // the same input, reduced the two ways
  Buffer buffer(std::vector<unsigned char>& bytes) { return {bytes.data(), count, dtype, cohort::Device::kHost}; }
};

std::string label(const char* what, std::size_t threshold, ReduceOp op) {
  return std::string(what) + " threshold " + std::to_string(threshold) + " op " +
         std::string(cohort::reduce_op_name(op));
}

// Fuses `tensors` (dtype, count) and compares each with its separate allreduce; `min_calls` is the
// fewest allreduce calls the fused reduction must have made (buckets forced by the threshold).
void check_fused(const cohort::Context& ctx, cohort::Communicator& comm, const char* what,
                 const std::vector<std::pair<DType, std::size_t>>& shapes, std::size_t threshold, ReduceOp op,
                 std::uint64_t min_calls) {
  ++g_cases;
  const std::string name = label(what, threshold, op);
  std::vector<Tensor> tensors;
  for (std::size_t t = 0; t < shapes.size(); ++t) {
    auto [dtype, count] = shapes[t];
    Tensor x{dtype, count, std::vector<unsigned char>(count * cohort::dtype_size(dtype)), {}};
    for (std::size_t i = 0; i < count; ++i)
      store(x.fused.data(), i, dtype, input(ctx.rank, t, i));
    x.separate = x.fused;
    tensors.push_back(std::move(x));
  }
  FusionBuffer fusion(comm, {.threshold_bytes = threshold});
  for (std::size_t t = 0; t < tensors.size(); ++t) {
    cohort::Status s = fusion.add(tensors[t].buffer(tensors[t].fused));
    if (!s.ok()) return fail(ctx, name + ": add " + std::to_string(t) + ": " + s.to_string());
  }
  const std::uint64_t buckets = fusion.bucket_count();
  cohort::Status s = fusion.allreduce(op);
  if (!s.ok()) return fail(ctx, name + ": " + s.to_string());
  if (fusion.queued_tensors() != 0 || fusion.bucket_count() != 0) fail(ctx, name + ": the queue was not emptied");
  if (fusion.stats().allreduce_calls != buckets || buckets < min_calls) {
    fail(ctx, name + ": " + std::to_string(fusion.stats().allreduce_calls) + " allreduce calls for " +
                  std::to_string(buckets) + " buckets, want at least " + std::to_string(min_calls));
  }
  for (std::size_t t = 0; t < tensors.size(); ++t) {
    Tensor& x = tensors[t];
    if (x.count == 0) continue;
    s = comm.allreduce(x.buffer(x.separate), op);
    if (!s.ok()) return fail(ctx, name + ": separate allreduce of tensor " + std::to_string(t) + ": " + s.to_string());
    if (x.fused != x.separate) {
      return fail(ctx, name + ": tensor " + std::to_string(t) + " (" + std::to_string(x.count) + " × " +
                           std::string(cohort::dtype_name(x.dtype)) + ") differs from its separate allreduce");
    }
  }
}

// Counts 0..5000 elements; with a 16 KiB threshold the 5000-element tensors of 4- and 8-byte dtypes
// are reduced alone and the rest split into several buckets.
std::vector<std::pair<DType, std::size_t>> varied(DType dtype) {
  std::vector<std::pair<DType, std::size_t>> shapes;
  for (std::size_t count : {0, 1, 3, 7, 0, 100, 1000, 4099, 5000, 17, 1, 2048, 300, 0, 999, 64, 1500, 5})
    shapes.emplace_back(dtype, count);
  return shapes;
}

void check_dtype(const cohort::Context& ctx, cohort::Communicator& comm, DType dtype) {
  const bool is_float = dtype != DType::kInt32 && dtype != DType::kInt64;
  for (ReduceOp op : {ReduceOp::kSum, ReduceOp::kAvg, ReduceOp::kMax}) {
    if (op == ReduceOp::kAvg && !is_float) continue;
    const std::string name = std::string(cohort::dtype_name(dtype));
    check_fused(ctx, comm, name.c_str(), varied(dtype), std::size_t{16} << 10, op, 3);
    check_fused(ctx, comm, name.c_str(), varied(dtype), std::size_t{64} << 20, op, 1);  // one bucket
    check_fused(ctx, comm, name.c_str(), varied(dtype), 0, op, 15);                     // nothing fused
  }
}

void check_mixed(const cohort::Context& ctx, cohort::Communicator& comm) {
  std::vector<std::pair<DType, std::size_t>> shapes;
  const DType kinds[] = {DType::kFloat32, DType::kFloat64, DType::kBFloat16};
  for (std::size_t t = 0; t < 30; ++t)
    shapes.emplace_back(kinds[t % 3], (t * 37) % 700);
  check_fused(ctx, comm, "mixed fp32/fp64/bf16", shapes, std::size_t{4} << 10, ReduceOp::kSum, 3);
}

void check_errors(const cohort::Context& ctx, cohort::Communicator& comm) {
  ++g_cases;
  FusionBuffer fusion(comm);
  std::vector<float> f(8, 1.0f);
  Buffer device{f.data(), f.size(), DType::kFloat32, cohort::Device::kCuda};
  if (fusion.add(device).code() != cohort::Code::kUnimplemented) fail(ctx, "a device tensor was accepted");
  if (fusion.add(Buffer{nullptr, 4, DType::kFloat32}).code() != cohort::Code::kInvalidArgument)
    fail(ctx, "a null tensor of 4 elements was accepted");
  if (fusion.queued_tensors() != 0) fail(ctx, "a refused tensor was queued");
  std::vector<std::int32_t> ints(4, 1);
  if (!fusion.add(ints).ok() || !fusion.add(f).ok()) fail(ctx, "add of host tensors failed");
  if (fusion.allreduce(ReduceOp::kAvg).code() != cohort::Code::kInvalidArgument)
    fail(ctx, "avg of an int32 tensor was accepted");
  if (fusion.queued_tensors() != 0 || fusion.stats().allreduce_calls != 0)
    fail(ctx, "a refused avg communicated or kept its queue");
  if (!fusion.allreduce(ReduceOp::kSum).ok()) fail(ctx, "allreduce of an empty queue failed");
  // allreduce_many itself: one dtype per call, refused before any communication.
  const Buffer mixed[] = {Buffer::of(std::span(f)), Buffer::of(std::span(ints))};
  const cohort::Status s = comm.allreduce_many(mixed, ReduceOp::kSum);
  const cohort::Code want = comm.has_allreduce_many() ? cohort::Code::kInvalidArgument : cohort::Code::kUnimplemented;
  if (s.code() != want) fail(ctx, "allreduce_many of fp32 and int32 tensors: " + s.to_string());
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
  for (DType dtype : {DType::kFloat32, DType::kFloat64, DType::kBFloat16, DType::kInt32})
    check_dtype(*ctx, **comm, dtype);
  check_mixed(*ctx, **comm);
  check_errors(*ctx, **comm);
  std::int64_t failures = g_failures;
  if (!(*comm)->allreduce(std::span<std::int64_t>(&failures, 1), ReduceOp::kSum).ok()) return 1;
  if (ctx->rank == 0 && failures == 0) {
    std::printf("fusion check passed: %d cases on %d ranks\n", g_cases, ctx->world_size);
  }
  return failures == 0 ? 0 : 1;
}
