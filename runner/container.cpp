#include "container.hpp"

#include <fcntl.h>
#include <linux/capability.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdlib>
#include <fstream>
#include <string_view>
#include <system_error>

#include "file_write.hpp"
#include "subprocess.hpp"

namespace cohort::runner {
namespace fs = std::filesystem;

namespace {

// Top-level names of the node's root that the host image shows: bound directories or copied links.
constexpr std::array<std::string_view, 3> kImageDirs = {"usr", "etc", "opt"};
constexpr std::array<std::string_view, 6> kImageLinkNames = {"bin", "sbin", "lib", "lib32", "lib64", "libx32"};
// Mounted by the container runtime itself; a job's mount there would fight it.
constexpr std::array<std::string_view, 3> kReservedTops = {"proc", "sys", "dev"};

bool valid_id(std::string_view id) {
  if (id.empty() || id.size() > 255 || id == "." || id == "..") return false;
  return std::all_of(id.begin(), id.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '.' ||
           c == '-';
  });
}

bool valid_hostname(std::string_view h) {
  if (h.size() > 64) return false;
  return std::all_of(h.begin(), h.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '.';
  });
}

// "/a/b" -> "a"; "" for "/".
std::string_view top_component(std::string_view absolute) {
  std::string_view rest = absolute.substr(1);
  return rest.substr(0, rest.find('/'));
}

bool contains(const auto& names, std::string_view name) {
  return std::find(names.begin(), names.end(), name) != names.end();
}

// A top-level name the host image binds or links: nothing may be created under it.
bool in_host_image(const HostImage& host, std::string_view top) {
  if (contains(host.dirs, top)) return true;
  return std::any_of(host.links.begin(), host.links.end(), [&](const auto& link) { return link.first == top; });
}

// An absolute, normalised path other than "/".
bool clean_absolute(std::string_view p) {
  if (p.size() < 2 || p.front() != '/' || p.back() == '/') return false;
  return fs::path(p).lexically_normal().string() == p;
}

Status field_error(const std::string& field, const std::string& what) {
  return invalid_argument("container spec: " + field + " " + what);
}

Status check_spec(const ContainerSpec& spec, const HostImage* host) {
  if (!valid_id(spec.id)) {
    return field_error("id", "\"" + spec.id + "\" is not a runc container id: use 1 to 255 of A-Z a-z 0-9 _ . -");
  }
  if (spec.bundle_dir.empty()) return field_error("bundle_dir", "is empty");
  std::error_code ec;
  if (!spec.rootfs.empty() && !fs::is_directory(spec.rootfs, ec)) {
    return {Code::kNotFound, "container spec: rootfs " + spec.rootfs.string() + " is not a directory"};
  }
  if (!valid_hostname(spec.hostname)) {
    return field_error("hostname", "\"" + spec.hostname + "\" is not a hostname: at most 64 of A-Z a-z 0-9 - .");
  }
  if (spec.args.empty() || spec.args[0].empty()) return field_error("args", "is empty: the container needs a process");
  if (spec.cwd.empty() || spec.cwd.front() != '/') return field_error("cwd", "\"" + spec.cwd + "\" is not absolute");
  for (std::size_t i = 0; i < spec.env.size(); ++i) {
    if (spec.env[i].find('=') == std::string::npos || spec.env[i].front() == '=') {
      return field_error("env[" + std::to_string(i) + "]", "\"" + spec.env[i] + "\" is not NAME=value");
    }
  }
  for (std::size_t i = 0; i < spec.mounts.size(); ++i) {
    const ContainerMount& m = spec.mounts[i];
    const std::string field = "mounts[" + std::to_string(i) + "]";
    if (!clean_absolute(m.destination)) {
      return field_error(field + ".destination", "\"" + m.destination + "\" is not a normalised absolute path (not /)");
    }
    const std::string_view top = top_component(m.destination);
    if (contains(kReservedTops, top)) {
      return field_error(field + ".destination", m.destination + " is under /" + std::string(top) +
                                                     ", which the container runtime mounts itself");
    }
    // The host image's trees are the node's own, read-only: a mount point there can't be created.
    if (host != nullptr && in_host_image(*host, top) && !fs::exists(m.destination, ec)) {
      return field_error(field + ".destination", m.destination + " is inside the host image (/" + std::string(top) +
                                                     ") and does not exist on the node; mount it elsewhere");
    }
    if (!m.source.is_absolute()) return field_error(field + ".source", m.source.string() + " is not absolute");
    if (!fs::exists(m.source, ec)) {
      return {Code::kNotFound, "container spec: " + field + ".source " + m.source.string() + " does not exist"};
    }
  }
  for (std::size_t i = 0; i < spec.devices.size(); ++i) {
    const std::string d = spec.devices[i].string();
    if (!clean_absolute(d) || d.rfind("/dev/", 0) != 0) {
      return field_error("devices[" + std::to_string(i) + "]", "\"" + d + "\" is not a path under /dev");
    }
  }
  return {};
}

