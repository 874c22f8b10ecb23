#pragma once
/// Exact replay of micro-batches (Spark's offset log): before batch N runs, where each source
/// instance's input for it ends is logged durably; a run that starts at batch N while the log
/// holds N's plan (the batch ran before, its checkpoint never completed) has every source
/// read exactly to those ends again. CAF-free: the coordinator asks it what each source task
/// does (tests/actors/coordinator_test.cpp drives it directly).
#include "sluice/checkpoint/offset_log.hpp"

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
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
  enum class step : std::int32_t {
    plan = 0,          ///< plan the batch afresh
    replay = 1,        ///< read exactly to `end`, this instance's logged end
    replay_merged = 2, ///< planned at another parallelism: `end` is a `merged_plan`
  };
  struct instruction {
    step what = step::plan;
    std::string end;
  };
  /// A batch planned at another parallelism of a source: every old instance's end, for a
  /// source whose plans merge (`source_base::replay_trigger_all`) to split anew.
  struct merged_plan {
    std::int64_t batch = 0;
    std::string node;
    int parallelism = 0;           ///< the parallelism the batch was planned at
    std::vector<std::string> ends; ///< by old instance, those that planned one
    std::string log_file;          ///< the logged plan, for errors
    std::string encode() const;
    static result<merged_plan> decode(std::string_view text);
    /// For a source whose plans do not merge: names the source, both parallelisms and the
    /// file to delete to plan the batch anew.
    error cannot_replay_at(int parallelism) const;
  };

  /// Without a log (no checkpoints) nothing is logged or replayed.
  trigger_plans(std::optional<offset_log> log, std::vector<source_task> sources);

  /// Batch `batch` begins: one instruction per source task, in the order given at
  /// construction. Fails with `io_error` when the logged plan does not read. A source whose
  /// parallelism changed since the plan was logged gets `replay_merged` on every instance.
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
