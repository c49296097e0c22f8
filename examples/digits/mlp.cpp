#include "mlp.hpp"

#include <algorithm>
#include <bit>
#include <cassert>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <memory>
#include <string>

namespace digits {
namespace {

// Stream 0 of the seed is the weight init; dataset.cpp keeps the epoch streams far from it.
constexpr std::uint64_t kInitStream = 0;

void fill_uniform(std::span<double> values, double limit, SplitMix64& rng) {
  for (double& v : values)
    v = (2.0 * rng.unit() - 1.0) * limit;
}

double log_sum_exp(std::span<const double> logits) {
  const double max = *std::max_element(logits.begin(), logits.end());
  double sum = 0.0;
  for (double z : logits)
    sum += std::exp(z - max);
  return max + std::log(sum);
}

struct FileCloser {
  void operator()(std::FILE* f) const noexcept { std::fclose(f); }
};

}  // namespace

std::string_view activation_name(Activation a) noexcept {
  switch (a) {
    case Activation::kTanh:
      return "tanh";
    case Activation::kRelu:
      return "relu";
  }
  return "unknown";
}

Workspace::Workspace(const Mlp& model)
    : hidden_pre_(model.hidden()), hidden_(model.hidden()), logits_(kClasses), hidden_grad_(model.hidden()) {}

Mlp::Mlp(std::size_t hidden, Activation activation)
    : hidden_(hidden), activation_(activation), params_(hidden * kPixels + hidden + kClasses * hidden + kClasses) {
  assert(hidden > 0);
}

void Mlp::init(std::uint64_t seed) {
  SplitMix64 rng(derive_seed(seed, kInitStream));
  const auto p = params();
  const auto fan = [](std::size_t in, std::size_t out) { return std::sqrt(6.0 / static_cast<double>(in + out)); };
  fill_uniform(p.subspan(0, b1_offset()), fan(kPixels, hidden_), rng);
  std::fill(p.begin() + static_cast<std::ptrdiff_t>(b1_offset()), p.begin() + static_cast<std::ptrdiff_t>(w2_offset()),
            0.0);
  fill_uniform(p.subspan(w2_offset(), kClasses * hidden_), fan(hidden_, kClasses), rng);
  std::fill(p.begin() + static_cast<std::ptrdiff_t>(b2_offset()), p.end(), 0.0);
}

void Mlp::forward(std::span<const double> x, Workspace& ws) const {
  assert(x.size() == kPixels);
  const double* w1 = params_.data();
  const double* b1 = w1 + b1_offset();
  const double* w2 = w1 + w2_offset();
  const double* b2 = w1 + b2_offset();
  for (std::size_t j = 0; j < hidden_; ++j) {
    const double* row = w1 + j * kPixels;
    double z = b1[j];
    for (std::size_t i = 0; i < kPixels; ++i)
      z += row[i] * x[i];
    ws.hidden_pre_[j] = z;
    ws.hidden_[j] = activation_ == Activation::kTanh ? std::tanh(z) : std::max(z, 0.0);
  }
  for (std::size_t k = 0; k < kClasses; ++k) {
    const double* row = w2 + k * hidden_;
    double z = b2[k];
    for (std::size_t j = 0; j < hidden_; ++j)
      z += row[j] * ws.hidden_[j];
    ws.logits_[k] = z;
  }
}

double Mlp::loss(std::span<const double> x, int label, Workspace& ws) const {
  forward(x, ws);
  return log_sum_exp(ws.logits_) - ws.logits_[static_cast<std::size_t>(label)];
}

int Mlp::predict(std::span<const double> x, Workspace& ws) const {
  forward(x, ws);
  return static_cast<int>(std::max_element(ws.logits_.begin(), ws.logits_.end()) - ws.logits_.begin());
}

double Mlp::accumulate_gradient(std::span<const double> x, int label, std::span<double> grad, Workspace& ws) const {
  assert(grad.size() == params_.size());
  assert(label >= 0 && static_cast<std::size_t>(label) < kClasses);
  forward(x, ws);
  const auto target = static_cast<std::size_t>(label);
  const double lse = log_sum_exp(ws.logits_);
  const double loss = lse - ws.logits_[target];

  // d(loss)/d(logit k) = softmax_k - [k == label]
  std::vector<double>& d_logits = ws.logits_;
  for (std::size_t k = 0; k < kClasses; ++k)
    d_logits[k] = std::exp(d_logits[k] - lse);
  d_logits[target] -= 1.0;

  const double* w2 = params_.data() + w2_offset();
  double* g_w1 = grad.data();
  double* g_b1 = g_w1 + b1_offset();
  double* g_w2 = g_w1 + w2_offset();
  double* g_b2 = g_w1 + b2_offset();
  std::fill(ws.hidden_grad_.begin(), ws.hidden_grad_.end(), 0.0);
  for (std::size_t k = 0; k < kClasses; ++k) {
    const double d = d_logits[k];
    const double* w2_row = w2 + k * hidden_;
    double* g_row = g_w2 + k * hidden_;
    for (std::size_t j = 0; j < hidden_; ++j) {
      g_row[j] += d * ws.hidden_[j];
      ws.hidden_grad_[j] += d * w2_row[j];
    }
    g_b2[k] += d;
  }
  for (std::size_t j = 0; j < hidden_; ++j) {
    const double h = ws.hidden_[j];
    const double slope = activation_ == Activation::kTanh ? 1.0 - h * h : (ws.hidden_pre_[j] > 0.0 ? 1.0 : 0.0);
    const double d = ws.hidden_grad_[j] * slope;
    if (d == 0.0) continue;  // relu's dead units: nothing to add
    double* g_row = g_w1 + j * kPixels;
    for (std::size_t i = 0; i < kPixels; ++i)
      g_row[i] += d * x[i];
    g_b1[j] += d;
  }
  return loss;
}

cohort::Status save_params(const Mlp& model, const std::filesystem::path& path) {
  // Bytes are laid out by hand so the file is little-endian whatever the host's byte order.
  std::vector<unsigned char> bytes;
  bytes.reserve(model.num_params() * sizeof(double));
  for (double v : model.params()) {
    const auto bits = std::bit_cast<std::uint64_t>(v);
    for (int b = 0; b < 8; ++b)
      bytes.push_back(static_cast<unsigned char>(bits >> (8 * b)));
  }
  std::unique_ptr<std::FILE, FileCloser> file(std::fopen(path.c_str(), "wb"));
  if (!file) return cohort::errno_status("fopen", errno, path.string());
  if (std::fwrite(bytes.data(), 1, bytes.size(), file.get()) != bytes.size()) {
    return cohort::errno_status("fwrite", errno, path.string());
  }
  // fclose reports the write-back errors (disk full) that fwrite's buffering hid.
  if (std::fclose(file.release()) != 0) return cohort::errno_status("fclose", errno, path.string());
  return {};
}

Shard shard_of(std::size_t len, int rank, int world) noexcept {
  const auto r = static_cast<std::size_t>(rank);
  const auto w = static_cast<std::size_t>(world);
  return {len * r / w, len * (r + 1) / w};
}

Sgd::Sgd(const SgdOptions& options, std::size_t num_params) : options_(options), velocity_(num_params, 0.0) {}

void Sgd::step(std::span<double> params, std::span<const double> grad_sum, std::size_t len) {
  assert(params.size() == velocity_.size() && grad_sum.size() == velocity_.size() && len > 0);
  const double inv_len = 1.0 / static_cast<double>(len);
  for (std::size_t i = 0; i < params.size(); ++i) {
    velocity_[i] = options_.momentum * velocity_[i] + grad_sum[i] * inv_len;
    params[i] -= options_.lr * velocity_[i];
  }
}

std::size_t batches_per_epoch(std::size_t rows, std::size_t global_batch) noexcept {
  return (rows + global_batch - 1) / global_batch;
}

cohort::Result<double> train_epoch(Mlp& model, Sgd& sgd, const Dataset& data, std::span<const std::size_t> order,
                                   cohort::Communicator& comm, EpochStart start, const StepCallback& on_step) {
  const std::size_t batch = sgd.options().global_batch;
  const std::size_t batches = batches_per_epoch(order.size(), batch);
  assert(start.batch <= batches);
  std::vector<double> grad(model.num_params());
  Workspace ws(model);
  // Summed on from the saved partial sum in the same order as without a resume, so the epoch's
  // loss is bit-identical however many times the epoch was interrupted.
  double loss = start.loss;
  for (std::size_t b = start.batch; b < batches; ++b) {
    const std::size_t first = b * batch;
    const std::size_t len = std::min(batch, order.size() - first);
    const Shard shard = shard_of(len, comm.rank(), comm.size());
    std::fill(grad.begin(), grad.end(), 0.0);
    for (std::size_t i = first + shard.begin; i < first + shard.end; ++i) {
      const std::size_t row = order[i];
      loss += model.accumulate_gradient(data.row(row), data.labels[row], grad, ws);
    }
    // Every rank joins every allreduce, an empty shard too (it contributes zeros).
    const cohort::Status reduced = comm.allreduce(grad, cohort::ReduceOp::kSum);
    if (!reduced.ok()) return reduced.with_context("gradient allreduce of the batch at row " + std::to_string(first));
    sgd.step(model.params(), grad, len);
    if (on_step) COHORT_TRY(on_step(b + 1, loss));
  }
  return loss;
}

std::size_t count_correct(const Mlp& model, const Dataset& data, std::span<const std::size_t> rows) {
  Workspace ws(model);
  std::size_t correct = 0;
  for (std::size_t row : rows) {
    if (model.predict(data.row(row), ws) == data.labels[row]) ++correct;
  }
  return correct;
}

}  // namespace digits
