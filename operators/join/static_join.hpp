#pragma once
/// The stream-static join: each record of a stream is looked up by key in an immutable
/// table loaded once per parallel instance in `open()` (Spark's stream-static join). The
/// table is the same on every instance, so the stream needs no partitioning by key.
#include "sluice/operators/join/join_common.hpp"
#include "sluice/operators/operator.hpp"
#include "sluice/operators/record_loop.hpp"

#include <functional>
#include <memory>
#include <utility>
#include <vector>

namespace sluice {

/// Input 0 carries `T`. `load()` returns the table (a `Table` with
/// `find(const K&) -> const std::vector<V>*`, e.g. `lookup_table<K, V>`); `key_fn(const T&)`
/// gives the lookup key. For each table row of the key, one `fn(const T&, const V&)` (or
/// `fn(const T&, const V*)`) result; in a left outer join a record without rows gives
/// `fn(const T&, nullptr)`, and in an inner join nothing.
///
/// The operator has no event-time behaviour: it neither buffers nor drops late records.
template <class T, class K, class V, class Table, class Out, class KeyFn, class F>
class static_join_operator final : public operator_base {
public:
  using loader = std::function<result<std::shared_ptr<const Table>>()>;

  static_join_operator(loader load, join_type type, KeyFn key_fn, F fn)
    : load_(std::move(load)), type_(type), key_fn_(std::move(key_fn)), fn_(std::move(fn)) {}

  /// Loads the table. A load error (missing file, malformed row, ...) fails `open` and with
  /// it the job, with the loader's message (the task adds the operator's name).
  result<void> open(const operator_info& info) override {
    info_ = info;
    if (type_ == join_type::left_outer && !outer_join_function<F, T, V>)
      return make_error(error_code::invalid_option,
                        "static join: a left outer join needs a function (const T&, const V*)");
    auto table = load_();
    if (!table)
      return std::move(table).error();
    table_ = std::move(*table);
    return {};
  }

  result<void> process(int, batch_ptr in, output& out) override {
    auto& records = records_of<T>(*in);
    auto produced = make_batch<Out>(records.size());
    for_each_record(std::as_const(records), [&](const T& r) {
      const auto* rows = table_->find(static_cast<const K&>(key_fn_(r)));
      if (rows) {
        for (const auto& v : *rows)
          produced->records.push_back(detail::call_join_matched(fn_, r, v));
      } else if (type_ == join_type::left_outer) {
        if constexpr (outer_join_function<F, T, V>)
          produced->records.push_back(fn_(r, static_cast<const V*>(nullptr)));
      }
    });
    if (produced->records.empty())
      return {};
    return out.emit(0, std::move(produced));
  }

  result<void> close() override {
    table_.reset();
    return {};
  }

  /// The loaded table (null before `open`).
  const Table* table() const noexcept { return table_.get(); }

private:
  loader load_;
  join_type type_;
  KeyFn key_fn_;
  F fn_;
  std::shared_ptr<const Table> table_;
};

} // namespace sluice
