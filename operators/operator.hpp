#pragma once
/// The operator interface: what every node of a chain implements.
///
/// Operators see whole batches. Fused operators call each other directly through
/// `output::emit`, so a chain of map -> filter -> sink is a few virtual calls per batch
/// and tight loops over records, with no queue in between.
#include "sluice/core/batch.hpp"
#include "sluice/core/epoch.hpp"
#include "sluice/core/error.hpp"
#include "sluice/core/key_group.hpp"
#include "sluice/core/metrics.hpp"
#include "sluice/core/time.hpp"

#include <functional>
#include <memory>
#include <optional>
#include <string>

namespace sluice {

/// Where an operator sends its results. Port 0 is the main output; other ports are side
/// outputs (dead letters, late data, ...).
class output {
public:
  virtual ~output() = default;
  /// Hands a batch to whatever is connected to `port`. Errors of fused downstream
  /// operators come back through the result.
  virtual result<void> emit(int port, batch_ptr records) = 0;
};

/// Lets an operator ask to be woken in processing time. The task implements it.
class timer_service {
public:
  virtual ~timer_service() = default;
  /// `on_processing_time` will be called at or after `when` (earlier requests may
  /// wake the operator early; it checks the clock).
  virtual void request_wakeup(clock::time_point when) = 0;
};

/// Facts about one parallel instance of an operator, given to `open`.
struct operator_info {
  std::string name;             ///< the node's name, as set with `.name(...)`
  int instance = 0;             ///< 0-based index of this parallel instance
  int parallelism = 1;          ///< number of parallel instances
  int max_key_groups = default_max_key_groups;
  key_group_range key_groups{}; ///< the key groups this instance owns
  std::shared_ptr<const clock> processing_clock = default_clock();
  /// Processing-time wake-ups; null when nothing drives them (the operator harness
  /// calls `on_processing_time` itself).
  timer_service* timers = nullptr;
  /// The task's counters (late records, ...); null in unit tests without a task.
  task_metrics* metrics = nullptr;
  /// Spark's output mode when the job sets one; unset: Flink's semantics (each operator
  /// emits as it computes: windows when the watermark passes, running aggregates per record).
  std::optional<output_mode> mode{};
  /// Epochs are micro-batches: the watermark moves only at their start, and aggregations
  /// under an output mode emit and free state at their end (Spark's order).
  bool micro_batch = false;
  late_row_rule late_rows = late_row_rule::previous_watermark;
  /// The job takes checkpoints.
  bool checkpoints = false;
  /// The checkpoint this run restored from; -1 when it started fresh.
  std::int64_t restored = -1;
  /// The job's attempt: 0 for its first run, one more after each restart. Connectors that
  /// name files put it in the names, so that a failed attempt's leftovers never collide with
  /// the next attempt's.
  int attempt = 0;
  /// `restored` was asked for (`checkpoint_options::restore_from`), not found as the latest
  /// usable checkpoint: the user chose to start a new history there.
  bool restore_requested = false;
};

/// Where an operator writes its part of a checkpoint: named pieces of bytes. Keyed state
/// goes in one piece per key group (`key_group_piece`), so a restart with another
/// parallelism finds each key group's state wherever the key group now lives.
///
/// Asynchronous and incremental snapshots: `put_later` hands over a function that makes the
/// bytes later, off the task's thread, from state the operator has frozen (keyed_state.hpp),
/// so the task's pause does not grow with the state; `reuse` says a piece is unchanged since
/// this instance's previous snapshot, so the checkpoint refers to the bytes written then.
class snapshot_writer {
public:
  virtual ~snapshot_writer() = default;
  virtual result<void> put(const std::string& piece, std::string bytes) = 0;
  /// `encode` runs later on another thread (here: now, unless overridden). It must touch
  /// nothing the operator goes on changing.
  virtual result<void> put_later(const std::string& piece,
                                 std::function<result<std::string>()> encode) {
    auto bytes = encode();
    if (!bytes)
      return std::move(bytes).error();
    return put(piece, std::move(*bytes));
  }
  /// Whether `reuse` works: the writer remembers this instance's previous snapshot.
  virtual bool can_reuse() const noexcept { return false; }
  /// Piece `piece` is the same as in this instance's previous snapshot.
  virtual result<void> reuse(const std::string& piece) {
    return make_error(error_code::internal,
                      "piece '" + piece + "': this snapshot writer cannot refer to earlier ones");
  }
};

/// Where an operator finds its state at a restart.
class snapshot_reader {
public:
  virtual ~snapshot_reader() = default;
  /// The piece, or nullopt when the checkpoint has none of that name (an empty key group).
  virtual result<std::optional<std::string>> get(const std::string& piece) = 0;
};

inline std::string key_group_piece(int key_group) { return "kg/" + std::to_string(key_group); }
inline std::string instance_piece(int instance) { return "instance/" + std::to_string(instance); }

/// Calls `fn(instance, bytes) -> result<void>` with the per-instance piece of each instance
/// that wrote the checkpoint: 0, 1, ... up to the first missing one, whatever the
/// parallelism is now.
template <class Fn>
result<void> for_each_instance_piece(snapshot_reader& r, Fn&& fn) {
  for (int i = 0;; ++i) {
    auto piece = r.get(instance_piece(i));
    if (!piece)
      return std::move(piece).error();
    if (!*piece)
      return {};
    if (auto ok = fn(i, std::string_view{**piece}); !ok)
      return ok;
  }
}

/// One parallel instance of an operator.
///
/// Concurrency: each instance is driven by exactly one task at a time; no method is
/// called concurrently on the same instance. Exceptions thrown from user functions
/// propagate out of `process`, and the task turns them into a named job failure.
class operator_base {
public:
  virtual ~operator_base() = default;
  /// Called once before the first batch.
  virtual result<void> open(const operator_info& info) {
    info_ = info;
    return {};
  }
  /// Processes one batch that arrived at `input`. The operator may change `records` in
  /// place when it holds the only reference (`records.use_count() == 1`).
  virtual result<void> process(int input, batch_ptr records, output& out) = 0;
  /// The event-time watermark advanced to `wm` (it never goes back). Event-time
  /// operators fire their due windows and timers here; `current_watermark()` is already
  /// `wm`. The chain forwards the watermark after this returns, so what is emitted here
  /// reaches downstream before the watermark does.
  virtual result<void> on_watermark(event_time /*wm*/, output&) { return {}; }
  /// Processing time reached a wake-up requested through `info().timers` (or the harness
  /// moved its clock).
  virtual result<void> on_processing_time(clock::time_point /*now*/, output&) { return {}; }
  /// Every input passed the barrier of `epoch`: all records before it are processed.
  /// Aggregations under an output mode emit the epoch's rows here (update, complete);
  /// stateful operators and sinks fill `stats` for the epoch's progress report. The
  /// barrier goes on after this returns, behind what was emitted.
  virtual result<void> end_epoch(std::int64_t /*epoch*/, output&, operator_epoch_stats& /*stats*/) {
    return {};
  }
  /// All inputs have ended: emit whatever is still held back.
  virtual result<void> finish(output&) { return {}; }
  /// Releases resources. Called once, also after failures.
  virtual result<void> close() { return {}; }

