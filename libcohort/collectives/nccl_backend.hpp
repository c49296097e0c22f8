// The GPU backend: NCCL for device buffers (Buffer::device == Device::kCuda), beside the MPI
// communicator that bootstraps it. MpiCommunicator makes it at the first call on device buffers:
//
//  1. every rank binds its GPU (local_rank mod device count) and the ranks agree, through the CPU
//     path, that all of them have one (else every rank fails alike, naming the ranks without);
//  2. rank 0 makes NCCL's unique id and the CPU path broadcasts it;
//  3. ncclCommInitRankConfig, nonblocking, polled until the collective timeout.
//
// Collectives run on a stream of their own and complete through a CUDA event: the Work polls the
// event and ncclCommGetAsyncError, never blocking in CUDA or NCCL. avg is NCCL's sum followed by
// Cohort's finish_average kernel on the same stream (the same definition as the CPU path). A
// collective that does not complete within the collective timeout aborts the NCCL communicator
// (ncclCommAbort) and breaks the communicator with the same verdict as the CPU path (the peer that
// ended, or TimedOut). Destruction finalizes within a bound, else aborts: never a blocking destroy.
//
// Built without CUDA, create() says so (Unimplemented) and nothing else exists.
#pragma once

#include <memory>
#include <string>

#include "cohort/collectives.hpp"
#include "collectives/comm_health.hpp"
#include "collectives/work_backend.hpp"

namespace cohort::detail {

class NcclBackend {
 public:
  using Started = Result<std::unique_ptr<Work::Backend>>;

  // `cpu`: the MPI communicator of the same ranks (its allgather and broadcast bootstrap NCCL);
  // `health`: its health, shared, so a failure on either path breaks both.
  // REQUIRES: every rank calls it at the same point, as for a collective.
  static Result<std::unique_ptr<NcclBackend>> create(Communicator& cpu, int local_rank,
                                                     std::shared_ptr<CommHealth> health);
  virtual ~NcclBackend() = default;

  // The collectives, started on the backend's stream; the shapes were checked by the caller.
  // `what` names the operation for messages. `in` may equal out.data (in place).
  virtual Started allreduce(std::string what, const void* in, Buffer out, ReduceOp op) = 0;
  virtual Started broadcast(std::string what, Buffer buffer, int root) = 0;
  virtual Started allgather(std::string what, const Buffer& in, Buffer out) = 0;
  virtual Started reduce_scatter(std::string what, const Buffer& in, Buffer out, ReduceOp op) = 0;

  // InvalidArgument naming `what` when `b` is not memory of a CUDA device (or managed memory).
  virtual Status check_device_memory(const Buffer& b, std::string_view what) const = 0;
};

}  // namespace cohort::detail
