// The runner's reading of /proc: CPU time deltas, memory, and a live sample of this machine.
#include <gtest/gtest.h>

#include "usage.hpp"

namespace cohort::runner {
namespace {

constexpr std::string_view kStat =
    "cpu  100 20 30 800 50 5 5 10 0 0\n"
    "cpu0 50 10 15 400 25 2 3 5 0 0\n"
    "cpu1 50 10 15 400 25 3 2 5 0 0\n"
    "intr 12345 1 2 3\n"
    "ctxt 999\n";

TEST(RunnerUsageTest, ParsesTheAggregateCpuLine) {
  auto t = parse_proc_stat(kStat);
  ASSERT_TRUE(t.has_value());
  EXPECT_EQ(t->busy, 100u + 20 + 30 + 5 + 5 + 10);  // user nice system irq softirq steal
  EXPECT_EQ(t->total, t->busy + 800 + 50);          // + idle iowait
  EXPECT_EQ(t->cpus, 2);
}

TEST(RunnerUsageTest, RejectsAStatWithoutACpuLine) {
  EXPECT_FALSE(parse_proc_stat("intr 1 2 3\n").has_value());
  EXPECT_FALSE(parse_proc_stat("cpu  1 2\n").has_value());
  EXPECT_FALSE(parse_proc_stat("").has_value());
}

TEST(RunnerUsageTest, CoresUsedIsTheBusyShareTimesTheCpus) {
  CpuTimes before{100, 1000, 4};
  CpuTimes after{300, 1400, 4};  // 200 busy of 400 ticks on 4 CPUs: 2 cores
  EXPECT_DOUBLE_EQ(cores_used(before, after), 2.0);
  EXPECT_DOUBLE_EQ(cores_used(after, after), 0.0);   // no time passed
  EXPECT_DOUBLE_EQ(cores_used(after, before), 0.0);  // counters went back (a new boot): no guess
}

TEST(RunnerUsageTest, ParsesMeminfo) {
  auto m = parse_meminfo(
      "MemTotal:       16000000 kB\nMemFree:         1000000 kB\nMemAvailable:    8000000 kB\n"
      "Buffers:          100000 kB\nCached:          2000000 kB\n");
  ASSERT_TRUE(m.has_value());
  EXPECT_EQ(m->total_bytes, 16000000LL * 1024);
  EXPECT_EQ(m->available_bytes, 8000000LL * 1024);
}

TEST(RunnerUsageTest, OldKernelsWithoutMemAvailableCountFreeBuffersAndCache) {
  auto m = parse_meminfo("MemTotal: 1000 kB\nMemFree: 100 kB\nBuffers: 10 kB\nCached: 200 kB\n");
  ASSERT_TRUE(m.has_value());
  EXPECT_EQ(m->available_bytes, 310 * 1024);
  EXPECT_FALSE(parse_meminfo("MemFree: 100 kB\n").has_value());
}

TEST(RunnerUsageTest, SamplesThisMachine) {
  UsageSampler sampler;
  volatile double x = 0;
  for (int i = 0; i < 20000000; ++i)
    x = x + 1.0;  // some CPU time between the samples
  v1::Usage u = sampler.sample();
  EXPECT_GT(u.memory_total_bytes(), 0);
  EXPECT_GT(u.memory_used_bytes(), 0);
  EXPECT_LE(u.memory_used_bytes(), u.memory_total_bytes());
  EXPECT_GE(u.cpu_cores_used(), 0.0);
  EXPECT_EQ(u.gpu_utilization_size(), sampler.gpu_count());
  EXPECT_EQ(UsageSampler::memory_total_bytes(), u.memory_total_bytes());
}

}  // namespace
}  // namespace cohort::runner
