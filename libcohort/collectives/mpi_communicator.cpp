#include "collectives/mpi_communicator.hpp"

#include <algorithm>
#include <climits>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "collectives/local_communicator.hpp"
#include "collectives/mpi_work.hpp"
#include "kernels/kernels.hpp"

namespace cohort::detail {
namespace {

// MPI counts are ints: larger buffers go in pieces of at most this many elements.
constexpr std::size_t kMaxChunk = static_cast<std::size_t>(INT_MAX);

}  // namespace

Result<std::unique_ptr<MpiCommunicator>> MpiCommunicator::create(const Context& ctx) {
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
  return std::unique_ptr<MpiCommunicator>(new MpiCommunicator(comm, rank, size, finalize, std::move(half_ops).value()));
}

MpiCommunicator::MpiCommunicator(MPI_Comm comm, int rank, int size, bool finalize, std::unique_ptr<MpiHalfOps> half_ops)
    : comm_(comm), rank_(rank), size_(size), finalize_(finalize), half_ops_(std::move(half_ops)) {}

MpiCommunicator::~MpiCommunicator() {
  half_ops_.reset();
  MPI_Comm_free(&comm_);
  if (finalize_) MPI_Finalize();
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

Status MpiCommunicator::check(int rc, std::string_view call) const {
  return mpi_status(rc, call, rank_);
}

Status MpiCommunicator::reduce(const void* in, Buffer out, ReduceOp op) {
  COHORT_ASSIGN_OR_RETURN(MPI_Datatype type, reduce_type(out.dtype));
  COHORT_TRY(check_reduce_op(out.dtype, op));
  const MPI_Op mpi_op = reduce_op(out.dtype, op);
  const std::size_t elem = dtype_size(out.dtype);
  for (std::size_t done = 0; done < out.count;) {
    const std::size_t n = std::min(kMaxChunk, out.count - done);
    void* dst = static_cast<char*>(out.data) + done * elem;
    const void* src = in == MPI_IN_PLACE ? MPI_IN_PLACE : static_cast<const char*>(in) + done * elem;
    COHORT_TRY(check(MPI_Allreduce(src, dst, static_cast<int>(n), type, mpi_op, comm_), "MPI_Allreduce"));
    done += n;
  }
  if (op == ReduceOp::kAvg) {
    return kernels::finish_average(out.data, out.count, out.dtype, static_cast<std::size_t>(size_), Device::kHost);
  }
  return {};
}

Status MpiCommunicator::allreduce(Buffer inout, ReduceOp op) {
  COHORT_TRY(check_buffer(inout, "allreduce"));
  return reduce(MPI_IN_PLACE, inout, op);
}

Status MpiCommunicator::allreduce(const Buffer& in, Buffer out, ReduceOp op) {
  COHORT_TRY(check_pair(in, out));
  if (in.data == out.data) return reduce(MPI_IN_PLACE, out, op);
  return reduce(in.data, out, op);
}

Status MpiCommunicator::broadcast(Buffer buffer, int root) {
  COHORT_TRY(check_buffer(buffer, "broadcast"));
  if (root < 0 || root >= size_) {
    return invalid_argument("broadcast root " + std::to_string(root) + " is not a rank of a world of " +
                            std::to_string(size_));
  }
  // Bytes, not typed elements: a broadcast moves any dtype, fp16 and bf16 included.
  const std::size_t bytes = buffer.bytes();
  for (std::size_t done = 0; done < bytes;) {
    const std::size_t n = std::min(kMaxChunk, bytes - done);
    COHORT_TRY(check(MPI_Bcast(static_cast<char*>(buffer.data) + done, static_cast<int>(n), MPI_BYTE, root, comm_),
                     "MPI_Bcast"));
    done += n;
  }
  return {};
}

Status MpiCommunicator::allgather(const Buffer& in, Buffer out) {
  COHORT_ASSIGN_OR_RETURN(bool in_place, check_gather(in, out, rank_, size_));
  if (in.bytes() > kMaxChunk) {
    return invalid_argument("allgather of " + std::to_string(in.bytes()) +
                            " bytes per rank: the MPI backend takes at most INT_MAX bytes per rank and call; "
                            "split the buffer");
  }
  if (in.count == 0) return {};
  // Bytes, not typed elements: nothing is combined, so every dtype moves the same way.
  const int n = static_cast<int>(in.bytes());
  return check(MPI_Allgather(in_place ? MPI_IN_PLACE : in.data, n, MPI_BYTE, out.data, n, MPI_BYTE, comm_),
               "MPI_Allgather");
}

Status MpiCommunicator::reduce_scatter(const Buffer& in, Buffer out, ReduceOp op) {
  COHORT_ASSIGN_OR_RETURN(bool in_place, check_scatter(in, out, op, rank_, size_));
  COHORT_ASSIGN_OR_RETURN(MPI_Datatype type, reduce_type(out.dtype));
  if (out.count > kMaxChunk) {
    return invalid_argument("reduce_scatter of " + std::to_string(out.count) +
                            " elements per rank: the MPI backend takes at most INT_MAX per rank and call; "
                            "split the buffer");
  }
  if (out.count == 0) return {};
  const int n = static_cast<int>(out.count);
  const MPI_Op mpi_op = reduce_op(out.dtype, op);
  if (in_place) {
    // MPI's in-place form leaves the result at the front of the buffer, NCCL's (ours) at this
    // rank's block: reduce into a scratch block, then copy it there.
    std::vector<char> block(out.bytes());
    COHORT_TRY(
        check(MPI_Reduce_scatter_block(in.data, block.data(), n, type, mpi_op, comm_), "MPI_Reduce_scatter_block"));
    std::memcpy(out.data, block.data(), block.size());
  } else {
    COHORT_TRY(check(MPI_Reduce_scatter_block(in.data, out.data, n, type, mpi_op, comm_), "MPI_Reduce_scatter_block"));
  }
  if (op == ReduceOp::kAvg) {
    return kernels::finish_average(out.data, out.count, out.dtype, static_cast<std::size_t>(size_), Device::kHost);
  }
  return {};
}

void MpiCommunicator::abort(int exit_code) {
  MPI_Abort(comm_, exit_code);
  std::_Exit(exit_code);  // MPI_Abort does not return; this only satisfies [[noreturn]]
}

Status MpiCommunicator::barrier() {
  return check(MPI_Barrier(comm_), "MPI_Barrier");
}

}  // namespace cohort::detail
