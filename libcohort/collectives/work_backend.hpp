// What a backend gives Work: one poll of its operation. Work itself does the waiting (backoff,
// timeout, the destructor's grace), the same for every backend.
#pragma once

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
};

namespace detail {

// A Work that has already completed with `status`: what a backend without asynchronous calls of
// its own returns.
Work completed_work(std::string what, Status status = {});

// "<count> <dtype> (<bytes> bytes)".
std::string describe_size(const Buffer& b);

}  // namespace detail
}  // namespace cohort
