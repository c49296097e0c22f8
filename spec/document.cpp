// Turns YAML text or JSON into the syntax-free `Value` tree the field readers work on.
#include <yaml-cpp/eventhandler.h>
#include <yaml-cpp/yaml.h>

#include <exception>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <sstream>
#include <string>

#include "spec/yaml_fields.hpp"

namespace cohort::spec::detail {
namespace {

// Offset of the first byte that is not part of well-formed UTF-8, or npos. Overlong forms,
// surrogates and code points past U+10FFFF are malformed (nlohmann::json refuses to dump them).
std::size_t invalid_utf8_at(std::string_view s) {
  std::size_t i = 0;
  while (i < s.size()) {
    const auto c = static_cast<unsigned char>(s[i]);
    std::size_t len = 0;
    unsigned lo = 0x80;
    unsigned hi = 0xBF;
    if (c < 0x80) {
      ++i;
      continue;
    } else if (c >= 0xC2 && c <= 0xDF) {
      len = 2;
    } else if (c >= 0xE0 && c <= 0xEF) {
      len = 3;
      if (c == 0xE0) lo = 0xA0;
      if (c == 0xED) hi = 0x9F;
    } else if (c >= 0xF0 && c <= 0xF4) {
      len = 4;
      if (c == 0xF0) lo = 0x90;
      if (c == 0xF4) hi = 0x8F;
    } else {
      return i;
    }
    if (i + len > s.size()) return i;
    for (std::size_t k = 1; k < len; ++k) {
      const auto cc = static_cast<unsigned char>(s[i + k]);
      const unsigned min = k == 1 ? lo : 0x80;
      const unsigned max = k == 1 ? hi : 0xBF;
      if (cc < min || cc > max) return i;
    }
    i += len;
  }
  return std::string_view::npos;
}

Status check_text(std::string_view text, std::string_view path) {
  if (invalid_utf8_at(text) != std::string_view::npos) return spec_error(path, "text is not valid UTF-8");
  return {};
}

std::string index_path(std::string_view path, std::size_t i) {
  return std::string(path) + "[" + std::to_string(i) + "]";
}

// The YAML builder's bounds, for a JSON tree: stored JSON is held to what a file is.
class Budget {
 public:
  Status enter(std::string_view path, int depth) {
    if (depth > kMaxDepth) return spec_error(path, "nested deeper than " + std::to_string(kMaxDepth) + " levels");
    if (++nodes_ > kMaxNodes) {
      return spec_error(path,
                        "more than " + std::to_string(kMaxNodes) + " values (are YAML aliases repeating a part?)");
    }
    return {};
  }

 private:
  std::size_t nodes_ = 0;
};

// Appends a map entry; `seen` holds the map's keys so far (a set: a hostile file may have many).
Status add_entry(Value& map, std::set<std::string>& seen, std::string key, Value value, std::string_view path) {
  if (!seen.insert(key).second) return spec_error(path, "field \"" + key + "\" appears twice");
  map.map.push_back({std::move(key), std::move(value)});
  return {};
}

Status syntax_error(const YAML::Mark& mark, std::string_view message) {
  std::string where;
  if (!mark.is_null()) {
    where = " at line " + std::to_string(mark.line + 1) + ", column " + std::to_string(mark.column + 1);
  }
  return spec_error("", "YAML syntax error" + where + ": " + std::string(message));
}

// Thrown by the builder to stop yaml-cpp's parser as soon as the spec is known to be bad (a bound
// passed, a stray ','); caught in value_from_yaml, never seen outside this file.
struct Stop {
  Status status;
};

// Builds the Value tree from yaml-cpp's parse events. Working from events rather than YAML::Node
// lets aliases be counted as they are expanded and the parse be stopped at the first problem.
class Builder final : public YAML::EventHandler {
 public:
  explicit Builder(std::string_view text) : text_(text) {}

  Value take_root() { return std::move(root_); }

