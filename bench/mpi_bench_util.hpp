// What the MPI benchmarks share: size arguments, medians, and timing a block of collective
// calls as the slowest rank saw it.
#pragma once

#include <mpi.h>

#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

namespace cohort::bench {

// "8", "64K", "256M", "1G" (powers of 1024); 0 when it is not a size.
inline std::uint64_t parse_size(const std::string& s) {
  if (s.empty()) return 0;
  std::size_t used = 0;
  std::uint64_t v = 0;
  try {
    v = std::stoull(s, &used);
  } catch (...) {
    return 0;
  }
  const std::string suffix = s.substr(used);
  if (suffix.empty()) return v;
  if (suffix == "K" || suffix == "k") return v << 10;
  if (suffix == "M" || suffix == "m") return v << 20;
  if (suffix == "G" || suffix == "g") return v << 30;
  return 0;
}

// The upper median: with an even count, the larger of the two middle values.
inline double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

// Seconds per call of `call` over `iters` calls, the slowest rank's.
template <class F>
double time_block(F&& call, int iters) {
  MPI_Barrier(MPI_COMM_WORLD);
  const double start = MPI_Wtime();
  for (int i = 0; i < iters; ++i)
    call();
  double took = (MPI_Wtime() - start) / iters;
  MPI_Allreduce(MPI_IN_PLACE, &took, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
  return took;
}

}  // namespace cohort::bench
