// A world of one: what a standalone process (no launcher) gets. No MPI is touched.
#pragma once

#include "cohort/collectives.hpp"

namespace cohort::detail {

Status check_buffer(const Buffer& b, std::string_view what);
Status check_pair(const Buffer& in, const Buffer& out);
Status check_reduce_op(DType dtype, ReduceOp op);
// The arguments of allgather and reduce_scatter on `rank` of `size`: true for the in-place form.
Result<bool> check_gather(const Buffer& in, const Buffer& out, int rank, int size);
Result<bool> check_scatter(const Buffer& in, const Buffer& out, ReduceOp op, int rank, int size);

class LocalCommunicator final : public Communicator {
 public:
  int rank() const noexcept override { return 0; }
  int size() const noexcept override { return 1; }
  using Communicator::allreduce;
  using Communicator::broadcast;
  Status allreduce(Buffer inout, ReduceOp op) override;
  Status allreduce(const Buffer& in, Buffer out, ReduceOp op) override;
  Status broadcast(Buffer buffer, int root) override;
  Status allgather(const Buffer& in, Buffer out) override;
  Status reduce_scatter(const Buffer& in, Buffer out, ReduceOp op) override;
  Status barrier() override { return {}; }
  [[noreturn]] void abort(int exit_code) override;
};

}  // namespace cohort::detail
