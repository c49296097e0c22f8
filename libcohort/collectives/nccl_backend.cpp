#include "collectives/nccl_backend.hpp"

#include <cuda_runtime_api.h>
#include <nccl.h>

#include <chrono>
#include <optional>
#include <thread>
#include <vector>

#include "cohort/gpu.hpp"
#include "kernels/kernels.hpp"

namespace cohort::detail {
namespace {

using Clock = std::chrono::steady_clock;

// How long a healthy communicator's ncclCommFinalize may take before the destructor aborts it.
constexpr std::chrono::seconds kFinalizeBound{10};

std::string nccl_error(ncclComm_t comm, ncclResult_t r, std::string_view call) {
  std::string text = std::string(call) + ": " + ncclGetErrorString(r);
  if (comm != nullptr) {
    const char* last = ncclGetLastError(comm);
    if (last != nullptr && *last != '\0') text += " (" + std::string(last) + ")";
  }
  return text;
}

std::string cuda_error(cudaError_t e, std::string_view call) {
  return std::string(call) + ": " + cudaGetErrorString(e);
}

// NCCL's type for each DType, in the enum's order (fp32, fp64, fp16, bf16, int32, int64).
constexpr ncclDataType_t kNcclTypes[] = {ncclFloat32, ncclFloat64, ncclFloat16, ncclBfloat16, ncclInt32, ncclInt64};
// NCCL's operation for each ReduceOp (sum, avg, min, max): avg is the sum, then finish_average.
constexpr ncclRedOp_t kNcclOps[] = {ncclSum, ncclSum, ncclMin, ncclMax};

ncclDataType_t nccl_type(DType dtype) {
  return kNcclTypes[static_cast<int>(dtype)];
}
ncclRedOp_t nccl_op(ReduceOp op) {
  return kNcclOps[static_cast<int>(op)];
}

// The NCCL communicator and its stream, shared by the backend and its Work handles, so a Work
// that gives up can abort the communicator its peers will never complete.
struct NcclState {
  ncclComm_t comm = nullptr;
  cudaStream_t stream = nullptr;
  int rank = 0;
  int world = 0;
  bool aborted = false;
  std::shared_ptr<CommHealth> health;

  void abort() {
    if (comm != nullptr && !aborted) ncclCommAbort(comm);
    aborted = true;
  }

  // Waits (bounded by the health's deadline) while the nonblocking communicator reports
  // ncclInProgress: after init, and after an enqueue that returned it.
  Status settle(std::string_view what, ncclResult_t r) {
    const auto deadline = health->deadline();
    while (r == ncclInProgress) {
      if (Clock::now() >= deadline) {
        abort();
        return health->give_up(what);
      }
      std::this_thread::sleep_for(std::chrono::microseconds(50));
      ncclCommGetAsyncError(comm, &r);
    }
    if (r != ncclSuccess) {
      abort();
      return health->fail(
          what, Status(Code::kDisconnected, nccl_error(comm, r, "NCCL") + " on rank " + std::to_string(rank)));
    }
    return {};
  }
};

class NcclWork final : public Work::Backend {
 public:
  NcclWork(std::string what, std::shared_ptr<NcclState> state, cudaEvent_t event)
      : what_(std::move(what)), state_(std::move(state)), event_(event) {}
  ~NcclWork() override { cudaEventDestroy(event_); }  // released by CUDA once the event completes

  std::optional<Status> poll() override {
    if (result_) return result_;
    if (state_->health->broken()) return result_ = state_->health->check(what_);
    ncclResult_t async = ncclSuccess;
    ncclCommGetAsyncError(state_->comm, &async);
    if (async != ncclSuccess && async != ncclInProgress) {
      state_->abort();
      return result_ = state_->health->fail(
                 what_, Status(Code::kDisconnected,
                               nccl_error(state_->comm, async, "NCCL") + " on rank " + std::to_string(state_->rank)));
    }
    const cudaError_t e = cudaEventQuery(event_);
    if (e == cudaErrorNotReady) return std::nullopt;
    if (e != cudaSuccess) {
      state_->abort();
      return result_ = state_->health->fail(what_, Status(Code::kInternal, cuda_error(e, "cudaEventQuery")));
    }
    return result_ = Status{};
  }
  std::string describe() const override { return what_; }
  std::chrono::milliseconds limit() const override { return state_->health->timeout(); }
  Status give_up() override {
    // The peers will not come: NCCL's kernels would spin forever, so abort the communicator.
    state_->abort();
    if (!result_) result_ = state_->health->give_up(what_);
    return *result_;
  }