fs::path absolute_or_same(const fs::path& p) {
  std::error_code ec;
  fs::path a = fs::absolute(p, ec);
  return ec ? p : a.lexically_normal();
}

nlohmann::json mount(std::string_view destination, std::string_view type, std::string_view source,
                     std::vector<std::string> options) {
  return {{"destination", destination}, {"type", type}, {"source", source}, {"options", std::move(options)}};
}

nlohmann::json bind_mount(const std::string& source, const std::string& destination, bool read_only) {
  std::vector<std::string> options = {"rbind"};
  if (read_only) options.emplace_back("ro");
  return mount(destination, "bind", source, std::move(options));
}

Status make_dirs(const fs::path& p) {
  std::error_code ec;
  fs::create_directories(p, ec);
  if (ec) return errno_status("mkdir", ec.value(), p.string());
  return {};
}

// An empty file at `p` (a mount point for a file), unless something is there already.
Status make_file(const fs::path& p) {
  const int fd = ::open(p.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) return errno_status("open", errno, p.string());
  ::close(fd);
  return {};
}

Status make_link(const fs::path& at, const std::string& target) {
  std::error_code ec;
  if (fs::is_symlink(at, ec)) {
    if (fs::read_symlink(at, ec).string() == target && !ec) return {};
    return {Code::kAlreadyExists, "host image: " + at.string() + " is a symlink to something other than " + target};
  }
  if (::symlink(target.c_str(), at.c_str()) != 0) return errno_status("symlink", errno, at.string());
  return {};
}

Status build_host_rootfs(const ContainerSpec& spec, const HostImage& host, const fs::path& rootfs) {
  COHORT_TRY(make_dirs(rootfs));
  for (std::string_view top : {"proc", "dev", "sys", "tmp"})
    COHORT_TRY(make_dirs(rootfs / top));
  // runc gives a tmpfs the mode of the directory it mounts over (its mode= option loses): /tmp must
  // already be 1777 here, or the job's user cannot write to it.
  if (::chmod((rootfs / "tmp").c_str(), 01777) != 0) return errno_status("chmod", errno, (rootfs / "tmp").string());
  for (const std::string& dir : host.dirs)
    COHORT_TRY(make_dirs(rootfs / dir));
  for (const auto& [name, target] : host.links)
    COHORT_TRY(make_link(rootfs / name, target));
  for (const ContainerMount& m : spec.mounts) {
    if (in_host_image(host, top_component(m.destination))) continue;  // exists on the node (checked)
    const fs::path point = rootfs / m.destination.substr(1);
    std::error_code ec;
    if (fs::is_directory(m.source, ec)) {
      COHORT_TRY(make_dirs(point));
    } else {
      COHORT_TRY(make_dirs(point.parent_path()));
      COHORT_TRY(make_file(point));
    }
  }
  return {};
}

// runc logs `time="..." level=error msg="container does not exist"`; the msg is what a user reads.
std::string runc_message(const std::string& err) {
  const std::size_t at = err.rfind("msg=\"");
  if (at == std::string::npos) {
    std::string trimmed = err;
    while (!trimmed.empty() && (trimmed.back() == '\n' || trimmed.back() == ' '))
      trimmed.pop_back();
    return trimmed.empty() ? "(no message)" : trimmed;
  }
  std::string msg;
  for (std::size_t i = at + 5; i < err.size() && err[i] != '"'; ++i) {
    if (err[i] == '\\' && i + 1 < err.size()) ++i;
    msg += err[i];
  }
  return msg;
}

