#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <cstring>

#include "cohort/collectives.hpp"
#include "collectives/local_communicator.hpp"
#include "collectives/mpi_communicator.hpp"
#include "kernels/kernels.hpp"
#include "kernels/type_switch.hpp"

namespace cohort {

// The kernels room owns the dtype and op tables; the public names are the same functions.
std::size_t dtype_size(DType dtype) noexcept {
  return kernels::element_size(dtype);
}
std::string_view dtype_name(DType dtype) noexcept {
  return kernels::type_label(dtype);
}
std::string_view reduce_op_name(ReduceOp op) noexcept {
  return kernels::op_label(op);
}

Result<CommunicatorOptions> CommunicatorOptions::from_environment() {
  CommunicatorOptions options;
  if (const char* timeout = std::getenv(std::string(kCollectiveTimeoutVariable).c_str()); timeout != nullptr) {
    COHORT_ASSIGN_OR_RETURN(options.collective_timeout, parse_timeout(timeout));
  }
  if (const char* dir = std::getenv("COHORT_RUN_DIR"); dir != nullptr) options.run_dir = dir;
  return options;
}

Result<std::unique_ptr<Communicator>> Communicator::create(const Context& ctx) {
  COHORT_ASSIGN_OR_RETURN(CommunicatorOptions options, CommunicatorOptions::from_environment());
  return create(ctx, options);
}

Result<std::unique_ptr<Communicator>> Communicator::create(const Context& ctx, const CommunicatorOptions& options) {
  if (options.collective_timeout < std::chrono::milliseconds(1) ||
      options.collective_timeout > CommunicatorOptions::kMaxCollectiveTimeout) {
    return invalid_argument("CommunicatorOptions::collective_timeout of " +
                            std::to_string(options.collective_timeout.count()) + " ms: give 1 ms to " +
                            std::to_string(CommunicatorOptions::kMaxCollectiveTimeout.count()) + " ms");
  }
  if (ctx.world_size == 1) return std::unique_ptr<Communicator>(std::make_unique<detail::LocalCommunicator>());
  if (ctx.launch != LaunchKind::kMpi) {
    return failed_precondition("collectives across " + std::to_string(ctx.world_size) +
                               " ranks need an Open MPI launch; this process was started by a '" +
                               std::string(launch_kind_name(ctx.launch)) +
                               "' launcher. Start the job with `cohort run -n N` or mpirun");
  }
  COHORT_ASSIGN_OR_RETURN(auto comm, detail::MpiCommunicator::create(ctx, options));
  return std::unique_ptr<Communicator>(std::move(comm));
}

namespace detail {

Status check_buffer(const Buffer& b, std::string_view what) {
  if (b.device != Device::kHost) {
    // The MPI communicator sends device buffers to NCCL before this check; what is left is a
    // world of one rank, which has no GPU path.
    return {Code::kUnimplemented, std::string(what) +
                                      ": device buffers go through NCCL, across 2 or more ranks (one per GPU); a "
                                      "world of one rank has no GPU path: copy to the host, or launch more ranks"};
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

namespace {

bool overlap(const void* a, std::size_t a_bytes, const void* b, std::size_t b_bytes) {
  const auto x = reinterpret_cast<std::uintptr_t>(a);
  const auto y = reinterpret_cast<std::uintptr_t>(b);
  return a_bytes != 0 && b_bytes != 0 && x < y + b_bytes && y < x + a_bytes;
}

std::string describe(const Buffer& b) {
  return std::to_string(b.count) + " " + std::string(dtype_name(b.dtype));
}

}  // namespace

Result<bool> check_gather(const Buffer& in, const Buffer& out, int rank, int size) {
  COHORT_TRY(check_buffer(in, "allgather input"));
  COHORT_TRY(check_buffer(out, "allgather output"));
  const std::size_t world = static_cast<std::size_t>(size);
  if (in.dtype != out.dtype || out.count != in.count * world) {
    return invalid_argument("allgather output must hold " + std::to_string(size) + " × its input (" + describe(in) +
                            " on each rank, so " + std::to_string(in.count * world) + " " +
                            std::string(dtype_name(in.dtype)) + "), not " + describe(out));
  }
  const char* slot = static_cast<const char*>(out.data) + static_cast<std::size_t>(rank) * in.bytes();
  if (in.count != 0 && in.data == slot) return true;
  if (overlap(in.data, in.bytes(), out.data, out.bytes())) {
    return invalid_argument("allgather input overlaps its output without being rank " + std::to_string(rank) +
                            "'s block of it (the in-place form)");
  }
  return false;
}

Result<bool> check_scatter(const Buffer& in, const Buffer& out, ReduceOp op, int rank, int size) {
  COHORT_TRY(check_buffer(in, "reduce_scatter input"));
  COHORT_TRY(check_buffer(out, "reduce_scatter output"));
  COHORT_TRY(check_reduce_op(in.dtype, op));
  const std::size_t world = static_cast<std::size_t>(size);
  if (in.dtype != out.dtype || in.count != out.count * world) {
    return invalid_argument("reduce_scatter input must hold " + std::to_string(size) + " × its output (" +
                            describe(out) + " on each rank, so " + std::to_string(out.count * world) + " " +
                            std::string(dtype_name(out.dtype)) + "), not " + describe(in));
  }
  const char* slot = static_cast<const char*>(in.data) + static_cast<std::size_t>(rank) * out.bytes();
  if (out.count != 0 && out.data == slot) return true;
  if (overlap(in.data, in.bytes(), out.data, out.bytes())) {
    return invalid_argument("reduce_scatter output overlaps its input without being rank " + std::to_string(rank) +
                            "'s block of it (the in-place form)");
  }
  return false;
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

Status LocalCommunicator::allgather(const Buffer& in, Buffer out) {
  COHORT_ASSIGN_OR_RETURN(bool in_place, check_gather(in, out, 0, 1));
  if (!in_place && in.count != 0) std::memcpy(out.data, in.data, in.bytes());
  return {};
}

Status LocalCommunicator::reduce_scatter(const Buffer& in, Buffer out, ReduceOp op) {
  COHORT_ASSIGN_OR_RETURN(bool in_place, check_scatter(in, out, op, 0, 1));
  if (!in_place && out.count != 0) std::memcpy(out.data, in.data, out.bytes());
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
