// The trained model and what it says about each row: the weights file example-digits writes with
// --save-weights, and one output line per row.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>

#include "cohort/status.hpp"
#include "mlp.hpp"
#include "rows.hpp"
#include "shard_plan.hpp"

namespace batch_infer {

// Reads the raw little-endian float64 parameters of a 64-`hidden`-10 model (digits::Mlp's layout).
// A file of another size is InvalidArgument naming the expected and actual sizes and the flags
// that decide them; an unreadable file the errno's code; a NaN or infinite weight DataLoss.
cohort::Result<digits::Mlp> load_weights(const std::filesystem::path& path, std::size_t hidden,
                                         digits::Activation activation);

// FNV-1a 64 of the parameters' bytes (host order), which names the model in the run manifest.
std::uint64_t fingerprint(const digits::Mlp& model) noexcept;

struct Score {
  int predicted = 0;        // the most likely class
  double confidence = 0.0;  // its softmax probability, in (0, 1]
};

// Scores one row with digits::Mlp's own forward pass.
Score score_row(const digits::Mlp& model, const Row& row, digits::Workspace& ws);

// What a shard file holds: one line "row,label,predicted,confidence\n" per row of `range`, in
// row order, confidence with 6 decimals. Locale-independent. Adds the rows predicted right to
// `correct`.
std::string score_shard(const digits::Mlp& model, const RowGenerator& rows, const ShardRange& range,
                        std::uint64_t& correct);

}  // namespace batch_infer
