// What a backend gives Work: one poll of its operation. Work itself does the waiting (backoff,
// timeout, the destructor's grace), the same for every backend.
#pragma once

#include <chrono>
#include <optional>
#include <string>

#include "cohort/collectives.hpp"

namespace cohort {

class Work::Backend {
 public:
  virtual ~Backend() = default;
  // Tests the operation once without blocking: nullopt while it runs; once it has completed, its
  // final Status (post-processing such as avg scaling done), the same on every later call.
  virtual std::optional<Status> poll() = 0;
  // The operation for messages: "iallreduce sum of 1000 fp32 (4000 bytes) on rank 0 of 2".
  virtual std::string describe() const = 0;
  // How long Work may wait for the operation in all (the communicator's collective timeout)
  // before it calls give_up(); Work::kNoTimeout: as long as the caller likes.
  virtual std::chrono::milliseconds limit() const { return Work::kNoTimeout; }
  // The operation has been waited for limit() without completing: its final Status (why it
  // cannot complete), which poll() returns from then on.
  virtual Status give_up() { return {Code::kTimedOut, describe() + " did not complete"}; }
};

namespace detail {

// A Work that has already completed with `status`: what a backend without asynchronous calls of
// its own returns.
Work completed_work(std::string what, Status status = {});

// "<count> <dtype> (<bytes> bytes)".
std::string describe_size(const Buffer& b);

}  // namespace detail
}  // namespace cohort
