#include "sluice/actors/placement.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <map>
#include <utility>

namespace sluice {

std::vector<int> placement::tasks_of(int node) const {
  std::vector<int> out;
  for (std::size_t t = 0; t < node_of_task.size(); ++t)
    if (node_of_task[t] == node)
      out.push_back(static_cast<int>(t));
  return out;
}

bool placement::runs_on(int node) const noexcept {
  return std::binary_search(live.begin(), live.end(), node);
}

std::string describe_nodes(const std::vector<int>& nodes) {
  return fmt::format("{}", fmt::join(nodes, ", "));
}

namespace {

/// The channels' numbers and the codecs of those that cross nodes, for `p.node_of_task`.
result<void> number_channels(const graph& g, const physical_plan& plan,
                             const std::vector<task_wiring>& wiring, placement& p) {
  p.first_channel.clear();
  p.channel_count = 0;
  for (const auto& t : wiring) {
    p.first_channel.push_back(p.channel_count);
    p.channel_count += static_cast<std::uint32_t>(t.inputs.size());
  }
  p.codec_of_channel.assign(p.channel_count, nullptr);
  for (std::size_t t = 0; t < wiring.size(); ++t)
    for (std::size_t i = 0; i < wiring[t].inputs.size(); ++i) {
      const auto& in = wiring[t].inputs[i];
      if (p.node_of_task[static_cast<std::size_t>(in.from_task)] == p.node_of_task[t])
        continue;
      const auto& out = wiring[static_cast<std::size_t>(in.from_task)]
                          .outputs[static_cast<std::size_t>(in.sender_output)];
      const auto& edge = plan.edges[static_cast<std::size_t>(out.plan_edge)];
      const auto& from_chain = plan.chains[static_cast<std::size_t>(edge.from_chain)];
      const auto from_node = from_chain.nodes[static_cast<std::size_t>(edge.from_node_index)];
      const auto& spec = g.node(from_node);
      const auto& port = spec.outputs[static_cast<std::size_t>(edge.from_port)];
      if (!port.wire) {
        const auto& to_chain = plan.chains[static_cast<std::size_t>(edge.to_chain)];
        return make_error(
          error_code::invalid_option,
          fmt::format("edge '{}' -> '{}' crosses nodes but carries {}, which the binary "
                      "record codec cannot encode: give the type an inspect() "
                      "(docs/cluster.md), or run the job on one node",
                      spec.name, g.node(to_chain.nodes.front()).name, port.type.name));
      }
      p.codec_of_channel[p.channel(static_cast<int>(t), static_cast<int>(i))] = &port.wire;
    }
  return {};
}

} // namespace

result<placement> place(const graph& g, const physical_plan& plan,
                        const std::vector<task_wiring>& wiring, int nodes) {
  if (nodes < 1)
    return make_error(error_code::invalid_option,
                      fmt::format("placement: {} nodes (at least 1)", nodes));
  std::vector<int> live, node_of_task;
  for (int n = 0; n < nodes; ++n)
    live.push_back(n);
  for (const auto& t : wiring) {
    const auto& chain = plan.chains[static_cast<std::size_t>(t.chain)];
    // Widened: instance * nodes fits easily, but keep the arithmetic obviously safe.
    node_of_task.push_back(
      static_cast<int>(static_cast<std::int64_t>(t.instance) * nodes / chain.parallelism));
  }
  return place_as(g, plan, wiring, nodes, std::move(live), std::move(node_of_task));
}

result<placement> leave_out(const graph& g, const physical_plan& plan,
                            const std::vector<task_wiring>& wiring, const placement& now,
                            std::vector<int> live) {
  if (live.empty() || live.front() != 0)
    return make_error(error_code::invalid_option,
                      "placement: node 0, the coordinator, cannot be left out");
  auto node_of_task = now.node_of_task;
  const auto stays = [&](int node) { return std::binary_search(live.begin(), live.end(), node); };
  // Per chain, how many of its instances each node left runs; and its tasks in all.
  std::map<std::pair<int, int>, int> load; // (chain, node) -> instances
  std::map<int, int> tasks;                // node -> tasks
  for (std::size_t t = 0; t < wiring.size(); ++t)
    if (stays(node_of_task[t])) {
      ++load[{wiring[t].chain, node_of_task[t]}];
      ++tasks[node_of_task[t]];
    }
  for (std::size_t t = 0; t < wiring.size(); ++t) {
    if (stays(node_of_task[t]))
      continue;
    const int chain = wiring[t].chain;
    int best = live.front();
    for (int n : live)
      if (std::pair{load[{chain, n}], tasks[n]} < std::pair{load[{chain, best}], tasks[best]})
        best = n;
    node_of_task[t] = best;
    ++load[{chain, best}];
    ++tasks[best];
  }
  return place_as(g, plan, wiring, now.nodes, std::move(live), std::move(node_of_task));
}

result<placement> place_as(const graph& g, const physical_plan& plan,
                           const std::vector<task_wiring>& wiring, int nodes,
                           std::vector<int> live, std::vector<int> node_of_task) {
  if (nodes < 1)
    return make_error(error_code::invalid_option,
                      fmt::format("placement: {} nodes (at least 1)", nodes));
  if (live.empty() || live.front() != 0 || !std::is_sorted(live.begin(), live.end()) ||
      std::adjacent_find(live.begin(), live.end()) != live.end() || live.back() >= nodes)
    return make_error(error_code::invalid_option,
                      fmt::format("placement: nodes [{}] are not ascending node numbers of a "
                                  "cluster of {} starting with node 0",
                                  describe_nodes(live), nodes));
  if (node_of_task.size() != wiring.size())
    return make_error(error_code::invalid_option,
                      fmt::format("placement: {} tasks placed, the job has {}",
                                  node_of_task.size(), wiring.size()));
  for (std::size_t t = 0; t < node_of_task.size(); ++t)
    if (!std::binary_search(live.begin(), live.end(), node_of_task[t]))
      return make_error(error_code::invalid_option,
                        fmt::format("placement: task {} on node {}, which is not one of the "
                                    "nodes [{}]",
                                    t, node_of_task[t], describe_nodes(live)));
  placement p;
  p.nodes = nodes;
  p.live = std::move(live);
  p.node_of_task = std::move(node_of_task);
  if (auto ok = number_channels(g, plan, wiring, p); !ok)
    return std::move(ok).error();
  return p;
}

std::string describe_placement(const physical_plan& plan, const std::vector<task_wiring>& wiring,
                               const placement& p) {
  std::string out = p.live.size() == static_cast<std::size_t>(p.nodes)
                      ? fmt::format("Placement on {} nodes:\n", p.nodes)
                      : fmt::format("Placement on nodes {} of {}:\n", describe_nodes(p.live), p.nodes);
  for (std::size_t t = 0; t < wiring.size(); ++t) {
    const auto& chain = plan.chains[static_cast<std::size_t>(wiring[t].chain)];
    out += fmt::format("  '{}' instance {} of {}: node {}\n", chain.name,
                       wiring[t].instance + 1, chain.parallelism, p.node_of_task[t]);
  }
  return out;
}

} // namespace sluice
