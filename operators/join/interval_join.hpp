#pragma once
/// The interval join (Flink's `intervalJoin`, Spark's stream-stream join with a time-range
/// condition): left row `l` and right row `r` with equal keys join when
///
///     l.ts + lower <= r.ts <= l.ts + upper        (both bounds inclusive)
///
/// Both sides are buffered per key, per key group (see `keyed_state_table`), sorted by event
/// time. The watermark `W` (the minimum over both inputs; no record with ts <= W follows)
/// bounds the buffers:
///
/// - a left row can match no right row that is still to come once `W >= l.ts + upper`: it is
///   dropped then, and in a left outer join, if it never matched, emitted with no right row;
/// - a right row can match no left row still to come once `W >= r.ts - lower`: dropped then.
///
/// A record arriving with `ts <= W` is late: its partners may already be gone, so joining it
/// would give a partial, timing-dependent answer. It is dropped and counted
/// (`task_stats::late_records`), never silently. See docs/joins.md.
///
/// Micro-batches follow Spark's StreamingSymmetricHashJoinExec instead, so that the answer
/// does not depend on how the two inputs' rows and watermarks interleave within a batch: the
/// batch's rows are held until its end (every input's barrier, hence its watermark, is in),
/// then the left rows join the right rows buffered before the batch and are all buffered,
/// then the right rows join every buffered left row (this batch's too) and are buffered
/// unless the batch's watermark already frees them; rows late by the late-row watermark
/// (the previous batch's by default, `late_row_rule`) are dropped first. Rows the batch's
/// watermark frees go last, left outer rows that never matched with them.
#include "sluice/core/key_group.hpp"
#include "sluice/core/timestamp_fn.hpp"
#include "sluice/operators/join/join_common.hpp"
#include "sluice/operators/keyed_state.hpp"
#include "sluice/operators/operator.hpp"
#include "sluice/operators/record_loop.hpp"
#include "sluice/operators/state/snapshot_codec.hpp"

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <functional>
#include <memory>
#include <string_view>
#include <utility>
#include <vector>

namespace sluice {

/// What changed in a key's rows of one side since the previous checkpoint, for a delta:
/// the rows now are the previous ones from `skip` on, `keep` of them, then `rows`.
template <class Row>
struct rows_change {
  std::uint64_t skip = 0;
  std::uint64_t keep = 0;
  std::vector<Row> rows;
  template <class Inspector>
  friend bool inspect(Inspector& f, rows_change& x) {
    return f.object("rows_change")
      .fields(f.field("skip", x.skip), f.field("keep", x.keep), f.field("rows", x.rows));
  }
};

/// Rows of one side of one key, kept sorted by event time (equal times in arrival order).
///
/// A vector with a moving head rather than a `std::deque`: rows arrive nearly in order, so
/// inserting is an append, expiring is advancing the head, and an idle key costs five
/// words (three, and the change mark below) instead of a deque's preallocated block.
///
/// Changes are stamped with the checkpoint generation they belong to (`gen`), so a delta
/// holds what changed, not every row: the rows expired from the front, and the rows from
/// the earliest one inserted or updated on (`touch`). Rows arrive nearly in order and
/// expire from the front, so that tail is short while the buffer spans the whole join
/// interval.
template <class Row>
class time_sorted_rows {
public:
  using iterator = typename std::vector<Row>::iterator;

  /// Adds the row `Row{ts, fields...}`, built in place: a row passed by value crossed the
  /// call through the stack, and reading it back in other widths than it was written
  /// stalled store forwarding (a quarter of the join's per-record time, perf annotate).
  template <class... Fields>
  void insert(std::uint32_t gen, event_time ts, Fields&&... fields) {
    touch(ts, gen);
    if (rows_.size() == head_ || !(ts < rows_.back().ts)) {
      rows_.emplace_back(ts, std::forward<Fields>(fields)...);
      return;
    }
    auto pos = std::upper_bound(begin(), end(), ts,
                                [](event_time t, const Row& r) { return t < r.ts; });
    rows_.emplace(pos, ts, std::forward<Fields>(fields)...);
  }

