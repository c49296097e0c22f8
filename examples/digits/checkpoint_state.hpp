// What example-digits keeps in a checkpoint and how it reads one back.
//
// Every rank saves the whole replicated state in its own shard (the model is a few thousand
// doubles, so sharding it would buy nothing): the parameters, the SGD velocity and a metadata JSON
// value with where training stands and the flags that shaped the model. A resumed run continues
// from exactly that point, so its weights are bit-identical to those of an uninterrupted run with
// the same number of ranks. Only the per-rank partial loss sum differs between ranks' shards.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "cohort/checkpoint.hpp"
#include "cohort/status.hpp"
#include "mlp.hpp"

namespace digits {

// The flags a checkpoint must have been written with to be resumed under them. The number of
// epochs and the data file are not among them: training longer from a checkpoint is legitimate.
struct RunConfig {
  std::uint64_t seed = 1;
  std::size_t hidden = 64;
  Activation activation = Activation::kTanh;
  SgdOptions sgd;
};

// Where training stands between two global steps: `global_step` steps are done, and batch
// `batch` (0-based; batches_per_epoch() once the epoch's last step is done but its end-of-epoch
// report is not) of epoch `epoch` (1-based) is next.
struct Progress {
  int epoch = 1;
  std::size_t batch = 0;
  std::int64_t global_step = 0;
  double epoch_loss_sum = 0.0;  // this rank's train loss summed over the epoch's batches so far
};

// Tensor names within a shard.
inline constexpr std::string_view kParamsTensor = "params";
inline constexpr std::string_view kVelocityTensor = "velocity";

// The metadata JSON value of a shard: {"format", "epoch", "batch", "global_step",
// "epoch_loss_sum", "seed", "hidden", "activation", "global_batch", "lr", "momentum"}.
// Doubles are written in their shortest form that reads back to the same bits.
std::string metadata_json(const RunConfig& config, const Progress& progress);

// Reads metadata_json's output. DataLoss naming the field when it is malformed; InvalidArgument
// naming every flag that differs from `expected`, with what to do about it.
cohort::Result<Progress> parse_metadata(std::string_view json, const RunConfig& expected);

// The shard to save: views of the model's and the optimizer's vectors, which must stay unchanged
// until save() returns (it copies them, also in asynchronous mode), and the metadata.
cohort::ShardView make_shard(const Mlp& model, const Sgd& sgd, const RunConfig& config, const Progress& progress);

// Checks a restored shard against the flags and this program's model, then loads its parameters
// and velocity into `model` and `sgd` and returns where training stands. Errors as
// parse_metadata's; DataLoss also when a tensor is missing or has the wrong size, or the counters
// contradict each other or `restored.step`. Nothing is loaded unless everything checks out.
cohort::Result<Progress> load_shard(const cohort::Restored& restored, const RunConfig& config, Mlp& model, Sgd& sgd,
                                    std::size_t train_rows);

}  // namespace digits
