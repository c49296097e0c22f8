// The normalized JSON form of a job spec, which the manager stores: every field written out, so
// that a stored job does not change meaning when a default changes later.
#include "spec/job_spec.hpp"

namespace cohort::spec {

std::string_view to_string(DistributionType type) {
  switch (type) {
    case DistributionType::kNone:
      return "none";
    case DistributionType::kMpi:
      return "mpi";
    case DistributionType::kPytorch:
      return "pytorch";
  }
  return "none";
}

std::string_view to_string(Runtime runtime) {
  return runtime == Runtime::kRunc ? "runc" : runtime == Runtime::kAuto ? "auto" : "none";
}
std::string_view to_string(DataType type) {
  return type == DataType::kUriFile ? "uri_file" : "uri_folder";
}
std::string_view to_string(InputMode mode) {
  return mode == InputMode::kDownload ? "download" : "ro_mount";
}
std::string_view to_string(OutputMode mode) {
  return mode == OutputMode::kUpload ? "upload" : "rw_mount";
}

std::string image_reference(const Environment& environment) {
  switch (environment.image) {
    case ImageKind::kHost:
      return "host";
    case ImageKind::kOci:
      return "oci:" + environment.image_path;
    case ImageKind::kDir:
      return "dir:" + environment.image_path;
  }
  return "host";
}

nlohmann::json to_json(const JobSpec& spec) {
  nlohmann::json j = nlohmann::json::object();
  if (spec.name) j["name"] = *spec.name;
  if (spec.display_name) j["display_name"] = *spec.display_name;
  if (spec.experiment_name) j["experiment_name"] = *spec.experiment_name;
  if (spec.description) j["description"] = *spec.description;
  j["tags"] = nlohmann::json::object();
  for (const auto& [key, value] : spec.tags)
    j["tags"][key] = value;
  j["command"] = spec.command;
  if (spec.code) j["code"] = *spec.code;
  j["environment"] = {{"image", image_reference(spec.environment)},
                      {"runtime", to_string(spec.environment.runtime)},
                      {"shm_size", spec.environment.shm_size_bytes}};
  if (spec.compute) j["compute"] = *spec.compute;
  j["priority"] = spec.priority;
  j["resources"] = {{"instance_count", spec.resources.instance_count},
                    {"gpus_per_instance", spec.resources.gpus_per_instance}};
  j["distribution"] = {{"type", to_string(spec.distribution.type)},
                       {"process_count_per_instance", spec.distribution.process_count_per_instance}};
  j["environment_variables"] = nlohmann::json::object();
  for (const auto& [key, value] : spec.environment_variables)
    j["environment_variables"][key] = value;
  j["inputs"] = nlohmann::json::object();
  for (const auto& [name, in] : spec.inputs) {
    j["inputs"][name] = {{"type", to_string(in.type)}, {"path", in.path}, {"mode", to_string(in.mode)}};
  }
  j["outputs"] = nlohmann::json::object();
  for (const auto& [name, out] : spec.outputs) {
    j["outputs"][name] = {{"type", to_string(out.type)}, {"path", out.path}, {"mode", to_string(out.mode)}};
  }
  if (spec.checkpoint) j["checkpoint"] = {{"dir", spec.checkpoint->dir}, {"keep_last", spec.checkpoint->keep_last}};
  j["retries"] = {{"user_error", spec.retries.user_error},
                  {"infrastructure", spec.retries.infrastructure},
                  {"preemption", spec.retries.preemption}};
  j["limits"] = {{"timeout", spec.limits.timeout_seconds}, {"progress_timeout", spec.limits.progress_timeout_seconds}};
  j["preemption"] = {{"signal", spec.preemption.signal}};
  return j;
}

}  // namespace cohort::spec
