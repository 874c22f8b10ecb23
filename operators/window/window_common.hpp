#pragma once
/// What the event-time window operators share: `window_operator` (tumbling and sliding,
/// window_operator.hpp) and `session_window_operator` (merging windows, session_operator.hpp).
///
/// State layout (everything per key group, so a checkpoint can snapshot and a rescale can
/// move it key group by key group): each operator keeps its windows in `keyed_state_table`s
/// (see its file) and its timers in `window_timer_queues`: a binary heap of
/// `(time, key, window)` per key group. The earliest time over all heaps is cached, so a
/// watermark that fires nothing costs one comparison, and a watermark that fires F windows
/// costs O(F log n) plus one pass over the key groups.
///
/// The tables are `keyed_state_table`s: a checkpoint freezes them (no copy) and writes,
/// per key group, a base or a delta of the slots or keys noted as changed since the previous
/// one (`table_checkpoints`). Timers are not checkpointed; a restore derives them from the
/// windows.
///
/// Semantics (Flink's, see docs/windows.md): a window fires when the watermark reaches its
/// max timestamp (`end - 1µs`); its state is dropped then, or `allowed_lateness` later. A
/// record is late for a window when `max timestamp + allowed_lateness <= watermark`. A
/// record late for every window it belongs to is dropped (counted) or, when enabled, sent
/// to side-output port 1. A record that is late but within the allowed lateness re-fires
/// its window at once with `firing > 0`.
///
/// Under a Spark output mode (`operator_info::mode`, see docs/micro-batch.md) the rules are
/// Spark's: a (record, window) pair is late when `end <= watermark` (Spark's watermark, one
/// microsecond above the engine's; in micro-batches the previous epoch's watermark by
/// default, as Spark 3.4+) and dropped windows are counted once per epoch; `append` emits a
/// window once when the watermark passes its end and frees it; `update` emits the windows
/// changed in an epoch at its end and frees them silently when the watermark passes;
/// `complete` emits every window at every epoch's end and neither frees nor drops anything.
/// In micro-batches windows are freed at the epoch's end (after its data), in continuous
/// mode when the watermark arrives. Allowed lateness must be zero.
#include "sluice/core/codec/record_text.hpp"
#include "sluice/core/codec/time_format.hpp"
#include "sluice/core/key_group.hpp"
#include "sluice/operators/operator.hpp"
#include "sluice/operators/state/snapshot_codec.hpp"
#include "sluice/operators/window/assigners.hpp"

#include <algorithm>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <utility>
#include <vector>

namespace sluice {

/// Options of a window operator.
struct window_options {
  /// How long after a window fired records may still update it. Default: zero (a record
  /// for a window that has fired is late).
  duration allowed_lateness{0};
  /// Send records that are too late to output port 1 instead of dropping them. Default:
  /// off (they are dropped and counted in `task_metrics::late_records`).
  bool late_to_side_output = false;
};

namespace detail {

/// A pending event-time timer of one window of one key.
template <class K>
struct window_timer {
  event_time when;
  K key;
  time_window window;
};

/// Event-time timers per key group, each a binary min-heap on `when`.
template <class K>
class window_timer_queues {
public:
  explicit window_timer_queues(key_group_range range = {0, 0})
    : range_(range), heaps_(static_cast<std::size_t>(range.size())) {}

  void add(int key_group, window_timer<K> t) {
    auto& h = heap(key_group);
    next_ = std::min(next_, t.when);
    h.push_back(std::move(t));
    std::push_heap(h.begin(), h.end(), later);
  }

  /// The earliest pending timer (`max_watermark` when none: nothing is ever due).
  event_time next() const noexcept { return next_; }

  /// The number of pending timers, including skipped-when-due ones.
  std::size_t size() const noexcept {
    std::size_t n = 0;
    for (auto& h : heaps_)
      n += h.size();
    return n;
  }

