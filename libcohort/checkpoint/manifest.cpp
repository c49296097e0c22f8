#include "checkpoint/manifest.hpp"

#include <cstdio>
#include <nlohmann/json.hpp>

namespace cohort::ckpt {
namespace {

using nlohmann::json;

// Reads typed fields out of a JSON object; the first violation, with its path, is kept.
class Fields {
 public:
  Fields(const json& j, std::string path) : j_(j), path_(std::move(path)) {}

  template <typename T>
  T get(const char* key) {
    const std::string where = path_.empty() ? key : path_ + "." + key;
    if (!status_.ok()) return T{};
    if (!j_.is_object() || !j_.contains(key)) {
      status_ = invalid_argument("missing field " + where);
      return T{};
    }
    const json& v = j_.at(key);
    bool ok = false;
    if constexpr (std::is_same_v<T, std::string>)
      ok = v.is_string();
    else if constexpr (std::is_unsigned_v<T>)
      ok = v.is_number_unsigned();
    else
      ok = v.is_number_integer();
    if (!ok) {
      status_ = invalid_argument("field " + where + " has the wrong type (" + std::string(v.type_name()) + ")");
      return T{};
    }
    return v.get<T>();
  }
  const json& at(const char* key) {
    static const json kNull;
    if (!status_.ok()) return kNull;
    if (!j_.is_object() || !j_.contains(key)) {
      status_ = invalid_argument("missing field " + (path_.empty() ? std::string(key) : path_ + "." + key));
      return kNull;
    }
    return j_.at(key);
  }
  void fail(Status s) {
    if (status_.ok()) status_ = std::move(s);
  }
  const Status& status() const { return status_; }

