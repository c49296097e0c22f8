// The one long-lived thread that forks the jobs' keepers. PR_SET_PDEATHSIG fires when the thread
// that forked a child ends, not its process, so forking from a task's own (short-lived) thread
// would be fragile; this thread lives as long as the runner.
#pragma once

#include <condition_variable>
#include <deque>
#include <functional>
#include <future>
#include <mutex>
#include <thread>

#include "job_process.hpp"

namespace cohort::runner {

class Spawner {
 public:
  Spawner();
  ~Spawner();  // finishes the queued starts, then ends the thread
  Spawner(const Spawner&) = delete;
  Spawner& operator=(const Spawner&) = delete;

  // Starts the job on the spawner's thread and waits for the result.
  Result<JobProcess> start(const JobProcessSpec& spec);

 private:
  void loop();

  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> queue_;  // guarded by mu_
  bool done_ = false;                        // guarded by mu_
  std::thread thread_;
};

}  // namespace cohort::runner