  /// Pops every timer with `when <= wm` and calls `fn(key_group, timer)`: key group by key
  /// group, in time order within each. The order across key groups does not matter (all
  /// results are due at this watermark) and a global order would cost a merge per firing.
  /// `fn` may add timers to the same key group; those already due are popped in this pass.
  template <class F>
  void fire_until(event_time wm, F&& fn) {
    if (wm < next_)
      return;
    next_ = max_watermark;
    for (int g = range_.first; g < range_.last; ++g) {
      auto* h = &heap(g);
      while (!h->empty() && h->front().when <= wm) {
        std::pop_heap(h->begin(), h->end(), later);
        auto t = std::move(h->back());
        h->pop_back();
        fn(g, t);
        h = &heap(g);
      }
      if (!h->empty())
        next_ = std::min(next_, h->front().when);
    }
  }

private:
  // A function object, not a function: `std::push_heap` given a function pointer called it
  // out of line for every comparison (12% of the session benchmark's CPU).
  struct later_t {
    bool operator()(const window_timer<K>& a, const window_timer<K>& b) const noexcept {
      return a.when > b.when;
    }
  };
  static constexpr later_t later{};
  std::vector<window_timer<K>>& heap(int key_group) noexcept {
    return heaps_[static_cast<std::size_t>(key_group - range_.first)];
  }

  key_group_range range_;
  std::vector<std::vector<window_timer<K>>> heaps_;
  event_time next_ = max_watermark;
};

/// The key group of a key; computed once per record.
template <class K>
int window_key_group(const K& key, int max_key_groups) noexcept {
  return key_group_of(key_hash<K>{}(key), max_key_groups);
}

/// Sends updated results (port 0), then late records (the side output, port 1).
template <class R, class T>
result<void> emit_updates_and_late(output& out, std::vector<R> updates, std::vector<T> late) {
  if (!updates.empty())
    if (auto e = out.emit(0, std::make_shared<batch<R>>(std::move(updates))); !e)
      return e;
  if (!late.empty())
    return out.emit(1, std::make_shared<batch<T>>(std::move(late)));
  return {};
}

/// A record whose windows would overflow the time line (an event time near the int64
/// limits, such as epoch milliseconds taken for microseconds): a malformed record. The
/// window operators have no dead-letter output, so it fails the job, naming the record.
template <class T>
error malformed_event_time(const std::string& op, const std::string& windows, event_time ts,
                           const T& record) {
  return make_error(error_code::malformed_record,
                    "window '" + op + "': the event time " +
                      std::to_string(ts.time_since_epoch().count()) + "us (" +
                      codec::format_iso8601(ts) + ") is too close to an end of the time line "
                      "for " + windows + " windows, which would overflow (input event times "
                      "are read only within years 0000 to 9999: check the timestamp "
                      "function); record: " + record_text(record));
}

inline error unreadable_instance(const std::string& op, int instance, const error& e) {
  return make_error(error_code::io_error, "window '" + op + "', instance " +
                                            std::to_string(instance) +
                                            ": unreadable state: " + e.message);
}

/// Complete mode fires every window at every epoch's end. A firing count kept in each
/// window would change every window at every epoch, and every checkpoint would then write
/// every window. So under complete mode a window keeps the number of epochs that had ended
/// when it was created (in its `firings` field) and its firing is the number ended since:
/// only windows that records change are written.
class complete_mode_epochs {
public:
  /// What a window created now keeps.
  std::uint32_t born() const noexcept { return ended_; }
  /// The firing number of a window that keeps `born`, at this epoch's end.
  std::uint32_t firing(std::uint32_t born) const noexcept { return ended_ - born; }
  void end() noexcept { ++ended_; }

  void encode(state_encoder& enc) const { enc.put(ended_); }
  /// Reads the count that `encode` wrote, if the piece has one (earlier versions wrote
  /// none). Every instance ends the same epochs, so the instances' counts agree.
  result<void> decode(state_decoder& dec) {
    if (dec.done()) {
      legacy_ = true;
      return {};
    }
    std::uint32_t n = 0;
    if (auto ok = dec.get(n); !ok)
      return ok;
    ended_ = std::max(ended_, n);
    found_ = true;
    return {};
  }
  /// After every instance's piece was decoded: true when the windows restored keep firing
  /// counts (an earlier version wrote them), which `from_count` turns into what they keep
  /// now. A fixed count, the same on every instance, stands for the epochs ended before.
  bool restored_counts() noexcept {
    if (found_ && !legacy_)
      return false;
    ended_ = legacy_start;
    return true;
  }
  std::uint32_t from_count(std::uint32_t firings) const noexcept { return ended_ - firings; }

private:
  static constexpr std::uint32_t legacy_start = 1u << 31;
  std::uint32_t ended_ = 0;
  bool found_ = false, legacy_ = false;
};

} // namespace detail

} // namespace sluice
