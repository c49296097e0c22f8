#include "rpc.hpp"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include <cstdlib>
#include <fstream>
#include <sstream>

namespace cohort::rpc {

namespace {

std::string hex(const unsigned char* data, std::size_t n) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out(2 * n, '0');
  for (std::size_t i = 0; i < n; ++i) {
    out[2 * i] = kDigits[data[i] >> 4];
    out[2 * i + 1] = kDigits[data[i] & 15];
  }
  return out;
}

std::string env_or(std::string value, const char* var) {
  if (!value.empty()) return value;
  const char* v = std::getenv(var);
  return v ? v : "";
}

Code code_from(grpc::StatusCode code) {
  switch (code) {
    case grpc::StatusCode::OK:
      return Code::kOk;
    case grpc::StatusCode::INVALID_ARGUMENT:
    case grpc::StatusCode::OUT_OF_RANGE:
      return Code::kInvalidArgument;
    case grpc::StatusCode::NOT_FOUND:
      return Code::kNotFound;
    case grpc::StatusCode::ALREADY_EXISTS:
      return Code::kAlreadyExists;
    case grpc::StatusCode::PERMISSION_DENIED:
      return Code::kPermissionDenied;
    case grpc::StatusCode::UNAUTHENTICATED:
      return Code::kAuthError;
    case grpc::StatusCode::FAILED_PRECONDITION:
    case grpc::StatusCode::ABORTED:
      return Code::kFailedPrecondition;
    case grpc::StatusCode::RESOURCE_EXHAUSTED:
      return Code::kResourceExhausted;
    case grpc::StatusCode::UNAVAILABLE:
      return Code::kUnavailable;
    case grpc::StatusCode::DEADLINE_EXCEEDED:
      return Code::kTimedOut;
    case grpc::StatusCode::CANCELLED:
      return Code::kCanceled;
    case grpc::StatusCode::UNIMPLEMENTED:
      return Code::kUnimplemented;
    case grpc::StatusCode::DATA_LOSS:
      return Code::kDataLoss;
    default:
      return Code::kInternal;
  }
}

}  // namespace

Result<Endpoint> resolve_endpoint(std::string manager, std::string token, std::string ca_file) {
  Endpoint e{env_or(std::move(manager), "COHORT_MANAGER"), env_or(std::move(token), "COHORT_TOKEN"),
             env_or(std::move(ca_file), "COHORT_CA")};
  if (e.address.empty()) {
    return invalid_argument(
        "no manager address: pass --manager HOST:PORT or set COHORT_MANAGER (after `cohort up --state-dir DIR`, "
        "`source DIR/env` sets it)");
  }
  return e;
}

Result<std::shared_ptr<grpc::Channel>> make_channel(const Endpoint& endpoint, grpc::ChannelArguments args) {
  args.SetMaxReceiveMessageSize(256 << 20);  // code snapshots
  args.SetMaxSendMessageSize(256 << 20);
  std::shared_ptr<grpc::ChannelCredentials> creds;
  if (!endpoint.tls_name.empty()) args.SetSslTargetNameOverride(endpoint.tls_name);
  if (!endpoint.ca_pem.empty()) {
    grpc::SslCredentialsOptions ssl;
    ssl.pem_root_certs = endpoint.ca_pem;
    creds = grpc::SslCredentials(ssl);
  } else if (endpoint.ca_file.empty()) {
    creds = grpc::InsecureChannelCredentials();
  } else {
    std::ifstream in(endpoint.ca_file);
    if (!in) return Status(Code::kNotFound, "cannot read the CA certificate " + endpoint.ca_file + " (check --ca)");
    std::ostringstream pem;
    pem << in.rdbuf();
    grpc::SslCredentialsOptions ssl;
    ssl.pem_root_certs = pem.str();
    creds = grpc::SslCredentials(ssl);
  }
  return grpc::CreateCustomChannel(endpoint.address, creds, args);
}

void prepare(grpc::ClientContext& context, std::string_view token, std::chrono::milliseconds deadline) {
  context.set_deadline(std::chrono::system_clock::now() + deadline);
  if (!token.empty()) context.AddMetadata("authorization", "Bearer " + std::string(token));
}

Status from_grpc(const grpc::Status& status, std::string_view call, std::string_view address) {
  if (status.ok()) return {};
  std::string message = std::string(call) + " at " + std::string(address) + ": " + status.error_message();
  switch (status.error_code()) {
    case grpc::StatusCode::UNAVAILABLE:
      message += " (is the manager running? `cohort up --state-dir DIR` starts one; `source DIR/env` points here)";
      break;
    case grpc::StatusCode::PERMISSION_DENIED:
    case grpc::StatusCode::UNAUTHENTICATED:
      message += " (check --token or COHORT_TOKEN; `source DIR/env` sets the admin token of `cohort up`)";
      break;
    case grpc::StatusCode::DEADLINE_EXCEEDED:
      message += " (the manager did not answer in time)";
      break;
    default:
      break;
  }
  return {code_from(status.error_code()), std::move(message)};
}

grpc::Status to_grpc(const Status& status) {
  using G = grpc::StatusCode;
  if (status.ok()) return grpc::Status::OK;
  G code = G::INTERNAL;
  switch (status.code()) {
    case Code::kInvalidArgument:
      code = G::INVALID_ARGUMENT;
      break;
    case Code::kNotFound:
      code = G::NOT_FOUND;
      break;
    case Code::kAlreadyExists:
      code = G::ALREADY_EXISTS;
      break;
    case Code::kPermissionDenied:
    case Code::kAuthError:
      code = G::PERMISSION_DENIED;
      break;
    case Code::kFailedPrecondition:
    case Code::kFenced:
      code = G::FAILED_PRECONDITION;
      break;
    case Code::kResourceExhausted:
      code = G::RESOURCE_EXHAUSTED;
      break;
    case Code::kUnavailable:
      code = G::UNAVAILABLE;
      break;
    case Code::kTimedOut:
      code = G::DEADLINE_EXCEEDED;
      break;
    case Code::kCanceled:
      code = G::CANCELLED;
      break;
    case Code::kUnimplemented:
      code = G::UNIMPLEMENTED;
      break;
    case Code::kDataLoss:
      code = G::DATA_LOSS;
      break;
    default:
      break;
  }
  return {code, status.message()};
}

std::string bearer_token(const grpc::ServerContext& context) {
  const auto& md = context.client_metadata();
  auto it = md.find("authorization");
  if (it == md.end()) return {};
  std::string_view v(it->second.data(), it->second.size());
  constexpr std::string_view kPrefix = "Bearer ";
  if (v.substr(0, kPrefix.size()) != kPrefix) return {};
  return std::string(v.substr(kPrefix.size()));
}

std::string random_token() {
  unsigned char bytes[32];
  if (RAND_bytes(bytes, sizeof bytes) != 1) std::abort();  // no entropy: nothing safe to do
  return hex(bytes, sizeof bytes);
}

std::string sha256_hex(std::string_view data) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  EVP_Digest(data.data(), data.size(), md, &n, EVP_sha256(), nullptr);
  return hex(md, n);
}

bool constant_time_equal(std::string_view a, std::string_view b) {
  return a.size() == b.size() && CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

}  // namespace cohort::rpc
