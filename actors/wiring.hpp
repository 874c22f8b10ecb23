#pragma once
/// Wiring: which task sends to which, over which numbered channel. A pure function of
/// the physical plan, so every node of a multi-node job computes the same table.
#include "sluice/graph/plan.hpp"

#include <vector>

namespace sluice {

struct input_channel {
  int from_task = 0;       ///< global index of the sending task
  int sender_output = 0;   ///< index of the edge among the sender's outputs
  int sender_target = 0;   ///< index of this task among that edge's targets
  int to_input = 0;        ///< input of this task's chain head
};

struct output_target {
  int to_task = 0;          ///< global index of the receiving task
  int receiver_channel = 0; ///< index into the receiver's `inputs`
};

struct output_edge {
  int plan_edge = 0;
  int from_node_index = 0;
  int from_port = 0;
  std::vector<output_target> targets;
};

struct task_wiring {
  int chain = 0;
  int instance = 0;
  std::vector<input_channel> inputs;
  std::vector<output_edge> outputs;
};

/// One entry per task: tasks of chain 0 first, instance by instance, then chain 1, ...
std::vector<task_wiring> wire(const physical_plan& plan);

} // namespace sluice
