#include "exec_bridge.hpp"

#include <sys/socket.h>
#include <unistd.h>

#include <cstdlib>
#include <string>
#include <vector>

#include "exec_init.hpp"
#include "exec_socket.hpp"

namespace cohort {

namespace {

constexpr int kBridgeError = 255;  // what ssh returns for its own failures

[[noreturn]] void die(const std::string& message) {
  const std::string line = "cohort-exec bridge: " + message + "\n";
  ssize_t w = ::write(STDERR_FILENO, line.data(), line.size());
  (void)w;
  _exit(kBridgeError);
}

}  // namespace

[[noreturn]] void run_bridge(int argc, char** argv) {
  int i = 0;
  // ssh-style options Open MPI may put before the host (-x, -l USER, ...): skip them.
  while (i < argc && argv[i][0] == '-') {
    const std::string opt = argv[i];
    i += (opt == "-l" || opt == "-p" || opt == "-o" || opt == "-i") ? 2 : 1;
  }
  if (i + 1 >= argc) die("usage: cohort-exec bridge [options] HOST COMMAND...");
  const std::string host = argv[i++];
  std::string command;
  for (; i < argc; ++i)
    command += (command.empty() ? "" : " ") + std::string(argv[i]);
  const char* socket_path = std::getenv("COHORT_BRIDGE_SOCKET");
  if (socket_path == nullptr || *socket_path == '\0')
    die("COHORT_BRIDGE_SOCKET is not set: the bridge runs inside a Cohort MPI job's head node");

  auto sock = connect_exec_socket(socket_path);
  if (!sock.ok()) die("the runner's bridge socket: " + sock.status().message());
  Status sent = send_exec_request(*sock, {host, "/bin/sh", "-c", command}, {}, STDOUT_FILENO, STDERR_FILENO);
  if (!sent.ok()) die(sent.message());
  char reply[512];
  ssize_t n;
  do {
    n = ::recv(*sock, reply, sizeof reply, 0);
  } while (n < 0 && errno == EINTR);
  if (n <= 0) die("the runner ended the call to node " + host + " without an exit status");
  auto exit = parse_exec_exit(std::string_view(reply, static_cast<std::size_t>(n)));
  if (!exit.ok()) die("node " + host + ": " + std::string(reply, static_cast<std::size_t>(n)));
  exit_like(*exit);
}

}  // namespace cohort
