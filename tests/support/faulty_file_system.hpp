// A FileSystem that counts the operations that change something on disk and, at a chosen one,
// fails it with an errno or kills the whole process with SIGKILL: a crash at an exact point.
#pragma once

#include <atomic>

#include "checkpoint/file_system.hpp"

namespace cohort::testing {

class FaultyFileSystem final : public FileSystem {
 public:
  explicit FaultyFileSystem(FileSystem& base = FileSystem::posix()) : base_(base) {}

  // Operation number `n` (1-based, counted from now) fails with `err`; 0 disables.
  void fail_at(int n, int err) {
    ops_ = 0;
    fail_at_ = n;
    errno_ = err;
  }
  // Operation number `n` raises SIGKILL on this process before it happens; 0 disables.
  void crash_at(int n) {
    ops_ = 0;
    crash_at_ = n;
  }
  int ops() const { return ops_; }

  Result<std::unique_ptr<WritableFile>> create(const std::filesystem::path& path) override;
  Result<std::unique_ptr<ReadableFile>> open(const std::filesystem::path& path) override { return base_.open(path); }
  Status make_dir(const std::filesystem::path& path) override;
  Status rename(const std::filesystem::path& from, const std::filesystem::path& to) override;
  Status exchange(const std::filesystem::path& a, const std::filesystem::path& b) override;
  Status sync_dir(const std::filesystem::path& dir) override;
  Status remove_all(const std::filesystem::path& path) override;
  Result<std::vector<std::string>> list(const std::filesystem::path& dir) override { return base_.list(dir); }
  bool exists(const std::filesystem::path& path) override { return base_.exists(path); }
  Result<std::unique_ptr<FileLock>> lock(const std::filesystem::path& path) override;

  // Counts one operation; the injected failure when this is the chosen one.
  Status step(const char* what);

 private:
  FileSystem& base_;
  std::atomic<int> ops_{0};
  int fail_at_ = 0;
  int crash_at_ = 0;
  int errno_ = 0;
};

}  // namespace cohort::testing
