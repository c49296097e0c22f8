// The Work of an MPI nonblocking collective (MPI_Iallreduce, MPI_Ibcast, MPI_Iallgather,
// MPI_Ireduce_scatter_block, MPI_Ibarrier): its requests (one per INT_MAX piece), polled with
// MPI_Testall, and what to do once they complete (an avg's scaling). The communicator's
// CommHealth gives its collective timeout and the verdict when it runs out.
#pragma once

#include <mpi.h>

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "collectives/comm_health.hpp"
#include "collectives/work_backend.hpp"

namespace cohort::detail {

// The Status of an MPI call's return code `rc` on `rank`: OK, or Disconnected with MPI's text.
Status mpi_status(int rc, std::string_view call, int rank);

class MpiWork final : public Work::Backend {
 public:
  // Run once every piece has completed without error: an avg's scaling, a copy out of scratch().
  using Finish = std::function<Status()>;

  // `what` names the operation for messages, rank included ("iallreduce sum of ... on rank 0 of 2").
  MpiWork(std::string what, int rank, std::shared_ptr<CommHealth> health, Finish finish = {});

  // Records a started piece, or (rc not MPI_SUCCESS) the failure to start one: the Work then
  // completes with that failure once the pieces already started have completed.
  void add(int rc, std::string_view call, MPI_Request request);
  bool started_any() const noexcept { return !requests_.empty(); }
  // The failure to start, as the communicator reports it (the communicator is then broken).
  Status start_failure();
  void set_finish(Finish finish) { finish_ = std::move(finish); }
  // Memory the operation writes until it completes (an in-place reduce_scatter's block): it lives
  // as long as this Work, and is leaked with it when the Work is abandoned while MPI still runs.
  std::vector<char>& scratch() noexcept { return scratch_; }

  std::optional<Status> poll() override;
  std::string describe() const override { return what_; }
  std::chrono::milliseconds limit() const override { return health_->timeout(); }
  Status give_up() override;

 private:
  std::string what_;
  int rank_;
  std::shared_ptr<CommHealth> health_;
  Finish finish_;
  std::vector<MPI_Request> requests_;
  std::vector<char> scratch_;
  Status start_error_;
  std::optional<Status> result_;  // set once, at completion or when given up
};

}  // namespace cohort::detail