  /// The rows with `lo <= ts <= hi`. Both sides arrive nearly in time order, so a probe's
  /// range lies just after the previous probe's: its end is searched from there (kept in
  /// `cursor_`), doubling the step, and its start back from its end. A binary search over
  /// the whole buffer cost log2(size) unpredictable branches and cache misses per probe,
  /// a third of the join's probe time; this costs O(log d) for ranges d rows apart.
  std::pair<iterator, iterator> between(event_time lo, event_time hi) {
    const auto from = begin() + static_cast<std::ptrdiff_t>(std::min<std::size_t>(cursor_, size()));
    const auto last = first_near(begin(), end(), from, [&](const Row& r) { return hi < r.ts; });
    const auto first = first_near(begin(), last, last, [&](const Row& r) { return lo <= r.ts; });
    cursor_ = static_cast<std::size_t>(last - begin());
    return {first, last};
  }

  Row& front() noexcept { return rows_[head_]; }
  void pop_front(std::uint32_t gen) {
    mark(gen).popped++;
    ++head_;
    if (head_ == rows_.size()) {
      rows_.clear();
      head_ = 0;
    } else if (head_ >= 32 && head_ * 2 >= rows_.size()) {
      // Compact once the dead prefix is at least half: amortized O(1) per row.
      rows_.erase(rows_.begin(), begin());
      head_ = 0;
    }
  }

  iterator begin() noexcept { return rows_.begin() + static_cast<std::ptrdiff_t>(head_); }
  iterator end() noexcept { return rows_.end(); }
  std::size_t size() const noexcept { return rows_.size() - head_; }
  bool empty() const noexcept { return rows_.size() == head_; }

  /// Whether the rows changed since checkpoint generation `gen` began.
  bool changed_in(std::uint32_t gen) const noexcept { return mark_.gen == gen; }

  /// Notes that the row at `ts` changed in place (or arrived).
  void touch(event_time ts, std::uint32_t gen) noexcept {
    auto& m = mark(gen);
    m.from = std::min(m.from, ts);
  }

  /// What changed since generation `gen` began. Rows before the earliest one touched were
  /// neither inserted nor changed since, so they are the previous rows minus those expired
  /// (which were the previous front: had an expired row been new, every row older than the
  /// touched ones would have gone first, and nothing is kept).
  rows_change<Row> changes_since(std::uint32_t gen) const {
    if (mark_.gen != gen)
      return {0, size(), {}};
    const auto first = std::lower_bound(rows_.begin() + static_cast<std::ptrdiff_t>(head_),
                                        rows_.end(), mark_.from,
                                        [](const Row& r, event_time t) { return r.ts < t; });
    const auto keep = static_cast<std::uint64_t>(
      first - (rows_.begin() + static_cast<std::ptrdiff_t>(head_)));
    return {keep ? mark_.popped : 0, keep, std::vector<Row>(first, rows_.end())};
  }

  /// Replays `changes_since` on the rows as of the previous checkpoint.
  result<void> apply(rows_change<Row>&& c) {
    if (c.skip > size() || c.keep > size() - c.skip)
      return make_error(error_code::malformed_record,
                        "a delta keeps rows " + std::to_string(c.skip) + " to " +
                          std::to_string(c.skip + c.keep) + " of " + std::to_string(size()));
    const auto keep_from = begin() + static_cast<std::ptrdiff_t>(c.skip);
    std::vector<Row> rows(std::make_move_iterator(keep_from),
                          std::make_move_iterator(keep_from + static_cast<std::ptrdiff_t>(c.keep)));
    if (!c.rows.empty() && !rows.empty() && c.rows.front().ts < rows.back().ts)
      return make_error(error_code::malformed_record, "a delta's rows precede the rows it keeps");
    if (!std::is_sorted(c.rows.begin(), c.rows.end(),
                        [](const Row& a, const Row& b) { return a.ts < b.ts; }))
      return make_error(error_code::malformed_record, "a delta's rows are out of time order");
    rows.insert(rows.end(), std::make_move_iterator(c.rows.begin()),
                std::make_move_iterator(c.rows.end()));
    rows_ = std::move(rows);
    head_ = 0;
    return {};
  }

