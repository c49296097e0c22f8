// A rank's data file: its tensors back to back, streamed in chunks and hashed (xxh3-64) on the
// way, so neither writing nor verifying ever holds more than one chunk beyond the tensors.
#pragma once

#include <cstddef>
#include <filesystem>
#include <span>
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

// Staging memory of asynchronous saves: an anonymous mapping, populated when it is made
// (MAP_POPULATE), so that the snapshot copied into it never takes a page fault; unmapped by the
// destructor. Why not hugepages: see map().
class StagingBuffer {
 public:
  StagingBuffer() = default;
  // ResourceExhausted (naming the size) when the memory cannot be had.
  static Result<StagingBuffer> map(std::size_t bytes);
  StagingBuffer(StagingBuffer&& other) noexcept;
  StagingBuffer& operator=(StagingBuffer&& other) noexcept;
  StagingBuffer(const StagingBuffer&) = delete;
  StagingBuffer& operator=(const StagingBuffer&) = delete;
  ~StagingBuffer();

  std::byte* data() const noexcept { return data_; }
  std::size_t size() const noexcept { return size_; }

 private:
  StagingBuffer(std::byte* data, std::size_t size) : data_(data), size_(size) {}
  void unmap() noexcept;

  std::byte* data_ = nullptr;  // owned: the mapping, or null when empty
  std::size_t size_ = 0;
};

// One host-to-host copy of a snapshot.
struct HostCopy {
  std::byte* dst;
  const std::byte* src;
  std::size_t bytes;
};

// Copies every piece: the snapshot that an asynchronous save makes the training loop wait for.
// The pieces' bytes, laid end to end, are copied in chunks by up to 8 threads (one core does not
// saturate memory bandwidth), and a snapshot too large for the caches is copied with
// non-temporal stores. shard_io.cpp has the measurements.
void snapshot_copy(std::span<const HostCopy> pieces);

std::uint64_t xxh3(const void* data, std::size_t bytes);

}  // namespace cohort::ckpt
