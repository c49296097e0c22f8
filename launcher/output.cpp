#include "output.hpp"

#include <google/protobuf/util/json_util.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <sstream>
#include <utility>

namespace cohort::cli {

namespace {

std::string one_line(std::string s) {
  std::replace(s.begin(), s.end(), '\n', ' ');
  std::replace(s.begin(), s.end(), '\r', ' ');
  return s;
}

std::string dash_if_empty(const std::string& s) {
  return s.empty() ? "-" : s;
}

std::string join(const google::protobuf::RepeatedPtrField<std::string>& items, const char* sep) {
  std::string out;
  for (const auto& item : items) {
    if (!out.empty()) out += sep;
    out += item;
  }
  return out;
}

// "ISO (age)", or "-" when the time is unset.
std::string iso_and_age(std::int64_t time_ms, std::int64_t now_ms) {
  if (time_ms == 0) return "-";
  return format_iso(time_ms) + " (" + format_age(time_ms, now_ms) + ")";
}

std::string identity_text(const v1::Identity& identity) {
  if (identity.type().empty() || identity.type() == "none") return "none";
  if (identity.user_assigned_ids().empty()) return identity.type();
  return identity.type() + ": " + join(identity.user_assigned_ids(), ", ");
}

std::string tags_text(const google::protobuf::Map<std::string, std::string>& tags) {
  std::vector<std::pair<std::string, std::string>> sorted(tags.begin(), tags.end());
  std::sort(sorted.begin(), sorted.end());
  std::string out;
  for (const auto& [k, v] : sorted) {
    if (!out.empty()) out += ", ";
    out += k + "=" + v;
  }
  return dash_if_empty(out);
}

// Key-value lines with the values aligned after the longest key.
std::string details(const std::vector<std::pair<std::string, std::string>>& fields) {
  std::size_t width = 0;
  for (const auto& [key, value] : fields)
    width = std::max(width, key.size() + 1);
  std::string out;
  for (const auto& [key, value] : fields)
    out += key + ":" + std::string(width - key.size() - 1 + 2, ' ') + one_line(value) + "\n";
  return out;
}

}  // namespace

// ---------------------------------------------------------------- Table

Table::Table(std::vector<std::string> headers) {
  rows_.push_back(std::move(headers));
}

void Table::add_row(std::vector<std::string> cells) {
  cells.resize(rows_.front().size());
  for (auto& cell : cells)
    cell = one_line(std::move(cell));
  rows_.push_back(std::move(cells));
}

std::string Table::render() const {
  const std::size_t columns = rows_.front().size();
  std::vector<std::size_t> width(columns, 0);
  for (const auto& row : rows_)
    for (std::size_t c = 0; c < columns; ++c)
      width[c] = std::max(width[c], row[c].size());
  std::string out;
  for (const auto& row : rows_) {
    std::string line;
    for (std::size_t c = 0; c < columns; ++c) {
      line += row[c];
      if (c + 1 < columns) line += std::string(width[c] - row[c].size() + 2, ' ');
    }
    while (!line.empty() && line.back() == ' ')
      line.pop_back();
    out += line + "\n";
  }
  return out;
}

// ---------------------------------------------------------------- small formats

std::string format_age(std::int64_t time_ms, std::int64_t now_ms) {
  if (time_ms == 0) return "-";
  const std::int64_t s = std::max<std::int64_t>(0, (now_ms - time_ms) / 1000);
  if (s < 60) return std::to_string(s) + "s ago";
  if (s < 3600) return std::to_string(s / 60) + "m ago";
  if (s < 86400) return std::to_string(s / 3600) + "h ago";
  return std::to_string(s / 86400) + "d ago";
}

std::string format_iso(std::int64_t time_ms) {
  if (time_ms == 0) return "-";
  const std::time_t t = static_cast<std::time_t>(time_ms / 1000);
  std::tm tm{};
  gmtime_r(&t, &tm);
  std::array<char, 32> buf{};
  std::strftime(buf.data(), buf.size(), "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf.data();
}

std::string format_duration(double seconds) {
  if (!(seconds >= 0)) return "-";
  if (seconds < 1) return std::to_string(static_cast<long long>(std::lround(seconds * 1000))) + "ms";
  if (seconds < 10) {
    std::ostringstream o;
    o.precision(1);
    o << std::fixed << seconds << "s";
    return o.str();
  }
  const auto s = static_cast<long long>(seconds);
  auto two = [](long long v) { return (v < 10 ? "0" : "") + std::to_string(v); };
  if (s < 60) return std::to_string(s) + "s";
  if (s < 3600) return std::to_string(s / 60) + "m" + two(s % 60) + "s";
  return std::to_string(s / 3600) + "h" + two(s % 3600 / 60) + "m";
}

std::string format_bytes(std::int64_t bytes) {
  if (bytes < 1024) return std::to_string(bytes) + "B";
  static constexpr const char* kUnits = "KMGTP";
  double v = static_cast<double>(bytes);
  int unit = -1;
  while (v >= 1024 && unit < 4) {
    v /= 1024;
    ++unit;
  }
  std::ostringstream o;
  if (v < 10) {
    o.precision(1);
    o << std::fixed;
  } else {
    o.precision(0);
    o << std::fixed;
  }
  o << v << kUnits[unit];
  return o.str();
}

std::string format_node_counts(const google::protobuf::Map<std::string, std::int32_t>& counts) {
  // The order of a node's life, so the busy ones come first; unknown states after, by name.
  static const std::vector<std::string> kOrder{"busy", "idle",      "provisioning", "draining",
                                               "lost", "preempted", "removed"};
  std::vector<std::pair<std::size_t, std::string>> states;
  for (const auto& [state, n] : counts) {
    if (n == 0) continue;
    auto it = std::find(kOrder.begin(), kOrder.end(), state);
    states.emplace_back(static_cast<std::size_t>(it - kOrder.begin()), state);
  }
  std::sort(states.begin(), states.end());
  std::string out;
  for (const auto& [rank, state] : states) {
    if (!out.empty()) out += ", ";
    out += std::to_string(counts.at(state)) + " " + state;
  }
  return out.empty() ? "0" : out;
}

std::int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// ---------------------------------------------------------------- JSON

Result<std::string> to_json(const google::protobuf::Message& message) {
  google::protobuf::util::JsonPrintOptions options;
  options.preserve_proto_field_names = true;
  options.always_print_primitive_fields = true;
  std::string out;
  auto status = google::protobuf::util::MessageToJsonString(message, &out, options);
  if (!status.ok()) {
    return internal_error("cannot render a " + message.GetTypeName() + " as JSON: " + status.ToString());
  }
  return out;
}

// ---------------------------------------------------------------- tables

std::string clusters_table(const v1::ListClustersResponse& response) {
  Table t({"NAME", "SIZE", "PRIORITY", "MIN", "MAX", "IDLE-S", "NODES", "PROVIDER"});
  for (const auto& c : response.clusters()) {
    const auto& s = c.spec();
    t.add_row({s.name(), s.vm_size(), s.vm_priority(), std::to_string(s.min_nodes()), std::to_string(s.max_nodes()),
               std::to_string(s.idle_seconds_before_scaledown()), format_node_counts(c.node_counts()), s.provider()});
  }
  return t.render();
}

std::string cluster_details(const v1::Cluster& cluster, std::int64_t now_ms) {
  const auto& s = cluster.spec();
  std::string size = s.vm_size();
  if (cluster.has_size()) {
    const auto& z = cluster.size();
    size += " (" + std::to_string(z.cores()) + " cores, " + format_bytes(z.memory_bytes()) + " memory, " +
            std::to_string(z.gpus()) + " GPUs)";
  }
  std::string provider = s.provider();
  if (s.provider() == "exec") {
    provider += " (create: " + s.exec().create_command() + "; delete: " + s.exec().delete_command() + ")";
  }
  std::string out = details({
      {"Name", s.name()},
      {"VM size", size},
      {"Priority", s.vm_priority()},
      {"Nodes", "min " + std::to_string(s.min_nodes()) + ", max " + std::to_string(s.max_nodes()) + ", now " +
                    format_node_counts(cluster.node_counts())},
      {"Idle before scale-down", std::to_string(s.idle_seconds_before_scaledown()) + "s"},
      {"Identity", identity_text(s.identity())},
      {"Provider", provider},
      {"Tags", tags_text(s.tags())},
      {"Created", iso_and_age(cluster.created_ms(), now_ms)},
  });
  out += "\nEvents:\n";
  if (cluster.events().empty()) return out + "  (none yet)\n";
  Table events({"TIME", "KIND", "MESSAGE"});
  for (const auto& e : cluster.events())
    events.add_row({format_iso(e.time_ms()), e.kind(), e.message()});
  return out + events.render();
}

std::string sizes_table(const v1::ListVmSizesResponse& response) {
  Table t({"NAME", "CORES", "MEMORY", "GPUS", "DESCRIPTION"});
  for (const auto& z : response.sizes())
    t.add_row({z.name(), std::to_string(z.cores()), format_bytes(z.memory_bytes()), std::to_string(z.gpus()),
               z.description()});
  return t.render();
}

std::string jobs_table(const v1::ListJobsResponse& response, std::int64_t now_ms) {
  Table t({"ID", "NAME", "CLUSTER", "STATE", "ATTEMPTS", "SUBMITTED", "MESSAGE"});
  for (const auto& j : response.jobs())
    t.add_row({j.id(), j.name(), j.cluster(), j.state(), std::to_string(j.attempts_size()),
               format_age(j.submitted_ms(), now_ms), j.message()});
  return t.render();
}

namespace {
// "0.058", or "-" for a phase not reached (or not timed).
std::string seconds_or_dash(double s) {
  if (s <= 0) return "-";
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.3f", s);
  return buf;
}
}  // namespace

std::string job_details(const v1::Job& job, std::int64_t now_ms) {
  std::string out = details({
      {"ID", job.id()},
      {"Name", dash_if_empty(job.name())},
      {"Cluster", job.cluster()},
      {"State", job.state()},
      {"Priority", std::to_string(job.priority())},
      {"Nodes", std::to_string(job.instance_count())},
      {"Submitted", iso_and_age(job.submitted_ms(), now_ms)},
      {"Ended", iso_and_age(job.ended_ms(), now_ms)},
      {"Code", job.code_digest().empty() ? "none" : "sha256:" + job.code_digest()},
      {"Message", dash_if_empty(job.message())},
  });
  out += "\nAttempts:\n";
  if (job.attempts().empty()) return out + "  (none yet)\n";
  Table t({"#", "STATE", "END-REASON", "NODES", "STARTED", "DURATION", "STEPS", "MESSAGE"});
  for (const auto& a : job.attempts()) {
    std::string duration = "-";
    if (a.started_ms() != 0) {
      const std::int64_t end = a.ended_ms() != 0 ? a.ended_ms() : now_ms;
      duration = format_duration(static_cast<double>(end - a.started_ms()) / 1000.0);
    }
    std::string steps = "-";
    if (a.last_step() != 0 || a.start_step() != 0)
      steps = std::to_string(a.start_step()) + ".." + std::to_string(a.last_step());
    t.add_row({std::to_string(a.number()), a.state(), dash_if_empty(a.end_reason()), join(a.nodes(), ","),
               format_age(a.started_ms(), now_ms), duration, steps, a.message()});
  }
  out += t.render();
  // Where each attempt's time went, phase by phase (see Timings in cohort.proto).
  out += "\nTimings (seconds):\n";
  Table phases({"#", "QUEUED", "PROVISIONING", "IMAGE-UNPACK", "CONTAINERS-UP", "LAUNCH", "FIRST-PROGRESS", "RUN"});
  for (const auto& a : job.attempts()) {
    const auto& tm = a.timings();
    phases.add_row({std::to_string(a.number()), seconds_or_dash(tm.queued_s()), seconds_or_dash(tm.provisioning_s()),
                    seconds_or_dash(tm.image_unpack_s()), seconds_or_dash(tm.container_start_s()),
                    seconds_or_dash(tm.launch_s()), seconds_or_dash(tm.first_progress_s()),
                    seconds_or_dash(tm.run_s())});
  }
  out += phases.render();
  for (const auto& a : job.attempts()) {
    if (!a.has_first_failure()) continue;
    const auto& f = a.first_failure();
    out += "\nAttempt " + std::to_string(a.number()) +
           " first failure: " + (f.rank() >= 0 ? "rank " + std::to_string(f.rank()) : std::string("the processes")) +
           " on node " + f.node() + (f.host().empty() ? "" : " (host " + f.host() + ")") + ": " + f.cause() + "\n";
  }
  return out;
}

std::string nodes_table(const v1::ListNodesResponse& response, std::int64_t now_ms) {
  Table t({"NAME", "CLUSTER", "STATE", "HOST", "ADDRESS", "JOB", "CPU", "MEM", "LAST-HEARTBEAT"});
  for (const auto& n : response.nodes()) {
    std::ostringstream cpu;
    cpu.precision(1);
    cpu << std::fixed << n.usage().cpu_cores_used() << "/" << n.cores();
    std::string mem = "-";
    if (n.usage().memory_total_bytes() > 0)
      mem = format_bytes(n.usage().memory_used_bytes()) + "/" + format_bytes(n.usage().memory_total_bytes());
    t.add_row({n.name(), n.cluster(), n.state(), dash_if_empty(n.hostname()), dash_if_empty(n.address()),
               dash_if_empty(n.job()), cpu.str(), mem, format_age(n.last_heartbeat_ms(), now_ms)});
  }
  return t.render();
}

}  // namespace cohort::cli
