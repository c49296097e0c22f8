#include "node_commands.hpp"

#include <iostream>
#include <memory>

#include "client.hpp"
#include "output.hpp"

namespace cohort::cli {

namespace {

void add_list(CLI::App* group, Commands& commands) {
  struct State {
    ConnectionOptions conn;
    OutputFormat format = OutputFormat::kTable;
    v1::ListNodesRequest request;
    std::string cluster;
  };
  auto st = std::make_shared<State>();
  auto* verb = group->add_subcommand("list", "List nodes with their state, job, use and last heartbeat");
  verb->add_option("--cluster", st->cluster, "Only this cluster's nodes");
  add_output_option(verb, st->format);
  add_connection_options(verb, st->conn);
  commands.push_back({verb, [st] {
                        auto client = Client::connect(st->conn);
                        if (!client.ok()) return usage_fail(client.status());
                        st->request.set_cluster(st->cluster);
                        auto list = client->call<v1::ListNodesResponse>("ListNodes", [&](auto* ctx, auto* resp) {
                          return client->nodes().ListNodes(ctx, st->request, resp);
                        });
                        if (!list.ok()) return fail(list.status());
                        if (st->format == OutputFormat::kJson) {
                          auto json = to_json_array(list->nodes());
                          if (!json.ok()) return fail(json.status());
                          std::cout << *json << std::endl;
                          return kExitOk;
                        }
                        std::cout << nodes_table(*list, now_ms());
                        return kExitOk;
                      }});
}

void add_drain(CLI::App* group, Commands& commands) {
  struct State {
    ConnectionOptions conn;
    v1::DrainNodeRequest request;
    std::string name;
  };
  auto st = std::make_shared<State>();
  auto* verb = group->add_subcommand("drain", "Give a node no new jobs (the scheduler skips it)");
  verb->add_option("NODE", st->name, "Node name (`cohort node list`)")->required();
  add_connection_options(verb, st->conn);
  commands.push_back({verb, [st] {
                        auto client = Client::connect(st->conn);
                        if (!client.ok()) return usage_fail(client.status());
                        st->request.set_name(st->name);
                        auto node = client->call<v1::Node>("DrainNode", [&](auto* ctx, auto* resp) {
                          return client->nodes().DrainNode(ctx, st->request, resp);
                        });
                        if (!node.ok()) return fail(node.status());
                        std::cout << "node " << node->name() << ": " << node->state();
                        if (!node->job().empty()) std::cout << " (finishing job " << node->job() << ")";
                        std::cout << std::endl;
                        return kExitOk;
                      }});
}

void add_preempt(CLI::App* group, Commands& commands) {
  struct State {
    ConnectionOptions conn;
    std::string name;
    double notice_seconds = 30;
  };
  auto st = std::make_shared<State>();
  auto* verb = group->add_subcommand(
      "preempt",
      "Take a lowpriority node back as its cloud would: its jobs get a notice, the node goes at the deadline");
  verb->add_option("NODE", st->name, "Node name (`cohort node list`)")->required();
  verb->add_option("--notice-seconds", st->notice_seconds, "Time from the notice to the node's end (Azure gives 30)")
      ->check(CLI::Range(0.0, 3600.0));
  add_connection_options(verb, st->conn);
  commands.push_back({verb, [st] {
                        auto client = Client::connect(st->conn);
                        if (!client.ok()) return usage_fail(client.status());
                        v1::PreemptNodeRequest request;
                        request.set_name(st->name);
                        request.set_notice_ms(static_cast<std::int64_t>(st->notice_seconds * 1000));
                        auto node = client->call<v1::Node>("PreemptNode", [&](auto* ctx, auto* resp) {
                          return client->nodes().PreemptNode(ctx, request, resp);
                        });
                        if (!node.ok()) return fail(node.status());
                        std::cout << "node " << node->name() << ": " << node->state() << ", " << node->state_reason();
                        if (!node->job().empty()) std::cout << " (job " << node->job() << " has the notice)";
                        std::cout << std::endl;
                        return kExitOk;
                      }});
}

}  // namespace

void add_node_commands(CLI::App& app, Commands& commands) {
  auto* node = app.add_subcommand("node", "List, drain and preempt nodes (needs a manager)");
  node->require_subcommand(1);
  add_list(node, commands);
  add_drain(node, commands);
  add_preempt(node, commands);
}

}  // namespace cohort::cli
