#pragma once
/// Running per-key aggregations: `reduce` and `aggregate` emit the updated result for
/// every input record (Flink's keyed `reduce`).
#include "operators/keyed_state.hpp"
#include "operators/operator.hpp"

#include <utility>

namespace sluice {

/// `reduce(fn)`: `fn(accumulated, next) -> accumulated`, per key.
template <class K, class T, class KeyFn, class F>
class reduce_operator final : public operator_base {
public:
  reduce_operator(KeyFn key_fn, F fn) : key_fn_(std::move(key_fn)), fn_(std::move(fn)) {}

  result<void> open(const operator_info& info) override {
    info_ = info;
    state_ = keyed_state_table<K, T>{info.key_groups};
    return {};
  }

  result<void> process(int, batch_ptr in, output& out) override {
    auto& records = records_of<T>(*in);
    auto updates = make_batch<T>(records.size());
    for (const auto& r : records) {
      K key = key_fn_(r);
      auto& group = state_.group(key_group_of(key_hash<K>{}(key), info_.max_key_groups));
      auto [it, fresh] = group.try_emplace(std::move(key), r);
      if (!fresh)
        it->second = fn_(std::as_const(it->second), r);
      updates->records.push_back(it->second);
    }
    return out.emit(0, std::move(updates));
  }

  const keyed_state_table<K, T>& state() const noexcept { return state_; }

private:
  KeyFn key_fn_;
  F fn_;
  keyed_state_table<K, T> state_;
};

/// `aggregate(agg)`: an accumulator per key. `agg` provides `create() -> Acc`,
/// `add(Acc&, const T&)` and `result(const K&, const Acc&) -> R` or `result(const Acc&) -> R`.
template <class K, class T, class Acc, class R, class KeyFn, class Agg>
class aggregate_operator final : public operator_base {
public:
  aggregate_operator(KeyFn key_fn, Agg agg) : key_fn_(std::move(key_fn)), agg_(std::move(agg)) {}

  result<void> open(const operator_info& info) override {
    info_ = info;
    state_ = keyed_state_table<K, Acc>{info.key_groups};
    return {};
  }

  result<void> process(int, batch_ptr in, output& out) override {
    auto& records = records_of<T>(*in);
    auto results = make_batch<R>(records.size());
    for (const auto& r : records) {
      K key = key_fn_(r);
      auto& group = state_.group(key_group_of(key_hash<K>{}(key), info_.max_key_groups));
      auto it = group.find(key);
      if (it == group.end())
        it = group.emplace(key, agg_.create()).first;
      agg_.add(it->second, r);
      if constexpr (requires { agg_.result(it->first, it->second); })
        results->records.push_back(agg_.result(it->first, it->second));
      else
        results->records.push_back(agg_.result(it->second));
    }
    return out.emit(0, std::move(results));
  }

private:
  KeyFn key_fn_;
  Agg agg_;
  keyed_state_table<K, Acc> state_;
};

} // namespace sluice
