#pragma once
/// Running per-key aggregations: `reduce` and `aggregate` emit the updated result for
/// every input record (Flink's keyed `reduce`). Under a Spark output mode they emit at each
/// epoch's end instead: the keys changed in the epoch (`update`) or every key (`complete`).
#include "sluice/operators/keyed_state.hpp"
#include "sluice/operators/operator.hpp"
#include "sluice/operators/record_loop.hpp"
#include "sluice/operators/state/snapshot_codec.hpp"

#include <utility>
#include <vector>

namespace sluice {

namespace detail {

/// Spark's state-operator figures of a running aggregation: its keys and their size.
template <class Table>
void report_state(const Table& state, operator_epoch_stats& stats) {
  using K = typename Table::key_type;
  using V = typename Table::mapped_type;
  const auto total = state.size();
  stats.state = state_epoch_report{0, {}, total, 0, 0, 0, total * (sizeof(K) + sizeof(V) + 32)};
}

/// The keys a running aggregation changed in the current epoch, and its epoch report.
template <class K>
class epoch_changes {
public:
  void open(key_group_range range) { changed_ = keyed_state_table<K, char>{range}; }
  void mark(int key_group, const K& key) { changed_.group(key_group).try_emplace(key, 0); }

  /// Emits, for the keys changed in the epoch (`update`) or all keys of `state`
  /// (`complete`), `result(key, value)`; then reports and forgets the epoch's changes.
  template <class Table, class F>
  result<void> end_epoch(output_mode mode, const Table& state, F&& result,
                         output& out, operator_epoch_stats& stats) {
    using R = std::decay_t<std::invoke_result_t<F&, const K&, const typename Table::mapped_type&>>;
    std::vector<R> rows;
    std::uint64_t updated = 0;
    for (int g = state.range().first; g < state.range().last; ++g) {
      auto& changed = changed_.group(g);
      updated += changed.size();
      if (mode == output_mode::complete) {
        for (auto& [key, value] : state.group(g))
          rows.push_back(result(key, value));
      } else {
        for (auto& [key, flag] : changed)
          rows.push_back(result(key, state.group(g).at(key)));
      }
      changed.clear();
    }
    report_state(state, stats);
    stats.state->rows_updated = updated;
    if (rows.empty())
      return {};
    return out.emit(0, std::make_shared<batch<R>>(std::move(rows)));
  }

private:
  keyed_state_table<K, char> changed_;
};

} // namespace detail

/// `reduce(fn)`: `fn(accumulated, next) -> accumulated`, per key.
template <class K, class T, class KeyFn, class F>
class reduce_operator final : public operator_base {
public:
  reduce_operator(KeyFn key_fn, F fn) : key_fn_(std::move(key_fn)), fn_(std::move(fn)) {}

  result<void> open(const operator_info& info) override {
    info_ = info;
    state_ = flat_state_table<K, T>{info.key_groups};
    changes_.open(info.key_groups);
    return {};
  }

  result<void> process(int, batch_ptr in, output& out) override {
    auto& records = records_of<T>(*in);
    auto updates = make_batch<T>(info_.mode ? 0 : records.size());
    for_each_record(std::as_const(records), [&](const T& r) {
      K key = key_fn_(r);
      const int g = key_group_of(key_hash<K>{}(key), info_.max_key_groups);
      auto& group = state_.group(g);
      auto [it, fresh] = group.try_emplace(std::move(key), r);
      if (!fresh)
        it->second = fn_(std::as_const(it->second), r);
      state_.note_change(g, it->first);
      if (info_.mode)
        changes_.mark(g, it->first);
      else
        updates->records.push_back(it->second);
    });
    if (info_.mode)
      return {};
    return out.emit(0, std::move(updates));
  }

  result<void> end_epoch(std::int64_t, output& out, operator_epoch_stats& stats) override {
    if (!info_.mode) {
      detail::report_state(state_, stats);
      return {};
    }
    return changes_.end_epoch(
      *info_.mode, state_, [](const K&, const T& v) { return v; }, out, stats);
  }

