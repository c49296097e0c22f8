#include "topology.hpp"

#include <hwloc.h>

#include <memory>

#include "file_write.hpp"

namespace cohort::runner {

namespace {

struct TopologyCloser {
  void operator()(hwloc_topology* t) const { hwloc_topology_destroy(t); }
};

Status hwloc_error(const std::string& call) {
  return Status(Code::kInternal, "hwloc: " + call + " failed (errno " + std::to_string(errno) + ")");
}

}  // namespace

Status write_node_topology(const std::filesystem::path& path) {
  hwloc_topology_t raw = nullptr;
  if (hwloc_topology_init(&raw) != 0) return hwloc_error("hwloc_topology_init");
  std::unique_ptr<hwloc_topology, TopologyCloser> topology(raw);
  // Open MPI and PMIx keep the PCI devices that matter for locality (GPUs, NICs): so must we, or
  // their device distances would lose them.
  if (hwloc_topology_set_io_types_filter(raw, HWLOC_TYPE_FILTER_KEEP_IMPORTANT) != 0)
    return hwloc_error("hwloc_topology_set_io_types_filter");
  if (hwloc_topology_load(raw) != 0) return hwloc_error("hwloc_topology_load");
  char* xml = nullptr;
  int length = 0;
  if (hwloc_topology_export_xmlbuffer(raw, &xml, &length, 0) != 0 || xml == nullptr)
    return hwloc_error("hwloc_topology_export_xmlbuffer");
  // The length counts the terminating NUL.
  const std::string text(xml, length > 0 ? static_cast<std::size_t>(length - 1) : 0);
  hwloc_free_xmlbuffer(raw, xml);
  return write_file_replacing(path, text, 0644);
}

std::vector<std::string> topology_environment(const std::string& path_in_job) {
  return {"OMPI_MCA_hwloc_base_topo_file=" + path_in_job, "PMIX_MCA_pmix_hwloc_topo_file=" + path_in_job};
}

}  // namespace cohort::runner
