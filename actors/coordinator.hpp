#pragma once
/// The coordinator actor: one per job. It owns the job's lifecycle (spawns, wires and starts
/// the tasks, restarts them after a failure, ends the job) and carries out what its CAF-free
/// parts decide: epoch_planner.hpp (when epochs begin and end), checkpoint_coordinator.hpp
/// (checkpoints) and progress_builder.hpp (progress reports). Private to actors/.
#include "sluice/actors/blueprint.hpp"
#include "sluice/actors/runtime.hpp"

#include <caf/fwd.hpp>

#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

namespace sluice {

/// What the coordinator and the caller's handle (job_execution) share.
struct job_state {
  std::mutex mtx;
  std::condition_variable cv;
  std::optional<result<job_result>> outcome;
  std::chrono::steady_clock::time_point started = std::chrono::steady_clock::now();
  std::deque<query_progress> progress; ///< the last 100 reports
  // What monitors read (job_snapshot), written by the coordinator.
  std::string id, run_id;
  std::string phase = "running";
  query_status status;
  int restarts = 0;
  std::int64_t checkpoints_completed = 0;
  std::int64_t checkpoint_failures = 0;
  std::optional<std::string> last_failure;
  std::deque<checkpoint_stats> checkpoints; ///< the last 100
  std::optional<error> failure;             ///< the job's own failure, once it ended
};

/// Spawns the coordinator of the job `bp`, which starts its first run from `from` at once.
/// `skipped`: newer checkpoints that could not be restored, and why.
/// `cluster`: in a multi-node run (on node 0), the node's link and placement: tasks of
/// other nodes are reached through stand-ins (remote.hpp); null in a one-process run.
caf::actor spawn_coordinator(caf::actor_system& sys, std::shared_ptr<const blueprint> bp,
                             std::shared_ptr<job_state> state,
                             std::shared_ptr<const restore_point> from,
                             std::vector<std::string> skipped,
                             std::shared_ptr<struct cluster_context> cluster = nullptr);

} // namespace sluice
