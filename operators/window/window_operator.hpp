#pragma once
/// The event-time window operators: `window_operator` for tumbling and sliding windows,
/// `session_window_operator` for merging (session) windows.
///
/// State layout (everything per key group, so a checkpoint can snapshot and a rescale can
/// move it key group by key group):
/// - tumbling/sliding: a hash map `(key, window) -> accumulator`;
/// - sessions: a hash map `key -> the key's open sessions` (a short vector);
/// - timers: a binary heap of `(time, key, window)` per key group. The earliest time over
///   all heaps is cached, so a watermark that fires nothing costs one comparison, and a
///   watermark that fires F windows costs O(F log n) plus one pass over the key groups.
///
/// The maps are `keyed_state_table`s: a checkpoint freezes them (no copy) and writes,
/// per key group, a base or a delta of the slots or keys noted as changed since the previous
/// one (`table_checkpoints`). Timers are not checkpointed; a restore derives them from the
/// windows.
///
/// Timers are never deleted. A window of a tumbling or sliding window has exactly one timer.
/// A session has one timer that answers for it (`timer_at`); when the session grows, that
/// timer re-arms itself at the new end when it comes due, and timers of sessions merged away
/// are skipped, so in-order input pushes about one timer per session, not one per record.
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
#include "sluice/core/codec/time_format.hpp"
#include "sluice/core/key_group.hpp"
#include "sluice/operators/keyed_state.hpp"
#include "sluice/operators/operator.hpp"
#include "sluice/operators/record_loop.hpp"
#include "sluice/operators/state/snapshot_codec.hpp"
#include "sluice/operators/window/assigners.hpp"
#include "sluice/operators/window/window_functions.hpp"

#include <absl/container/flat_hash_map.h>

#include <algorithm>
#include <cstdint>
#include <functional>
#include <string>
#include <unordered_map>
#include <unordered_set>
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

/// The key of one window's state: the record key and the window bounds.
template <class K>
struct window_slot {
  K key;
  time_window window;
  friend bool operator==(const window_slot&, const window_slot&) = default;
  template <class Inspector>
  friend bool inspect(Inspector& f, window_slot& x) {
    return f.object("window_slot").fields(f.field("key", x.key), f.field("start", x.window.start),
                                          f.field("end", x.window.end));
  }
};

template <class K>
struct window_slot_hash {
  std::size_t operator()(const window_slot<K>& s) const noexcept {
    // Only the start is hashed: for tumbling and sliding windows the end follows from it.
    const auto start = static_cast<std::uint64_t>(s.window.start.time_since_epoch().count());
    return static_cast<std::size_t>(
      mix64(static_cast<std::uint64_t>(key_hasher<K>{}(s.key)) ^ (start * 0x9E3779B97F4A7C15ULL)));
  }
};

} // namespace detail

/// The change log and the delta encoder of a window table hash slots as the table does.
template <class K>
struct key_hasher<detail::window_slot<K>> : detail::window_slot_hash<K> {};

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

/// Keyed tumbling or sliding event-time windows.
///
/// `K`: the key type (`detail::window_all_key` for `window_all`); `KeyFn(const T&) -> K`;
/// `TsFn(const T&) -> event_time`; `Assigner`: `windows::tumbling` or `windows::sliding`;
/// `Fn`: a window function (see window_functions.hpp). Output port 0 carries
/// `Fn::output_type`; port 1 the late records when `late_to_side_output`.
template <class K, class T, class KeyFn, class TsFn, class Assigner, class Fn>
class window_operator final : public operator_base {
public:
  using acc_type = typename Fn::acc_type;
  using output_type = typename Fn::output_type;
  static_assert(!is_merging_assigner<Assigner>, "use session_window_operator for sessions");

  window_operator(KeyFn key_fn, TsFn ts_fn, Assigner assigner, Fn fn, window_options opts)
    : key_fn_(std::move(key_fn)), ts_fn_(std::move(ts_fn)), assigner_(std::move(assigner)),
      fn_(std::move(fn)), opts_(opts) {}

  result<void> open(const operator_info& info) override {
    info_ = info;
    state_ = table_type{info.key_groups};
    timers_ = detail::window_timer_queues<K>{info.key_groups};
    if (info.mode && opts_.allowed_lateness != duration::zero())
      return make_error(error_code::invalid_option,
                        "window '" + info.name + "': allowed lateness has no meaning under an "
                        "output mode (Spark's watermark alone decides what is late)");
    return {};
  }

