// The job spec parser: a full spec, defaults, one test per kind of error with its message,
// durations and sizes, the JSON round trip and the did-you-mean suggestions.
#include "spec/job_spec.hpp"

#include <gtest/gtest.h>

#include <string>

#include "spec/yaml_fields.hpp"

namespace cohort::spec {
namespace {

// The message of parsing `yaml`, which must be refused as InvalidArgument.
std::string error_of(std::string_view yaml) {
  const Result<JobSpec> spec = parse_job_spec(yaml);
  EXPECT_FALSE(spec.ok()) << "accepted: " << yaml;
  if (spec.ok()) return "";
  EXPECT_EQ(spec.status().code(), Code::kInvalidArgument);
  return spec.status().message();
}

JobSpec parse_ok(std::string_view yaml) {
  Result<JobSpec> spec = parse_job_spec(yaml);
  EXPECT_TRUE(spec.ok()) << spec.status().to_string();
  return spec.ok() ? std::move(spec).value() : JobSpec{};
}

constexpr std::string_view kFull = R"(
$schema: https://azuremlschemas.azureedge.net/latest/commandJob.schema.json
type: command
name: digits-train
display_name: Digits, 3 epochs
experiment_name: digits
description: |
  Trains the digits model.
tags: {team: ml, version: 2}
command: ./train --epochs 3 --data ${{inputs.digits}}
code: ./src
environment:
  image: oci:images/pytorch
  runtime: runc
  shm_size: 1g
compute: azureml:cpu-cluster
priority: 10
resources:
  instance_count: 2
  gpus_per_instance: 1
distribution:
  type: pytorch
  process_count_per_instance: 4
environment_variables:
  OMP_NUM_THREADS: 4
  LR: 0.0010
  NAME: "digits"
  EMPTY: ""
inputs:
  digits: {type: uri_folder, path: ./data, mode: ro_mount}
  labels: {type: uri_file, path: /data/labels.csv, mode: download}
outputs:
  model: {type: uri_folder, path: ./out}
checkpoint: {dir: /ckpt, keep_last: 3}
retries: {user_error: 1, infrastructure: 5, preemption: 7}
limits: {timeout: 2h, progress_timeout: 600}
preemption: {signal: SIGUSR2}
)";

TEST(JobSpecTest, ParsesAFullSpec) {
  const JobSpec s = parse_ok(kFull);
  EXPECT_EQ(s.name, "digits-train");
  EXPECT_EQ(s.display_name, "Digits, 3 epochs");
  EXPECT_EQ(s.experiment_name, "digits");
  EXPECT_EQ(s.description, "Trains the digits model.\n");
  EXPECT_EQ(s.tags, (std::map<std::string, std::string>{{"team", "ml"}, {"version", "2"}}));
  EXPECT_EQ(s.command, "./train --epochs 3 --data ${{inputs.digits}}");
  EXPECT_EQ(s.code, "./src");
  EXPECT_EQ(s.environment, (Environment{ImageKind::kOci, "images/pytorch", Runtime::kRunc, 1ULL << 30}));
  EXPECT_EQ(s.compute, "cpu-cluster");  // Azure ML's "azureml:" prefix is dropped
  EXPECT_EQ(s.priority, 10);
  EXPECT_EQ(s.resources, (Resources{2, 1}));
  EXPECT_EQ(s.distribution, (Distribution{DistributionType::kPytorch, 4}));
  // Scalars keep their text as written: 0.0010 is not turned into 0.001.
  const std::map<std::string, std::string> env = {
      {"OMP_NUM_THREADS", "4"}, {"LR", "0.0010"}, {"NAME", "digits"}, {"EMPTY", ""}};
  EXPECT_EQ(s.environment_variables, env);
  ASSERT_EQ(s.inputs.size(), 2U);
  EXPECT_EQ(s.inputs.at("digits"), (Input{DataType::kUriFolder, "./data", InputMode::kRoMount}));
  EXPECT_EQ(s.inputs.at("labels"), (Input{DataType::kUriFile, "/data/labels.csv", InputMode::kDownload}));
  EXPECT_EQ(s.outputs.at("model"), (Output{DataType::kUriFolder, "./out", OutputMode::kRwMount}));
  EXPECT_EQ(s.checkpoint, (Checkpoint{"/ckpt", 3}));
  EXPECT_EQ(s.retries, (Retries{1, 5, 7}));
  EXPECT_EQ(s.limits, (Limits{7200, 600}));
  EXPECT_EQ(s.preemption.signal, "SIGUSR2");
}

TEST(JobSpecTest, OnlyACommandTakesEveryDefault) {
  const JobSpec s = parse_ok("command: echo hi\n");
  JobSpec want;
  want.command = "echo hi";
  EXPECT_EQ(s, want);
  EXPECT_FALSE(s.name || s.code || s.compute || s.checkpoint);
  EXPECT_EQ(s.environment, (Environment{ImageKind::kHost, "", Runtime::kAuto, 0}));
  EXPECT_EQ(s.resources, (Resources{1, 0}));
  EXPECT_EQ(s.distribution, (Distribution{DistributionType::kNone, 1}));
  EXPECT_EQ(s.retries, (Retries{0, 3, 100}));
  EXPECT_EQ(s.limits, (Limits{0, 0}));
  EXPECT_EQ(s.preemption.signal, "SIGUSR1");
}

TEST(JobSpecTest, ThePreemptionSignalIsOneTheJobCanCatch) {
  EXPECT_EQ(parse_ok("command: x\npreemption: {signal: none}\n").preemption.signal, "none");
  EXPECT_EQ(error_of("command: x\npreemption: {signal: SIGKILL}\n"),
            "job spec: preemption.signal: expected one of SIGUSR1, SIGUSR2, none, got \"SIGKILL\"");
}

TEST(JobSpecTest, EmptyValuesCountAsAbsent) {
  const JobSpec s = parse_ok("command: x\ncode:\ncheckpoint:\nresources:\n  instance_count:\n");
  EXPECT_FALSE(s.code || s.checkpoint);
  EXPECT_EQ(s.resources.instance_count, 1);
}

TEST(JobSpecTest, EnvironmentForms) {
  EXPECT_EQ(parse_ok("command: x\nenvironment: host\n").environment, Environment{});
  EXPECT_EQ(parse_ok("command: x\nenvironment: dir:/srv/rootfs\n").environment,
            (Environment{ImageKind::kDir, "/srv/rootfs", Runtime::kRunc, 0}));
  EXPECT_EQ(parse_ok("command: x\nenvironment: {runtime: runc, shm_size: 512m}\n").environment,
            (Environment{ImageKind::kHost, "", Runtime::kRunc, 512ULL << 20}));
  EXPECT_EQ(error_of("command: x\nenvironment: {image: 'oci:/i', runtime: none}\n"),
            "job spec: environment.runtime: expected runc for image \"oci:/i\" (only image host runs without one)");
  EXPECT_EQ(error_of("command: x\nenvironment: {image: 'dir:/r', runtime: auto}\n"),
            "job spec: environment.runtime: expected runc for image \"dir:/r\" (only image host runs without one)");
  EXPECT_EQ(parse_ok("command: x\nenvironment: {runtime: none}\n").environment,
            (Environment{ImageKind::kHost, "", Runtime::kNone, 0}));
  EXPECT_EQ(error_of("command: x\nenvironment: ubuntu:22.04\n"),
            "job spec: environment: expected \"host\", \"oci:PATH\" (an OCI image layout) or \"dir:PATH\" (a root "
            "filesystem), got \"ubuntu:22.04\"");
  EXPECT_EQ(error_of("command: x\nenvironment: {image: 'oci:'}\n"),
            "job spec: environment.image: expected \"host\", \"oci:PATH\" (an OCI image layout) or \"dir:PATH\" (a "
            "root filesystem), got \"oci:\"");
  EXPECT_EQ(error_of("command: x\nenvironment: [host]\n"),
            "job spec: environment: expected \"host\", \"oci:PATH\", \"dir:PATH\" or a map of image, runtime and "
            "shm_size, got a list");
}

TEST(JobSpecTest, ReportsTheBadFieldByItsPath) {
  EXPECT_EQ(error_of("command: x\nresources:\n  instance_count: two\n"),
            "job spec: resources.instance_count: expected an integer >= 1, got \"two\"");
  EXPECT_EQ(error_of("command: x\nresources: {instance_count: 0}\n"),
            "job spec: resources.instance_count: expected an integer >= 1, got 0");
  EXPECT_EQ(error_of("command: x\nresources: {instance_count: 2.5}\n"),
            "job spec: resources.instance_count: expected an integer >= 1, got 2.5");
  EXPECT_EQ(error_of("command: x\nresources: {instance_count: 99999999999999999999}\n"),
            "job spec: resources.instance_count: expected an integer >= 1, got 99999999999999999999");
  EXPECT_EQ(error_of("command: x\nresources: {gpus_per_instance: -1}\n"),
            "job spec: resources.gpus_per_instance: expected an integer >= 0, got -1");
  EXPECT_EQ(error_of("command: x\ndistribution: {type: horovod}\n"),
            "job spec: distribution.type: expected one of none, mpi, pytorch, got \"horovod\"");
  EXPECT_EQ(error_of("command: x\ndistribution: {process_count_per_instance: -1}\n"),
            "job spec: distribution.process_count_per_instance: expected an integer >= 1, got -1");
  EXPECT_EQ(error_of("command: x\npriority: 1001\n"),
            "job spec: priority: expected an integer from -1000 to 1000, got 1001");
  EXPECT_EQ(error_of("command: x\nretries: {preemption: -1}\n"),
            "job spec: retries.preemption: expected an integer >= 0, got -1");
  EXPECT_EQ(error_of("command: x\ncheckpoint: {keep_last: 0, dir: /c}\n"),
            "job spec: checkpoint.keep_last: expected an integer >= 1, got 0");
  EXPECT_EQ(error_of("command: x\ncheckpoint: {keep_last: 1}\n"),
            "job spec: checkpoint: missing required field \"dir\"");
  EXPECT_EQ(error_of("command: x\nresources: 2\n"), "job spec: resources: expected a map, got 2");
  EXPECT_EQ(error_of("command: ''\n"), "job spec: command: expected a non-empty string, got \"\"");
  EXPECT_EQ(error_of("command: [a, b]\n"), "job spec: command: expected a non-empty string, got a list");
}

TEST(JobSpecTest, ChecksNames) {
  EXPECT_EQ(error_of("command: x\nname: My Job\n"),
            "job spec: name: expected 1 to 63 of a-z, 0-9, '-', '_', '.', starting with a letter or digit, got \"My "
            "Job\"");
  EXPECT_TRUE(parse_job_spec("command: x\nname: " + std::string(63, 'a') + "\n").ok());
  EXPECT_FALSE(parse_job_spec("command: x\nname: " + std::string(64, 'a') + "\n").ok());
  EXPECT_EQ(error_of("command: x\ncompute: CPU\n"),
            "job spec: compute: expected a cluster name (1 to 32 of a-z, 0-9, '-', starting with a letter or digit), "
            "got \"CPU\"");
  EXPECT_EQ(error_of("command: x\ninputs: {Data: {path: /d}}\n"),
            "job spec: inputs.Data: a name is lowercase letters, digits and '_', not starting with a digit");
  EXPECT_EQ(error_of("command: x\ninputs: {data: {type: uri_folder}}\n"),
            "job spec: inputs.data: missing required field \"path\"");
  EXPECT_EQ(error_of("command: x\noutputs: {model: /out}\n"),
            "job spec: outputs.model: expected a map of type, path and mode, got \"/out\"");
  EXPECT_EQ(error_of("command: x\noutputs: {model: {path: /o, mode: ro_mount}}\n"),
            "job spec: outputs.model.mode: expected one of rw_mount, upload, got \"ro_mount\" (did you mean "
            "\"rw_mount\"?)");
  EXPECT_EQ(
      error_of("command: x\nenvironment_variables: {1X: a}\n"),
      "job spec: environment_variables.1X: a variable name is letters, digits and '_', not starting with a digit");
  EXPECT_EQ(error_of("command: x\nenvironment_variables: {X: }\n"),
            "job spec: environment_variables.X: expected a string (write \"\" for an empty one), got nothing");
  EXPECT_EQ(error_of("command: x\nenvironment_variables: {X: [1]}\n"),
            "job spec: environment_variables.X: expected a string (write \"\" for an empty one), got a list");
}

TEST(JobSpecTest, RefusesWhatIsNotASpec) {
  EXPECT_EQ(error_of(""), "job spec: the spec is empty; it needs at least a command");
  EXPECT_EQ(error_of("hello"),
            "job spec: expected a map of fields at the top level (command: ..., compute: ...), got \"hello\"");
  EXPECT_EQ(error_of("- command: x\n"),
            "job spec: expected a map of fields at the top level (command: ..., compute: ...), got a list");
  EXPECT_EQ(error_of("name: a\n"), "job spec: missing required field \"command\" (the command each process runs)");
  EXPECT_EQ(error_of("command: a\n---\ncommand: b\n"),
            "job spec: expected one YAML document, found a second at line 2 (remove the \"---\" separators)");
  EXPECT_EQ(error_of("command: a\ncommand: b\n"), "job spec: field \"command\" appears twice");
  EXPECT_EQ(error_of("command: a\nresources: {instance_count: 1, instance_count: 2}\n"),
            "job spec: resources: field \"instance_count\" appears twice");
  EXPECT_EQ(error_of("type: sweep\ncommand: a\n"), "job spec: type: expected one of command, got \"sweep\"");
  EXPECT_EQ(error_of("command: \"\\0\"\n"), "job spec: command: must not contain a NUL character");
  EXPECT_EQ(error_of("command: \"\\udc00\"\n"),
            "job spec: YAML syntax error at line 1, column 17: invalid unicode: 56320");  // a lone surrogate
  EXPECT_EQ(error_of(std::string("command: \xff\n")), "job spec: the file is not valid UTF-8 (byte 10)");
  EXPECT_EQ(error_of("command: x\n[a]: b\n"), "job spec: a field name must be plain text, not a map or a list");
}

TEST(JobSpecTest, SyntaxErrorsGiveLineAndColumn) {
  EXPECT_EQ(error_of("command: x\nresources:\n  instance_count: [1\n"),
            "job spec: YAML syntax error at line 4, column 1: end of sequence flow not found");
  EXPECT_EQ(error_of("command: x\n  bad: indent\n"),
            "job spec: YAML syntax error at line 2, column 6: illegal map value");
  // yaml-cpp 0.7 alone loops forever on a ',' outside brackets (found by the fuzzer).
  EXPECT_EQ(error_of(",1d1rI\n"),
            "job spec: YAML syntax error at line 1, column 1: unexpected ',' outside [...] or {...}");
  EXPECT_EQ(error_of("\"command: x\",\n"),
            "job spec: YAML syntax error at line 1, column 13: unexpected ',' outside [...] or {...}");
  EXPECT_EQ(error_of("command: x\n---\n ,"),
            "job spec: expected one YAML document, found a second at line 2 (remove the \"---\" separators)");
}

TEST(JobSpecTest, BoundsNestingAndAliases) {
  std::string deep = "command: x\nextra: ";
  for (int i = 0; i < 100; ++i)
    deep += "[";
  EXPECT_NE(error_of(deep + std::string(100, ']')).find("nested deeper than 32 levels"), std::string::npos);
  EXPECT_EQ(error_of("command: x\nextra: &a [*a]\n"),
            "job spec: extra[0]: an alias refers to the value that contains it");
  // 10^8 values from a few hundred bytes: stopped by counting, while yaml-cpp still reads.
  std::string bomb = "command: x\na: &a [x, x, x, x, x, x, x, x, x, x]\n";
  for (char c = 'b'; c <= 'i'; ++c) {
    bomb += std::string(1, c) + ": &" + c + " [";
    for (int i = 0; i < 10; ++i)
      bomb += std::string(i ? ", *" : "*") + static_cast<char>(c - 1);
    bomb += "]\n";
  }
  EXPECT_NE(error_of(bomb).find("more than 100000 values"), std::string::npos);
  // Aliases within the bound are read as copies.
  const JobSpec s = parse_ok("command: x\ninputs:\n  a: &in {path: /d, mode: download}\n  b: *in\n");
  EXPECT_EQ(s.inputs.at("a"), s.inputs.at("b"));
}

TEST(JobSpecTest, SuggestsTheFieldMeant) {
  EXPECT_EQ(error_of("comand: ./train\n"), "job spec: unknown field \"comand\" (did you mean \"command\"?)");
  EXPECT_EQ(error_of("command: x\nenviroment: host\n"),
            "job spec: unknown field \"enviroment\" (did you mean \"environment\"?)");
  EXPECT_EQ(error_of("command: x\nresources: {instnce_count: 2}\n"),
            "job spec: resources: unknown field \"instnce_count\" (did you mean \"instance_count\"?)");
  EXPECT_EQ(error_of("command: x\ninstance_count: 2\n"),
            "job spec: unknown field \"instance_count\" (did you mean \"resources.instance_count\"?)");
  EXPECT_EQ(error_of("command: x\ntimeout: 60\n"),
            "job spec: unknown field \"timeout\" (did you mean \"limits.timeout\"?)");
  EXPECT_EQ(error_of("command: x\ndistribution: {type: pytroch}\n"),
            "job spec: distribution.type: expected one of none, mpi, pytorch, got \"pytroch\" (did you mean "
            "\"pytorch\"?)");
  EXPECT_EQ(error_of("command: x\nlimits: {timeout: 1, bogus: 2}\n"),
            "job spec: limits: unknown field \"bogus\"; the fields here are timeout, progress_timeout");
}

TEST(JobSpecTest, ReportsTheFirstBadFieldInTheFile) {
  EXPECT_EQ(error_of("priority: x\ncomand: y\n"),
            "job spec: priority: expected an integer from -1000 to 1000, got \"x\"");
  EXPECT_EQ(error_of("comand: y\npriority: x\n"), "job spec: unknown field \"comand\" (did you mean \"command\"?)");
}

TEST(JobSpecTest, EditDistance) {
  EXPECT_EQ(detail::edit_distance("command", "command"), 0U);
  EXPECT_EQ(detail::edit_distance("comand", "command"), 1U);
  EXPECT_EQ(detail::edit_distance("comamnd", "command"), 1U);  // a transposition is one edit
  EXPECT_EQ(detail::edit_distance("Command", "command"), 0U);
  EXPECT_EQ(detail::edit_distance("", "abc"), 3U);
  constexpr std::string_view kNames[] = {"code", "command", "compute"};
  EXPECT_EQ(detail::nearest("cmd", kNames), "");
  EXPECT_EQ(detail::nearest("comput", kNames), "compute");
  EXPECT_EQ(detail::nearest("xyzzy", kNames), "");
}

Result<std::int64_t> duration(std::string_view yaml_scalar) {
  const Result<JobSpec> s = parse_job_spec("command: x\nlimits: {timeout: " + std::string(yaml_scalar) + "}\n");
  if (!s.ok()) return s.status();
  return s->limits.timeout_seconds;
}

TEST(JobSpecTest, Durations) {
  EXPECT_EQ(*duration("3600"), 3600);
  EXPECT_EQ(*duration("'3600'"), 3600);
  EXPECT_EQ(*duration("0"), 0);
  EXPECT_EQ(*duration("90s"), 90);
  EXPECT_EQ(*duration("10m"), 600);
  EXPECT_EQ(*duration("2h"), 7200);
  EXPECT_EQ(*duration("1d"), 86400);
  EXPECT_EQ(*duration("1h30m"), 5400);
  EXPECT_EQ(*duration("36500d"), 36500LL * 86400);
  const std::string what =
      "job spec: limits.timeout: expected a duration >= 0: seconds, or text like \"90s\", \"10m\", \"2h\", \"1d\", "
      "got ";
  EXPECT_EQ(duration("-5").status().message(), what + "-5");
  EXPECT_EQ(duration("ten").status().message(), what + "\"ten\"");
  EXPECT_EQ(duration("10x").status().message(), what + "\"10x\"");
  EXPECT_EQ(duration("1h30").status().message(), what + "\"1h30\"");
  EXPECT_EQ(duration("1.5h").status().message(), what + "\"1.5h\"");
  EXPECT_EQ(duration("m").status().message(), what + "\"m\"");
  EXPECT_EQ(duration("36700d").status().message(), "job spec: limits.timeout: longer than 100 years");
  EXPECT_EQ(duration("99999999999999999999999h").status().message(), "job spec: limits.timeout: longer than 100 years");
  EXPECT_EQ(duration("99999999999999999999999").status().message(), "job spec: limits.timeout: longer than 100 years");
}

TEST(JobSpecTest, Sizes) {
  const auto shm = [](std::string_view v) -> Result<std::uint64_t> {
    const Result<JobSpec> s = parse_job_spec("command: x\nenvironment: {shm_size: " + std::string(v) + "}\n");
    if (!s.ok()) return s.status();
    return s->environment.shm_size_bytes;
  };
  EXPECT_EQ(*shm("4096"), 4096U);
  EXPECT_EQ(*shm("64k"), 64U << 10);
  EXPECT_EQ(*shm("512M"), 512ULL << 20);
  EXPECT_EQ(*shm("1GiB"), 1ULL << 30);
  EXPECT_EQ(*shm("2gb"), 2ULL << 30);
  EXPECT_EQ(shm("1x").status().message(),
            "job spec: environment.shm_size: expected a size >= 0: bytes, or text like \"512m\", \"1g\", got \"1x\"");
  EXPECT_EQ(shm("2048t").status().message(), "job spec: environment.shm_size: larger than 1p (2^50 bytes)");
}

TEST(JobSpecTest, JsonRoundTripIsExact) {
  for (const std::string_view yaml :
       {kFull, std::string_view("command: x\n"),
        std::string_view("command: x\nenvironment: dir:/r\nretries: {user_error: 2}\n")}) {
    const JobSpec spec = parse_ok(yaml);
    const nlohmann::json json = to_json(spec);
    const Result<JobSpec> back = from_json(json);
    ASSERT_TRUE(back.ok()) << back.status().to_string() << "\n" << json.dump(2);
    EXPECT_EQ(*back, spec);
    EXPECT_EQ(to_json(*back), json);
    EXPECT_EQ(*from_json(nlohmann::json::parse(json.dump())), spec);
  }
}

TEST(JobSpecTest, JsonIsNormalized) {
  const nlohmann::json json = to_json(parse_ok("command: x\nenvironment: oci:/img\nlimits: {timeout: 10m}\n"));
  const nlohmann::json want = {{"command", "x"},
                               {"tags", nlohmann::json::object()},
                               {"environment", {{"image", "oci:/img"}, {"runtime", "runc"}, {"shm_size", 0}}},
                               {"priority", 0},
                               {"resources", {{"instance_count", 1}, {"gpus_per_instance", 0}}},
                               {"distribution", {{"type", "none"}, {"process_count_per_instance", 1}}},
                               {"environment_variables", nlohmann::json::object()},
                               {"inputs", nlohmann::json::object()},
                               {"outputs", nlohmann::json::object()},
                               {"retries", {{"user_error", 0}, {"infrastructure", 3}, {"preemption", 100}}},
                               {"limits", {{"timeout", 600}, {"progress_timeout", 0}}},
                               {"preemption", {{"signal", "SIGUSR1"}}}};
  EXPECT_EQ(json, want) << json.dump(2);
}

TEST(JobSpecTest, FromJsonValidatesToo) {
  EXPECT_EQ(from_json(nlohmann::json{{"command", "x"}, {"resources", {{"instance_count", "two"}}}}).status().message(),
            "job spec: resources.instance_count: expected an integer >= 1, got \"two\"");
  EXPECT_EQ(from_json(nlohmann::json::array()).status().message(),
            "job spec: expected a map of fields at the top level (command: ..., compute: ...), got a list");
  EXPECT_EQ(from_json(nlohmann::json{{"command", "x"}, {"priority", 1.5}}).status().message(),
            "job spec: priority: expected an integer from -1000 to 1000, got 1.5");
  EXPECT_EQ(from_json(nlohmann::json{{"command", std::string("\xc3")}}).status().message(),
            "job spec: command: text is not valid UTF-8");
}

}  // namespace
}  // namespace cohort::spec
