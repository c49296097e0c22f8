// How much of a task's output.log the manager has acknowledged. Bytes are sent from the last
// acknowledged offset and the offset moves only on success, so a manager that is away for a while
// gets everything once it is back, in order, each byte once (unless an AppendLogs reply is lost
// after the manager wrote the bytes: then they are sent again).
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>
#include <string_view>

#include "cohort/status.hpp"

namespace cohort::runner {

class LogCursor {
 public:
  explicit LogCursor(std::filesystem::path file) : file_(std::move(file)) {}

  // Up to `max_bytes` after the acknowledged offset; "" when there is nothing new (or no file yet).
  Result<std::string> pending(std::size_t max_bytes) const;
  void acknowledge(std::size_t bytes) { offset_ += bytes; }
  std::uint64_t offset() const { return offset_; }

  // Sends what is pending, in chunks of at most `chunk` bytes, until nothing is left or `send`
  // fails; returns the first failure (its bytes stay pending).
  Status ship(const std::function<Status(std::string_view)>& send, std::size_t chunk = 1 << 20);

 private:
  std::filesystem::path file_;
  std::uint64_t offset_ = 0;
};

}  // namespace cohort::runner
