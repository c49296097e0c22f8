#include "cohort/context.hpp"

#include <cerrno>
#include <charconv>
#include <climits>
#include <csignal>
#include <cstdlib>

namespace cohort {
namespace {

// Reads launcher variables from one lookup, with the error text every caller wants.
class EnvReader {
 public:
  explicit EnvReader(const Context::Lookup& lookup) : lookup_(lookup) {}

  bool has(std::string_view name) const { return lookup_(name).has_value(); }

  Result<std::string> required_string(std::string_view name, std::string_view why) const {
    auto v = lookup_(name);
    if (!v)
      return invalid_argument("environment variable " + std::string(name) + " is not set (" + std::string(why) + ")");
    if (v->empty()) return invalid_argument("environment variable " + std::string(name) + " is empty");
    return *v;
  }

  Result<int> required_int(std::string_view name, std::string_view why, int min, int max) const {
    auto v = lookup_(name);
    if (!v)
      return invalid_argument("environment variable " + std::string(name) + " is not set (" + std::string(why) + ")");
    return parse(name, *v, min, max);
  }

  // `fallback` when unset; an error when set to garbage.
  Result<int> optional_int(std::string_view name, int fallback, int min, int max) const {
    auto v = lookup_(name);
    if (!v) return fallback;
    return parse(name, *v, min, max);
  }

  static Result<int> parse(std::string_view name, const std::string& text, int min, int max) {
    int value = 0;
    const char* end = text.data() + text.size();
    auto [ptr, ec] = std::from_chars(text.data(), end, value);
    if (text.empty() || ec == std::errc::invalid_argument || ptr != end) {
      return invalid_argument(std::string(name) + "='" + text + "' is not an integer");
    }
    if (ec == std::errc::result_out_of_range || value < min || value > max) {
      return invalid_argument(std::string(name) + "=" + text + " is out of range [" + std::to_string(min) + ", " +
                              std::to_string(max) + "]");
    }
    return value;
  }

