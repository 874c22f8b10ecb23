#pragma once
/// Deduplication within the watermark (Spark's `dropDuplicatesWithinWatermark`).
///
/// The first record of a key passes; later records of the key are dropped while its state
/// lives. The state of a key whose first record had event time e is freed as soon as the
/// watermark passes e + delay (watermark > e + delay), so memory is bounded by the keys
/// seen within the watermark's reach. A record with event time <= the current watermark is
/// late: it is dropped and counted as late, as in Spark, because its key's state may
/// already be gone and passing it could emit a duplicate.
#include "core/key_group.hpp"
#include "operators/keyed_state.hpp"
#include "operators/operator.hpp"
#include "operators/record_loop.hpp"
#include "operators/state/backend.hpp"
#include "operators/state/snapshot_codec.hpp"

#include <algorithm>
#include <cstdint>
#include <functional>
#include <utility>
#include <vector>

namespace sluice {

template <class K, class T, class KeyFn>
class dedup_within_watermark_operator final : public operator_base {
public:
  /// Checkpoints hold each key's expiry per key group; the expiry queues are rebuilt from
  /// them on restore, at any parallelism.
  bool can_checkpoint() const noexcept override { return detail::snapshottable_v<K>; }

  result<void> snapshot(std::int64_t, snapshot_writer& w) override {
    if constexpr (detail::snapshottable_v<K>)
      return checkpoints_.snapshot(seen_, w);
    else
      return detail::not_snapshottable(info_.name);
  }

  result<void> restore(snapshot_reader& r) override {
    if constexpr (detail::snapshottable_v<K>) {
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

  using timestamp_fn = std::function<event_time(const T&)>;

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
    return {};
  }

  result<void> process(int, batch_ptr in, output& out) override {
    auto& records = records_of<T>(*in);
    auto kept = make_batch<T>(records.size());
    const auto wm = detail::ticks(current_watermark());
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
      auto& q = queues_[static_cast<std::size_t>(kg - info_.key_groups.first)];
      q.emplace_back(expires, std::move(key));
      std::push_heap(q.begin(), q.end(), later);
      kept->records.push_back(r);
    });
    if (late > 0)
      count_late(late, false);
    if (info_.metrics)
      task_metrics::add(info_.metrics->duplicates_dropped,
                        records.size() - late - kept->records.size());
    if (kept->records.empty())
      return {};
    return out.emit(0, std::move(kept));
  }

  /// Frees every key whose first record's event time + delay the watermark passed. Each
  /// key has exactly one queue entry (written once, never refreshed), so this is exact.
  result<void> on_watermark(event_time wm, output&) override {
    const auto now = detail::ticks(wm);
    for (int kg = info_.key_groups.first; kg < info_.key_groups.last; ++kg) {
      auto& q = queues_[static_cast<std::size_t>(kg - info_.key_groups.first)];
      if (q.empty() || q.front().first >= now)
        continue; // leaves the group shared with a checkpoint still writing it
      auto& g = seen_.group(kg);
      while (!q.empty() && q.front().first < now) {
        std::pop_heap(q.begin(), q.end(), later);
        g.erase(q.back().second);
        seen_.note_change(kg, q.back().second);
        q.pop_back();
      }
    }
    return {};
  }

  /// Keys whose state is held.
  std::size_t state_size() const noexcept { return seen_.size(); }
  /// Records dropped as duplicates since `open`.
  std::uint64_t dropped_duplicates() const noexcept { return duplicates_; }

private:
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
};

} // namespace sluice
