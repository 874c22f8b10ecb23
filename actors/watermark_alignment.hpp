#pragma once
/// Watermark alignment (Flink's `withWatermarkAlignment`, sources/watermarks.hpp) as the
/// coordinator keeps it: the last state each aligned source instance reported, each group's
/// minimum, and the watermark each instance may reach. CAF-free; private to actors/: the
/// coordinator carries out what it says (tests/eventtime/alignment_test.cpp drives it
/// directly), the source tasks report and pause (task.cpp, through `alignment_reporter`).
///
/// Protocol: a source task reports (wmreport, task, state, watermark µs) when its state
/// changes, and a new watermark at most every `update_interval`; the coordinator answers
/// (wmallow, max watermark µs) whenever what an instance may reach changes: the minimum of
/// the other members of its group plus its own `max_drift`. An instance
/// polls while its watermark is at most its allowance; before its first allowance it polls
/// only until it has a watermark. Multi-node runs carry both as control messages.
#include "sluice/core/time.hpp"

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace sluice {

struct blueprint;

/// What a source instance reports of itself.
enum class alignment_state : std::int32_t {
  waiting = 0, ///< no watermark yet: holds its group at "unknown"
  active = 1,  ///< has a watermark, with records: counts in its group's minimum
  idle = 2,    ///< idle (`with_idleness`): does not hold the group back
  ended = 3,   ///< its input ended (or it was stopped): does not hold the group back
};

/// True for the four states above (a remote report is checked before it is used).
constexpr bool valid_alignment_state(std::int32_t s) noexcept { return s >= 0 && s <= 3; }

class alignment_groups {
public:
  /// An aligned source task.
  struct member {
    int task = 0;
    std::string group;
    duration max_drift{};
  };
  /// The watermark task `task` may reach now (`max_watermark`: no limit).
  struct allowance {
    int task = 0;
    event_time max_watermark{};
    friend bool operator==(const allowance&, const allowance&) = default;
  };

  explicit alignment_groups(std::vector<member> members = {});

  /// The aligned source tasks of a job: every instance of a source whose strategy is
  /// aligned; none under micro-batch triggers, which read planned, bounded inputs.
  static std::vector<member> members_of(const blueprint& bp);

  /// A new attempt: every member waits again, nothing was sent (alignment is not
  /// checkpointed; it rebuilds from the new tasks' reports).
  void restart();

  /// Task `task` reports `state` and, when active, its watermark `wm`. Returns the
  /// allowances that changed. Unknown tasks are ignored.
  [[nodiscard]] std::vector<allowance> report(int task, alignment_state state, event_time wm);

  bool empty() const noexcept { return members_.empty(); }
  /// The minimum of `group` over its members other than task `except` (-1: all): unset
  /// while it is unknown (one of them waits); `max_watermark` when none holds the group
  /// back (each idle or ended). Task `except` may reach this plus its `max_drift`.
  std::optional<event_time> minimum(const std::string& group, int except = -1) const;

private:
  struct slot {
    member m;
    alignment_state state = alignment_state::waiting;
    event_time watermark = min_watermark;
    std::optional<event_time> sent{}; ///< the last allowance sent
  };
  std::vector<slot> members_;
};

/// What a source task sends the coordinator about itself.
struct alignment_report {
  alignment_state state = alignment_state::waiting;
  event_time watermark = min_watermark;
  friend bool operator==(const alignment_report&, const alignment_report&) = default;
};

/// The source task's side: whether the allowance holds it, and when to report. CAF-free:
/// the task feeds it its state, watermark and the steady clock, and sends what it says.
class alignment_reporter {
public:
  using time_point = std::chrono::steady_clock::time_point;

  /// What to do after an update: send `report` now, or ask again at `wake_at` (at most one
  /// wake-up is outstanding), or neither.
  struct step {
    std::optional<alignment_report> report{};
    std::optional<time_point> wake_at{};
  };

  explicit alignment_reporter(std::chrono::nanoseconds update_interval)
    : interval_(update_interval) {}

  /// Whether a source whose watermark is `wm` must stop polling: it has a watermark and is
  /// past its allowance, or has had none yet (its group may still be unknown).
  bool holds(event_time wm) const;
  /// The coordinator's answer: the watermark this instance may reach.
  void allow(event_time allowed) { allowed_ = allowed; }

  /// A change of state is reported at once; a new watermark at most once per update
  /// interval (the first that comes due wakes the task once). Nothing after `end`.
  [[nodiscard]] step update(alignment_state state, event_time wm, time_point now);
  /// The wake-up asked for by `update` came: the next `update` may report.
  void woke() noexcept { wake_pending_ = false; }
  /// The instance ended: a last report (once), which releases its group.
  [[nodiscard]] std::optional<alignment_report> end(event_time wm, time_point now);

private:
  alignment_report sent(alignment_state state, event_time wm, time_point now);

  std::chrono::nanoseconds interval_;
  std::optional<event_time> allowed_{}; ///< none until the coordinator's first answer
  alignment_report last_{};             ///< reported last
  time_point last_at_{};
  bool wake_pending_ = false;
};

} // namespace sluice
