// The mpirun command line `cohort run` starts: pure, so tests can read what it asks Open MPI for.
#pragma once

#include <string>
#include <utility>
#include <vector>

namespace cohort {

struct MpirunPlan {
  std::string mpirun = "mpirun";
  std::string exec_helper;  // path of cohort-exec
  int ranks = 1;
  std::vector<std::string> hosts;  // local test nodes; empty = this machine's own namespace
  bool as_root = false;
  // More ranks than this machine has cores: ranks must yield the CPU while they wait instead of
  // spinning. Open MPI sees this itself for ranks in one namespace, but not across local test
  // nodes, where each node's daemon believes it has every core (a 4-rank job on 2 cores and 2
  // nodes ran 20x slower spinning).
  bool oversubscribed = false;
  std::vector<std::string> exported_env;  // variable names passed to every rank (-x)
  std::vector<std::string> program;       // the user's PROGRAM ARGS...
};

// How many of `ranks` go to each of `nodes` hosts: as even as possible, the first ones get
// the remainder, consecutive ranks share a node (by-slot, as torchrun and mpirun place them).
std::vector<int> ranks_per_node(int ranks, int nodes);

std::vector<std::string> mpirun_argv(const MpirunPlan& plan);

}  // namespace cohort
