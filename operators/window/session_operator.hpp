#pragma once
/// `session_window_operator`: keyed session (merging) windows, static or dynamic gap
/// (tumbling and sliding: window_operator.hpp; what both share, the semantics included:
/// window_common.hpp).
///
/// State: per key group a flat hash map `key -> the key's open sessions` (a short vector in
/// start order), and timers (see window_common.hpp). A session has one timer that answers
/// for it (`timer_at`); when the session grows, that timer re-arms itself at the new end
/// when it comes due, and timers of sessions merged away are skipped, so in-order input
/// pushes about one timer per session, not one per record. Timers are never deleted.
#include "sluice/core/key_group.hpp"
#include "sluice/operators/keyed_state.hpp"
#include "sluice/operators/operator.hpp"
#include "sluice/operators/record_loop.hpp"
#include "sluice/operators/state/snapshot_codec.hpp"
#include "sluice/operators/window/assigners.hpp"
#include "sluice/operators/window/window_common.hpp"
#include "sluice/operators/window/window_functions.hpp"

#include <algorithm>
#include <cstdint>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

namespace sluice {

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
    const bool complete = info_.mode == output_mode::complete;
    const bool spark = info_.mode.has_value();
    const auto late_wm =
      info_.micro_batch && info_.late_rows == late_row_rule::previous_watermark ? late_watermark_
                                                                                 : wm;
    // The per-record loop stays `void` (a `result` per record costs, see window_operator):
    // the first record with a bad gap or off the time line stops the batch, and the batch
    // fails below naming it; the job fails with it, so nothing of the batch is committed.
    const T* bad = nullptr;
    const event_time* times = detail::event_times(ts_fn_, records, times_);
    for_each_record(records, [&](const T& r) {
      if (bad) [[unlikely]]
        return;
      const event_time ts = times[&r - records.data()];
      const duration gap = assigner_.gap_of(r);
      if (gap <= duration::zero() || !assigner_.fits(ts, gap)) [[unlikely]] {
        bad = &r;
        return;
      }
      const time_window fresh{ts, ts + gap};
      K key = key_fn_(r);
      const int g = detail::window_key_group(key, info_.max_key_groups);
      auto& tab = state_.group(g);
      auto it = tab.find(key);
      const auto touch = it == tab.end() ? touch_range{} : find_touching(it->second, fresh);
      // Flink: late only when it would open a new session (any live session it touches
      // ends after the watermark minus the lateness, and so does the merge). Spark: late
      // when the row's own session ends by the watermark, whatever it touches, in every
      // mode (SessionWindowStateStoreRestoreExec filters before merging; unlike other
      // aggregations, complete mode drops these rows too, though it frees nothing).
      if (spark ? fresh.max_timestamp() <= late_wm
                : touch.empty() && cleanup_time(fresh) <= wm) {
        ++late_count;
        ++epoch_.dropped;
        if (opts_.late_to_side_output)
          late.push_back(r);
        return;
      }
      if (spark)
        note_touch(g, key, it == tab.end() ? nullptr : &it->second);
      if (it == tab.end())
        it = tab.try_emplace(std::move(key), spare_list()).first;
      auto& sessions = it->second;
      // Whether the key's list changed beyond the growth of one session: always noted.
      bool reshaped = true;
      if (touch.empty()) {
        const std::uint32_t firings = complete ? epochs_.born() : 0;
        // In start order (see `find_touching`); in-order input appends.
        sessions.insert(sessions.begin() + static_cast<std::ptrdiff_t>(touch.first),
                        session_state{fresh, fn_.create(), firings, min_watermark, max_watermark});
      } else {
        auto& s = sessions[touch.first];
        s.window = span(s.window, fresh);
        reshaped = touch.size() > 1;
        // Later touching sessions fold into the first, from the last one back (the order
        // user merge functions always saw). The merged session answers to the earliest of
        // their timers; the others' timers find it with another time and are skipped.
        for (auto i = touch.last; i-- > touch.first + 1;) {
          auto& other = sessions[i];
          s.window = span(s.window, other.window);
          // The merged session has fired as often as the one that fired most.
          s.firings = complete ? std::min(s.firings, other.firings)
                               : std::max(s.firings, other.firings);
          s.fired_max = std::max(s.fired_max, other.fired_max);
          s.timer_at = std::min(s.timer_at, other.timer_at);
          fn_.merge(s.acc, std::move(other.acc));
        }
        if (reshaped)
          sessions.erase(sessions.begin() + static_cast<std::ptrdiff_t>(touch.first + 1),
                         sessions.begin() + static_cast<std::ptrdiff_t>(touch.last));
      }
      auto& s = sessions[touch.first];
      fn_.add(s.acc, r);
      // A key is listed once per checkpoint: a session growing in place, already noted
      // since the last snapshot, needs no second entry in the change log.
      if (reshaped || s.noted != snapshots_) {
        s.noted = snapshots_;
        state_.note_change(g, it->first);
      }
      if (!spark)
        ++epoch_.updated; // per record: sessions merge, so "rows" are not stable here
      if (complete)
        return; // every session is emitted at the epoch's end and none is freed
      if (s.window.max_timestamp() <= wm && !info_.micro_batch)
        fire(it->first, s, wm, updates);
      // Usually the pending timer is earlier than the new due time (a session that grew):
      // it re-arms itself when it comes due, so growing a session costs no heap push.
      if (const auto due = due_time(s); due < s.timer_at) {
        s.timer_at = due;
        timers_.add(g, {due, it->first, s.window});
      }
    });
    if (bad)
      return bad_record(*bad);
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
      // The snapshot takes the change logs: a change from now on is noted again (whether
      // or not the snapshot succeeds; never 0, see `session_state::noted`).
      if (++snapshots_ == 0)
        snapshots_ = 1;
      if (auto ok = checkpoints_.snapshot(state_, w); !ok)
        return ok;
      // Checkpoints on disk hold this order (the epochs, then the watermark; older ones lack
      // the watermark or both); window_operator's piece has the other, so each operator
      // reads and writes its own.
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
      if (sessions.empty()) {
        keep_spare(std::move(sessions));
        tab.erase(it);
      }
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
    /// The snapshot count when the key was last noted in the change log for this session's
    /// growth (see `process`). Not checkpointed.
    std::uint32_t noted = 0;
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

