#include "run_files.hpp"

#include <cstdio>
#include <fstream>
#include <iterator>
#include <nlohmann/json.hpp>

#include "shard_files.hpp"

namespace batch_infer {
namespace {

nlohmann::ordered_json to_json(const RunManifest& m) {
  nlohmann::ordered_json j;
  j["rows"] = m.rows;
  j["shard_rows"] = m.shard_rows;
  j["hidden"] = m.hidden;
  j["activation"] = m.activation;
  j["weights"] = m.weights;
  j["source_rows"] = m.source_rows;
  j["source"] = m.source;
  return j;
}

// Which flag decides each field, for the message.
std::string_view flag_of(std::string_view field) {
  if (field == "rows") return "--rows";
  if (field == "shard_rows") return "--shard-rows";
  if (field == "hidden") return "--hidden";
  if (field == "activation") return "--activation";
  if (field == "weights") return "--weights";
  return "--data";
}

}  // namespace

std::string encode(const RunManifest& m) {
  return to_json(m).dump(2) + "\n";
}

cohort::Status check_or_write_manifest(const std::filesystem::path& dir, const RunManifest& expected) {
  const auto path = dir / kManifestFile;
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) {
    if (ec) return cohort::errno_status("stat", ec.value(), path.string());
    return commit_file(dir, kManifestFile, encode(expected));
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) return cohort::errno_status("open", errno, path.string());
  const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const auto found = nlohmann::ordered_json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (found.is_discarded() || !found.is_object()) {
    return {cohort::Code::kDataLoss, path.string() + " is not a JSON object: remove the folder to start over"};
  }
  const nlohmann::ordered_json want = to_json(expected);
  for (const auto& [field, value] : want.items()) {
    const auto it = found.find(field);
    if (it == found.end() || *it != value) {
      const std::string had = it == found.end() ? "nothing" : it->dump();
      return cohort::invalid_argument("--output " + dir.string() + " holds shards of another run: its " +
                                      std::string(kManifestFile) + " has " + field + " " + had + ", this run " +
                                      value.dump() + " (" + std::string(flag_of(field)) +
                                      "); use a new --output folder, or delete this one to start over");
    }
  }
  return {};
}

std::string success_json(std::uint64_t rows, std::size_t shards, std::uint64_t correct) {
  const double accuracy = rows == 0 ? 0.0 : static_cast<double>(correct) / static_cast<double>(rows);
  nlohmann::ordered_json j;
  j["rows"] = rows;
  j["shards"] = shards;
  j["correct"] = correct;
  j["accuracy"] = accuracy;
  return j.dump() + "\n";
}

std::string hex64(std::uint64_t v) {
  char out[17];
  std::snprintf(out, sizeof out, "%016llx", static_cast<unsigned long long>(v));
  return out;
}

}  // namespace batch_infer