 private:
  std::string what_;
  std::shared_ptr<NcclState> state_;
  cudaEvent_t event_;
  std::optional<Status> result_;
};

class NcclBackendImpl final : public NcclBackend {
 public:
  explicit NcclBackendImpl(std::shared_ptr<NcclState> state) : s_(std::move(state)) {}

  ~NcclBackendImpl() override {
    if (!s_->aborted && !s_->health->broken()) {
      // Finalize flushes outstanding work; bounded, then abort: never a blocking destroy.
      ncclResult_t r = ncclCommFinalize(s_->comm);
      const auto until = Clock::now() + kFinalizeBound;
      while (r == ncclInProgress && Clock::now() < until) {
        std::this_thread::sleep_for(std::chrono::microseconds(100));
        ncclCommGetAsyncError(s_->comm, &r);
      }
      if (r == ncclSuccess) {
        ncclCommDestroy(s_->comm);
      } else {
        s_->abort();
      }
    } else {
      s_->abort();
    }
    cudaStreamDestroy(s_->stream);
  }

  Started allreduce(std::string what, const void* in, Buffer out, ReduceOp op) override {
    COHORT_TRY(s_->health->check(what));
    return queued(std::move(what),
                  ncclAllReduce(in, out.data, out.count, nccl_type(out.dtype), nccl_op(op), s_->comm, s_->stream), op,
                  out);
  }

  // Bytes: a broadcast or an allgather moves any dtype.
  Started broadcast(std::string what, Buffer buffer, int root) override {
    COHORT_TRY(s_->health->check(what));
    return queued(std::move(what),
                  ncclBroadcast(buffer.data, buffer.data, buffer.bytes(), ncclUint8, root, s_->comm, s_->stream));
  }

  Started allgather(std::string what, const Buffer& in, Buffer out) override {
    COHORT_TRY(s_->health->check(what));
    return queued(std::move(what), ncclAllGather(in.data, out.data, in.bytes(), ncclUint8, s_->comm, s_->stream));
  }

  Started reduce_scatter(std::string what, const Buffer& in, Buffer out, ReduceOp op) override {
    COHORT_TRY(s_->health->check(what));
    return queued(
        std::move(what),
        ncclReduceScatter(in.data, out.data, out.count, nccl_type(out.dtype), nccl_op(op), s_->comm, s_->stream), op,
        out);
  }

  Status check_device_memory(const Buffer& b, std::string_view what) const override {
    if (b.count == 0) return {};
    if (b.data == nullptr) return invalid_argument(std::string(what) + ": null data with a non-zero count");
    cudaPointerAttributes attr{};
    const cudaError_t e = cudaPointerGetAttributes(&attr, b.data);
    if (e != cudaSuccess) {
      cudaGetLastError();
      return invalid_argument(std::string(what) + ": " + cuda_error(e, "cudaPointerGetAttributes"));
    }
    if (attr.type != cudaMemoryTypeDevice && attr.type != cudaMemoryTypeManaged) {
      return invalid_argument(std::string(what) +
                              ": the buffer is marked Device::kCuda but is host memory; allocate it with "
                              "cudaMalloc (or cudaMallocManaged), or mark it Device::kHost");
    }
    return {};
  }

 private:
  // After an enqueue that returned `r`: its ncclInProgress waited out, an avg's scaling of `out`
  // queued behind it, and its Work.
  Started queued(std::string what, ncclResult_t r, ReduceOp op = ReduceOp::kSum, const Buffer& out = {}) {
    COHORT_TRY(s_->settle(what, r));
    if (op == ReduceOp::kAvg) {
      COHORT_TRY(kernels::finish_average(out.data, out.count, out.dtype, static_cast<std::size_t>(s_->world),
                                         Device::kCuda, s_->stream)
                     .with_context(what));
    }
    return finish(std::move(what));
  }

