#include "store.hpp"

#include <utility>

namespace cohort::manager {

namespace {

constexpr const char* kSchema = R"sql(
CREATE TABLE IF NOT EXISTS clusters (name TEXT PRIMARY KEY, record BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS nodes (name TEXT PRIMARY KEY, cluster TEXT NOT NULL, state TEXT NOT NULL,
                                  credential_hash TEXT NOT NULL, record BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS jobs (id TEXT PRIMARY KEY, sequence INTEGER NOT NULL, cluster TEXT NOT NULL,
                                 state TEXT NOT NULL, record BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS events (id INTEGER PRIMARY KEY AUTOINCREMENT, time_ms INTEGER NOT NULL,
                                   cluster TEXT NOT NULL, node TEXT NOT NULL, job TEXT NOT NULL,
                                   kind TEXT NOT NULL, message TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS events_by_cluster ON events (cluster, id);
CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
)sql";

// One prepared statement, finalized on every path.
class Statement {
 public:
  Statement(sqlite3* db, const char* sql) : db_(db) { rc_ = sqlite3_prepare_v2(db, sql, -1, &stmt_, nullptr); }
  ~Statement() { sqlite3_finalize(stmt_); }
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;

  Status ok(std::string_view what) const {
    if (rc_ == SQLITE_OK || rc_ == SQLITE_DONE || rc_ == SQLITE_ROW) return {};
    const Code code = rc_ == SQLITE_FULL                                ? Code::kResourceExhausted
                      : (rc_ == SQLITE_CORRUPT || rc_ == SQLITE_NOTADB) ? Code::kDataLoss
                                                                        : Code::kIoError;
    return {code, "state database: " + std::string(what) + ": " + sqlite3_errmsg(db_)};
  }
  Statement& text(int i, const std::string& v) {
    if (rc_ == SQLITE_OK) rc_ = sqlite3_bind_text(stmt_, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT);
    return *this;
  }
  Statement& integer(int i, std::int64_t v) {
    if (rc_ == SQLITE_OK) rc_ = sqlite3_bind_int64(stmt_, i, v);
    return *this;
  }
  Statement& blob(int i, const std::string& v) {
    if (rc_ == SQLITE_OK) rc_ = sqlite3_bind_blob(stmt_, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT);
    return *this;
  }
  // True while there is a row; check ok() afterwards.
  bool step() {
    if (rc_ != SQLITE_OK && rc_ != SQLITE_ROW) return false;
    rc_ = sqlite3_step(stmt_);
    return rc_ == SQLITE_ROW;
  }
  Status run(std::string_view what) {
    step();
    return ok(what);
  }
  std::string column_blob(int i) const {
    const void* p = sqlite3_column_blob(stmt_, i);
    return p ? std::string(static_cast<const char*>(p), static_cast<std::size_t>(sqlite3_column_bytes(stmt_, i)))
             : std::string();
  }
  std::string column_text(int i) const {
    const unsigned char* p = sqlite3_column_text(stmt_, i);
    return p ? std::string(reinterpret_cast<const char*>(p)) : std::string();
  }
  std::int64_t column_int(int i) const { return sqlite3_column_int64(stmt_, i); }

 private:
  sqlite3* db_;
  sqlite3_stmt* stmt_ = nullptr;
  int rc_ = SQLITE_OK;
};

template <typename Message>
Status parse(Message& m, const std::string& bytes, std::string_view what) {
  if (!m.ParseFromString(bytes)) return {Code::kDataLoss, "state database: a " + std::string(what) + " is unreadable"};
  return {};
}

}  // namespace

Result<std::unique_ptr<Store>> Store::open(const std::filesystem::path& dir, bool create) {
  std::error_code ec;
  if (!std::filesystem::is_directory(dir, ec)) {
    return Status(Code::kNotFound, "state directory " + dir.string() +
                                       " does not exist: create it with `cohort-manager init --state-dir " +
                                       dir.string() + "` (a missing state is never replaced by an empty one)");
  }
  const std::filesystem::path path = dir / "state.db";
  if (!create && !std::filesystem::exists(path, ec)) {
    return Status(Code::kNotFound, "no state database " + path.string() + ": run `cohort-manager init --state-dir " +
                                       dir.string() + "` first");
  }
  sqlite3* db = nullptr;
  const int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_FULLMUTEX | (create ? SQLITE_OPEN_CREATE : 0);
  const int rc = sqlite3_open_v2(path.c_str(), &db, flags, nullptr);
  std::unique_ptr<Store> store(new Store(db));
  if (rc != SQLITE_OK) {
    return Status(Code::kIoError, "cannot open the state database " + path.string() + ": " +
                                      (db ? sqlite3_errmsg(db) : sqlite3_errstr(rc)));
  }
  sqlite3_busy_timeout(db, 5000);
  COHORT_TRY(store->exec("PRAGMA journal_mode=WAL"));
  // FULL: a job the CLI was told is submitted survives a power cut, not only a crash.
  COHORT_TRY(store->exec("PRAGMA synchronous=FULL"));
  COHORT_TRY(store->exec(kSchema));
  // Read the whole schema once: a file that is not a database fails here, not at the first job.
  Statement check(db, "SELECT count(*) FROM clusters");
  check.step();
  COHORT_TRY(check.ok("reading " + path.string() + " (is it a Cohort state database?)"));
  return store;
}

Store::~Store() {
  sqlite3_close_v2(db_);
}

Status Store::exec(const char* sql) {
  char* error = nullptr;
  if (sqlite3_exec(db_, sql, nullptr, nullptr, &error) == SQLITE_OK) return {};
  Status s(Code::kIoError, std::string("state database: ") + (error ? error : "unknown error"));
  sqlite3_free(error);
  return s;
}

Status Store::begin() {
  return exec("BEGIN IMMEDIATE");
}
Status Store::commit() {
  return exec("COMMIT");
}

Status Store::put_cluster(const v1::Cluster& cluster) {
  v1::Cluster copy = cluster;
  copy.clear_events();
  copy.clear_node_counts();
  Statement st(db_, "INSERT OR REPLACE INTO clusters (name, record) VALUES (?, ?)");
  return st.text(1, copy.spec().name()).blob(2, copy.SerializeAsString()).run("saving cluster " + copy.spec().name());
}

Status Store::delete_cluster(const std::string& name) {
  Statement st(db_, "DELETE FROM clusters WHERE name = ?");
  return st.text(1, name).run("deleting cluster " + name);
}

Result<std::vector<v1::Cluster>> Store::load_clusters() {
  Statement st(db_, "SELECT record FROM clusters ORDER BY name");
  std::vector<v1::Cluster> out;
  while (st.step()) {
    COHORT_TRY(parse(out.emplace_back(), st.column_blob(0), "cluster"));
  }
  COHORT_TRY(st.ok("loading clusters"));
  return out;
}

Status Store::put_node(const StoredNode& n) {
  Statement st(db_,
               "INSERT OR REPLACE INTO nodes (name, cluster, state, credential_hash, record) VALUES (?, ?, ?, ?, ?)");
  return st.text(1, n.node.name())
      .text(2, n.node.cluster())
      .text(3, n.node.state())
      .text(4, n.credential_hash)
      .blob(5, n.node.SerializeAsString())
      .run("saving node " + n.node.name());
}

Result<std::vector<StoredNode>> Store::load_nodes() {
  Statement st(db_, "SELECT credential_hash, record FROM nodes ORDER BY name");
  std::vector<StoredNode> out;
  while (st.step()) {
    StoredNode& n = out.emplace_back();
    n.credential_hash = st.column_text(0);
    COHORT_TRY(parse(n.node, st.column_blob(1), "node"));
  }
  COHORT_TRY(st.ok("loading nodes"));
  return out;
}

Status Store::put_job(const StoredJob& j) {
  Statement st(db_, "INSERT OR REPLACE INTO jobs (id, sequence, cluster, state, record) VALUES (?, ?, ?, ?, ?)");
  return st.text(1, j.job.id())
      .integer(2, j.sequence)
      .text(3, j.job.cluster())
      .text(4, j.job.state())
      .blob(5, j.job.SerializeAsString())
      .run("saving job " + j.job.id());
}

Result<std::vector<StoredJob>> Store::load_jobs() {
  Statement st(db_, "SELECT sequence, record FROM jobs ORDER BY sequence");
  std::vector<StoredJob> out;
  while (st.step()) {
    StoredJob& j = out.emplace_back();
    j.sequence = st.column_int(0);
    COHORT_TRY(parse(j.job, st.column_blob(1), "job"));
  }
  COHORT_TRY(st.ok("loading jobs"));
  return out;
}

Status Store::add_event(v1::Event& e) {
  Statement st(db_, "INSERT INTO events (time_ms, cluster, node, job, kind, message) VALUES (?, ?, ?, ?, ?, ?)");
  COHORT_TRY(st.integer(1, e.time_ms())
                 .text(2, e.cluster())
                 .text(3, e.node())
                 .text(4, e.job())
                 .text(5, e.kind())
                 .text(6, e.message())
                 .run("recording an event"));
  e.set_id(sqlite3_last_insert_rowid(db_));
  return {};
}

Result<std::vector<v1::Event>> Store::recent_events(const std::string& cluster, int limit) {
  Statement st(db_,
               "SELECT id, time_ms, cluster, node, job, kind, message FROM events WHERE (?1 = '' OR cluster = ?1) "
               "ORDER BY id DESC LIMIT ?2");
  st.text(1, cluster).integer(2, limit);
  std::vector<v1::Event> out;
  while (st.step()) {
    v1::Event& e = out.emplace_back();
    e.set_id(st.column_int(0));
    e.set_time_ms(st.column_int(1));
    e.set_cluster(st.column_text(2));
    e.set_node(st.column_text(3));
    e.set_job(st.column_text(4));
    e.set_kind(st.column_text(5));
    e.set_message(st.column_text(6));
  }
  COHORT_TRY(st.ok("reading events"));
  return std::vector<v1::Event>(out.rbegin(), out.rend());
}

Result<std::int64_t> Store::next_counter(const std::string& name) {
  Statement st(db_,
               "INSERT INTO counters (name, value) VALUES (?, 1) ON CONFLICT(name) DO UPDATE SET value = value + 1 "
               "RETURNING value");
  st.text(1, name);
  std::int64_t v = 0;
  if (st.step()) v = st.column_int(0);
  st.step();  // finish the statement so the write commits
  COHORT_TRY(st.ok("counter " + name));
  return v;
}

}  // namespace cohort::manager
