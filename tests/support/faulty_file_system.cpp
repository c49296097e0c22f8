#include "faulty_file_system.hpp"

#include <csignal>

namespace cohort::testing {
namespace {

class FaultyWritable final : public WritableFile {
 public:
  FaultyWritable(std::unique_ptr<WritableFile> base, FaultyFileSystem& fs) : base_(std::move(base)), fs_(fs) {}
  Status append(const void* data, std::size_t bytes) override {
    COHORT_TRY(fs_.step("append"));
    return base_->append(data, bytes);
  }
  Status sync() override {
    COHORT_TRY(fs_.step("sync"));
    return base_->sync();
  }
  Status close() override {
    COHORT_TRY(fs_.step("close"));
    return base_->close();
  }

 private:
  std::unique_ptr<WritableFile> base_;
  FaultyFileSystem& fs_;
};

}  // namespace

Status FaultyFileSystem::step(const char* what) {
  const int n = ++ops_;
  if (crash_at_ != 0 && n == crash_at_) raise(SIGKILL);
  if (fail_at_ != 0 && n == fail_at_) return errno_status(std::string("injected ") + what, errno_);
  return {};
}

Result<std::unique_ptr<WritableFile>> FaultyFileSystem::create(const std::filesystem::path& path) {
  COHORT_TRY(step("create"));
  COHORT_ASSIGN_OR_RETURN(auto file, base_.create(path));
  return std::unique_ptr<WritableFile>(std::make_unique<FaultyWritable>(std::move(file), *this));
}

Status FaultyFileSystem::make_dir(const std::filesystem::path& path) {
  COHORT_TRY(step("mkdir"));
  return base_.make_dir(path);
}

Status FaultyFileSystem::rename(const std::filesystem::path& from, const std::filesystem::path& to) {
  COHORT_TRY(step("rename"));
  return base_.rename(from, to);
}

Status FaultyFileSystem::exchange(const std::filesystem::path& a, const std::filesystem::path& b) {
  COHORT_TRY(step("exchange"));
  return base_.exchange(a, b);
}

Status FaultyFileSystem::sync_dir(const std::filesystem::path& dir) {
  COHORT_TRY(step("fsync dir"));
  return base_.sync_dir(dir);
}

Status FaultyFileSystem::remove_all(const std::filesystem::path& path) {
  COHORT_TRY(step("remove"));
  return base_.remove_all(path);
}

Result<std::unique_ptr<FileLock>> FaultyFileSystem::lock(const std::filesystem::path& path) {
  COHORT_TRY(step("lock"));
  return base_.lock(path);
}

}  // namespace cohort::testing
