// The node topology file the runner hands to every job's Open MPI: hwloc must read it back as
// this machine, with the cores the machine has.
#include <gtest/gtest.h>
#include <hwloc.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "test_support.hpp"
#include "topology.hpp"

namespace cohort::runner {
namespace {

namespace fs = std::filesystem;

class TopologyTest : public ::testing::Test {
 protected:
  testing::ScratchDir scratch_{"runner-topology-test"};
  const fs::path dir_ = scratch_.path();
};

// The processing units hwloc finds in `xml`, or on this machine when `xml` is empty.
int processing_units(const fs::path& xml) {
  hwloc_topology_t t = nullptr;
  if (hwloc_topology_init(&t) != 0) return -1;
  int pus = -1;
  if ((xml.empty() || hwloc_topology_set_xml(t, xml.c_str()) == 0) && hwloc_topology_load(t) == 0)
    pus = hwloc_get_nbobjs_by_type(t, HWLOC_OBJ_PU);
  hwloc_topology_destroy(t);
  return pus;
}

TEST_F(TopologyTest, TheFileLoadsBackWithThisMachinesProcessingUnits) {
  const fs::path xml = dir_ / "topology.xml";
  ASSERT_TRUE(write_node_topology(xml).ok());
  // What Open MPI would have discovered itself (the cores this process may use: a cgroup's
  // cpuset can allow fewer than the machine has online).
  const int here = processing_units({});
  EXPECT_GE(here, 1);
  EXPECT_LE(here, static_cast<int>(::sysconf(_SC_NPROCESSORS_ONLN)));
  EXPECT_EQ(processing_units(xml), here);
  // A job's non-root user reads it.
  EXPECT_EQ(fs::status(xml).permissions() & fs::perms::others_read, fs::perms::others_read);
}

TEST_F(TopologyTest, AnEarlierFileIsReplacedWholeAndAnUnwritablePlaceIsAnError) {
  const fs::path xml = dir_ / "topology.xml";
  std::ofstream(xml) << "<not a topology";
  ASSERT_TRUE(write_node_topology(xml).ok());
  EXPECT_GT(processing_units(xml), 0);

  Status s = write_node_topology(dir_ / "missing" / "topology.xml");
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.to_string().find("missing"), std::string::npos) << s.to_string();
}

TEST(TopologyEnvironmentTest, PointsOpenMpiAndPmixAtThePath) {
  EXPECT_EQ(topology_environment("/t.xml"),
            (std::vector<std::string>{"OMPI_MCA_hwloc_base_topo_file=/t.xml", "PMIX_MCA_pmix_hwloc_topo_file=/t.xml"}));
}

}  // namespace
}  // namespace cohort::runner