  // -- checkpoints ---------------------------------------------------------------------

  /// False for operators whose state cannot be checkpointed yet: a job with checkpoints
  /// refuses to start with one (stateless operators, the default, have nothing to save).
  virtual bool can_checkpoint() const noexcept { return true; }
  /// Writes the state as of the checkpoint barrier `checkpoint` (after `end_epoch`).
  virtual result<void> snapshot(std::int64_t /*checkpoint*/, snapshot_writer&) { return {}; }
  /// Restores the state from a checkpoint, after `open` and before any input.
  virtual result<void> restore(snapshot_reader&) { return {}; }
  /// Checkpoint `checkpoint` is complete (its metadata is durable): two-phase sinks make
  /// what they pre-committed for it visible. May be called again for the same id.
  virtual result<void> notify_checkpoint_complete(std::int64_t /*checkpoint*/) { return {}; }

  const operator_info& info() const noexcept { return info_; }
  /// The last watermark delivered to this operator (`min_watermark` before the first).
  event_time current_watermark() const noexcept { return watermark_; }
  /// Only the chain (and the test harness) moves the watermark, then calls `on_watermark`.
  void set_watermark(event_time wm) noexcept { watermark_ = wm; }

protected:
  /// Counts a record too late for this operator; `to_side_output` when it was kept.
  void count_late(std::uint64_t n, bool to_side_output) noexcept {
    if (!info_.metrics)
      return;
    task_metrics::add(info_.metrics->late_records, n);
    if (to_side_output)
      task_metrics::add(info_.metrics->late_records_to_side_output, n);
  }

  operator_info info_;
  event_time watermark_ = min_watermark;
};

/// Creates one operator instance per parallel task.
using operator_factory = std::function<std::unique_ptr<operator_base>()>;

} // namespace sluice
