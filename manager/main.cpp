// cohort-manager: `init` makes a state directory (database, admin and join tokens); `serve` runs
// the manager on it. A missing or unreadable state directory is an error, never a fresh start.
#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <spdlog/sinks/stdout_color_sinks.h>
#include <CLI/CLI.hpp>
#include <atomic>
#include <condition_variable>
#include <fstream>
#include <iostream>
#include <thread>

#include "cohort/log.hpp"
#include "config.hpp"
#include "file_write.hpp"
#include "manager.hpp"
#include "rpc.hpp"
#include "services.hpp"
#include "tls.hpp"

namespace fs = std::filesystem;
using namespace cohort;
using namespace cohort::manager;

namespace {

Status write_secret(const fs::path& path, const std::string& value) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) return errno == EEXIST ? Status() : errno_status("open", errno, path.string());
  const std::string line = value + "\n";
  const bool ok = ::write(fd, line.data(), line.size()) == static_cast<ssize_t>(line.size()) && ::fsync(fd) == 0;
  ::close(fd);
  return ok ? Status() : errno_status("write", errno, path.string());
}

Result<std::string> read_secret(const fs::path& path) {
  std::ifstream in(path);
  std::string v;
  if (!(in >> v)) return Status(Code::kNotFound, "cannot read " + path.string() + ": run `cohort-manager init` first");
  return v;
}

Status init(const fs::path& dir, bool tls) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return Status(Code::kIoError, "cannot create the state directory " + dir.string() + ": " + ec.message());
  ::chmod(dir.c_str(), 0700);  // tokens and job code live here
  COHORT_TRY(Store::open(dir, /*create=*/true).status());
  COHORT_TRY(write_secret(dir / "admin-token", rpc::random_token()));
  COHORT_TRY(write_secret(dir / "join-token", rpc::random_token()));
  if (tls && !fs::exists(dir / "tls" / "cert.pem")) {
    fs::create_directories(dir / "tls", ec);
    char host[256] = "localhost";
    ::gethostname(host, sizeof host - 1);
    COHORT_TRY(rpc::generate_self_signed(dir / "tls" / "cert.pem", dir / "tls" / "key.pem", "cohort-manager",
                                         {"localhost", host}, {"127.0.0.1", "::1"}));
    std::cout << "TLS certificate " << (dir / "tls" / "cert.pem").string() << " (clients: --ca or COHORT_CA)\n";
  }
  std::cout << "state directory " << dir.string() << " is ready (admin token in " << (dir / "admin-token").string()
            << ")\n";
  return {};
}