  result<void> process(int input, batch_ptr in, output& out) override {
    if (info_.mode)
      return process_with_mode(input, std::move(in), out);
    const auto& records = records_of<T>(*in);
    const auto wm = current_watermark();
    std::vector<output_type> updates; // re-firings caused by allowed-late records
    std::vector<T> late;
    std::uint64_t late_count = 0;
    // The per-record loop stays `void`: a `result` per record cost W4 a quarter of its speed
    // (BENCHMARKS.md). A record off the time line is remembered and fails the batch below;
    // the job fails with it, so what the rest of the batch did is never committed.
    const T* off_the_time_line = nullptr;
    for_each_record(records, [&](const T& r) {
      const event_time ts = ts_fn_(r);
      if (!assigner_.fits(ts)) [[unlikely]] {
        if (!off_the_time_line)
          off_the_time_line = &r;
        return;
      }
      const K key = key_fn_(r);
      const int g = detail::window_key_group(key, info_.max_key_groups);
      auto& tab = state_.group(g);
      bool assigned = false, kept = false;
      assigner_.assign(ts, [&](time_window w) {
        assigned = true;
        const auto max_ts = w.max_timestamp();
        if (cleanup_time(w) <= wm)
          return; // late for this window (Flink's isWindowLate)
        kept = true;
        auto it = tab.find(detail::window_slot<K>{key, w});
        if (it == tab.end()) {
          it = tab.emplace(detail::window_slot<K>{key, w}, slot_state{fn_.create(), 0}).first;
          // A window first seen after it was due fires below; only its cleanup is pending.
          timers_.add(g, {max_ts <= wm ? cleanup_time(w) : max_ts, key, w});
        }
        fn_.add(it->second.acc, r);
        if (max_ts <= wm)
          fire(key, w, it->second, wm, updates);
        state_.note_change(g, it->first);
      });
      if (assigned && !kept) {
        ++late_count;
        if (opts_.late_to_side_output)
          late.push_back(r);
      }
    });
    if (late_count)
      count_late(late_count, opts_.late_to_side_output);
    if (off_the_time_line)
      return detail::malformed_event_time(info_.name, assigner_.describe(),
                                          ts_fn_(*off_the_time_line), *off_the_time_line);
    return detail::emit_updates_and_late(out, std::move(updates), std::move(late));
  }

  result<void> on_watermark(event_time wm, output& out) override {
    std::vector<output_type> fired;
    if (info_.mode) {
      // Micro-batches free windows at the epoch's end; complete mode never does.
      if (info_.micro_batch || info_.mode == output_mode::complete)
        return {};
      evict(wm, fired);
      if (fired.empty())
        return {};
      return out.emit(0, std::make_shared<batch<output_type>>(std::move(fired)));
    }
    timers_.fire_until(wm, [&](int g, detail::window_timer<K>& t) {
      auto& tab = state_.group(g);
      auto it = tab.find(detail::window_slot<K>{t.key, t.window});
      if (it == tab.end())
        return;
      if (t.when == t.window.max_timestamp()) {
        fire(t.key, t.window, it->second, wm, fired);
        state_.note_change(g, it->first);
        if (const auto cleanup = cleanup_time(t.window); cleanup != t.when) {
          // Allowed lateness: keep the state so late records can update the result.
          timers_.add(g, {cleanup, std::move(t.key), t.window});
          return;
        }
      }
      tab.erase(it);
      state_.note_change(g, detail::window_slot<K>{t.key, t.window});
      ++epoch_.removed;
    });
    if (fired.empty())
      return {};
    return out.emit(0, std::make_shared<batch<output_type>>(std::move(fired)));
  }

  /// Windows held (for tests and metrics).
  std::size_t window_count() const noexcept { return state_.size(); }
  std::size_t timer_count() const noexcept { return timers_.size(); }

