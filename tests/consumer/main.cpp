// Sums every rank's rank with libcohort's allreduce and prints the total.
#include <cohort/collectives.hpp>
#include <cohort/context.hpp>
#include <cstdio>
#include <vector>

int main() {
  auto ctx = cohort::Context::from_environment();
  if (!ctx.ok()) return 2;
  auto comm = cohort::Communicator::create(*ctx);
  if (!comm.ok()) return 3;
  std::vector<double> v{static_cast<double>(ctx->rank)};
  if (!(*comm)->allreduce(v, cohort::ReduceOp::kSum).ok()) return 4;
  std::printf("sum of ranks = %g\n", v[0]);
  return 0;
}
