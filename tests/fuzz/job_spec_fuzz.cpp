// libFuzzer target for the job spec parser and validator (scripts/fuzz-job-spec runs it).
// Whatever the input, parse_job_spec must return rather than crash or hang, refuse only with an
// InvalidArgument that says "job spec: ...", and a spec it accepts must survive the trip through
// its stored JSON (as an object and as text) unchanged.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string_view>

#include "spec/job_spec.hpp"

namespace {

[[noreturn]] void fail(const char* what, std::string_view detail) {
  std::fprintf(stderr, "job_spec_fuzz: %s: %.*s\n", what, static_cast<int>(detail.size()), detail.data());
  std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using cohort::spec::JobSpec;
  const std::string_view yaml(reinterpret_cast<const char*>(data), size);
  const cohort::Result<JobSpec> spec = cohort::spec::parse_job_spec(yaml);
  if (!spec.ok()) {
    const cohort::Status& s = spec.status();
    if (s.code() != cohort::Code::kInvalidArgument || !s.message().starts_with("job spec: ")) {
      fail("a refusal that is not InvalidArgument \"job spec: ...\"", s.to_string());
    }
    return 0;
  }
  const nlohmann::json json = cohort::spec::to_json(*spec);
  const cohort::Result<JobSpec> back = cohort::spec::from_json(json);
  if (!back.ok()) fail("from_json refused to_json's output", back.status().to_string());
  if (!(*back == *spec)) fail("to_json -> from_json changed the spec", json.dump());
  if (cohort::spec::to_json(*back) != json) fail("to_json is not stable", json.dump());
  // The manager stores the JSON as text: dumping must not throw and must read back the same.
  const std::string text = json.dump();
  const cohort::Result<JobSpec> reread = cohort::spec::from_json(nlohmann::json::parse(text));
  if (!reread.ok() || !(*reread == *spec)) fail("the JSON text did not read back to the same spec", text);
  return 0;
}
