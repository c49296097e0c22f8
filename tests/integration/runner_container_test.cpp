// The runner's container room: the OCI config it writes (pure), the bundle on disk, and real `runc`
// containers with the host image: the job's user, what it can see and write, /dev/shm, devices,
// exit codes, two containers at once, exec, and removal of a running one. The runc tests skip
// where can_run_containers fails (not root, no runc); each uses its own runc root under /tmp and
// leaves no container, cgroup or directory behind, even on failure. Every wait is bounded.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <future>
#include <iterator>
#include <sstream>
#include <thread>

#include "container.hpp"
#include "subprocess.hpp"
#include "test_support.hpp"

namespace cohort::runner {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
using nlohmann::json;

constexpr auto kRunTimeout = 30s;  // one short container from start to end, on a loaded 2-core machine
constexpr uid_t kNobody = 65534;

using testing::slurp;

void spit(const fs::path& p, const std::string& text) {
  std::ofstream(p) << text;
}

// A directory from mkdtemp(3), removed with everything under it at scope exit.
class TempDir {
 public:
  explicit TempDir(const std::string& pattern) {
    std::string t = pattern;
    if (::mkdtemp(t.data()) != nullptr) path_ = t;
  }
  ~TempDir() {
    std::error_code ec;
    if (!path_.empty()) fs::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

const json* find_mount(const json& config, const std::string& destination) {
  for (const json& m : config["mounts"])
    if (m["destination"] == destination) return &m;
  return nullptr;
}

bool has_option(const json& mount, const std::string& option) {
  const auto& o = mount["options"];
  return std::find(o.begin(), o.end(), option) != o.end();
}

ContainerSpec basic_spec() {
  ContainerSpec s;
  s.id = "job-1.attempt_0-node-a";
  s.bundle_dir = "/var/lib/cohort/bundles/job-1";
  s.hostname = "node-a";
  s.args = {"/bin/sh", "-c", "true"};
  return s;
}

HostImage merged_usr_host() {
  return {{"usr", "etc", "opt"}, {{"bin", "usr/bin"}, {"lib", "usr/lib"}}};
}

// ---------------------------------------------------------------------------------------------
// The config, pure.

TEST(OciConfigTest, JobUserWithoutCapabilitiesOrNewPrivileges) {
  const json c = oci_config(basic_spec(), merged_usr_host(), {});
  EXPECT_EQ(c["ociVersion"], "1.0.2");
  const json& p = c["process"];
  EXPECT_EQ(p["user"]["uid"], 65534);
  EXPECT_EQ(p["user"]["gid"], 65534);
  EXPECT_EQ(p["user"]["additionalGids"], json::array());
  EXPECT_EQ(p["noNewPrivileges"], true);
  EXPECT_EQ(p["terminal"], false);
  for (const char* set : {"bounding", "effective", "inheritable", "permitted", "ambient"}) {
    ASSERT_TRUE(p["capabilities"].contains(set)) << set;
    EXPECT_EQ(p["capabilities"][set], json::array()) << set;
  }
  ASSERT_EQ(p["rlimits"].size(), 1u);
  EXPECT_EQ(p["rlimits"][0]["type"], "RLIMIT_NOFILE");
  EXPECT_EQ(p["rlimits"][0]["soft"], 65536);
  EXPECT_EQ(p["rlimits"][0]["hard"], 65536);
  EXPECT_EQ(p["args"], json({"/bin/sh", "-c", "true"}));
  EXPECT_EQ(p["cwd"], "/");
  EXPECT_EQ(c["hostname"], "node-a");
  EXPECT_EQ(c["root"]["readonly"], true);
  EXPECT_EQ(c["root"]["path"], "/var/lib/cohort/bundles/job-1/rootfs");
}

TEST(OciConfigTest, ExplicitUserIsKept) {
  ContainerSpec s = basic_spec();
  s.uid = 1234;
  s.gid = 99;
  const json c = oci_config(s, merged_usr_host(), {});
  EXPECT_EQ(c["process"]["user"]["uid"], 1234);
  EXPECT_EQ(c["process"]["user"]["gid"], 99);
}

TEST(OciConfigTest, NamespacesLeaveTheNetworkToTheNode) {
  const json c = oci_config(basic_spec(), merged_usr_host(), {});
  std::vector<std::string> types;
  for (const json& ns : c["linux"]["namespaces"]) {
    EXPECT_FALSE(ns.contains("path")) << ns.dump();  // new namespaces, none joined
    types.push_back(ns["type"]);
  }
  std::sort(types.begin(), types.end());
  EXPECT_EQ(types, (std::vector<std::string>{"ipc", "mount", "pid", "uts"}));
}

TEST(OciConfigTest, ShmSizeDefaultsTo64MiB) {
  ContainerSpec s = basic_spec();
  const json defaults = oci_config(s, merged_usr_host(), {});
  const json* shm = find_mount(defaults, "/dev/shm");
  ASSERT_NE(shm, nullptr);
  EXPECT_TRUE(has_option(*shm, "size=67108864")) << shm->dump();
  EXPECT_EQ((*shm)["type"], "tmpfs");

  s.shm_size_bytes = 8ull << 30;
  const json c = oci_config(s, merged_usr_host(), {});
  shm = find_mount(c, "/dev/shm");
  ASSERT_NE(shm, nullptr);
  EXPECT_TRUE(has_option(*shm, "size=8589934592")) << shm->dump();
  EXPECT_TRUE(has_option(*shm, "nosuid"));
  EXPECT_TRUE(has_option(*shm, "nodev"));
}

TEST(OciConfigTest, SystemMountsAsRuncHasThem) {
  const json c = oci_config(basic_spec(), merged_usr_host(), {});
  const json* proc = find_mount(c, "/proc");
  ASSERT_NE(proc, nullptr);
  EXPECT_EQ((*proc)["type"], "proc");
  const json* dev = find_mount(c, "/dev");
  ASSERT_NE(dev, nullptr);
  EXPECT_EQ((*dev)["type"], "tmpfs");
  for (const char* o : {"nosuid", "strictatime", "mode=755", "size=65536k"})
    EXPECT_TRUE(has_option(*dev, o)) << o;
  ASSERT_NE(find_mount(c, "/dev/pts"), nullptr);
  EXPECT_EQ((*find_mount(c, "/dev/pts"))["type"], "devpts");
  ASSERT_NE(find_mount(c, "/dev/mqueue"), nullptr);
  const json* sys = find_mount(c, "/sys");
  ASSERT_NE(sys, nullptr);
  EXPECT_EQ((*sys)["type"], "sysfs");
  for (const char* o : {"ro", "nosuid", "noexec", "nodev"})
    EXPECT_TRUE(has_option(*sys, o)) << o;
  const json* tmp = find_mount(c, "/tmp");
  ASSERT_NE(tmp, nullptr);
  EXPECT_EQ((*tmp)["type"], "tmpfs");
  EXPECT_TRUE(has_option(*tmp, "mode=1777"));

  const std::vector<std::string> masked = c["linux"]["maskedPaths"];
  for (const char* p : {"/proc/kcore", "/proc/keys", "/sys/firmware", "/proc/acpi", "/proc/scsi"})
    EXPECT_NE(std::find(masked.begin(), masked.end(), p), masked.end()) << p;
  const std::vector<std::string> ro = c["linux"]["readonlyPaths"];
  EXPECT_EQ(ro, (std::vector<std::string>{"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"}));
}

TEST(OciConfigTest, HostImageBindsTheNodesSoftwareReadOnly) {
  const json c = oci_config(basic_spec(), merged_usr_host(), {});
  for (const char* d : {"/usr", "/etc", "/opt"}) {
    const json* m = find_mount(c, d);
    ASSERT_NE(m, nullptr) << d;
    EXPECT_EQ((*m)["type"], "bind");
    EXPECT_EQ((*m)["source"], d);
    EXPECT_TRUE(has_option(*m, "rbind"));
    EXPECT_TRUE(has_option(*m, "ro"));
  }
  EXPECT_EQ(find_mount(c, "/bin"), nullptr);  // a symlink in the root, not a mount

  HostImage no_opt = merged_usr_host();
  no_opt.dirs = {"usr", "etc"};
  EXPECT_EQ(find_mount(oci_config(basic_spec(), no_opt, {}), "/opt"), nullptr);
}

TEST(OciConfigTest, OwnRootfsGetsNoHostBinds) {
  ContainerSpec s = basic_spec();
  s.rootfs = "/images/pytorch/rootfs";
  const json c = oci_config(s, merged_usr_host(), {});
  EXPECT_EQ(c["root"]["path"], "/images/pytorch/rootfs");
  EXPECT_EQ(find_mount(c, "/usr"), nullptr);
  EXPECT_EQ(find_mount(c, "/etc"), nullptr);
}

TEST(OciConfigTest, JobMountsReadOnlyUnlessAsked) {
  ContainerSpec s = basic_spec();
  s.mounts = {{"/srv/code/job-1", "/code", true}, {"/srv/out/job-1", "/out", false}};
  const json c = oci_config(s, merged_usr_host(), {});
  const json* code = find_mount(c, "/code");
  ASSERT_NE(code, nullptr);
  EXPECT_EQ((*code)["source"], "/srv/code/job-1");
  EXPECT_EQ((*code)["type"], "bind");
  EXPECT_EQ((*code)["options"], json({"rbind", "ro"}));
  const json* out = find_mount(c, "/out");
  ASSERT_NE(out, nullptr);
  EXPECT_EQ((*out)["options"], json({"rbind"}));
  // After the host image, so a job mount can sit inside /opt.
  const auto& mounts = c["mounts"];
  auto index = [&](const std::string& d) {
    return std::find_if(mounts.begin(), mounts.end(), [&](const json& m) { return m["destination"] == d; }) -
           mounts.begin();
  };
  EXPECT_LT(index("/opt"), index("/code"));
  EXPECT_LT(index("/tmp"), index("/code"));
}

TEST(OciConfigTest, DevicesAreCreatedAndAllowed) {
  ContainerSpec s = basic_spec();
  const std::vector<DeviceNode> devices = {{"/dev/nvidia0", 'c', 195, 0, 0666, 0, 0},
                                           {"/dev/nvidia-uvm", 'c', 509, 0, 0666, 0, 0}};
  const json c = oci_config(s, merged_usr_host(), devices);
  const json& d = c["linux"]["devices"];
  ASSERT_EQ(d.size(), 2u);
  EXPECT_EQ(d[0]["path"], "/dev/nvidia0");
  EXPECT_EQ(d[0]["type"], "c");
  EXPECT_EQ(d[0]["major"], 195);
  EXPECT_EQ(d[0]["minor"], 0);
  EXPECT_EQ(d[0]["fileMode"], 0666);
  EXPECT_EQ(d[1]["major"], 509);
  const json& rules = c["linux"]["resources"]["devices"];
  ASSERT_EQ(rules.size(), 3u);
  EXPECT_EQ(rules[0], json({{"allow", false}, {"access", "rwm"}}));  // deny the rest
  EXPECT_EQ(rules[1], json({{"allow", true}, {"type", "c"}, {"major", 195}, {"minor", 0}, {"access", "rwm"}}));
  EXPECT_EQ(rules[2]["major"], 509);
}

TEST(OciConfigTest, PathIsAddedOnlyWhenMissing) {
  ContainerSpec s = basic_spec();
  s.env = {"FOO=bar"};
  std::vector<std::string> env = oci_config(s, merged_usr_host(), {})["process"]["env"];
  EXPECT_EQ(env, (std::vector<std::string>{"FOO=bar", std::string("PATH=") + kDefaultPath}));
  s.env = {"PATH=/opt/conda/bin:/usr/bin", "FOO=bar"};
  env = oci_config(s, merged_usr_host(), {})["process"]["env"].get<std::vector<std::string>>();
  EXPECT_EQ(env, s.env);
}

TEST(OciConfigTest, TheNodesDevicesAreStatted) {
  ContainerSpec s = basic_spec();
  s.devices = {"/dev/null"};
  const json d = oci_config(s)["linux"]["devices"];
  ASSERT_EQ(d.size(), 1u);
  EXPECT_EQ(d[0]["major"], 1);
  EXPECT_EQ(d[0]["minor"], 3);
}

TEST(DeviceNodeTest, ReadsTypeNumbersAndMode) {
  auto null = device_node("/dev/null");
  ASSERT_TRUE(null.ok()) << null.status().to_string();
  EXPECT_EQ(null->type, 'c');
  EXPECT_EQ(null->major, 1u);
  EXPECT_EQ(null->minor, 3u);
  EXPECT_EQ(null->file_mode, 0666u);
  EXPECT_EQ(device_node("/etc/passwd").status().code(), Code::kInvalidArgument);
  EXPECT_EQ(device_node("/dev/cohort-no-such-device").status().code(), Code::kNotFound);
}

TEST(NofileLimitTest, NeverAboveWhatThisProcessCanGrant) {
  rlimit own{};
  ASSERT_EQ(::getrlimit(RLIMIT_NOFILE, &own), 0);
  EXPECT_EQ(nofile_limit_here(64), 64u);  // below our own hard limit: always grantable
  const std::uint64_t big = nofile_limit_here(1u << 20);
  EXPECT_TRUE(big == (1u << 20) || big == own.rlim_max) << big;
  ContainerSpec s = basic_spec();
  s.nofile = 4096;
  const json c = oci_config(s, merged_usr_host(), {});
  EXPECT_EQ(c["process"]["rlimits"][0]["soft"], 4096);
  EXPECT_EQ(c["process"]["rlimits"][0]["hard"], 4096);
}

TEST(ProbeHostImageTest, CopiesWhatTheNodeHas) {
  const HostImage host = probe_host_image();
  EXPECT_NE(std::find(host.dirs.begin(), host.dirs.end(), "usr"), host.dirs.end());
  EXPECT_NE(std::find(host.dirs.begin(), host.dirs.end(), "etc"), host.dirs.end());
  EXPECT_EQ(std::find(host.dirs.begin(), host.dirs.end(), "opt") != host.dirs.end(), fs::is_directory("/opt"));
  for (const char* name : {"bin", "sbin", "lib", "lib64"}) {
    const bool linked =
        std::any_of(host.links.begin(), host.links.end(), [&](const auto& l) { return l.first == name; });
    EXPECT_EQ(linked, fs::is_symlink(fs::path("/") / name)) << name;
  }
  for (const auto& [name, target] : host.links)
    EXPECT_EQ(target, fs::read_symlink(fs::path("/") / name).string()) << name;
}

TEST(ContainerSpecTest, BadIdsAreRefused) {
  TempDir dir("/tmp/cohort-ctr-spec-XXXXXX");
  ASSERT_FALSE(dir.path().empty());
  const std::vector<std::string> bad = {"", "a/b", "..", ".", "job 1", "job;rm", "j\xc3\xa9", std::string(256, 'a')};
  for (const std::string& id : bad) {
    ContainerSpec s = basic_spec();
    s.id = id;
    s.bundle_dir = dir.path() / "bundle";
    EXPECT_EQ(check_container_spec(s).code(), Code::kInvalidArgument) << "id \"" << id << "\"";
    const Status written = write_bundle(s);
    EXPECT_EQ(written.code(), Code::kInvalidArgument) << "id \"" << id << "\"";
    EXPECT_NE(written.message().find("id"), std::string::npos) << written.message();
    EXPECT_FALSE(fs::exists(s.bundle_dir)) << "id \"" << id << "\"";
  }
  ContainerSpec good = basic_spec();
  good.id = "Job_1.attempt-2";
  EXPECT_TRUE(check_container_spec(good).ok()) << check_container_spec(good).to_string();
}

TEST(ContainerSpecTest, BadFieldsAreNamed) {
  auto refused = [](const ContainerSpec& s, Code code, const std::string& field) {
    const Status st = check_container_spec(s);
    EXPECT_EQ(st.code(), code) << st.to_string();
    EXPECT_NE(st.message().find(field), std::string::npos) << st.message();
  };
  ContainerSpec s = basic_spec();
  s.args.clear();
  refused(s, Code::kInvalidArgument, "args");
  s = basic_spec();
  s.cwd = "work";
  refused(s, Code::kInvalidArgument, "cwd");
  s = basic_spec();
  s.env = {"NOEQUALS"};
  refused(s, Code::kInvalidArgument, "env[0]");
  s = basic_spec();
  s.hostname = "bad host";
  refused(s, Code::kInvalidArgument, "hostname");
  for (const char* dest : {"code", "/", "/code/", "/a/../b", "/proc/x", "/dev/shm", "/sys"}) {
    s = basic_spec();
    s.mounts = {{"/etc", dest, true}};
    refused(s, Code::kInvalidArgument, "mounts[0].destination");
  }
  s = basic_spec();
  s.mounts = {{"/etc", "/usr/cohort-no-such-dir", true}};  // can't be made in the node's read-only /usr
  refused(s, Code::kInvalidArgument, "mounts[0].destination");
  s = basic_spec();
  s.mounts = {{"/cohort-no-such-source", "/code", true}};
  refused(s, Code::kNotFound, "mounts[0].source");
  s = basic_spec();
  s.devices = {"/tmp/x"};
  refused(s, Code::kInvalidArgument, "devices[0]");
}

TEST(WriteBundleTest, BuildsTheHostImageRoot) {
  TempDir dir("/tmp/cohort-ctr-bundle-XXXXXX");
  ASSERT_FALSE(dir.path().empty());
  fs::create_directories(dir.path() / "code");
  spit(dir.path() / "job.json", "{}\n");
  ContainerSpec s = basic_spec();
  s.bundle_dir = dir.path() / "bundle";
  s.mounts = {{dir.path() / "code", "/work/code", true},
              {dir.path() / "job.json", "/config/job.json", true},
              {dir.path() / "code", "/usr/bin", true}};  // over an existing host path: no mount point made
  s.devices = {"/dev/null"};
  ASSERT_TRUE(write_bundle(s).ok()) << write_bundle(s).to_string();

  const fs::path root = s.bundle_dir / "rootfs";
  EXPECT_TRUE(fs::is_directory(root / "usr"));
  EXPECT_TRUE(fs::is_empty(root / "usr"));
  EXPECT_TRUE(fs::is_directory(root / "etc"));
  EXPECT_EQ(fs::is_directory(root / "opt"), fs::is_directory("/opt"));
  for (const char* name : {"bin", "sbin", "lib", "lib64"}) {
    const fs::path host = fs::path("/") / name;
    EXPECT_EQ(fs::is_symlink(root / name), fs::is_symlink(host)) << name;
    if (fs::is_symlink(host)) {
      EXPECT_EQ(fs::read_symlink(root / name), fs::read_symlink(host)) << name;
    }
  }
  struct stat tmp {};
  ASSERT_EQ(::stat((root / "tmp").c_str(), &tmp), 0);
  EXPECT_EQ(tmp.st_mode & 07777, 01777u);  // runc keeps it for the tmpfs mounted there
  EXPECT_TRUE(fs::is_directory(root / "work/code"));
  EXPECT_TRUE(fs::is_regular_file(root / "config/job.json"));
  EXPECT_FALSE(fs::exists(root / "home"));
  EXPECT_FALSE(fs::exists(root / "root"));

  struct stat st {};
  ASSERT_EQ(::stat((s.bundle_dir / "config.json").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);  // the environment may hold secrets
  const json written = json::parse(slurp(s.bundle_dir / "config.json"));
  EXPECT_EQ(written, oci_config(s));
  EXPECT_EQ(written["root"]["path"], root.string());

  // Idempotent: a second write (a retried start) keeps the root and rewrites the config.
  s.env = {"X=1"};
  ASSERT_TRUE(write_bundle(s).ok()) << write_bundle(s).to_string();
  EXPECT_EQ(json::parse(slurp(s.bundle_dir / "config.json"))["process"]["env"][0], "X=1");
}

TEST(WriteBundleTest, MissingDeviceIsReported) {
  TempDir dir("/tmp/cohort-ctr-bundle-XXXXXX");
  ContainerSpec s = basic_spec();
  s.bundle_dir = dir.path() / "bundle";
  s.devices = {"/dev/cohort-no-such-gpu"};
  const Status st = write_bundle(s);
  EXPECT_EQ(st.code(), Code::kNotFound) << st.to_string();
  EXPECT_NE(st.message().find("/dev/cohort-no-such-gpu"), std::string::npos) << st.message();
}

TEST(RuncArgvTest, RunAndExecCommandLines) {
  Runc runc{"/usr/sbin/runc", "/run/cohort/runc"};
  ContainerSpec s = basic_spec();
  EXPECT_EQ(runc.run_argv(s), (std::vector<std::string>{"/usr/sbin/runc", "--root", "/run/cohort/runc", "run",
                                                        "--bundle", "/var/lib/cohort/bundles/job-1", s.id}));
  EXPECT_EQ(runc.exec_argv("c1", 1000, 100, {"A=1", "B=2"}, "/work", {"orted", "-mca", "x"}),
            (std::vector<std::string>{"/usr/sbin/runc", "--root", "/run/cohort/runc", "exec", "--user", "1000:100",
                                      "--cwd", "/work", "--env", "A=1", "--env", "B=2", "c1", "orted", "-mca", "x"}));
  Runc default_root;
  EXPECT_EQ(default_root.run_argv(s)[1], "run");
  // The keeper's delete outlives the runner's sealed copy: it runs runc as installed.
  Runc sealed{"/work/bin/runc", "/run/cohort/runc", "/usr/sbin/runc"};
  EXPECT_EQ(sealed.force_delete_argv("c1"),
            (std::vector<std::string>{"/usr/sbin/runc", "--root", "/run/cohort/runc", "delete", "--force", "c1"}));
  EXPECT_EQ(runc.force_delete_argv("c1").front(), "/usr/sbin/runc");
}

TEST(CanRunContainersTest, SaysWhyNot) {
  const Status st = can_run_containers(Runc{"/cohort-no-such-dir/runc", "/tmp"});
  EXPECT_EQ(st.code(), Code::kFailedPrecondition) << st.to_string();
  const std::string expected = ::geteuid() == 0 ? "runc is not installed" : "root";
  EXPECT_NE(st.message().find(expected), std::string::npos) << st.message();
}

TEST(SealedRuncCopyTest, IsASealedCopyThatRunsFromItsLink) {
  TempDir dir("/tmp/cohort-sealed-XXXXXX");
  auto link = sealed_runc_copy("true", dir.path());  // any program will do: looked up on PATH
  ASSERT_TRUE(link.ok()) << link.status().to_string();
  EXPECT_EQ(*link, dir.path() / "runc");
  EXPECT_TRUE(fs::is_symlink(*link));
  const int fd = ::open(link->c_str(), O_RDONLY | O_CLOEXEC);
  ASSERT_GE(fd, 0);
  // What runc checks to skip its own copy (RUNC_MEMFD_SEALS), and a write is refused.
  EXPECT_EQ(::fcntl(fd, F_GET_SEALS), F_SEAL_SEAL | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE);
  EXPECT_LT(::pwrite(fd, "x", 1, 0), 0);
  ::close(fd);
  auto ran = run_captured({.argv = {link->string()}}, std::chrono::seconds(10));
  ASSERT_TRUE(ran.ok()) << ran.status().to_string();
  EXPECT_TRUE(ran->status.success()) << ran->status.describe();
  auto missing = sealed_runc_copy("cohort-no-such-runc", dir.path());
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.status().message().find("cohort-no-such-runc"), std::string::npos) << missing.status().to_string();
}

// ---------------------------------------------------------------------------------------------
// Real containers.

// The directories under /sys/fs/cgroup where runc would put container `id` (next to our own cgroup).
std::vector<fs::path> cgroup_dirs_for(const std::string& id) {
  std::vector<fs::path> dirs;
  std::istringstream in(slurp("/proc/self/cgroup"));
  for (std::string line; std::getline(in, line);) {
    const auto a = line.find(':');
    const auto b = line.find(':', a + 1);
    if (a == std::string::npos || b == std::string::npos) continue;
    std::string controllers = line.substr(a + 1, b - a - 1);
    if (controllers.rfind("name=", 0) == 0) controllers = controllers.substr(5);
    if (controllers.empty()) controllers = fs::is_directory("/sys/fs/cgroup/unified") ? "unified" : "";
    dirs.push_back(fs::path("/sys/fs/cgroup") / controllers / line.substr(b + 2) / id);
  }
  return dirs;
}

class RuncContainerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const Status can = can_run_containers(runc_);
    if (!can.ok()) GTEST_SKIP() << can.to_string();
    root_ = std::make_unique<TempDir>("/tmp/cohort-ctr-test-XXXXXX");
    work_ = std::make_unique<TempDir>("/var/tmp/cohort-ctr-work-XXXXXX");  // outside every mount
    ASSERT_FALSE(root_->path().empty());
    ASSERT_FALSE(work_->path().empty());
    runc_.root = root_->path();
  }