  void OnDocumentStart(const YAML::Mark& mark) override {
    check_stray_comma(mark);
    if (++documents_ > 1) {
      throw Stop{spec_error("", "expected one YAML document, found a second at line " + std::to_string(mark.line + 1) +
                                    " (remove the \"---\" separators)")};
    }
  }
  void OnDocumentEnd() override {}
  void OnNull(const YAML::Mark& mark, YAML::anchor_t anchor) override {
    if (stack_.empty()) check_stray_comma(mark);
    add(Value{}, 1, anchor);
  }
  void OnAlias(const YAML::Mark&, YAML::anchor_t anchor) override {
    const auto it = anchors_.find(anchor);
    if (it == anchors_.end()) throw Stop{spec_error(child_path(), "an alias refers to the value that contains it")};
    add(Value(it->second.value), it->second.nodes, 0);
  }
  void OnScalar(const YAML::Mark&, const std::string& tag, YAML::anchor_t anchor, const std::string& text) override {
    Value v;
    v.kind = Value::Kind::kScalar;
    v.text = text;
    // yaml-cpp tags a plain scalar "?" and a quoted one "!"; an explicit tag (!!str) makes it text.
    v.quoted = tag != "?" && !tag.empty();
    if (invalid_utf8_at(v.text) != std::string_view::npos)
      throw Stop{spec_error(child_path(), "text is not valid UTF-8")};
    add(std::move(v), 1, anchor);
  }
  void OnSequenceStart(const YAML::Mark&, const std::string&, YAML::anchor_t anchor,
                       YAML::EmitterStyle::value) override {
    open(Value::Kind::kList, anchor);
  }
  void OnSequenceEnd() override { close(); }
  void OnMapStart(const YAML::Mark&, const std::string&, YAML::anchor_t anchor, YAML::EmitterStyle::value) override {
    open(Value::Kind::kMap, anchor);
  }
  void OnMapEnd() override { close(); }

 private:
  struct Frame {
    Value value;
    std::string path;
    YAML::anchor_t anchor = 0;
    std::size_t nodes_at_open = 0;
    std::optional<std::string> key;  // a map's key waiting for its value
    std::set<std::string> keys;      // a set: a hostile file may have many
  };
  struct Anchored {
    Value value;
    std::size_t nodes = 0;
  };

  // yaml-cpp 0.7 loops forever on a ',' outside brackets, starting a new empty document at it
  // without moving on; such a document, or its null, begins at the ','.
  void check_stray_comma(const YAML::Mark& mark) const {
    if (mark.pos >= 0 && static_cast<std::size_t>(mark.pos) < text_.size() && text_[mark.pos] == ',') {
      throw Stop{syntax_error(mark, "unexpected ',' outside [...] or {...}")};
    }
  }

  std::string child_path() const {
    if (stack_.empty()) return "";
    const Frame& top = stack_.back();
    if (top.value.kind == Value::Kind::kList) return top.path + "[" + std::to_string(top.value.list.size()) + "]";
    return top.key ? join_path(top.path, *top.key) : top.path;
  }

  void count(std::size_t nodes) {
    nodes_ += nodes;
    if (nodes_ > kMaxNodes) {
      throw Stop{spec_error(child_path(),
                            "more than " + std::to_string(kMaxNodes) + " values (are YAML aliases repeating a part?)")};
    }
  }

  void open(Value::Kind kind, YAML::anchor_t anchor) {
    if (!stack_.empty() && stack_.back().value.kind == Value::Kind::kMap && !stack_.back().key) {
      throw Stop{spec_error(stack_.back().path, "a field name must be plain text, not a map or a list")};
    }
    if (stack_.size() >= static_cast<std::size_t>(kMaxDepth)) {
      throw Stop{spec_error(child_path(), "nested deeper than " + std::to_string(kMaxDepth) + " levels")};
    }
    count(1);
    Frame frame;
    frame.path = child_path();
    frame.value.kind = kind;
    frame.anchor = anchor;
    frame.nodes_at_open = nodes_;
    stack_.push_back(std::move(frame));
  }

  void close() {
    Frame frame = std::move(stack_.back());
    stack_.pop_back();
    if (frame.key) throw Stop{spec_error(frame.path, "a field has no value")};  // not expected from yaml-cpp
    add(std::move(frame.value), 0, frame.anchor, nodes_ - frame.nodes_at_open + 1);
  }