 private:
  const json& j_;
  std::string path_;
  Status status_;
};

json file_json(const FileEntry& f) {
  return {{"name", f.name}, {"bytes", f.bytes}, {"xxh3", f.xxh3}};
}

FileEntry parse_file(Fields& outer, const json& j, const std::string& path) {
  Fields f(j, path);
  FileEntry e{f.get<std::string>("name"), f.get<std::uint64_t>("bytes"), f.get<std::uint64_t>("xxh3")};
  if (f.status().ok() && (e.name.empty() || e.name.find('/') != std::string::npos || e.name[0] == '.')) {
    f.fail(invalid_argument("field " + path + ".name '" + e.name + "' is not a plain file name"));
  }
  outer.fail(f.status());
  return e;
}

Result<json> parse_json(std::string_view text) {
  json j = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return invalid_argument("not valid JSON");
  if (!j.is_object()) return invalid_argument("not a JSON object");
  return j;
}

}  // namespace

const FileEntry* Manifest::find(std::string_view name) const {
  for (const auto& f : files) {
    if (f.name == name) return &f;
  }
  return nullptr;
}

std::string encode(const RankIndex& x) {
  json tensors = json::array();
  for (const auto& t : x.tensors)
    tensors.push_back({{"name", t.name}, {"offset", t.offset}, {"bytes", t.bytes}});
  json j = {{"format", kFormatVersion}, {"rank", x.rank},
            {"step", x.step},           {"attempt", x.attempt},
            {"nonce", x.nonce},         {"data", file_json(x.data)},
            {"tensors", tensors},       {"metadata", json::parse(x.metadata_json)}};
  return j.dump(1) + "\n";
}

std::string encode(const Manifest& m) {
  json files = json::array();
  for (const auto& f : m.files)
    files.push_back(file_json(f));
  json j = {{"format", m.format},   {"step", m.step},   {"world_size", m.world_size},
            {"attempt", m.attempt}, {"nonce", m.nonce}, {"created_unix_ms", m.created_unix_ms},
            {"files", files}};
  return j.dump(1) + "\n";
}

Result<RankIndex> parse_rank_index(std::string_view text) {
  COHORT_ASSIGN_OR_RETURN(json j, parse_json(text));
  Fields f(j, "");
  RankIndex x;
  if (f.get<int>("format") != kFormatVersion && f.status().ok()) {
    f.fail(invalid_argument("field format is not " + std::to_string(kFormatVersion)));
  }
  x.rank = f.get<int>("rank");
  x.step = f.get<std::int64_t>("step");
  x.attempt = f.get<int>("attempt");
  x.nonce = f.get<std::string>("nonce");
  x.data = parse_file(f, f.at("data"), "data");
  const json& tensors = f.at("tensors");
  if (f.status().ok() && !tensors.is_array()) f.fail(invalid_argument("field tensors is not an array"));
  std::uint64_t end = 0;
  for (std::size_t i = 0; f.status().ok() && i < tensors.size(); ++i) {
    const std::string path = "tensors[" + std::to_string(i) + "]";
    Fields t(tensors[i], path);
    TensorEntry e{t.get<std::string>("name"), t.get<std::uint64_t>("offset"), t.get<std::uint64_t>("bytes")};
    f.fail(t.status());
    if (f.status().ok() && e.offset != end) {
      f.fail(invalid_argument("field " + path + ".offset is " + std::to_string(e.offset) + ", expected " +
                              std::to_string(end) + " (tensors are stored back to back)"));
    }
    end = e.offset + e.bytes;
    x.tensors.push_back(std::move(e));
  }
  if (f.status().ok() && end != x.data.bytes) {
    f.fail(invalid_argument("tensors end at byte " + std::to_string(end) + " but data.bytes is " +
                            std::to_string(x.data.bytes)));
  }
  x.metadata_json = f.at("metadata").dump();
  if (!f.status().ok()) return f.status();
  return x;
}

Result<Manifest> parse_manifest(std::string_view text) {
  COHORT_ASSIGN_OR_RETURN(json j, parse_json(text));
  Fields f(j, "");
  Manifest m;
  m.format = f.get<int>("format");
  if (f.status().ok() && m.format != kFormatVersion) {
    f.fail(invalid_argument("field format is " + std::to_string(m.format) + "; this Cohort reads format " +
                            std::to_string(kFormatVersion)));
  }
  m.step = f.get<std::int64_t>("step");
  m.world_size = f.get<int>("world_size");
  m.attempt = f.get<int>("attempt");
  m.nonce = f.get<std::string>("nonce");
  m.created_unix_ms = f.get<std::int64_t>("created_unix_ms");
  const json& files = f.at("files");
  if (f.status().ok() && !files.is_array()) f.fail(invalid_argument("field files is not an array"));
  for (std::size_t i = 0; f.status().ok() && i < files.size(); ++i) {
    m.files.push_back(parse_file(f, files[i], "files[" + std::to_string(i) + "]"));
  }
  if (f.status().ok() && (m.world_size < 1 || m.step < 0))
    f.fail(invalid_argument("field world_size or step out of range"));
  for (int r = 0; f.status().ok() && r < m.world_size; ++r) {
    if (!m.find(data_file_name(r)) || !m.find(index_file_name(r))) {
      f.fail(invalid_argument("field files lacks the files of rank " + std::to_string(r)));
    }
  }
  if (!f.status().ok()) return f.status();
  return m;
}

Status check_json(std::string_view text) {
  if (json::accept(text)) return {};
  return invalid_argument("metadata is not valid JSON");
}

std::string step_dir_name(std::int64_t step) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "step-%020lld", static_cast<long long>(step));
  return buf;
}

std::int64_t parse_step_dir_name(std::string_view name) {
  constexpr std::string_view kPrefix = "step-";
  if (name.size() != kPrefix.size() + 20 || name.substr(0, kPrefix.size()) != kPrefix) return -1;
  std::int64_t v = 0;
  for (char c : name.substr(kPrefix.size())) {
    if (c < '0' || c > '9') return -1;
    v = v * 10 + (c - '0');
  }
  return v;
}

std::string data_file_name(int rank) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "rank-%05d.data", rank);
  return buf;
}

std::string index_file_name(int rank) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "rank-%05d.json", rank);
  return buf;
}

}  // namespace cohort::ckpt
