// Node providers: how a cluster gets and gives back machines.
//
// create() and remove() return at once; the work (starting a runner, running a script) goes on
// in the background, and the node's registration (or its absence, past provisioning_timeout) is
// how the manager learns the outcome. A failure the provider sees itself comes back through the
// `report` callback as an event.
#pragma once

#include <filesystem>
#include <functional>
#include <memory>
#include <string>

#include "cohort/status.hpp"
#include "cohort/v1/cohort.pb.h"

namespace cohort::manager {

struct ProviderContext {
  std::filesystem::path state_dir;
  std::string runner_manager_address;  // what a local runner dials: "unix:STATE/manager.sock"
  std::string public_address;          // what an exec script's runner dials: the TCP address
  std::filesystem::path join_token_file;
  std::filesystem::path runner_binary;  // cohort-runner
  // (cluster, node, message): a failure seen by the provider, recorded as an event.
  std::function<void(const std::string&, const std::string&, const std::string&)> report;
};

// How a node goes. kGraceful: its runner stops what still runs with the jobs' grace (scale-down,
// a drained node, a preempted node with nothing left to save). kAtOnce: the machine goes now, as
// a cloud takes it: a node lost, or a preemption deadline that passed; nothing on it gets more
// time, and whatever still writes there is stopped.
enum class Removal { kGraceful, kAtOnce };

class NodeProvider {
 public:
  virtual ~NodeProvider() = default;
  virtual Status create(const v1::ClusterSpec& cluster, const std::string& node) = 0;
  virtual Status remove(const v1::ClusterSpec& cluster, const std::string& node, Removal how) = 0;
  // False for `static`: its nodes register themselves, and the autoscaler only watches them.
  virtual bool can_scale() const { return true; }
};

// "local", "static" or "exec"; InvalidArgument names the known ones.
Result<std::unique_ptr<NodeProvider>> make_provider(const std::string& name, const ProviderContext& context);

}  // namespace cohort::manager
