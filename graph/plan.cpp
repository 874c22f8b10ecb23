#include "sluice/graph/plan.hpp"

#include <nlohmann/json.hpp>

#include <sstream>

namespace sluice {

namespace {

partition_kind resolve(const partitioning& how, int from_p, int to_p) {
  switch (how.how) {
    case partitioning::mode::forward: return partition_kind::forward;
    case partitioning::mode::hash: return partition_kind::hash;
    case partitioning::mode::rebalance: return partition_kind::rebalance;
    case partitioning::mode::broadcast: return partition_kind::broadcast;
    case partitioning::mode::automatic: break;
  }
  return from_p == to_p ? partition_kind::forward : partition_kind::rebalance;
}

} // namespace

result<physical_plan> make_plan(const graph& g, const plan_options& opts) {
  if (opts.default_parallelism < 1)
    return make_error(error_code::invalid_option, "default parallelism must be at least 1");
  if (opts.max_key_groups < 1)
    return make_error(error_code::invalid_option, "max key groups must be at least 1");
  if (auto ok = g.validate(); !ok)
    return std::move(ok).error();
  auto order = g.topological_order();
  if (!order)
    return std::move(order).error();

  const auto n = g.nodes().size();
  physical_plan p;
  p.max_key_groups = opts.max_key_groups;
  p.parallelism_of_node.resize(n);
  p.chain_of_node.assign(n, -1);
  for (std::size_t i = 0; i < n; ++i) {
    const auto& spec = g.nodes()[i];
    auto par = spec.parallelism > 0 ? spec.parallelism
                                    : std::min(opts.default_parallelism, spec.max_parallelism);
    p.parallelism_of_node[i] = par;
  }

  // Count edges per output port 0 and per node input, to decide fusion.
  std::vector<int> out0_edges(n, 0), in_edges(n, 0);
  for (auto& e : g.edges()) {
    if (e.from_port == 0)
      ++out0_edges[static_cast<std::size_t>(e.from)];
    ++in_edges[static_cast<std::size_t>(e.to)];
  }
  auto fusable = [&](const edge_spec& e) {
    auto from = static_cast<std::size_t>(e.from), to = static_cast<std::size_t>(e.to);
    return e.from_port == 0 && out0_edges[from] == 1 && in_edges[to] == 1 &&
           g.nodes()[to].chaining && g.nodes()[to].kind != node_kind::source &&
           p.parallelism_of_node[from] == p.parallelism_of_node[to] &&
           resolve(e.how, p.parallelism_of_node[from], p.parallelism_of_node[to]) ==
             partition_kind::forward;
  };

  // Walk in topological order: a node joins its upstream's chain or starts a new one.
  for (auto id : *order) {
    auto i = static_cast<std::size_t>(id);
    const edge_spec* fused_in = nullptr;
    for (auto& e : g.edges())
      if (e.to == id && fusable(e))
        fused_in = &e;
    if (fused_in) {
      auto c = p.chain_of_node[static_cast<std::size_t>(fused_in->from)];
      auto& chain = p.chains[static_cast<std::size_t>(c)];
      // Only the chain's current tail can be extended.
      if (chain.nodes.back() == fused_in->from) {
        chain.nodes.push_back(id);
        chain.name += " -> " + g.nodes()[i].name;
        p.chain_of_node[i] = c;
        continue;
      }
    }
    chain_plan c;
    c.id = static_cast<int>(p.chains.size());
    c.nodes.push_back(id);
    c.parallelism = p.parallelism_of_node[i];
    c.is_source = g.nodes()[i].kind == node_kind::source;
    c.name = g.nodes()[i].name;
    p.chain_of_node[i] = c.id;
    p.chains.push_back(std::move(c));
  }

  // Every edge that does not stay inside a chain becomes a channel between chains.
  for (auto& e : g.edges()) {
    auto from = static_cast<std::size_t>(e.from), to = static_cast<std::size_t>(e.to);
    auto fc = p.chain_of_node[from], tc = p.chain_of_node[to];
    const auto& chain_from = p.chains[static_cast<std::size_t>(fc)];
    auto pos = std::find(chain_from.nodes.begin(), chain_from.nodes.end(), e.from) -
               chain_from.nodes.begin();
    if (fc == tc && e.from_port == 0 &&
        static_cast<std::size_t>(pos) + 1 < chain_from.nodes.size() &&
        chain_from.nodes[static_cast<std::size_t>(pos) + 1] == e.to)
      continue; // fused
    auto kind = resolve(e.how, p.parallelism_of_node[from], p.parallelism_of_node[to]);
    const auto& src = g.nodes()[from];
    const auto& dst = g.nodes()[to];
    if (kind == partition_kind::forward &&
        p.parallelism_of_node[from] != p.parallelism_of_node[to])
      return make_error(error_code::invalid_graph,
                        "forward edge '" + src.name + "' -> '" + dst.name +
                          "' connects different parallelism (" +
                          std::to_string(p.parallelism_of_node[from]) + " vs " +
                          std::to_string(p.parallelism_of_node[to]) + "); use rebalance()");
    if (kind == partition_kind::hash && p.parallelism_of_node[to] > opts.max_key_groups)
      return make_error(error_code::invalid_option,
                        "'" + dst.name + "': parallelism " +
                          std::to_string(p.parallelism_of_node[to]) +
                          " exceeds the number of key groups (" +
                          std::to_string(opts.max_key_groups) + ")");
    if (p.chains[static_cast<std::size_t>(tc)].nodes.front() != e.to)
      return make_error(error_code::internal, "edge into the middle of a chain");
    channel_plan ch;
    ch.from_chain = fc;
    ch.from_node_index = static_cast<int>(pos);
    ch.from_port = e.from_port;
    ch.to_chain = tc;
    ch.to_input = e.to_input;
    ch.kind = kind;
    ch.key_name = e.how.key_name;
    ch.make_router = kind == partition_kind::hash
                       ? e.how.hash_router
                       : src.outputs[static_cast<std::size_t>(e.from_port)].routers(kind);
    p.edges.push_back(std::move(ch));
  }
  return p;
}

std::string explain_text(const graph& g, const physical_plan& p) {
  std::ostringstream out;
  out << "== Logical plan ==\n";
  for (std::size_t i = 0; i < g.nodes().size(); ++i) {
    const auto& n = g.nodes()[i];
    out << "  [" << i << "] " << n.name << " (" << n.kind_name;
    if (!n.description.empty())
      out << ": " << n.description;
    out << ")";
    if (!n.outputs.empty()) {
      out << " -> " << n.outputs.front().type.name;
    }
    out << "\n";
  }
  for (auto& e : g.edges()) {
    out << "  " << g.node(e.from).name;
    if (e.from_port != 0)
      out << "." << g.node(e.from).outputs[static_cast<std::size_t>(e.from_port)].name;
    out << " -> " << g.node(e.to).name;
    if (g.node(e.to).inputs.size() > 1)
      out << "[" << e.to_input << "]";
    switch (e.how.how) {
      case partitioning::mode::hash: out << "  hash(" << e.how.key_name << ")"; break;
      case partitioning::mode::forward: out << "  forward"; break;
      case partitioning::mode::rebalance: out << "  rebalance"; break;
      case partitioning::mode::broadcast: out << "  broadcast"; break;
      case partitioning::mode::automatic: break;
    }
    out << "\n";
  }
  out << "== Physical plan (" << p.max_key_groups << " key groups) ==\n";
  for (auto& c : p.chains) {
    out << "  chain " << c.id << " x" << c.parallelism << ": " << c.name << "\n";
  }
  for (auto& e : p.edges) {
    out << "  chain " << e.from_chain << " -> chain " << e.to_chain << "  " << to_string(e.kind);
    if (e.kind == partition_kind::hash)
      out << "(" << e.key_name << ")";
    out << "\n";
  }
  return out.str();
}

std::string explain_dot(const graph& g, const physical_plan& p) {
  std::ostringstream out;
  out << "digraph job {\n  rankdir=LR;\n  node [shape=box];\n";
  for (auto& c : p.chains) {
    out << "  subgraph cluster_" << c.id << " {\n    label=\"chain " << c.id << " x"
        << c.parallelism << "\";\n";
    for (auto n : c.nodes)
      out << "    n" << n << " [label=\"" << g.node(n).name << "\\n" << g.node(n).kind_name
          << "\"];\n";
    out << "  }\n";
  }
  for (auto& e : g.edges()) {
    auto kind = p.parallelism_of_node[static_cast<std::size_t>(e.from)] ==
                    p.parallelism_of_node[static_cast<std::size_t>(e.to)] &&
                    e.how.how == partitioning::mode::automatic
                  ? std::string{"forward"}
                  : std::string{e.how.how == partitioning::mode::hash ? "hash(" + e.how.key_name + ")"
                                : e.how.how == partitioning::mode::broadcast ? "broadcast"
                                : e.how.how == partitioning::mode::forward   ? "forward"
                                                                             : "rebalance"};
    out << "  n" << e.from << " -> n" << e.to << " [label=\"" << kind << "\"];\n";
  }
  out << "}\n";
  return out.str();
}

std::string explain_json(const graph& g, const physical_plan& p) {
  nlohmann::json j;
  j["max_key_groups"] = p.max_key_groups;
  auto& nodes = j["nodes"] = nlohmann::json::array();
  for (std::size_t i = 0; i < g.nodes().size(); ++i) {
    const auto& n = g.nodes()[i];
    nodes.push_back({{"id", i},
                     {"name", n.name},
                     {"kind", std::string{to_string(n.kind)}},
                     {"operator", n.kind_name},
                     {"description", n.description},
                     {"parallelism", p.parallelism_of_node[i]},
                     {"chain", p.chain_of_node[i]}});
  }
  auto& edges = j["edges"] = nlohmann::json::array();
  for (auto& e : g.edges())
    edges.push_back({{"from", e.from}, {"from_port", e.from_port}, {"to", e.to},
                     {"to_input", e.to_input}});
  auto& chains = j["chains"] = nlohmann::json::array();
  for (auto& c : p.chains)
    chains.push_back({{"id", c.id}, {"nodes", c.nodes}, {"parallelism", c.parallelism},
                      {"name", c.name}});
  auto& channels = j["channels"] = nlohmann::json::array();
  for (auto& e : p.edges)
    channels.push_back({{"from_chain", e.from_chain}, {"to_chain", e.to_chain},
                        {"partitioning", std::string{to_string(e.kind)}}, {"key", e.key_name}});
  return j.dump(2);
}

} // namespace sluice
