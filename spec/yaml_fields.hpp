// Typed reading of a job spec's fields with their paths, shared by the YAML and the JSON form.
//
// A document (YAML text or stored JSON) is first turned into a `Value` tree that keeps scalars as
// written; the readers below then check one field each and say which field was wrong and what was
// expected. Nothing here throws: yaml-cpp's exceptions stop at `value_from_yaml`.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "cohort/status.hpp"

namespace cohort::spec::detail {

// Bounds on what a spec may be, so that a hostile file (an alias bomb, deep nesting) cannot make
// the parser run out of memory or stack. Real specs are a few hundred bytes and 3 levels deep.
inline constexpr std::size_t kMaxSpecBytes = 1 << 20;
inline constexpr int kMaxDepth = 32;
inline constexpr std::size_t kMaxNodes = 100'000;

// One node of a document, whichever syntax it came from.
struct Value {
  struct Entry;
  enum class Kind { kNull, kScalar, kMap, kList };
  Kind kind = Kind::kNull;
  std::string text;         // kScalar: the text as written (a JSON number as it prints)
  bool quoted = false;      // kScalar: a quoted YAML string or a JSON string, never a number or bool
  std::vector<Entry> map;   // kMap: entries in document order, keys unique
  std::vector<Value> list;  // kList
};

struct Value::Entry {
  std::string key;
  Value value;
};

// Parses one YAML document. Syntax errors carry the line and column (1-based).
Result<Value> value_from_yaml(std::string_view text);
// The same tree from JSON: strings are quoted scalars, numbers and bools plain ones.
Result<Value> value_from_json(const nlohmann::json& json);

// How a value reads in a message: "two" (quoted), 2.5, null, a map, a list.
std::string describe(const Value& value);
// `job spec: PATH: expected WHAT, got DESCRIBE(value)`.
Status expected(std::string_view path, std::string_view what, const Value& got);
// `job spec: PATH: MESSAGE` (or `job spec: MESSAGE` at the top level).
Status spec_error(std::string_view path, std::string_view message);
// OK when `value` is a map; otherwise `expected(path, what, value)`.
Status expect_map(const Value& value, std::string_view path, std::string_view what);
// "a.b" from "a" and "b"; just "b" at the top level.
std::string join_path(std::string_view parent, std::string_view key);

// Edit distance (insertions, deletions, substitutions and adjacent transpositions, ASCII case
// folded) between two short names.
std::size_t edit_distance(std::string_view a, std::string_view b);
// The candidate nearest to `word` when it is near enough to be a likely typo; empty otherwise.
std::string_view nearest(std::string_view word, std::span<const std::string_view> candidates);

// One field of a map in the spec: its name and how to read it into a T.
template <typename T>
struct Field {
  std::string_view name;
  Status (*read)(const Value& value, const std::string& path, T& out);
};

// Fails on a key (in document order) that is not a field name, suggesting the nearest name.
// `elsewhere` lists fields that live at another place ("resources.instance_count"): a key that
// matches, or nearly matches, the last part of one is pointed there.
Status check_field_name(std::string_view key, std::string_view path, std::span<const std::string_view> names,
                        std::span<const std::string_view> elsewhere);

// Reads the fields of `map` in document order with their readers, so that the first bad field in
// the file is the one reported. A null value (an empty `key:` in YAML) counts as absent.
template <typename T>
Status read_fields(const Value& map, std::string_view path, std::span<const Field<T>> fields, T& out,
                   std::span<const std::string_view> elsewhere = {}) {
  std::vector<std::string_view> names;
  names.reserve(fields.size());
  for (const Field<T>& f : fields)
    names.push_back(f.name);
  for (const auto& [key, value] : map.map) {
    const Field<T>* field = nullptr;
    for (const Field<T>& f : fields) {
      if (f.name == key) field = &f;
    }
    if (field == nullptr) return check_field_name(key, path, names, elsewhere);
    if (value.kind == Value::Kind::kNull) continue;
    COHORT_TRY(field->read(value, join_path(path, key), out));
  }
  return {};
}

// Readers of one field; `path` names it in the message when it is wrong.
// A non-empty string (any scalar: `command: true` is the command "true") without NUL characters.
Result<std::string> read_string(const Value& value, std::string_view path);
// An integer in [min, max]; a quoted one ("2") is accepted too.
Result<std::int64_t> read_int(const Value& value, std::string_view path, std::int64_t min, std::int64_t max);
// Seconds >= 0: an integer, or a string of numbers with units like "90s", "10m", "2h", "1d", "1h30m".
Result<std::int64_t> read_duration(const Value& value, std::string_view path);
// Bytes >= 0: an integer, or a string like "512m", "1g", "1GiB" (powers of 1024).
Result<std::uint64_t> read_size(const Value& value, std::string_view path);
// The index of the value among `choices`, which the message lists.
Result<std::size_t> read_choice(const Value& value, std::string_view path, std::span<const std::string_view> choices);

}  // namespace cohort::spec::detail
