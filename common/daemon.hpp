// Processes that must outlive their starter (the manager `cohort up` starts, the runners the
// manager starts) and the checks used to find them again by pid file.
#pragma once

#include <sys/types.h>

#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "cohort/status.hpp"

namespace cohort {

// Starts argv[0] (a path) in a session of its own, stdin from /dev/null, stdout and stderr
// appended to `log`, with no parent-death signal. The caller is its parent until it exits: reap
// it (waitpid) or let a thread do so.
Result<pid_t> spawn_detached(const std::vector<std::string>& argv, const std::filesystem::path& log);

// True when `pid` is alive (not a zombie) and its command line contains every one of `parts`,
// so a recycled pid is never mistaken for ours.
bool process_matches(pid_t pid, const std::vector<std::string>& parts);

// The pid in a pid file; -1 when missing or unreadable.
pid_t read_pid_file(const std::filesystem::path& path);

}  // namespace cohort
