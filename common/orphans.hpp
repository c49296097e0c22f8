// A launcher that must leave no process behind: as a child subreaper it inherits every
// descendant whose parent died (daemons such as Open MPI's orted daemonize), and can end them.
#pragma once

#include <chrono>

#include "cohort/status.hpp"

namespace cohort {

// Makes this process the reaper of its orphaned descendants (PR_SET_CHILD_SUBREAPER).
Status become_subreaper();

// Ends every child of this process that is still there: SIGTERM, then SIGKILL after `grace`,
// and reaps them. Returns how many it had to end.
int end_remaining_children(std::chrono::milliseconds grace);

}  // namespace cohort
