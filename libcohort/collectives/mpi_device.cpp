// MpiCommunicator's collectives on device buffers: the same shape rules as on the host, then
// NCCL (nccl_backend.hpp), bootstrapped through this communicator at the first such call.
#include <string>

#include "collectives/local_communicator.hpp"
#include "collectives/mpi_communicator.hpp"

namespace cohort::detail {
namespace {

// The shape checks are the host path's: the same buffer, seen as host memory, is checked for
// counts, dtypes and overlaps; whether it is device memory is the backend's check.
Buffer as_host(Buffer b) {
  b.device = Device::kHost;
  return b;
}

Status same_device(const Buffer& in, const Buffer& out, std::string_view name) {
  if (in.device == out.device) return {};
  return invalid_argument(std::string(name) + ": the input is " + (in.device == Device::kCuda ? "device" : "host") +
                          " memory and the output " + (out.device == Device::kCuda ? "device" : "host") +
                          " memory; a collective takes both on one side (copy first)");
}

}  // namespace

Result<NcclBackend*> MpiCommunicator::gpu() {
  if (gpu_) return gpu_.get();
  if (!gpu_failure_.ok()) return gpu_failure_;
  auto made = NcclBackend::create(*this, local_rank_, health_);
  if (!made.ok()) {
    gpu_failure_ = made.status();
    return gpu_failure_;
  }
  gpu_ = std::move(made).value();
  return gpu_.get();
}

MpiCommunicator::DeviceStarted MpiCommunicator::start_device_reduce(std::string_view name, const Buffer& in, Buffer out,
                                                                    ReduceOp op) {
  COHORT_TRY(same_device(in, out, name));
  COHORT_TRY(check_pair(as_host(in), as_host(out)));
  COHORT_TRY(check_reduce_op(out.dtype, op));
  COHORT_ASSIGN_OR_RETURN(NcclBackend * g, gpu());
  COHORT_TRY(g->check_device_memory(in, std::string(name) + " input"));
  COHORT_TRY(g->check_device_memory(out, std::string(name) + " output"));
  return g->allreduce(std::string(name) + " " + std::string(reduce_op_name(op)) + " of " + describe_size(out) +
                          " on the GPU" + on_rank(),
                      in.data, out, op);
}

MpiCommunicator::DeviceStarted MpiCommunicator::start_device_broadcast(std::string_view name, Buffer buffer, int root) {
  COHORT_TRY(check_buffer(as_host(buffer), name));
  COHORT_TRY(check_root(name, root));
  COHORT_ASSIGN_OR_RETURN(NcclBackend * g, gpu());
  COHORT_TRY(g->check_device_memory(buffer, name));
  return g->broadcast(std::string(name) + " from rank " + std::to_string(root) + " of " + describe_size(buffer) +
                          " on the GPU" + on_rank(),
                      buffer, root);
}

MpiCommunicator::DeviceStarted MpiCommunicator::start_device_allgather(std::string_view name, const Buffer& in,
                                                                       Buffer out) {
  COHORT_TRY(same_device(in, out, name));
  COHORT_TRY(check_gather(as_host(in), as_host(out), rank_, size_).status());
  COHORT_ASSIGN_OR_RETURN(NcclBackend * g, gpu());
  COHORT_TRY(g->check_device_memory(in, std::string(name) + " input"));
  COHORT_TRY(g->check_device_memory(out, std::string(name) + " output"));
  return g->allgather(std::string(name) + " of " + describe_size(in) + " per rank on the GPU" + on_rank(), in, out);
}

MpiCommunicator::DeviceStarted MpiCommunicator::start_device_reduce_scatter(std::string_view name, const Buffer& in,
                                                                            Buffer out, ReduceOp op) {
  COHORT_TRY(same_device(in, out, name));
  COHORT_TRY(check_scatter(as_host(in), as_host(out), op, rank_, size_).status());
  COHORT_ASSIGN_OR_RETURN(NcclBackend * g, gpu());
  COHORT_TRY(g->check_device_memory(in, std::string(name) + " input"));
  COHORT_TRY(g->check_device_memory(out, std::string(name) + " output"));
  return g->reduce_scatter(std::string(name) + " " + std::string(reduce_op_name(op)) + " of " + describe_size(out) +
                               " per rank on the GPU" + on_rank(),
                           in, out, op);
}

Status MpiCommunicator::wait_device(DeviceStarted started) {
  if (!started.ok()) return started.status();
  Work work(std::move(started).value());
  return work.wait();  // bounded by the collective timeout, which aborts NCCL
}

Result<Work> MpiCommunicator::device_work(DeviceStarted started) {
  if (!started.ok()) return started.status();
  return Work(std::move(started).value());
}

}  // namespace cohort::detail