  /// The codec form is the live rows, in event-time order. Saving copies them when
  /// expired rows lead: the rows may be a group a checkpoint froze, which only the task
  /// may compact. Loading rejects rows out of order (a corrupt piece).
  template <class Inspector>
  friend bool inspect(Inspector& f, time_sorted_rows& x) {
    if constexpr (Inspector::is_loading) {
      std::vector<Row> rows;
      if (!f.object("time_sorted_rows").fields(f.field("rows", rows)))
        return false;
      if (!std::is_sorted(rows.begin(), rows.end(),
                          [](const Row& a, const Row& b) { return a.ts < b.ts; }))
        return false;
      x.rows_ = std::move(rows);
      x.head_ = 0;
      return true;
    } else if (x.head_ == 0) {
      return f.object("time_sorted_rows").fields(f.field("rows", x.rows_));
    } else {
      std::vector<Row> live(x.begin(), x.end());
      return f.object("time_sorted_rows").fields(f.field("rows", live));
    }
  }

private:
  /// The first row of `[b, e)` for which `after` holds (`e` if none), `after` being false
  /// up to some row and true from it on: galloping from `near` (in `[b, e]`) toward the
  /// answer, then a binary search of the last step. Correct for any `near`; fast when the
  /// answer is close to it.
  template <class Pred>
  static iterator first_near(iterator b, iterator e, iterator near, Pred after) {
    const auto before = [&](const Row& r) { return !after(r); };
    std::ptrdiff_t step = 1;
    if (near == e || after(*near)) { // at or before `near`: gallop back
      while (near != b) {
        const auto probe = near - std::min(step, near - b);
        if (!after(*probe))
          return std::partition_point(probe + 1, near, before);
        near = probe;
        step *= 2;
      }
      return b;
    }
    for (;;) { // after `near`, which is before it: gallop forward
      if (e - near <= step)
        return std::partition_point(near + 1, e, before);
      const auto probe = near + step;
      if (after(*probe))
        return std::partition_point(near + 1, probe, before);
      near = probe;
      step *= 2;
    }
  }

  /// The changes of one checkpoint generation; a change in a later one starts afresh.
  struct change_mark {
    std::uint32_t gen = 0;
    std::uint32_t popped = 0;
    event_time from = max_watermark;
  };
  change_mark& mark(std::uint32_t gen) noexcept {
    if (mark_.gen != gen)
      mark_ = {gen, 0, max_watermark};
    return mark_;
  }

  std::vector<Row> rows_;
  std::size_t head_ = 0;
  change_mark mark_;
  /// Where the last `between` range ended, from `head_`: a hint only (pops, inserts and
  /// compaction move rows under it), so it is neither checkpointed nor kept exact.
  std::size_t cursor_ = 0;
};

/// What the interval join keeps for one key.
template <class L, class R>
struct interval_join_buffers {
  struct left_row {
    event_time ts;
    bool matched; ///< for left outer: it has been emitted with a right row at least once
    L record;
    template <class Inspector>
    friend bool inspect(Inspector& f, left_row& x) {
      return f.object("left_row").fields(f.field("ts", x.ts), f.field("matched", x.matched),
                                         f.field("record", x.record));
    }
  };
  struct right_row {
    event_time ts;
    R record;
    template <class Inspector>
    friend bool inspect(Inspector& f, right_row& x) {
      return f.object("right_row").fields(f.field("ts", x.ts), f.field("record", x.record));
    }
  };
  time_sorted_rows<left_row> left;
  time_sorted_rows<right_row> right;
  bool empty() const noexcept { return left.empty() && right.empty(); }
  /// Whether either side changed in checkpoint generation `gen`: the operator notes a key
  /// in the table's change log with its first change of a generation, so this says the
  /// key is listed already (a note per record cost the join 2% of its time).
  bool changed_in(std::uint32_t gen) const noexcept {
    return left.changed_in(gen) || right.changed_in(gen);
  }

