// Sharded, atomic, verified checkpoints, synchronous or asynchronous.
//
// On disk, under the checkpoint directory (a POSIX directory shared by every node of the job):
//
//   step-00000000000000000200/        a committed checkpoint: it exists only with its manifest
//     MANIFEST.json                   step, world size, attempt, and every file with size + xxh3
//     rank-00000.data  rank-00000.json  one data file (the tensors back to back) and one index
//     rank-00001.data  rank-00001.json  (tensor names, offsets, sizes, metadata) per rank
//   step-…200.tmp-<nonce>/            a save in progress, or one that died: never restored
//   latest                            "step-…200", a hint for people and tools
//
// Commit: every rank writes and fsyncs its two files into the temporary directory and publishes
// its index by an atomic rename; rank 0 waits for every index, writes MANIFEST.json durably,
// renames the directory to step-N and fsyncs the parent, then updates `latest` durably. A crash at
// any point leaves either the previous checkpoint or the new one, never a mix.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "cohort/collectives.hpp"
#include "cohort/context.hpp"
#include "cohort/status.hpp"

namespace cohort {

// A named byte range of this rank's state, saved as it is at the moment of save().
struct TensorView {
  std::string name;  // unique within the shard; letters, digits and ._-/ only
  const void* data = nullptr;
  std::size_t bytes = 0;
  Device device = Device::kHost;
};

// One rank's part of a checkpoint.
struct ShardView {
  std::vector<TensorView> tensors;
  std::string metadata_json = "{}";  // a small JSON value (≤ 1 MiB): step counters, RNG state, …
};

// An allocator that leaves new elements uninitialized: a restore reads every byte of its
// buffers from disk, so zero-filling them first would only cost time (about 0.15 s per GiB).
template <typename T>
struct UninitializedAllocator : std::allocator<T> {
  template <typename U>
  struct rebind {
    using other = UninitializedAllocator<U>;
  };
  UninitializedAllocator() = default;
  template <typename U>
  UninitializedAllocator(const UninitializedAllocator<U>&) noexcept {}  // NOLINT(google-explicit-constructor)
  template <typename U>
  void construct(U* p) noexcept {
    ::new (static_cast<void*>(p)) U;
  }
  template <typename U, typename... Args>
  void construct(U* p, Args&&... args) {
    ::new (static_cast<void*>(p)) U(std::forward<Args>(args)...);
  }
};
using ByteBuffer = std::vector<std::byte, UninitializedAllocator<std::byte>>;

struct RestoredTensor {
  std::string name;
  ByteBuffer bytes;
};

struct Restored {
  std::int64_t step = 0;
  int attempt = 0;  // the attempt that wrote it
  std::filesystem::path path;
  std::vector<RestoredTensor> tensors;
  std::string metadata_json;

  // The tensor called `name`, or nullptr.
  const RestoredTensor* find(std::string_view name) const;
};

struct CheckpointOptions {
  std::filesystem::path dir;  // empty: the context's checkpoint_dir
  // Committed checkpoints kept; older ones are deleted after each commit (at least 1).
  int keep_last = 3;
  // Asynchronous: save() copies the shard into staging memory and returns; a background thread
  // writes it. A shard larger than staging_bytes is saved synchronously, with a warning.
  bool async = false;
  std::size_t staging_bytes = std::size_t{1} << 30;
  // How long rank 0 waits for every rank's files before giving the save up. Long by default:
  // a rank's write of a large shard to a slow shared filesystem can take minutes.
  std::chrono::milliseconds commit_timeout = std::chrono::minutes(10);
};

class FileSystem;  // the filesystem seam (libcohort/checkpoint/file_system.hpp); tests inject faults

class Checkpointer {
 public:
  // Local (no collective). REQUIRES: every rank of the job then calls save, wait and
  // restore_latest in the same order (they are collectives); `comm` outlives the Checkpointer.
  static Result<std::unique_ptr<Checkpointer>> open(const Context& ctx, Communicator& comm, CheckpointOptions options);
  // For tests: a filesystem with injected faults. REQUIRES: `fs` outlives the Checkpointer.
  static Result<std::unique_ptr<Checkpointer>> open(const Context& ctx, Communicator& comm, CheckpointOptions options,
                                                    FileSystem& fs);
  // Waits for an asynchronous save still in flight, up to a minute; then rank 0 stops waiting for
  // other ranks' files and that save is abandoned (the previous checkpoint stays the newest).
  ~Checkpointer();
  Checkpointer(const Checkpointer&) = delete;
  Checkpointer& operator=(const Checkpointer&) = delete;

  // Saves this rank's shard as part of checkpoint `step`. Synchronous: returns when the
  // checkpoint is committed (or failed) on every rank, with the same Status everywhere.
  // Asynchronous: first waits for the previous save (its outcome goes to last_async_status();
  // only Fenced is returned from here), then returns once the shard is staged.
  // Fenced when a newer attempt of the job has already committed a checkpoint.
  Status save(std::int64_t step, const ShardView& shard);

  // Waits for the asynchronous save in flight, if any; its Status, the same on every rank.
  Status wait();

  // The agreed outcome of the last asynchronous save that wait() (or the next save()) collected.
  const Status& last_async_status() const noexcept;

  // The newest checkpoint whose manifest and this job's every shard verify, agreed by all ranks;
  // nullopt when there is none. It may come from a newer attempt than this one (Restored::attempt):
  // this attempt is then stale, and its saves will be Fenced. Corrupt or torn ones are skipped with a warning naming
  // the file. FailedPrecondition when the newest valid one was written by a different number of ranks (resharding is
  // not supported).
  Result<std::optional<Restored>> restore_latest();

  const std::filesystem::path& dir() const noexcept;

  class Impl;

 private:
  explicit Checkpointer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace cohort
