// cohort-bench: Cohort's benchmarks. Each prints a table (or --json) with a baseline measured in
// the same run, so the figures are ratios on the same machine at the same moment.
#include <cstdio>
#include <cstring>

int bench_launch(int argc, char** argv);
int bench_checkpoint(int argc, char** argv);
int bench_kernels(int argc, char** argv);
int bench_allreduce(int argc, char** argv);
int bench_fusion(int argc, char** argv);
int bench_manager(int argc, char** argv);
int bench_recovery(int argc, char** argv);

int main(int argc, char** argv) {
  if (argc >= 2 && std::strcmp(argv[1], "launch") == 0) return bench_launch(argc - 1, argv + 1);
  if (argc >= 2 && std::strcmp(argv[1], "checkpoint") == 0) return bench_checkpoint(argc - 1, argv + 1);
  if (argc >= 2 && std::strcmp(argv[1], "kernels") == 0) return bench_kernels(argc - 1, argv + 1);
  if (argc >= 2 && std::strcmp(argv[1], "allreduce") == 0) return bench_allreduce(argc - 1, argv + 1);
  if (argc >= 2 && std::strcmp(argv[1], "fusion") == 0) return bench_fusion(argc - 1, argv + 1);
  if (argc >= 2 && std::strcmp(argv[1], "manager") == 0) return bench_manager(argc - 1, argv + 1);
  if (argc >= 2 && std::strcmp(argv[1], "recovery") == 0) return bench_recovery(argc - 1, argv + 1);
  std::fprintf(
      stderr,
      "usage: cohort-bench BENCHMARK [OPTIONS]\n"
      "benchmarks:\n"
      "  launch       median time of `cohort run -n N true` against `mpirun -np N true`\n"
      "  checkpoint   Checkpointer save, async save and restore against write(2)/read(2) of the same bytes\n"
      "  kernels      reduce/scale/cast GB/s against memcpy (or a 16-byte device copy) of the same bytes\n"
      "  allreduce    libcohort allreduce busbw against MPI_Allreduce (bf16/fp16: an MPI user op); run under "
      "cohort run\n"
      "  fusion       K small allreduces: separate, fused (FusionBuffer), one large; run under cohort run\n"
      "  manager      N simulated runners heartbeating at 1 Hz against a real cohort-manager\n"
      "  recovery     a 2-node training job losing a node: by notice (to a durable checkpoint) and by kill -9\n"
      "run `cohort-bench BENCHMARK --help` for its options\n");
  return 2;
}