  result<void> end_epoch(std::int64_t, output& out, operator_epoch_stats& stats) override {
    std::vector<output_type> rows;
    const auto wm = current_watermark();
    if (info_.mode == output_mode::complete) {
      // Firing changes no window (see complete_mode_epochs): read them, frozen or not.
      for (int g = state_.range().first; g < state_.range().last; ++g)
        for (auto& [slot, st] : state_.view(g))
          fn_.fire(slot.key, slot.window, st.acc, epochs_.firing(st.firings), wm, rows);
      epochs_.end();
      for (auto& [g, slot] : dirty_) {
        auto& tab = state_.group(g);
        if (auto it = tab.find(slot); it != tab.end())
          it->second.dirty = false; // not checkpointed: no change to note
      }
    } else {
      for (auto& [g, slot] : dirty_) {
        auto& tab = state_.group(g);
        auto it = tab.find(slot);
        if (it == tab.end() || !it->second.dirty)
          continue; // emitted and freed when the watermark passed
        if (info_.mode == output_mode::update)
          fire(slot.key, slot.window, it->second, wm, rows);
        it->second.dirty = false;
        state_.note_change(g, slot);
      }
      if (info_.mode && info_.micro_batch)
        evict(wm, rows); // Spark: after the epoch's data, at the epoch's watermark
    }
    dirty_.clear();
    late_watermark_ = wm; // the next epoch's rows are late by this one (Spark 3.4+)
    const auto total = window_count();
    using entry = typename table_type::map_type::value_type;
    stats.state = state_epoch_report{0, {}, total, epoch_.updated, epoch_.removed,
                                     dropped_.size() + epoch_.dropped,
                                     total * (sizeof(entry) + 32),
                                     total}; // one end-of-window timer per window
    epoch_ = {};
    dropped_.clear();
    if (rows.empty())
      return {};
    return out.emit(0, std::make_shared<batch<output_type>>(std::move(rows)));
  }

  // -- checkpoints: per key group, the windows with their accumulators and firing counts,
  // as bases and deltas (table_checkpoints); per instance, the late-row watermark --------

  static constexpr bool snapshottable =
    detail::snapshottable_v<K> && detail::snapshottable_v<acc_type>;
  bool can_checkpoint() const noexcept override { return snapshottable; }

  result<void> snapshot(std::int64_t, snapshot_writer& w) override {
    if constexpr (snapshottable) {
      if (auto ok = checkpoints_.snapshot(state_, w); !ok)
        return ok;
      // Per instance, not per key group: an instance whose key groups are all empty (or
      // that a rescale gave other key groups) must restore it too.
      detail::state_encoder enc;
      enc.put(late_watermark_);
      epochs_.encode(enc);
      return w.put(instance_piece(info_.instance), enc.take());
    } else {
      return detail::not_snapshottable(info_.name);
    }
  }

  /// Restores the windows of this instance's key groups (any parallelism wrote them) and
  /// gives each its one timer: its end if it never fired, else its cleanup (none in
  /// complete mode, which never frees state).
  result<void> restore(snapshot_reader& r) override {
    if constexpr (snapshottable) {
      auto read = for_each_instance_piece(r, [&](int i, std::string_view bytes) -> result<void> {
        detail::state_decoder dec{bytes};
        event_time late{};
        auto ok = dec.get(late);
        if (ok)
          ok = epochs_.decode(dec);
        if (!ok)
          return detail::unreadable_instance(info_.name, i, ok.error());
        late_watermark_ = std::max(late_watermark_, late);
        return {};
      });
      if (!read)
        return read;
      if (auto ok = checkpoints_.restore(state_, r, info_.name); !ok)
        return ok;
      if (info_.mode == output_mode::complete) {
        if (epochs_.restored_counts())
          for (int g = state_.range().first; g < state_.range().last; ++g)
            for (auto& [slot, st] : state_.group(g))
              st.firings = epochs_.from_count(st.firings);
        return {};
      }
      for (int g = state_.range().first; g < state_.range().last; ++g)
        for (auto& [slot, st] : state_.view(g))
          timers_.add(g, {st.firings == 0 ? slot.window.max_timestamp() : cleanup_time(slot.window),
                          slot.key, slot.window});
      return {};
    } else {
      return detail::not_snapshottable(info_.name);
    }
  }

private:
  struct slot_state {
    acc_type acc;
    /// The firings so far; under complete mode the epochs ended before the window was
    /// created (detail::complete_mode_epochs).
    std::uint32_t firings = 0;
    bool dirty = false; ///< under an output mode: changed in the current epoch
    /// A restore starts a new epoch: `dirty` is not checkpointed.
    template <class Inspector>
    friend bool inspect(Inspector& f, slot_state& x) {
      return f.object("window_state").fields(f.field("acc", x.acc), f.field("firings", x.firings));
    }
  };
  /// Flat maps: no entry is used across an insertion into its group (each record finds or
  /// creates a window, then is done with it), so moving entries on a rehash is safe.
  using table_type =
    keyed_state_table<detail::window_slot<K>, slot_state,
                      absl::flat_hash_map<detail::window_slot<K>, slot_state,
                                          detail::window_slot_hash<K>>>;

