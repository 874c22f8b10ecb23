#pragma once
/// The physical plan: operators fused into chains, each chain run by N parallel tasks.
///
/// A node fuses into its upstream node's chain when the edge between them is forward,
/// the parallelism matches, it is the upstream's only edge on port 0, it is the node's
/// only input edge, and chaining is not disabled.
#include "sluice/graph/graph.hpp"

#include <string>
#include <vector>

namespace sluice {

struct plan_options {
  int default_parallelism = 1;
  int max_key_groups = default_max_key_groups;
};

struct chain_plan {
  int id = 0;
  std::vector<node_id> nodes; ///< head first
  int parallelism = 1;
  bool is_source = false;
  std::string name; ///< the node names joined by " -> "
};

/// An edge between two chains.
struct channel_plan {
  int from_chain = 0;
  int from_node_index = 0; ///< index of the sending node inside its chain
  int from_port = 0;
  int to_chain = 0;
  int to_input = 0;        ///< input of the receiving chain's head
  partition_kind kind = partition_kind::forward;
  router_factory make_router;
  std::string key_name;
};

struct physical_plan {
  std::vector<chain_plan> chains;
  std::vector<channel_plan> edges;
  std::vector<int> parallelism_of_node;
  std::vector<int> chain_of_node;
  int max_key_groups = default_max_key_groups;
};

/// Validates the graph and builds its physical plan.
result<physical_plan> make_plan(const graph& g, const plan_options& opts);

/// "explain": the logical and physical plans as readable text.
std::string explain_text(const graph& g, const physical_plan& p);
/// The plans as Graphviz DOT (one cluster per chain).
std::string explain_dot(const graph& g, const physical_plan& p);
/// The plans as JSON (nodes, edges, chains).
std::string explain_json(const graph& g, const physical_plan& p);

} // namespace sluice