  const flat_state_table<K, T>& state() const noexcept { return state_; }

  bool can_checkpoint() const noexcept override {
    return detail::snapshottable_v<K> && detail::snapshottable_v<T>;
  }
  result<void> snapshot(std::int64_t, snapshot_writer& w) override {
    if constexpr (detail::snapshottable_v<K> && detail::snapshottable_v<T>)
      return checkpoints_.snapshot(state_, w);
    else
      return detail::not_snapshottable(info_.name);
  }
  result<void> restore(snapshot_reader& r) override {
    if constexpr (detail::snapshottable_v<K> && detail::snapshottable_v<T>)
      return checkpoints_.restore(state_, r, info_.name);
    else
      return detail::not_snapshottable(info_.name);
  }

private:
  KeyFn key_fn_;
  F fn_;
  flat_state_table<K, T> state_;
  detail::table_checkpoints<flat_state_table<K, T>> checkpoints_;
  detail::epoch_changes<K> changes_;
};

/// `aggregate(agg)`: an accumulator per key. `agg` provides `create() -> Acc`,
/// `add(Acc&, const T&)` and `result(const K&, const Acc&) -> R` or `result(const Acc&) -> R`.
template <class K, class T, class Acc, class R, class KeyFn, class Agg>
class aggregate_operator final : public operator_base {
public:
  aggregate_operator(KeyFn key_fn, Agg agg) : key_fn_(std::move(key_fn)), agg_(std::move(agg)) {}

  result<void> open(const operator_info& info) override {
    info_ = info;
    state_ = flat_state_table<K, Acc>{info.key_groups};
    changes_.open(info.key_groups);
    return {};
  }

  result<void> process(int, batch_ptr in, output& out) override {
    auto& records = records_of<T>(*in);
    auto results = make_batch<R>(info_.mode ? 0 : records.size());
    for_each_record(std::as_const(records), [&](const T& r) {
      K key = key_fn_(r);
      const int g = key_group_of(key_hash<K>{}(key), info_.max_key_groups);
      auto& group = state_.group(g);
      auto it = group.find(key);
      if (it == group.end())
        it = group.emplace(key, agg_.create()).first;
      agg_.add(it->second, r);
      state_.note_change(g, it->first);
      if (info_.mode)
        changes_.mark(g, it->first);
      else
        results->records.push_back(result_of(it->first, it->second));
    });
    if (info_.mode)
      return {};
    return out.emit(0, std::move(results));
  }

  result<void> end_epoch(std::int64_t, output& out, operator_epoch_stats& stats) override {
    if (!info_.mode) {
      detail::report_state(state_, stats);
      return {};
    }
    return changes_.end_epoch(
      *info_.mode, state_, [this](const K& k, const Acc& a) { return result_of(k, a); }, out,
      stats);
  }

  bool can_checkpoint() const noexcept override {
    return detail::snapshottable_v<K> && detail::snapshottable_v<Acc>;
  }
  result<void> snapshot(std::int64_t, snapshot_writer& w) override {
    if constexpr (detail::snapshottable_v<K> && detail::snapshottable_v<Acc>)
      return checkpoints_.snapshot(state_, w);
    else
      return detail::not_snapshottable(info_.name);
  }
  result<void> restore(snapshot_reader& r) override {
    if constexpr (detail::snapshottable_v<K> && detail::snapshottable_v<Acc>)
      return checkpoints_.restore(state_, r, info_.name);
    else
      return detail::not_snapshottable(info_.name);
  }

private:
  R result_of(const K& key, const Acc& acc) {
    if constexpr (requires { agg_.result(key, acc); })
      return agg_.result(key, acc);
    else
      return agg_.result(acc);
  }

  KeyFn key_fn_;
  Agg agg_;
  flat_state_table<K, Acc> state_;
  detail::table_checkpoints<flat_state_table<K, Acc>> checkpoints_;
  detail::epoch_changes<K> changes_;
};

} // namespace sluice
