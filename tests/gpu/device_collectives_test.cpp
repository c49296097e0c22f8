// The NCCL backend across 2 ranks: every collective and dtype on device buffers against values
// the job computes itself (cohort-device-collectives-check). NCCL takes one rank per GPU, so
// this needs 2 GPUs; it skips, saying so, with fewer.
#include <gtest/gtest.h>

#include "cohort/gpu.hpp"
#include "test_support.hpp"

namespace cohort::testing {
namespace {

TEST(DeviceCollectivesTest, EveryCollectiveAndDTypeOnTwoGpus) {
  const GpuInfo gpus = probe_gpus();
  if (gpus.device_count < 2) {
    GTEST_SKIP() << "needs 2 GPUs (NCCL takes one rank per GPU); this machine has " << gpus.device_count
                 << (gpus.why_none.empty() ? "" : " (" + gpus.why_none + ")");
  }
  auto r = cohort_run({"-n", "2", bin("cohort-device-collectives-check")}, unique_job_id("device-collectives"));
  EXPECT_EQ(r.status.code, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("[rank 0] device collectives check passed"), std::string::npos) << r.out << r.err;
}

}  // namespace
}  // namespace cohort::testing