  void TearDown() override {
    if (!root_) return;
    auto left = runc_.list("");
    EXPECT_TRUE(left.ok()) << left.status().to_string();
    if (left.ok()) {
      EXPECT_TRUE(left->empty()) << left->size() << " container(s) outlived the test, first " << left->front();
      for (const std::string& id : *left)
        EXPECT_TRUE(runc_.remove(id).ok());
    }
    EXPECT_TRUE(fs::is_empty(root_->path())) << "leftovers in the runc root " << root_->path();
    root_.reset();
    work_.reset();
  }

  // A container of the host image running `script` in /bin/sh as nobody.
  ContainerSpec spec(const std::string& name, const std::string& script) {
    ContainerSpec s;
    s.id = "cohort-test-" + name + "-" + std::to_string(::getpid());
    s.bundle_dir = work_->path() / ("bundle-" + name);
    s.hostname = "ctr-" + name;
    s.args = {"/bin/sh", "-c", script};
    return s;
  }

  // Writes the bundle, runs the container in the foreground to its end, then checks it is gone.
  Captured run(const ContainerSpec& s) {
    Status written = write_bundle(s);
    EXPECT_TRUE(written.ok()) << written.to_string();
    if (!written.ok()) return {};
    auto c = run_captured(SpawnOptions{.argv = runc_.run_argv(s)}, kRunTimeout);
    EXPECT_TRUE(c.ok()) << c.status().to_string();
    if (!c.ok()) return {};
    EXPECT_FALSE(c->timed_out) << "runc run of " << s.id << " still ran after 30 s";
    finish(s);
    return *c;
  }

