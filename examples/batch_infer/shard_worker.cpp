#include "shard_worker.hpp"

#include <chrono>
#include <string>

#include "scoring.hpp"

namespace batch_infer {

cohort::Result<ShardResult> process_shard(const digits::Mlp& model, const RowGenerator& rows, const ShardRange& range,
                                          const std::filesystem::path& dir) {
  const auto start = std::chrono::steady_clock::now();
  const std::string name = shard_file_name(range.index);
  const auto path = dir / name;
  ShardResult result;
  std::error_code ec;
  if (std::filesystem::exists(path, ec)) {
    // Committed files are complete by construction; reading it back also catches a file of
    // another run's plan and gives the accuracy over every row, not only those scored now.
    COHORT_ASSIGN_OR_RETURN(result.tally, verify_shard_file(path, range));
    result.state = ShardState::kSkipped;
  } else if (ec) {
    return cohort::errno_status("stat", ec.value(), path.string());
  } else {
    const std::string contents = score_shard(model, rows, range, result.tally.correct);
    result.tally.rows = range.rows();
    COHORT_TRY(commit_file(dir, name, contents));
    result.state = ShardState::kCommitted;
  }
  result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return result;
}

}  // namespace batch_infer
