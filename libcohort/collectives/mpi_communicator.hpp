// The CPU backend over Open MPI. Owns MPI's initialization when it did it, and a duplicate of
// MPI_COMM_WORLD whose errors are returned (MPI_ERRORS_RETURN) rather than aborting the job.
#pragma once

#include <mpi.h>

#include <memory>
#include <string>

#include "cohort/collectives.hpp"
#include "collectives/mpi_half_ops.hpp"

namespace cohort::detail {

class MpiCommunicator final : public Communicator {
 public:
  static Result<std::unique_ptr<MpiCommunicator>> create(const Context& ctx);
  ~MpiCommunicator() override;
  MpiCommunicator(const MpiCommunicator&) = delete;
  MpiCommunicator& operator=(const MpiCommunicator&) = delete;

  int rank() const noexcept override { return rank_; }
  int size() const noexcept override { return size_; }
  using Communicator::allreduce;
  using Communicator::broadcast;
  using Communicator::iallreduce;
  using Communicator::ibroadcast;
  Status allreduce(Buffer inout, ReduceOp op) override;
  Status allreduce(const Buffer& in, Buffer out, ReduceOp op) override;
  Status broadcast(Buffer buffer, int root) override;
  Status allgather(const Buffer& in, Buffer out) override;
  Status reduce_scatter(const Buffer& in, Buffer out, ReduceOp op) override;
  Status barrier() override;
  Result<Work> iallreduce(Buffer inout, ReduceOp op) override;
  Result<Work> iallreduce(const Buffer& in, Buffer out, ReduceOp op) override;
  Result<Work> ibroadcast(Buffer buffer, int root) override;
  Result<Work> iallgather(const Buffer& in, Buffer out) override;
  [[noreturn]] void abort(int exit_code) override;

 private:
  MpiCommunicator(MPI_Comm comm, int rank, int size, bool finalize, std::unique_ptr<MpiHalfOps> half_ops);
  Status reduce(const void* in, Buffer out, ReduceOp op);
  Result<Work> start_reduce(const void* in, Buffer out, ReduceOp op);
  std::string on_rank() const;  // " on rank R of N", for the Work's messages
  // MPI's type and operation for a reduction of `dtype` with `op` (kAvg: the sum).
  Result<MPI_Datatype> reduce_type(DType dtype) const;
  MPI_Op reduce_op(DType dtype, ReduceOp op) const;
  Status check(int rc, std::string_view call) const;

  MPI_Comm comm_;
  int rank_;
  int size_;
  bool finalize_;                         // true when this object called MPI_Init and so must call MPI_Finalize
  std::unique_ptr<MpiHalfOps> half_ops_;  // freed before MPI_Finalize
};

}  // namespace cohort::detail
