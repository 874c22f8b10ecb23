#pragma once
/// The records of the window tests (window_*test.cpp): `ev`, keyed by an int with its time
/// in microseconds, the window operators over it under the harness, and their results.
#include "sluice/core/codec/json.hpp"
#include "sluice/operators/harness.hpp"
#include "sluice/operators/window/session_operator.hpp"
#include "sluice/operators/window/window_operator.hpp"
#include "sluice/tests/engine/test_helpers.hpp"

#include <algorithm>
#include <cstdint>
#include <memory>
#include <ostream>
#include <sstream>
#include <string>
#include <vector>

namespace sluice::test::win {

/// An event: `ts` in microseconds since the epoch (may be negative).
struct ev {
  int key = 0;
  std::int64_t ts = 0;
  std::int64_t value = 0;
  friend bool operator==(const ev&, const ev&) = default;
  friend auto operator<=>(const ev&, const ev&) = default;
};
inline std::ostream& operator<<(std::ostream& os, const ev& e) {
  return os << "{" << e.key << " @" << e.ts << "us = " << e.value << "}";
}

inline constexpr std::int64_t sec = 1'000'000;
inline event_time at(std::int64_t us) { return event_time{duration{us}}; }

inline event_time ts_of(const ev& e) { return at(e.ts); }
inline int key_of(const ev& e) { return e.key; }
inline std::int64_t value_of(const ev& e) { return e.value; }

using key_fn_t = int (*)(const ev&);
using ts_fn_t = event_time (*)(const ev&);

/// A harness around a keyed window operator over `ev` with aggregate `agg`.
template <class Assigner, class Agg>
std::unique_ptr<operator_base> agg_op(Assigner a, Agg agg, window_options o = {}) {
  using fn = aggregate_window_function<int, ev, Agg>;
  if constexpr (is_merging_assigner<Assigner>)
    return std::make_unique<session_window_operator<int, ev, key_fn_t, ts_fn_t, Assigner, fn>>(
      key_of, ts_of, a, fn{agg}, o);
  else
    return std::make_unique<window_operator<int, ev, key_fn_t, ts_fn_t, Assigner, fn>>(
      key_of, ts_of, a, fn{agg}, o);
}

template <class Assigner, class F>
std::unique_ptr<operator_base> process_op(Assigner a, F f, window_options o = {}) {
  using fn = process_window_function<int, ev, std::string, F>;
  if constexpr (is_merging_assigner<Assigner>)
    return std::make_unique<session_window_operator<int, ev, key_fn_t, ts_fn_t, Assigner, fn>>(
      key_of, ts_of, a, fn{f}, o);
  else
    return std::make_unique<window_operator<int, ev, key_fn_t, ts_fn_t, Assigner, fn>>(
      key_of, ts_of, a, fn{f}, o);
}

template <class V>
using res = window_result<int, V>;
using count_res = res<std::uint64_t>;

/// A result on time (firing 0) or as the n-th update.
template <class V>
res<V> r(int key, std::int64_t start, std::int64_t end, V v, std::uint32_t firing = 0) {
  return res<V>{key, at(start), at(end), v, firing > 0, firing};
}

template <class T>
std::vector<T> sorted(std::vector<T> v) {
  std::sort(v.begin(), v.end());
  return v;
}

/// Records every element as "key:[start,end)#firing:v1,v2,..." in element order.
inline void list_window(const window_context<int>& w, const std::vector<ev>& elements,
                        collector<std::string>& out) {
  std::ostringstream os;
  os << w.key() << ":[" << w.start().time_since_epoch().count() / sec << ","
     << w.end().time_since_epoch().count() / sec << ")#" << w.firing() << ":";
  for (std::size_t i = 0; i < elements.size(); ++i)
    os << (i ? "," : "") << elements[i].value;
  out.collect(os.str());
}

} // namespace sluice::test::win

// BOOST_TEST prints these in failures.
namespace sluice {
template <class K, class V>
std::ostream& boost_test_print_type(std::ostream& os, const window_result<K, V>& x) {
  return os << codec::to_json_line(x);
}
} // namespace sluice
