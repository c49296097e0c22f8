// Work: waiting on an asynchronous collective with a timeout, and the blocking fallback of the
// asynchronous calls for backends without their own.
#include <algorithm>
#include <chrono>
#include <string>
#include <thread>
#include <utility>

#include "cohort/collectives.hpp"
#include "collectives/work_backend.hpp"

namespace cohort {
namespace {

using std::chrono::microseconds;
using std::chrono::milliseconds;
using std::chrono::steady_clock;

// The first pause between two polls of a pending operation: short, so that a collective that
// completes in tens of microseconds (small messages on one node) is not delayed by the wait.
constexpr microseconds kPollStart{20};
// The longest pause between two polls: MPI progresses a nonblocking collective only inside MPI
// calls, so a long pause would stall the algorithm's later rounds; 1 ms costs little CPU.
constexpr microseconds kPollMax{1000};
// Timeouts beyond this are waits without a limit (and keep now + timeout from overflowing).
constexpr milliseconds kForever = std::chrono::hours(24 * 365);

class CompletedBackend final : public Work::Backend {
 public:
  CompletedBackend(std::string what, Status status) : what_(std::move(what)), status_(std::move(status)) {}
  std::optional<Status> poll() override { return status_; }
  std::string describe() const override { return what_; }

 private:
  std::string what_;
  Status status_;
};

}  // namespace

Work::Work() noexcept = default;
Work::Work(std::unique_ptr<Backend> backend) noexcept : backend_(std::move(backend)) {}
Work::Work(Work&& other) noexcept : backend_(std::move(other.backend_)), waited_(std::exchange(other.waited_, {})) {}

Work& Work::operator=(Work&& other) noexcept {
  if (this != &other) {
    reset();
    backend_ = std::move(other.backend_);
    waited_ = std::exchange(other.waited_, {});
  }
  return *this;
}

Work::~Work() {
  reset();
}

void Work::reset() noexcept {
  if (backend_ == nullptr) return;
  const Code code = wait(kDestroyGrace).code();
  if (code == Code::kTimedOut || code == Code::kDisconnected) {
    // The operation may still be running. MPI cannot cancel (nor free) the request of a running
    // collective: leave it, and the little state that names it (scratch memory MPI may still
    // write), to the job's end rather than block here forever. Deliberately leaked.
    (void)backend_.release();
  }
  backend_.reset();
}

bool Work::done() {
  return backend_ == nullptr || backend_->poll().has_value();
}

Status Work::wait(milliseconds timeout) {
  if (backend_ == nullptr) return failed_precondition("wait() on an empty Work (default-constructed or moved from)");
  if (std::optional<Status> s = backend_->poll()) return *std::move(s);
  using Duration = steady_clock::duration;
  // What is left of the collective timeout (every wait() counts), and whether it ends this wait
  // rather than the caller's `timeout` does.
  const milliseconds limit = backend_->limit();
  const bool limited = limit < kForever;
  const Duration left = limited ? std::max<Duration>(limit - waited_, Duration::zero()) : Duration(kForever);
  const Duration asked = timeout >= kForever ? Duration(kForever) : Duration(std::max(timeout, milliseconds(0)));
  const bool final = limited && left <= asked;
  const bool forever = !limited && timeout >= kForever;
  const auto start = steady_clock::now();
  const auto deadline = start + (final ? left : asked);
  microseconds pause = kPollStart;
  for (;;) {
    const auto now = steady_clock::now();
    if (!forever && now >= deadline) {
      waited_ += now - start;
      if (final) return backend_->give_up();
      return {Code::kTimedOut, backend_->describe() + " did not complete within " + std::to_string(timeout.count()) +
                                   " ms. The operation is still running and this Work stays valid: wait() again; "
                                   "it fails for good once it has waited the collective timeout in all"};
    }
    std::this_thread::sleep_for(forever ? pause : std::min<Duration>(pause, deadline - now));
    pause = std::min(pause * 2, kPollMax);
    if (std::optional<Status> s = backend_->poll()) return *std::move(s);
  }
}

namespace detail {

Work completed_work(std::string what, Status status) {
  return Work(std::make_unique<CompletedBackend>(std::move(what), std::move(status)));
}

std::string describe_size(const Buffer& b) {
  return std::to_string(b.count) + " " + std::string(dtype_name(b.dtype)) + " (" + std::to_string(b.bytes()) +
         " bytes)";
}

}  // namespace detail

// The fallback: the blocking call, then a Work that has completed. Every error is the call's.
Result<Work> Communicator::iallreduce(Buffer inout, ReduceOp op) {
  COHORT_TRY(allreduce(inout, op));
  return detail::completed_work("iallreduce " + std::string(reduce_op_name(op)) + " of " +
                                detail::describe_size(inout));
}

Result<Work> Communicator::iallreduce(const Buffer& in, Buffer out, ReduceOp op) {
  COHORT_TRY(allreduce(in, out, op));
  return detail::completed_work("iallreduce " + std::string(reduce_op_name(op)) + " of " + detail::describe_size(out));
}

Result<Work> Communicator::ibroadcast(Buffer buffer, int root) {
  COHORT_TRY(broadcast(buffer, root));
  return detail::completed_work("ibroadcast from rank " + std::to_string(root) + " of " +
                                detail::describe_size(buffer));
}

Result<Work> Communicator::iallgather(const Buffer& in, Buffer out) {
  COHORT_TRY(allgather(in, out));
  return detail::completed_work("iallgather of " + detail::describe_size(in) + " per rank");
}

Status Communicator::allreduce_many(std::span<const Buffer>, ReduceOp) {
  return {Code::kUnimplemented,
          "allreduce_many: this backend reduces one buffer per call; pack the tensors "
          "(FusionBuffer does)"};
}

}  // namespace cohort
