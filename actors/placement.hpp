#pragma once
/// Placement: which node of a multi-node run runs each task, and the numbering of the
/// channels that cross nodes. A pure function of the plan, the wiring and the node count,
/// so every node computes the same table without telling the others (docs/cluster.md).
///
/// Rules:
/// - Instance `i` of a chain with parallelism `p` runs on node `i * nodes / p`: instances
///   spread evenly, and each node's instances (so its key groups, which follow instance
///   order) are contiguous. A chain of parallelism 1 runs on node 0, the coordinator.
/// - When node 0 re-plans the job without nodes that did not come back (`leave_out`),
///   every task on a node left keeps its node (its checkpoint pieces are in that node's
///   store), and each task of a missing node goes to the node left with the fewest
///   instances of its chain, then the fewest tasks, then the lowest number. That placement is node 0's decision: it sends it
///   to every node and records it in each checkpoint.
/// - Every input channel of every task has a global number, `first_channel[task]` plus its
///   index among the task's inputs: frames name channels by it.
/// - An edge whose sender and receiver share a node stays in-process; one that crosses
///   nodes needs a wire codec for its record type (`port_spec::wire`), or the run is
///   refused, naming the edge and the type.
#include "sluice/actors/wiring.hpp"
#include "sluice/core/codec/batch_binary.hpp"
#include "sluice/core/error.hpp"
#include "sluice/graph/graph.hpp"
#include "sluice/graph/plan.hpp"

#include <cstdint>
#include <string>
#include <vector>

namespace sluice {

struct placement {
  /// The cluster's size (the cluster file's lines).
  int nodes = 1;
  /// The nodes the job runs on, ascending, node 0 first: every node, or the survivors.
  std::vector<int> live;
  /// The node of each task, indexed like the wiring.
  std::vector<int> node_of_task;
  /// The global number of each task's first input channel.
  std::vector<std::uint32_t> first_channel;
  /// Per global channel: the codec of its records (empty for a channel within a node).
  std::vector<const codec::batch_codec*> codec_of_channel;
  std::uint32_t channel_count = 0;

  bool remote(int task, int from_node) const noexcept {
    return node_of_task[static_cast<std::size_t>(task)] != from_node;
  }
  std::uint32_t channel(int task, int input) const noexcept {
    return first_channel[static_cast<std::size_t>(task)] + static_cast<std::uint32_t>(input);
  }
  /// The tasks of `node`, in task order.
  std::vector<int> tasks_of(int node) const;
  /// Whether `node` is one the job runs on.
  bool runs_on(int node) const noexcept;
};

/// Places the tasks of `wiring` (the plan `plan` of graph `g`) on `nodes` nodes. Fails with
/// `invalid_option` when an edge that crosses nodes carries a record type without a wire
/// codec: "edge 'split' -> 'counts' carries word_at, which has no inspect(): ...".
[[nodiscard]] result<placement> place(const graph& g, const physical_plan& plan,
                                      const std::vector<task_wiring>& wiring, int nodes);

/// The placement `now` without the nodes not in `live` (see the rules above).
[[nodiscard]] result<placement> leave_out(const graph& g, const physical_plan& plan,
                                          const std::vector<task_wiring>& wiring,
                                          const placement& now, std::vector<int> live);

/// The placement that runs task `t` on `node_of_task[t]`, on the nodes `live` of a cluster of
/// `nodes`: what node 0 decided, as another node or a later run receives it. Fails with
/// `invalid_option` when `live` is not ascending node numbers of the cluster starting with
/// node 0, when a task's node is not in `live`, or the task count differs.
[[nodiscard]] result<placement> place_as(const graph& g, const physical_plan& plan,
                                         const std::vector<task_wiring>& wiring, int nodes,
                                         std::vector<int> live, std::vector<int> node_of_task);

/// "0, 2": a list of nodes, for logs and errors.
std::string describe_nodes(const std::vector<int>& nodes);

/// The node of every task, for explain: "  'counts' instance 2 of 2: node 1", one line each.
std::string describe_placement(const physical_plan& plan, const std::vector<task_wiring>& wiring,
                               const placement& p);

} // namespace sluice
