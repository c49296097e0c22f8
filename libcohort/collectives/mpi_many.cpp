// MpiCommunicator::allreduce_many: many tensors reduced as one allreduce without packing them.
//
// The tensors, laid end to end, are one virtual buffer of E elements cut into size() chunks. A
// ring reduce-scatter (size() - 1 steps: send one chunk to the right, receive the next from the
// left into a scratch chunk, reduce it into the tensors with Cohort's kernels) leaves each rank
// one fully reduced chunk; a ring allgather (size() - 1 steps) passes the reduced chunks round,
// received straight into the tensors. Every message's MPI datatype is an hindexed list of byte
// blocks at the tensors' own addresses (MPI_BOTTOM), so MPI reads and writes the tensors in
// place: the fused buffer's pack and unpack copies are gone. fp16/bf16 reduce with the kernels'
// fp32 arithmetic, rounded once per element per hop, as the CPU path does.
#include <mpi.h>

#include <algorithm>
#include <climits>
#include <string>
#include <vector>

#include "collectives/local_communicator.hpp"
#include "collectives/mpi_communicator.hpp"
#include "kernels/kernels.hpp"

namespace cohort::detail {
namespace {

constexpr int kTag = 7301;  // point-to-point on the communicator's own duplicate: no user tag collides

struct Piece {
  char* data;
  std::size_t bytes;
};

// The tensors' bytes [lo, hi) of the virtual buffer, as pieces of at most INT_MAX bytes.
// `starts[i]` is tensor i's first byte in the virtual buffer (starts.back(): the total).
std::vector<Piece> pieces_of(std::span<const Buffer> tensors, const std::vector<std::size_t>& starts, std::size_t lo,
                             std::size_t hi) {
  std::vector<Piece> out;
  auto i = static_cast<std::size_t>(std::upper_bound(starts.begin(), starts.end(), lo) - starts.begin()) - 1;
  for (; lo < hi && i < tensors.size(); ++i) {
    const std::size_t end = std::min(hi, starts[i + 1]);
    for (std::size_t at = lo; at < end;) {
      const std::size_t n = std::min<std::size_t>(end - at, INT_MAX);
      out.push_back({static_cast<char*>(tensors[i].data) + (at - starts[i]), n});
      at += n;
    }
    lo = end;
  }
  return out;
}

// A committed MPI datatype naming `pieces` at their absolute addresses (for MPI_BOTTOM).
int pieces_type(const std::vector<Piece>& pieces, MPI_Datatype* type) {
  std::vector<int> lengths;
  std::vector<MPI_Aint> at;
  lengths.reserve(pieces.size());
  at.reserve(pieces.size());
  for (const Piece& p : pieces) {
    MPI_Aint address = 0;
    MPI_Get_address(p.data, &address);
    lengths.push_back(static_cast<int>(p.bytes));
    at.push_back(address);
  }
  int rc = MPI_Type_create_hindexed(static_cast<int>(pieces.size()), lengths.data(), at.data(), MPI_BYTE, type);
  if (rc == MPI_SUCCESS) rc = MPI_Type_commit(type);
  return rc;
}

}  // namespace

Status MpiCommunicator::allreduce_many(std::span<const Buffer> tensors, ReduceOp op) {
  if (tensors.empty()) return {};
  const DType dtype = tensors.front().dtype;
  const std::size_t elem = dtype_size(dtype);
  std::vector<std::size_t> starts{0};
  starts.reserve(tensors.size() + 1);
  // What the chunk datatypes depend on: the tensors' addresses and sizes, then the element size.
  std::vector<std::pair<const void*, std::size_t>> key;
  key.reserve(tensors.size() + 1);
  for (std::size_t i = 0; i < tensors.size(); ++i) {
    // The message is built only for a bad tensor: this loop runs for every tensor of every step.
    const Buffer& t = tensors[i];
    if (t.device != Device::kHost || (t.data == nullptr && t.count != 0)) {
      COHORT_TRY(check_buffer(t, "allreduce_many tensor " + std::to_string(i)));
    }
    if (t.dtype != dtype) {
      return invalid_argument("allreduce_many tensor " + std::to_string(i) + " is " + std::string(dtype_name(t.dtype)) +
                              ", tensor 0 " + std::string(dtype_name(dtype)) + ": one call reduces one dtype");
    }
    starts.push_back(starts.back() + t.bytes());
    key.emplace_back(t.data, t.bytes());
  }
  key.emplace_back(nullptr, elem);
  COHORT_TRY(check_reduce_op(dtype, op));
  const std::size_t total = starts.back() / elem;  // elements
  std::string what = "allreduce_many " + std::string(reduce_op_name(op)) + " of " + std::to_string(tensors.size()) +
                     " tensors (" + std::to_string(starts.back()) + " bytes of " + std::string(dtype_name(dtype)) +
                     ")" + on_rank();
  COHORT_TRY(health_->check(what));
  const int n = size_;
  // Chunk c: elements [total × c / n, total × (c + 1) / n), in bytes.
  auto lo = [&](int c) { return total * static_cast<std::size_t>(c) / static_cast<std::size_t>(n) * elem; };
  auto chunk = [&](int c) { return pieces_of(tensors, starts, lo(c), lo(c + 1)); };
  const int right = (rank_ + 1) % n, left = (rank_ + n - 1) % n;

  // The chunks' datatypes: the last call's when the tensors are the same, else made anew.
  if (key != many_.key) {
    many_.free_types();
    for (int c = 0; c < n; ++c) {
      MPI_Datatype type = MPI_DATATYPE_NULL;
      if (int rc = pieces_type(chunk(c), &type); rc != MPI_SUCCESS) {
        many_.free_types();
        return health_->fail(what, mpi_status(rc, "MPI_Type_create_hindexed", rank_));
      }
      many_.chunk_types.push_back(type);
    }
    many_.key = std::move(key);
  }
  const std::size_t scratch_bytes = lo(1) + elem;  // the largest chunk: chunks differ by one element at most
  if (many_.scratch_bytes < scratch_bytes) {
    many_.scratch.reset();
    many_.scratch = std::make_unique_for_overwrite<char[]>(scratch_bytes);
    many_.scratch_bytes = scratch_bytes;
  }
  char* scratch = many_.scratch.get();

  // One exchange: chunk `send` to the right; chunk `recv` from the left, into the tensors or (for
  // the reduce-scatter) into the scratch chunk; bounded by the deadline.
  auto exchange = [&](int send, int recv, bool into_scratch) {
    auto work = std::make_unique<MpiWork>(what, rank_, health_);
    MPI_Request request = MPI_REQUEST_NULL;
    int rc =
        into_scratch
            ? MPI_Irecv(scratch, static_cast<int>(lo(recv + 1) - lo(recv)), MPI_BYTE, left, kTag, comm_, &request)
            : MPI_Irecv(MPI_BOTTOM, 1, many_.chunk_types[static_cast<std::size_t>(recv)], left, kTag, comm_, &request);
    work->add(rc, "MPI_Irecv", request);
    if (rc == MPI_SUCCESS) {
      rc = MPI_Isend(MPI_BOTTOM, 1, many_.chunk_types[static_cast<std::size_t>(send)], right, kTag, comm_, &request);
      work->add(rc, "MPI_Isend", request);
    }
    return wait_blocking(started(std::move(work)));
  };

  // Reduce-scatter: after step k, chunk (rank - k - 1) holds k + 2 ranks' contributions.
  for (int k = 0; k < n - 1; ++k) {
    const int send = (rank_ - k + 2 * n) % n, recv = (rank_ - k - 1 + 2 * n) % n;
    COHORT_TRY(exchange(send, recv, true));
    std::size_t at = 0;
    for (const Piece& p : chunk(recv)) {
      COHORT_TRY(kernels::reduce(p.data, scratch + at, p.bytes / elem, dtype,
                                 op == ReduceOp::kAvg ? ReduceOp::kSum : op, Device::kHost)
                     .with_context(what));
      at += p.bytes;
    }
  }
  // Allgather: this rank's reduced chunk is (rank + 1); pass each reduced chunk round.
  for (int k = 0; k < n - 1; ++k) {
    COHORT_TRY(exchange((rank_ + 1 - k + 2 * n) % n, (rank_ - k + 2 * n) % n, false));
  }
  if (op == ReduceOp::kAvg) {
    for (const Buffer& t : tensors) {
      COHORT_TRY(kernels::finish_average(t.data, t.count, dtype, static_cast<std::size_t>(n), Device::kHost)
                     .with_context(what));
    }
  }
  return {};
}

void MpiCommunicator::ManyState::free_types() {
  for (MPI_Datatype& t : chunk_types) {
    if (t != MPI_DATATYPE_NULL) MPI_Type_free(&t);
  }
  chunk_types.clear();
  key.clear();
}

}  // namespace cohort::detail
