#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>

#include "checkpoint/file_system.hpp"

namespace cohort {
namespace {

class PosixWritable final : public WritableFile {
 public:
  PosixWritable(int fd, std::string path) : fd_(fd), path_(std::move(path)) {}
  ~PosixWritable() override {
    if (fd_ >= 0) ::close(fd_);
  }
  Status append(const void* data, std::size_t bytes) override {
    const char* p = static_cast<const char*>(data);
    while (bytes > 0) {
      ssize_t n = ::write(fd_, p, bytes);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) return errno_status("write", errno, path_);
      p += n;
      bytes -= static_cast<std::size_t>(n);
    }
    return {};
  }
  Status sync() override {
    if (::fdatasync(fd_) != 0) return errno_status("fdatasync", errno, path_);
    return {};
  }
  Status close() override {
    int fd = std::exchange(fd_, -1);
    if (fd >= 0 && ::close(fd) != 0) return errno_status("close", errno, path_);
    return {};
  }

 private:
  int fd_;
  std::string path_;
};

class PosixReadable final : public ReadableFile {
 public:
  PosixReadable(int fd, std::string path) : fd_(fd), path_(std::move(path)) {}
  ~PosixReadable() override { ::close(fd_); }
  Result<std::size_t> read(void* data, std::size_t bytes) override {
    for (;;) {
      ssize_t n = ::read(fd_, data, bytes);
      if (n >= 0) return static_cast<std::size_t>(n);
      if (errno != EINTR) return errno_status("read", errno, path_);
    }
  }
  Result<std::uint64_t> size() override {
    struct stat st {};
    if (::fstat(fd_, &st) != 0) return errno_status("fstat", errno, path_);
    return static_cast<std::uint64_t>(st.st_size);
  }

 private:
  int fd_;
  std::string path_;
};

class PosixLock final : public FileLock {
 public:
  explicit PosixLock(int fd) : fd_(fd) {}
  ~PosixLock() override { ::close(fd_); }  // closing releases the flock

 private:
  int fd_;
};

class PosixFileSystem final : public FileSystem {
 public:
  Result<std::unique_ptr<WritableFile>> create(const std::filesystem::path& path) override {
    int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) return errno_status("open", errno, path.string());
    return std::unique_ptr<WritableFile>(std::make_unique<PosixWritable>(fd, path.string()));
  }
  Result<std::unique_ptr<ReadableFile>> open(const std::filesystem::path& path) override {
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return errno_status("open", errno, path.string());
    // Checkpoint files are read front to back once: let the kernel read ahead aggressively.
    (void)::posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
    return std::unique_ptr<ReadableFile>(std::make_unique<PosixReadable>(fd, path.string()));
  }
  Status make_dir(const std::filesystem::path& path) override {
    if (::mkdir(path.c_str(), 0755) == 0 || errno == EEXIST) return {};
    return errno_status("mkdir", errno, path.string());
  }
  Status rename(const std::filesystem::path& from, const std::filesystem::path& to) override {
    if (::rename(from.c_str(), to.c_str()) != 0)
      return errno_status("rename", errno, from.string() + " -> " + to.string());
    return {};
  }
  Status exchange(const std::filesystem::path& a, const std::filesystem::path& b) override {
    if (::renameat2(AT_FDCWD, a.c_str(), AT_FDCWD, b.c_str(), RENAME_EXCHANGE) != 0) {
      return errno_status("renameat2(RENAME_EXCHANGE)", errno, a.string() + " <-> " + b.string());
    }
    return {};
  }
  Status sync_dir(const std::filesystem::path& dir) override {
    int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return errno_status("open", errno, dir.string());
    int rc = ::fsync(fd);
    int err = errno;
    ::close(fd);
    if (rc != 0) return errno_status("fsync", err, dir.string());
    return {};
  }
  Status remove_all(const std::filesystem::path& path) override {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
    if (ec) return Status(Code::kIoError, "removing " + path.string() + ": " + ec.message());
    return {};
  }
  Result<std::vector<std::string>> list(const std::filesystem::path& dir) override {
    std::vector<std::string> names;
    std::error_code ec;
    for (std::filesystem::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
      names.push_back(it->path().filename().string());
    }
    if (ec) return Status(Code::kIoError, "listing " + dir.string() + ": " + ec.message());
    return names;
  }
  bool exists(const std::filesystem::path& path) override {
    struct stat st {};
    return ::stat(path.c_str(), &st) == 0;
  }
  Result<std::unique_ptr<FileLock>> lock(const std::filesystem::path& path) override {
    int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) return errno_status("open", errno, path.string());
    while (::flock(fd, LOCK_EX) != 0) {
      if (errno != EINTR) {
        int err = errno;
        ::close(fd);
        return errno_status("flock", err, path.string());
      }
    }
    return std::unique_ptr<FileLock>(std::make_unique<PosixLock>(fd));
  }
};

}  // namespace

FileSystem& FileSystem::posix() {
  static PosixFileSystem fs;
  return fs;
}

Status durable_write(FileSystem& fs, const std::filesystem::path& target, std::string_view contents) {
  static std::atomic<unsigned> counter{0};
  const auto tmp = target.parent_path() / ("." + target.filename().string() + ".tmp-" + std::to_string(getpid()) + "-" +
                                           std::to_string(counter++));
  auto write = [&]() -> Status {
    COHORT_ASSIGN_OR_RETURN(auto file, fs.create(tmp));
    COHORT_TRY(file->append(contents.data(), contents.size()));
    COHORT_TRY(file->sync());
    COHORT_TRY(file->close());
    COHORT_TRY(fs.rename(tmp, target));
    return fs.sync_dir(target.parent_path());
  };
  Status s = write();
  if (!s.ok() && fs.exists(tmp)) (void)fs.remove_all(tmp);  // the target is untouched
  return s;
}

Result<std::string> read_small_file(FileSystem& fs, const std::filesystem::path& path, std::size_t limit) {
  COHORT_ASSIGN_OR_RETURN(auto file, fs.open(path));
  std::string out;
  char buf[65536];
  for (;;) {
    COHORT_ASSIGN_OR_RETURN(std::size_t n, file->read(buf, sizeof buf));
    if (n == 0) break;
    out.append(buf, n);
    if (out.size() > limit) {
      return Status(Code::kDataLoss, path.string() + " is larger than " + std::to_string(limit) + " bytes");
    }
  }
  return out;
}

}  // namespace cohort
