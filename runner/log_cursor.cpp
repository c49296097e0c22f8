#include "log_cursor.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>

namespace cohort::runner {

Result<std::string> LogCursor::pending(std::size_t max_bytes) const {
  const int fd = ::open(file_.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return std::string();
    return errno_status("open", errno, file_.string());
  }
  std::string out(max_bytes, '\0');
  std::size_t got = 0;
  while (got < max_bytes) {
    const ssize_t n = ::pread(fd, out.data() + got, max_bytes - got, static_cast<off_t>(offset_ + got));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      const int err = errno;
      ::close(fd);
      return errno_status("pread", err, file_.string());
    }
    if (n == 0) break;
    got += static_cast<std::size_t>(n);
  }
  ::close(fd);
  out.resize(got);
  return out;
}

Status LogCursor::ship(const std::function<Status(std::string_view)>& send, std::size_t chunk) {
  for (;;) {
    COHORT_ASSIGN_OR_RETURN(std::string data, pending(chunk));
    if (data.empty()) return {};
    COHORT_TRY(send(data));
    acknowledge(data.size());
  }
}

}  // namespace cohort::runner
