#include "exec_socket.hpp"

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstring>

namespace cohort {

namespace {

// sun_path holds 107 bytes; a deeper path (a node's work directory can be deep) goes through its
// directory's descriptor, /proc/self/fd/N/NAME, which the kernel resolves like the path itself.
struct Address {
  sockaddr_un addr{};
  int dir_fd = -1;  // held open while the address is in use
  ~Address() {
    if (dir_fd >= 0) ::close(dir_fd);
  }
};

Status address_of(const std::string& path, Address& out) {
  out.addr.sun_family = AF_UNIX;
  std::string name = path;
  if (path.size() >= sizeof out.addr.sun_path) {
    const auto slash = path.rfind('/');
    if (slash == std::string::npos || slash == 0) return invalid_argument("exec socket path \"" + path + "\" too long");
    out.dir_fd = ::open(path.substr(0, slash).c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (out.dir_fd < 0) return errno_status("open", errno, path.substr(0, slash));
    name = "/proc/self/fd/" + std::to_string(out.dir_fd) + path.substr(slash);
  }
  if (name.empty() || name.size() >= sizeof out.addr.sun_path)
    return invalid_argument("exec socket path \"" + path + "\" is empty or its name too long");
  std::memcpy(out.addr.sun_path, name.c_str(), name.size() + 1);
  return {};
}

// One request's message: the payload and room for its two descriptors.
struct Message {
  explicit Message(std::string& payload) : io{payload.data(), payload.size()} {
    header.msg_iov = &io;
    header.msg_iovlen = 1;
    header.msg_control = control;
    header.msg_controllen = sizeof control;
  }
  Message(const Message&) = delete;
  Message& operator=(const Message&) = delete;
  iovec io;
  alignas(cmsghdr) char control[CMSG_SPACE(2 * sizeof(int))] = {};
  msghdr header{};
};

}  // namespace

Result<int> listen_exec_socket(const std::string& path) {
  Address a;
  COHORT_TRY(address_of(path, a));
  const int fd = ::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
  if (fd < 0) return errno_status("socket", errno);
  ::unlink(path.c_str());  // a socket left by an earlier run of this attempt
  if (::bind(fd, reinterpret_cast<const sockaddr*>(&a.addr), sizeof a.addr) != 0 || ::chmod(path.c_str(), 0600) != 0 ||
      ::listen(fd, 16) != 0) {
    const int err = errno;
    ::close(fd);
    return errno_status("bind/listen", err, path);
  }
  return fd;
}

Result<int> connect_exec_socket(const std::string& path) {
  Address a;
  COHORT_TRY(address_of(path, a));
  const int fd = ::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
  if (fd < 0) return errno_status("socket", errno);
  if (::connect(fd, reinterpret_cast<const sockaddr*>(&a.addr), sizeof a.addr) != 0) {
    const int err = errno;
    ::close(fd);
    return errno_status("connect", err, path);
  }
  return fd;
}

Status send_exec_request(int sock, const std::vector<std::string>& argv, const std::vector<std::string>& env,
                         int stdout_fd, int stderr_fd) {
  if (argv.empty()) return invalid_argument("exec request: no command");
  std::string payload = std::to_string(argv.size());
  payload.push_back('\0');
  for (const auto* list : {&argv, &env}) {
    for (const auto& s : *list) {
      if (s.find('\0') != std::string::npos) return invalid_argument("exec request: a NUL inside \"" + s + "\"");
      payload += s;
      payload.push_back('\0');
    }
  }
  if (payload.size() > kMaxExecRequest) {
    return invalid_argument("exec request of " + std::to_string(payload.size()) + " bytes: more than " +
                            std::to_string(kMaxExecRequest));
  }
  Message message(payload);
  msghdr& m = message.header;
  cmsghdr* c = CMSG_FIRSTHDR(&m);
  c->cmsg_level = SOL_SOCKET;
  c->cmsg_type = SCM_RIGHTS;
  c->cmsg_len = CMSG_LEN(2 * sizeof(int));
  const int fds[2] = {stdout_fd, stderr_fd};
  std::memcpy(CMSG_DATA(c), fds, sizeof fds);
  ssize_t n;
  do {
    n = ::sendmsg(sock, &m, MSG_NOSIGNAL);
  } while (n < 0 && errno == EINTR);
  if (n != static_cast<ssize_t>(payload.size())) return errno_status("sendmsg", n < 0 ? errno : EMSGSIZE);
  return {};
}

Result<ExecRequest> receive_exec_request(int sock) {
  std::string payload(kMaxExecRequest + 1, '\0');
  Message message(payload);
  msghdr& m = message.header;
  ssize_t n;
  do {
    n = ::recvmsg(sock, &m, MSG_CMSG_CLOEXEC);
  } while (n < 0 && errno == EINTR);
  if (n < 0) return errno_status("recvmsg", errno);
  ExecRequest r;
  int received = 0;
  for (cmsghdr* c = CMSG_FIRSTHDR(&m); c != nullptr; c = CMSG_NXTHDR(&m, c)) {
    if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
    const std::size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
    int fds[2] = {-1, -1};
    std::memcpy(fds, CMSG_DATA(c), std::min<std::size_t>(count, 2) * sizeof(int));
    r.stdout_fd = fds[0];
    r.stderr_fd = fds[1];
    received = static_cast<int>(count);
  }
  auto refuse = [&](const std::string& why) -> Status {
    if (r.stdout_fd >= 0) ::close(r.stdout_fd);
    if (r.stderr_fd >= 0) ::close(r.stderr_fd);
    return invalid_argument("exec request: " + why);
  };
  if (received != 2 || r.stdout_fd < 0 || r.stderr_fd < 0) return refuse("it must carry two descriptors");
  if ((m.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) != 0 || n == 0 || payload[static_cast<std::size_t>(n) - 1] != '\0')
    return refuse("truncated or not NUL-terminated");
  payload.resize(static_cast<std::size_t>(n));
  std::vector<std::string> words;
  for (std::size_t at = 0; at < payload.size();) {
    const std::size_t end = payload.find('\0', at);
    words.push_back(payload.substr(at, end - at));
    at = end + 1;
  }
  std::size_t argc = 0;
  auto [ptr, ec] = std::from_chars(words[0].data(), words[0].data() + words[0].size(), argc);
  if (ec != std::errc() || ptr != words[0].data() + words[0].size() || argc == 0 || argc >= words.size())
    return refuse("bad argument count \"" + words[0] + "\"");
  r.argv.assign(words.begin() + 1, words.begin() + 1 + static_cast<std::ptrdiff_t>(argc));
  r.env.assign(words.begin() + 1 + static_cast<std::ptrdiff_t>(argc), words.end());
  return r;
}

Status send_exec_exit(int sock, const ExitStatus& status) {
  const std::string reply = "exit " + std::to_string(status.code) + " " + std::to_string(status.signal);
  if (::send(sock, reply.data(), reply.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(reply.size()))
    return errno_status("send", errno);
  return {};
}

Result<ExitStatus> parse_exec_exit(std::string_view reply) {
  ExitStatus st;
  const auto space = reply.find(' ', 5);
  if (!reply.starts_with("exit ") || space == std::string_view::npos)
    return Status(Code::kDataLoss, "exec socket: unexpected reply \"" + std::string(reply.substr(0, 64)) + "\"");
  auto a = std::from_chars(reply.data() + 5, reply.data() + space, st.code);
  auto b = std::from_chars(reply.data() + space + 1, reply.data() + reply.size(), st.signal);
  if (a.ec != std::errc() || b.ec != std::errc() || b.ptr != reply.data() + reply.size())
    return Status(Code::kDataLoss, "exec socket: unexpected reply \"" + std::string(reply.substr(0, 64)) + "\"");
  return st;
}

}  // namespace cohort
