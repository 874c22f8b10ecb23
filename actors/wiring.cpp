#include "sluice/actors/wiring.hpp"

namespace sluice {

std::vector<task_wiring> wire(const physical_plan& plan) {
  std::vector<int> first_task;
  std::vector<task_wiring> tasks;
  for (auto& c : plan.chains) {
    first_task.push_back(static_cast<int>(tasks.size()));
    for (int i = 0; i < c.parallelism; ++i)
      tasks.push_back(task_wiring{c.id, i, {}, {}});
  }
  for (int e = 0; e < static_cast<int>(plan.edges.size()); ++e) {
    const auto& edge = plan.edges[static_cast<std::size_t>(e)];
    const auto& from = plan.chains[static_cast<std::size_t>(edge.from_chain)];
    const auto& to = plan.chains[static_cast<std::size_t>(edge.to_chain)];
    for (int s = 0; s < from.parallelism; ++s) {
      auto sender = first_task[static_cast<std::size_t>(edge.from_chain)] + s;
      auto& outs = tasks[static_cast<std::size_t>(sender)].outputs;
      output_edge out{e, edge.from_node_index, edge.from_port, {}};
      auto add_target = [&](int instance) {
        auto receiver = first_task[static_cast<std::size_t>(edge.to_chain)] + instance;
        auto& ins = tasks[static_cast<std::size_t>(receiver)].inputs;
        out.targets.push_back(output_target{receiver, static_cast<int>(ins.size())});
        ins.push_back(input_channel{sender, static_cast<int>(outs.size()),
                                    static_cast<int>(out.targets.size()) - 1, edge.to_input});
      };
      if (edge.kind == partition_kind::forward)
        add_target(s);
      else
        for (int t = 0; t < to.parallelism; ++t)
          add_target(t);
      outs.push_back(std::move(out));
    }
  }
  return tasks;
}

} // namespace sluice
