#include "collectives/mpi_work.hpp"

#include <utility>

namespace cohort::detail {

Status mpi_status(int rc, std::string_view call, int rank) {
  if (rc == MPI_SUCCESS) return {};
  char text[MPI_MAX_ERROR_STRING];
  int len = 0;
  MPI_Error_string(rc, text, &len);
  return {Code::kDisconnected, std::string(call) + " failed on rank " + std::to_string(rank) + ": " +
                                   std::string(text, static_cast<std::size_t>(len))};
}

MpiWork::MpiWork(std::string what, int rank, std::shared_ptr<CommHealth> health, Finish finish)
    : what_(std::move(what)), rank_(rank), health_(std::move(health)), finish_(std::move(finish)) {}

void MpiWork::add(int rc, std::string_view call, MPI_Request request) {
  if (rc == MPI_SUCCESS) {
    requests_.push_back(request);
  } else if (start_error_.ok()) {
    start_error_ = mpi_status(rc, call, rank_);
  }
}

Status MpiWork::start_failure() {
  if (start_error_.ok()) return {};
  return health_->fail(what_, start_error_);
}

std::optional<Status> MpiWork::poll() {
  if (result_) return result_;
  if (health_->broken()) {
    // Another collective failed for good: this one cannot complete either, and MPI must not be
    // called again (the call thread may be stuck inside it).
    result_ = health_->check(what_);
    return result_;
  }
  if (!requests_.empty()) {
    int finalized = 0;
    MPI_Finalized(&finalized);
    if (finalized) {
      result_ = failed_precondition(what_ + ": its Communicator was destroyed (MPI finalized) before it completed");
      return result_;
    }
    int flag = 0;
    const int rc = MPI_Testall(static_cast<int>(requests_.size()), requests_.data(), &flag, MPI_STATUSES_IGNORE);
    if (rc != MPI_SUCCESS) {
      result_ = health_->fail(what_, mpi_status(rc, "MPI_Testall", rank_));
      return result_;
    }
    if (!flag) return std::nullopt;
  }
  if (!start_error_.ok()) {
    result_ = start_failure();
  } else if (finish_) {
    result_ = finish_().with_context(what_);
  } else {
    result_ = Status{};
  }
  return result_;
}

Status MpiWork::give_up() {
  if (!result_) result_ = health_->give_up(what_);
  return *result_;
}

}  // namespace cohort::detail