  /// Frees the windows the watermark `wm` passed; append mode emits them (their final
  /// row), update mode only a change not yet emitted (the watermark can pass mid-epoch
  /// in continuous mode).
  void evict(event_time wm, std::vector<output_type>& rows) {
    timers_.fire_until(wm, [&](int g, detail::window_timer<K>& t) {
      auto& tab = state_.group(g);
      auto it = tab.find(detail::window_slot<K>{t.key, t.window});
      if (it == tab.end())
        return;
      if (info_.mode == output_mode::append || it->second.dirty)
        fire(t.key, t.window, it->second, wm, rows);
      tab.erase(it);
      state_.note_change(g, detail::window_slot<K>{t.key, t.window});
      ++epoch_.removed;
    });
  }

  /// Spark's rules (see the file comment); windows fire in `end_epoch` or `on_watermark`.
  result<void> process_with_mode(int, batch_ptr in, output& out) {
    const auto& records = records_of<T>(*in);
    const bool complete = info_.mode == output_mode::complete;
    const bool timers = !complete;
    // Complete mode keeps every row (Spark drops nothing there).
    const auto wm = complete ? min_watermark
                    : info_.micro_batch && info_.late_rows == late_row_rule::previous_watermark
                      ? late_watermark_
                      : current_watermark();
    std::vector<T> late;
    std::uint64_t late_count = 0;
    // The per-record loop stays `void`: a `result` per record cost W4 a quarter of its speed
    // (BENCHMARKS.md). A record off the time line is remembered and fails the batch below;
    // the job fails with it, so what the rest of the batch did is never committed.
    const T* off_the_time_line = nullptr;
    for_each_record(records, [&](const T& r) {
      const event_time ts = ts_fn_(r);
      if (!assigner_.fits(ts)) [[unlikely]] {
        if (!off_the_time_line)
          off_the_time_line = &r;
        return;
      }
      const K key = key_fn_(r);
      const int g = detail::window_key_group(key, info_.max_key_groups);
      auto& tab = state_.group(g);
      bool kept = false, assigned = false;
      assigner_.assign(ts, [&](time_window w) {
        assigned = true;
        if (w.max_timestamp() <= wm) {
          dropped_.insert(detail::window_slot<K>{key, w}); // Spark counts dropped groups
          return;
        }
        kept = true;
        auto it = tab.find(detail::window_slot<K>{key, w});
        if (it == tab.end()) {
          it = tab.emplace(detail::window_slot<K>{key, w},
                           slot_state{fn_.create(), complete ? epochs_.born() : 0})
                 .first;
          if (timers)
            timers_.add(g, {w.max_timestamp(), key, w});
        }
        fn_.add(it->second.acc, r);
        if (!it->second.dirty) {
          it->second.dirty = true;
          ++epoch_.updated;
          dirty_.push_back({g, it->first});
        }
        state_.note_change(g, it->first);
      });
      if (assigned && !kept) {
        ++late_count;
        if (opts_.late_to_side_output)
          late.push_back(r);
      }
    });
    if (late_count)
      count_late(late_count, opts_.late_to_side_output);
    if (off_the_time_line)
      return detail::malformed_event_time(info_.name, assigner_.describe(),
                                          ts_fn_(*off_the_time_line), *off_the_time_line);
    return detail::emit_updates_and_late(out, std::vector<output_type>{}, std::move(late));
  }

  struct epoch_counts {
    std::uint64_t updated = 0, removed = 0, dropped = 0;
  };
  event_time cleanup_time(const time_window& w) const noexcept {
    return detail::saturating_add(w.max_timestamp(), opts_.allowed_lateness);
  }
  void fire(const K& key, const time_window& w, slot_state& s, event_time wm,
            std::vector<output_type>& out) {
    fn_.fire(key, w, s.acc, s.firings, wm, out);
    ++s.firings;
  }

  KeyFn key_fn_;
  TsFn ts_fn_;
  Assigner assigner_;
  Fn fn_;
  window_options opts_;
  table_type state_;
  detail::table_checkpoints<table_type> checkpoints_;
  detail::window_timer_queues<K> timers_;
  std::vector<std::pair<int, detail::window_slot<K>>> dirty_; ///< changed in this epoch
  std::unordered_set<detail::window_slot<K>, detail::window_slot_hash<K>> dropped_;
  epoch_counts epoch_;
  event_time late_watermark_ = min_watermark; ///< the watermark at the last epoch's end
  detail::complete_mode_epochs epochs_;
};

