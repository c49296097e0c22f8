// Collectives across the ranks of a job: allreduce, broadcast, allgather, reduce-scatter, barrier.
//
// This is the CPU path over Open MPI for every DType: fp32, fp64, int32 and int64 on MPI's own
// types and operations; fp16 and bf16 through MPI user-defined operations on Cohort's kernels,
// which accumulate in fp32 and round to nearest even once per element per hop (docs/collectives.md
// says why and what it measured). The shape (typed buffer views, a Communicator made from a
// Context, Status on every call) is the one the GPU (NCCL) backend extends. The asynchronous calls
// (iallreduce, ibroadcast, iallgather) return a Work handle to wait on with a timeout.
//
// No collective hangs: one whose peers do not all take part within the collective timeout
// (CommunicatorOptions) fails with Disconnected, naming the peer rank that ended (its host, exit
// code or signal) when the launcher reported one, else TimedOut naming the operation; from then on
// the communicator is broken and every call fails at once with that error.
#pragma once

#include <charconv>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <ranges>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>

#include "cohort/context.hpp"
#include "cohort/status.hpp"

namespace cohort {

enum class DType { kFloat32, kFloat64, kFloat16, kBFloat16, kInt32, kInt64 };
enum class ReduceOp { kSum, kAvg, kMin, kMax };
enum class Device { kHost, kCuda };

std::size_t dtype_size(DType dtype) noexcept;
std::string_view dtype_name(DType dtype) noexcept;
std::string_view reduce_op_name(ReduceOp op) noexcept;

template <typename T>
constexpr DType dtype_of() {
  if constexpr (std::is_same_v<T, float>)
    return DType::kFloat32;
  else if constexpr (std::is_same_v<T, double>)
    return DType::kFloat64;
  else if constexpr (std::is_same_v<T, std::int32_t>)
    return DType::kInt32;
  else if constexpr (std::is_same_v<T, std::int64_t>)
    return DType::kInt64;
  else
    static_assert(sizeof(T) == 0, "no Cohort dtype for this element type");
}

// A non-owning view of `count` elements of `dtype` at `data`. fp16 and bf16 have no C++ element
// type here: build their Buffer by hand, e.g. {bits.data(), bits.size(), DType::kBFloat16} over a
// std::vector<std::uint16_t> of the values' bit patterns.
struct Buffer {
  void* data = nullptr;
  std::size_t count = 0;
  DType dtype = DType::kFloat32;
  Device device = Device::kHost;

  std::size_t bytes() const noexcept { return count * dtype_size(dtype); }

  template <typename T, std::size_t N>
  static Buffer of(std::span<T, N> s) {
    return {s.data(), s.size(), dtype_of<std::remove_const_t<T>>(), Device::kHost};
  }
};

// The handle of an asynchronous collective (Communicator::iallreduce, ibroadcast, iallgather).
// Its buffers belong to the operation until it has completed: do not read or write them before
// wait() has returned, or done() true (an avg is scaled at completion, so the values are final then).
// Movable, not copyable; a default-constructed or moved-from Work is empty.
//
// Two timeouts apply. The caller's, wait(timeout), is local: giving up leaves the operation running
// and the handle usable, so a later wait() can still complete it. The communicator's collective
// timeout (CommunicatorOptions) is final: once wait() calls have waited that long for the operation
// in all, it fails for good (Disconnected naming the peer that ended, or TimedOut) and breaks its
// communicator. MPI cannot cancel a collective, so a Work still pending when it is destroyed is
// waited on for a short grace (kDestroyGrace), then left behind: MPI may still write its output
// buffer afterwards, and the job should end.
// REQUIRES: every Work completes or is destroyed before its Communicator; used from one thread at
// a time, the Communicator's thread (MPI_THREAD_SERIALIZED).
class Work {
 public:
  class Backend;  // how a backend polls its operation: libcohort/collectives/work_backend.hpp

  static constexpr std::chrono::milliseconds kNoTimeout = std::chrono::milliseconds::max();
  // How long the destructor waits for a pending operation before leaving it: long enough for a
  // collective whose peers are already in it to finish, short enough not to stall a rank whose
  // peers are gone (whose job mpirun ends anyway).
  static constexpr std::chrono::milliseconds kDestroyGrace{100};

  Work() noexcept;
  explicit Work(std::unique_ptr<Backend> backend) noexcept;
  Work(Work&& other) noexcept;
  Work& operator=(Work&& other) noexcept;  // a pending operation held before is destroyed as by ~Work
  Work(const Work&) = delete;
  Work& operator=(const Work&) = delete;
  ~Work();