bool says_not_found(const Captured& c) {
  return c.err.find("does not exist") != std::string::npos;
}

std::vector<std::string> base_argv(const Runc& runc) {
  std::vector<std::string> argv = {runc.binary.string()};
  if (!runc.root.empty()) {
    argv.emplace_back("--root");
    argv.push_back(runc.root.string());
  }
  return argv;
}

// One bounded runc call; a timeout is an error, a non-zero exit is for the caller to read.
Result<Captured> call(const Runc& runc, std::vector<std::string> args) {
  std::vector<std::string> argv = base_argv(runc);
  argv.insert(argv.end(), args.begin(), args.end());
  const auto timeout = config::get(kRuncCallTimeout);
  SpawnOptions options;
  options.argv = argv;
  auto captured = run_captured(std::move(options), timeout);
  std::string what = "runc";
  for (const std::string& a : args)
    what += " " + a;
  if (!captured.ok()) return captured.status().with_context(what);
  if (captured->timed_out) {
    return Status(Code::kTimedOut, what + " did not answer within " + std::to_string(timeout.count()) + " ms");
  }
  return captured;
}

Status runc_failed(const std::string& what, const Captured& c) {
  return internal_error(what + " " + c.status.describe() + ": " + runc_message(c.err));
}

}  // namespace

Result<DeviceNode> device_node(const fs::path& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return errno_status("stat", errno, path.string());
  DeviceNode d;
  d.path = path;
  if (S_ISCHR(st.st_mode)) {
    d.type = 'c';
  } else if (S_ISBLK(st.st_mode)) {
    d.type = 'b';
  } else {
    return invalid_argument(path.string() + " is not a device node");
  }
  d.major = ::major(st.st_rdev);
  d.minor = ::minor(st.st_rdev);
  d.file_mode = st.st_mode & 07777;
  d.uid = st.st_uid;
  d.gid = st.st_gid;
  return d;
}

std::uint64_t nofile_limit_here(std::uint64_t wanted) {
  rlimit own{};
  if (::getrlimit(RLIMIT_NOFILE, &own) != 0 || own.rlim_max == RLIM_INFINITY || own.rlim_max >= wanted) return wanted;
  // CapEff in /proc/self/status: the effective set, in hex.
  std::ifstream status("/proc/self/status");
  for (std::string line; std::getline(status, line);) {
    if (line.rfind("CapEff:", 0) != 0) continue;
    const std::uint64_t effective = std::strtoull(line.c_str() + 7, nullptr, 16);
    if ((effective >> CAP_SYS_RESOURCE) & 1u) return wanted;
    break;
  }
  return own.rlim_max;
}

HostImage probe_host_image() {
  HostImage host;
  std::error_code ec;
  for (std::string_view dir : kImageDirs) {
    const fs::path p = fs::path("/") / dir;
    if (dir != "opt" || (fs::is_directory(p, ec) && !fs::is_symlink(p, ec))) host.dirs.emplace_back(dir);
  }
  for (std::string_view name : kImageLinkNames) {
    const fs::path p = fs::path("/") / name;
    if (fs::is_symlink(p, ec)) {
      const fs::path target = fs::read_symlink(p, ec);
      if (!ec) host.links.emplace_back(std::string(name), target.string());
    } else if (fs::is_directory(p, ec)) {
      host.dirs.emplace_back(name);  // not merged /usr: bound like usr
    }
  }
  return host;
}

Status check_container_spec(const ContainerSpec& spec) {
  if (spec.rootfs.empty()) {
    const HostImage host = probe_host_image();
    return check_spec(spec, &host);
  }
  return check_spec(spec, nullptr);
}

