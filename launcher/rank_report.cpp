#include "rank_report.hpp"

#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <fstream>
#include <iterator>
#include <sstream>

namespace cohort {

std::string format_report(const RankReport& r) {
  std::ostringstream out;
  out << "rank=" << r.rank << " host=" << r.host << " pid=" << r.pid << " code=" << r.status.code
      << " signal=" << r.status.signal << " end_ns=" << r.end_ns << " stopped=" << (r.stopped ? 1 : 0) << "\n";
  return out.str();
}

Result<RankReport> parse_report(const std::string& text) {
  RankReport r;
  std::istringstream in(text);
  std::string field;
  int seen = 0;
  while (in >> field) {
    auto eq = field.find('=');
    if (eq == std::string::npos) return invalid_argument("rank report field '" + field + "' has no '='");
    std::string key = field.substr(0, eq);
    std::string value = field.substr(eq + 1);
    if (key == "host") {
      r.host = value;
      ++seen;
      continue;
    }
    std::int64_t n = 0;
    auto [ptr, ec] = std::from_chars(value.data(), value.data() + value.size(), n);
    if (ec != std::errc() || ptr != value.data() + value.size()) {
      return invalid_argument("rank report field '" + field + "' is not a number");
    }
    if (key == "rank")
      r.rank = static_cast<int>(n);
    else if (key == "pid")
      r.pid = static_cast<pid_t>(n);
    else if (key == "code")
      r.status.code = static_cast<int>(n);
    else if (key == "signal")
      r.status.signal = static_cast<int>(n);
    else if (key == "end_ns")
      r.end_ns = n;
    else if (key == "stopped")
      r.stopped = n != 0;
    else
      continue;  // a field from a newer wrapper
    ++seen;
  }
  if (seen < 7 || r.rank < 0) return invalid_argument("rank report is incomplete: '" + text + "'");
  return r;
}

Status write_report(const std::filesystem::path& dir, const RankReport& report) {
  const auto final_path = dir / ("rank-" + std::to_string(report.rank));
  const auto tmp_path = dir / ("rank-" + std::to_string(report.rank) + ".tmp");
  {
    std::ofstream out(tmp_path, std::ios::trunc);
    out << format_report(report);
    out.flush();
    if (!out) return Status(Code::kIoError, "writing " + tmp_path.string() + " failed");
  }
  std::error_code ec;
  std::filesystem::rename(tmp_path, final_path, ec);
  if (ec) return Status(Code::kIoError, "rename " + tmp_path.string() + ": " + ec.message());
  return {};
}

std::vector<RankReport> read_reports(const std::filesystem::path& dir) {
  std::vector<RankReport> out;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(dir, ec)) {
    const auto name = entry.path().filename().string();
    if (name.rfind("rank-", 0) != 0 || name.ends_with(".tmp")) continue;
    std::ifstream in(entry.path());
    std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    auto r = parse_report(text);
    if (r.ok()) out.push_back(std::move(r).value());
  }
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.rank < b.rank; });
  return out;
}

std::optional<RankReport> first_failure(const std::vector<RankReport>& reports) {
  std::optional<RankReport> first;
  for (const auto& r : reports) {
    if (r.status.success() || r.stopped) continue;
    if (!first || r.end_ns < first->end_ns || (r.end_ns == first->end_ns && r.rank < first->rank)) first = r;
  }
  return first;
}

}  // namespace cohort
