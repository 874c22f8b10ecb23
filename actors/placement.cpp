#include "sluice/actors/placement.hpp"

#include <fmt/format.h>

namespace sluice {

std::vector<int> placement::tasks_of(int node) const {
  std::vector<int> out;
  for (std::size_t t = 0; t < node_of_task.size(); ++t)
    if (node_of_task[t] == node)
      out.push_back(static_cast<int>(t));
  return out;
}

result<placement> place(const graph& g, const physical_plan& plan,
                        const std::vector<task_wiring>& wiring, int nodes) {
  if (nodes < 1)
    return make_error(error_code::invalid_option,
                      fmt::format("placement: {} nodes (at least 1)", nodes));
  placement p;
  p.nodes = nodes;
  for (const auto& t : wiring) {
    const auto& chain = plan.chains[static_cast<std::size_t>(t.chain)];
    // Widened: instance * nodes fits easily, but keep the arithmetic obviously safe.
    const auto node = static_cast<int>(static_cast<std::int64_t>(t.instance) * nodes /
                                       chain.parallelism);
    p.node_of_task.push_back(node);
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
  return p;
}

std::string describe_placement(const physical_plan& plan, const std::vector<task_wiring>& wiring,
                               const placement& p) {
  std::string out = fmt::format("Placement on {} nodes:\n", p.nodes);
  for (std::size_t t = 0; t < wiring.size(); ++t) {
    const auto& chain = plan.chains[static_cast<std::size_t>(wiring[t].chain)];
    out += fmt::format("  '{}' instance {} of {}: node {}\n", chain.name,
                       wiring[t].instance + 1, chain.parallelism, p.node_of_task[t]);
  }
  return out;
}

} // namespace sluice
