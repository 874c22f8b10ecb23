#pragma once
/// Deduplication within the watermark (Spark's `dropDuplicatesWithinWatermark`).
///
/// The first record of a key passes; later records of the key are dropped while its state
/// lives. The state of a key whose first record had event time e is freed as soon as the
/// watermark passes e + delay (watermark > e + delay), so memory is bounded by the keys
/// seen within the watermark's reach. A record with event time <= the watermark is late: it
/// is dropped and counted as late, because its key's state may already be gone and passing
/// it could emit a duplicate.
///
/// Under Spark's semantics (an output mode or micro-batches) the rules are Spark's
/// (StreamingDeduplicateWithinWatermarkExec): the watermark is Spark's (one microsecond above
/// the engine's, so a record exactly at it is late and a key expiring exactly at it goes);
/// in micro-batches a record is late by the previous batch's watermark (the 3.4+ rule,
/// `late_row_rule::previous_watermark`) or the batch's own (`epoch_watermark`), and keys are
/// freed at the batch's end, after its rows, so a duplicate in the batch whose watermark
/// passes its key's expiry is still dropped.
#include "sluice/core/key_group.hpp"
#include "sluice/core/timestamp_fn.hpp"
#include "sluice/operators/keyed_state.hpp"
#include "sluice/operators/operator.hpp"
#include "sluice/operators/record_loop.hpp"
#include "sluice/operators/state/backend.hpp"
#include "sluice/operators/state/snapshot_codec.hpp"

#include <algorithm>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace sluice {

template <class K, class T, class KeyFn>
class dedup_within_watermark_operator final : public operator_base {
public:
  /// Checkpoints hold each key's expiry per key group; the expiry queues are rebuilt from
  /// them on restore, at any parallelism.
  bool can_checkpoint() const noexcept override { return detail::snapshottable_v<K>; }

  /// Per key group the keys' expiries; per instance the late-row watermark.
  result<void> snapshot(std::int64_t, snapshot_writer& w) override {
    if constexpr (detail::snapshottable_v<K>) {
      if (auto ok = checkpoints_.snapshot(seen_, w); !ok)
        return ok;
      return detail::put_late_watermark(w, info_.instance, late_watermark_);
    } else {
      return detail::not_snapshottable(info_.name);
    }
  }

  result<void> restore(snapshot_reader& r) override {
    if constexpr (detail::snapshottable_v<K>) {
      auto read =
        detail::restore_late_watermark(r, "deduplication '" + info_.name + "'", late_watermark_);
      if (!read)
        return read;
      if (auto ok = checkpoints_.restore(seen_, r, info_.name); !ok)
        return ok;
      for (int kg = info_.key_groups.first; kg < info_.key_groups.last; ++kg) {
        auto& q = queues_[static_cast<std::size_t>(kg - info_.key_groups.first)];
        for (auto& [key, expires] : seen_.group(kg))
          q.emplace_back(expires, key);
        std::make_heap(q.begin(), q.end(), later);
      }
      return {};
    } else {
      return detail::not_snapshottable(info_.name);
    }
  }

  using timestamp_fn = sluice::timestamp_fn<T>;

  /// `ts` must be set (the API checks it while building the graph); `delay` >= 0.
  dedup_within_watermark_operator(KeyFn key_fn, timestamp_fn ts, duration delay)
    : key_fn_(std::move(key_fn)), ts_(std::move(ts)), delay_(delay) {}

  result<void> open(const operator_info& info) override {
    info_ = info;
    if (!ts_)
      return make_error(error_code::invalid_graph,
                        "'" + info.name + "': deduplication needs the stream's event time");
    seen_ = keyed_state_table<K, std::int64_t>{info.key_groups};
    queues_.assign(static_cast<std::size_t>(info.key_groups.size()), {});
    duplicates_ = 0;
    spark_ = info.mode.has_value() || info.micro_batch;
    return {};
  }

