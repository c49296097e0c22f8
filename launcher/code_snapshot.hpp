// A job's `code:` directory, snapshotted at submit as a tar.gz, so that later edits do not change
// a queued job. Only the `code` key is read here; the manager validates the whole spec.
#pragma once

#include <cstddef>
#include <filesystem>
#include <optional>
#include <string>

#include "cohort/status.hpp"

namespace cohort::cli {

// The most a snapshot may weigh, compressed: the manager keeps one per job and sends it to every
// node, so data sets and checkpoints belong in `inputs:` instead.
inline constexpr std::size_t kMaxCodeSnapshotBytes = std::size_t{200} << 20;

// The job file's `code:` directory, resolved relative to the job file's own directory; nullopt
// when the spec has no (or an empty) top-level `code`. InvalidArgument, naming the file, for YAML
// that does not parse, a `code` that is not a string, or a path that is not a directory.
Result<std::optional<std::filesystem::path>> code_directory(const std::string& spec_yaml,
                                                            const std::filesystem::path& job_file);

// `tar -C dir -czf - .`: the directory's contents as gzip-compressed tar bytes. ResourceExhausted
// when they pass `limit` (tar is stopped there, nothing more is read); tar's own error otherwise.
Result<std::string> snapshot_code(const std::filesystem::path& dir, std::size_t limit = kMaxCodeSnapshotBytes);

}  // namespace cohort::cli
