#include "job_commands.hpp"

#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <sstream>
#include <thread>

#include "client.hpp"
#include "code_snapshot.hpp"
#include "config.hpp"
#include "line_prefixer.hpp"
#include "output.hpp"

namespace cohort::cli {

namespace {

using namespace std::chrono_literals;

constexpr config::Knob kJobPoll{"job_poll", 1000ms,
                                "`job submit --wait` asks for the job's state this often: a person watching sees "
                                "changes within a second, and the manager sees one small call a second"};
constexpr config::Knob kWaitOutage{"wait_outage", 120000ms,
                                   "`--wait` rides out a manager that is away this long (a restart takes seconds) "
                                   "before it gives up; the job itself keeps running either way"};
// A job's step, while it runs: often enough to see it move, rarely enough for a job of days.
constexpr auto kStepEvery = 5s;
// A followed log stream lasts as long as its job, which may run for days; the deadline is only a
// backstop against a stream nobody ends.
constexpr auto kFollowDeadline = std::chrono::hours(24 * 365);

std::string join(const google::protobuf::RepeatedPtrField<std::string>& items) {
  std::string out;
  for (const auto& item : items)
    out += (out.empty() ? "" : ", ") + item;
  return out.empty() ? "(no nodes yet)" : out;
}

const v1::Attempt* find_attempt(const v1::Job& job, int number) {
  for (const auto& a : job.attempts())
    if (a.number() == number) return &a;
  return nullptr;
}

std::string attempt_line(const v1::Attempt& a) {
  std::string line = "attempt " + std::to_string(a.number()) + ": " + a.state();
  const bool ended = a.state() == "succeeded" || a.state() == "failed" || a.state() == "canceled";
  if (!ended) return line + " on " + join(a.nodes());
  if (!a.end_reason().empty() && a.end_reason() != a.state()) line += " (" + a.end_reason() + ")";
  if (!a.message().empty()) line += ": " + a.message();
  return line;
}

}  // namespace

Result<v1::SubmitJobRequest> job_submit_request(const JobSubmitOptions& options) {
  std::ifstream in(options.file, std::ios::binary);
  if (!in) {
    return errno_status("open", errno, options.file.string())
        .with_context("reading the job file (give the path of its YAML spec)");
  }
  std::ostringstream text;
  text << in.rdbuf();
  v1::SubmitJobRequest request;
  request.set_spec_yaml(text.str());
  request.set_cluster(options.cluster);
  COHORT_ASSIGN_OR_RETURN(auto code, code_directory(request.spec_yaml(), options.file));
  if (code) {
    COHORT_ASSIGN_OR_RETURN(auto tar_gz, snapshot_code(*code));
    request.set_code_tar_gz(std::move(tar_gz));
  }
  return request;
}

std::vector<std::string> progress_lines(const v1::Job* before, const v1::Job& now) {
  std::vector<std::string> lines;
  if (before == nullptr || before->state() != now.state()) lines.push_back("job " + now.id() + ": " + now.state());
  for (const auto& a : now.attempts()) {
    const v1::Attempt* was = before ? find_attempt(*before, a.number()) : nullptr;
    if (was == nullptr || was->state() != a.state() || was->nodes_size() != a.nodes_size() ||
        was->end_reason() != a.end_reason())
      lines.push_back(attempt_line(a));
    if (was != nullptr && was->notice_ms() == 0 && a.notice_ms() != 0 && a.ended_ms() == 0) {
      lines.push_back("attempt " + std::to_string(a.number()) + ": preemption notice at step " +
                      std::to_string(a.last_step()) + "; the job checkpoints and stops");
    }
  }
  return lines;
}

std::optional<std::string> step_line(std::int64_t printed, const v1::Job& now) {
  if (now.attempts_size() == 0) return std::nullopt;
  const v1::Attempt& a = now.attempts(now.attempts_size() - 1);
  if (a.state() != "running" || a.last_step() == printed || a.last_step() == 0) return std::nullopt;
  std::string line = "attempt " + std::to_string(a.number()) + ": step " + std::to_string(a.last_step());
  if (a.start_step() > 0) line += " (resumed from " + std::to_string(a.start_step()) + ")";
  return line;
}

bool is_terminal(const std::string& state) {
  return state == "succeeded" || state == "failed" || state == "canceled";
}

std::string end_line(const v1::Job& job) {
  std::string line = "job " + job.id() + " " + job.state();
  if (!job.message().empty()) line += ": " + job.message();
  return line;
}

int job_exit_code(const v1::Job& job) {
  return job.state() == "succeeded" ? kExitOk : kExitFailure;
}

namespace {

// Polls the job until it ends, printing what changes; the job's exit code, or 1 when the
// manager stays away longer than kWaitOutage.
int wait_for_job(Client& client, v1::Job job) {
  const auto poll = config::get(kJobPoll);
  const auto outage = config::get(kWaitOutage);
  v1::GetJobRequest request;
  request.set_id(job.id());
  for (const auto& line : progress_lines(nullptr, job))
    std::cout << line << std::endl;
  auto away_since = std::chrono::steady_clock::time_point{};
  std::int64_t step_printed = 0;
  auto step_printed_at = std::chrono::steady_clock::time_point{};
  while (!is_terminal(job.state())) {
    std::this_thread::sleep_for(poll);
    auto now =
        client.call<v1::Job>("GetJob", [&](auto* ctx, auto* resp) { return client.jobs().GetJob(ctx, request, resp); });
    if (!now.ok()) {
      const Code code = now.status().code();
      if (code != Code::kUnavailable && code != Code::kTimedOut) return fail(now.status());
      if (away_since == std::chrono::steady_clock::time_point{}) {
        away_since = std::chrono::steady_clock::now();
        std::cerr << "cohort: " << now.status().message() << "; still waiting (the job keeps running)" << std::endl;
      } else if (std::chrono::steady_clock::now() - away_since > outage) {
        return fail(now.status().with_context("gave up waiting for job " + job.id() +
                                              " (it may still run: `cohort job show " + job.id() + "`)"));
      }
      continue;
    }
    away_since = {};
    for (const auto& line : progress_lines(&job, *now))
      std::cout << line << std::endl;
    if (std::chrono::steady_clock::now() - step_printed_at >= kStepEvery) {
      if (auto line = step_line(step_printed, *now)) {
        std::cout << *line << std::endl;
        step_printed = now->attempts(now->attempts_size() - 1).last_step();
        step_printed_at = std::chrono::steady_clock::now();
      }
    }
    job = std::move(now).value();
  }
  std::cout << end_line(job) << std::endl;
  return job_exit_code(job);
}

// Prints a job's log as it arrives, prefixing lines with [node] when the attempt has several.
int stream_logs(Client& client, const std::string& id, bool follow, int attempt) {
  v1::GetJobRequest get;
  get.set_id(id);
  auto job =
      client.call<v1::Job>("GetJob", [&](auto* ctx, auto* resp) { return client.jobs().GetJob(ctx, get, resp); });
  if (!job.ok()) return fail(job.status());
  bool prefix = job->instance_count() > 1;
  if (attempt == 0 && job->attempts_size() > 0) attempt = job->attempts(job->attempts_size() - 1).number();
  if (const v1::Attempt* a = find_attempt(*job, attempt)) prefix = prefix || a->nodes_size() > 1;

  v1::StreamLogsRequest request;
  request.set_id(id);
  request.set_follow(follow);
  request.set_attempt(attempt);
  grpc::ClientContext context;
  if (follow) {
    client.prepare(context, kFollowDeadline);
  } else {
    client.prepare(context);
  }
  auto reader = client.jobs().StreamLogs(&context, request);
  std::map<std::string, LinePrefixer> prefixers;
  v1::LogChunk chunk;
  std::string first_node;
  while (reader->Read(&chunk)) {
    if (first_node.empty()) first_node = chunk.node();
    prefix = prefix || chunk.node() != first_node;  // a node we did not expect: name them all from here
    if (!prefix) {
      std::cout.write(chunk.data().data(), static_cast<std::streamsize>(chunk.data().size()));
      std::cout.flush();
      continue;
    }
    auto it = prefixers.try_emplace(chunk.node(), "[" + chunk.node() + "] ").first;
    std::string out;
    it->second.feed(chunk.data(), out);
    std::cout << out << std::flush;
  }
  std::string rest;
  for (auto& [node, p] : prefixers)
    p.finish(rest);
  std::cout << rest << std::flush;
  const Status status = rpc::from_grpc(reader->Finish(), "StreamLogs", client.endpoint().address);
  return status.ok() ? kExitOk : fail(status);
}

void add_submit(CLI::App* group, Commands& commands) {
  struct State {
    ConnectionOptions conn;
    JobSubmitOptions options;
  };
  auto st = std::make_shared<State>();
  auto* verb = group->add_subcommand("submit", "Submit a job spec (YAML); prints the job id first");
  verb->add_option("FILE", st->options.file, "The job's YAML spec; its code: directory is snapshotted now")->required();
  verb->add_option("--cluster", st->options.cluster, "Run on this cluster (overrides the spec's compute)");
  verb->add_flag("--wait", st->options.wait, "Follow the job to its end; exit 0 only if it succeeded");
  verb->footer("Exit status with --wait: 0 when the job succeeded, 1 when it failed or was canceled.");
  add_connection_options(verb, st->conn);
  commands.push_back({verb, [st] {
                        auto request = job_submit_request(st->options);  // before any gRPC thread exists
                        if (!request.ok()) {
                          const Code code = request.status().code();  // a bad path or spec is a usage error
                          const bool usage = code == Code::kInvalidArgument || code == Code::kNotFound;
                          return usage ? usage_fail(request.status()) : fail(request.status());
                        }
                        auto client = Client::connect(st->conn);
                        if (!client.ok()) return usage_fail(client.status());
                        auto job = client->call<v1::Job>("SubmitJob", [&](auto* ctx, auto* resp) {
                          return client->jobs().SubmitJob(ctx, *request, resp);
                        });
                        if (!job.ok()) return fail(job.status());
                        std::cout << job->id() << std::endl;
                        if (!st->options.wait) {
                          std::cerr << "cohort: job " << job->id() << " " << job->state() << " on cluster "
                                    << job->cluster() << "; follow it with `cohort job logs " << job->id()
                                    << " --follow`" << std::endl;
                          return kExitOk;
                        }
                        return wait_for_job(*client, std::move(job).value());
                      }});
}

void add_list(CLI::App* group, Commands& commands) {
  struct State {
    ConnectionOptions conn;
    OutputFormat format = OutputFormat::kTable;
    v1::ListJobsRequest request;
    std::string cluster, state;
    int limit = 0;
  };
  auto st = std::make_shared<State>();
  auto* verb = group->add_subcommand("list", "List jobs");
  verb->add_option("--cluster", st->cluster, "Only this cluster's jobs");
  verb->add_option("--state", st->state, "Only jobs in this state (queued, provisioning, running, succeeded, ...)");
  verb->add_option("--limit", st->limit, "At most this many (default: the manager's)");
  add_output_option(verb, st->format);
  add_connection_options(verb, st->conn);
  commands.push_back({verb, [st] {
                        auto client = Client::connect(st->conn);
                        if (!client.ok()) return usage_fail(client.status());
                        st->request.set_cluster(st->cluster);
                        st->request.set_state(st->state);
                        st->request.set_limit(st->limit);
                        auto list = client->call<v1::ListJobsResponse>("ListJobs", [&](auto* ctx, auto* resp) {
                          return client->jobs().ListJobs(ctx, st->request, resp);
                        });
                        if (!list.ok()) return fail(list.status());
                        if (st->format == OutputFormat::kJson) {
                          auto json = to_json_array(list->jobs());
                          if (!json.ok()) return fail(json.status());
                          std::cout << *json << std::endl;
                          return kExitOk;
                        }
                        std::cout << jobs_table(*list, now_ms());
                        return kExitOk;
                      }});
}

void add_show(CLI::App* group, Commands& commands) {
  struct State {
    ConnectionOptions conn;
    OutputFormat format = OutputFormat::kTable;
    v1::GetJobRequest request;
    std::string id;
  };
  auto st = std::make_shared<State>();
  auto* verb = group->add_subcommand("show", "Show a job, its attempts and how each ended");
  verb->add_option("ID", st->id, "Job id")->required();
  add_output_option(verb, st->format);
  add_connection_options(verb, st->conn);
  commands.push_back({verb, [st] {
                        auto client = Client::connect(st->conn);
                        if (!client.ok()) return usage_fail(client.status());
                        st->request.set_id(st->id);
                        auto job = client->call<v1::Job>("GetJob", [&](auto* ctx, auto* resp) {
                          return client->jobs().GetJob(ctx, st->request, resp);
                        });
                        if (!job.ok()) return fail(job.status());
                        if (st->format == OutputFormat::kJson) {
                          auto json = to_json(*job);
                          if (!json.ok()) return fail(json.status());
                          std::cout << *json << std::endl;
                          return kExitOk;
                        }
                        std::cout << job_details(*job, now_ms());
                        return kExitOk;
                      }});
}

void add_cancel(CLI::App* group, Commands& commands) {
  struct State {
    ConnectionOptions conn;
    v1::CancelJobRequest request;
    std::string id;
  };
  auto st = std::make_shared<State>();
  auto* verb = group->add_subcommand("cancel", "Cancel a job: its processes are stopped and its nodes freed");
  verb->add_option("ID", st->id, "Job id")->required();
  add_connection_options(verb, st->conn);
  commands.push_back({verb, [st] {
                        auto client = Client::connect(st->conn);
                        if (!client.ok()) return usage_fail(client.status());
                        st->request.set_id(st->id);
                        auto job = client->call<v1::Job>("CancelJob", [&](auto* ctx, auto* resp) {
                          return client->jobs().CancelJob(ctx, st->request, resp);
                        });
                        if (!job.ok()) return fail(job.status());
                        std::cout << "job " << job->id() << ": " << job->state() << std::endl;
                        return kExitOk;
                      }});
}

void add_logs(CLI::App* group, Commands& commands) {
  struct State {
    ConnectionOptions conn;
    std::string id;
    bool follow = false;
    int attempt = 0;
  };
  auto st = std::make_shared<State>();
  auto* verb =
      group->add_subcommand("logs", "Print a job's output; lines are prefixed with [node] for multi-node jobs");
  verb->add_option("ID", st->id, "Job id")->required();
  verb->add_flag("-f,--follow", st->follow, "Keep printing as the job writes, until it ends");
  verb->add_option("--attempt", st->attempt, "This attempt's output (default: the latest)");
  add_connection_options(verb, st->conn);
  commands.push_back({verb, [st] {
                        auto client = Client::connect(st->conn);
                        if (!client.ok()) return usage_fail(client.status());
                        return stream_logs(*client, st->id, st->follow, st->attempt);
                      }});
}

}  // namespace

void add_job_commands(CLI::App& app, Commands& commands) {
  auto* job = app.add_subcommand("job", "Submit, follow, inspect and cancel jobs (needs a manager)");
  job->require_subcommand(1);
  add_submit(job, commands);
  add_list(job, commands);
  add_show(job, commands);
  add_cancel(job, commands);
  add_logs(job, commands);
}

}  // namespace cohort::cli
