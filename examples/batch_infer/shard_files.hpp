// The output folder's files: shard names, the atomic commit, stale temporaries, and the check of
// a shard committed by an earlier run.
//
// A shard is written to `part-NNNNN.csv.tmp-<rank>-<pid>`, fsynced, renamed to `part-NNNNN.csv`
// and the folder fsynced. So `part-NNNNN.csv` exists only complete, even after a crash of the
// machine, and its existence alone says the shard is done; temporaries are leftovers of a run
// that died and are never read.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>

#include "cohort/status.hpp"
#include "shard_plan.hpp"

namespace batch_infer {

std::string shard_file_name(std::size_t shard);  // "part-00003.csv"
// True for the temporaries commit_file() writes ("<name>.tmp-<pid>").
bool is_temp_file_name(std::string_view name) noexcept;

// Writes `contents` to a temporary beside dir/name, fsyncs it, renames it to dir/name and fsyncs
// dir (cohort::write_file_replacing): dir/name then holds all of `contents`, or (after a crash)
// whatever it held before. On failure the temporary is removed; errors name the call and the file.
cohort::Status commit_file(const std::filesystem::path& dir, std::string_view name, std::string_view contents);

// Removes every temporary (is_temp_file_name) in `dir`; returns how many. REQUIRES: no process
// is writing into `dir` (rank 0 calls it before the ranks meet, which no rank passes before it).
cohort::Result<std::size_t> remove_temp_files(const std::filesystem::path& dir);

// What a committed shard holds.
struct ShardTally {
  std::uint64_t rows = 0;
  std::uint64_t correct = 0;  // rows whose predicted class is their label
};

// Reads `path` as the file of `range`: one well-formed line per row, rows in order, nothing else.
// A file that is not is DataLoss naming it and its first bad line (it was written by a run with
// other --rows or --shard-rows, or changed since).
cohort::Result<ShardTally> verify_shard_file(const std::filesystem::path& path, const ShardRange& range);

}  // namespace batch_infer
