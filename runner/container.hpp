// The container room of the node runner: an OCI runtime bundle for one job attempt on one node,
// and the `runc` command lines that run, inspect and remove it.
//
// A container here isolates a job's processes (pid, ipc, uts and mount namespaces, no
// capabilities, a non-root user, a read-only root) but NOT its network: the job shares the
// runner's network namespace, which is the node's, so the collectives' TCP/IB traffic needs no
// bridge or port mapping.
//
// The "host image" (ContainerSpec::rootfs empty) is the node's own software seen through an empty
// root: /usr, /etc (and /opt) bound read-only, the merged-/usr symlinks copied, nothing else of the
// host (no /home, /root, /var, /srv, /tmp) visible.
//
// Traps of runc 1.1 met on these machines:
//  - `runc run` in the foreground does NOT take its container down when runc itself is SIGKILLed:
//    the container's pid 1 is reparented and keeps running. Runc::remove is the only sure stop.
//  - `runc list` creates its --root directory when it is missing; Runc::list does not call it then.
//  - `runc delete --force` of an unknown id succeeds silently, `runc kill` of one fails
//    ("container does not exist"), `runc state` of one fails the same way.
//  - With no cgroupsPath, runc puts the container in <runner's own cgroup>/<id> in every hierarchy:
//    container ids must be unique per machine, not only per --root.
//  - A tmpfs mounted over a directory that exists in the rootfs gets that directory's mode; its mode=
//    option loses. The host image's rootfs/tmp is therefore made 1777.
//  - RLIMIT_NOFILE above the runner's own hard limit needs CAP_SYS_RESOURCE, which a runner in a
//    Docker container lacks: runc fails "error setting rlimit type 7" (see nofile_limit_here).
//  - `runc exec --env` adds to (and overrides) the container's process environment; it cannot
//    replace it. runc also sets HOME from the image's /etc/passwd when it is not given.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <filesystem>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "cohort/status.hpp"
#include "config.hpp"

namespace cohort::runner {

// Every runc call but `run` and `exec` (which last as long as the job) is bounded by this.
inline constexpr config::Knob kRuncCallTimeout{
    "runc_call", std::chrono::milliseconds(10000),
    "state, kill, delete and list answer in ~10 ms; 10 s survives a loaded node and still bounds a runc stuck on a "
    "hung mount, so a runner's sweep never hangs"};

struct ContainerMount {
  std::filesystem::path source;  // on the node; a directory or a file (then the mount point is a file)
  std::string destination;       // absolute path inside the container
  bool read_only = true;
  bool file = false;  // a writable output that is one file: created as a file, not a directory
};

struct ContainerSpec {
  std::string id;                    // runc container id, [A-Za-z0-9_.-]+, unique on the machine
  std::filesystem::path bundle_dir;  // config.json (and rootfs/ for the host image) are written here
  std::filesystem::path rootfs;      // an unpacked root filesystem; empty: the host image
  std::string hostname;              // the container's hostname (its own UTS namespace); empty: the node's
  uid_t uid = 65534;                 // the job's user: never root by default
  gid_t gid = 65534;
  std::vector<std::string> args;       // the container's process (pid 1 of its pid namespace)
  std::vector<std::string> env;        // "NAME=value", the process's whole environment (PATH added when absent)
  std::string cwd = "/";               // inside the container
  std::vector<ContainerMount> mounts;  // code, inputs, outputs, checkpoints, cohort's helper binaries...
  std::uint64_t shm_size_bytes = 0;    // size of /dev/shm; 0 = 64 MiB
  // RLIMIT_NOFILE of the process (soft = hard). write_bundle lowers it to what this runner can grant
  // (see nofile_limit_here).
  std::uint64_t nofile = 65536;
  // Extra device nodes to expose (GPUs: /dev/nvidia0, /dev/nvidiactl, /dev/nvidia-uvm...), same path inside.
  std::vector<std::filesystem::path> devices;
};

inline constexpr std::uint64_t kDefaultShmSizeBytes = 64ull << 20;
inline constexpr const char* kDefaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

// A device node as the kernel sees it, for linux.devices and the device cgroup's allow rules.
struct DeviceNode {
  std::filesystem::path path;
  char type = 'c';  // 'c' (character) or 'b' (block)
  std::uint32_t major = 0;
  std::uint32_t minor = 0;
  std::uint32_t file_mode = 0666;  // permission bits only
  uid_t uid = 0;
  gid_t gid = 0;
};
// stat(2) of `path`: NotFound when it is missing, InvalidArgument when it is not a device node.
Result<DeviceNode> device_node(const std::filesystem::path& path);

// The RLIMIT_NOFILE a container started by this process can have: `wanted`, or this process's own
// hard limit when that is lower and it lacks CAP_SYS_RESOURCE to go above it (a runner inside a
// Docker container: runc then fails with "error setting rlimit type 7: operation not permitted").
std::uint64_t nofile_limit_here(std::uint64_t wanted);

// What the host image takes from the node's root.
struct HostImage {
  std::vector<std::string> dirs;                           // bound read-only at the same place: "usr", "etc", "opt"
  std::vector<std::pair<std::string, std::string>> links;  // copied symlinks: {"bin", "usr/bin"}, ...
};
// The node's: usr and etc always; opt when it is a directory; bin, sbin, lib, lib32, lib64, libx32 as
// symlinks when they are symlinks on the host (merged /usr), bound like usr when they are directories.
HostImage probe_host_image();

// The first thing wrong with `spec`, naming the field: a bad id, an empty command, a relative path,
// a mount destination that runc cannot or must not create (under /proc, /sys, /dev, or a path of the
// host image that the node lacks), a missing mount source, an env entry without '='.
Status check_container_spec(const ContainerSpec& spec);

// The OCI runtime-spec config.json for `spec` (pure). REQUIRES: check_container_spec(spec) is OK.
// `host` is used only for the host image (spec.rootfs empty).
nlohmann::json oci_config(const ContainerSpec& spec, const HostImage& host, const std::vector<DeviceNode>& devices);
// The same with the node's host image, its devices and nofile_limit_here; a device that cannot be
// stat'ed is left out (write_bundle, which reports it instead, does not use this one).
nlohmann::json oci_config(const ContainerSpec& spec);

// Checks `spec`, then writes bundle_dir/config.json (mode 0600: the environment may hold secrets);
// for the host image also builds bundle_dir/rootfs: an empty root with the host image's mount points
// and symlinks, and an empty mount point (directory, or file for a file source) for every mount
// destination. Idempotent: a second call for the same spec rewrites config.json and keeps the rest.
Status write_bundle(const ContainerSpec& spec);

// The runc command lines. `root` is runc's --root state directory: one per runner, so runners
// sharing a machine never see each other's containers; empty: runc's default (/run/runc).
struct Runc {
  std::filesystem::path binary = "runc";
  std::filesystem::path root;
  // runc as installed, when `binary` is the runner's sealed copy (which goes with the runner):
  // what a job's keeper runs once the runner is gone. Empty: `binary`.
  std::filesystem::path installed_binary;

