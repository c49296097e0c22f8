// The exec socket of `cohort-exec init --idle`: how the runner starts a process (Open MPI's
// daemon, asked for by another node through `cohort-exec bridge`) inside a running job container without
// `runc exec`. init is already in the container with its user, namespaces, cgroup, capabilities
// and no-new-privileges; its children inherit all of it, and it reaps them. A process of the job
// that connects can only start what it could start itself.
//
// Protocol, over a SOCK_SEQPACKET Unix socket (one message each way, message boundaries kept):
//   request:  "ARGC\0ARG0\0...ARG(ARGC-1)\0ENV0\0ENV1\0..." with SCM_RIGHTS carrying two
//             descriptors, the process's stdout and stderr (stdin is /dev/null); the process
//             runs in init's working directory with exactly ENV as its environment.
//   reply:    "exit CODE SIGNAL" once the process ended, then init closes the connection.
#pragma once

#include <string>
#include <vector>

#include "cohort/status.hpp"
#include "exit_status.hpp"

namespace cohort {

// The largest request: argv and environment together.
inline constexpr std::size_t kMaxExecRequest = 128 * 1024;

struct ExecRequest {
  std::vector<std::string> argv;
  std::vector<std::string> env;  // "NAME=value"
  int stdout_fd = -1;            // owned by the receiver
  int stderr_fd = -1;
};

// A listening socket at `path` (replacing a stale one), mode 0600.
Result<int> listen_exec_socket(const std::string& path);
Result<int> connect_exec_socket(const std::string& path);

Status send_exec_request(int sock, const std::vector<std::string>& argv, const std::vector<std::string>& env,
                         int stdout_fd, int stderr_fd);
// InvalidArgument for a malformed request (its descriptors, if any came, are closed).
Result<ExecRequest> receive_exec_request(int sock);

Status send_exec_exit(int sock, const ExitStatus& status);
// DataLoss when the reply is not "exit CODE SIGNAL".
Result<ExitStatus> parse_exec_exit(std::string_view reply);

}  // namespace cohort