  result<void> process(int, batch_ptr in, output& out) override {
    auto& records = records_of<T>(*in);
    auto kept = make_batch<T>(records.size());
    const auto wm = spark_watermark(
      info_.micro_batch && info_.late_rows == late_row_rule::previous_watermark
        ? late_watermark_
        : current_watermark());
    std::uint64_t late = 0;
    for_each_record(std::as_const(records), [&](const T& r) {
      const auto ts = detail::ticks(ts_(r));
      if (ts <= wm) {
        ++late;
        return;
      }
      K key = key_fn_(r);
      const int kg = key_group_of(key_hash<K>{}(key), info_.max_key_groups);
      const auto expires = detail::saturating_add(ts, delay_.count());
      // A duplicate changes nothing: it leaves a group frozen for a checkpoint alone.
      if (seen_.frozen(kg) && seen_.view(kg).contains(key)) {
        ++duplicates_;
        return;
      }
      auto [it, fresh] = seen_.group(kg).try_emplace(key, expires);
      if (!fresh) {
        ++duplicates_;
        return;
      }
      seen_.note_change(kg, key);
      ++epoch_.updated;
      auto& q = queues_[static_cast<std::size_t>(kg - info_.key_groups.first)];
      q.emplace_back(expires, std::move(key));
      std::push_heap(q.begin(), q.end(), later);
      kept->records.push_back(r);
    });
    if (late > 0) {
      count_late(late, false);
      epoch_.dropped += late;
    }
    if (info_.metrics)
      task_metrics::add(info_.metrics->duplicates_dropped,
                        records.size() - late - kept->records.size());
    if (kept->records.empty())
      return {};
    return out.emit(0, std::move(kept));
  }

  /// Frees the keys the watermark passed, except in micro-batches (see `end_epoch`).
  result<void> on_watermark(event_time wm, output&) override {
    if (!info_.micro_batch)
      evict(wm);
    return {};
  }

  /// Micro-batches free keys after the batch's rows, at the batch's watermark (Spark's
  /// order), and report the batch's state counts.
  result<void> end_epoch(std::int64_t, output&, operator_epoch_stats& stats) override {
    const auto wm = current_watermark();
    if (info_.micro_batch)
      evict(wm);
    late_watermark_ = wm; // the next batch's rows are late by this one (Spark 3.4+)
    const auto total = seen_.size();
    stats.state = state_epoch_report{0, {}, total, epoch_.updated, epoch_.removed, epoch_.dropped,
                                     total * (sizeof(K) + sizeof(queue_entry) + 32), 0};
    epoch_ = {};
    return {};
  }

  /// Keys whose state is held.
  std::size_t state_size() const noexcept { return seen_.size(); }
  /// Records dropped as duplicates since `open`.
  std::uint64_t dropped_duplicates() const noexcept { return duplicates_; }

private:
  /// The engine's watermark in ticks; under Spark's semantics Spark's, one microsecond
  /// above it (the engine's is Flink's "max - delay - 1µs", Spark's "max - delay").
  std::int64_t spark_watermark(event_time wm) const noexcept {
    const auto t = detail::ticks(wm);
    return spark_ ? detail::saturating_add(t, 1) : t;
  }

  /// Frees every key whose first record's event time + delay the watermark passed
  /// (Flink: expiry < watermark; Spark: expiry <= its watermark). Each key has exactly one
  /// queue entry (written once, never refreshed), so this is exact.
  void evict(event_time wm) {
    const auto now = spark_watermark(wm);
    const auto due = [&](std::int64_t expires) { return spark_ ? expires <= now : expires < now; };
    for (int kg = info_.key_groups.first; kg < info_.key_groups.last; ++kg) {
      auto& q = queues_[static_cast<std::size_t>(kg - info_.key_groups.first)];
      if (q.empty() || !due(q.front().first))
        continue; // leaves the group shared with a checkpoint still writing it
      auto& g = seen_.group(kg);
      while (!q.empty() && due(q.front().first)) {
        std::pop_heap(q.begin(), q.end(), later);
        g.erase(q.back().second);
        seen_.note_change(kg, q.back().second);
        ++epoch_.removed;
        q.pop_back();
      }
    }
  }

  struct epoch_counts {
    std::uint64_t updated = 0, removed = 0, dropped = 0;
  };

  using queue_entry = std::pair<std::int64_t, K>;
  static bool later(const queue_entry& a, const queue_entry& b) noexcept {
    return a.first > b.first;
  }

  KeyFn key_fn_;
  timestamp_fn ts_;
  duration delay_;
  keyed_state_table<K, std::int64_t> seen_;     ///< key -> expiry (first event time + delay)
  detail::table_checkpoints<keyed_state_table<K, std::int64_t>> checkpoints_;
  std::vector<std::vector<queue_entry>> queues_; ///< per key group, min-heap by expiry
  std::uint64_t duplicates_ = 0;
  bool spark_ = false; ///< Spark's semantics: an output mode or micro-batches
  event_time late_watermark_ = min_watermark; ///< the watermark at the last batch's end
  epoch_counts epoch_;
};

} // namespace sluice
