#include "orphans.hpp"

#include <dirent.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <thread>
#include <vector>

namespace cohort {
namespace {

// Live (non-zombie) children of this process, from /proc/*/stat.
std::vector<pid_t> live_children() {
  std::vector<pid_t> out;
  const pid_t self = getpid();
  DIR* d = opendir("/proc");
  if (d == nullptr) return out;
  while (dirent* e = readdir(d)) {
    char* end = nullptr;
    long pid = std::strtol(e->d_name, &end, 10);
    if (*end != '\0' || pid <= 0) continue;
    std::ifstream f(std::string("/proc/") + e->d_name + "/stat");
    std::string s((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
    auto paren = s.rfind(')');
    if (paren == std::string::npos || paren + 4 >= s.size()) continue;
    char state = s[paren + 2];
    long ppid = std::strtol(s.c_str() + paren + 4, nullptr, 10);
    if (ppid == self && state != 'Z') out.push_back(static_cast<pid_t>(pid));
  }
  closedir(d);
  return out;
}

void reap_all() {
  while (waitpid(-1, nullptr, WNOHANG) > 0) {
  }
}

}  // namespace

Status become_subreaper() {
  if (prctl(PR_SET_CHILD_SUBREAPER, 1) != 0) return errno_status("prctl(PR_SET_CHILD_SUBREAPER)", errno);
  return {};
}

int end_remaining_children(std::chrono::milliseconds grace) {
  reap_all();
  // No child at all (the common end of a clean run): skip the scan of /proc.
  siginfo_t info{};
  if (waitid(P_ALL, 0, &info, WEXITED | WNOHANG | WNOWAIT) < 0 && errno == ECHILD) return 0;
  auto left = live_children();
  const int found = static_cast<int>(left.size());
  for (pid_t pid : left)
    ::kill(pid, SIGTERM);
  const auto deadline = std::chrono::steady_clock::now() + grace;
  while (!left.empty() && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
    reap_all();
    left = live_children();
  }
  for (pid_t pid : left)
    ::kill(pid, SIGKILL);
  // A SIGKILLed child may have children of its own that now come to us: repeat until none.
  for (int round = 0; round < 50 && !(left = live_children()).empty(); ++round) {
    for (pid_t pid : left)
      ::kill(pid, SIGKILL);
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
    reap_all();
  }
  reap_all();
  return found;
}

}  // namespace cohort