  // Runc::remove, then: runc knows nothing of it, nothing of it stays in the root or the cgroups.
  void finish(const ContainerSpec& s) {
    const Status removed = runc_.remove(s.id);
    EXPECT_TRUE(removed.ok()) << removed.to_string();
    EXPECT_EQ(runc_.state(s.id).status().code(), Code::kNotFound);
    EXPECT_FALSE(fs::exists(root_->path() / s.id));
    for (const fs::path& d : cgroup_dirs_for(s.id))
      EXPECT_FALSE(fs::exists(d)) << "cgroup left behind: " << d;
    std::error_code ec;
    fs::remove_all(s.bundle_dir, ec);
    EXPECT_FALSE(ec) << ec.message();
  }

  // Starts `runc run` of `s` in the background and waits (bounded) until it is running.
  Result<Subprocess> start(const ContainerSpec& s) {
    COHORT_TRY(write_bundle(s));
    COHORT_ASSIGN_OR_RETURN(Subprocess child, Subprocess::spawn(SpawnOptions{.argv = runc_.run_argv(s)}));
    const auto deadline = Clock::now() + 10s;
    while (Clock::now() < deadline) {
      auto state = runc_.state(s.id);
      if (state.ok() && *state == "running") return child;
      std::this_thread::sleep_for(20ms);
    }
    return Status(Code::kTimedOut, s.id + " was not running after 10 s");
  }

