#pragma once
/// Everything a task needs to build itself: the graph, the plan, the wiring, the options.
/// Shared read-only by all tasks of a job.
#include "actors/runtime.hpp"
#include "actors/wiring.hpp"
#include "core/metrics.hpp"

#include <memory>
#include <vector>

namespace sluice {

struct blueprint {
  graph logical;
  physical_plan plan;
  std::vector<task_wiring> tasks;
  runtime_options options;
  /// One counter block per task, indexed like `tasks`.
  std::unique_ptr<task_metrics[]> metrics;
};

} // namespace sluice
