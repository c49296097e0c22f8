// MpiCommunicator's asynchronous calls: the same checks and INT_MAX pieces as the blocking ones
// (mpi_communicator.cpp), started with MPI's nonblocking collectives into one MpiWork.
#include <algorithm>
#include <climits>
#include <memory>
#include <string>

#include "collectives/local_communicator.hpp"
#include "collectives/mpi_communicator.hpp"
#include "collectives/mpi_work.hpp"

namespace cohort::detail {
namespace {

// MPI counts are ints: larger buffers go in pieces of at most this many elements.
constexpr std::size_t kMaxChunk = static_cast<std::size_t>(INT_MAX);

// The Work that MpiWork `work` makes, or its failure to start when nothing was started.
Result<Work> finish_start(std::unique_ptr<MpiWork> work) {
  if (!work->start_error().ok() && !work->started_any()) return work->start_error();
  return Work(std::move(work));
}

}  // namespace

std::string MpiCommunicator::on_rank() const {
  return " on rank " + std::to_string(rank_) + " of " + std::to_string(size_);
}

Result<Work> MpiCommunicator::start_reduce(const void* in, Buffer out, ReduceOp op) {
  COHORT_ASSIGN_OR_RETURN(MPI_Datatype type, reduce_type(out.dtype));
  COHORT_TRY(check_reduce_op(out.dtype, op));
  std::string what = "iallreduce " + std::string(reduce_op_name(op)) + " of " + describe_size(out) + on_rank();
  if (out.count == 0) return completed_work(std::move(what));
  const MPI_Op mpi_op = reduce_op(out.dtype, op);
  const std::size_t elem = dtype_size(out.dtype);
  auto work =
      std::make_unique<MpiWork>(std::move(what), rank_, out, op == ReduceOp::kAvg, static_cast<std::size_t>(size_));
  for (std::size_t done = 0; done < out.count;) {
    const std::size_t n = std::min(kMaxChunk, out.count - done);
    void* dst = static_cast<char*>(out.data) + done * elem;
    const void* src = in == MPI_IN_PLACE ? MPI_IN_PLACE : static_cast<const char*>(in) + done * elem;
    MPI_Request request = MPI_REQUEST_NULL;
    const int rc = MPI_Iallreduce(src, dst, static_cast<int>(n), type, mpi_op, comm_, &request);
    work->add(rc, "MPI_Iallreduce", request);
    if (rc != MPI_SUCCESS) break;
    done += n;
  }
  return finish_start(std::move(work));
}

Result<Work> MpiCommunicator::iallreduce(Buffer inout, ReduceOp op) {
  COHORT_TRY(check_buffer(inout, "iallreduce"));
  return start_reduce(MPI_IN_PLACE, inout, op);
}

Result<Work> MpiCommunicator::iallreduce(const Buffer& in, Buffer out, ReduceOp op) {
  COHORT_TRY(check_pair(in, out));
  if (in.data == out.data) return start_reduce(MPI_IN_PLACE, out, op);
  return start_reduce(in.data, out, op);
}

Result<Work> MpiCommunicator::ibroadcast(Buffer buffer, int root) {
  COHORT_TRY(check_buffer(buffer, "ibroadcast"));
  if (root < 0 || root >= size_) {
    return invalid_argument("ibroadcast root " + std::to_string(root) + " is not a rank of a world of " +
                            std::to_string(size_));
  }
  std::string what = "ibroadcast from rank " + std::to_string(root) + " of " + describe_size(buffer) + on_rank();
  const std::size_t bytes = buffer.bytes();
  if (bytes == 0) return completed_work(std::move(what));
  auto work = std::make_unique<MpiWork>(std::move(what), rank_, buffer, false, static_cast<std::size_t>(size_));
  // Bytes, not typed elements: a broadcast moves any dtype, fp16 and bf16 included.
  for (std::size_t done = 0; done < bytes;) {
    const std::size_t n = std::min(kMaxChunk, bytes - done);
    MPI_Request request = MPI_REQUEST_NULL;
    const int rc =
        MPI_Ibcast(static_cast<char*>(buffer.data) + done, static_cast<int>(n), MPI_BYTE, root, comm_, &request);
    work->add(rc, "MPI_Ibcast", request);
    if (rc != MPI_SUCCESS) break;
    done += n;
  }
  return finish_start(std::move(work));
}

Result<Work> MpiCommunicator::iallgather(const Buffer& in, Buffer out) {
  COHORT_ASSIGN_OR_RETURN(bool in_place, check_gather(in, out, rank_, size_));
  if (in.bytes() > kMaxChunk) {
    return invalid_argument("iallgather of " + std::to_string(in.bytes()) +
                            " bytes per rank: the MPI backend takes at most INT_MAX bytes per rank and call; "
                            "split the buffer");
  }
  std::string what = "iallgather of " + describe_size(in) + " per rank" + on_rank();
  if (in.count == 0) return completed_work(std::move(what));
  auto work = std::make_unique<MpiWork>(std::move(what), rank_, out, false, static_cast<std::size_t>(size_));
  const int n = static_cast<int>(in.bytes());
  MPI_Request request = MPI_REQUEST_NULL;
  const int rc = MPI_Iallgather(in_place ? MPI_IN_PLACE : in.data, n, MPI_BYTE, out.data, n, MPI_BYTE, comm_, &request);
  work->add(rc, "MPI_Iallgather", request);
  return finish_start(std::move(work));
}

}  // namespace cohort::detail
