#include "file_write.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <fstream>
#include <iterator>
#include <string>

namespace cohort {

Status write_all(int fd, std::string_view data, std::string_view what) {
  std::size_t done = 0;
  while (done < data.size()) {
    const ssize_t n = ::write(fd, data.data() + done, data.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return errno_status("write", n < 0 ? errno : EIO, what);
    done += static_cast<std::size_t>(n);
  }
  return {};
}

Status write_file_replacing(const std::filesystem::path& path, std::string_view data, mode_t mode,
                            Durability durability) {
  const std::string tmp = path.string() + ".tmp-" + std::to_string(::getpid());
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
  if (fd < 0) return errno_status("open", errno, tmp);
  Status written = write_all(fd, data, tmp);
  if (written.ok() && durability == Durability::kMachine && ::fsync(fd) != 0)
    written = errno_status("fsync", errno, tmp);
  // NFS reports write errors at close.
  if (::close(fd) != 0 && written.ok()) written = errno_status("close", errno, tmp);
  if (written.ok() && ::rename(tmp.c_str(), path.c_str()) != 0) {
    written = errno_status("rename", errno, tmp + " -> " + path.string());
  }
  if (!written.ok()) {
    ::unlink(tmp.c_str());
    return written;
  }
  if (durability == Durability::kProcess) return {};
  // Without it a crash could lose the rename itself.
  const std::string dir = path.parent_path().empty() ? "." : path.parent_path().string();
  const int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd < 0) return errno_status("open", errno, dir);
  const bool synced = ::fsync(dfd) == 0;
  const int err = errno;
  ::close(dfd);
  return synced ? Status() : errno_status("fsync", err, dir);
}

std::string read_whole_file(const std::filesystem::path& path) {
  std::ifstream in(path);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

}  // namespace cohort
