// A job in which one rank SIGKILLs itself in the middle of a loop of collectives, and every other
// rank checks that its collective fails, naming the lost peer, within twice the collective timeout.
//
//   cohort-peer-loss-check MODE VICTIM
//     MODE small: blocking allreduces of 16 KiB (MPI's nonblocking call, polled);
//          large: blocking allreduces of 4 MiB (MPI's blocking call on the call thread);
//          async: iallreduces of 4 MiB, waited on in steps of 300 ms (Work's own timeouts).
//     VICTIM: the rank that kills itself.
//
// Run under `cohort run` with COHORT_COLLECTIVE_TIMEOUT_MS set. Each survivor prints
//   "peer-loss-check: rank R: <Code> after <ms> ms (timeout <T> ms): <message>"
//   "peer-loss-check: rank R: next call <Code> after <ms> ms"
// and exits 1; a survivor that saw no error for kMaxRun prints "no error" and exits 2.
#include <signal.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include "cohort/collectives.hpp"
#include "cohort/context.hpp"
#include "cohort/fusion.hpp"

namespace {

using cohort::Code;
using cohort::ReduceOp;
using cohort::Status;
using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

// Collectives every rank completes before the victim starts to die.
constexpr int kWarmup = 3;
// How long after entering its next collective the victim kills itself: long enough that the
// collective is under way on every rank, short enough that the loop is still running.
constexpr milliseconds kDieAfter{3};
// A survivor gives up on the test itself after this long without an error.
constexpr auto kMaxRun = std::chrono::seconds(60);

long ms_since(Clock::time_point start) {
  return static_cast<long>(std::chrono::duration_cast<milliseconds>(Clock::now() - start).count());
}

// One collective of the loop in `mode`: the Status it ends with.
Status step(cohort::Communicator& comm, const std::string& mode, std::vector<float>& data) {
  if (mode == "fused") {
    // 256 tensors through a FusionBuffer: the MPI backend's allreduce_many, point to point.
    cohort::FusionBuffer fusion(comm);
    const std::size_t piece = data.size() / 256;
    for (std::size_t at = 0; at < data.size(); at += piece) {
      std::span<float> t(data.data() + at, std::min(piece, data.size() - at));
      if (Status s = fusion.add(t); !s.ok()) return s;
    }
    return fusion.allreduce(ReduceOp::kSum);
  }
  if (mode != "async") return comm.allreduce(data, ReduceOp::kSum);
  auto work = comm.iallreduce(data, ReduceOp::kSum);
  if (!work.ok()) return work.status();
  // Short waits, as a program that does other things between them would: the collective timeout
  // counts all of them together.
  Status s;
  do {
    s = work->wait(milliseconds(300));
  } while (!work->done());
  return s;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: cohort-peer-loss-check small|large|async|fused VICTIM\n");
    return 2;
  }
  const std::string mode = argv[1];
  const int victim = std::atoi(argv[2]);
  const std::size_t count = mode == "small" ? 4096 : std::size_t{1} << 20;
  auto ctx = cohort::Context::from_environment();
  auto options = cohort::CommunicatorOptions::from_environment();
  if (!ctx.ok() || !options.ok()) {
    std::fprintf(stderr, "setup: %s\n", (!ctx.ok() ? ctx.status() : options.status()).to_string().c_str());
    return 2;
  }
  auto comm = cohort::Communicator::create(*ctx, *options);
  if (!comm.ok()) {
    std::fprintf(stderr, "communicator: %s\n", comm.status().to_string().c_str());
    return 2;
  }
  const long timeout_ms = static_cast<long>(options->collective_timeout.count());
  std::vector<float> data(count, 1.0f);
  for (int i = 0; i < kWarmup; ++i) {
    if (Status s = step(**comm, mode, data); !s.ok()) {
      std::fprintf(stderr, "warm-up collective %d: %s\n", i, s.to_string().c_str());
      return 2;
    }
  }
  if (ctx->rank == victim) {
    std::printf("peer-loss-check: rank %d dies %ld ms into the next collective\n", ctx->rank,
                static_cast<long>(kDieAfter.count()));
    std::fflush(stdout);
    std::thread([] {
      std::this_thread::sleep_for(kDieAfter);
      raise(SIGKILL);
    }).detach();
  }
  const auto run_start = Clock::now();
  while (Clock::now() - run_start < kMaxRun) {
    const auto start = Clock::now();
    const Status s = step(**comm, mode, data);
    if (s.ok()) continue;
    const long took = ms_since(start);
    std::printf("peer-loss-check: rank %d: %s after %ld ms (timeout %ld ms): %s\n", ctx->rank,
                std::string(cohort::code_name(s.code())).c_str(), took, timeout_ms, s.message().c_str());
    const auto next_start = Clock::now();
    const Status next = (*comm)->allreduce(data, ReduceOp::kSum);
    std::printf("peer-loss-check: rank %d: next call %s after %ld ms\n", ctx->rank,
                std::string(cohort::code_name(next.code())).c_str(), ms_since(next_start));
    std::fflush(stdout);
    return 1;
  }
  std::printf("peer-loss-check: rank %d: no error\n", ctx->rank);
  return 2;
}
