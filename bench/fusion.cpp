// cohort-bench fusion: what tensor fusion buys. K tensors of s bytes each are reduced three ways
// in the same run under `cohort run -n N`:
//   separate   K Communicator::allreduce calls, one per tensor (in place);
//   fused      the K tensors through a FusionBuffer: add × K, one allreduce_many (the MPI backend
//              moves them in place, no copies);
//   packed     the same with FusionOptions::pack: pack, one allreduce, unpack (what other
//              backends do, and what fusion was before allreduce_many);
//   one large  one allreduce of K × s bytes (the floor fusion can reach: no per-tensor work).
// For each: one warm-up block, then `rounds` blocks of `iters` steps alternating the three, so drift
// in the machine's load falls on all; each block starts after a barrier and its time is the slowest
// rank's (MPI_Wtime, max over ranks); the median block is reported, per step (all K tensors).
// pack+unpack is the fused path's local copying alone (kernels::pack then kernels::unpack of the K
// tensors, no communication), to show how much of `fused` is copies.
//
// Inputs are zeros: the reductions' speed does not depend on the values (zeros also keep repeated
// in-place sums away from infinities and subnormals); tests/integration/fusion_check.cpp checks the
// results.
#include <mpi.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "cohort/collectives.hpp"
#include "cohort/context.hpp"
#include "cohort/fusion.hpp"
#include "kernels/kernels.hpp"

#include "mpi_bench_util.hpp"

using cohort::bench::median;
using cohort::bench::parse_size;
using cohort::bench::time_block;

namespace {

using cohort::Buffer;
using cohort::DType;
using cohort::ReduceOp;

constexpr int kRounds = 3;
// The targets for 1000 × 4 KiB: fused within 1.2× of one large allreduce, and at least 5×
// faster than separate calls.
constexpr double kFusedOverLargeTarget = 1.2;
constexpr double kSeparateOverFusedTarget = 5.0;

}  // namespace

