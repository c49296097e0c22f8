// MpiCommunicator's nonblocking collectives: the same checks and INT_MAX pieces as the blocking
// ones, started with MPI's nonblocking calls into one MpiWork. The asynchronous calls
// (iallreduce, ...) return it as a Work; the blocking calls below kCallThreadMinBytes wait on it.
#include <algorithm>
#include <climits>
#include <cstring>
#include <memory>
#include <string>

#include "collectives/local_communicator.hpp"
#include "collectives/mpi_communicator.hpp"
#include "kernels/kernels.hpp"

namespace cohort::detail {
namespace {

// MPI counts are ints: larger buffers go in pieces of at most this many elements.
constexpr std::size_t kMaxChunk = static_cast<std::size_t>(INT_MAX);

// An avg's scaling of `out` by 1/`world`, once the sum has arrived; none for other ops.
MpiWork::Finish average_of(Buffer out, ReduceOp op, int world) {
  if (op != ReduceOp::kAvg) return {};
  return [out, world] {
    return kernels::finish_average(out.data, out.count, out.dtype, static_cast<std::size_t>(world), Device::kHost);
  };
}

}  // namespace

MpiCommunicator::Started MpiCommunicator::started(std::unique_ptr<MpiWork> work) {
  if (!work->started_any()) COHORT_TRY(work->start_failure());
  return work;
}

Status MpiCommunicator::check_root(std::string_view name, int root) const {
  if (root >= 0 && root < size_) return {};
  return invalid_argument(std::string(name) + " root " + std::to_string(root) + " is not a rank of a world of " +
                          std::to_string(size_));
}

MpiCommunicator::Started MpiCommunicator::start_reduce(std::string_view name, const void* in, Buffer out, ReduceOp op) {
  COHORT_ASSIGN_OR_RETURN(MPI_Datatype type, reduce_type(out.dtype));
  COHORT_TRY(check_reduce_op(out.dtype, op));
  std::string what =
      std::string(name) + " " + std::string(reduce_op_name(op)) + " of " + describe_size(out) + on_rank();
  COHORT_TRY(health_->check(what));
  const MPI_Op mpi_op = reduce_op(out.dtype, op);
  const std::size_t elem = dtype_size(out.dtype);
  auto work = std::make_unique<MpiWork>(std::move(what), rank_, health_, average_of(out, op, size_));
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
  return started(std::move(work));
}

MpiCommunicator::Started MpiCommunicator::start_broadcast(std::string_view name, Buffer buffer, int root) {
  COHORT_TRY(check_buffer(buffer, name));
  COHORT_TRY(check_root(name, root));
  std::string what =
      std::string(name) + " from rank " + std::to_string(root) + " of " + describe_size(buffer) + on_rank();
  COHORT_TRY(health_->check(what));
  auto work = std::make_unique<MpiWork>(std::move(what), rank_, health_);
  // Bytes, not typed elements: a broadcast moves any dtype, fp16 and bf16 included.
  const std::size_t bytes = buffer.bytes();
  for (std::size_t done = 0; done < bytes;) {
    const std::size_t n = std::min(kMaxChunk, bytes - done);
    MPI_Request request = MPI_REQUEST_NULL;
    const int rc =
        MPI_Ibcast(static_cast<char*>(buffer.data) + done, static_cast<int>(n), MPI_BYTE, root, comm_, &request);
    work->add(rc, "MPI_Ibcast", request);
    if (rc != MPI_SUCCESS) break;
    done += n;
  }
  return started(std::move(work));
}

MpiCommunicator::Started MpiCommunicator::start_allgather(std::string_view name, const Buffer& in, Buffer out,
                                                          bool in_place) {
  if (in.bytes() > kMaxChunk) {
    return invalid_argument(std::string(name) + " of " + std::to_string(in.bytes()) +
                            " bytes per rank: the MPI backend takes at most INT_MAX bytes per rank and call; "
                            "split the buffer");
  }
  std::string what = std::string(name) + " of " + describe_size(in) + " per rank" + on_rank();
  COHORT_TRY(health_->check(what));
  auto work = std::make_unique<MpiWork>(std::move(what), rank_, health_);
  if (in.count == 0) return work;
  // Bytes, not typed elements: nothing is combined, so every dtype moves the same way.
  const int n = static_cast<int>(in.bytes());
  MPI_Request request = MPI_REQUEST_NULL;
  const int rc = MPI_Iallgather(in_place ? MPI_IN_PLACE : in.data, n, MPI_BYTE, out.data, n, MPI_BYTE, comm_, &request);
  work->add(rc, "MPI_Iallgather", request);
  return started(std::move(work));
}

MpiCommunicator::Started MpiCommunicator::start_reduce_scatter(std::string_view name, const Buffer& in, Buffer out,
                                                               ReduceOp op, bool in_place) {
  COHORT_ASSIGN_OR_RETURN(MPI_Datatype type, reduce_type(out.dtype));
  if (out.count > kMaxChunk) {
    return invalid_argument(std::string(name) + " of " + std::to_string(out.count) +
                            " elements per rank: the MPI backend takes at most INT_MAX per rank and call; "
                            "split the buffer");
  }
  std::string what =
      std::string(name) + " " + std::string(reduce_op_name(op)) + " of " + describe_size(out) + " per rank" + on_rank();
  COHORT_TRY(health_->check(what));
  MpiWork::Finish average = average_of(out, op, size_);
  if (out.count == 0) return std::make_unique<MpiWork>(std::move(what), rank_, health_);
  if (!in_place) {
    auto work = std::make_unique<MpiWork>(std::move(what), rank_, health_, std::move(average));
    MPI_Request request = MPI_REQUEST_NULL;
    const int rc = MPI_Ireduce_scatter_block(in.data, out.data, static_cast<int>(out.count), type,
                                             reduce_op(out.dtype, op), comm_, &request);
    work->add(rc, "MPI_Ireduce_scatter_block", request);
    return started(std::move(work));
  }
  // MPI's in-place form leaves the result at the front of the buffer, NCCL's (ours) at this rank's
  // block: reduce into a scratch block the Work owns, then copy it there.
  auto work = std::make_unique<MpiWork>(std::move(what), rank_, health_);
  std::vector<char>& block = work->scratch();
  block.resize(out.bytes());
  work->set_finish([&block, out, average = std::move(average)] {
    std::memcpy(out.data, block.data(), block.size());
    return average ? average() : Status{};
  });
  MPI_Request request = MPI_REQUEST_NULL;
  const int rc = MPI_Ireduce_scatter_block(in.data, block.data(), static_cast<int>(out.count), type,
                                           reduce_op(out.dtype, op), comm_, &request);
  work->add(rc, "MPI_Ireduce_scatter_block", request);
  return started(std::move(work));
}

MpiCommunicator::Started MpiCommunicator::start_barrier(std::string_view name) {
  std::string what = std::string(name) + on_rank();
  COHORT_TRY(health_->check(what));
  auto work = std::make_unique<MpiWork>(std::move(what), rank_, health_);
  MPI_Request request = MPI_REQUEST_NULL;
  const int rc = MPI_Ibarrier(comm_, &request);
  work->add(rc, "MPI_Ibarrier", request);
  return started(std::move(work));
}

Result<Work> MpiCommunicator::iallreduce(Buffer inout, ReduceOp op) {
  if (inout.device == Device::kCuda) return device_work(start_device_reduce("iallreduce", inout, inout, op));
  COHORT_TRY(check_buffer(inout, "iallreduce"));
  COHORT_ASSIGN_OR_RETURN(auto work, start_reduce("iallreduce", MPI_IN_PLACE, inout, op));
  return Work(std::move(work));
}

Result<Work> MpiCommunicator::iallreduce(const Buffer& in, Buffer out, ReduceOp op) {
  if (in.device == Device::kCuda || out.device == Device::kCuda) {
    return device_work(start_device_reduce("iallreduce", in, out, op));
  }
  COHORT_TRY(check_pair(in, out));
  COHORT_ASSIGN_OR_RETURN(auto work, start_reduce("iallreduce", in.data == out.data ? MPI_IN_PLACE : in.data, out, op));
  return Work(std::move(work));
}

Result<Work> MpiCommunicator::ibroadcast(Buffer buffer, int root) {
  if (buffer.device == Device::kCuda) return device_work(start_device_broadcast("ibroadcast", buffer, root));
  COHORT_ASSIGN_OR_RETURN(auto work, start_broadcast("ibroadcast", buffer, root));
  return Work(std::move(work));
}

Result<Work> MpiCommunicator::iallgather(const Buffer& in, Buffer out) {
  if (in.device == Device::kCuda || out.device == Device::kCuda) {
    return device_work(start_device_allgather("iallgather", in, out));
  }
  COHORT_ASSIGN_OR_RETURN(bool in_place, check_gather(in, out, rank_, size_));
  COHORT_ASSIGN_OR_RETURN(auto work, start_allgather("iallgather", in, out, in_place));
  return Work(std::move(work));
}

}  // namespace cohort::detail
