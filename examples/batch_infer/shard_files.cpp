#include "shard_files.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstdio>
#include <fstream>
#include <iterator>
#include <system_error>
#include <utility>

#include "dataset.hpp"
#include "file_write.hpp"

namespace batch_infer {
namespace {

constexpr std::string_view kTempMarker = ".tmp-";

cohort::Status bad_line(const std::filesystem::path& path, std::uint64_t line, std::string_view what) {
  return {cohort::Code::kDataLoss, path.string() + " line " + std::to_string(line) + ": " + std::string(what) +
                                       "; it is not this run's shard (other --rows or --shard-rows?) or was "
                                       "changed: remove it to score the shard again"};
}

// One field of a line up to `sep`, as an integer; advances `p`.
template <typename T>
bool parse_field(const char*& p, const char* end, char sep, T& value) {
  const auto [ptr, ec] = std::from_chars(p, end, value);
  if (ec != std::errc() || ptr == end || *ptr != sep) return false;
  p = ptr + 1;
  return true;
}

}  // namespace

std::string shard_file_name(std::size_t shard) {
  char name[32];
  std::snprintf(name, sizeof name, "part-%05zu.csv", shard);
  return name;
}

bool is_temp_file_name(std::string_view name) noexcept {
  return name.find(kTempMarker) != std::string_view::npos;
}

cohort::Status commit_file(const std::filesystem::path& dir, std::string_view name, std::string_view contents) {
  // Machine-durable: a rename lost in a crash would only score the shard again, but a shard
  // that is there must be whole.
  return cohort::write_file_replacing(dir / name, contents, 0644, cohort::Durability::kMachine);
}

cohort::Result<std::size_t> remove_temp_files(const std::filesystem::path& dir) {
  std::size_t removed = 0;
  std::error_code ec;
  for (std::filesystem::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    const std::string name = it->path().filename().string();
    if (!is_temp_file_name(name)) continue;
    if (::unlink(it->path().c_str()) != 0 && errno != ENOENT) {
      return cohort::errno_status("unlink", errno, it->path().string());
    }
    ++removed;
  }
  if (ec) return cohort::errno_status("opendir", ec.value(), dir.string());
  return removed;
}

cohort::Result<ShardTally> verify_shard_file(const std::filesystem::path& path, const ShardRange& range) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return cohort::errno_status("open", errno, path.string());
  const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (in.bad()) return cohort::errno_status("read", errno, path.string());
  ShardTally tally;
  const char* p = text.data();
  const char* const end = text.data() + text.size();
  while (p != end) {
    const std::uint64_t line = tally.rows + 1;
    const std::uint64_t expected_row = range.begin + tally.rows;
    if (expected_row >= range.end)
      return bad_line(path, line, "more lines than the shard's " + std::to_string(range.rows()) + " rows");
    std::uint64_t row = 0;
    int label = -1;
    int predicted = -1;
    if (!parse_field(p, end, ',', row) || !parse_field(p, end, ',', label) || !parse_field(p, end, ',', predicted)) {
      return bad_line(path, line, "expected row,label,predicted,confidence");
    }
    if (row != expected_row) {
      return bad_line(path, line, "row " + std::to_string(row) + ", expected " + std::to_string(expected_row));
    }
    const auto classes = static_cast<int>(digits::kClasses);
    if (label < 0 || label >= classes || predicted < 0 || predicted >= classes) {
      return bad_line(path, line, "a class outside 0.." + std::to_string(classes - 1));
    }
    double confidence = -1.0;
    const auto [ptr, ec] = std::from_chars(p, end, confidence);
    if (ec != std::errc() || ptr == end || *ptr != '\n' || !(confidence >= 0.0 && confidence <= 1.0)) {
      return bad_line(path, line, "no confidence in [0, 1] ending the line (a truncated file?)");
    }
    p = ptr + 1;
    ++tally.rows;
    if (label == predicted) ++tally.correct;
  }
  if (tally.rows != range.rows()) {
    return bad_line(path, tally.rows + 1,
                    "the file ends after " + std::to_string(tally.rows) + " of the shard's " +
                        std::to_string(range.rows()) + " rows");
  }
  return tally;
}

}  // namespace batch_infer
