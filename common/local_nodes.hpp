// Local test nodes: several "hosts" on one machine, each a network and UTS namespace with its own
// address and hostname, joined by a bridge that lives in a namespace of its own. Nothing is
// added to the machine's own network namespace.
//
// Each namespace is held open by a small holder process and by nothing else (no bind mount under
// /run/netns): when the holders die the kernel removes the namespaces. A holder, before it
// ends, kills every process still inside its node, and holders end with the LocalNodes object
// and with the process that made them even when it is SIGKILLed (PR_SET_PDEATHSIG), so no exit
// path leaves a namespace or a process in it behind.
#pragma once

#include <sys/types.h>

#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "cohort/status.hpp"
#include "fd.hpp"

namespace cohort {

struct LocalNode {
  std::string hostname;  // "cohort-node-0"
  std::string address;   // "10.231.0.1"
  pid_t holder = -1;     // the process whose /proc/PID/ns/{net,uts} are this node's
};

struct LocalNodesOptions {
  int count = 2;
  std::string hostname_prefix = "cohort-node";
  // The nodes' /24. The namespaces are isolated from the machine and from each other's sets,
  // so concurrent runs may use the same subnet.
  std::string subnet_prefix = "10.231.0";
};

class LocalNodes {
 public:
  // REQUIRES: root (namespaces and veth pairs need CAP_SYS_ADMIN and CAP_NET_ADMIN), a
  // single-threaded caller (holders are tied to the calling thread), and `ip` from iproute2.
  static Result<std::unique_ptr<LocalNodes>> create(const LocalNodesOptions& options);
  ~LocalNodes();
  LocalNodes(const LocalNodes&) = delete;
  LocalNodes& operator=(const LocalNodes&) = delete;

  const std::vector<LocalNode>& nodes() const noexcept { return nodes_; }
  // "cohort-node-0=1234,cohort-node-1=1240": what `cohort-exec node` reads to find a host.
  std::string namespace_map() const;

 private:
  LocalNodes() = default;
  pid_t switch_holder_ = -1;
  std::vector<LocalNode> nodes_;
};

// Moves the calling process into the network and UTS namespaces held by `holder`.
Status enter_node_namespaces(pid_t holder);

// Runs `ip -batch` on `commands` (one per line) inside the network namespace of process `holder`,
// entered with setns(2), or in this one when `holder` is -1. REQUIRES: root, `ip` on PATH.
// The local provider uses it too, for runners it starts in namespaces of their own.
Status run_ip_batch(pid_t holder, const std::string& commands);

// The holder pid of `host` in a namespace_map() string; NotFound names the known hosts.
Result<pid_t> find_node_holder(std::string_view map, std::string_view host);

// kill -9 of a whole local node, as when its machine dies: SIGKILL, in one pass, to every process
// in the network namespace of `member` (a node's runner) except its holder (a fork of the process
// named `holder_comm`, which the provider removes), or, when `member` shares this process's
// namespace (nodes as plain processes), to `member` and all its descendants. Returns how many.
Result<int> kill_node_processes(pid_t member, std::string_view holder_comm);

// The inode of process `pid`'s network namespace (what /proc/PID/ns/net names); 0 when it is
// gone or unreadable. A local node's namespace is known by it after its runner is gone.
ino_t net_namespace_of(pid_t pid);
// Every live (not zombie) process whose network namespace is `ns`.
std::vector<pid_t> processes_in_net_namespace(ino_t ns);
// SIGKILL to every process of processes_in_net_namespace(ns) not named `holder_comm`; how many.
int kill_net_namespace(ino_t ns, std::string_view holder_comm);

// A network namespace held open. The kernel gives a freed namespace's inode number to the next
// namespace made (the lowest free one), so an inode names a node's namespace only while something
// holds it: a node made after a removal gets the removed node's number. Holding it keeps the
// namespace (not its processes) alive, and the number its own.
class NetNamespaceRef {
 public:
  // The namespace of process `pid`; NotFound when it is gone.
  static Result<NetNamespaceRef> of_process(pid_t pid);

  ino_t inode() const noexcept { return inode_; }

 private:
  NetNamespaceRef(Fd fd, ino_t inode) : fd_(std::move(fd)), inode_(inode) {}
  Fd fd_;
  ino_t inode_ = 0;
};

}  // namespace cohort
