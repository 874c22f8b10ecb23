#pragma once
/// The fluent join API: interval joins of two keyed streams and stream-static joins.
///
/// ```cpp
/// // Each click with the impressions of its ad up to 10 s before it (bounds inclusive).
/// auto joined = clicks.key_by(&click::ad).interval_join(impressions.key_by(&impression::ad))
///                 .between(-10s, 0s)
///                 .left_outer()
///                 .apply([](const click& c, const impression* i) { return ...; });
///
/// // Each transaction with its account, looked up in a file loaded at open.
/// auto enriched = txns.join_static(
///   static_table<std::uint64_t, account>::from_file("accounts.csv", sources::file_format::csv,
///                                                   [](const account& a) { return a.id; }),
///   [](const txn& t) { return t.account; },
///   [](const txn& t, const account& a) { return ...; });
/// ```
///
/// Semantics, state and late data: docs/joins.md.
#include "sluice/api/stream.hpp"
#include "sluice/operators/join/interval_join.hpp"
#include "sluice/operators/join/static_join.hpp"
#include "sluice/sources/static_table.hpp"

#include <algorithm>
#include <string>
#include <type_traits>
#include <utility>

namespace sluice {

namespace detail {

/// `std::chrono` durations of any unit, as `sluice::duration` (µs); finer units truncate.
template <class Rep, class Period>
constexpr duration to_join_bound(std::chrono::duration<Rep, Period> d) {
  return std::chrono::duration_cast<duration>(d);
}

} // namespace detail

/// An interval join with its bounds set: choose the type, then `apply` the join function.
template <class K, class L, class KeyL, class R, class KeyR>
class bounded_interval_join {
public:
  bounded_interval_join(keyed_stream<K, L, KeyL> left, keyed_stream<K, R, KeyR> right,
                        interval_join_spec spec)
    : left_(std::move(left)), right_(std::move(right)), spec_(spec) {}

  /// Also emits each left row that never matched, once, with no right row, when the
  /// watermark passes `l.ts + upper` (or at the end of input). The join function must take
  /// `(const L&, const R*)`.
  bounded_interval_join left_outer() const {
    auto copy = *this;
    copy.spec_.type = join_type::left_outer;
    return copy;
  }

  /// Adds the join node: `fn(const L&, const R&) -> Out` for an inner join, or
  /// `fn(const L&, const R*) -> Out` (null: no match) for either type.
  ///
  /// Event time of the result: a `join_result<L, R>` stream gets max(l.ts, r.ts) (l.ts for
  /// an unmatched row), as Flink assigns; any other `Out` has none until declared with
  /// `.with_timestamps(fn)`, since Sluice keeps event time out of the records.
  template <class F>
  auto apply(F fn) const {
    if constexpr (std::is_invocable_v<F&, const L&, const R*>) {
      // accepted for both join types
    } else {
      static_assert(std::is_invocable_v<F&, const L&, const R&>,
                    "interval_join().apply: the join function must be "
                    "(const L&, const R&) -> Out for an inner join, or "
                    "(const L&, const R*) -> Out (nullptr: no match) for inner or left outer");
    }
    using Out = detail::join_output<F, L, R>;
    static_assert(!std::is_void_v<Out>, "interval_join().apply: the join function must return "
                                        "the output record");
    auto& b = left_.input().builder();
    node_spec spec;
    spec.name = b->unique_name("interval_join");
    spec.kind_name = "interval_join";
    spec.role.stream_join = true;
    spec.role.outer_join = spec_.type == join_type::left_outer;
    spec.role.stateful = true;
    spec.role.event_time_state = true;
    spec.description = std::string{spec_.type == join_type::inner ? "inner" : "left outer"} +
                       " interval join [" + std::to_string(spec_.lower.count()) + "us, " +
                       std::to_string(spec_.upper.count()) + "us]";
    spec.inputs = {record_type_of<L>(), record_type_of<R>()};
    spec.outputs = {port_spec::of<Out>()};
    spec.state = {"interval join", {record_type_of<K>(), record_type_of<L>(), record_type_of<R>()}};
    const auto ts_l = left_.input().timestamps();
    const auto ts_r = right_.input().timestamps();
    if (spec_.lower > spec_.upper)
      b->g.record_error(make_error(error_code::invalid_option,
                                   "interval_join '" + spec.name + "': between(" +
                                     std::to_string(spec_.lower.count()) + "us, " +
                                     std::to_string(spec_.upper.count()) +
                                     "us): the lower bound exceeds the upper bound"));
    if (!ts_l || !ts_r)
      b->g.record_error(make_error(
        error_code::invalid_graph,
        "interval_join '" + spec.name + "': the " + (ts_l ? "right" : "left") +
          " input has no event time; give its source a watermark strategy or call "
          "with_timestamps() before key_by()"));
    if (spec_.type == join_type::left_outer && !outer_join_function<F, L, R>)
      b->g.record_error(make_error(error_code::invalid_graph,
                                   "interval_join '" + spec.name +
                                     "': a left outer join needs a function (const L&, const R*)"));
    auto js = spec_;
    auto kl = left_.key_fn();
    auto kr = right_.key_fn();
    spec.make_operator = [js, kl, kr, ts_l, ts_r, fn]() -> std::unique_ptr<operator_base> {
      return make_interval_join_operator<K, L, R>(js, kl, kr, ts_l, ts_r, fn);
    };
    auto id = b->g.add(std::move(spec));
    left_.input().connect_ends(id, 0, left_.input().next_partitioning());
    right_.input().connect_ends(id, 1, right_.input().next_partitioning());
    stream<Out> out{b, {out_port{id, 0}}};
    if constexpr (std::is_same_v<Out, join_result<L, R>>) {
      if (ts_l && ts_r)
        out.set_timestamps([ts_l, ts_r](const join_result<L, R>& j) {
          return j.right ? std::max(ts_l(j.left), ts_r(*j.right)) : ts_l(j.left);
        });
    }
    return out;
  }

