// A thread of its own for MPI's blocking collectives, so that their caller can stop waiting for
// one whose peer is gone. MPI offers no way to interrupt a blocking call (Open MPI 4 has no
// MPIX_Comm_revoke), and its nonblocking collectives (libnbc) are up to 2× slower for large
// messages between two ranks on one node (docs/collectives.md): large collectives therefore run
// as MPI's blocking call here while the caller waits with a deadline.
//
// One call at a time, handed over under a mutex (MPI_THREAD_SERIALIZED: the caller makes no MPI
// call while it waits). A call still running at its deadline is abandoned on the thread: the
// thread is lost, and the CallThread refuses every later call.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <thread>

#include "cohort/status.hpp"

namespace cohort::detail {

class CallThread {
 public:
  CallThread();
  // Joins an idle thread. A thread stuck in an abandoned call is detached, never waited for: it
  // stays in MPI until the process ends.
  ~CallThread();
  CallThread(const CallThread&) = delete;
  CallThread& operator=(const CallThread&) = delete;

  // Runs `call` on the thread and returns its Status, or nullopt when `deadline` passed first
  // (the call is then abandoned, still running). After one nullopt every run() is nullopt at once.
  // REQUIRES: `call` owns or copies all it uses, except memory that outlives an abandoned call
  // (MPI handles that are never freed, buffers the caller is told MPI may still write).
  std::optional<Status> run(std::function<Status()> call, std::chrono::steady_clock::time_point deadline);

  bool abandoned() const noexcept { return abandoned_; }

 private:
  struct State;  // what the thread shares with this object; the thread holds it too, so a detached
                 // thread never outlives what it uses
  static void serve(const std::shared_ptr<State>& state);  // the thread's loop

  std::shared_ptr<State> state_;
  std::thread thread_;
  bool abandoned_ = false;
};

}  // namespace cohort::detail
