#include "peer_tls.hpp"

#include <map>
#include <memory>
#include <mutex>

#include "cohort/log.hpp"
#include "file_write.hpp"
#include "tls.hpp"

namespace cohort::runner {

namespace fs = std::filesystem;

Result<PeerIdentity> load_or_make_peer_identity(const fs::path& dir) {
  const fs::path cert = dir / "cert.pem", key = dir / "key.pem";
  PeerIdentity id{read_whole_file(cert), read_whole_file(key)};
  if (!id.certificate_pem.empty() && !id.private_key_pem.empty() &&
      rpc::is_key_pair(id.certificate_pem, id.private_key_pem))
    return id;
  std::error_code ec;
  if (fs::exists(cert, ec) || fs::exists(key, ec))
    logger()->warn("the peer TLS key and certificate in {} do not make a pair: making a new one", dir.string());
  fs::create_directories(dir, ec);
  if (ec) return errno_status("mkdir", ec.value(), dir.string());
  fs::permissions(dir, fs::perms::owner_all, ec);  // the key's directory: the runner's alone
  COHORT_TRY(rpc::generate_self_signed(cert, key, kPeerTlsName, {kPeerTlsName}, {}));
  id = {read_whole_file(cert), read_whole_file(key)};
  if (id.certificate_pem.empty() || id.private_key_pem.empty())
    return Status(Code::kIoError, "cannot read back the peer TLS key and certificate in " + dir.string());
  return id;
}

Result<rpc::Endpoint> peer_endpoint(const v1::Assignment& a, int rank) {
  if (rank < 0 || rank >= a.peer_endpoints_size() || a.peer_endpoints(rank).empty()) {
    return Status(Code::kNotFound, "node rank " + std::to_string(rank) + " of job " + a.job() + " attempt " +
                                       std::to_string(a.attempt()) + " has no peer endpoint");
  }
  rpc::Endpoint e{a.peer_endpoints(rank), a.secret(), ""};
  if (rank < a.peer_certificates_size() && !a.peer_certificates(rank).empty()) {
    e.ca_pem = a.peer_certificates(rank);
    e.tls_name = kPeerTlsName;
  }
  return e;
}

Result<std::shared_ptr<grpc::Channel>> peer_channel(const v1::Assignment& a, int rank) {
  // Nodes come and go over a runner's life: past this many peers the cache starts again.
  constexpr std::size_t kMaxChannels = 256;
  static std::mutex mu;
  static std::map<std::string, std::shared_ptr<grpc::Channel>> channels;  // GUARDED_BY(mu)
  COHORT_ASSIGN_OR_RETURN(const rpc::Endpoint e, peer_endpoint(a, rank));
  const std::string key = e.address + "\n" + e.ca_pem;
  std::lock_guard lock(mu);
  if (auto it = channels.find(key); it != channels.end()) return it->second;
  if (channels.size() >= kMaxChannels) channels.clear();
  // A kept channel must not sit out gRPC's default reconnect backoff (up to 120 s) after a peer
  // was briefly away: the next attempt's gate would wait that long. The "min" backoff is in fact
  // the connect timeout (TCP and the TLS handshake), generous for a loaded machine.
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 20);
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 1000);
  args.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, 3000);
  COHORT_ASSIGN_OR_RETURN(auto channel, rpc::make_channel(e, std::move(args)));
  channels.emplace(key, channel);
  return channel;
}

}  // namespace cohort::runner
