#pragma once
/// When epochs begin and end: the coordinator's trigger logic (Spark's triggers in
/// micro-batch mode, a barrier every interval in continuous mode), which task acknowledged
/// which epoch, and Spark's per-epoch watermark. CAF-free: the coordinator actor feeds it
/// events and carries out what it decides through `epoch_driver`
/// (tests/engine/epoch_planner_test.cpp drives it directly).
#include "sluice/checkpoint/store.hpp"
#include "sluice/core/epoch.hpp"
#include "sluice/core/time.hpp"

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace sluice {

/// An epoch between its start and the last task's acknowledgement.
struct open_epoch {
  clock::time_point triggered; ///< the trigger fired (prepare, or inject)
  clock::time_point started;   ///< the sources began reading it
  std::chrono::system_clock::time_point wall = std::chrono::system_clock::now();
  std::vector<bool> acked;
  std::vector<epoch_report_ptr> reports;
  std::optional<event_time> watermark; ///< micro-batch: Spark's watermark it ran with
};

/// What the planner asks of the coordinator. Calls come synchronously from inside the
/// planner's methods.
class epoch_driver {
public:
  virtual ~epoch_driver() = default;
  /// Micro-batch: ask every source what epoch `epoch` would read (`unlimited`: ignore caps).
  virtual void prepare(std::int64_t epoch, bool unlimited) = 0;
  /// Micro-batch: every source reads epoch `epoch` under watermark `watermark` (the
  /// engine's convention: the last instant known complete).
  virtual void run(std::int64_t epoch, event_time watermark) = 0;
  /// Continuous: every source ends epoch `epoch` now; a checkpoint when `checkpoint`.
  virtual void inject(std::int64_t epoch, bool checkpoint) = 0;
  /// Cancel every source; the job ends once they drained.
  virtual void stop_sources() = 0;
  /// Call `epoch_planner::tick` at `at`.
  virtual void schedule_tick(clock::time_point at) = 0;
  /// The query's status changed (Spark's `StreamingQueryStatus`).
  virtual void status(std::string message, bool data_available, bool trigger_active) = 0;
  /// The query went idle: a trigger found nothing to do (Spark's `onQueryIdle`).
  virtual void idle() = 0;
  /// Every task acknowledged epoch `id` or finished without it: its checkpoint and progress
  /// report. Returns false when the job ended meanwhile (the planner stops there).
  virtual bool epoch_complete(std::int64_t id, const open_epoch& e) = 0;
};

class epoch_planner {
public:
  enum class phase { idle, preparing, running, stopping };

  /// `tasks` tasks of which `sources` are source tasks; `has_event_time_state`: an
  /// operator the watermark releases exists (runtime_options::has_event_time_state).
  epoch_planner(trigger when, std::size_t tasks, std::size_t sources, bool has_event_time_state,
                epoch_driver& driver);

  /// A run's tasks start at `now`: epochs continue after `restored` (or from
  /// `first_epoch` if later), or from 0 without a checkpoint.
  void start(clock::time_point now, const checkpoint_meta* restored, std::int64_t first_epoch);

  /// The scheduled tick came. Continuous: `checkpoint` says whether the barrier injected now
  /// is a checkpoint's. Micro-batch: the next trigger starts when idle.
  void tick(clock::time_point now, bool checkpoint);
  /// Continuous: an epoch (a checkpoint when `checkpoint`) starts now, before the next tick.
  void inject_now(clock::time_point now, bool checkpoint);
  /// Micro-batch: the next trigger starts now (a savepoint was asked for while idle).
  void trigger_now(clock::time_point now);

  /// Continuous: a source's input ended (or it was cancelled) after epoch `after`; it
  /// needs one more barrier, a checkpoint's when `checkpoint`. Injects it unless such an
  /// epoch after `after` is already on its way (every source gets every barrier).
  void final_barrier(clock::time_point now, std::int64_t after, bool checkpoint);
  /// A source answered `prepare` for `epoch`.
  void prepared(clock::time_point now, std::int64_t epoch, bool available);
  /// A task acknowledged an epoch. False when that epoch was never started or has already
  /// completed: the barriers were numbered wrongly, which the caller reports as a failure.
  [[nodiscard]] bool acknowledged(clock::time_point now, const epoch_report_ptr& report);
  /// Task `task` finished: it acknowledges no further epoch.
  void task_done(clock::time_point now, std::size_t task);
  /// The job ends: every open epoch is as complete as it will get.
  void complete_all(clock::time_point now);
  /// Stop the sources, after the micro-batch in flight if any.
  void cancel();

  phase current() const noexcept { return phase_; }
  /// Task `task` of this run finished.
  bool finished(std::size_t task) const { return task_done_[task]; }
  std::int64_t next_epoch() const noexcept { return next_epoch_; }
  bool micro_batch() const noexcept { return when_.micro_batch(); }
  const trigger& when() const noexcept { return when_; }
  /// The watermark the next micro-batch runs with (Spark's convention), if any.
  std::optional<event_time> spark_watermark() const noexcept { return spark_watermark_; }
  /// What a checkpoint must hold for a restored run to go on with the same watermarks.
  void save(std::map<std::string, std::string>& properties) const;

private:
  void begin_trigger(clock::time_point now);
  void inject_through(clock::time_point now, std::int64_t last, bool checkpoint);
  void init_epoch(open_epoch& e, clock::time_point now);
  void complete_epochs(bool all, clock::time_point now);
  void after_micro_batch(clock::time_point now);
  void stop_sources();
  void absorb_event_times(const open_epoch& e);
  void update_spark_watermark();
  void resume(const checkpoint_meta& m);
  void reset();

  trigger when_;
  std::size_t tasks_;
  std::size_t sources_;
  bool has_event_time_state_;
  epoch_driver& driver_;

  phase phase_ = phase::idle;
  std::int64_t next_epoch_ = 0;
  std::int64_t last_checkpoint_injected_ = -1; ///< continuous: this run's newest
  std::map<std::int64_t, open_epoch> open_epochs_;
  std::vector<bool> task_done_;
  bool stop_after_epoch_ = false;
  clock::time_point trigger_started_{};
  std::size_t prepared_ = 0;
  bool available_ = false;
  // Spark's watermark: per source node, the maximum event time seen and the delay.
  std::map<int, event_time> source_max_;
  std::map<int, duration> source_delay_;
  std::optional<event_time> spark_watermark_;
  std::optional<event_time> last_run_watermark_;
};

} // namespace sluice
