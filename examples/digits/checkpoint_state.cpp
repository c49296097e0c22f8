#include "checkpoint_state.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstring>
#include <optional>
#include <vector>

namespace digits {
namespace {

using nlohmann::json;

// Bumped when the meaning of a field changes, so an old checkpoint is refused rather than misread.
constexpr std::string_view kFormat = "example-digits/1";

cohort::Status data_loss(std::string m) {
  return {cohort::Code::kDataLoss, std::move(m)};
}

// The field `name` of `meta`, or DataLoss naming it. Types are checked before any get<>(), which
// would otherwise throw.
cohort::Result<json> field(const json& meta, const char* name, bool (json::*has_type)() const noexcept) {
  const auto it = meta.find(name);
  if (it == meta.end()) return data_loss("checkpoint metadata has no \"" + std::string(name) + "\"");
  if (!((*it).*has_type)()) {
    return data_loss("checkpoint metadata field \"" + std::string(name) + "\" has the wrong type: " + it->dump());
  }
  return *it;
}

cohort::Result<std::uint64_t> unsigned_field(const json& meta, const char* name) {
  COHORT_ASSIGN_OR_RETURN(json v, field(meta, name, &json::is_number_unsigned));
  return v.get<std::uint64_t>();
}

cohort::Result<double> double_field(const json& meta, const char* name) {
  COHORT_ASSIGN_OR_RETURN(json v, field(meta, name, &json::is_number));
  return v.get<double>();
}

cohort::Result<std::string> string_field(const json& meta, const char* name) {
  COHORT_ASSIGN_OR_RETURN(json v, field(meta, name, &json::is_string));
  return v.get<std::string>();
}

// Appends "--flag saved (not current)" to `diffs` when they differ. Doubles compare exactly: a
// learning rate that differs in its last bit already gives different weights.
template <typename T>
void compare(std::string& diffs, std::string_view flag, const T& saved, const T& current) {
  if (saved == current) return;
  if (!diffs.empty()) diffs += ", ";
  diffs += std::string(flag) + " " + json(saved).dump() + " (not " + json(current).dump() + ")";
}

// Copies a tensor of exactly `out.size()` doubles, saved in this host's byte order.
cohort::Status copy_tensor(const cohort::Restored& restored, std::string_view name, std::span<double> out) {
  const auto it = std::find_if(restored.tensors.begin(), restored.tensors.end(),
                               [&](const cohort::RestoredTensor& t) { return t.name == name; });
  if (it == restored.tensors.end()) {
    return data_loss("checkpoint " + restored.path.string() + " has no tensor \"" + std::string(name) +
                     "\": it was not written by example-digits");
  }
  if (it->bytes.size() != out.size_bytes()) {
    return data_loss("checkpoint " + restored.path.string() + ": tensor \"" + std::string(name) + "\" holds " +
                     std::to_string(it->bytes.size()) + " bytes, expected " + std::to_string(out.size_bytes()));
  }
  std::memcpy(out.data(), it->bytes.data(), out.size_bytes());
  return {};
}

}  // namespace

std::string metadata_json(const RunConfig& config, const Progress& progress) {
  const json meta = {
      {"format", std::string(kFormat)},
      {"epoch", progress.epoch},
      {"batch", progress.batch},
      {"global_step", progress.global_step},
      {"epoch_loss_sum", progress.epoch_loss_sum},
      {"seed", config.seed},
      {"hidden", config.hidden},
      {"activation", std::string(activation_name(config.activation))},
      {"global_batch", config.sgd.global_batch},
      {"lr", config.sgd.lr},
      {"momentum", config.sgd.momentum},
  };
  return meta.dump();
}

cohort::Result<Progress> parse_metadata(std::string_view text, const RunConfig& expected) {
  const json meta = json::parse(text, /*cb=*/nullptr, /*allow_exceptions=*/false);
  if (meta.is_discarded() || !meta.is_object()) return data_loss("checkpoint metadata is not a JSON object");
  COHORT_ASSIGN_OR_RETURN(const std::string format, string_field(meta, "format"));
  if (format != kFormat) {
    return data_loss("checkpoint metadata format is \"" + format + "\", expected \"" + std::string(kFormat) +
                     "\": it was written by another program or version");
  }

  // The flags first: a checkpoint of another model is the likely mistake, and the message about it
  // is the useful one.
  COHORT_ASSIGN_OR_RETURN(const std::uint64_t seed, unsigned_field(meta, "seed"));
  COHORT_ASSIGN_OR_RETURN(const std::uint64_t hidden, unsigned_field(meta, "hidden"));
  COHORT_ASSIGN_OR_RETURN(const std::string activation, string_field(meta, "activation"));
  COHORT_ASSIGN_OR_RETURN(const std::uint64_t global_batch, unsigned_field(meta, "global_batch"));
  COHORT_ASSIGN_OR_RETURN(const double lr, double_field(meta, "lr"));
  COHORT_ASSIGN_OR_RETURN(const double momentum, double_field(meta, "momentum"));
  std::string diffs;
  compare(diffs, "--seed", seed, std::uint64_t{expected.seed});
  compare(diffs, "--hidden", hidden, std::uint64_t{expected.hidden});
  compare(diffs, "--activation", activation, std::string(activation_name(expected.activation)));
  compare(diffs, "--global-batch", global_batch, std::uint64_t{expected.sgd.global_batch});
  compare(diffs, "--lr", lr, expected.sgd.lr);
  compare(diffs, "--momentum", momentum, expected.sgd.momentum);
  if (!diffs.empty()) {
    return cohort::invalid_argument("the checkpoint was written with other flags: " + diffs +
                                    ". Rerun with the checkpoint's flags to resume it, or pass a new "
                                    "--checkpoint-dir to start over");
  }

  COHORT_ASSIGN_OR_RETURN(const std::uint64_t epoch, unsigned_field(meta, "epoch"));
  COHORT_ASSIGN_OR_RETURN(const std::uint64_t batch, unsigned_field(meta, "batch"));
  COHORT_ASSIGN_OR_RETURN(const std::uint64_t step, unsigned_field(meta, "global_step"));
  COHORT_ASSIGN_OR_RETURN(const double loss_sum, double_field(meta, "epoch_loss_sum"));
  // Bounds that keep the casts below exact; load_shard checks the counters against each other.
  if (epoch < 1 || epoch > 1'000'000) return data_loss("checkpoint metadata epoch " + std::to_string(epoch));
  if (step > (std::uint64_t{1} << 62)) return data_loss("checkpoint metadata global_step " + std::to_string(step));
  return Progress{.epoch = static_cast<int>(epoch),
                  .batch = static_cast<std::size_t>(batch),
                  .global_step = static_cast<std::int64_t>(step),
                  .epoch_loss_sum = loss_sum};
}

cohort::ShardView make_shard(const Mlp& model, const Sgd& sgd, const RunConfig& config, const Progress& progress) {
  cohort::ShardView shard;
  shard.tensors.push_back({.name = std::string(kParamsTensor),
                           .data = model.params().data(),
                           .bytes = model.params().size_bytes(),
                           .device = cohort::Device::kHost});
  shard.tensors.push_back({.name = std::string(kVelocityTensor),
                           .data = sgd.velocity().data(),
                           .bytes = sgd.velocity().size_bytes(),
                           .device = cohort::Device::kHost});
  shard.metadata_json = metadata_json(config, progress);
  return shard;
}

cohort::Result<Progress> load_shard(const cohort::Restored& restored, const RunConfig& config, Mlp& model, Sgd& sgd,
                                    std::size_t train_rows) {
  const std::string where = "checkpoint " + restored.path.string();
  auto progress = parse_metadata(restored.metadata_json, config);
  if (!progress.ok()) return progress.status().with_context(where);
  const std::size_t batches = batches_per_epoch(train_rows, config.sgd.global_batch);
  if (progress->batch > batches) {
    return data_loss(where + ": batch " + std::to_string(progress->batch) + " is past the " + std::to_string(batches) +
                     " batches of an epoch");
  }
  // Every run counts steps from 0 with the same batches per epoch (global_batch matched), so the
  // step follows from epoch and batch; a checkpoint where it does not was not written by this loop.
  const auto expected_step =
      static_cast<std::int64_t>(static_cast<std::size_t>(progress->epoch - 1) * batches + progress->batch);
  if (progress->global_step != expected_step || progress->global_step != restored.step) {
    return data_loss(where + ": global_step " + std::to_string(progress->global_step) + " contradicts step " +
                     std::to_string(restored.step) + ", epoch " + std::to_string(progress->epoch) + " and batch " +
                     std::to_string(progress->batch));
  }
  // Into scratch first, so a bad second tensor leaves the model as it was.
  std::vector<double> params(model.num_params());
  std::vector<double> velocity(model.num_params());
  COHORT_TRY(copy_tensor(restored, kParamsTensor, params));
  COHORT_TRY(copy_tensor(restored, kVelocityTensor, velocity));
  std::copy(params.begin(), params.end(), model.params().begin());
  std::copy(velocity.begin(), velocity.end(), sgd.velocity().begin());
  return progress;
}

}  // namespace digits
