#include "mpirun_command.hpp"

namespace cohort {

std::vector<int> ranks_per_node(int ranks, int nodes) {
  std::vector<int> out;
  if (nodes <= 0) return out;
  for (int i = 0; i < nodes; ++i)
    out.push_back(ranks / nodes + (i < ranks % nodes ? 1 : 0));
  return out;
}

std::vector<std::string> mpirun_argv(const MpirunPlan& plan) {
  std::vector<std::string> a = {plan.mpirun};
  if (plan.as_root) a.push_back("--allow-run-as-root");
  a.insert(a.end(), {"-np", std::to_string(plan.ranks)});
  // Ranks may outnumber cores on a workstation or a test machine, and several local nodes share
  // the same cores: never bind ranks to cores Open MPI believes it owns alone.
  a.insert(a.end(), {"--oversubscribe", "--bind-to", "none"});
  // A rank that ends does not end the others: ranks blocked in a collective with it time out and
  // report which peer they lost, and `cohort run` stops the job after its failure grace.
  a.push_back("--enable-recovery");
  if (!plan.hosts.empty()) {
    std::string hosts;
    auto slots = ranks_per_node(plan.ranks, static_cast<int>(plan.hosts.size()));
    for (std::size_t i = 0; i < plan.hosts.size(); ++i) {
      if (!hosts.empty()) hosts += ',';
      hosts += plan.hosts[i] + ":" + std::to_string(slots[i]);
    }
    a.insert(a.end(), {"--host", hosts, "--map-by", "slot"});
    // Our rsh agent enters the node's namespaces; only mpirun itself launches daemons, so the
    // agent need not exist inside the nodes (no tree spawn).
    a.insert(a.end(), {"--mca", "plm_rsh_agent", plan.exec_helper + " node", "--mca", "plm_rsh_no_tree_spawn", "1"});
  }
  if (plan.oversubscribed) a.insert(a.end(), {"--mca", "mpi_yield_when_idle", "1"});
  for (const auto& name : plan.exported_env)
    a.insert(a.end(), {"-x", name});
  a.insert(a.end(), {plan.exec_helper, "rank", "--"});
  a.insert(a.end(), plan.program.begin(), plan.program.end());
  return a;
}

}  // namespace cohort