Status serve(const fs::path& dir_in, const std::string& listen, std::string tls_cert, std::string tls_key) {
  std::error_code ec;
  const fs::path dir = fs::absolute(dir_in, ec);
  COHORT_ASSIGN_OR_RETURN(auto store, Store::open(dir, /*create=*/false));
  // One manager per state directory: a second one would fight the first over every node.
  const int lock_fd = ::open((dir / "manager.lock").c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (lock_fd < 0 || ::flock(lock_fd, LOCK_EX | LOCK_NB) != 0) {
    return failed_precondition("another cohort-manager serves " + dir.string() + " (manager.lock is held)");
  }
  COHORT_ASSIGN_OR_RETURN(const std::string admin, read_secret(dir / "admin-token"));
  COHORT_ASSIGN_OR_RETURN(const std::string join, read_secret(dir / "join-token"));
  const std::string socket = "unix:" + (dir / "manager.sock").string();
  fs::remove(dir / "manager.sock", ec);

  Manager* manager_ptr = nullptr;  // set below; providers report through it only after that
  ProviderContext pc{dir,
                     socket,
                     "",
                     dir / "join-token",
                     fs::read_symlink("/proc/self/exe").parent_path() / "cohort-runner",
                     [&manager_ptr](const std::string& c, const std::string& n, const std::string& m) {
                       if (manager_ptr) manager_ptr->report(c, n, m);
                     }};
  ManagerOptions o;
  o.state_dir = dir;
  o.heartbeat_interval = config::get(config::kHeartbeatInterval);
  o.heartbeat_timeout = config::get(config::kHeartbeatTimeout);
  o.provisioning_timeout = config::get(config::kProvisioningTimeout);
  o.make_provider = [&pc](const std::string& name) { return make_provider(name, pc); };
  COHORT_ASSIGN_OR_RETURN(auto manager, Manager::open(std::move(o), std::move(store)));
  manager_ptr = manager.get();

  auto services = make_services(*manager, Tokens{rpc::sha256_hex(admin), rpc::sha256_hex(join)});
  grpc::ServerBuilder builder;
  int port = 0;
  // TLS on TCP when certificates are given or `init --tls` made them. The unix socket stays
  // plaintext: it lives in the 0700 state directory, and only local runners use it.
  if (tls_cert.empty() && fs::exists(dir / "tls" / "cert.pem")) {
    tls_cert = (dir / "tls" / "cert.pem").string();
    tls_key = (dir / "tls" / "key.pem").string();
  }
  std::shared_ptr<grpc::ServerCredentials> tcp_creds = grpc::InsecureServerCredentials();
  if (!tls_cert.empty()) {
    grpc::SslServerCredentialsOptions ssl;
    ssl.pem_key_cert_pairs.push_back({read_whole_file(tls_key), read_whole_file(tls_cert)});
    if (ssl.pem_key_cert_pairs[0].private_key.empty() || ssl.pem_key_cert_pairs[0].cert_chain.empty()) {
      return invalid_argument("cannot read the TLS key " + tls_key + " or certificate " + tls_cert);
    }
    tcp_creds = grpc::SslServerCredentials(ssl);
  }
  builder.AddListeningPort(listen, tcp_creds, &port);
  builder.AddListeningPort(socket, grpc::InsecureServerCredentials());
  builder.SetMaxReceiveMessageSize(256 << 20);
  for (auto& s : services)
    builder.RegisterService(s.get());
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (!server || port == 0) return Status(Code::kUnavailable, "cannot listen on " + listen + " and " + socket);
  const std::string host = listen.substr(0, listen.rfind(':'));
  const std::string address = host + ":" + std::to_string(port);
  pc.public_address = address;
  std::ofstream(dir / "manager.pid") << ::getpid() << "\n";
  {
    std::ofstream(dir / "manager.addr.tmp") << address << "\n";
    fs::rename(dir / "manager.addr.tmp", dir / "manager.addr", ec);
  }
  logger()->info("cohort-manager serving {} on {} ({}) and {}", dir.string(), address,
                 tls_cert.empty() ? "plaintext" : "TLS", socket);

  std::atomic<bool> stop{false};
  std::thread ticker([&] {
    const auto period = config::get(config::kSchedulerTick);
    while (!stop.load()) {
      manager->tick();
      std::this_thread::sleep_for(period);
    }
  });
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  int sig = 0;
  sigwait(&set, &sig);
  logger()->info("signal {}: shutting down (runners and their jobs keep running)", sig);
  stop.store(true);
  server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(2));
  ticker.join();
  fs::remove(dir / "manager.addr", ec);
  fs::remove(dir / "manager.pid", ec);
  return {};
}

}  // namespace

int main(int argc, char** argv) {
  // Signals are taken by sigwait in serve(); every thread inherits the mask.
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  ::signal(SIGPIPE, SIG_IGN);

  CLI::App app{"cohort-manager: the cluster manager"};
  app.require_subcommand(1);
  std::string state_dir, listen = "127.0.0.1:0", level = "info", tls_cert, tls_key;
  bool tls = false;
  app.add_option("--log-level", level, "trace, debug, info, warn, error");
  auto* init_cmd = app.add_subcommand("init", "make a state directory: database, admin and join tokens");
  init_cmd->add_option("--state-dir", state_dir, "the state directory")->required();
  init_cmd->add_flag("--tls", tls, "also make a self-signed TLS certificate for the TCP port");
  auto* serve_cmd = app.add_subcommand("serve", "run the manager on an initialized state directory");
  serve_cmd->add_option("--state-dir", state_dir, "the state directory")->required();
  serve_cmd->add_option("--listen", listen, "TCP address for the CLI and remote runners (port 0: any)");
  auto* cert_opt = serve_cmd->add_option("--tls-cert", tls_cert, "PEM certificate chain for TLS on the TCP port");
  serve_cmd->add_option("--tls-key", tls_key, "PEM private key of --tls-cert")->needs(cert_opt);
  cert_opt->needs(serve_cmd->get_option("--tls-key"));
  CLI11_PARSE(app, argc, argv);

  auto log = spdlog::stderr_color_mt("manager");
  log->set_pattern("%Y-%m-%d %H:%M:%S.%e [manager] %^%l%$ %v");
  auto parsed = parse_log_level(level);
  log->set_level(parsed.ok() ? *parsed : spdlog::level::info);
  set_logger(log);

  const Status s = init_cmd->parsed() ? init(state_dir, tls) : serve(state_dir, listen, tls_cert, tls_key);
  if (!s.ok()) {
    std::cerr << "cohort-manager: " << s.to_string() << "\n";
    return 1;
  }
  return 0;
}