nlohmann::json oci_config(const ContainerSpec& spec, const HostImage& host, const std::vector<DeviceNode>& devices) {
  using nlohmann::json;
  std::vector<std::string> env = spec.env;
  if (std::none_of(env.begin(), env.end(), [](const std::string& e) { return e.rfind("PATH=", 0) == 0; })) {
    env.push_back(std::string("PATH=") + kDefaultPath);
  }
  const json no_caps = json::array();
  json process = {
      {"terminal", false},
      {"user", {{"uid", spec.uid}, {"gid", spec.gid}, {"additionalGids", json::array()}}},
      {"args", spec.args},
      {"env", env},
      {"cwd", spec.cwd},
      {"capabilities",
       {{"bounding", no_caps},
        {"effective", no_caps},
        {"inheritable", no_caps},
        {"permitted", no_caps},
        {"ambient", no_caps}}},
      {"rlimits", json::array({{{"type", "RLIMIT_NOFILE"}, {"hard", spec.nofile}, {"soft", spec.nofile}}})},
      {"noNewPrivileges", true},
  };

  const std::uint64_t shm = spec.shm_size_bytes == 0 ? kDefaultShmSizeBytes : spec.shm_size_bytes;
  json mounts = json::array({
      mount("/proc", "proc", "proc", {}),
      mount("/dev", "tmpfs", "tmpfs", {"nosuid", "strictatime", "mode=755", "size=65536k"}),
      mount("/dev/pts", "devpts", "devpts", {"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"}),
      mount("/dev/shm", "tmpfs", "shm", {"nosuid", "noexec", "nodev", "mode=1777", "size=" + std::to_string(shm)}),
      mount("/dev/mqueue", "mqueue", "mqueue", {"nosuid", "noexec", "nodev"}),
      mount("/sys", "sysfs", "sysfs", {"nosuid", "noexec", "nodev", "ro"}),
      mount("/tmp", "tmpfs", "tmpfs", {"nosuid", "nodev", "mode=1777"}),
  });
  mounts[0].erase("options");
  if (spec.rootfs.empty()) {
    for (const std::string& dir : host.dirs)
      mounts.push_back(bind_mount("/" + dir, "/" + dir, true));
  }
  for (const ContainerMount& m : spec.mounts)
    mounts.push_back(bind_mount(m.source.string(), m.destination, m.read_only));

  json linux_devices = json::array();
  json rules = json::array({{{"allow", false}, {"access", "rwm"}}});
  for (const DeviceNode& d : devices) {
    const std::string type(1, d.type);
    linux_devices.push_back({{"path", d.path.string()},
                             {"type", type},
                             {"major", d.major},
                             {"minor", d.minor},
                             {"fileMode", d.file_mode},
                             {"uid", d.uid},
                             {"gid", d.gid}});
    rules.push_back({{"allow", true}, {"type", type}, {"major", d.major}, {"minor", d.minor}, {"access", "rwm"}});
  }

  // No network namespace: the job uses the node's network, which is the runner's.
  json namespaces = json::array({{{"type", "pid"}}, {{"type", "ipc"}}, {{"type", "uts"}}, {{"type", "mount"}}});
  json linux_section = {
      {"namespaces", namespaces},
      {"devices", linux_devices},
      {"resources", {{"devices", rules}}},
      // As `runc spec` has them.
      {"maskedPaths",
       {"/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats", "/proc/timer_list",
        "/proc/timer_stats", "/proc/sched_debug", "/sys/firmware", "/proc/scsi"}},
      {"readonlyPaths", {"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"}},
  };

  const fs::path root = spec.rootfs.empty() ? spec.bundle_dir / "rootfs" : spec.rootfs;
  json config = {
      {"ociVersion", "1.0.2"},
      {"process", process},
      {"root", {{"path", absolute_or_same(root).string()}, {"readonly", true}}},
      {"mounts", mounts},
      {"linux", linux_section},
  };
  if (!spec.hostname.empty()) config["hostname"] = spec.hostname;
  return config;
}

nlohmann::json oci_config(const ContainerSpec& spec) {
  std::vector<DeviceNode> devices;
  for (const fs::path& path : spec.devices) {
    auto d = device_node(path);
    if (d.ok()) devices.push_back(*d);
  }
  ContainerSpec here = spec;
  here.nofile = nofile_limit_here(spec.nofile);
  return oci_config(here, spec.rootfs.empty() ? probe_host_image() : HostImage{}, devices);
}