  // Foreground, no tty: runc --root R run --bundle B ID. Its stdio is the process's; its exit code is
  // the process's (128 + N when a signal N killed it); the container is deleted when it ends.
  std::vector<std::string> run_argv(const ContainerSpec& spec) const;
  // runc exec (foreground, no tty) of `args` in the running container `id` as uid:gid in `cwd`. `env` is
  // added to (and overrides) the container's process environment: runc cannot replace it.
  std::vector<std::string> exec_argv(const std::string& id, uid_t uid, gid_t gid, const std::vector<std::string>& env,
                                     const std::string& cwd, const std::vector<std::string>& args) const;

  // runc --root R delete --force ID, with the installed binary: for a keeper whose runner died
  // (JobProcessSpec::cleanup). It also ends a created container's init, which waits for a start.
  std::vector<std::string> force_delete_argv(const std::string& id) const;

  // "creating", "created", "running", "paused", "stopped"; NotFound when runc has no such container.
  Result<std::string> state(const std::string& id) const;
  // SIGKILL to every process of the container, then `runc delete --force`; OK when it does not exist.
  // Bounded: each runc call times out after kRuncCallTimeout.
  Status remove(const std::string& id) const;
  // Ids of this root's containers that start with `prefix` (from `runc list -q`), for a sweep after a
  // runner restart. Empty when the root directory does not exist (runc would create it).
  Result<std::vector<std::string>> list(const std::string& prefix) const;
};

// A sealed in-memory copy of `binary` (runc, looked up on PATH without a slash), and a symlink
// `dir/runc` to it through /proc/PID/fd, for Runc::binary. runc makes such a copy of itself at
// every container start (its CVE-2019-5736 defence) unless /proc/self/exe already is one, which is
// what runc's own memfd-bind tool sets up: the copy cost ~10 ms of a two-node launch here. The
// memfd stays open (close-on-exec) for this process's life; the symlink works while it lives.
Result<std::filesystem::path> sealed_runc_copy(const std::filesystem::path& binary, const std::filesystem::path& dir);

// OK when this node can run containers: effective uid 0 and a working `runc --version`; otherwise
// FailedPrecondition saying why ("runc is not installed ...", "running containers needs the runner to
// run as root ..."). The runner refuses image jobs with it.
Status can_run_containers(const Runc& runc);

}  // namespace cohort::runner
