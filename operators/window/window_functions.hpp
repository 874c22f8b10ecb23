#pragma once
/// What a window computes: incremental aggregations (built-in `count`, `sum`, `min`,
/// `max`, `avg`, or a user aggregate) and full-window `process` functions.
///
/// The window operator talks to both through one small interface, a *window function*:
/// `create() -> acc`, `add(acc&, const T&)`, `merge(acc&, acc&&)` (sessions only) and
/// `fire(key, window, acc, firing, watermark, out)`. An aggregate keeps one accumulator
/// per window, so its state is O(1) per window; `process` keeps every element.
#include "sluice/core/key_group.hpp"
#include "sluice/operators/collector.hpp"
#include "sluice/operators/window/window_result.hpp"

#include <cstdint>
#include <functional>
#include <limits>
#include <type_traits>
#include <utility>
#include <vector>

namespace sluice {

namespace detail {

/// The key of non-keyed windows (`window_all`): every record has the same one.
struct window_all_key {
  friend constexpr bool operator==(window_all_key, window_all_key) noexcept { return true; }
};

} // namespace detail

template <>
struct key_hash<detail::window_all_key> {
  std::uint64_t operator()(detail::window_all_key) const noexcept { return 0; }
};

/// Built-in window aggregations. Each is a user aggregate like any other: `create`, `add`,
/// `merge` and `result`.
namespace window_aggregates {

/// The number of records in the window.
struct count {
  std::uint64_t create() const noexcept { return 0; }
  template <class T>
  void add(std::uint64_t& acc, const T&) const noexcept {
    ++acc;
  }
  void merge(std::uint64_t& acc, std::uint64_t other) const noexcept { acc += other; }
  std::uint64_t result(std::uint64_t acc) const noexcept { return acc; }
};

/// The sum of `fn(record)`, in the type `fn` returns.
template <class T, class F>
struct sum {
  using value_type = std::decay_t<std::invoke_result_t<const F&, const T&>>;
  F fn;
  value_type create() const { return value_type{}; }
  void add(value_type& acc, const T& r) const { acc += std::invoke(fn, r); }
  void merge(value_type& acc, const value_type& other) const { acc += other; }
  value_type result(const value_type& acc) const { return acc; }
};

/// The smallest (`Max == false`) or largest `fn(record)`. A window exists only once a
/// record arrived, so the result always has a value.
template <class T, class F, bool Max>
struct extremum {
  using value_type = std::decay_t<std::invoke_result_t<const F&, const T&>>;
  struct acc_type {
    value_type value{};
    bool set = false;
    template <class Inspector>
    friend bool inspect(Inspector& f, acc_type& x) {
      return f.object("extremum").fields(f.field("value", x.value), f.field("set", x.set));
    }
  };
  F fn;
  acc_type create() const { return {}; }
  void take(acc_type& acc, const value_type& v) const {
    if (!acc.set || (Max ? acc.value < v : v < acc.value)) {
      acc.value = v;
      acc.set = true;
    }
  }
  void add(acc_type& acc, const T& r) const { take(acc, std::invoke(fn, r)); }
  void merge(acc_type& acc, const acc_type& other) const {
    if (other.set)
      take(acc, other.value);
  }
  value_type result(const acc_type& acc) const { return acc.value; }
};
template <class T, class F>
using min = extremum<T, F, false>;
template <class T, class F>
using max = extremum<T, F, true>;

/// The arithmetic mean of `fn(record)` as a double.
template <class T, class F>
struct avg {
  struct acc_type {
    double sum = 0;
    std::uint64_t count = 0;
    template <class Inspector>
    friend bool inspect(Inspector& f, acc_type& x) {
      return f.object("avg").fields(f.field("sum", x.sum), f.field("count", x.count));
    }
  };
  F fn;
  acc_type create() const { return {}; }
  void add(acc_type& acc, const T& r) const {
    acc.sum += static_cast<double>(std::invoke(fn, r));
    ++acc.count;
  }
  void merge(acc_type& acc, const acc_type& other) const {
    acc.sum += other.sum;
    acc.count += other.count;
  }
  double result(const acc_type& acc) const {
    return acc.count == 0 ? 0.0 : acc.sum / static_cast<double>(acc.count);
  }
};

} // namespace window_aggregates

/// True when `Agg` can merge accumulators, as session windows need: `merge(Acc&, const
/// Acc&)` (in place) or `merge(const Acc&, const Acc&) -> Acc` (Flink's form).
template <class Agg, class Acc>
concept mergeable_aggregate =
  requires(const Agg& a, Acc& x, const Acc& y) { a.merge(x, y); } ||
  requires(Agg& a, Acc& x, const Acc& y) { a.merge(x, y); };

/// Adapts a user aggregate to the window-function interface; emits `window_result<KOut, V>`
/// (`KOut = void` for non-keyed windows).
template <class KOut, class T, class Agg>
class aggregate_window_function {
public:
  using acc_type = std::decay_t<decltype(std::declval<Agg&>().create())>;
  using value_type = std::decay_t<decltype(std::declval<Agg&>().result(std::declval<const acc_type&>()))>;
  using output_type = window_result<KOut, value_type>;

  explicit aggregate_window_function(Agg agg) : agg_(std::move(agg)) {}

  acc_type create() { return agg_.create(); }
  void add(acc_type& acc, const T& r) { agg_.add(acc, r); }
  void merge(acc_type& acc, acc_type&& other) {
    if constexpr (std::is_void_v<decltype(agg_.merge(acc, std::as_const(other)))>)
      agg_.merge(acc, std::as_const(other));
    else
      acc = agg_.merge(std::as_const(acc), std::as_const(other));
  }
  template <class K>
  void fire(const K& key, time_window w, const acc_type& acc, std::uint32_t firing, event_time,
            std::vector<output_type>& out) {
    if constexpr (std::is_void_v<KOut>)
      out.push_back(output_type{w.start, w.end, agg_.result(acc), firing > 0, firing});
    else
      out.push_back(output_type{key, w.start, w.end, agg_.result(acc), firing > 0, firing});
  }

private:
  Agg agg_;
};

/// Adapts a full-window function, `fn(const window_context<KOut>&, const std::vector<T>&,
/// collector<U>&)`, to the window-function interface. Keeps every element of the window
/// in arrival order; a session merge appends the absorbed sessions' lists to the list of the
/// oldest session involved, then the new record.
template <class KOut, class T, class U, class F>
class process_window_function {
public:
  using acc_type = std::vector<T>;
  using output_type = U;

  explicit process_window_function(F fn) : fn_(std::move(fn)) {}

  acc_type create() { return {}; }
  void add(acc_type& acc, const T& r) { acc.push_back(r); }
  void merge(acc_type& acc, acc_type&& other) {
    acc.insert(acc.end(), std::make_move_iterator(other.begin()),
               std::make_move_iterator(other.end()));
  }
  template <class K>
  void fire(const K& key, time_window w, const acc_type& acc, std::uint32_t firing,
            event_time wm, std::vector<U>& out) {
    collector<U> c{out};
    if constexpr (std::is_void_v<KOut>) {
      window_context<void> ctx{w, firing, wm};
      std::invoke(fn_, std::as_const(ctx), acc, c);
    } else {
      window_context<KOut> ctx{key, w, firing, wm};
      std::invoke(fn_, std::as_const(ctx), acc, c);
    }
  }

private:
  F fn_;
};

} // namespace sluice
