// A 64-H-10 multilayer perceptron (tanh or relu hidden layer, softmax cross-entropy) in float64,
// and the data-parallel minibatch SGD that trains it across the ranks of a job.
//
// Float64 everywhere, and each rank sums per-sample gradients over a contiguous slice of every
// global batch before an allreduce SUM, so W ranks apply the update one rank would, up to the
// rounding of a different summation order.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <span>
#include <string_view>
#include <vector>

#include "cohort/collectives.hpp"
#include "cohort/status.hpp"
#include "dataset.hpp"

namespace digits {

enum class Activation { kTanh, kRelu };
std::string_view activation_name(Activation a) noexcept;

class Mlp;

// Scratch for one sample's forward and backward pass, so the training loop does not allocate.
class Workspace {
 public:
  explicit Workspace(const Mlp& model);

 private:
  friend class Mlp;
  std::vector<double> hidden_pre_;  // before the activation
  std::vector<double> hidden_;      // after it
  std::vector<double> logits_;      // raw, then d(loss)/d(logits) in the backward pass
  std::vector<double> hidden_grad_;
};

// The parameters live in one flat vector so that broadcast and allreduce move them in one call.
// Its layout, which --save-weights writes as raw little-endian float64:
//   W1 [hidden x 64] row-major, b1 [hidden], W2 [10 x hidden] row-major, b2 [10].
// A gradient vector (num_params() doubles) has the same layout.
class Mlp {
 public:
  // All parameters zero. REQUIRES: hidden > 0.
  Mlp(std::size_t hidden, Activation activation);

  std::size_t hidden() const noexcept { return hidden_; }
  Activation activation() const noexcept { return activation_; }
  std::size_t num_params() const noexcept { return params_.size(); }

  // Glorot-uniform weights (uniform on +-sqrt(6 / (fan_in + fan_out))) from `seed` with
  // SplitMix64, zero biases: the same values on every platform for the same seed.
  void init(std::uint64_t seed);

  std::span<double> params() noexcept { return params_; }
  std::span<const double> params() const noexcept { return params_; }

  // Adds this sample's gradient of the cross-entropy loss to `grad` (num_params() doubles, same
  // layout as params()) and returns the loss. REQUIRES: x.size() == kPixels, 0 <= label < kClasses.
  double accumulate_gradient(std::span<const double> x, int label, std::span<double> grad, Workspace& ws) const;

  // The cross-entropy loss of one sample, without a gradient.
  double loss(std::span<const double> x, int label, Workspace& ws) const;

  // The most likely class of one sample.
  int predict(std::span<const double> x, Workspace& ws) const;

 private:
  // Fills ws's hidden layer and raw logits.
  void forward(std::span<const double> x, Workspace& ws) const;
  std::size_t b1_offset() const noexcept { return hidden_ * kPixels; }
  std::size_t w2_offset() const noexcept { return b1_offset() + hidden_; }
  std::size_t b2_offset() const noexcept { return w2_offset() + kClasses * hidden_; }

  std::size_t hidden_;
  Activation activation_;
  std::vector<double> params_;
};

// Writes the parameters as raw little-endian float64 in params()'s layout (see Mlp), on any host.
cohort::Status save_params(const Mlp& model, const std::filesystem::path& path);

// The half-open range [begin, end) of a batch of `len` rows that `rank` of `world` computes:
// contiguous, disjoint across ranks, covering the batch; empty on some ranks when len < world.
struct Shard {
  std::size_t begin = 0;
  std::size_t end = 0;
};
Shard shard_of(std::size_t len, int rank, int world) noexcept;

struct SgdOptions {
  std::size_t global_batch = 32;  // rows per update across all ranks
  double lr = 0.1;
  double momentum = 0.0;  // 0 is plain SGD
};

// Minibatch SGD with optional heavy-ball momentum: v = momentum * v + mean_grad; p -= lr * v.
class Sgd {
 public:
  Sgd(const SgdOptions& options, std::size_t num_params);
  const SgdOptions& options() const noexcept { return options_; }
  // `grad_sum` is the gradient summed over the `len` rows of a global batch.
  void step(std::span<double> params, std::span<const double> grad_sum, std::size_t len);
  // The heavy-ball state v, which a checkpoint saves and a resumed run loads back: without it the
  // first updates after a resume would differ from those of an uninterrupted run.
  std::span<double> velocity() noexcept { return velocity_; }
  std::span<const double> velocity() const noexcept { return velocity_; }

 private:
  SgdOptions options_;
  std::vector<double> velocity_;
};

// How many global batches (SGD steps) one epoch over `rows` train rows takes; the last may be short.
std::size_t batches_per_epoch(std::size_t rows, std::size_t global_batch) noexcept;

// Where train_epoch begins: batch 0 with nothing summed for a fresh epoch, or, when resuming from
// a checkpoint, the next batch and the loss this rank had summed over the batches before it.
struct EpochStart {
  std::size_t batch = 0;
  double loss = 0.0;
};

// Called on every rank after each global step is applied, with the index of the next batch of
// the epoch (batches_per_epoch() after the last) and this rank's loss summed so far. A non-OK
// Status ends the epoch with it: unless every rank gets the same one, the caller must abort the
// job, as the other ranks wait in the next step's allreduce.
using StepCallback = std::function<cohort::Status(std::size_t next_batch, double loss)>;

// One epoch over `order` (the train rows, in this epoch's order, the same on every rank): for each
// global batch from `start.batch` on, this rank sums the gradients of its shard, `comm` sums them
// across ranks, and every rank applies the same update. Returns this rank's summed loss (not yet
// reduced), counted from `start.loss`, so an epoch resumed at batch b returns the very bits an
// uninterrupted one does. Any failing collective is returned as is.
// REQUIRES: start.batch <= batches_per_epoch(order.size(), sgd.options().global_batch).
cohort::Result<double> train_epoch(Mlp& model, Sgd& sgd, const Dataset& data, std::span<const std::size_t> order,
                                   cohort::Communicator& comm, EpochStart start = {}, const StepCallback& on_step = {});

// How many of `rows` the model classifies correctly.
std::size_t count_correct(const Mlp& model, const Dataset& data, std::span<const std::size_t> rows);

}  // namespace digits