  /// A delta holds these instead of the buffers (detail::checkpoints_changes).
  struct changes {
    rows_change<left_row> left;
    rows_change<right_row> right;
    std::size_t weight() const noexcept { return left.rows.size() + right.rows.size(); }
    template <class Inspector>
    friend bool inspect(Inspector& f, changes& x) {
      return f.object("interval_join_changes")
        .fields(f.field("left", x.left), f.field("right", x.right));
    }
  };
  changes changes_since(std::uint32_t gen) const {
    return {left.changes_since(gen), right.changes_since(gen)};
  }
  result<void> apply(changes&& c) {
    if (auto ok = left.apply(std::move(c.left)); !ok)
      return make_error(ok.error().code, "left rows: " + ok.error().message);
    if (auto ok = right.apply(std::move(c.right)); !ok)
      return make_error(ok.error().code, "right rows: " + ok.error().message);
    return {};
  }
  template <class Inspector>
  friend bool inspect(Inspector& f, interval_join_buffers& x) {
    return f.object("interval_join_buffers")
      .fields(f.field("left", x.left), f.field("right", x.right));
  }
};

/// The bounds and type of an interval join.
struct interval_join_spec {
  duration lower{0}; ///< inclusive; may be negative
  duration upper{0}; ///< inclusive; must be >= lower
  join_type type = join_type::inner;
};

/// Input 0 carries `L`, input 1 carries `R`; both keyed by `K`. `fn` is called with
/// `(const L&, const R&)` (or `(const L&, const R*)`) for each match and, in a left outer
/// join, with `(const L&, nullptr)` for a left row that expired unmatched.
///
/// Output order: matches are emitted when the later of the two rows arrives, in event-time
/// order of the buffered partners. Unmatched left rows come out on the watermark that
/// expires them, in event-time order. In micro-batches everything comes out at the batch's
/// end: the left rows' matches, the right rows', then the unmatched left rows.
template <class K, class L, class R, class Out, class KeyL, class KeyR, class F>
class interval_join_operator final : public operator_base {
public:
  /// Checkpoints hold, per key group, each key's buffered rows of both sides (event time,
  /// matched flag, record), written incrementally; any parallelism can restore them.
  bool can_checkpoint() const noexcept override { return snapshottable; }

  using buffers = interval_join_buffers<L, R>;
  using left_row = typename buffers::left_row;
  using right_row = typename buffers::right_row;

  interval_join_operator(interval_join_spec spec, KeyL key_l, KeyR key_r,
                         timestamp_fn<L> ts_l,
                         timestamp_fn<R> ts_r, F fn)
    : spec_(spec), key_l_(std::move(key_l)), key_r_(std::move(key_r)), ts_l_(std::move(ts_l)),
      ts_r_(std::move(ts_r)), fn_(std::move(fn)) {}

  result<void> open(const operator_info& info) override {
    info_ = info;
    if (spec_.lower > spec_.upper)
      return make_error(error_code::invalid_option,
                        "interval join '" + info.name + "': lower bound exceeds upper bound");
    if (spec_.type == join_type::left_outer && !outer_join_function<F, L, R>)
      return make_error(error_code::invalid_option,
                        "interval join '" + info.name +
                          "': a left outer join needs a function (const L&, const R*)");
    if (!ts_l_ || !ts_r_)
      return make_error(error_code::invalid_option,
                        "interval join '" + info.name + "': both inputs need event time");
    state_ = table{info.key_groups};
    next_due_.assign(static_cast<std::size_t>(info.key_groups.size()), max_watermark);
    group_rows_.assign(static_cast<std::size_t>(info.key_groups.size()), 0);
    left_rows_ = right_rows_ = 0;
    return {};
  }

  result<void> process(int input, batch_ptr in, output& out) override {
    if (info_.micro_batch) {
      // Joined at the batch's end, in Spark's order (see the top of this file).
      (input == 0 ? pending_left_ : pending_right_).push_back(std::move(in));
      return {};
    }
    const auto wm = current_watermark();
    const row_rules rules{wm, wm, false};
    auto produced = make_batch<Out>();
    auto looped =
      input == 0 ? each_timed(records_of<L>(*in), ts_l_,
                              [&](const L& l, event_time ts) {
                                return on_left(l, ts, rules, produced->records);
                              })
                 : each_timed(records_of<R>(*in), ts_r_, [&](const R& r, event_time ts) {
                     return on_right(r, ts, rules, produced->records);
                   });
    if (!looped)
      return looped;
    if (produced->records.empty())
      return {};
    return out.emit(0, std::move(produced));
  }

