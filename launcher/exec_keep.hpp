// `cohort-exec keep RUNNER_PID [--cleanup WORD]... -- PROGRAM [ARGS...]`: the keeper of one job
// attempt's processes on a node, started by the runner (posix_spawn: no copy of the runner's
// address space).
//
// The runner gives it stdout and stderr (the job's log), fd 3 (a pipe: the keeper writes the
// job's pid there, as a pid_t, or a message when it cannot start it), the job's working
// directory and environment, every signal blocked. It forks PROGRAM as the leader of a new process
// group, with default signal handling and nothing else open, and waits.
//
// Its parent-death signal tells it when the runner is gone (even after a SIGKILL; it checks
// getppid() against RUNNER_PID, since the signal also fires when only the spawning thread ends),
// and it then kills the job's whole group and runs the cleanup command (the --cleanup words, in
// order; bounded), for what the group kill cannot reach: a container's init, which runc puts
// outside the group, waits forever for a start that a killed runner never sent unless `runc
// delete --force` ends it. When the job's leader ends, it kills what is left of
// the group (background processes of a finished job), then ends the same way the leader did (exit
// code or signal), so waiting for the keeper is waiting for the job. As a child subreaper it also
// reaps the job's orphans.
#pragma once

namespace cohort {

[[noreturn]] void run_keep(int argc, char** argv);  // argv[0] is the first word after "keep"

}  // namespace cohort
