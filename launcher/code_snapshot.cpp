#include "code_snapshot.hpp"

#include <poll.h>
#include <unistd.h>
#include <yaml-cpp/yaml.h>

#include <cerrno>
#include <chrono>

#include "subprocess.hpp"

namespace cohort::cli {

namespace {

// tar of a 200 MiB snapshot takes seconds on a loaded disk; past this something hangs (a network
// filesystem, a FIFO in the tree) and the user is better told than left waiting.
constexpr auto kTarTimeout = std::chrono::minutes(5);

std::string mib(std::size_t bytes) {
  return std::to_string(bytes >> 20) + " MiB";
}

}  // namespace

Result<std::optional<std::filesystem::path>> code_directory(const std::string& spec_yaml,
                                                            const std::filesystem::path& job_file) {
  YAML::Node root;
  try {
    root = YAML::Load(spec_yaml);
  } catch (const YAML::Exception& e) {
    return invalid_argument(job_file.string() + ": not valid YAML at line " + std::to_string(e.mark.line + 1) +
                            ", column " + std::to_string(e.mark.column + 1) + ": " + e.msg);
  }
  if (!root.IsMap()) return std::optional<std::filesystem::path>();  // the manager says what is wrong
  const YAML::Node code = root["code"];
  if (!code || code.IsNull()) return std::optional<std::filesystem::path>();
  if (!code.IsScalar()) {
    return invalid_argument(job_file.string() + ": code: expected a directory path (relative to the job file), got " +
                            (code.IsMap() ? "a map" : "a list"));
  }
  const std::string value = code.as<std::string>();
  if (value.empty()) return std::optional<std::filesystem::path>();
  std::filesystem::path dir = value;
  if (dir.is_relative()) {
    const auto base = job_file.parent_path();
    dir = (base.empty() ? std::filesystem::path(".") : base) / dir;
  }
  dir = dir.lexically_normal();
  std::error_code ec;
  const auto st = std::filesystem::status(dir, ec);
  if (!std::filesystem::exists(st)) {
    return invalid_argument(job_file.string() + ": code: " + dir.string() +
                            " does not exist (code: is resolved relative to the job file's directory)");
  }
  if (!std::filesystem::is_directory(st)) {
    return invalid_argument(job_file.string() + ": code: " + dir.string() +
                            " is not a directory; point code: at the folder that holds the job's program");
  }
  return std::optional<std::filesystem::path>(dir);
}

Result<std::string> snapshot_code(const std::filesystem::path& dir, std::size_t limit) {
  SpawnOptions options;
  options.argv = {"tar", "-C", dir.string(), "-czf", "-", "."};
  options.capture_stdout = true;
  options.capture_stderr = true;
  auto child = Subprocess::spawn(options);
  if (!child.ok()) return child.status().with_context("snapshotting the code directory " + dir.string());

  // run_captured has no size bound; reading here stops tar as soon as the limit is passed.
  std::string out, err;
  const auto deadline = std::chrono::steady_clock::now() + kTarTimeout;
  pollfd fds[2] = {{child->stdout_fd(), POLLIN, 0}, {child->stderr_fd(), POLLIN, 0}};
  std::string* sinks[2] = {&out, &err};
  int open = 2;
  while (open > 0) {
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now()).count();
    if (left <= 0) {
      child->terminate(std::chrono::seconds(2));
      return Status(Code::kTimedOut, "snapshotting the code directory " + dir.string() + ": tar did not finish in " +
                                         std::to_string(kTarTimeout.count()) +
                                         " minutes; is it on a slow or hung filesystem?");
    }
    if (::poll(fds, 2, static_cast<int>(left)) < 0 && errno != EINTR) return errno_status("poll", errno, "tar");
    for (int i = 0; i < 2; ++i) {
      if (fds[i].fd < 0 || (fds[i].revents & (POLLIN | POLLHUP | POLLERR)) == 0) continue;
      char buf[65536];
      const ssize_t n = ::read(fds[i].fd, buf, sizeof buf);
      if (n > 0) {
        sinks[i]->append(buf, static_cast<std::size_t>(n));
      } else if (n == 0 || errno != EINTR) {
        fds[i].fd = -1;  // the Subprocess owns and closes it
        --open;
      }
    }
    if (out.size() > limit) {
      child->terminate(std::chrono::seconds(2));
      return Status(Code::kResourceExhausted,
                    "the code directory " + dir.string() + " is more than " + mib(limit) +
                        " compressed; keep only the program there and move data sets and checkpoints out (give "
                        "them to the job through inputs:)");
    }
  }
  auto status = child->wait();
  if (!status.ok()) return status.status().with_context("tar of " + dir.string());
  if (!status->success()) {
    while (!err.empty() && err.back() == '\n')
      err.pop_back();
    return Status(Code::kIoError,
                  "snapshotting the code directory " + dir.string() + ": tar " + status->describe() + ": " + err);
  }
  return out;
}

}  // namespace cohort::cli