  /// Frees what the watermark passed, except in micro-batches (see `end_epoch`).
  result<void> on_watermark(event_time wm, output& out) override {
    if (info_.micro_batch)
      return {};
    std::vector<Out> unmatched;
    evict(wm, unmatched);
    if (unmatched.empty())
      return {};
    return out.emit(0, std::make_shared<batch<Out>>(std::move(unmatched)));
  }

  /// Micro-batches: joins the batch's rows in Spark's order and frees what the batch's
  /// watermark passed. Every epoch: the join's `stateOperators` entry (rows of both sides
  /// buffered, buffered in the epoch, freed in it, dropped as late).
  result<void> end_epoch(std::int64_t, output& out, operator_epoch_stats& stats) override {
    const auto wm = current_watermark();
    std::vector<Out> produced;
    if (info_.micro_batch) {
      if (auto ok = join_pending(produced); !ok)
        return ok;
      evict(wm, produced);
      late_watermark_ = wm; // the next batch's rows are late by this one (Spark 3.4+)
    }
    const std::uint64_t total = left_rows_ + right_rows_;
    stats.state = state_epoch_report{
      0, {}, total, epoch_.updated, epoch_.removed, epoch_.dropped,
      left_rows_ * (sizeof(left_row) + 16) + right_rows_ * (sizeof(right_row) + 16) +
        buffered_keys() * (sizeof(K) + sizeof(buffers) + 32),
      0};
    epoch_ = {};
    if (produced.empty())
      return {};
    return out.emit(0, std::make_shared<batch<Out>>(std::move(produced)));
  }

  /// Rows of a micro-batch whose end never came (the inputs ended without a last barrier)
  /// are joined as a batch's would be.
  result<void> finish(output& out) override {
    if (pending_left_.empty() && pending_right_.empty())
      return {};
    std::vector<Out> produced;
    if (auto ok = join_pending(produced); !ok)
      return ok;
    if (produced.empty())
      return {};
    return out.emit(0, std::make_shared<batch<Out>>(std::move(produced)));
  }

  // -- checkpoints: per key group, each key's buffered rows of both sides (event time,
  // matched flag, record), as bases and deltas (table_checkpoints) --------------------

  static constexpr bool snapshottable =
    detail::snapshottable_v<K> && detail::snapshottable_v<L> && detail::snapshottable_v<R>;

  result<void> snapshot(std::int64_t, snapshot_writer& w) override {
    if constexpr (snapshottable) {
      // A snapshot follows `end_epoch`, which joins a micro-batch's rows: none can be held.
      if (!pending_left_.empty() || !pending_right_.empty())
        return make_error(error_code::internal,
                          "interval join '" + info_.name +
                            "': a snapshot was asked for while a micro-batch's rows are held");
      // Deltas list rows (a key's changes), so a key group weighs its keys and rows.
      if (auto ok = checkpoints_.snapshot(
            state_, w, [&](int g) { return state_.view(g).size() + rows_in(g); });
          !ok)
        return ok;
      // Per instance: an instance whose key groups are all empty must restore it too.
      return detail::put_late_watermark(w, info_.instance, late_watermark_);
    } else {
      return detail::not_snapshottable(info_.name);
    }
  }

