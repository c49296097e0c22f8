#include <cstdlib>
#include <cstring>

#include "cohort/collectives.hpp"
#include "collectives/local_communicator.hpp"
#include "collectives/mpi_communicator.hpp"

namespace cohort {

std::size_t dtype_size(DType dtype) noexcept {
  switch (dtype) {
    case DType::kFloat32:
      return 4;
    case DType::kFloat64:
      return 8;
    case DType::kFloat16:
      return 2;
    case DType::kBFloat16:
      return 2;
    case DType::kInt32:
      return 4;
    case DType::kInt64:
      return 8;
  }
  return 0;
}

std::string_view dtype_name(DType dtype) noexcept {
  switch (dtype) {
    case DType::kFloat32:
      return "fp32";
    case DType::kFloat64:
      return "fp64";
    case DType::kFloat16:
      return "fp16";
    case DType::kBFloat16:
      return "bf16";
    case DType::kInt32:
      return "int32";
    case DType::kInt64:
      return "int64";
  }
  return "unknown";
}

std::string_view reduce_op_name(ReduceOp op) noexcept {
  switch (op) {
    case ReduceOp::kSum:
      return "sum";
    case ReduceOp::kAvg:
      return "avg";
    case ReduceOp::kMin:
      return "min";
    case ReduceOp::kMax:
      return "max";
  }
  return "unknown";
}

Result<std::unique_ptr<Communicator>> Communicator::create(const Context& ctx) {
  if (ctx.world_size == 1) return std::unique_ptr<Communicator>(std::make_unique<detail::LocalCommunicator>());
  if (ctx.launch != LaunchKind::kMpi) {
    return failed_precondition("collectives across " + std::to_string(ctx.world_size) +
                               " ranks need an Open MPI launch; this process was started by a '" +
                               std::string(launch_kind_name(ctx.launch)) +
                               "' launcher. Start the job with `cohort run -n N` or mpirun");
  }
  COHORT_ASSIGN_OR_RETURN(auto comm, detail::MpiCommunicator::create(ctx));
  return std::unique_ptr<Communicator>(std::move(comm));
}

namespace detail {

Status check_buffer(const Buffer& b, std::string_view what) {
  if (b.device != Device::kHost) {
    return {Code::kUnimplemented, std::string(what) + ": device buffers need a build with CUDA and the GPU backend"};
  }
  if (b.data == nullptr && b.count != 0)
    return invalid_argument(std::string(what) + ": null data with a non-zero count");
  return {};
}

Status check_pair(const Buffer& in, const Buffer& out) {
  COHORT_TRY(check_buffer(in, "allreduce input"));
  COHORT_TRY(check_buffer(out, "allreduce output"));
  if (in.count != out.count || in.dtype != out.dtype) {
    return invalid_argument("allreduce output must match its input: input is " + std::to_string(in.count) + " " +
                            std::string(dtype_name(in.dtype)) + ", output " + std::to_string(out.count) + " " +
                            std::string(dtype_name(out.dtype)));
  }
  return {};
}

Status check_reduce_op(DType dtype, ReduceOp op) {
  const bool is_float = dtype != DType::kInt32 && dtype != DType::kInt64;
  if (op == ReduceOp::kAvg && !is_float) {
    return invalid_argument("allreduce avg needs a floating-point dtype, not " + std::string(dtype_name(dtype)));
  }
  return {};
}

// One rank: sum, avg, min and max of one value are that value.
Status LocalCommunicator::allreduce(Buffer inout, ReduceOp op) {
  COHORT_TRY(check_buffer(inout, "allreduce"));
  return check_reduce_op(inout.dtype, op);
}

Status LocalCommunicator::allreduce(const Buffer& in, Buffer out, ReduceOp op) {
  COHORT_TRY(check_pair(in, out));
  COHORT_TRY(check_reduce_op(in.dtype, op));
  if (in.data != out.data && in.count != 0) std::memmove(out.data, in.data, in.bytes());
  return {};
}

void LocalCommunicator::abort(int exit_code) {
  std::_Exit(exit_code);
}

Status LocalCommunicator::broadcast(Buffer buffer, int root) {
  if (root != 0) return invalid_argument("broadcast root " + std::to_string(root) + " is not a rank of a world of 1");
  return check_buffer(buffer, "broadcast");
}

}  // namespace detail
}  // namespace cohort
