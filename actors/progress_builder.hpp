#pragma once
/// Spark's progress reports (`StreamingQueryProgress`) built from the tasks' epoch reports
/// and counters: one per micro-batch, or one per progress interval in continuous mode
/// (folding the epochs that ended in it). CAF-free (tests/engine/progress_builder_test.cpp).
#include "sluice/actors/blueprint.hpp"
#include "sluice/actors/epoch_planner.hpp"
#include "sluice/core/progress.hpp"

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace sluice {

/// A progress report's ids: random version-4 UUIDs.
struct query_ids {
  std::string query;
  std::string run;

  static std::string uuid();
  static query_ids fresh() { return {uuid(), uuid()}; }
};

/// The counters of every task of the blueprint, now, with chain and node names.
std::vector<task_stats> collect_stats(const blueprint& bp);

class progress_builder {
public:
  progress_builder(const blueprint& bp, std::shared_ptr<const sluice::clock> clock,
                   bool micro_batch);

  /// The report of epoch `id` from its tasks' reports. `watermark`: continuous mode's
  /// current watermark, for jobs without micro-batch watermarks.
  query_progress epoch_progress(std::int64_t id, const open_epoch& e, const query_ids& ids);

  /// What `offer` hands back to publish.
  struct ready {
    query_progress report;
    /// A continuous progress interval ended (its report covers every epoch in it).
    bool interval = false;
  };
  /// One epoch's report (or none, with `flush`). Micro-batch mode publishes each at once;
  /// continuous mode folds them into the progress interval's report, handed back when the
  /// interval is over or on `flush` (the job ends). The operators' figures and the newest
  /// checkpoint are added to what is handed back.
  std::optional<ready> offer(std::optional<query_progress> p, bool flush = false);

  /// A checkpoint completed: the next report names it.
  void checkpoint_completed(checkpoint_progress c) { last_checkpoint_ = std::move(c); }
  /// Continuous mode: the lowest watermark of the sources, in Spark's convention.
  std::optional<event_time> continuous_watermark() const;

private:
  void add_operator_progress(query_progress& p, sluice::clock::time_point now);

  const blueprint& bp_;
  std::shared_ptr<const sluice::clock> clock_;
  bool micro_batch_;
  std::optional<sluice::clock::time_point> last_trigger_;
  std::optional<query_progress> pending_; ///< continuous: the interval so far
  sluice::clock::time_point span_start_{};
  std::vector<task_stats> last_stats_; ///< at the last report, for per-operator deltas
  std::optional<checkpoint_progress> last_checkpoint_; ///< completed since the last report
};

} // namespace sluice