/// Keyed session windows (static or dynamic gap). A record at `ts` opens `[ts, ts + gap)`;
/// every open session of the key that overlaps or touches it merges with it (one record
/// can bridge two sessions), merging accumulators with `Fn::merge`.
template <class K, class T, class KeyFn, class TsFn, class Assigner, class Fn>
class session_window_operator final : public operator_base {
public:
  using acc_type = typename Fn::acc_type;
  using output_type = typename Fn::output_type;
  static_assert(is_merging_assigner<Assigner>, "use window_operator for tumbling and sliding");

  session_window_operator(KeyFn key_fn, TsFn ts_fn, Assigner assigner, Fn fn, window_options opts)
    : key_fn_(std::move(key_fn)), ts_fn_(std::move(ts_fn)), assigner_(std::move(assigner)),
      fn_(std::move(fn)), opts_(opts) {}

  result<void> open(const operator_info& info) override {
    info_ = info;
    state_ = table_type{info.key_groups};
    timers_ = detail::window_timer_queues<K>{info.key_groups};
    if (info.mode == output_mode::update)
      return make_error(error_code::invalid_option,
                        "window '" + info.name + "': session windows do not support the update "
                        "output mode (Spark's rule)");
    if (info.mode && opts_.allowed_lateness != duration::zero())
      return make_error(error_code::invalid_option,
                        "window '" + info.name + "': allowed lateness has no meaning under an "
                        "output mode (Spark's watermark alone decides what is late)");
    return {};
  }

  result<void> process(int, batch_ptr in, output& out) override {
    const auto& records = records_of<T>(*in);
    const auto wm = current_watermark();
    std::vector<output_type> updates;
    std::vector<T> late;
    std::uint64_t late_count = 0;
    std::vector<std::size_t> touching;
    const bool complete = info_.mode == output_mode::complete;
    const bool spark = info_.mode.has_value();
    const auto late_wm =
      info_.micro_batch && info_.late_rows == late_row_rule::previous_watermark ? late_watermark_
                                                                                 : wm;
    auto looped = for_each_record(records, [&](const T& r) -> result<void> {
      const event_time ts = ts_fn_(r);
      const duration gap = assigner_.gap_of(r);
      if (gap <= duration::zero())
        return make_error(error_code::invalid_option,
                          "window '" + info_.name + "': the session gap function returned " +
                            detail::micros(gap) + "; gaps must be positive");
      if (!assigner_.fits(ts, gap))
        return detail::malformed_event_time(info_.name, "session(gap " + detail::micros(gap) + ")",
                                            ts, r);
      const time_window fresh{ts, ts + gap};
      K key = key_fn_(r);
      const int g = detail::window_key_group(key, info_.max_key_groups);
      auto& tab = state_.group(g);
      auto it = tab.find(key);
      touching.clear();
      std::size_t insert_at = 0;
      if (it != tab.end())
        insert_at = find_touching(it->second, fresh, touching);
      // Flink: late only when it would open a new session (any live session it touches
      // ends after the watermark minus the lateness, and so does the merge). Spark: late
      // when the row's own session ends by the watermark, whatever it touches, in every
      // mode (SessionWindowStateStoreRestoreExec filters before merging; unlike other
      // aggregations, complete mode drops these rows too, though it frees nothing).
      if (spark ? fresh.max_timestamp() <= late_wm
                : touching.empty() && cleanup_time(fresh) <= wm) {
        ++late_count;
        ++epoch_.dropped;
        if (opts_.late_to_side_output)
          late.push_back(r);
        return {};
      }
      if (spark)
        note_touch(g, key, it == tab.end() ? nullptr : &it->second);
      if (it == tab.end())
        it = tab.try_emplace(std::move(key)).first;
      auto& sessions = it->second;
      std::size_t target;
      if (touching.empty()) {
        const std::uint32_t firings = complete ? epochs_.born() : 0;
        // In start order (see `find_touching`); in-order input appends.
        sessions.insert(sessions.begin() + static_cast<std::ptrdiff_t>(insert_at),
                        session_state{fresh, fn_.create(), firings, min_watermark, max_watermark});
        target = insert_at;
      } else {
        target = touching.front();
        auto& s = sessions[target];
        s.window = span(s.window, fresh);
        // Later touching sessions fold into the first; erase from the back so the
        // indices still to visit stay valid. The merged session answers to the earliest
        // of their timers; the others' timers find it with another time and are skipped.
        for (auto i = touching.size(); i-- > 1;) {
          auto& other = sessions[touching[i]];
          s.window = span(s.window, other.window);
          // The merged session has fired as often as the one that fired most.
          s.firings = complete ? std::min(s.firings, other.firings)
                               : std::max(s.firings, other.firings);
          s.fired_max = std::max(s.fired_max, other.fired_max);
          s.timer_at = std::min(s.timer_at, other.timer_at);
          fn_.merge(s.acc, std::move(other.acc));
          sessions.erase(sessions.begin() + static_cast<std::ptrdiff_t>(touching[i]));
        }
      }
      auto& s = sessions[target];
      fn_.add(s.acc, r);
      state_.note_change(g, it->first);
      if (!spark)
        ++epoch_.updated; // per record: sessions merge, so "rows" are not stable here
      if (complete)
        return {}; // every session is emitted at the epoch's end and none is freed
      if (s.window.max_timestamp() <= wm && !info_.micro_batch)
        fire(it->first, s, wm, updates);
      // Usually the pending timer is earlier than the new due time (a session that grew):
      // it re-arms itself when it comes due, so growing a session costs no heap push.
      if (const auto due = due_time(s); due < s.timer_at) {
        s.timer_at = due;
        timers_.add(g, {due, it->first, s.window});
      }
      return {};
    });
    if (!looped)
      return looped;
    if (late_count)
      count_late(late_count, opts_.late_to_side_output);
    return detail::emit_updates_and_late(out, std::move(updates), std::move(late));
  }