  /// Restores the buffers of this instance's key groups (any parallelism wrote them) and
  /// derives the row counts and each group's earliest expiry from them.
  result<void> restore(snapshot_reader& r) override {
    if constexpr (snapshottable) {
      // Checkpoints written before the join kept its late-row watermark have no such piece.
      auto read =
        detail::restore_late_watermark(r, "interval join '" + info_.name + "'", late_watermark_);
      if (!read)
        return read;
      if (auto ok = checkpoints_.restore(state_, r, info_.name); !ok)
        return ok;
      for (int g = state_.range().first; g < state_.range().last; ++g)
        for (auto& [key, b] : state_.group(g)) {
          left_rows_ += b.left.size();
          right_rows_ += b.right.size();
          rows_in(g) += b.left.size() + b.right.size();
          if (!b.left.empty())
            note_due(g, left_expiry(b.left.front().ts));
          if (!b.right.empty())
            note_due(g, right_expiry(b.right.front().ts));
        }
      return {};
    } else {
      return detail::not_snapshottable(info_.name);
    }
  }

  /// Left rows buffered now, over all keys of this instance.
  std::size_t buffered_left() const noexcept { return left_rows_; }
  /// Right rows buffered now, over all keys of this instance.
  std::size_t buffered_right() const noexcept { return right_rows_; }
  /// Keys with at least one buffered row.
  std::size_t buffered_keys() const noexcept { return state_.size(); }

private:
  /// Frees the rows that no partner still to come can match once the watermark is `wm`;
  /// in a left outer join, left rows that never matched are appended to `out` (in event-time
  /// order).
  void evict(event_time wm, std::vector<Out>& out) {
    // (event time, row) of left rows that expire unmatched, emitted in event-time order.
    std::vector<std::pair<event_time, L>> unmatched;
    const auto range = state_.range();
    const auto gen = checkpoints_.generation();
    for (int kg = range.first; kg < range.last; ++kg) {
      auto& due = next_due_[static_cast<std::size_t>(kg - range.first)];
      if (due > wm)
        continue;
      due = max_watermark;
      auto& group = state_.group(kg);
      for (auto it = group.begin(); it != group.end();) {
        auto& b = it->second;
        const auto rows_before = b.left.size() + b.right.size();
        const bool listed = b.changed_in(gen); // see `note_change`
        while (!b.left.empty() && left_expiry(b.left.front().ts) <= wm) {
          auto& row = b.left.front();
          if (spec_.type == join_type::left_outer && !row.matched)
            unmatched.emplace_back(row.ts, std::move(row.record));
          b.left.pop_front(gen);
          --left_rows_;
          --rows_in(kg);
          ++epoch_.removed;
        }
        while (!b.right.empty() && right_expiry(b.right.front().ts) <= wm) {
          b.right.pop_front(gen);
          --right_rows_;
          --rows_in(kg);
          ++epoch_.removed;
        }
        if (!listed && b.left.size() + b.right.size() != rows_before)
          state_.note_change(kg, it->first);
        if (b.empty()) {
          group.erase(it++); // a flat map's erase returns nothing; other iterators stay valid
          continue;
        }
        if (!b.left.empty())
          due = std::min(due, left_expiry(b.left.front().ts));
        if (!b.right.empty())
          due = std::min(due, right_expiry(b.right.front().ts));
        ++it;
      }
    }
    std::stable_sort(unmatched.begin(), unmatched.end(),
                     [](const auto& a, const auto& b) { return a.first < b.first; });
    for (auto& [ts, l] : unmatched)
      out.push_back(unmatched_result(l));
  }

  /// Joins the rows held for the current micro-batch (Spark's order): late rows dropped,
  /// then every left row, then every right row.
  result<void> join_pending(std::vector<Out>& out) {
    const auto wm = current_watermark();
    // Spark's rule `ts <= W` on the engine's watermark, which is Spark's W minus 1 us.
    const auto spark_late = [](event_time w) {
      return w == min_watermark ? w : detail::join_bound_add(w, duration{1});
    };
    const row_rules rules{
      spark_late(info_.late_rows == late_row_rule::previous_watermark ? late_watermark_ : wm), wm,
      true};
    auto left = std::exchange(pending_left_, {});
    auto right = std::exchange(pending_right_, {});
    for (auto& b : left)
      if (auto ok = each_timed(
            records_of<L>(*b), ts_l_,
            [&](const L& l, event_time ts) { return on_left(l, ts, rules, out); });
          !ok)
        return ok;
    for (auto& b : right)
      if (auto ok = each_timed(
            records_of<R>(*b), ts_r_,
            [&](const R& r, event_time ts) { return on_right(r, ts, rules, out); });
          !ok)
        return ok;
    return {};
  }

