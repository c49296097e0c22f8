// The two files of the output folder besides the shards. `_MANIFEST.json`, written by the first
// run, names what the shards were computed from, so a restart with other flags, weights or data
// is refused instead of mixing two runs' rows. `_SUCCESS`, written last, says every shard is
// committed and holds the totals.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <string>

#include "cohort/status.hpp"

namespace batch_infer {

inline constexpr std::string_view kManifestFile = "_MANIFEST.json";
inline constexpr std::string_view kSuccessFile = "_SUCCESS";

struct RunManifest {
  std::uint64_t rows = 0;
  std::uint64_t shard_rows = 0;
  std::size_t hidden = 0;
  std::string activation;
  std::string weights;  // the model's fingerprint, 16 hex digits
  std::uint64_t source_rows = 0;
  std::string source;  // fingerprint of the source data, 16 hex digits
};

std::string encode(const RunManifest& m);

// Commits `expected` as dir/_MANIFEST.json when there is none; when there is one, checks that it
// equals `expected`. One that differs is InvalidArgument naming the first differing field and
// both values; an unreadable one is DataLoss. Rank 0 calls it before the ranks meet.
cohort::Status check_or_write_manifest(const std::filesystem::path& dir, const RunManifest& expected);

// What _SUCCESS holds: {"rows":..,"shards":..,"correct":..,"accuracy":..}, one line.
std::string success_json(std::uint64_t rows, std::size_t shards, std::uint64_t correct);

// 16 lower-case hex digits.
std::string hex64(std::uint64_t v);

}  // namespace batch_infer