  // Waits until the operation completes and returns its Status (the same on every later call).
  // When `timeout` passes first: TimedOut (naming the operation, its size and `timeout`), and the
  // Work stays usable. When the collective timeout is used up first (counting every wait() on this
  // Work; without a `timeout` that is where it ends): the operation's final failure, Disconnected
  // or TimedOut, returned by every later call. Polls with a backoff from 20 µs up to 1 ms. An
  // empty Work is FailedPrecondition.
  Status wait(std::chrono::milliseconds timeout = kNoTimeout);
  // Polls once (which also moves MPI's progress along): true once the operation has completed
  // (successfully or not; wait() then returns its Status at once). An empty Work is done.
  bool done();
  bool empty() const noexcept { return backend_ == nullptr; }

 private:
  void reset() noexcept;  // what ~Work does to a held operation
  std::unique_ptr<Backend> backend_;
  std::chrono::steady_clock::duration waited_{};  // spent in wait() so far, against the collective timeout
};

// The variable CommunicatorOptions::from_environment() reads the collective timeout from.
inline constexpr std::string_view kCollectiveTimeoutVariable = "COHORT_COLLECTIVE_TIMEOUT_MS";

// How a Communicator deals with peers that do not keep up. Communicator::create(ctx) reads them
// from the environment; a program or a test may build its own.
struct CommunicatorOptions {
  // How long one collective waits for all its peers before it fails for good. Five minutes: a
  // healthy peer can arrive this late (one rank writes a checkpoint, evaluates or compiles while
  // the others already wait in the next allreduce), yet a job that lost a peer should not hold
  // its machines idle much longer; PyTorch's NCCL process groups default to 10 minutes. Tests of
  // fault scenarios set a few seconds.
  static constexpr std::chrono::milliseconds kDefaultCollectiveTimeout = std::chrono::minutes(5);
  // Longer ones are refused: nobody means them, and deadlines stay far from overflowing.
  static constexpr std::chrono::milliseconds kMaxCollectiveTimeout = std::chrono::hours(24 * 30);

  std::chrono::milliseconds collective_timeout = kDefaultCollectiveTimeout;
  // Where the launcher leaves a report for each rank whose program ended ($COHORT_RUN_DIR under
  // `cohort run`), read when a collective times out to name the peer that ended. Empty: none.
  std::filesystem::path run_dir;

  // COHORT_COLLECTIVE_TIMEOUT_MS when set (see parse_timeout), and COHORT_RUN_DIR.
  static Result<CommunicatorOptions> from_environment();
  // The rule for COHORT_COLLECTIVE_TIMEOUT_MS: a whole number of milliseconds, at least 1 and at
  // most kMaxCollectiveTimeout; anything else is InvalidArgument naming the variable. Inline:
  // `cohort run` reads the same variable (to size its grace period) without loading libcohort.
  static Result<std::chrono::milliseconds> parse_timeout(std::string_view text);
};

class Communicator {
 public:
  // Across ranks this needs an MPI launch (`cohort run`, mpirun); a standalone process is a
  // world of one whose collectives are local copies and never touch MPI. The first form reads its
  // options from the environment (CommunicatorOptions::from_environment). After a collective has
  // failed for good the destructor leaves MPI as it is (no MPI_Finalize, whose fence would wait for
  // the lost peer): end the process then.
  // REQUIRES: at most one live Communicator per process (it owns MPI's initialization).
  static Result<std::unique_ptr<Communicator>> create(const Context& ctx);
  static Result<std::unique_ptr<Communicator>> create(const Context& ctx, const CommunicatorOptions& options);
  virtual ~Communicator() = default;

  virtual int rank() const noexcept = 0;
  virtual int size() const noexcept = 0;

  // In place: every rank's `inout` becomes the reduction of all ranks' `inout`.
  virtual Status allreduce(Buffer inout, ReduceOp op) = 0;
  // Out of place: `out` (same count and dtype as `in`) receives the reduction; `in` is unchanged.
  virtual Status allreduce(const Buffer& in, Buffer out, ReduceOp op) = 0;
  // Every rank's `buffer` becomes `root`'s.
  // avg is a sum followed by a multiplication by 1/size() rounded to the compute type (fp32 for
  // fp16/bf16), so an fp16 sum that overflows makes an inf average. avg of an integer dtype is
  // InvalidArgument. fp16/bf16 sums round once per element per hop: bit-exact against any order
  // of the ranks only where every partial sum is representable (see docs/collectives.md).

