#pragma once
/// Everything a task needs to build itself: the graph, the plan, the wiring, the options.
/// Shared read-only by all tasks of a job.
#include "sluice/actors/restore.hpp"
#include "sluice/actors/runtime.hpp"
#include "sluice/actors/wiring.hpp"
#include "sluice/checkpoint/store.hpp"
#include "sluice/core/metrics.hpp"

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
  /// The checkpoint store; null without checkpoints.
  std::shared_ptr<checkpoint_store> store;
  /// Writes snapshots off the tasks' threads; with `store`.
  std::shared_ptr<class checkpoint_writer> writer;
  /// Taps, by logical node id; tasks hand their nodes' points to their chain. Never null
  /// once the job runs (mutable through a const blueprint: taps change while it runs).
  std::shared_ptr<tap_registry> taps;
};

} // namespace sluice