  /// Calls `on(record, its event time)` for each record in order (for_each_record), the
  /// times taken for the whole batch in one call (detail::event_times).
  template <class Row, class On>
  result<void> each_timed(const std::vector<Row>& records, const timestamp_fn<Row>& ts, On on) {
    const event_time* times = detail::event_times(ts, records, times_);
    return for_each_record(records,
                           [&](const Row& r) { return on(r, times[&r - records.data()]); });
  }

  // When a buffered row can no longer meet a partner that is still to come.
  event_time left_expiry(event_time ts) const noexcept {
    return detail::join_bound_add(ts, spec_.upper);
  }
  event_time right_expiry(event_time ts) const noexcept {
    return detail::join_bound_sub(ts, spec_.lower);
  }

  /// The output for a left row that never matched (left outer only; `open` refuses a left
  /// outer join whose function cannot take a null right row).
  Out unmatched_result(const L& l) {
    if constexpr (outer_join_function<F, L, R>)
      return fn_(l, static_cast<const R*>(nullptr));
    else
      return call_join_matched_unreachable(l);
  }
  [[noreturn]] static Out call_join_matched_unreachable(const L&) { std::abort(); }

  /// The key group of `key`, checked against this instance's range: a record routed to the
  /// wrong instance would silently join with nothing, so it is an engine error.
  result<int> group_of(const K& key) const {
    const int kg = key_group_of(key_hash<K>{}(key), info_.max_key_groups);
    if (!state_.range().contains(kg))
      return make_error(error_code::internal, "interval join '" + info_.name +
                                                "': record of key group " +
                                                std::to_string(kg) + " reached the wrong instance");
    return kg;
  }

  /// Makes the change `change(generation)` to the key at `it` and lists the key in the
  /// change log unless a change of this generation listed it already.
  template <class Iterator, class Change>
  void note_change(int kg, Iterator it, Change change) {
    const auto gen = checkpoints_.generation();
    const bool listed = it->second.changed_in(gen);
    change(gen);
    if (!listed)
      state_.note_change(kg, it->first);
  }

  std::size_t& rows_in(int kg) noexcept {
    return group_rows_[static_cast<std::size_t>(kg - state_.range().first)];
  }

  void note_due(int kg, event_time t) {
    auto& due = next_due_[static_cast<std::size_t>(kg - state_.range().first)];
    due = std::min(due, t);
  }

  /// How a row is judged: late when `ts <= late`; its partners still to come are gone when
  /// its expiry is `<= expired` (then a right row is not buffered, and a left row only
  /// with `buffer_expired_left`, Spark's micro-batches, where the batch's right rows still
  /// meet it and the batch's end frees it).
  struct row_rules {
    event_time late;
    event_time expired;
    bool buffer_expired_left;
  };

  result<void> on_left(const L& l, event_time ts, const row_rules& rules, std::vector<Out>& out) {
    if (ts <= rules.late) {
      count_late(1, false);
      ++epoch_.dropped;
      return {};
    }
    const K key = key_l_(l);
    auto kg = group_of(key);
    if (!kg)
      return std::move(kg).error();
    auto& group = state_.group(*kg);
    auto it = group.find(key);
    bool matched = false;
    if (it != group.end()) {
      auto [first, last] =
        it->second.right.between(detail::join_bound_add(ts, spec_.lower), left_expiry(ts));
      matched = first != last;
      for (; first != last; ++first)
        out.push_back(detail::call_join_matched(fn_, l, first->record));
    }
    const event_time expiry = left_expiry(ts);
    if (expiry <= rules.expired && !rules.buffer_expired_left) {
      // With upper < 0 the whole range can already be behind the watermark: no right row
      // to come can match, so the row is done now.
      if (spec_.type == join_type::left_outer && !matched)
        out.push_back(unmatched_result(l));
      return {};
    }
    if (it == group.end())
      it = group.try_emplace(key).first;
    note_change(*kg, it,
                [&](std::uint32_t gen) { it->second.left.insert(gen, ts, matched, l); });
    ++epoch_.updated;
    ++left_rows_;
    ++rows_in(*kg);
    note_due(*kg, expiry);
    return {};
  }

