// The CPU backend over Open MPI. Owns MPI's initialization when it did it, and a duplicate of
// MPI_COMM_WORLD whose errors are returned (MPI_ERRORS_RETURN) rather than aborting the job.
//
// No call waits longer than the collective timeout (CommHealth). A blocking collective of at least
// kCallThreadMinBytes runs as MPI's blocking call on the CallThread while the caller waits with
// the deadline; a smaller one (and every one when MPI gives less than MPI_THREAD_SERIALIZED) runs
// as MPI's nonblocking call, polled by the caller until it completes or the deadline passes. The
// choice depends only on the size, the same on every rank, as MPI requires (a blocking collective
// never matches a nonblocking one).
#pragma once

#include <mpi.h>

#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "cohort/collectives.hpp"
#include "collectives/call_thread.hpp"
#include "collectives/comm_health.hpp"
#include "collectives/mpi_half_ops.hpp"
#include "collectives/mpi_work.hpp"
#include "collectives/nccl_backend.hpp"

namespace cohort::detail {

class MpiCommunicator final : public Communicator {
 public:
  static Result<std::unique_ptr<MpiCommunicator>> create(const Context& ctx, const CommunicatorOptions& options);
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
  // A ring reduce-scatter and allgather over point-to-point messages whose MPI datatypes point
  // into the tensors themselves (mpi_many.cpp).
  bool has_allreduce_many() const noexcept override { return true; }
  Status allreduce_many(std::span<const Buffer> tensors, ReduceOp op) override;

 private:
  using Started = Result<std::unique_ptr<MpiWork>>;

  MpiCommunicator(MPI_Comm comm, int rank, int size, int local_rank, bool finalize, bool threads,
                  std::unique_ptr<MpiHalfOps> half_ops, CommunicatorOptions options);

  // Device buffers (mpi_device.cpp): the same calls through NCCL (nccl_backend.hpp), made at the
  // first call on device buffers; a failure to make it is every later device call's answer.
  using DeviceStarted = NcclBackend::Started;
  Result<NcclBackend*> gpu();
  DeviceStarted start_device_reduce(std::string_view name, const Buffer& in, Buffer out, ReduceOp op);
  DeviceStarted start_device_broadcast(std::string_view name, Buffer buffer, int root);
  DeviceStarted start_device_allgather(std::string_view name, const Buffer& in, Buffer out);
  DeviceStarted start_device_reduce_scatter(std::string_view name, const Buffer& in, Buffer out, ReduceOp op);
  static Status wait_device(DeviceStarted started);
  static Result<Work> device_work(DeviceStarted started);

  // The collectives, checked, each started as MPI's nonblocking call (mpi_async.cpp). `name`
  // ("allreduce", "iallreduce") is the call the user made, for messages.
  Started start_reduce(std::string_view name, const void* in, Buffer out, ReduceOp op);
  Started start_broadcast(std::string_view name, Buffer buffer, int root);
  Started start_allgather(std::string_view name, const Buffer& in, Buffer out, bool in_place);
  Started start_reduce_scatter(std::string_view name, const Buffer& in, Buffer out, ReduceOp op, bool in_place);
  Started start_barrier(std::string_view name);
  // A started Work, or its failure to start when nothing was started.
  Started started(std::unique_ptr<MpiWork> work);

  Status reduce(const void* src, Buffer out, ReduceOp op);  // src: MPI_IN_PLACE or the input
  Status check_root(std::string_view name, int root) const;

  // The blocking calls' two ways to wait (mpi_communicator.cpp): true when one of `bytes` runs on
  // the call thread.
  bool on_call_thread(std::size_t bytes) const noexcept;
  // Runs `call` (MPI's blocking collective) on the call thread until the collective timeout.
  // REQUIRES: `call` copies what it uses (no `this`): it may run on after this returned.
  Status run_on_call_thread(const std::string& what, std::function<Status()> call);
  // Polls a started nonblocking collective without pause until it completes or the collective
  // timeout passes.
  Status wait_blocking(Started started);

  std::string on_rank() const;  // " on rank R of N", for messages
  // MPI's type and operation for a reduction of `dtype` with `op` (kAvg: the sum).
  Result<MPI_Datatype> reduce_type(DType dtype) const;
  MPI_Op reduce_op(DType dtype, ReduceOp op) const;

  MPI_Comm comm_;
  int rank_;
  int size_;
  int local_rank_;
  bool finalize_;                            // true when this object called MPI_Init and so must call MPI_Finalize
  bool threads_;                             // MPI allows calls from another thread (MPI_THREAD_SERIALIZED or more)
  std::unique_ptr<MpiHalfOps> half_ops_;     // freed before MPI_Finalize
  std::shared_ptr<CommHealth> health_;       // shared with every MpiWork
  std::unique_ptr<CallThread> call_thread_;  // started by the first large blocking collective
  // allreduce_many's state kept between calls (a training loop passes the same tensors every
  // step): the chunk datatypes of the last call's tensors, and the scratch chunk.
  struct ManyState {
    std::vector<std::pair<const void*, std::size_t>> key;  // the tensors' addresses and bytes, then (elem, 0)
    std::vector<MPI_Datatype> chunk_types;                 // chunk c's datatype over the tensors
    std::unique_ptr<char[]> scratch;
    std::size_t scratch_bytes = 0;
    void free_types();
  };
  ManyState many_;
  std::unique_ptr<NcclBackend> gpu_;  // made by the first call on device buffers; gone before MPI
  Status gpu_failure_;                // why gpu_ could not be made
};

}  // namespace cohort::detail
