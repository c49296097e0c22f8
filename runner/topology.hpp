// The node's hardware topology as an hwloc XML file, written once when the runner starts and
// handed to every job's Open MPI. Both mpirun and its daemon otherwise discover the topology at
// each start, twice each (Open MPI's own hwloc and PMIx's, which also reads every PCI device's
// config space): ~33 ms of mpirun's ~100 ms on the development VM, on the launch's critical path
// once on the head and once more on every other node.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "cohort/status.hpp"

namespace cohort::runner {

// Where a container sees the node's topology file.
inline constexpr const char* kContainerTopologyFile = "/.cohort/topology.xml";

// Discovers this machine's topology with hwloc (the cores, caches, NUMA nodes and the important
// PCI devices, as Open MPI's own discovery keeps them) and writes it to `path` as XML, replacing
// any earlier file whole.
Status write_node_topology(const std::filesystem::path& path);

// The environment that points Open MPI (`hwloc_base_topo_file`) and PMIx (`pmix_hwloc_topo_file`)
// at the topology file `path_in_job`, as "NAME=value" entries.
std::vector<std::string> topology_environment(const std::string& path_in_job);

}  // namespace cohort::runner