  // Puts a finished value in its place. `new_nodes` are counted now; `size` is its whole count.
  void add(Value v, std::size_t new_nodes, YAML::anchor_t anchor, std::size_t size = 1) {
    count(new_nodes);
    size = std::max(size, new_nodes);
    if (anchor != 0) {
      count(size);  // the copy kept for aliases
      anchors_[anchor] = Anchored{v, size};
    }
    if (stack_.empty()) {
      root_ = std::move(v);
      return;
    }
    Frame& top = stack_.back();
    if (top.value.kind == Value::Kind::kList) {
      top.value.list.push_back(std::move(v));
    } else if (!top.key) {
      if (v.kind != Value::Kind::kScalar) {
        throw Stop{spec_error(top.path, "a field name must be plain text, not a map, a list or nothing")};
      }
      if (!top.keys.insert(v.text).second)
        throw Stop{spec_error(top.path, "field " + quoted(v.text) + " appears twice")};
      top.key = std::move(v.text);
    } else {
      top.value.map.push_back({std::move(*top.key), std::move(v)});
      top.key.reset();
    }
  }

  static std::string quoted(std::string_view s) { return "\"" + std::string(s) + "\""; }

  std::string_view text_;
  int documents_ = 0;
  std::size_t nodes_ = 0;
  Value root_;
  std::vector<Frame> stack_;
  std::map<YAML::anchor_t, Anchored> anchors_;
};

Result<Value> from_json(const nlohmann::json& json, const std::string& path, int depth, Budget& budget) {
  COHORT_TRY(budget.enter(path, depth));
  Value out;
  using T = nlohmann::json::value_t;
  switch (json.type()) {
    case T::null:
      return out;
    case T::string:
      out.kind = Value::Kind::kScalar;
      out.quoted = true;
      out.text = json.get_ref<const std::string&>();
      COHORT_TRY(check_text(out.text, path));
      return out;
    case T::boolean:
      out.kind = Value::Kind::kScalar;
      out.text = json.get<bool>() ? "true" : "false";
      return out;
    case T::number_integer:
      out.kind = Value::Kind::kScalar;
      out.text = std::to_string(json.get<std::int64_t>());
      return out;
    case T::number_unsigned:
      out.kind = Value::Kind::kScalar;
      out.text = std::to_string(json.get<std::uint64_t>());
      return out;
    case T::number_float:
      out.kind = Value::Kind::kScalar;
      out.text = json.dump();
      return out;
    case T::array: {
      out.kind = Value::Kind::kList;
      std::size_t i = 0;
      for (const nlohmann::json& item : json) {
        COHORT_ASSIGN_OR_RETURN(Value v, from_json(item, index_path(path, i++), depth + 1, budget));
        out.list.push_back(std::move(v));
      }
      return out;
    }
    case T::object: {
      out.kind = Value::Kind::kMap;
      std::set<std::string> seen;
      for (const auto& [key, item] : json.items()) {
        COHORT_TRY(check_text(key, path));
        COHORT_ASSIGN_OR_RETURN(Value v, from_json(item, join_path(path, key), depth + 1, budget));
        COHORT_TRY(add_entry(out, seen, key, std::move(v), path));
      }
      return out;
    }
    case T::binary:
    case T::discarded:
      break;
  }
  return spec_error(path, "expected JSON text, numbers, maps or lists, got binary data");
}

}  // namespace

Result<Value> value_from_yaml(std::string_view text) {
  if (text.size() > kMaxSpecBytes) {
    return spec_error("", "the file is " + std::to_string(text.size()) + " bytes; a spec is at most " +
                              std::to_string(kMaxSpecBytes) + " bytes");
  }
  // yaml-cpp passes malformed UTF-8 through; refuse it here with its place, as YAML requires.
  if (const std::size_t at = invalid_utf8_at(text); at != std::string_view::npos) {
    return spec_error("", "the file is not valid UTF-8 (byte " + std::to_string(at + 1) + ")");
  }
  if (text.starts_with("\xEF\xBB\xBF")) text.remove_prefix(3);  // a BOM would shift yaml-cpp's positions
  try {
    std::istringstream in{std::string(text)};
    YAML::Parser parser(in);
    Builder builder(text);
    // The second call only finds out whether a second document follows: the builder stops there.
    if (parser.HandleNextDocument(builder)) parser.HandleNextDocument(builder);
    return builder.take_root();
  } catch (const Stop& stop) {
    return stop.status;
  } catch (const YAML::Exception& e) {
    return syntax_error(e.mark, e.msg);
  } catch (const std::exception& e) {
    return spec_error("", std::string("could not read the YAML: ") + e.what());
  }
}

Result<Value> value_from_json(const nlohmann::json& json) {
  try {
    Budget budget;
    return from_json(json, "", 0, budget);
  } catch (const std::exception& e) {
    return spec_error("", std::string("could not read the JSON: ") + e.what());
  }
}

}  // namespace cohort::spec::detail
