// What a checkpoint says about itself: each rank's index (its tensors and metadata) and rank 0's
// manifest (every file with its size and checksum). JSON, validated field by field on the way in:
// a manifest is input from disk, and disks lie.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "cohort/status.hpp"

namespace cohort::ckpt {

constexpr int kFormatVersion = 1;

struct FileEntry {
  std::string name;  // relative to the checkpoint directory
  std::uint64_t bytes = 0;
  std::uint64_t xxh3 = 0;
};

struct TensorEntry {
  std::string name;
  std::uint64_t offset = 0;  // in the rank's data file
  std::uint64_t bytes = 0;
};

struct RankIndex {
  int rank = 0;
  std::int64_t step = 0;
  int attempt = 0;
  std::string nonce;  // the save this index belongs to
  FileEntry data;
  std::vector<TensorEntry> tensors;
  std::string metadata_json = "{}";
};

struct Manifest {
  int format = kFormatVersion;
  std::int64_t step = 0;
  int world_size = 0;
  int attempt = 0;  // the generation that committed it: older attempts may not commit after it
  std::string nonce;
  std::int64_t created_unix_ms = 0;
  std::vector<FileEntry> files;  // every rank's data file and index

  const FileEntry* find(std::string_view name) const;
};

std::string encode(const RankIndex& index);
std::string encode(const Manifest& manifest);
// InvalidArgument naming the field path ("tensors[2].offset") of the first violation.
Result<RankIndex> parse_rank_index(std::string_view json);
Result<Manifest> parse_manifest(std::string_view json);
// Whether `json` is one JSON value; the parser's complaint otherwise.
Status check_json(std::string_view json);

// "step-00000000000000000200"; nullopt-like -1 from a name that is not exactly that form.
std::string step_dir_name(std::int64_t step);
std::int64_t parse_step_dir_name(std::string_view name);
std::string data_file_name(int rank);   // "rank-00003.data"
std::string index_file_name(int rank);  // "rank-00003.json"

}  // namespace cohort::ckpt
