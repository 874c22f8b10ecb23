#include "sluice/graph/graph.hpp"

#include <queue>

namespace sluice {

std::string_view to_string(node_kind kind) noexcept {
  switch (kind) {
    case node_kind::source: return "source";
    case node_kind::operator_node: return "operator";
    case node_kind::sink: return "sink";
  }
  return "unknown";
}

std::string state_spec::describe() const {
  if (layout.empty())
    return {};
  if (types.empty())
    return layout;
  std::string out = layout + "<";
  for (std::size_t i = 0; i < types.size(); ++i)
    out += (i ? ", " : "") + types[i].name;
  return out + ">";
}

node_id graph::add(node_spec spec) {
  nodes_.push_back(std::move(spec));
  return static_cast<node_id>(nodes_.size() - 1);
}

result<void> graph::connect(out_port from, in_port to, partitioning how) {
  auto bad_id = [&](node_id id) { return id < 0 || id >= static_cast<node_id>(nodes_.size()); };
  if (bad_id(from.node) || bad_id(to.node))
    return make_error(error_code::invalid_graph, "connect: unknown node id");
  auto& src = nodes_[static_cast<std::size_t>(from.node)];
  auto& dst = nodes_[static_cast<std::size_t>(to.node)];
  if (from.port < 0 || from.port >= static_cast<int>(src.outputs.size()))
    return make_error(error_code::invalid_graph, "connect: '" + src.name + "' has no output port " +
                                                   std::to_string(from.port));
  if (to.input < 0 || to.input >= static_cast<int>(dst.inputs.size()))
    return make_error(error_code::invalid_graph,
                      "connect: '" + dst.name + "' has no input " + std::to_string(to.input));
  const auto& out_type = src.outputs[static_cast<std::size_t>(from.port)].type;
  const auto& in_type = dst.inputs[static_cast<std::size_t>(to.input)];
  if (!(out_type == in_type))
    return make_error(error_code::invalid_graph,
                      "connect: '" + src.name + "' emits " + out_type.name + " but input " +
                        std::to_string(to.input) + " of '" + dst.name + "' takes " + in_type.name);
  if (how.how == partitioning::mode::hash && !how.hash_router)
    return make_error(error_code::invalid_graph, "connect: hash partitioning without a key");
  edges_.push_back(edge_spec{from.node, from.port, to.node, to.input, std::move(how)});
  return {};
}

result<std::vector<node_id>> graph::topological_order() const {
  std::vector<int> indegree(nodes_.size(), 0);
  for (auto& e : edges_)
    ++indegree[static_cast<std::size_t>(e.to)];
  std::queue<node_id> ready;
  for (node_id n = 0; n < static_cast<node_id>(nodes_.size()); ++n)
    if (indegree[static_cast<std::size_t>(n)] == 0)
      ready.push(n);
  std::vector<node_id> order;
  while (!ready.empty()) {
    auto n = ready.front();
    ready.pop();
    order.push_back(n);
    for (auto& e : edges_)
      if (e.from == n && --indegree[static_cast<std::size_t>(e.to)] == 0)
        ready.push(e.to);
  }
  if (order.size() != nodes_.size())
    return make_error(error_code::invalid_graph, "the job graph has a cycle");
  return order;
}

result<void> graph::validate() const {
  if (!deferred_.empty())
    return deferred_.front();
  bool has_source = false;
  bool has_sink = false;
  for (node_id n = 0; n < static_cast<node_id>(nodes_.size()); ++n) {
    const auto& spec = nodes_[static_cast<std::size_t>(n)];
    const auto label = "'" + spec.name + "'";
    if (spec.parallelism < 0)
      return make_error(error_code::invalid_option, label + ": parallelism must be at least 1");
    if (spec.parallelism > spec.max_parallelism)
      return make_error(error_code::invalid_option,
                        label + ": parallelism " + std::to_string(spec.parallelism) +
                          " exceeds the maximum of " + std::to_string(spec.max_parallelism) +
                          " for " + spec.kind_name);
    switch (spec.kind) {
      case node_kind::source:
        has_source = true;
        if (!spec.make_source)
          return make_error(error_code::invalid_graph, label + ": source without a factory");
        break;
      case node_kind::sink:
        has_sink = true;
        [[fallthrough]];
      case node_kind::operator_node:
        if (!spec.make_operator)
          return make_error(error_code::invalid_graph, label + ": node without a factory");
        break;
    }
    if (spec.check)
      if (auto ok = spec.check(spec.name); !ok)
        return ok;
    for (int in = 0; in < static_cast<int>(spec.inputs.size()); ++in) {
      bool connected = false;
      for (auto& e : edges_)
        connected = connected || (e.to == n && e.to_input == in);
      if (!connected)
        return make_error(error_code::invalid_graph,
                          "input " + std::to_string(in) + " of " + label + " is not connected");
    }
    for (int port = 0; port < static_cast<int>(spec.outputs.size()); ++port) {
      if (!spec.outputs[static_cast<std::size_t>(port)].must_connect)
        continue;
      bool connected = false;
      for (auto& e : edges_)
        connected = connected || (e.from == n && e.from_port == port);
      if (!connected)
        return make_error(error_code::invalid_graph,
                          "output '" + spec.outputs[static_cast<std::size_t>(port)].name + "' of " +
                            label + " must be connected (records would be lost otherwise)");
    }
  }
  if (!has_source)
    return make_error(error_code::invalid_graph, "the job has no source");
  if (!has_sink)
    return make_error(error_code::invalid_graph, "the job has no sink: add one with sink_to(...)");
  if (auto order = topological_order(); !order)
    return order.error();
  return {};
}

} // namespace sluice
