// A world of one: what a standalone process (no launcher) gets. No MPI is touched.
#pragma once

#include "cohort/collectives.hpp"

namespace cohort::detail {

Status check_buffer(const Buffer& b, std::string_view what);
Status check_pair(const Buffer& in, const Buffer& out);
Status check_reduce_op(DType dtype, ReduceOp op);

class LocalCommunicator final : public Communicator {
 public:
  int rank() const noexcept override { return 0; }
  int size() const noexcept override { return 1; }
  using Communicator::allreduce;
  using Communicator::broadcast;
  Status allreduce(Buffer inout, ReduceOp op) override;
  Status allreduce(const Buffer& in, Buffer out, ReduceOp op) override;
  Status broadcast(Buffer buffer, int root) override;
  Status barrier() override { return {}; }
  [[noreturn]] void abort(int exit_code) override;
};

}  // namespace cohort::detail
