#include "spawner.hpp"

namespace cohort::runner {

Spawner::Spawner() : thread_([this] { loop(); }) {}

Spawner::~Spawner() {
  {
    std::lock_guard lock(mu_);
    done_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

Result<JobProcess> Spawner::start(const JobProcessSpec& spec) {
  std::promise<Result<JobProcess>> promise;
  auto future = promise.get_future();
  {
    std::lock_guard lock(mu_);
    if (done_) return failed_precondition("the runner is shutting down: no new job processes");
    queue_.emplace_back([&promise, &spec] { promise.set_value(JobProcess::start(spec)); });
  }
  cv_.notify_all();
  return future.get();  // `promise` and `spec` outlive the call: this waits for it
}

void Spawner::loop() {
  std::unique_lock lock(mu_);
  for (;;) {
    cv_.wait(lock, [this] { return done_ || !queue_.empty(); });
    if (queue_.empty()) return;
    auto work = std::move(queue_.front());
    queue_.pop_front();
    lock.unlock();
    work();
    lock.lock();
  }
}

}  // namespace cohort::runner
