// cohort-bridge: Open MPI's rsh agent inside a Cohort job (no sshd anywhere).
//
//   cohort-bridge [ssh-style options] HOST COMMAND...
//
// mpirun on the job's head node runs it once per other node; it asks HOST's runner (found in
// COHORT_PEERS, "address=endpoint,...") to run COMMAND with /bin/sh in the job's container
// there, authenticated with the attempt's secret (COHORT_JOB_SECRET), and passes the output and
// the exit status through, as ssh would.
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <string>

#include "cohort/v1/cohort.grpc.pb.h"
#include "rpc.hpp"

namespace {

constexpr int kBridgeError = 255;  // what ssh returns for its own failures

[[noreturn]] void die(const std::string& message) {
  std::fprintf(stderr, "cohort-bridge: %s\n", message.c_str());
  std::exit(kBridgeError);
}

std::string env(const char* name) {
  const char* v = std::getenv(name);
  if (v == nullptr || *v == '\0') die(std::string(name) + " is not set: cohort-bridge runs inside a Cohort MPI job");
  return v;
}

std::string endpoint_of(const std::string& peers, const std::string& host) {
  std::size_t start = 0;
  while (start <= peers.size()) {
    std::size_t end = peers.find(',', start);
    if (end == std::string::npos) end = peers.size();
    const std::string entry = peers.substr(start, end - start);
    const auto eq = entry.find('=');
    if (eq != std::string::npos && entry.substr(0, eq) == host) return entry.substr(eq + 1);
    start = end + 1;
  }
  die("no node " + host + " in this job (COHORT_PEERS=" + peers + ")");
}

void write_all(int fd, const std::string& data) {
  std::size_t done = 0;
  while (done < data.size()) {
    const ssize_t n = ::write(fd, data.data() + done, data.size() - done);
    if (n <= 0) return;
    done += static_cast<std::size_t>(n);
  }
}

}  // namespace

int main(int argc, char** argv) {
  int i = 1;
  // ssh-style options Open MPI may put before the host (-x, -l USER, ...): skip them.
  while (i < argc && argv[i][0] == '-') {
    const std::string opt = argv[i];
    i += (opt == "-l" || opt == "-p" || opt == "-o" || opt == "-i") ? 2 : 1;
  }
  if (i + 1 >= argc) die("usage: cohort-bridge [options] HOST COMMAND...");
  const std::string host = argv[i++];
  std::string command;
  for (; i < argc; ++i)
    command += (command.empty() ? "" : " ") + std::string(argv[i]);

  const std::string endpoint = endpoint_of(env("COHORT_PEERS"), host);
  const std::string secret = env("COHORT_JOB_SECRET");
  auto channel = cohort::rpc::make_channel({endpoint, secret, ""});
  if (!channel.ok()) die(channel.status().message());
  auto stub = cohort::v1::PeerService::NewStub(*channel);
  cohort::v1::PeerExecRequest rq;
  rq.set_job(env("COHORT_JOB_ID"));
  rq.set_attempt(std::atoi(env("COHORT_ATTEMPT").c_str()));
  rq.add_argv("/bin/sh");
  rq.add_argv("-c");
  rq.add_argv(command);
  grpc::ClientContext ctx;
  ctx.AddMetadata("authorization", "Bearer " + secret);
  // Connecting is bounded; the command itself (Open MPI's daemon) may run as long as the job.
  ctx.set_wait_for_ready(false);
  auto reader = stub->Exec(&ctx, rq);
  cohort::v1::PeerExecOutput out;
  int code = kBridgeError;
  bool exited = false;
  while (reader->Read(&out)) {
    if (!out.stdout().empty()) write_all(STDOUT_FILENO, out.stdout());
    if (!out.stderr().empty()) write_all(STDERR_FILENO, out.stderr());
    if (out.exited()) {
      exited = true;
      code = out.signal() != 0 ? 128 + out.signal() : out.exit_code();
    }
  }
  const grpc::Status s = reader->Finish();
  if (!s.ok()) die("node " + host + " (" + endpoint + "): " + s.error_message());
  if (!exited) die("node " + host + " (" + endpoint + ") ended the call without an exit status");
  return code;
}
