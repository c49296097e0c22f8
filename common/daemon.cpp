#include "daemon.hpp"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>

#include <fstream>
#include <iterator>

extern char** environ;

namespace cohort {

Result<pid_t> spawn_detached(const std::vector<std::string>& args, const std::filesystem::path& log) {
  std::vector<char*> argv;
  for (const auto& a : args)
    argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&actions, 1, log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0600);
  posix_spawn_file_actions_adddup2(&actions, 1, 2);
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  // A fresh session, and signals as a new program expects them whatever the caller blocked
  // (the manager blocks SIGTERM for its sigwait).
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSID | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
  sigset_t none, all;
  sigemptyset(&none);
  sigfillset(&all);
  posix_spawnattr_setsigmask(&attr, &none);
  posix_spawnattr_setsigdefault(&attr, &all);
  pid_t pid = -1;
  const int rc = posix_spawn(&pid, argv[0], &actions, &attr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attr);
  if (rc != 0) return errno_status("posix_spawn", rc, args.empty() ? "" : args[0]);
  return pid;
}

bool process_matches(pid_t pid, const std::vector<std::string>& parts) {
  if (pid <= 1) return false;
  const std::string proc = "/proc/" + std::to_string(pid);
  std::ifstream stat(proc + "/stat");
  std::string line;
  std::getline(stat, line);
  const auto close = line.rfind(')');
  if (close == std::string::npos || (close + 2 < line.size() && line[close + 2] == 'Z')) return false;
  std::ifstream in(proc + "/cmdline");
  std::string cmdline((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  for (const auto& p : parts) {
    if (cmdline.find(p) == std::string::npos) return false;
  }
  return true;
}

pid_t read_pid_file(const std::filesystem::path& path) {
  std::ifstream in(path);
  long pid = -1;
  if (!(in >> pid) || pid <= 1) return -1;
  return static_cast<pid_t>(pid);
}

}  // namespace cohort
