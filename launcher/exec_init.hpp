// `cohort-exec init`: the first process of a job attempt on a node, pid 1 of the job's container
// (or, for a job without a container, a plain child of the runner's keeper).
//
//   cohort-exec init [--ranks N] [--ready-file PATH] [--wait-file PATH] [--grace-ms MS]
//                    [--idle [--exec-socket PATH] | --plain] [--merge-output] [--] [PROGRAM [ARGS...]]
//
// At start it dies with its parent (PR_SET_PDEATHSIG SIGKILL), becomes the reaper of every
// orphaned descendant (pid 1 is one already; otherwise PR_SET_CHILD_SUBREAPER), then writes
// "ready\n" to PATH (a temporary file renamed into place) so the runner knows it is up.
//
// Rank mode (the default) starts N copies of `cohort-exec rank -- PROGRAM ARGS`, each the leader
// of its own process group, with LOCAL_RANK=i, LOCAL_WORLD_SIZE=N and RANK=NODE_RANK*N+i. When a
// rank fails (non-zero exit or a signal) it stops the others: SIGTERM to their groups, and after
// the grace SIGKILL to everything below them, then to the wrappers themselves; it then ends the
// way the first failing rank ended. SIGTERM, SIGINT or SIGHUP to init stop the ranks the same
// way and init ends by SIGTERM. SIGUSR1 and SIGUSR2 are passed on to every rank.
//
// --wait-file PATH holds everything back until PATH exists (after the ready file is written): the
// runner starts an MPI head's container while it still waits for the other nodes', and lets
// mpirun go once they are all up. A stop signal meanwhile ends init having started nothing.
//
// --merge-output points stderr at stdout first: `runc run` copies each of a container's streams
// through a pipe of its own, which would reorder a job's lines between the two.
//
// Plain mode (--plain) starts PROGRAM itself once, in its own process group, with no rank wrapper
// and no rank variables (an MPI head's mpirun, whose ranks report through their own wrappers); it
// is stopped and reported like a single rank.
//
// Idle mode (--idle) starts no rank: with --exec-socket PATH it starts what the runner asks for
// there (Open MPI's orted, for a peer's mpirun; see exec_socket.hpp), and it reaps (the daemons
// those leave) until SIGTERM, then stops every descendant (SIGTERM, SIGKILL after the grace) and
// exits 0. PROGRAM, if given, runs once as a setup command: its exit, whatever it is, does not
// end init.
//
// Whatever the mode, nothing it started outlives it: as pid 1 it ends with kill(-1, SIGKILL);
// otherwise it SIGKILLs the process groups of ranks still there and every descendant it finds in
// /proc (orphans come to it as a subreaper, so its descendants are all of them).
#pragma once

#include "exit_status.hpp"

namespace cohort {

// argv[0] is "init"'s first argument (what follows "init" on the command line); `self` is this
// program's argv[0], the fallback when /proc/self/exe cannot be executed.
[[noreturn]] void run_init(const char* self, int argc, char** argv);

// Ends this process the way a child ended: the same exit code, or the same signal (without a
// core of this process). Where the signal cannot end it (pid 1 of a pid namespace ignores it)
// it exits with 128 + the signal, as a shell would report it, and, when init was given a ready
// file, first writes "signal N\n" to kExitFileName beside it, so the runner can tell that from a
// program that exited with 128 + N.
[[noreturn]] void exit_like(const ExitStatus& status);

inline constexpr const char* kExitFileName = "init-exit";

}  // namespace cohort
