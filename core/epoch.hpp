#pragma once
/// Epochs: the stream cut into consecutive slices by barriers that travel in-band behind
/// the data, as Spark's micro-batches and Flink's checkpoints cut it. Here live the words
/// both modes share: triggers, output modes, and what each task reports about an epoch.
#include "sluice/core/time.hpp"

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace sluice {

/// Spark's output modes: what a streaming aggregation emits at the end of each epoch.
enum class output_mode {
  append,   ///< a row once, final, when the watermark passes its window's end
  update,   ///< the rows that changed in the epoch
  complete, ///< the whole result table, every epoch
};
std::string_view to_string(output_mode m) noexcept;

/// Micro-batch mode: which watermark decides that an input row is late for a window.
/// Either way, windows are emitted (append) and freed at the epoch's own watermark.
enum class late_row_rule {
  /// Spark 3.4 and later (the default): the watermark of the epoch before, so a late row
  /// can still count in a window that its own epoch then emits.
  previous_watermark,
  /// Spark 3.3 and earlier (`statefulOperator.allowMultiple=false`): the epoch's watermark.
  epoch_watermark,
};

/// A set of output modes (what a sink accepts).
struct output_modes {
  bool append = true;
  bool update = true;
  bool complete = true;
  bool accepts(output_mode m) const noexcept {
    return m == output_mode::append ? append : m == output_mode::update ? update : complete;
  }
  static constexpr output_modes all() { return {true, true, true}; }
  static constexpr output_modes append_only() { return {true, false, false}; }
};

/// When epochs begin (Spark's triggers). Build one with the helpers in `triggers::`.
struct trigger {
  enum class kind {
    continuous,      ///< sources run freely; a barrier is injected every `interval`
    processing_time, ///< a micro-batch every `interval` (when there is something to do)
    available_now,   ///< micro-batches over what is available at start, then stop
    once,            ///< one micro-batch over everything available, then stop
  };
  kind how = kind::continuous;
  std::chrono::milliseconds interval{1000};

  bool micro_batch() const noexcept { return how != kind::continuous; }
  std::string describe() const;
};

namespace triggers {
/// Records flow as they come; epochs (for output modes, progress, foreach_batch) are cut
/// every `epoch_interval`. The default.
inline trigger continuous(std::chrono::milliseconds epoch_interval = std::chrono::seconds{1}) {
  return {trigger::kind::continuous, epoch_interval};
}
/// Spark's `Trigger.ProcessingTime(interval)`.
inline trigger processing_time(std::chrono::milliseconds interval) {
  return {trigger::kind::processing_time, interval};
}
/// Spark's `Trigger.AvailableNow()`.
inline trigger available_now() { return {trigger::kind::available_now, {}}; }
/// Spark's `Trigger.Once()`: like available_now in a single epoch, ignoring per-trigger caps.
inline trigger once() { return {trigger::kind::once, {}}; }
} // namespace triggers

/// Statistics of the event times of some records.
struct event_time_stats {
  std::uint64_t count = 0;
  event_time min = max_watermark;
  event_time max = min_watermark;
  long double sum_us = 0; ///< for the mean; exact enough for any realistic count

  void add(event_time t) noexcept {
    ++count;
    if (t < min)
      min = t;
    if (t > max)
      max = t;
    sum_us += static_cast<long double>(t.time_since_epoch().count());
  }
  /// `add` of every time in `ts`, summed exactly in 128-bit integers and converted once:
  /// per record, the long double additions chain through memory on the x87 unit (most of
  /// the source poll's 9.7% of a keyed window benchmark's CPU).
  void add_all(std::span<const event_time> ts) noexcept {
    if (ts.empty())
      return;
    __int128 sum = 0;
    auto lo = min, hi = max;
    for (const auto t : ts) {
      lo = t < lo ? t : lo;
      hi = t > hi ? t : hi;
      sum += t.time_since_epoch().count();
    }
    count += ts.size();
    min = lo;
    max = hi;
    sum_us += static_cast<long double>(sum);
  }
  void merge(const event_time_stats& o) noexcept {
    count += o.count;
    if (o.min < min)
      min = o.min;
    if (o.max > max)
      max = o.max;
    sum_us += o.sum_us;
  }
};

/// What one source instance read in an epoch.
struct source_epoch_report {
  int node = 0;
  std::string name;
  std::string description;
  std::uint64_t rows = 0;
  event_time_stats event_times;
  /// The delay of the source's bounded watermark strategy (micro-batch watermarks are
  /// `max event time - delay`, Spark's rule); unset without event time.
  std::optional<duration> watermark_delay;
  std::string start_offset; ///< JSON text; "null" before the first epoch
  std::string end_offset;   ///< JSON text
};

/// Spark's `stateOperators` entry for one instance of a stateful operator in an epoch.
struct state_epoch_report {
  int node = 0;
  std::string name;
  std::uint64_t rows_total = 0;   ///< state rows held at the end of the epoch
  std::uint64_t rows_updated = 0; ///< state rows written in the epoch
  std::uint64_t rows_removed = 0; ///< state rows evicted in the epoch
  std::uint64_t rows_dropped_by_watermark = 0; ///< late input rows (per window for windows)
  std::uint64_t memory_used_bytes = 0;         ///< an estimate
  std::uint64_t timers_pending = 0;            ///< event- and processing-time timers set
};

/// What one sink instance received in an epoch.
struct sink_epoch_report {
  int node = 0;
  std::string name;
  std::string description;
  std::uint64_t rows = 0;
};

/// One stored piece of a checkpoint (checkpoint/store.hpp).
struct checkpoint_piece {
  std::string name;
  std::uint64_t size = 0;
  std::uint64_t hash = 0; ///< xxh64 of the bytes
  /// The checkpoint whose write stored the bytes: an incremental checkpoint refers to
  /// unchanged pieces of earlier ones. -1: the checkpoint the piece is listed in.
  std::int64_t stored_in = -1;
  /// The node of a multi-node run whose store holds the piece (docs/cluster.md); 0 in a
  /// one-process run.
  int node = 0;
  friend bool operator==(const checkpoint_piece&, const checkpoint_piece&) = default;
};

/// Everything one task reports when epoch `epoch` passed through it.
struct epoch_report {
  int task = 0;
  std::int64_t epoch = 0;
  std::vector<source_epoch_report> sources;
  std::vector<state_epoch_report> state;
  std::vector<sink_epoch_report> sinks;
  /// The epoch's barrier was a checkpoint barrier: the task's snapshot pieces.
  bool checkpoint = false;
  std::vector<checkpoint_piece> pieces;
  /// Set when the task could not store its snapshot (a store error): it declines the
  /// checkpoint, which fails, while the epoch itself ends as usual (Flink's declined
  /// checkpoint). Names what went wrong.
  std::string checkpoint_problem;
  /// How long the task paused processing to take its snapshot.
  std::chrono::microseconds pause{0};
  /// From the first barrier of the epoch to the last (inputs blocked meanwhile); 0 for
  /// sources and single-input tasks.
  std::chrono::microseconds alignment{0};
};
using epoch_report_ptr = std::shared_ptr<const epoch_report>;

/// What an operator says about the epoch that just ended (see operator_base::end_epoch).
/// Stateful operators fill `state`; sinks fill `sink_rows`.
struct operator_epoch_stats {
  std::optional<state_epoch_report> state;
  std::optional<std::uint64_t> sink_rows;
};

} // namespace sluice
