// Parsing and validating a job spec: one reader per field, applied in file order, so that the
// first bad field in the file is the one reported. YAML and stored JSON go through the same code.
#include "spec/job_spec.hpp"

#include <array>
#include <limits>

#include "spec/yaml_fields.hpp"

namespace cohort::spec {
namespace {

using detail::expect_map;
using detail::expected;
using detail::Field;
using detail::read_fields;
using detail::spec_error;
using detail::Value;

constexpr std::int64_t kIntMax = std::numeric_limits<int>::max();

constexpr std::array<std::string_view, 3> kDistributionTypes = {"none", "mpi", "pytorch"};
constexpr std::array<std::string_view, 3> kRuntimes = {"none", "runc", "auto"};
constexpr std::array<std::string_view, 2> kDataTypes = {"uri_folder", "uri_file"};
constexpr std::array<std::string_view, 2> kInputModes = {"ro_mount", "download"};
constexpr std::array<std::string_view, 2> kOutputModes = {"rw_mount", "upload"};
constexpr std::array<std::string_view, 3> kNoticeSignals = {"SIGUSR1", "SIGUSR2", "none"};

// Fields that belong inside a section: a user who writes `instance_count: 2` at the top is told
// where it goes.
constexpr std::string_view kNestedFields[] = {"resources.instance_count",
                                              "resources.gpus_per_instance",
                                              "distribution.process_count_per_instance",
                                              "environment.image",
                                              "environment.runtime",
                                              "environment.shm_size",
                                              "checkpoint.keep_last",
                                              "retries.user_error",
                                              "retries.infrastructure",
                                              "retries.preemption",
                                              "limits.timeout",
                                              "limits.progress_timeout",
                                              "preemption.signal"};

bool is_lower_or_digit(char c) {
  return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

// [a-z0-9][a-z0-9<extra>]{0,max_len-1}
bool is_name(std::string_view s, std::string_view extra, std::size_t max_len) {
  if (s.empty() || s.size() > max_len || !is_lower_or_digit(s[0])) return false;
  for (const char c : s) {
    if (!is_lower_or_digit(c) && extra.find(c) == std::string_view::npos) return false;
  }
  return true;
}

// [a-z_][a-z0-9_]*: an input or output name.
bool is_data_name(std::string_view s) {
  if (s.empty() || (s[0] >= '0' && s[0] <= '9')) return false;
  for (const char c : s) {
    if (!is_lower_or_digit(c) && c != '_') return false;
  }
  return true;
}

// [A-Za-z_][A-Za-z0-9_]*, what a shell and execve take.
bool is_env_name(std::string_view s) {
  if (s.empty() || (s[0] >= '0' && s[0] <= '9')) return false;
  for (const char c : s) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
    if (!ok) return false;
  }
  return true;
}

template <typename I>
Status set_int(const Value& v, const std::string& path, I& out, std::int64_t min, std::int64_t max) {
  COHORT_ASSIGN_OR_RETURN(const std::int64_t n, detail::read_int(v, path, min, max));
  out = static_cast<I>(n);
  return {};
}

template <typename E, std::size_t N>
Status set_choice(const Value& v, const std::string& path, E& out, const std::array<std::string_view, N>& choices) {
  COHORT_ASSIGN_OR_RETURN(const std::size_t i, detail::read_choice(v, path, choices));
  out = static_cast<E>(i);
  return {};
}

template <typename S>  // std::string or std::optional<std::string>
Status set_string(const Value& v, const std::string& path, S& out) {
  COHORT_ASSIGN_OR_RETURN(out, detail::read_string(v, path));
  return {};
}

Status set_image(const Value& v, const std::string& path, Environment& env) {
  static constexpr std::string_view kWhat =
      R"("host", "oci:PATH" (an OCI image layout) or "dir:PATH" (a root filesystem))";
  if (v.kind != Value::Kind::kScalar || v.text.find('\0') != std::string::npos) return expected(path, kWhat, v);
  const std::string_view t = v.text;
  if (t == "host") {
    env.image = ImageKind::kHost;
    env.image_path.clear();
    return {};
  }
  for (const auto& [prefix, kind] : {std::pair{std::string_view("oci:"), ImageKind::kOci}, {"dir:", ImageKind::kDir}}) {
    if (t.starts_with(prefix) && t.size() > prefix.size()) {
      env.image = kind;
      env.image_path = t.substr(prefix.size());
      return {};
    }
  }
  return expected(path, kWhat, v);
}

struct EnvironmentFields {
  Environment env;
  bool runtime_given = false;
};

constexpr Field<EnvironmentFields> kEnvironmentFields[] = {
    {"image", [](const Value& v, const std::string& p, EnvironmentFields& e) { return set_image(v, p, e.env); }},
    {"runtime",
     [](const Value& v, const std::string& p, EnvironmentFields& e) {
       e.runtime_given = true;
       return set_choice(v, p, e.env.runtime, kRuntimes);
     }},
    {"shm_size",
     [](const Value& v, const std::string& p, EnvironmentFields& e) -> Status {
       COHORT_ASSIGN_OR_RETURN(e.env.shm_size_bytes, detail::read_size(v, p));
       return {};
     }},
};

Status set_environment(const Value& v, const std::string& path, Environment& out) {
  EnvironmentFields e;
  if (v.kind == Value::Kind::kScalar) {
    COHORT_TRY(set_image(v, path, e.env));
  } else if (v.kind == Value::Kind::kMap) {
    COHORT_TRY(read_fields<EnvironmentFields>(v, path, kEnvironmentFields, e));
  } else {
    return expected(path, R"("host", "oci:PATH", "dir:PATH" or a map of image, runtime and shm_size)", v);
  }
  if (!e.runtime_given) e.env.runtime = e.env.image == ImageKind::kHost ? Runtime::kAuto : Runtime::kRunc;
  if (e.env.runtime != Runtime::kRunc && e.env.image != ImageKind::kHost) {
    return spec_error(detail::join_path(path, "runtime"),
                      "expected runc for image \"" + image_reference(e.env) + "\" (only image host runs without one)");
  }
  out = std::move(e.env);
  return {};
}

constexpr Field<Resources> kResourceFields[] = {
    {"instance_count",
     [](const Value& v, const std::string& p, Resources& r) { return set_int(v, p, r.instance_count, 1, kIntMax); }},
    {"gpus_per_instance",
     [](const Value& v, const std::string& p, Resources& r) { return set_int(v, p, r.gpus_per_instance, 0, kIntMax); }},
};

constexpr Field<Distribution> kDistributionFields[] = {
    {"type", [](const Value& v, const std::string& p,
                Distribution& d) { return set_choice(v, p, d.type, kDistributionTypes); }},
    {"process_count_per_instance",
     [](const Value& v, const std::string& p, Distribution& d) {
       return set_int(v, p, d.process_count_per_instance, 1, kIntMax);
     }},
};

constexpr Field<Input> kInputFields[] = {
    {"type", [](const Value& v, const std::string& p, Input& i) { return set_choice(v, p, i.type, kDataTypes); }},
    {"path", [](const Value& v, const std::string& p, Input& i) { return set_string(v, p, i.path); }},
    {"mode", [](const Value& v, const std::string& p, Input& i) { return set_choice(v, p, i.mode, kInputModes); }},
};

constexpr Field<Output> kOutputFields[] = {
    {"type", [](const Value& v, const std::string& p, Output& o) { return set_choice(v, p, o.type, kDataTypes); }},
    {"path", [](const Value& v, const std::string& p, Output& o) { return set_string(v, p, o.path); }},
    {"mode", [](const Value& v, const std::string& p, Output& o) { return set_choice(v, p, o.mode, kOutputModes); }},
};

// inputs and outputs: a map of names to {type, path, mode}, each with a path.
template <typename T, std::size_t N>
Status set_data(const Value& v, const std::string& path, std::map<std::string, T>& out, const Field<T> (&fields)[N]) {
  COHORT_TRY(expect_map(v, path, "a map of names to {type, path, mode}"));
  for (const auto& [name, item] : v.map) {
    const std::string item_path = detail::join_path(path, name);
    if (!is_data_name(name)) {
      return spec_error(item_path, "a name is lowercase letters, digits and '_', not starting with a digit");
    }
    COHORT_TRY(expect_map(item, item_path, "a map of type, path and mode"));
    T data;
    COHORT_TRY(read_fields<T>(item, item_path, fields, data));
    if (data.path.empty()) return spec_error(item_path, "missing required field \"path\"");
    out.emplace(name, std::move(data));
  }
  return {};
}

// environment_variables and tags: names to any scalar, kept as written ("0.0010" stays so).
Status set_string_map(const Value& v, const std::string& path, std::map<std::string, std::string>& out,
                      bool (*valid_name)(std::string_view), std::string_view name_rule) {
  COHORT_TRY(expect_map(v, path, "a map of names to values"));
  for (const auto& [name, value] : v.map) {
    const std::string item_path = detail::join_path(path, name);
    if (!valid_name(name)) return spec_error(item_path, name_rule);
    if (value.kind != Value::Kind::kScalar)
      return expected(item_path, R"(a string (write "" for an empty one))", value);
    if (value.text.find('\0') != std::string::npos) return spec_error(item_path, "must not contain a NUL character");
    out.emplace(name, value.text);
  }
  return {};
}

constexpr Field<Checkpoint> kCheckpointFields[] = {
    {"dir", [](const Value& v, const std::string& p, Checkpoint& c) { return set_string(v, p, c.dir); }},
    {"keep_last",
     [](const Value& v, const std::string& p, Checkpoint& c) { return set_int(v, p, c.keep_last, 1, kIntMax); }},
};

constexpr Field<Retries> kRetryFields[] = {
    {"user_error",
     [](const Value& v, const std::string& p, Retries& r) { return set_int(v, p, r.user_error, 0, kIntMax); }},
    {"infrastructure",
     [](const Value& v, const std::string& p, Retries& r) { return set_int(v, p, r.infrastructure, 0, kIntMax); }},
    {"preemption",
     [](const Value& v, const std::string& p, Retries& r) { return set_int(v, p, r.preemption, 0, kIntMax); }},
};

constexpr Field<Limits> kLimitFields[] = {
    {"timeout",
     [](const Value& v, const std::string& p, Limits& l) -> Status {
       COHORT_ASSIGN_OR_RETURN(l.timeout_seconds, detail::read_duration(v, p));
       return {};
     }},
    {"progress_timeout",
     [](const Value& v, const std::string& p, Limits& l) -> Status {
       COHORT_ASSIGN_OR_RETURN(l.progress_timeout_seconds, detail::read_duration(v, p));
       return {};
     }},
};

constexpr Field<Preemption> kPreemptionFields[] = {
    {"signal",
     [](const Value& v, const std::string& p, Preemption& r) -> Status {
       COHORT_ASSIGN_OR_RETURN(const std::size_t i, detail::read_choice(v, p, kNoticeSignals));
       r.signal = std::string(kNoticeSignals[i]);
       return {};
     }},
};

// A section of the spec that is a map of its own fields.
template <typename T, std::size_t N>
Status set_section(const Value& v, const std::string& path, T& out, const Field<T> (&fields)[N]) {
  COHORT_TRY(expect_map(v, path, "a map"));
  return read_fields<T>(v, path, fields, out);
}

bool any_name(std::string_view s) {
  return !s.empty();
}

constexpr Field<JobSpec> kJobFields[] = {
    // $schema and type are accepted so that an Azure ML command job file reads as it is.
    {"$schema", [](const Value& v, const std::string& p, JobSpec&) { return detail::read_string(v, p).status(); }},
    {"type",
     [](const Value& v, const std::string& p, JobSpec&) {
       static constexpr std::string_view kCommand[] = {"command"};
       return detail::read_choice(v, p, kCommand).status();
     }},
    {"name",
     [](const Value& v, const std::string& p, JobSpec& s) -> Status {
       COHORT_TRY(set_string(v, p, s.name));
       if (is_name(*s.name, "-_.", 63)) return {};
       return expected(p, "1 to 63 of a-z, 0-9, '-', '_', '.', starting with a letter or digit", v);
     }},
    {"display_name", [](const Value& v, const std::string& p, JobSpec& s) { return set_string(v, p, s.display_name); }},
    {"experiment_name",
     [](const Value& v, const std::string& p, JobSpec& s) { return set_string(v, p, s.experiment_name); }},
    {"description", [](const Value& v, const std::string& p, JobSpec& s) { return set_string(v, p, s.description); }},
    {"tags", [](const Value& v, const std::string& p,
                JobSpec& s) { return set_string_map(v, p, s.tags, any_name, "a tag name is not empty"); }},
    {"command", [](const Value& v, const std::string& p, JobSpec& s) { return set_string(v, p, s.command); }},
    {"code", [](const Value& v, const std::string& p, JobSpec& s) { return set_string(v, p, s.code); }},
    {"environment",
     [](const Value& v, const std::string& p, JobSpec& s) { return set_environment(v, p, s.environment); }},
    {"compute",
     [](const Value& v, const std::string& p, JobSpec& s) -> Status {
       COHORT_TRY(set_string(v, p, s.compute));
       if (s.compute->starts_with("azureml:")) s.compute->erase(0, 8);  // Azure ML's spelling of a cluster
       if (is_name(*s.compute, "-", 32)) return {};
       return expected(p, "a cluster name (1 to 32 of a-z, 0-9, '-', starting with a letter or digit)", v);
     }},
    {"priority",
     [](const Value& v, const std::string& p, JobSpec& s) { return set_int(v, p, s.priority, -1000, 1000); }},
    {"resources",
     [](const Value& v, const std::string& p, JobSpec& s) { return set_section(v, p, s.resources, kResourceFields); }},
    {"distribution", [](const Value& v, const std::string& p,
                        JobSpec& s) { return set_section(v, p, s.distribution, kDistributionFields); }},
    {"environment_variables",
     [](const Value& v, const std::string& p, JobSpec& s) {
       return set_string_map(v, p, s.environment_variables, is_env_name,
                             "a variable name is letters, digits and '_', not starting with a digit");
     }},
    {"inputs", [](const Value& v, const std::string& p, JobSpec& s) { return set_data(v, p, s.inputs, kInputFields); }},
    {"outputs",
     [](const Value& v, const std::string& p, JobSpec& s) { return set_data(v, p, s.outputs, kOutputFields); }},
    {"checkpoint",
     [](const Value& v, const std::string& p, JobSpec& s) -> Status {
       Checkpoint c;
       COHORT_TRY(set_section(v, p, c, kCheckpointFields));
       if (c.dir.empty()) return spec_error(p, "missing required field \"dir\"");
       s.checkpoint = std::move(c);
       return {};
     }},
    {"retries",
     [](const Value& v, const std::string& p, JobSpec& s) { return set_section(v, p, s.retries, kRetryFields); }},
    {"limits",
     [](const Value& v, const std::string& p, JobSpec& s) { return set_section(v, p, s.limits, kLimitFields); }},
    {"preemption", [](const Value& v, const std::string& p,
                      JobSpec& s) { return set_section(v, p, s.preemption, kPreemptionFields); }},
};

Result<JobSpec> spec_from_value(const Value& root) {
  if (root.kind == Value::Kind::kNull) return spec_error("", "the spec is empty; it needs at least a command");
  COHORT_TRY(expect_map(root, "", "a map of fields at the top level (command: ..., compute: ...)"));
  JobSpec spec;
  COHORT_TRY(read_fields<JobSpec>(root, "", kJobFields, spec, kNestedFields));
  if (spec.command.empty()) return spec_error("", "missing required field \"command\" (the command each process runs)");
  return spec;
}

// The boundary: nothing below throws on purpose, but allocation can.
template <typename Source, typename Convert>
Result<JobSpec> parse(const Source& source, Convert convert) {
  try {
    COHORT_ASSIGN_OR_RETURN(const Value root, convert(source));
    return spec_from_value(root);
  } catch (const std::exception& e) {
    return internal_error(std::string("job spec: ") + e.what());
  }
}

}  // namespace

Result<JobSpec> parse_job_spec(std::string_view yaml_text) {
  return parse(yaml_text, detail::value_from_yaml);
}

Result<JobSpec> from_json(const nlohmann::json& json) {
  return parse(json, detail::value_from_json);
}

}  // namespace cohort::spec
