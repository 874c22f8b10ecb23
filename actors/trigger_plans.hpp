#pragma once
/// Exact replay of micro-batches (Spark's offset log): before batch N runs, where each source
/// instance's input for it ends is logged durably; a run that starts at batch N while the log
/// holds N's plan (the batch ran before, its checkpoint never completed) has every source
/// read exactly to those ends again. CAF-free: the coordinator asks it what each source task
/// does (tests/actors/coordinator_test.cpp drives it directly).
#include "checkpoint/offset_log.hpp"

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace sluice {

class trigger_plans {
public:
  /// One source task: its node's name, its instance and the node's parallelism.
  struct source_task {
    std::string node;
    int instance = 0;
    int parallelism = 1;
  };
  /// What one source task does for a batch.
  struct instruction {
    bool replay = false; ///< read exactly to `end` (else plan the batch afresh)
    std::string end;
  };

  /// Without a log (no checkpoints) nothing is logged or replayed.
  trigger_plans(std::optional<offset_log> log, std::vector<source_task> sources);

  /// Batch `batch` begins: one instruction per source task, in the order given at
  /// construction. Fails with `io_error` when the logged plan does not read, and with
  /// `invalid_option` when it was made at another parallelism of a source (naming it, both
  /// parallelisms and the plan's file): replaying it instance by instance is impossible.
  [[nodiscard]] result<std::vector<instruction>> begin(std::int64_t batch);
  /// Source task `i` planned `end` (empty: it cannot replay).
  void planned(std::size_t i, std::string end);
  /// The batch runs now: its plan is logged first (a replayed one already is).
  [[nodiscard]] result<void> log();
  /// Batch `batch` completed (its checkpoint): plans older than the last `retained`
  /// batches are removed.
  [[nodiscard]] result<void> completed(std::int64_t batch);
  /// The batch being planned replays a logged plan.
  bool replaying() const noexcept { return replaying_; }

  /// Plans kept behind the newest completed batch (Spark's `minBatchesToRetain`).
  static constexpr std::int64_t retained = 100;

private:
  std::string key(std::size_t i) const;

  std::optional<offset_log> log_;
  std::vector<source_task> sources_;
  batch_plan plan_;
  bool replaying_ = false;
};

} // namespace sluice
