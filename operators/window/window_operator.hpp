#pragma once
/// `window_operator`: keyed tumbling and sliding event-time windows (sessions:
/// session_operator.hpp; what both share, the semantics included: window_common.hpp).
///
/// State: per key group a flat hash map `(key, window) -> accumulator`, and timers (see
/// window_common.hpp). A window has exactly one timer, at its max timestamp, then at its
/// cleanup time when allowed lateness keeps it. Timers are never deleted.
#include "sluice/core/key_group.hpp"
#include "sluice/operators/keyed_state.hpp"
#include "sluice/operators/operator.hpp"
#include "sluice/operators/record_loop.hpp"
#include "sluice/operators/state/snapshot_codec.hpp"
#include "sluice/operators/window/assigners.hpp"
#include "sluice/operators/window/window_common.hpp"
#include "sluice/operators/window/window_functions.hpp"

#include <absl/container/flat_hash_map.h>

#include <cstdint>
#include <unordered_set>
#include <utility>
#include <vector>

namespace sluice {

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
    const event_time* times = detail::event_times(ts_fn_, records, times_);
    for_each_record(records, [&](const T& r) {
      const event_time ts = times[&r - records.data()];
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
      // that a rescale gave other key groups) must restore it too. Checkpoints on disk hold
      // this order (the watermark, then the epochs, which older ones lack); the session
      // operator's piece has the other, so each operator reads and writes its own.
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
    const event_time* times = detail::event_times(ts_fn_, records, times_);
    for_each_record(records, [&](const T& r) {
      const event_time ts = times[&r - records.data()];
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
  std::vector<event_time> times_; ///< the current batch's event times (kept: no allocation)
  table_type state_;
  detail::table_checkpoints<table_type> checkpoints_;
  detail::window_timer_queues<K> timers_;
  std::vector<std::pair<int, detail::window_slot<K>>> dirty_; ///< changed in this epoch
  std::unordered_set<detail::window_slot<K>, detail::window_slot_hash<K>> dropped_;
  epoch_counts epoch_;
  event_time late_watermark_ = min_watermark; ///< the watermark at the last epoch's end
  detail::complete_mode_epochs epochs_;
};

} // namespace sluice