  result<void> on_right(const R& r, event_time ts, const row_rules& rules, std::vector<Out>& out) {
    if (ts <= rules.late) {
      count_late(1, false);
      ++epoch_.dropped;
      return {};
    }
    const K key = key_r_(r);
    auto kg = group_of(key);
    if (!kg)
      return std::move(kg).error();
    auto& group = state_.group(*kg);
    auto it = group.find(key);
    if (it != group.end()) {
      // l.ts + lower <= r.ts <= l.ts + upper  <=>  r.ts - upper <= l.ts <= r.ts - lower
      auto [first, last] = it->second.left.between(detail::join_bound_sub(ts, spec_.upper),
                                                   right_expiry(ts));
      for (; first != last; ++first) {
        // Only a left outer join reads the flag: an inner join leaves the rows unchanged,
        // so checkpoints do not write them again.
        if (spec_.type == join_type::left_outer && !first->matched) {
          first->matched = true;
          note_change(*kg, it, [&](std::uint32_t gen) { it->second.left.touch(first->ts, gen); });
        }
        out.push_back(detail::call_join_matched(fn_, first->record, r));
      }
    }
    const event_time expiry = right_expiry(ts);
    if (expiry <= rules.expired)
      return {}; // no left row to come can match (with lower > 0, or in a micro-batch)
    if (it == group.end())
      it = group.try_emplace(key).first;
    note_change(*kg, it, [&](std::uint32_t gen) { it->second.right.insert(gen, ts, r); });
    ++epoch_.updated;
    ++right_rows_;
    ++rows_in(*kg);
    note_due(*kg, expiry);
    return {};
  }

  interval_join_spec spec_;
  KeyL key_l_;
  KeyR key_r_;
  timestamp_fn<L> ts_l_;
  timestamp_fn<R> ts_r_;
  F fn_;
  std::vector<event_time> times_; ///< the current batch's event times (kept: no allocation)
  // Flat maps (one probe per record; a key's buffers move when its group grows, and
  // `on_left`/`on_right` use an entry only right after finding or adding it).
  using table = flat_state_table<K, buffers>;
  table state_;
  detail::table_checkpoints<table> checkpoints_;
  /// Per key group of this instance: no buffered row of the group expires before this
  /// time, so a watermark below it skips the group. Derived from the buffers (not state).
  std::vector<event_time> next_due_;
  std::vector<std::size_t> group_rows_; ///< rows buffered per key group of this instance
  std::size_t left_rows_ = 0;
  std::size_t right_rows_ = 0;
  /// Micro-batches: the current batch's rows of each input, joined at its end.
  std::vector<batch_ptr> pending_left_;
  std::vector<batch_ptr> pending_right_;
  /// Micro-batches: the watermark at the last batch's end (Spark 3.4+'s late-row rule).
  event_time late_watermark_ = min_watermark;
  struct epoch_counts {
    std::uint64_t updated = 0, removed = 0, dropped = 0;
  };
  epoch_counts epoch_; ///< this epoch's figures for its stateOperators entry
};

/// Creates an interval join operator; the concrete type is returned so that tests can read
/// `buffered_left()` and `buffered_right()`.
template <class K, class L, class R, class KeyL, class KeyR, class F>
auto make_interval_join_operator(interval_join_spec spec, KeyL key_l, KeyR key_r,
                                 timestamp_fn<L> ts_l,
                                 timestamp_fn<R> ts_r, F fn) {
  using Out = detail::join_output<F, L, R>;
  static_assert(!std::is_void_v<Out>, "interval join: the join function must be "
                                      "(const L&, const R&) -> Out or (const L&, const R*) -> Out");
  return std::make_unique<interval_join_operator<K, L, R, Out, KeyL, KeyR, F>>(
    spec, std::move(key_l), std::move(key_r), std::move(ts_l), std::move(ts_r), std::move(fn));
}

} // namespace sluice