  result<void> on_watermark(event_time wm, output& out) override {
    // Complete mode frees nothing; micro-batches free sessions at the epoch's end, after
    // its rows (Spark's order: a row of the batch may still extend a session).
    if (info_.mode == output_mode::complete || (info_.mode && info_.micro_batch))
      return {};
    std::vector<output_type> fired;
    evict(wm, fired);
    if (fired.empty())
      return {};
    return out.emit(0, std::make_shared<batch<output_type>>(std::move(fired)));
  }

  /// Open sessions over all keys (for tests and metrics).
  std::size_t window_count() const noexcept {
    std::size_t n = 0;
    for (int g = state_.range().first; g < state_.range().last; ++g)
      for (auto& [k, v] : state_.group(g))
        n += v.size();
    return n;
  }
  std::size_t timer_count() const noexcept { return timers_.size(); }

  // -- checkpoints: per key group, each key's sessions (window, accumulator, firings), as
  // bases and deltas (table_checkpoints); per instance, the complete-mode epochs and the
  // late-row watermark -------------------------------------------------------------------

  static constexpr bool snapshottable =
    detail::snapshottable_v<K> && detail::snapshottable_v<acc_type>;
  bool can_checkpoint() const noexcept override { return snapshottable; }

  result<void> snapshot(std::int64_t, snapshot_writer& w) override {
    if constexpr (snapshottable) {
      if (auto ok = checkpoints_.snapshot(state_, w); !ok)
        return ok;
      detail::state_encoder enc;
      epochs_.encode(enc);
      enc.put(late_watermark_);
      return w.put(instance_piece(info_.instance), enc.take());
    } else {
      return detail::not_snapshottable(info_.name);
    }
  }

  /// Restores the sessions of this instance's key groups (any parallelism wrote them) and
  /// gives each one timer, due when it next needs attention (none in complete mode, which
  /// never frees state).
  result<void> restore(snapshot_reader& r) override {
    if constexpr (snapshottable) {
      if (auto ok = checkpoints_.restore(state_, r, info_.name); !ok)
        return ok;
      auto read = for_each_instance_piece(r, [&](int i, std::string_view bytes) -> result<void> {
        detail::state_decoder dec{bytes};
        auto ok = epochs_.decode(dec);
        event_time late = min_watermark;
        if (ok && !dec.done()) // checkpoints before the late-row watermark end here
          ok = dec.get(late);
        if (!ok)
          return detail::unreadable_instance(info_.name, i, ok.error());
        late_watermark_ = std::max(late_watermark_, late);
        return ok;
      });
      if (!read)
        return read;
      // Checkpoints before sessions were kept in start order list them in creation order.
      for (int g = state_.range().first; g < state_.range().last; ++g)
        for (auto& [key, sessions] : state_.group(g))
          if (!std::is_sorted(sessions.begin(), sessions.end(), starts_before))
            std::sort(sessions.begin(), sessions.end(), starts_before);
      if (info_.mode == output_mode::complete) {
        if (epochs_.restored_counts())
          for (int g = state_.range().first; g < state_.range().last; ++g)
            for (auto& [key, sessions] : state_.group(g))
              for (auto& s : sessions)
                s.firings = epochs_.from_count(s.firings);
        return {};
      }
      for (int g = state_.range().first; g < state_.range().last; ++g)
        for (auto& [key, sessions] : state_.group(g))
          for (auto& s : sessions) {
            s.timer_at = due_time(s);
            timers_.add(g, {s.timer_at, key, s.window});
          }
      return {};
    } else {
      return detail::not_snapshottable(info_.name);
    }
  }

