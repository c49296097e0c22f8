// How a child process ended, in the words a user reads and the code a shell expects.
#pragma once

#include <string>

namespace cohort {

struct ExitStatus {
  int code = 0;    // exit code when it exited
  int signal = 0;  // the signal that killed it, or 0

  static ExitStatus from_wait_status(int wstatus);
  bool success() const noexcept { return signal == 0 && code == 0; }
  // What a shell reports: the exit code, or 128 + the signal.
  int shell_code() const noexcept { return signal != 0 ? 128 + signal : code; }
  // "exited with code 3" or "was killed by signal 9 (SIGKILL)".
  std::string describe() const;
};

std::string signal_name(int signal);  // "SIGKILL", or "signal 77" for one without a name

}  // namespace cohort
