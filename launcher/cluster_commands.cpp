#include "cluster_commands.hpp"

#include <iostream>
#include <memory>

#include "client.hpp"
#include "output.hpp"

namespace cohort::cli {

Result<v1::Identity> parse_identity(const std::vector<std::string>& values) {
  v1::Identity identity;
  bool system = false;
  for (const auto& v : values) {
    if (v == "[system]") {
      system = true;
    } else if (v.empty()) {
      return invalid_argument("--assign-identity: empty value; give '[system]' or a user-assigned identity id");
    } else {
      identity.add_user_assigned_ids(v);
    }
  }
  if (system && !identity.user_assigned_ids().empty()) {
    return invalid_argument(
        "--assign-identity: '[system]' and user-assigned ids cannot be mixed; give either '[system]' or one or more "
        "ids");
  }
  identity.set_type(system ? "system" : identity.user_assigned_ids().empty() ? "none" : "user");
  return identity;
}

Result<std::map<std::string, std::string>> parse_tags(const std::vector<std::string>& values) {
  std::map<std::string, std::string> tags;
  for (const auto& v : values) {
    const auto eq = v.find('=');
    if (eq == std::string::npos || eq == 0)
      return invalid_argument("--tag " + v + ": expected KEY=VALUE, e.g. --tag team=vision");
    if (!tags.emplace(v.substr(0, eq), v.substr(eq + 1)).second)
      return invalid_argument("--tag " + v.substr(0, eq) + " is given twice");
  }
  return tags;
}

Result<v1::CreateClusterRequest> cluster_create_request(const ClusterCreateOptions& o) {
  if (o.name.empty()) return invalid_argument("cluster create: NAME is required");
  if (o.vm_size.empty())
    return invalid_argument("--vm-size is required (`cohort cluster sizes` lists the sizes the manager offers)");
  if (o.vm_priority != "dedicated" && o.vm_priority != "lowpriority")
    return invalid_argument("--vm-priority " + o.vm_priority + ": expected dedicated or lowpriority");
  if (o.provider != "local" && o.provider != "static" && o.provider != "exec")
    return invalid_argument("--provider " + o.provider + ": expected local, static or exec");
  const bool has_exec = !o.exec_create.empty() || !o.exec_delete.empty();
  if (o.provider == "exec" && (o.exec_create.empty() || o.exec_delete.empty()))
    return invalid_argument("--provider exec needs both --exec-create CMD and --exec-delete CMD");
  if (o.provider != "exec" && has_exec) return invalid_argument("--exec-create and --exec-delete need --provider exec");
  COHORT_ASSIGN_OR_RETURN(auto identity, parse_identity(o.assign_identity));
  COHORT_ASSIGN_OR_RETURN(auto tags, parse_tags(o.tags));

  v1::CreateClusterRequest request;
  auto* s = request.mutable_spec();
  s->set_name(o.name);
  s->set_vm_size(o.vm_size);
  s->set_min_nodes(o.min_nodes);
  s->set_max_nodes(o.max_nodes);
  s->set_idle_seconds_before_scaledown(o.idle_seconds_before_scaledown);
  s->set_vm_priority(o.vm_priority);
  *s->mutable_identity() = std::move(identity);
  s->mutable_tags()->insert(tags.begin(), tags.end());
  s->set_provider(o.provider);
  if (o.provider == "exec") {
    s->mutable_exec()->set_create_command(o.exec_create);
    s->mutable_exec()->set_delete_command(o.exec_delete);
  }
  return request;
}

Result<v1::UpdateClusterRequest> cluster_update_request(const ClusterUpdateOptions& o) {
  if (o.name.empty()) return invalid_argument("cluster update: NAME is required");
  if (!o.min_nodes && !o.max_nodes && !o.idle_seconds_before_scaledown && o.tags.empty()) {
    return invalid_argument(
        "cluster update " + o.name +
        ": nothing to change; give --min-nodes, --max-nodes, --idle-seconds-before-scaledown or --tag K=V");
  }
  COHORT_ASSIGN_OR_RETURN(auto tags, parse_tags(o.tags));
  v1::UpdateClusterRequest request;
  request.set_name(o.name);
  if (o.min_nodes) request.set_min_nodes(*o.min_nodes);
  if (o.max_nodes) request.set_max_nodes(*o.max_nodes);
  if (o.idle_seconds_before_scaledown) request.set_idle_seconds_before_scaledown(*o.idle_seconds_before_scaledown);
  request.mutable_tags()->insert(tags.begin(), tags.end());
  return request;
}

namespace {

// Prints a message as JSON or through `table`, returning the exit code.
template <typename M, typename Table>
int print(OutputFormat format, const M& message, Table table) {
  if (format == OutputFormat::kJson) {
    auto json = to_json(message);
    if (!json.ok()) return fail(json.status());
    std::cout << *json << std::endl;
  } else {
    std::cout << table(message);
  }
  return kExitOk;
}

void add_create(CLI::App* group, Commands& commands) {
  struct State {
    ConnectionOptions conn;
    ClusterCreateOptions options;
  };
  auto st = std::make_shared<State>();
  auto& o = st->options;
  auto* verb = group->add_subcommand("create", "Create a cluster that scales between --min-nodes and --max-nodes");
  verb->add_option("NAME", o.name, "Cluster name")->required();
  verb->add_option("--vm-size", o.vm_size, "Node size from the catalogue (`cohort cluster sizes`)")->required();
  verb->add_option("--min-nodes", o.min_nodes, "Nodes kept even when idle (0: scale to zero)")->required();
  verb->add_option("--max-nodes", o.max_nodes, "Most nodes the autoscaler creates")->required();
  verb->add_option("--vm-priority", o.vm_priority, "dedicated (default) or lowpriority (can be preempted)");
  verb->add_option("--idle-seconds-before-scaledown", o.idle_seconds_before_scaledown,
                   "An idle node is removed after this long, down to --min-nodes (default 120)");
  verb->add_option("--assign-identity", o.assign_identity,
                   "'[system]' for a system-assigned identity, or a user-assigned identity id (repeatable)")
      ->allow_extra_args(false);
  verb->add_option("--provider", o.provider, "Where nodes come from: local (default), static or exec");
  verb->add_option("--exec-create", o.exec_create, "exec provider: shell command that creates a node");
  verb->add_option("--exec-delete", o.exec_delete, "exec provider: shell command that deletes a node");
  verb->add_option("--tag", o.tags, "KEY=VALUE (repeatable)")->allow_extra_args(false);
  add_connection_options(verb, st->conn);
  commands.push_back({verb, [st] {
                        auto request = cluster_create_request(st->options);
                        if (!request.ok()) return usage_fail(request.status());
                        auto client = Client::connect(st->conn);
                        if (!client.ok()) return usage_fail(client.status());
                        auto created = client->call<v1::Cluster>("CreateCluster", [&](auto* ctx, auto* resp) {
                          return client->clusters().CreateCluster(ctx, *request, resp);
                        });
                        if (!created.ok()) return fail(created.status());
                        const auto& s = created->spec();
                        std::cout << "cluster " << s.name() << " created: " << s.vm_size() << ", " << s.min_nodes()
                                  << ".." << s.max_nodes() << " nodes, " << s.vm_priority() << ", provider "
                                  << s.provider() << std::endl;
                        return kExitOk;
                      }});
}

void add_show(CLI::App* group, Commands& commands) {
  struct State {
    ConnectionOptions conn;
    OutputFormat format = OutputFormat::kTable;
    v1::GetClusterRequest request;
    std::string name;
    int events = 0;
  };
  auto st = std::make_shared<State>();
  auto* verb = group->add_subcommand("show", "Show a cluster and its recent events (scale up/down, lost nodes)");
  verb->add_option("NAME", st->name, "Cluster name")->required();
  verb->add_option("--events", st->events, "How many recent events (default: the manager's)");
  add_output_option(verb, st->format);
  add_connection_options(verb, st->conn);
  commands.push_back({verb, [st] {
                        auto client = Client::connect(st->conn);
                        if (!client.ok()) return usage_fail(client.status());
                        st->request.set_name(st->name);
                        st->request.set_event_limit(st->events);
                        auto cluster = client->call<v1::Cluster>("GetCluster", [&](auto* ctx, auto* resp) {
                          return client->clusters().GetCluster(ctx, st->request, resp);
                        });
                        if (!cluster.ok()) return fail(cluster.status());
                        return print(st->format, *cluster,
                                     [](const v1::Cluster& c) { return cluster_details(c, now_ms()); });
                      }});
}

void add_list(CLI::App* group, Commands& commands) {
  struct State {
    ConnectionOptions conn;
    OutputFormat format = OutputFormat::kTable;
  };
  auto st = std::make_shared<State>();
  auto* verb = group->add_subcommand("list", "List clusters with their node counts");
  add_output_option(verb, st->format);
  add_connection_options(verb, st->conn);
  commands.push_back({verb, [st] {
                        auto client = Client::connect(st->conn);
                        if (!client.ok()) return usage_fail(client.status());
                        auto list = client->call<v1::ListClustersResponse>("ListClusters", [&](auto* ctx, auto* resp) {
                          return client->clusters().ListClusters(ctx, v1::ListClustersRequest(), resp);
                        });
                        if (!list.ok()) return fail(list.status());
                        if (st->format == OutputFormat::kJson) {
                          auto json = to_json_array(list->clusters());
                          if (!json.ok()) return fail(json.status());
                          std::cout << *json << std::endl;
                          return kExitOk;
                        }
                        std::cout << clusters_table(*list);
                        return kExitOk;
                      }});
}

void add_update(CLI::App* group, Commands& commands) {
  struct State {
    ConnectionOptions conn;
    ClusterUpdateOptions options;
    int min_nodes = 0, max_nodes = 0, idle = 0;
  };
  auto st = std::make_shared<State>();
  auto* verb = group->add_subcommand("update", "Change a cluster's node limits, idle time or tags (applied live)");
  verb->add_option("NAME", st->options.name, "Cluster name")->required();
  auto* min = verb->add_option("--min-nodes", st->min_nodes, "Nodes kept even when idle");
  auto* max = verb->add_option("--max-nodes", st->max_nodes, "Most nodes the autoscaler creates");
  auto* idle = verb->add_option("--idle-seconds-before-scaledown", st->idle, "Idle time before a node is removed");
  verb->add_option("--tag", st->options.tags, "KEY=VALUE (repeatable)")->allow_extra_args(false);
  add_connection_options(verb, st->conn);
  commands.push_back({verb, [st, min, max, idle] {
                        auto& o = st->options;
                        if (min->count() > 0) o.min_nodes = st->min_nodes;
                        if (max->count() > 0) o.max_nodes = st->max_nodes;
                        if (idle->count() > 0) o.idle_seconds_before_scaledown = st->idle;
                        auto request = cluster_update_request(o);
                        if (!request.ok()) return usage_fail(request.status());
                        auto client = Client::connect(st->conn);
                        if (!client.ok()) return usage_fail(client.status());
                        auto updated = client->call<v1::Cluster>("UpdateCluster", [&](auto* ctx, auto* resp) {
                          return client->clusters().UpdateCluster(ctx, *request, resp);
                        });
                        if (!updated.ok()) return fail(updated.status());
                        const auto& s = updated->spec();
                        std::cout << "cluster " << s.name() << " updated: " << s.min_nodes() << ".." << s.max_nodes()
                                  << " nodes, idle " << s.idle_seconds_before_scaledown() << "s" << std::endl;
                        return kExitOk;
                      }});
}

void add_delete(CLI::App* group, Commands& commands) {
  struct State {
    ConnectionOptions conn;
    v1::DeleteClusterRequest request;
    std::string name;
    bool force = false;
  };
  auto st = std::make_shared<State>();
  auto* verb = group->add_subcommand("delete", "Delete a cluster and give back its nodes");
  verb->add_option("NAME", st->name, "Cluster name")->required();
  verb->add_flag("--force", st->force, "Cancel the cluster's running jobs first (refused without it)");
  add_connection_options(verb, st->conn);
  commands.push_back({verb, [st] {
                        auto client = Client::connect(st->conn);
                        if (!client.ok()) return usage_fail(client.status());
                        st->request.set_name(st->name);
                        st->request.set_force(st->force);
                        auto done = client->call<v1::DeleteClusterResponse>("DeleteCluster", [&](auto* ctx, auto* r) {
                          return client->clusters().DeleteCluster(ctx, st->request, r);
                        });
                        if (!done.ok()) return fail(done.status());
                        std::cout << "cluster " << st->name << " deleted" << std::endl;
                        return kExitOk;
                      }});
}

void add_sizes(CLI::App* group, Commands& commands) {
  struct State {
    ConnectionOptions conn;
    OutputFormat format = OutputFormat::kTable;
  };
  auto st = std::make_shared<State>();
  auto* verb = group->add_subcommand("sizes", "List the VM sizes the manager offers");
  add_output_option(verb, st->format);
  add_connection_options(verb, st->conn);
  commands.push_back({verb, [st] {
                        auto client = Client::connect(st->conn);
                        if (!client.ok()) return usage_fail(client.status());
                        auto list = client->call<v1::ListVmSizesResponse>("ListVmSizes", [&](auto* ctx, auto* resp) {
                          return client->clusters().ListVmSizes(ctx, v1::ListVmSizesRequest(), resp);
                        });
                        if (!list.ok()) return fail(list.status());
                        if (st->format == OutputFormat::kJson) {
                          auto json = to_json_array(list->sizes());
                          if (!json.ok()) return fail(json.status());
                          std::cout << *json << std::endl;
                          return kExitOk;
                        }
                        std::cout << sizes_table(*list);
                        return kExitOk;
                      }});
}

}  // namespace

void add_cluster_commands(CLI::App& app, Commands& commands) {
  auto* cluster = app.add_subcommand("cluster", "Create, inspect, resize and delete clusters (needs a manager)");
  cluster->require_subcommand(1);
  add_create(cluster, commands);
  add_show(cluster, commands);
  add_list(cluster, commands);
  add_update(cluster, commands);
  add_delete(cluster, commands);
  add_sizes(cluster, commands);
}

}  // namespace cohort::cli
