// Tensor fusion, as Horovod does it: many small tensors reduced by one allreduce of one packed
// buffer instead of one allreduce each, so the per-call latency is paid once per bucket rather than
// once per tensor.
//
//   cohort::FusionBuffer fusion(comm);              // 64 MiB buckets
//   for (auto& grad : grads) COHORT_TRY(fusion.add(grad_buffer(grad)));
//   COHORT_TRY(fusion.allreduce(cohort::ReduceOp::kAvg));  // every grad now holds the average
//
// add() only queues a view: it never communicates. Queued tensors fall into buckets, one open
// bucket per dtype (a fused allreduce has one dtype); a tensor that would take its dtype's open
// bucket past the threshold closes that bucket and opens the next one. allreduce(op) then reduces
// the buckets in the order they were opened, each as ONE collective: on a communicator that has
// Communicator::allreduce_many (the MPI backend) the tensors move between ranks where they are,
// with no copy; otherwise each bucket is packed (kernels::pack) into one staging buffer that the
// FusionBuffer keeps and reuses, reduced by one Communicator::allreduce, and unpacked back into its
// tensors. A bucket of one tensor (in particular a tensor larger than the threshold) is reduced
// in place by allreduce.
//
// docs/fusion.md has the measured figures and how to reproduce them.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <ranges>
#include <span>
#include <vector>

#include "cohort/collectives.hpp"
#include "cohort/status.hpp"

namespace cohort {

struct FusionOptions {
  // Most bytes one fused allreduce carries, and so the size of the staging buffer (allocated on
  // first use, up to the largest bucket actually formed). 64 MiB is Horovod's default
  // (HOROVOD_FUSION_THRESHOLD): large enough that the per-call latency of an allreduce is noise
  // against its bandwidth term, small enough to stay a modest extra copy of a model's gradients.
  // 0 fuses nothing: every tensor is reduced on its own.
  std::size_t threshold_bytes = std::size_t{64} << 20;
  // Pack every bucket into the staging buffer even when the communicator can reduce the tensors
  // where they are (Communicator::allreduce_many, the MPI backend): for comparison in benchmarks.
  bool pack = false;
};

class FusionBuffer {
 public:
  using Options = FusionOptions;

  // What this FusionBuffer has done since it was made (for tests and benchmarks).
  struct Stats {
    std::uint64_t allreduce_calls = 0;  // Communicator::allreduce calls made
    std::uint64_t fused_tensors = 0;    // tensors that went through the staging buffer
    std::uint64_t packed_bytes = 0;     // bytes packed into (and unpacked from) it
  };

  // `comm` is not owned. REQUIRES: it outlives this FusionBuffer.
  explicit FusionBuffer(Communicator& comm, Options options = Options());
  FusionBuffer(const FusionBuffer&) = delete;
  FusionBuffer& operator=(const FusionBuffer&) = delete;
  ~FusionBuffer();

  // Queues `tensor` for the next allreduce(); it is not read or written until then. A tensor of
  // 0 elements is accepted and ignored.
  // Unimplemented for a device (CUDA) tensor; InvalidArgument for a null tensor of >0 elements or a
  // dtype outside the enum. Nothing is queued on error.
  // REQUIRES: every rank adds the same sequence of tensors (same counts and dtypes, same order)
  //           before the same allreduce() call, as with any collective; a mismatch makes the
  //           ranks' fused allreduces disagree in size (an MPI error, or a hang).
  // REQUIRES: the tensor stays alive and unmoved until allreduce() returns, and no queued tensor
  //           overlaps another.
  Status add(Buffer tensor);
  // A contiguous range of a Cohort element type (std::vector<float>, ...). Lvalues only: the
  // range is kept by reference until allreduce().
  template <std::ranges::contiguous_range R>
  Status add(R& tensor) {
    return add(Buffer::of(std::span(tensor)));
  }

  // Reduces every queued tensor across ranks in place with `op`, one Communicator::allreduce per
  // bucket, and empties the queue. avg of an integer dtype is InvalidArgument, decided before any
  // communication. On a failed allreduce the queue is emptied too; tensors of that bucket and of
  // later ones hold unspecified (their own or partly reduced) values. The error names the bucket.
  Status allreduce(ReduceOp op);

  // Forgets the queued tensors without reducing them (local; no communication).
  void clear() noexcept;

  std::size_t queued_tensors() const noexcept { return queued_tensors_; }
  std::size_t queued_bytes() const noexcept { return queued_bytes_; }
  // Allreduce calls the next allreduce() will make.
  std::size_t bucket_count() const noexcept { return buckets_.size(); }
  const Options& options() const noexcept { return options_; }
  const Stats& stats() const noexcept { return stats_; }

 private:
  struct Bucket {
    DType dtype = DType::kFloat32;
    std::size_t bytes = 0;
    std::vector<Buffer> tensors;
  };
  static constexpr std::size_t kDTypes = 6;  // the values of DType
  static constexpr std::size_t kNone = static_cast<std::size_t>(-1);

  Status reduce_bucket(std::size_t index, ReduceOp op);

  Communicator& comm_;  // not owned: the caller keeps it alive (see the constructor)
  Options options_;
  std::vector<Bucket> buckets_;
  std::array<std::size_t, kDTypes> open_;  // per dtype: the bucket still taking tensors, or kNone
  std::size_t queued_tensors_ = 0;
  std::size_t queued_bytes_ = 0;
  std::unique_ptr<std::byte[]> staging_;  // the packed bucket; grown on demand, never shrunk
  std::size_t staging_bytes_ = 0;
  Stats stats_;
};

}  // namespace cohort
