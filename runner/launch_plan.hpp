// How one attempt starts on one node: the first process (`cohort-exec init`, which starts the
// ranks or, on an MPI head, mpirun), its environment, and what the job sees where. Pure: the task
// turns the plan into a container or a plain process; tests check the plan alone.
//
// What the job sees, in a container / as a plain process:
//   code            /code                 ATTEMPT/code
//   Cohort's run dir /.cohort/run          ATTEMPT/run     (ready file, rank reports, progress)
//   Cohort's helpers /.cohort/bin          the runner's own bin directory
//   inputs.NAME      /inputs/NAME          the path in the spec
//   outputs.NAME     /outputs/NAME         the path in the spec
//   checkpoint.dir   /checkpoints          the path in the spec
//   node topology    /.cohort/topology.xml the runner's work dir (host image only; Open MPI reads it)
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "cohort/status.hpp"
#include "cohort/v1/cohort.pb.h"
#include "container.hpp"

namespace cohort::runner {

inline constexpr const char* kContainerRunDir = "/.cohort/run";
inline constexpr const char* kContainerBinDir = "/.cohort/bin";
inline constexpr const char* kContainerCodeDir = "/code";
// torchrun's default; a job that sets MASTER_PORT in its environment_variables keeps its own.
inline constexpr int kDefaultMasterPort = 29500;

struct NodeFacts {
  std::string node_name;
  std::filesystem::path attempt_dir;  // ATTEMPT above
  std::filesystem::path bin_dir;      // where cohort-exec is on the node
  bool container = false;             // the attempt runs in a container
  bool as_root = false;               // plain processes run as root (Open MPI must be told)
  std::int64_t stop_grace_ms = 5000;
  // The node's hwloc topology (topology.hpp); empty when the runner could not write it. Only jobs
  // that run the node's own software (plain processes, the host image) get it: an image brings
  // its own Open MPI, perhaps with an hwloc that cannot parse the file, so it discovers its own.
  std::filesystem::path topology_file;
};

struct LaunchPlan {
  std::vector<std::string> argv;       // the first process, as the job sees paths
  std::vector<std::string> env;        // "NAME=value", the job's whole environment
  std::string cwd;                     // the code directory, as the job sees it
  std::vector<ContainerMount> mounts;  // for a container; empty otherwise
  std::filesystem::path run_dir;       // on the node
  // An MPI head: mpirun waits in the started container until the runner has seen every other
  // node's container up and creates this file (on the node); empty otherwise.
  std::filesystem::path go_file;
  // An MPI worker: where its init takes requests for processes (Open MPI's daemon) in the
  // attempt (on the node); empty otherwise.
  std::filesystem::path exec_socket;
  // An MPI head of several nodes: where its runner takes `cohort-exec bridge`'s requests (on the
  // node); empty otherwise.
  std::filesystem::path bridge_socket;
};

// The environment a job gets: `base`, then the topology file's for Open MPI and PMIx (when the
// node has one), then the spec's variables, then Cohort's own (COHORT_JOB_ID,
// COHORT_ATTEMPT, COHORT_NODE_RANK, COHORT_NUM_NODES, COHORT_NODE_NAME, COHORT_NODE_ADDRESSES,
// COHORT_RUN_DIR, COHORT_PROGRESS_FILE, COHORT_CHECKPOINT_DIR, COHORT_INPUT_<NAME>,
// COHORT_OUTPUT_<NAME>) and the distribution's (MASTER_ADDR, MASTER_PORT, WORLD_SIZE,
// LOCAL_WORLD_SIZE, NODE_RANK for pytorch; the peers and the attempt's secret for mpi), each
// name once, later ones winning.
// InvalidArgument when a mount's source is not an absolute path.
Result<LaunchPlan> plan_launch(const v1::Assignment& assignment, const NodeFacts& node,
                               const std::vector<std::string>& base_environment);

// The command with ${{inputs.NAME}} and ${{outputs.NAME}} replaced by the paths the job sees.
std::string substitute_paths(const std::string& command, const std::vector<ContainerMount>& mounts, bool container);

}  // namespace cohort::runner
