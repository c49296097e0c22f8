#include "exit_status.hpp"

#include <sys/wait.h>

#include <cstring>

namespace cohort {

ExitStatus ExitStatus::from_wait_status(int wstatus) {
  ExitStatus s;
  if (WIFEXITED(wstatus)) s.code = WEXITSTATUS(wstatus);
  if (WIFSIGNALED(wstatus)) s.signal = WTERMSIG(wstatus);
  return s;
}

std::string signal_name(int signal) {
  const char* abbrev = sigabbrev_np(signal);
  if (abbrev == nullptr) return "signal " + std::to_string(signal);
  return std::string("SIG") + abbrev;
}

std::string ExitStatus::describe() const {
  if (signal != 0) return "was killed by signal " + std::to_string(signal) + " (" + signal_name(signal) + ")";
  return "exited with code " + std::to_string(code);
}

}  // namespace cohort
