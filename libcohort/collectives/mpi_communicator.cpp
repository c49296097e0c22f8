#include "collectives/mpi_communicator.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <climits>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <string>
#include <vector>

#include "collectives/local_communicator.hpp"
#include "kernels/kernels.hpp"

namespace cohort::detail {
namespace {

// MPI counts are ints: larger buffers go in pieces of at most this many elements.
constexpr std::size_t kMaxChunk = static_cast<std::size_t>(INT_MAX);

// Blocking collectives whose buffer (what each rank ends up with) has at least this many bytes run
// as MPI's blocking call on the call thread; smaller ones as MPI's nonblocking call polled by the
// caller. Measured on the development machine (docs/collectives.md, "No hangs"): between 2 ranks on
// one node, Open MPI's nonblocking allreduce (libnbc) took 1.6-2.2× the time of its blocking one
// from 4 KiB to 16 MiB, while the hand-over to the call thread cost ~10 µs a call, under 10% from
// 256 KiB on; with more ranks than cores the nonblocking call was as fast or faster below that.
constexpr std::size_t kCallThreadMinBytes = 256 * 1024;

}  // namespace

Result<std::unique_ptr<MpiCommunicator>> MpiCommunicator::create(const Context& ctx,
                                                                 const CommunicatorOptions& options) {
  int initialized = 0;
  MPI_Initialized(&initialized);
  bool finalize = false;
  if (!initialized) {
    int provided = 0;
    if (MPI_Init_thread(nullptr, nullptr, MPI_THREAD_SERIALIZED, &provided) != MPI_SUCCESS) {
      return Status(Code::kUnavailable, "MPI_Init_thread failed for " + ctx.describe());
    }
    finalize = true;
  }
  int level = MPI_THREAD_SINGLE;
  MPI_Query_thread(&level);
  MPI_Comm comm = MPI_COMM_NULL;
  if (MPI_Comm_dup(MPI_COMM_WORLD, &comm) != MPI_SUCCESS) {
    if (finalize) MPI_Finalize();
    return internal_error("MPI_Comm_dup(MPI_COMM_WORLD) failed");
  }
  MPI_Comm_set_errhandler(comm, MPI_ERRORS_RETURN);
  int rank = 0;
  int size = 0;
  MPI_Comm_rank(comm, &rank);
  MPI_Comm_size(comm, &size);
  if (rank != ctx.rank || size != ctx.world_size) {
    MPI_Comm_free(&comm);
    if (finalize) MPI_Finalize();
    return failed_precondition("MPI says rank " + std::to_string(rank) + " of " + std::to_string(size) +
                               " but the environment says " + ctx.describe());
  }
  auto half_ops = MpiHalfOps::create();
  if (!half_ops.ok()) {
    MPI_Comm_free(&comm);
    if (finalize) MPI_Finalize();
    return half_ops.status().with_context(ctx.describe());
  }
  return std::unique_ptr<MpiCommunicator>(new MpiCommunicator(comm, rank, size, ctx.local_rank, finalize,
                                                              level >= MPI_THREAD_SERIALIZED,
                                                              std::move(half_ops).value(), options));
}

MpiCommunicator::MpiCommunicator(MPI_Comm comm, int rank, int size, int local_rank, bool finalize, bool threads,
                                 std::unique_ptr<MpiHalfOps> half_ops, CommunicatorOptions options)
    : comm_(comm),
      rank_(rank),
      size_(size),
      local_rank_(local_rank),
      finalize_(finalize),
      threads_(threads),
      half_ops_(std::move(half_ops)),
      health_(std::make_shared<CommHealth>(rank, std::move(options))) {}

MpiCommunicator::~MpiCommunicator() {
  gpu_.reset();  // NCCL first: finalized within a bound, or aborted when the communicator is broken
  if (health_->broken()) {
    // A collective failed for good: its MPI call may never return (the call thread may still be
    // inside it), and MPI_Finalize's fence would wait for the lost peer. Leave MPI as it is, the
    // operations and the communicator included; the process is expected to end now. The call
    // thread's destructor detaches it if it is stuck.
    (void)half_ops_.release();
    return;
  }
  call_thread_.reset();  // idle: joined
  many_.free_types();
  half_ops_.reset();
  MPI_Comm_free(&comm_);
  if (finalize_) MPI_Finalize();
}

std::string MpiCommunicator::on_rank() const {
  return " on rank " + std::to_string(rank_) + " of " + std::to_string(size_);
}

Result<MPI_Datatype> MpiCommunicator::reduce_type(DType dtype) const {
  switch (dtype) {
    case DType::kFloat32:
      return MPI_FLOAT;
    case DType::kFloat64:
      return MPI_DOUBLE;
    case DType::kInt32:
      return MPI_INT32_T;
    case DType::kInt64:
      return MPI_INT64_T;
    case DType::kFloat16:
    case DType::kBFloat16:
      return MPI_UINT16_T;  // moved by MPI, combined by half_ops_
  }
  return invalid_argument("unknown dtype " + std::to_string(static_cast<int>(dtype)));
}

MPI_Op MpiCommunicator::reduce_op(DType dtype, ReduceOp op) const {
  if (dtype == DType::kFloat16 || dtype == DType::kBFloat16) return half_ops_->op(dtype, op);
  switch (op) {
    case ReduceOp::kMin:
      return MPI_MIN;
    case ReduceOp::kMax:
      return MPI_MAX;
    case ReduceOp::kSum:
    case ReduceOp::kAvg:
      break;
  }
  return MPI_SUM;  // avg is a sum scaled afterwards
}

bool MpiCommunicator::on_call_thread(std::size_t bytes) const noexcept {
  return threads_ && bytes >= kCallThreadMinBytes;
}

Status MpiCommunicator::run_on_call_thread(const std::string& what, std::function<Status()> call) {
  COHORT_TRY(health_->check(what));
  if (!call_thread_) call_thread_ = std::make_unique<CallThread>();
  std::optional<Status> status = call_thread_->run(std::move(call), health_->deadline());
  if (!status) return health_->give_up(what);
  if (!status->ok()) return health_->fail(what, *status);
  return {};
}

Status MpiCommunicator::wait_blocking(Started started) {
  if (!started.ok()) return started.status();
  std::unique_ptr<MpiWork> work = std::move(started).value();
  const auto deadline = health_->deadline();
  // No pause between polls: the caller is blocked anyway, and MPI moves a nonblocking collective
  // along only inside MPI calls (MPI_Test yields the CPU itself when ranks outnumber cores).
  for (;;) {
    std::optional<Status> status = work->poll();
    if (!status && std::chrono::steady_clock::now() >= deadline) status = work->give_up();
    if (!status) continue;
    // A failed operation may still be running inside MPI: leave it and its scratch memory.
    if (!status->ok()) (void)work.release();
    return *status;
  }
}

Status MpiCommunicator::allreduce(Buffer inout, ReduceOp op) {
  if (inout.device == Device::kCuda) return wait_device(start_device_reduce("allreduce", inout, inout, op));
  COHORT_TRY(check_buffer(inout, "allreduce"));
  return reduce(MPI_IN_PLACE, inout, op);
}

Status MpiCommunicator::allreduce(const Buffer& in, Buffer out, ReduceOp op) {
  if (in.device == Device::kCuda || out.device == Device::kCuda) {
    return wait_device(start_device_reduce("allreduce", in, out, op));
  }
  COHORT_TRY(check_pair(in, out));
  return reduce(in.data == out.data ? MPI_IN_PLACE : in.data, out, op);
}

Status MpiCommunicator::reduce(const void* src, Buffer out, ReduceOp op) {
  if (!on_call_thread(out.bytes())) return wait_blocking(start_reduce("allreduce", src, out, op));
  COHORT_ASSIGN_OR_RETURN(MPI_Datatype type, reduce_type(out.dtype));
  COHORT_TRY(check_reduce_op(out.dtype, op));
  const MPI_Op mpi_op = reduce_op(out.dtype, op);
  const std::string what = "allreduce " + std::string(reduce_op_name(op)) + " of " + describe_size(out) + on_rank();
  return run_on_call_thread(what, [comm = comm_, rank = rank_, size = size_, src, out, type, mpi_op, op] {
    const std::size_t elem = dtype_size(out.dtype);
    for (std::size_t done = 0; done < out.count;) {
      const std::size_t n = std::min(kMaxChunk, out.count - done);
      void* dst = static_cast<char*>(out.data) + done * elem;
      const void* from = src == MPI_IN_PLACE ? MPI_IN_PLACE : static_cast<const char*>(src) + done * elem;
      COHORT_TRY(mpi_status(MPI_Allreduce(from, dst, static_cast<int>(n), type, mpi_op, comm), "MPI_Allreduce", rank));
      done += n;
    }
    if (op != ReduceOp::kAvg) return Status{};
    return kernels::finish_average(out.data, out.count, out.dtype, static_cast<std::size_t>(size), Device::kHost);
  });
}

Status MpiCommunicator::broadcast(Buffer buffer, int root) {
  if (buffer.device == Device::kCuda) return wait_device(start_device_broadcast("broadcast", buffer, root));
  if (!on_call_thread(buffer.bytes())) return wait_blocking(start_broadcast("broadcast", buffer, root));
  COHORT_TRY(check_buffer(buffer, "broadcast"));
  COHORT_TRY(check_root("broadcast", root));
  const std::string what = "broadcast from rank " + std::to_string(root) + " of " + describe_size(buffer) + on_rank();
  return run_on_call_thread(what, [comm = comm_, rank = rank_, buffer, root] {
    // Bytes, not typed elements: a broadcast moves any dtype, fp16 and bf16 included.
    const std::size_t bytes = buffer.bytes();
    for (std::size_t done = 0; done < bytes;) {
      const std::size_t n = std::min(kMaxChunk, bytes - done);
      COHORT_TRY(
          mpi_status(MPI_Bcast(static_cast<char*>(buffer.data) + done, static_cast<int>(n), MPI_BYTE, root, comm),
                     "MPI_Bcast", rank));
      done += n;
    }
    return Status{};
  });
}

Status MpiCommunicator::allgather(const Buffer& in, Buffer out) {
  if (in.device == Device::kCuda || out.device == Device::kCuda) {
    return wait_device(start_device_allgather("allgather", in, out));
  }
  COHORT_ASSIGN_OR_RETURN(bool in_place, check_gather(in, out, rank_, size_));
  if (!on_call_thread(out.bytes())) return wait_blocking(start_allgather("allgather", in, out, in_place));
  if (in.bytes() > kMaxChunk) {
    return invalid_argument("allgather of " + std::to_string(in.bytes()) +
                            " bytes per rank: the MPI backend takes at most INT_MAX bytes per rank and call; "
                            "split the buffer");
  }
  const std::string what = "allgather of " + describe_size(in) + " per rank" + on_rank();
  return run_on_call_thread(what, [comm = comm_, rank = rank_, in, out, in_place] {
    // Bytes, not typed elements: nothing is combined, so every dtype moves the same way.
    const int n = static_cast<int>(in.bytes());
    return mpi_status(MPI_Allgather(in_place ? MPI_IN_PLACE : in.data, n, MPI_BYTE, out.data, n, MPI_BYTE, comm),
                      "MPI_Allgather", rank);
  });
}

Status MpiCommunicator::reduce_scatter(const Buffer& in, Buffer out, ReduceOp op) {
  if (in.device == Device::kCuda || out.device == Device::kCuda) {
    return wait_device(start_device_reduce_scatter("reduce_scatter", in, out, op));
  }
  COHORT_ASSIGN_OR_RETURN(bool in_place, check_scatter(in, out, op, rank_, size_));
  if (!on_call_thread(in.bytes())) return wait_blocking(start_reduce_scatter("reduce_scatter", in, out, op, in_place));
  COHORT_ASSIGN_OR_RETURN(MPI_Datatype type, reduce_type(out.dtype));
  if (out.count > kMaxChunk) {
    return invalid_argument("reduce_scatter of " + std::to_string(out.count) +
                            " elements per rank: the MPI backend takes at most INT_MAX per rank and call; "
                            "split the buffer");
  }
  const MPI_Op mpi_op = reduce_op(out.dtype, op);
  const std::string what =
      "reduce_scatter " + std::string(reduce_op_name(op)) + " of " + describe_size(out) + " per rank" + on_rank();
  return run_on_call_thread(what, [comm = comm_, rank = rank_, size = size_, in, out, type, mpi_op, op, in_place] {
    const int n = static_cast<int>(out.count);
    if (in_place) {
      // MPI's in-place form leaves the result at the front of the buffer, NCCL's (ours) at this
      // rank's block: reduce into a scratch block, then copy it there.
      std::vector<char> block(out.bytes());
      COHORT_TRY(mpi_status(MPI_Reduce_scatter_block(in.data, block.data(), n, type, mpi_op, comm),
                            "MPI_Reduce_scatter_block", rank));
      std::memcpy(out.data, block.data(), block.size());
    } else {
      COHORT_TRY(mpi_status(MPI_Reduce_scatter_block(in.data, out.data, n, type, mpi_op, comm),
                            "MPI_Reduce_scatter_block", rank));
    }
    if (op != ReduceOp::kAvg) return Status{};
    return kernels::finish_average(out.data, out.count, out.dtype, static_cast<std::size_t>(size), Device::kHost);
  });
}

Status MpiCommunicator::barrier() {
  return wait_blocking(start_barrier("barrier"));
}

void MpiCommunicator::abort(int exit_code) {
  // Under `cohort run` a rank's end does not end its peers (Open MPI runs with
  // --enable-recovery, so MPI_Abort ends only this process): the marker tells the launcher to stop
  // them at once rather than after its grace period.
  if (const auto& dir = health_->run_dir(); !dir.empty()) {
    const std::string marker = (dir / ("abort-" + std::to_string(rank_))).string();
    const int fd = ::open(marker.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
    if (fd >= 0) ::close(fd);
  }
  MPI_Abort(comm_, exit_code);
  std::_Exit(exit_code);  // MPI_Abort does not return; this only satisfies [[noreturn]]
}

}  // namespace cohort::detail
