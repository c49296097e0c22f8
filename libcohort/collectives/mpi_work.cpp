#include "collectives/mpi_work.hpp"

#include <utility>

#include "kernels/kernels.hpp"

namespace cohort::detail {

Status mpi_status(int rc, std::string_view call, int rank) {
  if (rc == MPI_SUCCESS) return {};
  char text[MPI_MAX_ERROR_STRING];
  int len = 0;
  MPI_Error_string(rc, text, &len);
  return {Code::kDisconnected, std::string(call) + " failed on rank " + std::to_string(rank) + ": " +
                                   std::string(text, static_cast<std::size_t>(len))};
}

MpiWork::MpiWork(std::string what, int rank, Buffer out, bool average, std::size_t world)
    : what_(std::move(what)), rank_(rank), out_(out), average_(average), world_(world) {}

void MpiWork::add(int rc, std::string_view call, MPI_Request request) {
  if (rc == MPI_SUCCESS) {
    requests_.push_back(request);
  } else if (start_error_.ok()) {
    start_error_ = mpi_status(rc, call, rank_).with_context(what_);
  }
}

std::optional<Status> MpiWork::poll() {
  if (result_) return result_;
  int finalized = 0;
  MPI_Finalized(&finalized);
  if (finalized) {
    result_ = failed_precondition(what_ + ": its Communicator was destroyed (MPI finalized) before it completed");
    return result_;
  }
  int flag = 0;
  const int rc = MPI_Testall(static_cast<int>(requests_.size()), requests_.data(), &flag, MPI_STATUSES_IGNORE);
  if (rc != MPI_SUCCESS) {
    result_ = mpi_status(rc, "MPI_Testall", rank_).with_context(what_);
    return result_;
  }
  if (!flag) return std::nullopt;
  if (!start_error_.ok()) {
    result_ = start_error_;
  } else if (average_) {
    result_ = kernels::finish_average(out_.data, out_.count, out_.dtype, world_, Device::kHost).with_context(what_);
  } else {
    result_ = Status{};
  }
  return result_;
}

}  // namespace cohort::detail
