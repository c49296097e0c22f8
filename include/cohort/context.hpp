// The job context: who this process is within its job, read once from the environment that
// its launcher set. A training program builds it first and passes it to everything else.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "cohort/status.hpp"

namespace cohort {

class Communicator;

// The exit code of a job that stopped because its node is being taken back, after its checkpoint
// was durable (EX_TEMPFAIL: "try again later", which is what the manager then does).
inline constexpr int kExitPreempted = 75;

// How the process was started, which decides which variables describe it.
enum class LaunchKind {
  kStandalone,  // no launcher variables at all: a world of one
  kMpi,         // Open MPI's mpirun (OMPI_COMM_WORLD_*), as `cohort run` and MPI jobs do
  kEnv,         // torchrun-style RANK / WORLD_SIZE / LOCAL_RANK / MASTER_ADDR / MASTER_PORT
};
std::string_view launch_kind_name(LaunchKind kind) noexcept;

struct Context {
  LaunchKind launch = LaunchKind::kStandalone;
  int rank = 0;
  int world_size = 1;
  int local_rank = 0;        // index among the ranks on this node
  int local_world_size = 1;  // ranks on this node
  int node_rank = 0;         // index of this node among the job's nodes
  int num_nodes = 1;
  std::string job_id = "local";          // COHORT_JOB_ID
  int attempt = 1;                       // COHORT_ATTEMPT: 1 for the first run of a job, +1 per requeue
  std::filesystem::path checkpoint_dir;  // COHORT_CHECKPOINT_DIR; empty when the job has none
  std::string master_addr;               // env-style launches only
  int master_port = 0;
  // Written by the runner of a Cohort job, empty elsewhere: where the job reports its step
  // (COHORT_PROGRESS_FILE), where libcohort leaves what it restored and committed for the runner
  // (COHORT_RUN_DIR), and the file that appears when the node gets a preemption notice
  // (COHORT_NOTICE_FILE), with the signal that comes with it (COHORT_NOTICE_SIGNAL, 0: none).
  std::filesystem::path progress_file;
  std::filesystem::path run_dir;
  std::filesystem::path notice_file;
  int notice_signal = 0;

  bool is_root() const noexcept { return rank == 0; }

  // Reads the process environment. Rules, in order:
  //  - OMPI_COMM_WORLD_RANK set: an MPI launch; OMPI_COMM_WORLD_{SIZE,LOCAL_RANK,LOCAL_SIZE} are
  //    required.
  //  - else RANK or WORLD_SIZE set: an env-style launch; RANK, WORLD_SIZE and LOCAL_RANK are
  //    required, MASTER_ADDR and MASTER_PORT too when WORLD_SIZE > 1; LOCAL_WORLD_SIZE and
  //    NODE_RANK (or GROUP_RANK) are optional.
  //  - else a standalone world of one.
  //  COHORT_NODE_RANK / COHORT_NUM_NODES override the node placement; COHORT_JOB_ID,
  //  COHORT_ATTEMPT and COHORT_CHECKPOINT_DIR are optional.
  // A variable that is missing where required, is not a number, or contradicts another gives
  // InvalidArgument naming that variable.
  static Result<Context> from_environment();

  // from_environment() also catches COHORT_NOTICE_SIGNAL (SIGUSR1 or SIGUSR2), whose default
  // action would end the process: the handler only records that the signal came.

  // The same rules over any lookup, so tests need not touch the process environment; it installs
  // no signal handler.
  using Lookup = std::function<std::optional<std::string>(std::string_view name)>;
  static Result<Context> from_lookup(const Lookup& lookup);

  // Local: this rank's node has a preemption notice (its notice file exists, or the notice signal
  // arrived). Costs a stat(2).
  bool preemption_noticed() const;
  // Collective: whether any rank's node has a notice, agreed through one allreduce, so every rank
  // gets the same answer at the same call and can write one consistent checkpoint before it
  // exits with kExitPreempted. REQUIRES: every rank calls it at the same point (each step, or
  // every few steps); never from a signal handler.
  Result<bool> preemption_requested(Communicator& comm) const;
  // When the node goes, from the notice file; nullopt without a notice (or with an unreadable one).
  std::optional<std::chrono::system_clock::time_point> preemption_deadline() const;

  // Writes `step` to the progress file, which the runner reports as the attempt's last step and
  // a hang detector watches. At most one write per 50 ms unless `force` (the last step before an
  // exit); a no-op outside a Cohort job. Errors name the file.
  Status report_progress(std::int64_t step, bool force = false) const;

  // "job digits-1 attempt 1 rank 2/4 (local 0/2, node 1/2)"
  std::string describe() const;
};

}  // namespace cohort
