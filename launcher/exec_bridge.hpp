// `cohort-exec bridge`: Open MPI's rsh agent inside a Cohort MPI job (no sshd anywhere).
//
//   cohort-exec bridge [ssh-style options] HOST COMMAND...
//
// mpirun on the job's head node runs it once per other node. It hands HOST and COMMAND, with its
// own stdout and stderr, to the head's runner over $COHORT_BRIDGE_SOCKET (the exec socket
// protocol of exec_socket.hpp, argv = HOST /bin/sh -c COMMAND); the runner asks HOST's runner
// (PeerService Exec, with the attempt's secret) to run it in the job's container there, writes
// the output straight into those descriptors and replies with the exit, which the bridge ends
// with, as ssh would. Static and small: it starts once per node of every launch.
#pragma once

namespace cohort {

[[noreturn]] void run_bridge(int argc, char** argv);  // argv[0] is the first word after "bridge"

}  // namespace cohort