Status write_bundle(const ContainerSpec& spec) {
  const HostImage host = spec.rootfs.empty() ? probe_host_image() : HostImage{};
  COHORT_TRY(check_spec(spec, spec.rootfs.empty() ? &host : nullptr));
  std::vector<DeviceNode> devices;
  for (std::size_t i = 0; i < spec.devices.size(); ++i) {
    auto d = device_node(spec.devices[i]);
    if (!d.ok()) return d.status().with_context("container " + spec.id + ": devices[" + std::to_string(i) + "]");
    devices.push_back(*d);
  }
  const std::string context = "container " + spec.id + ": writing its bundle in " + spec.bundle_dir.string();
  COHORT_TRY(make_dirs(spec.bundle_dir).with_context(context));
  if (spec.rootfs.empty()) COHORT_TRY(build_host_rootfs(spec, host, spec.bundle_dir / "rootfs").with_context(context));
  ContainerSpec here = spec;
  here.nofile = nofile_limit_here(spec.nofile);
  const std::string text = oci_config(here, host, devices).dump(2) + "\n";
  // Through a temporary and a rename: runc never reads half a file.
  return write_file_replacing(spec.bundle_dir / "config.json", text, 0600).with_context(context);
}

std::vector<std::string> Runc::run_argv(const ContainerSpec& spec) const {
  std::vector<std::string> argv = base_argv(*this);
  argv.insert(argv.end(), {"run", "--bundle", absolute_or_same(spec.bundle_dir).string(), spec.id});
  return argv;
}

std::vector<std::string> Runc::force_delete_argv(const std::string& id) const {
  Runc installed = *this;
  if (!installed_binary.empty()) installed.binary = installed_binary;
  std::vector<std::string> argv = base_argv(installed);
  argv.insert(argv.end(), {"delete", "--force", id});
  return argv;
}

std::vector<std::string> Runc::exec_argv(const std::string& id, uid_t uid, gid_t gid,
                                         const std::vector<std::string>& env, const std::string& cwd,
                                         const std::vector<std::string>& args) const {
  std::vector<std::string> argv = base_argv(*this);
  argv.insert(argv.end(), {"exec", "--user", std::to_string(uid) + ":" + std::to_string(gid), "--cwd", cwd});
  for (const std::string& e : env) {
    argv.emplace_back("--env");
    argv.push_back(e);
  }
  argv.push_back(id);
  argv.insert(argv.end(), args.begin(), args.end());
  return argv;
}

Result<std::string> Runc::state(const std::string& id) const {
  COHORT_ASSIGN_OR_RETURN(Captured c, call(*this, {"state", id}));
  if (!c.status.success()) {
    if (says_not_found(c)) return Status(Code::kNotFound, "no container " + id + " in runc root " + root.string());
    return runc_failed("runc state " + id, c);
  }
  auto parsed = nlohmann::json::parse(c.out, nullptr, false);
  if (parsed.is_discarded() || !parsed.is_object() || !parsed.contains("status") || !parsed["status"].is_string()) {
    return Status(Code::kDataLoss, "runc state " + id + ": no \"status\" in its output: " + c.out.substr(0, 200));
  }
  return parsed["status"].get<std::string>();
}

Status Runc::remove(const std::string& id) const {
  // kill --all reaches every process of the container's cgroup, not only its pid 1.
  COHORT_ASSIGN_OR_RETURN(Captured killed, call(*this, {"kill", "--all", id, "KILL"}));
  if (!killed.status.success() && says_not_found(killed)) return {};
  // Other kill failures ("container not running" for a created or stopped one) are delete's to settle.
  COHORT_ASSIGN_OR_RETURN(Captured deleted, call(*this, {"delete", "--force", id}));
  if (!deleted.status.success()) return runc_failed("runc delete --force " + id, deleted);
  auto left = state(id);
  if (left.ok()) return internal_error("runc delete --force " + id + " left it " + *left);
  if (left.status().code() == Code::kNotFound) return {};
  return left.status();
}

