// How the CLI shows what the manager returns: aligned tables for people, JSON for scripts.
//
// JSON is protobuf's canonical mapping with the .proto's field names (snake_case) and every field
// present, defaults included, so scripts never meet a missing key; int64 fields are strings, as
// that mapping says. A list is one JSON array. Tables show times as ages ("3s ago") and details as
// ISO 8601 (UTC); every function takes `now_ms` so tests are deterministic.
#pragma once

#include <google/protobuf/message.h>

#include <cstdint>
#include <string>
#include <vector>

#include "cohort/status.hpp"
#include "cohort/v1/cohort.pb.h"

namespace cohort::cli {

// Columns padded to their widest cell, two spaces apart, headers first; the last column is not
// padded. A cell never holds a newline (it is replaced by a space).
class Table {
 public:
  explicit Table(std::vector<std::string> headers);
  void add_row(std::vector<std::string> cells);  // REQUIRES: as many cells as headers
  std::string render() const;

 private:
  std::vector<std::vector<std::string>> rows_;  // rows_[0] holds the headers
};

// ---------------------------------------------------------------- small formats

std::string format_age(std::int64_t time_ms, std::int64_t now_ms);  // "3s ago", "5m ago", "-" for 0
std::string format_iso(std::int64_t time_ms);                       // "2024-05-01T12:00:03Z", "-" for 0
std::string format_duration(double seconds);                        // "950ms", "42s", "3m05s", "2h10m"
std::string format_bytes(std::int64_t bytes);                       // "512B", "1.5K", "3.9G"
// "2 busy, 1 idle" from a cluster's node_counts, in state order; "0" when there are none.
std::string format_node_counts(const google::protobuf::Map<std::string, std::int32_t>& counts);

// ---------------------------------------------------------------- JSON

Result<std::string> to_json(const google::protobuf::Message& message);
template <typename M>
Result<std::string> to_json_array(const google::protobuf::RepeatedPtrField<M>& items) {
  std::string out = "[";
  for (const auto& item : items) {
    COHORT_ASSIGN_OR_RETURN(std::string one, to_json(item));
    if (out.size() > 1) out += ",";
    out += one;
  }
  return out + "]";
}

// ---------------------------------------------------------------- tables

std::string clusters_table(const v1::ListClustersResponse& response);
std::string cluster_details(const v1::Cluster& cluster, std::int64_t now_ms);  // with its events
std::string sizes_table(const v1::ListVmSizesResponse& response);
std::string jobs_table(const v1::ListJobsResponse& response, std::int64_t now_ms);
std::string job_details(const v1::Job& job, std::int64_t now_ms);  // with its attempts
std::string nodes_table(const v1::ListNodesResponse& response, std::int64_t now_ms);

std::int64_t now_ms();  // the wall clock, milliseconds since the epoch

}  // namespace cohort::cli
