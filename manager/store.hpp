// The manager's durable state: one SQLite database (WAL, synchronous=FULL) under --state-dir.
//
// Each record is its protobuf message in a BLOB next to the few columns queries need, so the
// schema follows the wire API without migrations for every new field. Heartbeats are not
// written here: they change only in memory, and a restarted manager gives every node a fresh
// heartbeat_timeout instead (see docs/cluster.md).
#pragma once

#include <sqlite3.h>

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "cohort/status.hpp"
#include "cohort/v1/cohort.pb.h"

namespace cohort::manager {

struct StoredNode {
  v1::Node node;
  std::string credential_hash;  // sha256 of the runner's bearer credential
};

struct StoredJob {
  v1::Job job;
  std::int64_t sequence = 0;  // submission order, for FIFO
};

class Store {
 public:
  // REQUIRES: `dir` exists (a missing state directory is an error, never a silent fresh start).
  // `create` makes the database; without it a missing database is NotFound.
  static Result<std::unique_ptr<Store>> open(const std::filesystem::path& dir, bool create);
  ~Store();
  Store(const Store&) = delete;
  Store& operator=(const Store&) = delete;

  Status put_cluster(const v1::Cluster& cluster);  // events are not stored with it
  Status delete_cluster(const std::string& name);
  Result<std::vector<v1::Cluster>> load_clusters();

  Status put_node(const StoredNode& node);
  Result<std::vector<StoredNode>> load_nodes();

  Status put_job(const StoredJob& job);
  Result<std::vector<StoredJob>> load_jobs();

  // Fills event.id.
  Status add_event(v1::Event& event);
  // The newest `limit` events of a cluster (all clusters when ""), oldest first.
  Result<std::vector<v1::Event>> recent_events(const std::string& cluster, int limit);

  Result<std::int64_t> next_counter(const std::string& name);  // 1, 2, 3, ... durably

  // Groups the writes until commit() into one transaction (one fsync): a registration storm of
  // thousands of nodes must not cost three fsyncs per node. Not nested.
  Status begin();
  Status commit();

 private:
  explicit Store(sqlite3* db) : db_(db) {}
  Status exec(const char* sql);
  sqlite3* db_;  // owned
};

}  // namespace cohort::manager