int bench_fusion(int argc, char** argv) {
  CLI::App app{"K small allreduces: separate, fused through a FusionBuffer, and one large; run under cohort run"};
  std::size_t k = 1000;
  std::string size_s = "4K";
  std::string dtype_s = "fp32";
  std::string threshold_s = "64M";
  int iters = 20;
  int warmup = 5;
  bool json = false;
  app.add_option("-k,--tensors", k, "tensors per step")->check(CLI::Range(std::size_t{1}, std::size_t{1} << 20));
  app.add_option("-s,--size", size_s, "bytes per tensor (K, M, G suffixes)");
  app.add_option("-d,--datatype", dtype_s, "element type")->check(CLI::IsMember({"fp32", "fp64", "fp16", "bf16"}));
  app.add_option("-t,--threshold", threshold_s, "FusionBuffer threshold_bytes (K, M, G suffixes)");
  app.add_option("-n,--iters", iters, "timed steps per block")->check(CLI::Range(1, 1000000));
  app.add_option("-w,--warmup", warmup, "untimed steps of each way before the first block")
      ->check(CLI::Range(0, 1000000));
  app.add_flag("--json", json, "one JSON object instead of the table");
  CLI11_PARSE(app, argc, argv);
  const DType dtype = dtype_s == "fp64"   ? DType::kFloat64
                      : dtype_s == "fp16" ? DType::kFloat16
                      : dtype_s == "bf16" ? DType::kBFloat16
                                          : DType::kFloat32;
  const std::size_t elem = cohort::dtype_size(dtype);
  const std::uint64_t size = parse_size(size_s);
  const std::uint64_t threshold = threshold_s == "0" ? 0 : parse_size(threshold_s);
  if (size < elem || (threshold == 0 && threshold_s != "0")) {
    std::fprintf(stderr, "cohort-bench fusion: -s %s -t %s: want sizes such as -s 4K -t 64M (-s at least one %s)\n",
                 size_s.c_str(), threshold_s.c_str(), dtype_s.c_str());
    return 2;
  }
  const std::size_t count = static_cast<std::size_t>(size / elem);
  const std::size_t bytes = count * elem;

  auto ctx = cohort::Context::from_environment();
  if (!ctx.ok()) {
    std::fprintf(stderr, "cohort-bench fusion: %s\n", ctx.status().to_string().c_str());
    return 2;
  }
  auto made = cohort::Communicator::create(*ctx);
  if (!made.ok()) {
    std::fprintf(stderr, "cohort-bench fusion: rank %d: %s\n", ctx->rank, made.status().to_string().c_str());
    return 2;
  }
  std::unique_ptr<cohort::Communicator> comm = std::move(made).value();
  int mpi_ready = 0;
  MPI_Initialized(&mpi_ready);
  if (!mpi_ready) {
    std::fprintf(stderr, "cohort-bench fusion needs an MPI launch: run it under `cohort run -n N`\n");
    return 2;
  }
  const int n = comm->size();

  std::vector<std::vector<unsigned char>> tensors(k, std::vector<unsigned char>(bytes));
  std::vector<unsigned char> large(k * bytes);
  std::vector<unsigned char> staging(k * bytes);
  std::vector<cohort::kernels::ConstBufferView> srcs;
  std::vector<cohort::kernels::MutableBufferView> dsts;
  for (auto& t : tensors) {
    srcs.push_back({t.data(), bytes});
    dsts.push_back({t.data(), bytes});
  }
  auto tensor = [&](std::size_t i) { return Buffer{tensors[i].data(), count, dtype, cohort::Device::kHost}; };
  cohort::FusionBuffer fusion(*comm, {.threshold_bytes = static_cast<std::size_t>(threshold)});
  cohort::FusionBuffer packing(*comm, {.threshold_bytes = static_cast<std::size_t>(threshold), .pack = true});

  cohort::Status failure;
  auto note = [&](cohort::Status s) {
    if (!s.ok() && failure.ok()) failure = std::move(s);
  };
  auto separate = [&] {
    for (std::size_t i = 0; i < k; ++i)
      note(comm->allreduce(tensor(i), ReduceOp::kSum));
  };
  auto fused = [&] {
    for (std::size_t i = 0; i < k; ++i)
      note(fusion.add(tensor(i)));
    note(fusion.allreduce(ReduceOp::kSum));
  };
  auto packed = [&] {
    for (std::size_t i = 0; i < k; ++i)
      note(packing.add(tensor(i)));
    note(packing.allreduce(ReduceOp::kSum));
  };
  auto one_large = [&] {
    note(comm->allreduce(Buffer{large.data(), k * count, dtype, cohort::Device::kHost}, ReduceOp::kSum));
  };
  auto copies = [&] {
    note(cohort::kernels::pack({staging.data(), staging.size()}, srcs, cohort::Device::kHost));
    note(cohort::kernels::unpack(dsts, {staging.data(), staging.size()}, cohort::Device::kHost));
  };

  for (int i = 0; i < warmup; ++i) {
    separate();
    fused();
    packed();
    one_large();
    copies();
  }
  const std::uint64_t calls_before = fusion.stats().allreduce_calls;
  std::vector<double> t_sep, t_fused, t_packed, t_large, t_copy;
  for (int r = 0; r < kRounds; ++r) {
    t_sep.push_back(time_block(separate, iters));
    t_fused.push_back(time_block(fused, iters));
    t_packed.push_back(time_block(packed, iters));
    t_large.push_back(time_block(one_large, iters));
    t_copy.push_back(time_block(copies, iters));
  }
  if (!failure.ok()) {
    std::fprintf(stderr, "cohort-bench fusion: rank %d: %s\n", comm->rank(), failure.to_string().c_str());
    comm->abort(1);
  }
  const double calls_per_step =
      static_cast<double>(fusion.stats().allreduce_calls - calls_before) / (static_cast<double>(kRounds) * iters);
  const double sep_us = median(t_sep) * 1e6;
  const double fused_us = median(t_fused) * 1e6;
  const double packed_us = median(t_packed) * 1e6;
  const double large_us = median(t_large) * 1e6;
  const double copy_us = median(t_copy) * 1e6;
  const double fused_over_large = fused_us / large_us;
  const double sep_over_fused = sep_us / fused_us;

  if (comm->rank() == 0) {
    const auto total = static_cast<unsigned long long>(k * bytes);
    if (json) {
      std::printf(
          "{\"benchmark\":\"fusion\",\"dtype\":\"%s\",\"ranks\":%d,\"tensors\":%zu,\"tensor_bytes\":%zu,"
          "\"total_bytes\":%llu,\"threshold_bytes\":%llu,\"fused_allreduce_calls\":%.2f,\"separate_us\":%.2f,"
          "\"fused_us\":%.2f,\"packed_us\":%.2f,\"one_large_us\":%.2f,\"pack_unpack_us\":%.2f,\"fused_over_one_large\":"
          "%.3f,"
          "\"separate_over_fused\":%.3f}\n",
          dtype_s.c_str(), n, k, bytes, total, static_cast<unsigned long long>(threshold), calls_per_step, sep_us,
          fused_us, packed_us, large_us, copy_us, fused_over_large, sep_over_fused);
    } else {
      std::printf(
          "# fusion %zu x %zu B %s sum (%llu B in all), %d ranks, threshold %llu B (%.0f allreduce/step fused)\n", k,
          bytes, dtype_s.c_str(), total, n, static_cast<unsigned long long>(threshold), calls_per_step);
      std::printf("# %d blocks of %d steps (median), per step of all %zu tensors, slowest rank\n", kRounds, iters, k);
      std::printf("%-28s %12s\n", "way", "time_us");
      std::printf("%-28s %12.1f\n", "separate (K allreduces)", sep_us);
      std::printf("%-28s %12.1f\n", "fused (FusionBuffer)", fused_us);
      std::printf("%-28s %12.1f\n", "  fused, packed (pack=true)", packed_us);
      std::printf("%-28s %12.1f\n", "one large allreduce", large_us);
      std::printf("%-28s %12.1f\n", "  pack+unpack alone (local)", copy_us);
      std::printf("fused / one large   = %6.3f  (target <= %.1f: %s)\n", fused_over_large, kFusedOverLargeTarget,
                  fused_over_large <= kFusedOverLargeTarget ? "met" : "MISSED");
      std::printf("separate / fused    = %6.2f  (target >= %.0f: %s)\n", sep_over_fused, kSeparateOverFusedTarget,
                  sep_over_fused >= kSeparateOverFusedTarget ? "met" : "MISSED");
    }
    std::fflush(stdout);
  }
  return 0;
}
