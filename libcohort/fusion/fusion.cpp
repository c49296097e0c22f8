#include "cohort/fusion.hpp"

#include <string>
#include <utility>

#include "kernels/kernels.hpp"

namespace cohort {
namespace {

bool is_integer(DType dtype) {
  return dtype == DType::kInt32 || dtype == DType::kInt64;
}

std::string describe(std::size_t tensors, std::size_t bytes, DType dtype) {
  return std::to_string(tensors) + " tensor(s), " + std::to_string(bytes) + " bytes of " +
         std::string(dtype_name(dtype));
}

}  // namespace

FusionBuffer::FusionBuffer(Communicator& comm, Options options) : comm_(comm), options_(options) {
  open_.fill(kNone);
}

FusionBuffer::~FusionBuffer() = default;

Status FusionBuffer::add(Buffer tensor) {
  // Built only on error: add() is on the per-step path of every tensor.
  auto which = [&] { return "FusionBuffer::add of tensor " + std::to_string(queued_tensors_); };
  if (tensor.device != Device::kHost) {
    return {Code::kUnimplemented, which() +
                                      ": the tensor is in device memory and fusion is host-only for now; reduce "
                                      "device tensors with Communicator::allreduce"};
  }
  const std::size_t elem = dtype_size(tensor.dtype);
  const auto slot = static_cast<std::size_t>(tensor.dtype);
  if (elem == 0 || slot >= kDTypes) {
    return invalid_argument(which() + ": dtype " + std::to_string(static_cast<int>(tensor.dtype)) +
                            " is not a Cohort DType");
  }
  if (tensor.count == 0) return Status::ok_status();
  if (tensor.data == nullptr) {
    return invalid_argument(which() + ": data is null for " + std::to_string(tensor.count) + " elements of " +
                            std::string(dtype_name(tensor.dtype)));
  }
  const std::size_t bytes = tensor.bytes();
  ++queued_tensors_;
  queued_bytes_ += bytes;
  if (bytes > options_.threshold_bytes) {  // alone, in place; the open bucket stays open
    buckets_.push_back(Bucket{tensor.dtype, bytes, {tensor}});
    return Status::ok_status();
  }
  std::size_t& open = open_[slot];
  if (open == kNone || buckets_[open].bytes + bytes > options_.threshold_bytes) {
    open = buckets_.size();
    buckets_.push_back(Bucket{tensor.dtype, 0, {}});
  }
  Bucket& bucket = buckets_[open];
  bucket.bytes += bytes;
  bucket.tensors.push_back(tensor);
  return Status::ok_status();
}

Status FusionBuffer::allreduce(ReduceOp op) {
  // Refused before any communication: every rank holds the same buckets, so every rank refuses.
  if (op == ReduceOp::kAvg) {
    for (const Bucket& bucket : buckets_) {
      if (is_integer(bucket.dtype)) {
        Status refused = invalid_argument("FusionBuffer::allreduce: avg of " + std::string(dtype_name(bucket.dtype)) +
                                          " tensors (integer dtypes have sum, min and max only)");
        clear();
        return refused;
      }
    }
  }
  Status result;
  for (std::size_t i = 0; i < buckets_.size() && result.ok(); ++i)
    result = reduce_bucket(i, op);
  clear();
  return result;
}

Status FusionBuffer::reduce_bucket(std::size_t index, ReduceOp op) {
  const Bucket& bucket = buckets_[index];
  const std::string where = "FusionBuffer::allreduce of bucket " + std::to_string(index) + " of " +
                            std::to_string(buckets_.size()) + " (" +
                            describe(bucket.tensors.size(), bucket.bytes, bucket.dtype) + ")";
  ++stats_.allreduce_calls;
  if (bucket.tensors.size() == 1) return comm_.allreduce(bucket.tensors.front(), op).with_context(where);
  if (comm_.has_allreduce_many() && !options_.pack) {
    // The backend moves the tensors in place: no staging buffer, no pack or unpack.
    COHORT_TRY(comm_.allreduce_many(bucket.tensors, op).with_context(where));
    stats_.fused_tensors += bucket.tensors.size();
    return Status::ok_status();
  }

  if (staging_bytes_ < bucket.bytes) {
    staging_.reset();  // free the old one first: the two together may not fit
    staging_bytes_ = 0;
    staging_ = std::make_unique_for_overwrite<std::byte[]>(bucket.bytes);
    staging_bytes_ = bucket.bytes;
  }
  std::vector<kernels::ConstBufferView> srcs;
  std::vector<kernels::MutableBufferView> dsts;
  srcs.reserve(bucket.tensors.size());
  dsts.reserve(bucket.tensors.size());
  for (const Buffer& t : bucket.tensors) {
    srcs.push_back({t.data, t.bytes()});
    dsts.push_back({t.data, t.bytes()});
  }
  COHORT_TRY(kernels::pack({staging_.get(), staging_bytes_}, srcs, Device::kHost).with_context(where + ": pack"));
  const Buffer fused{staging_.get(), bucket.bytes / dtype_size(bucket.dtype), bucket.dtype, Device::kHost};
  COHORT_TRY(comm_.allreduce(fused, op).with_context(where));
  COHORT_TRY(kernels::unpack(dsts, {staging_.get(), bucket.bytes}, Device::kHost).with_context(where + ": unpack"));
  stats_.fused_tensors += bucket.tensors.size();
  stats_.packed_bytes += bucket.bytes;
  return Status::ok_status();
}

void FusionBuffer::clear() noexcept {
  buckets_.clear();
  open_.fill(kNone);
  queued_tensors_ = 0;
  queued_bytes_ = 0;
}

}  // namespace cohort
