#include "collectives/mpi_half_ops.hpp"

#include <cstdlib>

#include "kernels/kernels.hpp"

namespace cohort::detail {
namespace {

// MPI's contract for a user function: inout[i] = in[i] op inout[i] for i < *len. The operations
// are commutative (kernels' sum, min and max are symmetric in their operands, NaN and ±0 included),
// so kernels::reduce's inout = inout op in is the same. It can only fail on arguments MPI does not
// give it (null data with len > 0, a partial overlap), so a failure is a bug: abort loudly.
template <DType kType, ReduceOp kOp>
void half_reduce(void* in, void* inout, int* len, MPI_Datatype* /*type*/) {
  if (*len <= 0) return;
  Status s = kernels::reduce(inout, in, static_cast<std::size_t>(*len), kType, kOp, Device::kHost);
  if (!s.ok()) std::abort();
}

int dtype_index(DType dtype) {
  return dtype == DType::kBFloat16 ? 1 : 0;
}

int op_index(ReduceOp op) {
  switch (op) {
    case ReduceOp::kMin:
      return 1;
    case ReduceOp::kMax:
      return 2;
    case ReduceOp::kSum:
    case ReduceOp::kAvg:
      break;
  }
  return 0;
}

}  // namespace

Result<std::unique_ptr<MpiHalfOps>> MpiHalfOps::create() {
  std::unique_ptr<MpiHalfOps> ops(new MpiHalfOps());
  MPI_User_function* const fns[2][3] = {
      {half_reduce<DType::kFloat16, ReduceOp::kSum>, half_reduce<DType::kFloat16, ReduceOp::kMin>,
       half_reduce<DType::kFloat16, ReduceOp::kMax>},
      {half_reduce<DType::kBFloat16, ReduceOp::kSum>, half_reduce<DType::kBFloat16, ReduceOp::kMin>,
       half_reduce<DType::kBFloat16, ReduceOp::kMax>},
  };
  for (int t = 0; t < 2; ++t) {
    for (int o = 0; o < 3; ++o) {
      if (MPI_Op_create(fns[t][o], /*commute=*/1, &ops->ops_[t][o]) != MPI_SUCCESS) {
        return internal_error("MPI_Op_create for the fp16/bf16 reductions failed");
      }
    }
  }
  return ops;
}

MpiHalfOps::~MpiHalfOps() {
  for (auto& row : ops_) {
    for (MPI_Op& op : row) {
      if (op != MPI_OP_NULL) MPI_Op_free(&op);
    }
  }
}

MPI_Op MpiHalfOps::op(DType dtype, ReduceOp op) const noexcept {
  return ops_[dtype_index(dtype)][op_index(op)];
}

}  // namespace cohort::detail
