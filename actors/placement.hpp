#pragma once
/// Placement: which node of a multi-node run runs each task, and the numbering of the
/// channels that cross nodes. A pure function of the plan, the wiring and the node count,
/// so every node computes the same table without telling the others (docs/cluster.md).
///
/// Rules:
/// - Instance `i` of a chain with parallelism `p` runs on node `i * nodes / p`: instances
///   spread evenly, and each node's instances (so its key groups, which follow instance
///   order) are contiguous. A chain of parallelism 1 runs on node 0, the coordinator.
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
  int nodes = 1;
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
};

/// Places the tasks of `wiring` (the plan `plan` of graph `g`) on `nodes` nodes. Fails with
/// `invalid_option` when an edge that crosses nodes carries a record type without a wire
/// codec: "edge 'split' -> 'counts' carries word_at, which has no inspect(): ...".
[[nodiscard]] result<placement> place(const graph& g, const physical_plan& plan,
                                      const std::vector<task_wiring>& wiring, int nodes);

/// The node of every task, for explain: "  'counts' instance 2 of 2: node 1", one line each.
std::string describe_placement(const physical_plan& plan, const std::vector<task_wiring>& wiring,
                               const placement& p);

} // namespace sluice