Result<std::vector<std::string>> Runc::list(const std::string& prefix) const {
  std::error_code ec;
  if (!root.empty() && !fs::exists(root, ec)) return std::vector<std::string>{};
  COHORT_ASSIGN_OR_RETURN(Captured c, call(*this, {"list", "-q"}));
  if (!c.status.success()) return runc_failed("runc list", c);
  std::vector<std::string> ids;
  std::size_t start = 0;
  while (start < c.out.size()) {
    std::size_t end = c.out.find('\n', start);
    if (end == std::string::npos) end = c.out.size();
    std::string line = c.out.substr(start, end - start);
    if (!line.empty() && line.rfind(prefix, 0) == 0) ids.push_back(std::move(line));
    start = end + 1;
  }
  return ids;
}

Result<fs::path> sealed_runc_copy(const fs::path& binary, const fs::path& dir) {
  fs::path source = binary;
  if (binary.string().find('/') == std::string::npos) {
    const char* path = std::getenv("PATH");
    std::string_view rest = path != nullptr ? path : "/usr/sbin:/usr/bin:/sbin:/bin";
    source.clear();
    while (source.empty() && !rest.empty()) {
      const auto colon = rest.find(':');
      const fs::path candidate = fs::path(rest.substr(0, colon)) / binary;
      if (::access(candidate.c_str(), X_OK) == 0) source = candidate;
      rest = colon == std::string_view::npos ? std::string_view() : rest.substr(colon + 1);
    }
    if (source.empty()) return Status(Code::kNotFound, "no `" + binary.string() + "` on PATH");
  }
  const int in = ::open(source.c_str(), O_RDONLY | O_CLOEXEC);
  if (in < 0) return errno_status("open", errno, source.string());
  const int fd = ::memfd_create("runc", MFD_CLOEXEC | MFD_ALLOW_SEALING);
  if (fd < 0) {
    const int e = errno;
    ::close(in);
    return errno_status("memfd_create", e);
  }
  struct stat st {};
  Status s = ::fstat(in, &st) == 0 ? Status() : errno_status("fstat", errno, source.string());
  for (off_t copied = 0; s.ok() && copied < st.st_size;) {
    const ssize_t n = ::sendfile(fd, in, nullptr, static_cast<std::size_t>(st.st_size - copied));
    if (n <= 0) s = errno_status("sendfile", n < 0 ? errno : EIO, source.string() + " into a memfd");
    copied += n > 0 ? n : 0;
  }
  ::close(in);
  // The seals runc checks for (RUNC_MEMFD_SEALS): nothing can change the copy any more.
  if (s.ok() && ::fcntl(fd, F_ADD_SEALS, F_SEAL_SEAL | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE) != 0)
    s = errno_status("fcntl(F_ADD_SEALS)", errno);
  const fs::path link = dir / "runc";
  std::error_code ec;
  if (s.ok()) {
    fs::create_directories(dir, ec);
    fs::remove(link, ec);
    fs::create_symlink("/proc/" + std::to_string(::getpid()) + "/fd/" + std::to_string(fd), link, ec);
    if (ec) s = Status(Code::kIoError, "cannot link " + link.string() + ": " + ec.message());
  }
  if (!s.ok()) {
    ::close(fd);
    return s;
  }
  return link;  // fd stays open: the copy lives as long as this process
}

Status can_run_containers(const Runc& runc) {
  if (::geteuid() != 0) {
    return failed_precondition("running containers needs the runner to run as root (its effective uid is " +
                               std::to_string(::geteuid()) +
                               "); start cohort-runner as root, or run the job without "
                               "an image");
  }
  const std::string binary = runc.binary.string();
  const auto timeout = config::get(kRuncCallTimeout);
  SpawnOptions options;
  options.argv = {binary, "--version"};
  auto c = run_captured(std::move(options), timeout);
  if (!c.ok() && c.status().code() == Code::kNotFound) {
    const std::string where = binary.find('/') == std::string::npos ? "no `" + binary + "` on PATH" : binary;
    return failed_precondition("runc is not installed (" + where + "); install it (Debian: apt-get install runc)");
  }
  if (!c.ok()) return failed_precondition("cannot run `" + binary + " --version`: " + c.status().message());
  if (c->timed_out) {
    return failed_precondition("`" + binary + " --version` did not answer within " + std::to_string(timeout.count()) +
                               " ms");
  }
  if (!c->status.success()) {
    return failed_precondition("`" + binary + " --version` " + c->status.describe() + ": " + runc_message(c->err));
  }
  return {};
}

}  // namespace cohort::runner
