// The Work of an MPI nonblocking collective (MPI_Iallreduce, MPI_Ibcast, MPI_Iallgather): its
// requests (one per INT_MAX piece), polled with MPI_Testall; an avg is scaled once they complete.
#pragma once

#include <mpi.h>

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "collectives/work_backend.hpp"

namespace cohort::detail {

// The Status of an MPI call's return code `rc` on `rank`: OK, or Disconnected with MPI's text.
Status mpi_status(int rc, std::string_view call, int rank);

class MpiWork final : public Work::Backend {
 public:
  // `what` names the operation for messages; `average`: on completion, multiply `out` by 1/`world`.
  MpiWork(std::string what, int rank, Buffer out, bool average, std::size_t world);

  // Records a started piece, or (rc not MPI_SUCCESS) the failure to start one: the Work then
  // completes with that failure once the pieces already started have completed.
  void add(int rc, std::string_view call, MPI_Request request);
  bool started_any() const noexcept { return !requests_.empty(); }
  const Status& start_error() const noexcept { return start_error_; }

  std::optional<Status> poll() override;
  std::string describe() const override { return what_; }

 private:
  std::string what_;
  int rank_;
  Buffer out_;
  bool average_;
  std::size_t world_;
  std::vector<MPI_Request> requests_;
  Status start_error_;
  std::optional<Status> result_;  // set once, at completion
};

}  // namespace cohort::detail