  // The Work of what was just queued: an event recorded behind it on the stream.
  Started finish(std::string what) {
    cudaEvent_t event = nullptr;
    cudaError_t e = cudaEventCreateWithFlags(&event, cudaEventDisableTiming);
    if (e == cudaSuccess) e = cudaEventRecord(event, s_->stream);
    if (e != cudaSuccess) {
      if (event != nullptr) cudaEventDestroy(event);
      return Status(Code::kInternal, what + ": " + cuda_error(e, "cudaEventRecord"));
    }
    return std::unique_ptr<Work::Backend>(std::make_unique<NcclWork>(std::move(what), s_, event));
  }

  std::shared_ptr<NcclState> s_;
};

}  // namespace

Result<std::unique_ptr<NcclBackend>> NcclBackend::create(Communicator& cpu, int local_rank,
                                                         std::shared_ptr<CommHealth> health) {
  const int rank = cpu.rank(), world = cpu.size();
  const std::string where = " on rank " + std::to_string(rank) + " of " + std::to_string(world);
  // 1. Every rank binds its GPU; all agree that every rank has one.
  Context ctx;
  ctx.rank = rank;
  ctx.world_size = world;
  ctx.local_rank = local_rank;
  auto device = select_gpu(ctx);
  std::vector<std::int32_t> ok(static_cast<std::size_t>(world), 0);
  std::int32_t mine = device.ok() ? 1 : 0;
  COHORT_TRY(cpu.allgather(Buffer{&mine, 1, DType::kInt32}, Buffer{ok.data(), ok.size(), DType::kInt32})
                 .with_context("agreeing on GPUs for NCCL" + where));
  std::string without;
  for (int r = 0; r < world; ++r) {
    if (ok[static_cast<std::size_t>(r)] == 0) without += (without.empty() ? "" : ", ") + std::to_string(r);
  }
  if (!without.empty()) {
    return failed_precondition("device buffers need a GPU on every rank; rank(s) " + without + " have none" +
                               (device.ok() ? std::string() : " (here: " + device.status().message() + ")"));
  }
  // 2. Rank 0's unique id, broadcast through MPI.
  ncclUniqueId id{};
  if (rank == 0) {
    if (ncclResult_t r = ncclGetUniqueId(&id); r != ncclSuccess) {
      // The others wait in the broadcast: end the job's collectives rather than hang them.
      return health->fail("ncclGetUniqueId" + where,
                          Status(Code::kInternal, nccl_error(nullptr, r, "ncclGetUniqueId")));
    }
  }
  static_assert(sizeof(id) % sizeof(std::int32_t) == 0);
  COHORT_TRY(cpu.broadcast(Buffer{&id, sizeof(id) / sizeof(std::int32_t), DType::kInt32}, 0)
                 .with_context("sharing NCCL's unique id" + where));
  // 3. The communicator, nonblocking, so a rank that never joins is a timeout and not a hang.
  auto state = std::make_shared<NcclState>();
  state->rank = rank;
  state->world = world;
  state->health = std::move(health);
  if (cudaError_t e = cudaStreamCreateWithFlags(&state->stream, cudaStreamNonBlocking); e != cudaSuccess) {
    return Status(Code::kInternal, cuda_error(e, "cudaStreamCreateWithFlags") + where);
  }
  ncclConfig_t config = NCCL_CONFIG_INITIALIZER;
  config.blocking = 0;
  ncclResult_t r = ncclCommInitRankConfig(&state->comm, world, id, rank, &config);
  if (r == ncclSuccess || r == ncclInProgress) ncclCommGetAsyncError(state->comm, &r);
  if (Status s = state->settle("ncclCommInitRankConfig" + where, r); !s.ok()) {
    cudaStreamDestroy(state->stream);
    return s;
  }
  return std::unique_ptr<NcclBackend>(std::make_unique<NcclBackendImpl>(std::move(state)));
}

}  // namespace cohort::detail
