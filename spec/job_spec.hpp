// A job spec: what `cohort job submit FILE.yaml` runs, shaped like Azure ML's command job.
//
//   command: ./train --epochs 3
//   compute: cpu-cluster
//   resources: {instance_count: 2}
//   distribution: {type: pytorch, process_count_per_instance: 4}
//
// The spec is validated once, where it enters: `parse_job_spec` reports the first bad field (in
// file order) by its path and what was expected. The manager stores the normalized JSON of
// `to_json`; `from_json` reads it back through the same checks to exactly the same JobSpec.
// docs/job-spec.md is the reference of every field.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "cohort/status.hpp"

namespace cohort::spec {

enum class DistributionType { kNone, kMpi, kPytorch };
enum class ImageKind { kHost, kOci, kDir };
enum class Runtime { kNone, kRunc, kAuto };  // kAuto: runc where the node can run it, else none
enum class DataType { kUriFolder, kUriFile };
enum class InputMode { kRoMount, kDownload };
enum class OutputMode { kRwMount, kUpload };

// Where the job's processes run: the host's own system, or a root filesystem from an OCI image
// layout or a directory, run by an OCI runtime.
struct Environment {
  ImageKind image = ImageKind::kHost;
  std::string image_path;  // kOci: the OCI image layout; kDir: the root filesystem; "" for kHost
  // Unless given: kAuto for kHost (a container where the node can run one, plain processes where it
  // cannot), kRunc for the other images (which need it).
  Runtime runtime = Runtime::kAuto;
  std::uint64_t shm_size_bytes = 0;  // size of /dev/shm; 0: the runtime's default
  bool operator==(const Environment&) const = default;
};

struct Resources {
  int instance_count = 1;     // nodes, allocated all at once
  int gpus_per_instance = 0;  // GPUs the job needs on each node (a Cohort addition to Azure's shape)
  bool operator==(const Resources&) const = default;
};

struct Distribution {
  DistributionType type = DistributionType::kNone;
  int process_count_per_instance = 1;
  bool operator==(const Distribution&) const = default;
};

struct Input {
  DataType type = DataType::kUriFolder;
  std::string path;  // as written
  InputMode mode = InputMode::kRoMount;
  bool operator==(const Input&) const = default;
};

struct Output {
  DataType type = DataType::kUriFolder;
  std::string path;  // as written
  OutputMode mode = OutputMode::kRwMount;
  bool operator==(const Output&) const = default;
};

struct Checkpoint {
  std::string dir;    // as written
  int keep_last = 2;  // complete checkpoints kept; older ones are deleted
  bool operator==(const Checkpoint&) const = default;
};

// How many times a job is tried again after a failure of each cause.
struct Retries {
  int user_error = 0;  // the command itself failed: running it again rarely helps
  int infrastructure = 3;
  int preemption = 100;  // low-priority nodes are taken back often; resuming is the point
  bool operator==(const Retries&) const = default;
};

// What a job is told when its node gets a preemption notice: always the notice file; this signal
// too unless it is "none". libcohort catches it; a program that does not should say none.
struct Preemption {
  std::string signal = "SIGUSR1";  // "SIGUSR1", "SIGUSR2" or "none"
  bool operator==(const Preemption&) const = default;
};

struct Limits {
  std::int64_t timeout_seconds = 0;           // wall time of an attempt; 0: none
  std::int64_t progress_timeout_seconds = 0;  // longest time without reported progress; 0: none
  bool operator==(const Limits&) const = default;
};

struct JobSpec {
  std::optional<std::string> name;  // [a-z0-9][a-z0-9-_.]{0,62}
  std::optional<std::string> display_name;
  std::optional<std::string> experiment_name;
  std::optional<std::string> description;
  std::map<std::string, std::string> tags;
  std::string command;              // required
  std::optional<std::string> code;  // a directory as written (relative to the spec file's folder)
  Environment environment;
  std::optional<std::string> compute;  // cluster name ("azureml:" dropped); the CLI may give it instead
  int priority = 0;                    // -1000..1000, higher runs first
  Resources resources;
  Distribution distribution;
  std::map<std::string, std::string> environment_variables;
  std::map<std::string, Input> inputs;  // names [a-z_][a-z0-9_]*
  std::map<std::string, Output> outputs;
  std::optional<Checkpoint> checkpoint;
  Retries retries;
  Limits limits;
  Preemption preemption;
  bool operator==(const JobSpec&) const = default;
};

// Parses and validates a spec in YAML; never throws. Errors are kInvalidArgument with a message
// naming the first bad field: `job spec: resources.instance_count: expected an integer >= 1, got
// "two"`; YAML syntax errors give the line and column.
Result<JobSpec> parse_job_spec(std::string_view yaml_text);

// The normalized JSON form: every field, defaults written out, absent optional fields left out.
nlohmann::json to_json(const JobSpec& spec);
// Reads `to_json`'s form (or any JSON of the YAML's shape) with the same checks as parse_job_spec.
// For every spec s that parse_job_spec returns, from_json(to_json(s)) == s.
Result<JobSpec> from_json(const nlohmann::json& json);

// The names the spec uses for enum values ("pytorch", "runc", "uri_folder", ...).
std::string_view to_string(DistributionType type);
std::string_view to_string(Runtime runtime);
std::string_view to_string(DataType type);
std::string_view to_string(InputMode mode);
std::string_view to_string(OutputMode mode);
// "host", "oci:PATH" or "dir:PATH".
std::string image_reference(const Environment& environment);

}  // namespace cohort::spec
