// A job that checks libcohort's collectives on device buffers (NCCL), run under `cohort run -n N`.
//
// Where every rank has a GPU: allreduce (sum, avg, min, max; every dtype), broadcast, allgather,
// reduce_scatter and iallreduce on cudaMalloc'd buffers, against values computed here; host
// memory marked as device memory, and a host/device mix, are refused with InvalidArgument. Rank 0
// prints "device collectives check passed: K cases on N ranks".
//
// Where no rank has one (or libcohort was built without CUDA): every rank's first device call
// fails alike, FailedPrecondition naming the ranks without a GPU (Unimplemented without CUDA),
// and the host path still works. Rank 0 prints "device collectives refused as expected: ...".
// Exit 0 when this rank saw what it should, 1 otherwise.
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "cohort/collectives.hpp"
#include "cohort/context.hpp"
#include "cohort/gpu.hpp"

#ifdef COHORT_HAVE_CUDA
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime_api.h>
#endif

namespace {

using cohort::Buffer;
using cohort::Code;
using cohort::Device;
using cohort::DType;
using cohort::ReduceOp;

int g_failures = 0;
int g_cases = 0;

void check(const cohort::Context& ctx, bool ok, const std::string& what) {
  ++g_cases;
  if (ok) return;
  ++g_failures;
  std::fprintf(stderr, "rank %d: FAIL %s\n", ctx.rank, what.c_str());
}

int without_gpu(const cohort::Context& ctx, cohort::Communicator& comm, bool built_with_cuda) {
  std::vector<float> host(16, 1.0f);
  // A pointer that is never dereferenced: the call must fail before touching it.
  Buffer fake{host.data(), host.size(), DType::kFloat32, Device::kCuda};
  const cohort::Status s = comm.allreduce(fake, ReduceOp::kSum);
  const Code want = built_with_cuda ? Code::kFailedPrecondition : Code::kUnimplemented;
  const std::string words = built_with_cuda ? "need a GPU on every rank" : "built with CUDA and NCCL";
  check(ctx, s.code() == want && s.message().find(words) != std::string::npos,
        "the first device call: " + s.to_string());
  const cohort::Status again = comm.broadcast(fake, 0);
  check(ctx, again.code() == want, "a later device call gives the same answer: " + again.to_string());
  cohort::Status host_sum = comm.allreduce(host, ReduceOp::kSum);
  check(ctx, host_sum.ok() && host[0] == static_cast<float>(ctx.world_size), "the host path still works");
  if (ctx.rank == 0 && g_failures == 0)
    std::printf("device collectives refused as expected: %s\n", s.message().c_str());
  return g_failures == 0 ? 0 : 1;
}

#ifdef COHORT_HAVE_CUDA

// Small integers: exact in every dtype, and so are their sums, minima, maxima and halves.
double value(int rank, std::size_t i) {
  return static_cast<double>(rank + 1 + static_cast<int>(i % 7));
}

std::vector<unsigned char> encode(const std::vector<double>& v, DType t) {
  std::vector<unsigned char> out(v.size() * cohort::dtype_size(t));
  for (std::size_t i = 0; i < v.size(); ++i) {
    unsigned char* p = out.data() + i * cohort::dtype_size(t);
    switch (t) {
      case DType::kFloat32: {
        const float x = static_cast<float>(v[i]);
        std::memcpy(p, &x, 4);
        break;
      }
      case DType::kFloat64:
        std::memcpy(p, &v[i], 8);
        break;
      case DType::kFloat16: {
        const __half h = __float2half_rn(static_cast<float>(v[i]));
        std::memcpy(p, &h, 2);
        break;
      }
      case DType::kBFloat16: {
        const __nv_bfloat16 h = __float2bfloat16_rn(static_cast<float>(v[i]));
        std::memcpy(p, &h, 2);
        break;
      }
      case DType::kInt32: {
        const auto x = static_cast<std::int32_t>(v[i]);
        std::memcpy(p, &x, 4);
        break;
      }
      case DType::kInt64: {
        const auto x = static_cast<std::int64_t>(v[i]);
        std::memcpy(p, &x, 8);
        break;
      }
    }
  }
  return out;
}

struct DeviceBytes {
  void* p = nullptr;
  std::size_t n = 0;
  explicit DeviceBytes(std::size_t bytes) : n(bytes) { cudaMalloc(&p, bytes == 0 ? 1 : bytes); }
  ~DeviceBytes() { cudaFree(p); }
  DeviceBytes(const DeviceBytes&) = delete;
  DeviceBytes& operator=(const DeviceBytes&) = delete;
  void put(const std::vector<unsigned char>& b) { cudaMemcpy(p, b.data(), b.size(), cudaMemcpyHostToDevice); }
  std::vector<unsigned char> get() const {
    std::vector<unsigned char> b(n);
    cudaMemcpy(b.data(), p, n, cudaMemcpyDeviceToHost);
    return b;
  }
};

int with_gpu(const cohort::Context& ctx, cohort::Communicator& comm) {
  const int n = ctx.world_size;
  constexpr std::size_t kCount = 1000;
  const DType types[] = {DType::kFloat32,  DType::kFloat64, DType::kFloat16,
                         DType::kBFloat16, DType::kInt32,   DType::kInt64};
  for (DType t : types) {
    const bool floating = t != DType::kInt32 && t != DType::kInt64;
    for (ReduceOp op : {ReduceOp::kSum, ReduceOp::kAvg, ReduceOp::kMin, ReduceOp::kMax}) {
      if (op == ReduceOp::kAvg && !floating) continue;
      std::vector<double> mine(kCount), want(kCount);
      for (std::size_t i = 0; i < kCount; ++i) {
        mine[i] = value(ctx.rank, i);
        double acc = op == ReduceOp::kMin ? 1e300 : op == ReduceOp::kMax ? -1e300 : 0;
        for (int r = 0; r < n; ++r) {
          const double x = value(r, i);
          acc = op == ReduceOp::kMin ? std::min(acc, x) : op == ReduceOp::kMax ? std::max(acc, x) : acc + x;
        }
        want[i] = op == ReduceOp::kAvg ? acc / n : acc;
      }
      DeviceBytes d(kCount * cohort::dtype_size(t));
      d.put(encode(mine, t));
      const cohort::Status s = comm.allreduce(Buffer{d.p, kCount, t, Device::kCuda}, op);
      check(ctx, s.ok() && d.get() == encode(want, t),
            "allreduce " + std::string(cohort::reduce_op_name(op)) + " " + std::string(cohort::dtype_name(t)) + ": " +
                s.to_string());
    }
  }
  // broadcast from the last rank, allgather and reduce_scatter of fp32, iallreduce.
  std::vector<double> v(kCount), want(kCount);
  for (std::size_t i = 0; i < kCount; ++i)
    v[i] = value(ctx.rank, i);
  DeviceBytes b(kCount * 4);
  b.put(encode(v, DType::kFloat32));
  cohort::Status s = comm.broadcast(Buffer{b.p, kCount, DType::kFloat32, Device::kCuda}, n - 1);
  for (std::size_t i = 0; i < kCount; ++i)
    want[i] = value(n - 1, i);
  check(ctx, s.ok() && b.get() == encode(want, DType::kFloat32), "broadcast: " + s.to_string());

  DeviceBytes in(kCount * 4), out(kCount * 4 * static_cast<std::size_t>(n));
  in.put(encode(v, DType::kFloat32));
  s = comm.allgather(Buffer{in.p, kCount, DType::kFloat32, Device::kCuda},
                     Buffer{out.p, kCount * static_cast<std::size_t>(n), DType::kFloat32, Device::kCuda});
  std::vector<double> all;
  for (int r = 0; r < n; ++r)
    for (std::size_t i = 0; i < kCount; ++i)
      all.push_back(value(r, i));
  check(ctx, s.ok() && out.get() == encode(all, DType::kFloat32), "allgather: " + s.to_string());

  DeviceBytes rs_in(kCount * 4 * static_cast<std::size_t>(n)), rs_out(kCount * 4);
  std::vector<double> full(kCount * static_cast<std::size_t>(n)), block(kCount);
  for (std::size_t i = 0; i < full.size(); ++i)
    full[i] = value(ctx.rank, i);
  rs_in.put(encode(full, DType::kFloat32));
  s = comm.reduce_scatter(Buffer{rs_in.p, full.size(), DType::kFloat32, Device::kCuda},
                          Buffer{rs_out.p, kCount, DType::kFloat32, Device::kCuda}, ReduceOp::kSum);
  for (std::size_t i = 0; i < kCount; ++i) {
    const std::size_t at = static_cast<std::size_t>(ctx.rank) * kCount + i;
    block[i] = 0;
    for (int r = 0; r < n; ++r)
      block[i] += value(r, at);
  }
  check(ctx, s.ok() && rs_out.get() == encode(block, DType::kFloat32), "reduce_scatter: " + s.to_string());

  b.put(encode(v, DType::kFloat32));
  auto work = comm.iallreduce(Buffer{b.p, kCount, DType::kFloat32, Device::kCuda}, ReduceOp::kMax);
  s = work.ok() ? work->wait() : work.status();
  for (std::size_t i = 0; i < kCount; ++i)
    want[i] = value(n - 1, i);
  check(ctx, s.ok() && b.get() == encode(want, DType::kFloat32), "iallreduce max: " + s.to_string());

  // Refused before any communication, the same on every rank.
  std::vector<float> host(kCount, 1.0f);
  s = comm.allreduce(Buffer{host.data(), kCount, DType::kFloat32, Device::kCuda}, ReduceOp::kSum);
  check(ctx, s.code() == Code::kInvalidArgument && s.message().find("host memory") != std::string::npos,
        "host memory marked kCuda: " + s.to_string());
  s = comm.allreduce(Buffer{host.data(), kCount, DType::kFloat32, Device::kHost},
                     Buffer{b.p, kCount, DType::kFloat32, Device::kCuda}, ReduceOp::kSum);
  check(ctx, s.code() == Code::kInvalidArgument, "a host input with a device output: " + s.to_string());

  if (ctx.rank == 0 && g_failures == 0) {
    std::printf("device collectives check passed: %d cases on %d ranks\n", g_cases, n);
  }
  return g_failures == 0 ? 0 : 1;
}

#endif

}  // namespace

int main() {
  auto ctx = cohort::Context::from_environment();
  if (!ctx.ok()) {
    std::fprintf(stderr, "%s\n", ctx.status().to_string().c_str());
    return 2;
  }
  auto comm = cohort::Communicator::create(*ctx);
  if (!comm.ok()) {
    std::fprintf(stderr, "%s\n", comm.status().to_string().c_str());
    return 1;
  }
  const cohort::GpuInfo gpus = cohort::probe_gpus();
#ifdef COHORT_HAVE_CUDA
  if (gpus.device_count > 0) return with_gpu(*ctx, **comm);
#endif
  return without_gpu(*ctx, **comm, gpus.built_with_cuda);
}
