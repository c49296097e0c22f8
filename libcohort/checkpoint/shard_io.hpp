// A rank's data file: its tensors back to back, streamed in chunks and hashed (xxh3-64) on the
// way, so neither writing nor verifying ever holds more than one chunk beyond the tensors.
#pragma once

#include <filesystem>
#include <vector>

#include "checkpoint/file_system.hpp"
#include "checkpoint/manifest.hpp"
#include "cohort/checkpoint.hpp"

namespace cohort::ckpt {

// Chunk of a streamed write or read: large enough for full disk bandwidth, small enough that a
// device tensor's bounce buffer stays modest.
constexpr std::size_t kChunkBytes = std::size_t{8} << 20;

// Writes the tensors to `path` (fsynced and closed); fills `tensors` and returns the file entry.
Result<FileEntry> write_data_file(FileSystem& fs, const std::filesystem::path& path,
                                  const std::vector<TensorView>& views, std::vector<TensorEntry>& tensors);

// Reads `path` into one buffer per tensor, checking its size and checksum against `expected`;
// DataLoss naming the file and the mismatch otherwise.
Result<std::vector<RestoredTensor>> read_data_file(FileSystem& fs, const std::filesystem::path& path,
                                                   const FileEntry& expected, const std::vector<TensorEntry>& tensors);

// Size and checksum of a whole small file.
Result<FileEntry> describe_file(FileSystem& fs, const std::filesystem::path& path);

// Copies `bytes` from a host or device buffer into host memory.
Status copy_to_host(void* dst, const void* src, std::size_t bytes, Device device);

// memcpy on several threads for large host buffers: one core cannot saturate memory bandwidth,
// and this copy is all an asynchronous save makes the training loop wait for.
Status parallel_copy(void* dst, const void* src, std::size_t bytes);

std::uint64_t xxh3(const void* data, std::size_t bytes);

}  // namespace cohort::ckpt