  /// The sessions of a key that a record's window touches: indices `[first, last)`, adjacent
  /// in start order. When it touches none, `first` is where its session goes.
  struct touch_range {
    std::size_t first = 0, last = 0;
    bool empty() const noexcept { return first == last; }
    std::size_t size() const noexcept { return last - first; }
  };

  /// The sessions in `sessions` that `fresh` touches. In start order they are adjacent:
  /// from the first that does not end before `fresh` starts to the last that starts by its
  /// end. In-order input starts at or after the key's last session: then only that one can
  /// touch it (the others end before it starts), and one comparison answers. Otherwise a
  /// binary search, so a record costs O(log n) whatever number of older sessions still
  /// wait for the watermark: at parallelism 2 a source instance that runs ahead of its
  /// sibling holds the watermark back and leaves dozens per key, and scanning them all was
  /// half of the session benchmark's time.
  static touch_range find_touching(const session_list& sessions,
                                   const time_window& fresh) noexcept {
    const auto n = sessions.size();
    if (n != 0 && sessions[n - 1].window.start <= fresh.start) [[likely]]
      return sessions[n - 1].window.end < fresh.start ? touch_range{n, n} : touch_range{n - 1, n};
    const auto first = std::partition_point(
      sessions.begin(), sessions.end(),
      [&](const session_state& s) { return s.window.end < fresh.start; });
    const auto at = static_cast<std::size_t>(first - sessions.begin());
    auto last = at;
    while (last < n && sessions[last].window.start <= fresh.end)
      ++last;
    return {at, last};
  }

  /// The error of the first record of a batch with a bad gap or off the time line.
  error bad_record(const T& r) {
    const duration gap = assigner_.gap_of(r);
    if (gap <= duration::zero())
      return make_error(error_code::invalid_option,
                        "window '" + info_.name + "': the session gap function returned " +
                          detail::micros(gap) + "; gaps must be positive");
    return detail::malformed_event_time(info_.name, "session(gap " + detail::micros(gap) + ")",
                                        ts_fn_(r), r);
  }

  /// An empty session list for a new key: one a key emptied before, with its capacity, so
  /// that a key whose sessions come and go does not allocate a list for every session.
  session_list spare_list() {
    if (spare_.empty())
      return {};
    auto l = std::move(spare_.back());
    spare_.pop_back();
    return l;
  }
  /// Keeps the emptied list of an erased key for `spare_list` (a bounded number of them).
  void keep_spare(session_list&& l) {
    if (spare_.size() < max_spare_lists && l.capacity() <= max_spare_capacity) {
      l.clear();
      spare_.push_back(std::move(l));
    }
  }
  static constexpr std::size_t max_spare_lists = 256, max_spare_capacity = 4;

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
  std::vector<event_time> times_; ///< the current batch's event times (kept: no allocation)
  table_type state_;
  detail::table_checkpoints<table_type> checkpoints_;
  detail::window_timer_queues<K> timers_;
  epoch_counts epoch_;
  detail::complete_mode_epochs epochs_;
  event_time late_watermark_ = min_watermark; ///< the watermark at the last epoch's end
  /// Snapshots taken, from 1: `session_state::noted` against it (0 is never).
  std::uint32_t snapshots_ = 1;
  std::vector<session_list> spare_; ///< emptied lists of erased keys (`spare_list`)
  struct touched_key {
    int group = 0;
    std::vector<event_time> starts; ///< its sessions' starts before the epoch's first row
  };
  /// Under Spark's semantics: the keys rows reached in this epoch (`note_touch`).
  std::unordered_map<K, touched_key, key_hash<K>> touched_;
};

} // namespace sluice
