// Errors as values: every module and RPC boundary of Cohort returns a Status or a Result<T>.
// Exceptions and aborts are for bugs only.
#pragma once

#include <cerrno>
#include <cstring>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

namespace cohort {

enum class Code {
  kOk = 0,
  kInvalidArgument,  // the caller's input is wrong (a flag, a variable, a spec field)
  kNotFound,
  kAlreadyExists,
  kPermissionDenied,
  kFailedPrecondition,  // the system is not in a state where this can work
  kResourceExhausted,   // disk full, out of memory, too many processes
  kUnavailable,
  kTimedOut,
  kDisconnected,  // a peer went away
  kPreempted,
  kFenced,  // a stale generation tried to act
  kAuthError,
  kDataLoss,  // corrupt or truncated data
  kIoError,
  kCanceled,
  kUnimplemented,
  kInternal,
};

inline std::string_view code_name(Code code) noexcept {
  switch (code) {
    case Code::kOk:
      return "OK";
    case Code::kInvalidArgument:
      return "InvalidArgument";
    case Code::kNotFound:
      return "NotFound";
    case Code::kAlreadyExists:
      return "AlreadyExists";
    case Code::kPermissionDenied:
      return "PermissionDenied";
    case Code::kFailedPrecondition:
      return "FailedPrecondition";
    case Code::kResourceExhausted:
      return "ResourceExhausted";
    case Code::kUnavailable:
      return "Unavailable";
    case Code::kTimedOut:
      return "TimedOut";
    case Code::kDisconnected:
      return "Disconnected";
    case Code::kPreempted:
      return "Preempted";
    case Code::kFenced:
      return "Fenced";
    case Code::kAuthError:
      return "AuthError";
    case Code::kDataLoss:
      return "DataLoss";
    case Code::kIoError:
      return "IoError";
    case Code::kCanceled:
      return "Canceled";
    case Code::kUnimplemented:
      return "Unimplemented";
    case Code::kInternal:
      return "Internal";
  }
  return "Unknown";
}

class [[nodiscard]] Status {
 public:
  Status() = default;
  Status(Code code, std::string message) : code_(code), message_(std::move(message)) {}

  static Status ok_status() { return {}; }
  bool ok() const noexcept { return code_ == Code::kOk; }
  Code code() const noexcept { return code_; }
  const std::string& message() const noexcept { return message_; }

  // Prefixes what the caller knows ("loading digits data: ") so the message reads outer to inner.
  Status with_context(std::string_view context) const {
    if (ok()) return *this;
    return {code_, std::string(context) + ": " + message_};
  }
  std::string to_string() const {
    if (ok()) return "OK";
    return std::string(code_name(code_)) + ": " + message_;
  }

 private:
  Code code_ = Code::kOk;
  std::string message_;
};

inline Status invalid_argument(std::string m) {
  return {Code::kInvalidArgument, std::move(m)};
}
inline Status failed_precondition(std::string m) {
  return {Code::kFailedPrecondition, std::move(m)};
}
inline Status internal_error(std::string m) {
  return {Code::kInternal, std::move(m)};
}

// A failed system call: the call, its errno text and what it was acting on.
inline Status errno_status(std::string_view call, int err, std::string_view what = {}) {
  Code code = Code::kIoError;
  if (err == EACCES || err == EPERM) code = Code::kPermissionDenied;
  if (err == ENOENT) code = Code::kNotFound;
  if (err == ENOSPC || err == EDQUOT || err == ENOMEM || err == EMFILE) code = Code::kResourceExhausted;
  if (err == EEXIST) code = Code::kAlreadyExists;
  std::string m(call);
  if (!what.empty()) m += "(" + std::string(what) + ")";
  m += " failed: ";
  m += std::strerror(err);
  return {code, std::move(m)};
}

template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}        // NOLINT(google-explicit-constructor): return value;
  Result(Status status) : v_(std::move(status)) {  // NOLINT(google-explicit-constructor)
    if (std::get<Status>(v_).ok()) v_ = Status(Code::kInternal, "Result built from an OK status");
  }

  bool ok() const noexcept { return std::holds_alternative<T>(v_); }
  explicit operator bool() const noexcept { return ok(); }
  const Status& status() const {
    static const Status kOk;
    return ok() ? kOk : std::get<Status>(v_);
  }
  // REQUIRES: ok().
  T& value() & { return std::get<T>(v_); }
  const T& value() const& { return std::get<T>(v_); }
  T&& value() && { return std::get<T>(std::move(v_)); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }

 private:
  std::variant<T, Status> v_;
};

}  // namespace cohort

#define COHORT_CONCAT_INNER_(a, b) a##b
#define COHORT_CONCAT_(a, b) COHORT_CONCAT_INNER_(a, b)

// Returns the Status of `expr` from the enclosing function when it is not OK.
#define COHORT_TRY(expr)                                     \
  do {                                                       \
    ::cohort::Status cohort_try_status_ = (expr);            \
    if (!cohort_try_status_.ok()) return cohort_try_status_; \
  } while (0)

// `COHORT_ASSIGN_OR_RETURN(auto x, f());` declares x from f()'s value or returns its Status.
#define COHORT_ASSIGN_OR_RETURN(lhs, expr) \
  COHORT_ASSIGN_OR_RETURN_IMPL_(COHORT_CONCAT_(cohort_result_, __LINE__), lhs, expr)
#define COHORT_ASSIGN_OR_RETURN_IMPL_(tmp, lhs, expr) \
  auto tmp = (expr);                                  \
  if (!tmp.ok()) return tmp.status();                 \
  lhs = std::move(tmp).value()