  result<void> end_epoch(std::int64_t, output& out, operator_epoch_stats& stats) override {
    std::vector<output_type> rows;
    const auto wm = current_watermark();
    count_touched_sessions();
    if (info_.mode == output_mode::complete) {
      // Firing changes no session (see complete_mode_epochs): read them, frozen or not.
      for (int g = state_.range().first; g < state_.range().last; ++g)
        for (auto& [key, sessions] : state_.view(g))
          for (auto& s : sessions)
            fn_.fire(key, s.window, s.acc, epochs_.firing(s.firings), wm, rows);
      epochs_.end();
    } else if (info_.mode && info_.micro_batch) {
      evict(wm, rows); // Spark: after the epoch's rows, at the epoch's watermark
    }
    late_watermark_ = wm; // the next epoch's rows are late by this one (Spark 3.4+)
    const auto total = window_count();
    stats.state = state_epoch_report{0, {}, total, epoch_.updated, epoch_.removed, epoch_.dropped,
                                     total * (sizeof(session_state) + sizeof(K) + 48),
                                     total}; // one end-of-window timer per window
    epoch_ = {};
    if (rows.empty())
      return {};
    return out.emit(0, std::make_shared<batch<output_type>>(std::move(rows)));
  }

private:
  /// Under Spark's semantics: the first time in an epoch that a row reaches `key`, the
  /// starts of its sessions as they were (none for a new key).
  template <class Sessions> // a key's sessions; declared further down
  void note_touch(int g, const K& key, const Sessions* sessions) {
    auto [at, fresh] = touched_.try_emplace(key);
    if (!fresh)
      return;
    at->second.group = g;
    if (sessions)
      for (auto& s : *sessions)
        at->second.starts.push_back(s.window.start);
  }

  /// Spark's state counts for sessions (StreamingSessionWindowStateManager.updateSessions):
  /// every key with rows in the epoch writes all its sessions (`numRowsUpdated`) and removes
  /// those whose start is gone, merged into another (`numRowsRemoved`); sessions freed by
  /// the watermark are counted as they go.
  void count_touched_sessions() {
    for (auto& [key, before] : touched_) {
      auto& tab = state_.group(before.group);
      auto it = tab.find(key);
      const std::size_t held = it == tab.end() ? 0 : it->second.size();
      epoch_.updated += held;
      for (auto start : before.starts)
        if (it == tab.end() ||
            std::none_of(it->second.begin(), it->second.end(),
                         [&](const session_state& s) { return s.window.start == start; }))
          ++epoch_.removed;
    }
    touched_.clear();
  }

  /// Fires (append: emits) and frees the sessions whose end the watermark passed.
  void evict(event_time wm, std::vector<output_type>& fired) {
    timers_.fire_until(wm, [&](int g, detail::window_timer<K>& t) {
      auto& tab = state_.group(g);
      auto it = tab.find(t.key);
      if (it == tab.end())
        return;
      auto& sessions = it->second;
      // Sessions only grow, so the session this timer was set for is the one containing
      // the window it was set with (sessions of a key never touch each other).
      auto s = std::find_if(sessions.begin(), sessions.end(), [&](const session_state& x) {
        return x.window.start <= t.window.start && t.window.end <= x.window.end;
      });
      if (s == sessions.end() || s->timer_at != t.when)
        return; // another timer answers for this session now
      if (const auto due = due_time(*s); due > t.when) {
        s->timer_at = due; // the session grew since: wait for its new end (not state to note)
        timers_.add(g, {due, t.key, s->window});
        return;
      }
      if (s->fired_max < s->window.max_timestamp()) {
        fire(it->first, *s, wm, fired);
        state_.note_change(g, it->first);
        if (const auto cleanup = due_time(*s); cleanup > t.when) {
          s->timer_at = cleanup; // allowed lateness: keep the state for updates
          timers_.add(g, {cleanup, t.key, s->window});
          return;
        }
      }
      sessions.erase(s);
      ++epoch_.removed;
      if (sessions.empty())
        tab.erase(it);
      state_.note_change(g, t.key);
    });
  }

