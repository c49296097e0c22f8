// One shard's work on its rank: skip it when an earlier run committed it, else score and commit.
#pragma once

#include <cstdint>
#include <filesystem>

#include "cohort/status.hpp"
#include "mlp.hpp"
#include "rows.hpp"
#include "shard_files.hpp"
#include "shard_plan.hpp"

namespace batch_infer {

enum class ShardState { kCommitted, kSkipped };

struct ShardResult {
  ShardState state = ShardState::kCommitted;
  ShardTally tally;      // the shard's rows and correct predictions, scored now or read back
  double seconds = 0.0;  // spent on it here
};

// When dir/shard_file_name(range.index) exists it is verified (verify_shard_file) and skipped:
// its tally comes from the file. Otherwise the shard is scored and committed (commit_file).
// Errors name the shard's file.
cohort::Result<ShardResult> process_shard(const digits::Mlp& model, const RowGenerator& rows, const ShardRange& range,
                                          const std::filesystem::path& dir);

}  // namespace batch_infer