  Runc runc_;
  std::unique_ptr<TempDir> root_;
  std::unique_ptr<TempDir> work_;
};

TEST_F(RuncContainerTest, RunsAsTheJobsUserWithItsHostname) {
  const Captured c = run(spec("user", "id -u; id -g; hostname; id -G"));
  EXPECT_EQ(c.status.code, 0) << c.err;
  EXPECT_EQ(c.out, "65534\n65534\nctr-user\n65534\n") << c.err;
}

TEST_F(RuncContainerTest, OpenFilesLimitIsSet) {
  const Captured c = run(spec("nofile", "ulimit -n; ulimit -Hn"));
  EXPECT_EQ(c.status.code, 0) << c.err;
  const std::string n = std::to_string(nofile_limit_here(65536));
  EXPECT_EQ(c.out, n + "\n" + n + "\n") << c.err;
}

TEST_F(RuncContainerTest, ExitCodeIsPassedThrough) {
  const Captured c = run(spec("exit", "exit 7"));
  EXPECT_EQ(c.status.signal, 0);
  EXPECT_EQ(c.status.code, 7) << c.err;
}

TEST_F(RuncContainerTest, HostImageIsReadOnlyAndShowsNothingElse) {
  const fs::path secret = work_->path() / "secret";
  fs::create_directories(secret);
  spit(secret / "data", "secret\n");
  TempDir root_secret("/root/cohort-ctr-secret-XXXXXX");
  ASSERT_FALSE(root_secret.path().empty());
  const std::string script =
      "touch /usr/cohort-x 2>/dev/null && echo usr-writable; "
      "touch /etc/cohort-x 2>/dev/null && echo etc-writable; "
      "touch /cohort-x 2>/dev/null && echo root-writable; "
      "test -e " +
      secret.string() +
      " && echo var-tmp-visible; "
      "test -e /var && echo var-visible; "
      "test -e " +
      root_secret.path().string() +
      " && echo root-secret-visible; "
      "test -e /root && echo root-visible; test -e /home && echo home-visible; "
      "touch /tmp/x && echo tmp-ok; echo x > /dev/shm/y && echo shm-ok; "
      "test -x /usr/bin/env && test -f /etc/passwd && echo image-ok";
  const Captured c = run(spec("image", script));
  EXPECT_EQ(c.status.code, 0) << c.err;
  EXPECT_EQ(c.out, "tmp-ok\nshm-ok\nimage-ok\n") << c.err;
  EXPECT_FALSE(fs::exists("/usr/cohort-x"));
  EXPECT_FALSE(fs::exists("/etc/cohort-x"));
}

TEST_F(RuncContainerTest, CodeMountIsReadOnlyAndOutputMountWritable) {
  const fs::path code = work_->path() / "code";
  const fs::path out = work_->path() / "out";
  fs::create_directories(code);
  fs::create_directories(out);
  spit(code / "main.txt", "print('hi')\n");
  spit(work_->path() / "job.json", "{\"rank\": 0}\n");
  // Only the read-only mount may stop the job writing its code: the permissions would not.
  fs::permissions(code, fs::perms::all);
  fs::permissions(code / "main.txt", fs::perms::all);
  ASSERT_EQ(::chown(out.c_str(), kNobody, kNobody), 0);

  ContainerSpec s = spec("mounts",
                         "cat /code/main.txt; touch /code/new 2>/dev/null && echo code-writable; "
                         "echo more >> /code/main.txt 2>/dev/null && echo code-appendable; "
                         "echo result > /out/result.txt && echo out-ok; cat /config/job.json; "
                         "echo x > /config/job.json 2>/dev/null && echo file-writable; pwd");
  s.mounts = {{code, "/code", true}, {out, "/out", false}, {work_->path() / "job.json", "/config/job.json", true}};
  s.cwd = "/code";
  const Captured c = run(s);
  EXPECT_EQ(c.status.code, 0) << c.err;
  EXPECT_EQ(c.out, "print('hi')\nout-ok\n{\"rank\": 0}\n/code\n") << c.err;
  EXPECT_EQ(slurp(out / "result.txt"), "result\n");
  struct stat st {};
  ASSERT_EQ(::stat((out / "result.txt").c_str(), &st), 0);
  EXPECT_EQ(st.st_uid, kNobody);
  EXPECT_FALSE(fs::exists(code / "new"));
  EXPECT_EQ(slurp(code / "main.txt"), "print('hi')\n");
}

TEST_F(RuncContainerTest, ShmHasTheRequestedSize) {
  ContainerSpec s = spec("shm", "stat -f -c '%b %S' /dev/shm");
  s.shm_size_bytes = 32ull << 20;
  Captured c = run(s);
  EXPECT_EQ(c.status.code, 0) << c.err;
  std::istringstream in(c.out);
  std::uint64_t blocks = 0, block_size = 0;
  in >> blocks >> block_size;
  EXPECT_EQ(blocks * block_size, 32ull << 20) << c.out;

  c = run(spec("shm-default", "stat -f -c '%b %S' /dev/shm"));
  std::istringstream in2(c.out);
  in2 >> blocks >> block_size;
  EXPECT_EQ(blocks * block_size, kDefaultShmSizeBytes) << c.out;
}

TEST_F(RuncContainerTest, ExposesOnlyTheAskedDevices) {
  auto fuse = device_node("/dev/fuse");
  if (!fuse.ok()) GTEST_SKIP() << "no /dev/fuse on this machine to expose: " << fuse.status().to_string();
  ContainerSpec s = spec("devices",
                         "stat -c '%F %t:%T %a' /dev/fuse; test -e /dev/kvm && echo kvm-visible; "
                         "test -e /dev/loop0 && echo loop-visible; echo done");
  s.devices = {"/dev/fuse"};
  const Captured c = run(s);
  EXPECT_EQ(c.status.code, 0) << c.err;
  std::ostringstream expected;
  expected << "character special file " << std::hex << fuse->major << ":" << fuse->minor << " " << std::oct
           << fuse->file_mode << "\ndone\n";
  EXPECT_EQ(c.out, expected.str()) << c.err;
}

TEST_F(RuncContainerTest, TwoContainersRunAtOnce) {
  // Each waits for the other's mark in a shared directory: both pass only when both run together.
  const fs::path shared = work_->path() / "shared";
  fs::create_directories(shared);
  ASSERT_EQ(::chown(shared.c_str(), kNobody, kNobody), 0);
  auto script = [](const std::string& mine, const std::string& theirs) {
    return "touch /x/" + mine + "; i=0; while [ ! -e /x/" + theirs +
           " ]; do i=$((i+1)); [ $i -gt 400 ] && exit 3; sleep 0.05; done; hostname";
  };
  ContainerSpec a = spec("pair-a", script("a", "b"));
  ContainerSpec b = spec("pair-b", script("b", "a"));
  a.mounts = b.mounts = {{shared, "/x", false}};
  ASSERT_TRUE(write_bundle(a).ok());
  ASSERT_TRUE(write_bundle(b).ok());
  auto run_one = [this](const ContainerSpec& s) {
    return run_captured(SpawnOptions{.argv = runc_.run_argv(s)}, kRunTimeout);
  };
  auto fa = std::async(std::launch::async, run_one, a);
  auto fb = std::async(std::launch::async, run_one, b);
  auto ca = fa.get();
  auto cb = fb.get();
  ASSERT_TRUE(ca.ok()) << ca.status().to_string();
  ASSERT_TRUE(cb.ok()) << cb.status().to_string();
  EXPECT_EQ(ca->status.code, 0) << ca->err;
  EXPECT_EQ(cb->status.code, 0) << cb->err;
  EXPECT_EQ(ca->out, "ctr-pair-a\n");
  EXPECT_EQ(cb->out, "ctr-pair-b\n");
  finish(a);
  finish(b);
}

TEST_F(RuncContainerTest, ExecRunsInTheRunningContainer) {
  ContainerSpec s = spec("exec", "exec sleep 60");
  auto child = start(s);
  ASSERT_TRUE(child.ok()) << child.status().to_string();
  auto c =
      run_captured(SpawnOptions{.argv = runc_.exec_argv(s.id, 1000, 1000, {"FOO=bar"}, "/tmp",
                                                        {"/bin/sh", "-c", "id -u; pwd; echo $FOO; hostname; exit 5"})},
                   kRunTimeout);
  ASSERT_TRUE(c.ok()) << c.status().to_string();
  EXPECT_EQ(c->status.code, 5) << c->err;
  EXPECT_EQ(c->out, "1000\n/tmp\nbar\nctr-exec\n") << c->err;
  finish(s);
  auto ended = child->wait_for(5s);
  ASSERT_TRUE(ended.ok());
  EXPECT_TRUE(ended->has_value()) << "runc run still running after its container was removed";
}

// The runner's stop: its `runc run` is not the test's to kill, Runc::remove alone must do it.
TEST_F(RuncContainerTest, RemoveKillsAndDeletesARunningContainerWithin5s) {
  ContainerSpec s = spec("remove", "sleep 60 & sleep 60");  // two processes: kill --all must reach both
  auto child = start(s);
  ASSERT_TRUE(child.ok()) << child.status().to_string();
  auto listed = runc_.list("cohort-test-remove");
  ASSERT_TRUE(listed.ok()) << listed.status().to_string();
  EXPECT_EQ(*listed, std::vector<std::string>{s.id});
  EXPECT_TRUE(runc_.list("other-prefix")->empty());

  const auto t0 = Clock::now();
  const Status removed = runc_.remove(s.id);
  const auto took = Clock::now() - t0;
  EXPECT_TRUE(removed.ok()) << removed.to_string();
  EXPECT_LT(took, 5s);
  EXPECT_EQ(runc_.state(s.id).status().code(), Code::kNotFound);
  auto ended = child->wait_for(5s);
  ASSERT_TRUE(ended.ok());
  ASSERT_TRUE(ended->has_value()) << "runc run still running after remove";
  EXPECT_EQ((*ended)->shell_code(), 128 + SIGKILL);
  finish(s);
}

// The trap: SIGKILL of a foreground `runc run` leaves its container running; remove still ends it.
TEST_F(RuncContainerTest, KilledRuncLeavesTheContainerForRemove) {
  ContainerSpec s = spec("orphan", "exec sleep 60");
  auto child = start(s);
  ASSERT_TRUE(child.ok()) << child.status().to_string();
  ASSERT_TRUE(child->signal(SIGKILL).ok());
  ASSERT_TRUE(child->wait_for(5s).ok());
  std::this_thread::sleep_for(100ms);
  auto state = runc_.state(s.id);
  ASSERT_TRUE(state.ok()) << state.status().to_string();
  EXPECT_EQ(*state, "running");
  EXPECT_TRUE(runc_.remove(s.id).ok());
  finish(s);
}

TEST_F(RuncContainerTest, UnknownContainers) {
  EXPECT_TRUE(runc_.remove("cohort-no-such-container").ok());
  EXPECT_EQ(runc_.state("cohort-no-such-container").status().code(), Code::kNotFound);
  auto listed = runc_.list("");
  ASSERT_TRUE(listed.ok()) << listed.status().to_string();
  EXPECT_TRUE(listed->empty());
  const Runc missing{"runc", root_->path() / "not-yet"};
  listed = missing.list("");
  ASSERT_TRUE(listed.ok()) << listed.status().to_string();
  EXPECT_TRUE(listed->empty());
  EXPECT_FALSE(fs::exists(missing.root)) << "list created the runc root";
}

// How long a container takes to start and end with the host image; printed for the record.
TEST_F(RuncContainerTest, StartsQuickly) {
  std::vector<double> ms;
  for (int i = 0; i < 5; ++i) {
    ContainerSpec s = spec("true-" + std::to_string(i), "true");
    s.args = {"/bin/true"};
    ASSERT_TRUE(write_bundle(s).ok());
    const auto t0 = Clock::now();
    auto c = run_captured(SpawnOptions{.argv = runc_.run_argv(s)}, kRunTimeout);
    ms.push_back(std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
    ASSERT_TRUE(c.ok()) << c.status().to_string();
    EXPECT_EQ(c->status.code, 0) << c->err;
    finish(s);
  }
  std::sort(ms.begin(), ms.end());
  std::cout << "runc run /bin/true (host image): min " << ms.front() << " ms, median " << ms[2] << " ms, max "
            << ms.back() << " ms\n";
  RecordProperty("runc_run_true_median_ms", std::to_string(ms[2]));
  EXPECT_LT(ms[2], 5000.0);
}

}  // namespace
}  // namespace cohort::runner
