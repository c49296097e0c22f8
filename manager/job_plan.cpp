#include "job_plan.hpp"

#include <nlohmann/json.hpp>

#include "spec/job_spec.hpp"

namespace cohort::manager {

namespace {

using json = nlohmann::json;

std::int64_t seconds_of(const json& j, const char* section, const char* key) {
  if (!j.contains(section) || !j[section].is_object()) return 0;
  const json& v = j[section].value(key, json());
  return v.is_number() ? v.get<std::int64_t>() : 0;
}

int int_of(const json& j, const char* section, const char* key, int fallback) {
  if (!j.contains(section) || !j[section].is_object()) return fallback;
  const json& v = j[section].value(key, json());
  return v.is_number_integer() ? v.get<int>() : fallback;
}

}  // namespace

Result<JobPlan> plan_from_yaml(std::string_view yaml, std::string& spec_json) {
  COHORT_ASSIGN_OR_RETURN(const spec::JobSpec parsed, spec::parse_job_spec(yaml));
  spec_json = spec::to_json(parsed).dump();
  return plan_from_json(spec_json);
}

Result<JobPlan> plan_from_json(const std::string& spec_json) {
  json j;
  try {
    j = json::parse(spec_json);
  } catch (const json::exception& e) {
    return Status(Code::kDataLoss, std::string("a stored job spec is not JSON: ") + e.what());
  }
  COHORT_TRY(spec::from_json(j).status());  // the same validation as at submit
  JobPlan p;
  p.name = j.value("name", "");
  p.cluster = j.value("compute", "");
  p.command = j.value("command", "");
  p.priority = j.value("priority", 0);
  p.has_code = j.contains("code") && j["code"].is_string() && !j["code"].get<std::string>().empty();
  p.instance_count = int_of(j, "resources", "instance_count", 1);
  p.processes_per_node = int_of(j, "distribution", "process_count_per_instance", 1);
  p.gpus_per_instance = int_of(j, "resources", "gpus_per_instance", 0);
  if (j.contains("distribution") && j["distribution"].is_object()) {
    p.distribution = j["distribution"].value("type", "none");
  }
  if (j.contains("environment_variables") && j["environment_variables"].is_object()) {
    for (const auto& [k, v] : j["environment_variables"].items())
      p.environment[k] = v.is_string() ? v.get<std::string>() : v.dump();
  }
  p.timeout_s = seconds_of(j, "limits", "timeout");
  p.progress_timeout_s = seconds_of(j, "limits", "progress_timeout");
  p.retries_user_error = int_of(j, "retries", "user_error", 0);
  p.retries_infrastructure = int_of(j, "retries", "infrastructure", 3);
  p.retries_preemption = int_of(j, "retries", "preemption", 100);
  if (j.contains("preemption") && j["preemption"].is_object()) {
    const std::string sig = j["preemption"].value("signal", "SIGUSR1");
    p.notice_signal = sig == "none" ? "" : sig;
  }
  if (j.contains("environment") && j["environment"].is_object()) {
    const json& e = j["environment"];
    p.image = e.value("image", "host");
    p.runtime = e.value("runtime", "auto");
    p.shm_size_bytes = e.value("shm_size", std::int64_t{0});
  }
  for (const char* section : {"inputs", "outputs"}) {
    if (!j.contains(section) || !j[section].is_object()) continue;
    const bool input = std::string_view(section) == "inputs";
    for (const auto& [name, v] : j[section].items()) {
      if (!v.is_object() || !v.contains("path")) continue;
      p.mounts.push_back({v["path"].get<std::string>(), std::string("/") + section + "/" + name, input,
                          v.value("type", "uri_folder") == "uri_file"});
    }
  }
  if (j.contains("checkpoint") && j["checkpoint"].is_object() && j["checkpoint"].contains("dir")) {
    p.mounts.push_back({j["checkpoint"]["dir"].get<std::string>(), "/checkpoints", false});
  }
  return p;
}

}  // namespace cohort::manager