  // Every rank's `buffer` becomes `root`'s.
  virtual Status broadcast(Buffer buffer, int root) = 0;

  // `out` (size() × in.count elements of in.dtype) receives rank r's `in` at element r × in.count,
  // on every rank. In place when `in` is this rank's block of `out` (in.data == out.data +
  // rank() × in.bytes()), as NCCL defines it; any other overlap is InvalidArgument.
  // REQUIRES: in.bytes() ≤ INT_MAX (larger blocks: split the call).
  virtual Status allgather(const Buffer& in, Buffer out) = 0;

  // `in` holds size() × out.count elements of out.dtype on every rank; `out` receives block rank()
  // (elements [rank() × out.count, (rank() + 1) × out.count)) of the reduction of all ranks' `in`.
  // In place when `out` is this rank's block of `in` (out.data == in.data + rank() × out.bytes());
  // any other overlap is InvalidArgument. REQUIRES: out.count ≤ INT_MAX.
  virtual Status reduce_scatter(const Buffer& in, Buffer out, ReduceOp op) = 0;

  virtual Status barrier() = 0;

  // Asynchronous forms of allreduce, broadcast and allgather: the same buffers, rules and results,
  // delivered when the returned Work completes. Invalid arguments, and a failure to start, are
  // the returned Status; a failure while running is what Work::wait() returns. Every rank must
  // start the same collectives in the same order (MPI's rule), blocking and asynchronous alike;
  // their Work may be waited on in any order. A backend without asynchronous calls of its own
  // (the world of one) runs the blocking call and returns a Work that has already completed.
  virtual Result<Work> iallreduce(Buffer inout, ReduceOp op);
  virtual Result<Work> iallreduce(const Buffer& in, Buffer out, ReduceOp op);
  virtual Result<Work> ibroadcast(Buffer buffer, int root);
  virtual Result<Work> iallgather(const Buffer& in, Buffer out);

  // Many host tensors of one dtype reduced in place as ONE allreduce, moved between ranks straight
  // from and into the tensors (no staging copy): what FusionBuffer uses when the backend has it.
  // The rules of allreduce(inout, op) apply to each tensor; tensors must not overlap, and every
  // rank passes the same counts in the same order. A backend without it returns Unimplemented
  // (has_allreduce_many() false) before any communication.
  virtual bool has_allreduce_many() const noexcept { return false; }
  virtual Status allreduce_many(std::span<const Buffer> tensors, ReduceOp op);

  // Ends the whole job now with `exit_code` (MPI_Abort; under `cohort run`, which keeps ranks
  // alive when one ends, the launcher stops the others at once): the way out of an error on one
  // rank while its peers may be waiting in a collective, where a clean shutdown would wait for
  // them forever.
  [[noreturn]] virtual void abort(int exit_code) = 0;

  // Any contiguous range of a Cohort element type: std::vector<float>, std::array, std::span.
  template <std::ranges::contiguous_range R>
  Status allreduce(R&& inout, ReduceOp op) {
    return allreduce(Buffer::of(std::span(inout)), op);
  }
  template <std::ranges::contiguous_range R>
  Status broadcast(R&& buffer, int root) {
    return broadcast(Buffer::of(std::span(buffer)), root);
  }
  template <std::ranges::contiguous_range R>
  Result<Work> iallreduce(R&& inout, ReduceOp op) {
    return iallreduce(Buffer::of(std::span(inout)), op);
  }
  template <std::ranges::contiguous_range R>
  Result<Work> ibroadcast(R&& buffer, int root) {
    return ibroadcast(Buffer::of(std::span(buffer)), root);
  }
};

inline Result<std::chrono::milliseconds> CommunicatorOptions::parse_timeout(std::string_view text) {
  long long ms = 0;
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), ms);
  if (text.empty() || ec != std::errc() || ptr != text.data() + text.size() || ms < 1 ||
      ms > kMaxCollectiveTimeout.count()) {
    return invalid_argument(std::string(kCollectiveTimeoutVariable) + "='" + std::string(text) +
                            "' is not a collective timeout: give a whole number of milliseconds from 1 to " +
                            std::to_string(kMaxCollectiveTimeout.count()) + ", e.g. 300000 for 5 minutes");
  }
  return std::chrono::milliseconds(ms);
}

}  // namespace cohort