 private:
  const Context::Lookup& lookup_;
};

Status check_below(std::string_view name, int value, std::string_view limit_name, int limit) {
  if (value < limit) return {};
  return invalid_argument(std::string(name) + "=" + std::to_string(value) + " must be less than " +
                          std::string(limit_name) + "=" + std::to_string(limit));
}

Status read_mpi(const EnvReader& env, Context& c) {
  constexpr std::string_view kWhy = "OMPI_COMM_WORLD_RANK is set, so an Open MPI launch is assumed";
  c.launch = LaunchKind::kMpi;
  COHORT_ASSIGN_OR_RETURN(c.rank, env.required_int("OMPI_COMM_WORLD_RANK", kWhy, 0, INT_MAX));
  COHORT_ASSIGN_OR_RETURN(c.world_size, env.required_int("OMPI_COMM_WORLD_SIZE", kWhy, 1, INT_MAX));
  COHORT_ASSIGN_OR_RETURN(c.local_rank, env.required_int("OMPI_COMM_WORLD_LOCAL_RANK", kWhy, 0, INT_MAX));
  COHORT_ASSIGN_OR_RETURN(c.local_world_size, env.required_int("OMPI_COMM_WORLD_LOCAL_SIZE", kWhy, 1, INT_MAX));
  COHORT_TRY(check_below("OMPI_COMM_WORLD_RANK", c.rank, "OMPI_COMM_WORLD_SIZE", c.world_size));
  COHORT_TRY(check_below("OMPI_COMM_WORLD_LOCAL_RANK", c.local_rank, "OMPI_COMM_WORLD_LOCAL_SIZE", c.local_world_size));
  // mpirun maps by slot unless told otherwise, so with equal slots per node the node index is
  // rank / local size; `cohort run` sets COHORT_NODE_RANK exactly, which overrides this below.
  c.node_rank = c.rank / c.local_world_size;
  c.num_nodes = (c.world_size + c.local_world_size - 1) / c.local_world_size;
  return {};
}

Status read_env_style(const EnvReader& env, Context& c) {
  constexpr std::string_view kWhy = "RANK or WORLD_SIZE is set, so an env-style (torchrun) launch is assumed";
  c.launch = LaunchKind::kEnv;
  COHORT_ASSIGN_OR_RETURN(c.rank, env.required_int("RANK", kWhy, 0, INT_MAX));
  COHORT_ASSIGN_OR_RETURN(c.world_size, env.required_int("WORLD_SIZE", kWhy, 1, INT_MAX));
  COHORT_ASSIGN_OR_RETURN(c.local_rank, env.required_int("LOCAL_RANK", kWhy, 0, INT_MAX));
  COHORT_TRY(check_below("RANK", c.rank, "WORLD_SIZE", c.world_size));
  COHORT_ASSIGN_OR_RETURN(c.local_world_size, env.optional_int("LOCAL_WORLD_SIZE", c.world_size, 1, INT_MAX));
  COHORT_TRY(check_below("LOCAL_RANK", c.local_rank, "LOCAL_WORLD_SIZE", c.local_world_size));
  const char* node_var = env.has("NODE_RANK") ? "NODE_RANK" : "GROUP_RANK";
  COHORT_ASSIGN_OR_RETURN(c.node_rank, env.optional_int(node_var, c.rank / c.local_world_size, 0, INT_MAX));
  c.num_nodes = (c.world_size + c.local_world_size - 1) / c.local_world_size;
  if (c.world_size > 1) {
    constexpr std::string_view kWhyMaster = "a world of more than one rank needs a rendezvous address";
    COHORT_ASSIGN_OR_RETURN(c.master_addr, env.required_string("MASTER_ADDR", kWhyMaster));
    COHORT_ASSIGN_OR_RETURN(c.master_port, env.required_int("MASTER_PORT", kWhyMaster, 1, 65535));
  }
  return {};
}

Status read_cohort(const EnvReader& env, const Context::Lookup& lookup, Context& c) {
  COHORT_ASSIGN_OR_RETURN(c.num_nodes, env.optional_int("COHORT_NUM_NODES", c.num_nodes, 1, INT_MAX));
  COHORT_ASSIGN_OR_RETURN(c.node_rank, env.optional_int("COHORT_NODE_RANK", c.node_rank, 0, INT_MAX));
  COHORT_TRY(check_below("COHORT_NODE_RANK", c.node_rank, "COHORT_NUM_NODES", c.num_nodes));
  COHORT_ASSIGN_OR_RETURN(c.attempt, env.optional_int("COHORT_ATTEMPT", 1, 1, INT_MAX));
  if (auto job = lookup("COHORT_JOB_ID")) {
    if (job->empty()) return invalid_argument("environment variable COHORT_JOB_ID is empty");
    for (char ch : *job) {
      if (ch <= ' ' || ch == '/' || ch == 0x7f) {
        return invalid_argument("COHORT_JOB_ID='" + *job + "' may not contain spaces, control characters or '/'");
      }
    }
    c.job_id = *job;
  }
  if (auto dir = lookup("COHORT_CHECKPOINT_DIR")) {
    if (dir->empty()) return invalid_argument("environment variable COHORT_CHECKPOINT_DIR is empty");
    c.checkpoint_dir = *dir;
  }
  if (auto p = lookup("COHORT_PROGRESS_FILE")) c.progress_file = *p;
  if (auto p = lookup("COHORT_RUN_DIR")) c.run_dir = *p;
  if (auto p = lookup("COHORT_NOTICE_FILE")) c.notice_file = *p;
  if (auto sig = lookup("COHORT_NOTICE_SIGNAL"); sig && !sig->empty() && *sig != "none") {
    if (*sig == "SIGUSR1") {
      c.notice_signal = SIGUSR1;
    } else if (*sig == "SIGUSR2") {
      c.notice_signal = SIGUSR2;
    } else {
      return invalid_argument("COHORT_NOTICE_SIGNAL='" + *sig + "' is not SIGUSR1, SIGUSR2 or none");
    }
  }
  return {};
}

}  // namespace

std::string_view launch_kind_name(LaunchKind kind) noexcept {
  switch (kind) {
    case LaunchKind::kStandalone:
      return "standalone";
    case LaunchKind::kMpi:
      return "mpi";
    case LaunchKind::kEnv:
      return "env";
  }
  return "unknown";
}

// preemption.cpp: records the signal in a flag that preemption_noticed() reads.
void catch_notice_signal(int sig);

Result<Context> Context::from_lookup(const Lookup& lookup) {
  EnvReader env(lookup);
  Context c;
  if (env.has("OMPI_COMM_WORLD_RANK")) {
    COHORT_TRY(read_mpi(env, c));
  } else if (env.has("RANK") || env.has("WORLD_SIZE")) {
    COHORT_TRY(read_env_style(env, c));
  }
  COHORT_TRY(read_cohort(env, lookup, c));
  return c;
}

Result<Context> Context::from_environment() {
  auto c = from_lookup([](std::string_view name) -> std::optional<std::string> {
    const char* v = std::getenv(std::string(name).c_str());
    if (v == nullptr) return std::nullopt;
    return std::string(v);
  });
  if (c.ok() && c->notice_signal != 0) catch_notice_signal(c->notice_signal);
  return c;
}

std::string Context::describe() const {
  return "job " + job_id + " attempt " + std::to_string(attempt) + " rank " + std::to_string(rank) + "/" +
         std::to_string(world_size) + " (local " + std::to_string(local_rank) + "/" + std::to_string(local_world_size) +
         ", node " + std::to_string(node_rank) + "/" + std::to_string(num_nodes) + ")";
}

}  // namespace cohort
