// fp16 and bf16 reductions for the MPI backend: MPI user-defined operations (commutative) whose
// function is kernels::reduce on the host, so each hop of MPI's algorithm widens both operands to
// fp32, combines them once and rounds back to nearest even, with the NaN and ±0 policy of
// kernels/element_ops.hpp. They run on MPI_UINT16_T, which MPI only moves: it never does
// arithmetic of its own on it under these operations.
#pragma once

#include <mpi.h>

#include <array>
#include <memory>

#include "cohort/collectives.hpp"

namespace cohort::detail {

class MpiHalfOps {
 public:
  // REQUIRES: MPI is initialized. The operations are freed by the destructor, which must run
  // before MPI_Finalize.
  static Result<std::unique_ptr<MpiHalfOps>> create();
  ~MpiHalfOps();
  MpiHalfOps(const MpiHalfOps&) = delete;
  MpiHalfOps& operator=(const MpiHalfOps&) = delete;

  // The operation for kFloat16 or kBFloat16 and kSum (also what kAvg reduces with), kMin or kMax.
  MPI_Op op(DType dtype, ReduceOp op) const noexcept;

 private:
  MpiHalfOps() = default;
  // [dtype: 0 fp16, 1 bf16][op: 0 sum, 1 min, 2 max]; MPI_OP_NULL until created.
  std::array<std::array<MPI_Op, 3>, 2> ops_{
      {{MPI_OP_NULL, MPI_OP_NULL, MPI_OP_NULL}, {MPI_OP_NULL, MPI_OP_NULL, MPI_OP_NULL}}};
};

}  // namespace cohort::detail
