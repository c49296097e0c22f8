#include "collectives/call_thread.hpp"

#include <condition_variable>
#include <mutex>
#include <utility>

namespace cohort::detail {

struct CallThread::State {
  std::mutex mu;
  std::condition_variable cv;
  std::function<Status()> call;  // guarded by mu: the call handed over, empty once taken
  std::optional<Status> result;  // guarded by mu: the result of the last call taken
  bool quit = false;             // guarded by mu
};

CallThread::CallThread() : state_(std::make_shared<State>()) {
  thread_ = std::thread([state = state_] { serve(state); });
}

void CallThread::serve(const std::shared_ptr<State>& state) {
  std::unique_lock lock(state->mu);
  for (;;) {
    state->cv.wait(lock, [&] { return state->quit || state->call; });
    if (state->quit) return;
    std::function<Status()> call = std::exchange(state->call, nullptr);
    lock.unlock();
    Status status = call();
    lock.lock();
    state->result = std::move(status);
    state->cv.notify_all();
  }
}

CallThread::~CallThread() {
  {
    std::lock_guard lock(state_->mu);
    state_->quit = true;
  }
  state_->cv.notify_all();
  if (abandoned_) {
    thread_.detach();  // it ends by itself if its call ever returns
  } else {
    thread_.join();
  }
}

std::optional<Status> CallThread::run(std::function<Status()> call, std::chrono::steady_clock::time_point deadline) {
  if (abandoned_) return std::nullopt;
  std::unique_lock lock(state_->mu);
  state_->call = std::move(call);
  state_->result.reset();
  state_->cv.notify_all();
  if (!state_->cv.wait_until(lock, deadline, [&] { return state_->result.has_value(); })) {
    abandoned_ = true;
    return std::nullopt;
  }
  return std::exchange(state_->result, std::nullopt);
}

}  // namespace cohort::detail
