// The filesystem seam of checkpoints: everything the commit protocol does to files goes through
// FileSystem, so tests can fail or crash (SIGKILL) the Nth operation and check what survives.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "cohort/status.hpp"

namespace cohort {

class WritableFile {
 public:
  virtual ~WritableFile() = default;
  virtual Status append(const void* data, std::size_t bytes) = 0;
  virtual Status sync() = 0;   // fdatasync: the data is on stable storage when it returns
  virtual Status close() = 0;  // a close error (NFS reports write errors here) is a failure
};

class ReadableFile {
 public:
  virtual ~ReadableFile() = default;
  // Up to `bytes`; 0 at the end of the file.
  virtual Result<std::size_t> read(void* data, std::size_t bytes) = 0;
  virtual Result<std::uint64_t> size() = 0;
};

// Held while rank 0 commits, so two attempts of a job never commit at the same time.
class FileLock {
 public:
  virtual ~FileLock() = default;
};

class FileSystem {
 public:
  virtual ~FileSystem() = default;
  static FileSystem& posix();

  virtual Result<std::unique_ptr<WritableFile>> create(const std::filesystem::path& path) = 0;  // truncates
  virtual Result<std::unique_ptr<ReadableFile>> open(const std::filesystem::path& path) = 0;
  virtual Status make_dir(const std::filesystem::path& path) = 0;  // an existing directory is fine
  virtual Status rename(const std::filesystem::path& from, const std::filesystem::path& to) = 0;
  // Swaps two existing paths atomically (renameat2 RENAME_EXCHANGE).
  virtual Status exchange(const std::filesystem::path& a, const std::filesystem::path& b) = 0;
  virtual Status sync_dir(const std::filesystem::path& dir) = 0;
  virtual Status remove_all(const std::filesystem::path& path) = 0;
  virtual Result<std::vector<std::string>> list(const std::filesystem::path& dir) = 0;  // names, unsorted
  virtual bool exists(const std::filesystem::path& path) = 0;
  virtual Result<std::unique_ptr<FileLock>> lock(const std::filesystem::path& path) = 0;
};

// write a temporary file beside `target`, fsync it, rename it over `target`, fsync the folder:
// after a crash `target` holds either its old contents or `contents`, never a part.
Status durable_write(FileSystem& fs, const std::filesystem::path& target, std::string_view contents);

// The whole file, for small files (manifests, indexes).
Result<std::string> read_small_file(FileSystem& fs, const std::filesystem::path& path, std::size_t limit);

}  // namespace cohort