  struct epoch_counts {
    std::uint64_t updated = 0, removed = 0, dropped = 0;
  };

  struct session_state {
    time_window window;
    acc_type acc;
    /// The firings so far; under complete mode the epochs ended before the session was
    /// created (detail::complete_mode_epochs).
    std::uint32_t firings = 0;
    /// The max timestamp of the window when it last fired (`min_watermark`: never).
    event_time fired_max = min_watermark;
    /// When the one timer that answers for this session is due. Not checkpointed: a
    /// restore derives it (`due_time`).
    event_time timer_at = max_watermark;
    template <class Inspector>
    friend bool inspect(Inspector& f, session_state& x) {
      return f.object("session_state")
        .fields(f.field("start", x.window.start), f.field("end", x.window.end),
                f.field("acc", x.acc), f.field("firings", x.firings),
                f.field("fired_max", x.fired_max));
    }
  };
  /// A key's open sessions, in start order: they never overlap or touch one another (a
  /// record that bridges two merges them), so their ends are in order too.
  using session_list = std::vector<session_state>;
  /// Flat maps: no entry is used across an insertion into its group.
  using table_type = flat_state_table<K, session_list>;

  static bool starts_before(const session_state& a, const session_state& b) noexcept {
    return a.window.start < b.window.start;
  }

  /// The indices of the sessions in `sessions` that `fresh` touches, ascending, and where
  /// `fresh` goes in start order when it touches none. In start order the ones it touches
  /// are adjacent: from the first that does not end before `fresh` starts (a binary search)
  /// to the last that starts by its end. So a record costs O(log n) whatever number of
  /// older sessions still wait for the watermark: at parallelism 2 a source instance that
  /// runs ahead of its sibling holds the watermark back and leaves dozens per key, and
  /// scanning them all was half of the session benchmark's time.
  static std::size_t find_touching(const session_list& sessions, const time_window& fresh,
                                   std::vector<std::size_t>& touching) {
    const auto first = std::partition_point(
      sessions.begin(), sessions.end(),
      [&](const session_state& s) { return s.window.end < fresh.start; });
    const auto at = static_cast<std::size_t>(first - sessions.begin());
    for (auto i = at; i < sessions.size() && sessions[i].window.start <= fresh.end; ++i)
      touching.push_back(i);
    return at;
  }

  /// When the session needs attention: its end while it has grown past its last firing,
  /// else the end of its allowed lateness.
  event_time due_time(const session_state& s) const noexcept {
    const auto max_ts = s.window.max_timestamp();
    return s.fired_max < max_ts ? max_ts : cleanup_time(s.window);
  }

  static time_window span(const time_window& a, const time_window& b) noexcept {
    return {std::min(a.start, b.start), std::max(a.end, b.end)};
  }
  event_time cleanup_time(const time_window& w) const noexcept {
    return detail::saturating_add(w.max_timestamp(), opts_.allowed_lateness);
  }
  void fire(const K& key, session_state& s, event_time wm, std::vector<output_type>& out) {
    fn_.fire(key, s.window, s.acc, s.firings, wm, out);
    ++s.firings;
    s.fired_max = s.window.max_timestamp();
  }

  KeyFn key_fn_;
  TsFn ts_fn_;
  Assigner assigner_;
  Fn fn_;
  window_options opts_;
  table_type state_;
  detail::table_checkpoints<table_type> checkpoints_;
  detail::window_timer_queues<K> timers_;
  epoch_counts epoch_;
  detail::complete_mode_epochs epochs_;
  event_time late_watermark_ = min_watermark; ///< the watermark at the last epoch's end
  struct touched_key {
    int group = 0;
    std::vector<event_time> starts; ///< its sessions' starts before the epoch's first row
  };
  /// Under Spark's semantics: the keys rows reached in this epoch (`note_touch`).
  std::unordered_map<K, touched_key, key_hash<K>> touched_;
};

} // namespace sluice
