#pragma once
/// A micro-batch source task's trigger: how its input is fixed before the batch runs
/// (planned afresh, or replayed to the end the offset log holds), which epoch it reads, and
/// when its polls stop. CAF-free; private to actors/: the task actor carries out what it
/// says (tests/actors/task_test.cpp drives it directly).
#include "sluice/actors/trigger_plans.hpp"
#include "sluice/core/error.hpp"
#include "sluice/sources/source.hpp"

#include <cstdint>
#include <optional>
#include <string>
#include <utility>

namespace sluice {

class source_trigger {
public:
  /// The coordinator's `prepare` for the next batch.
  struct request {
    bool unlimited = false; ///< Trigger.Once: no cap applies, the record cap neither
    trigger_plans::step step = trigger_plans::step::plan;
    std::string end;                ///< the logged end (`replay`, `replay_merged`)
    std::uint64_t max_records = 0;  ///< the runtime's per-trigger record cap
    int parallelism = 1;            ///< the source's parallelism in this run
    /// The coordinator's wall time when it asked (`source_base::trigger_time`).
    std::optional<event_time> wall;
  };

  /// Fixes this trigger's input and says whether there is any. `step` (trigger_plans): plan
  /// afresh, or, when the offset log holds this batch's plan from a run that did not
  /// complete it, read exactly to the logged `end` again; after a change of parallelism a
  /// source that `restores_from_all_instances` splits the old instances' merged ends anew,
  /// any other is refused (`merged_plan::cannot_replay_at`). A source whose input is used
  /// up, or that is finishing (`finishing`), plans nothing: no input. Fails with the
  /// source's error or an unreadable logged plan.
  [[nodiscard]] result<trigger_plan> prepare(source_base& source, const request& r, bool finishing);

  /// The coordinator's `run`: reading `epoch` begins.
  void begin(std::int64_t epoch) noexcept {
    running_ = epoch;
    rows_ = 0;
  }
  /// Records read by a poll of this trigger.
  void count(std::uint64_t rows) noexcept { rows_ += rows; }
  /// After a poll that returned `state`: whether the trigger reads on. It stops when the
  /// source runs dry (at its end it stays used up), or at the record cap `max_records`,
  /// unless the trigger is unlimited or the source planned its end: a replayed batch must
  /// not be cut shorter than it was.
  bool reads_on(poll_result::status state, std::uint64_t max_records) noexcept {
    if (state == poll_result::status::end)
      exhausted_ = true;
    return state == poll_result::status::more &&
           (unlimited_ || planned_ || rows_ < max_records);
  }
  /// The trigger ends: the epoch it was reading, if it was reading one.
  std::optional<std::int64_t> end() noexcept { return std::exchange(running_, std::nullopt); }
  /// The source's bounded input was read to its end.
  bool exhausted() const noexcept { return exhausted_; }

private:
  std::optional<std::int64_t> running_; ///< the epoch being read
  std::uint64_t rows_ = 0;              ///< records read in this trigger
  bool unlimited_ = false;              ///< the trigger ignores caps (once)
  bool planned_ = false;                ///< the source planned the trigger's end
  bool exhausted_ = false;
};

} // namespace sluice