  /// `apply(to_join_result<L, R>{})`: a stream of `join_result<L, R>` with event time.
  stream<join_result<L, R>> apply() const { return apply(to_join_result<L, R>{}); }

  const interval_join_spec& spec() const noexcept { return spec_; }

private:
  keyed_stream<K, L, KeyL> left_;
  keyed_stream<K, R, KeyR> right_;
  interval_join_spec spec_;
};

/// `left.interval_join(right)`: set the bounds with `between`.
template <class K, class L, class KeyL, class R, class KeyR>
class interval_join_builder {
public:
  interval_join_builder(keyed_stream<K, L, KeyL> left, keyed_stream<K, R, KeyR> right)
    : left_(std::move(left)), right_(std::move(right)) {}

  /// Joins `l` and `r` of equal key when `l.ts + lower <= r.ts <= l.ts + upper`; both bounds
  /// inclusive and either may be negative. `lower > upper` is a graph error. Durations
  /// are truncated to microseconds. An inner join until `.left_outer()`.
  template <class Rep1, class Period1, class Rep2, class Period2>
  bounded_interval_join<K, L, KeyL, R, KeyR> between(std::chrono::duration<Rep1, Period1> lower,
                                                     std::chrono::duration<Rep2, Period2> upper) const {
    return {left_, right_,
            interval_join_spec{detail::to_join_bound(lower), detail::to_join_bound(upper),
                               join_type::inner}};
  }

private:
  keyed_stream<K, L, KeyL> left_;
  keyed_stream<K, R, KeyR> right_;
};

namespace detail {

/// The node behind `stream<T>::join_static`.
template <class T, class Table, class KeyFn, class F>
auto add_static_join(const stream<T>& in, Table table, KeyFn key_fn, F fn, join_type type) {
  using K = typename Table::key_type;
  using V = typename Table::row_type;
  static_assert(std::is_invocable_v<KeyFn&, const T&>,
                "join_static: the stream's key function must accept (const T&)");
  static_assert(std::is_convertible_v<std::invoke_result_t<KeyFn&, const T&>, K>,
                "join_static: the stream's key must convert to the table's key type K");
  if constexpr (std::is_invocable_v<F&, const T&, const V*>) {
    // accepted for both join types
  } else {
    static_assert(std::is_invocable_v<F&, const T&, const V&>,
                  "join_static: the join function must be (const T&, const V&) -> Out for an "
                  "inner join, or (const T&, const V*) -> Out (nullptr: no row) for inner or "
                  "left outer");
  }
  using Out = join_output<F, T, V>;
  static_assert(!std::is_void_v<Out>, "join_static: the join function must return a record");
  using table_type = typename Table::table_type;
  auto& b = in.builder();
  node_spec spec;
  spec.name = b->unique_name("static_join");
  spec.kind_name = "static_join";
  spec.description = std::string{type == join_type::inner ? "inner" : "left outer"} +
                     " join with " + table.describe();
  spec.inputs = {record_type_of<T>()};
  spec.outputs = {port_spec::of<Out>()};
  if (table.options().path.empty())
    b->g.record_error(make_error(error_code::invalid_option,
                                 "join_static '" + spec.name + "': the table path is empty"));
  if (type == join_type::left_outer && !outer_join_function<F, T, V>)
    b->g.record_error(make_error(error_code::invalid_graph,
                                 "join_static '" + spec.name +
                                   "': a left outer join needs a function (const T&, const V*)"));
  spec.make_operator = [table, key_fn, fn, type]() -> std::unique_ptr<operator_base> {
    return std::make_unique<static_join_operator<T, K, V, table_type, Out, KeyFn, F>>(
      [table] { return table.load(); }, type, key_fn, fn);
  };
  auto id = b->g.add(std::move(spec));
  in.connect_ends(id, 0, in.next_partitioning());
  stream<Out> out{b, {out_port{id, 0}}};
  // The left record's event time carries over when the result holds it.
  if constexpr (std::is_same_v<Out, join_result<T, V>>) {
    if (auto ts = in.timestamps())
      out.set_timestamps([ts](const join_result<T, V>& j) { return ts(j.left); });
  }
  return out;
}

} // namespace detail

} // namespace sluice
