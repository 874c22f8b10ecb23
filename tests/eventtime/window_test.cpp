// Event-time windows: assigners, firing, sessions and merging, lateness and side output,
// the built-in and user aggregations, full-window process functions, whole jobs, and a
// property test under random parallelism and batching.
#define BOOST_TEST_MODULE window_test
#include <boost/test/unit_test.hpp>

#include "../engine/test_helpers.hpp"
#include "sluice/api/job.hpp"
#include "sluice/core/codec/json.hpp"
#include "sluice/operators/harness.hpp"
#include "sluice/operators/window/session_operator.hpp"
#include "sluice/operators/window/window_operator.hpp"
#include "sluice/sinks/memory.hpp"
#include "sluice/sources/collection.hpp"
#include "sluice/sources/watermarks.hpp"

#include <algorithm>
#include <cstdint>
#include <limits>
#include <map>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <tuple>
#include <vector>

using namespace sluice;
using namespace sluice::test;

namespace {

/// An event: `ts` in microseconds since the epoch (may be negative).
struct ev {
  int key = 0;
  std::int64_t ts = 0;
  std::int64_t value = 0;
  friend bool operator==(const ev&, const ev&) = default;
  friend auto operator<=>(const ev&, const ev&) = default;
};
std::ostream& operator<<(std::ostream& os, const ev& e) {
  return os << "{" << e.key << " @" << e.ts << "us = " << e.value << "}";
}

constexpr std::int64_t sec = 1'000'000;
event_time at(std::int64_t us) { return event_time{duration{us}}; }

event_time ts_of(const ev& e) { return at(e.ts); }
int key_of(const ev& e) { return e.key; }
std::int64_t value_of(const ev& e) { return e.value; }

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

std::string describe(const std::vector<time_window>& ws) {
  std::ostringstream os;
  for (auto& w : ws)
    os << "[" << w.start.time_since_epoch().count() << "," << w.end.time_since_epoch().count()
       << ")";
  return os.str();
}

template <class A>
std::string windows_of(const A& a, std::int64_t ts) {
  std::vector<time_window> out;
  a.assign(at(ts), [&](time_window w) { out.push_back(w); });
  return describe(out);
}

/// Records every element as "key:[start,end)#firing:v1,v2,..." in element order.
void list_window(const window_context<int>& w, const std::vector<ev>& elements,
                        collector<std::string>& out) {
  std::ostringstream os;
  os << w.key() << ":[" << w.start().time_since_epoch().count() / sec << ","
     << w.end().time_since_epoch().count() / sec << ")#" << w.firing() << ":";
  for (std::size_t i = 0; i < elements.size(); ++i)
    os << (i ? "," : "") << elements[i].value;
  out.collect(os.str());
}

/// Sums a counter over every task whose chain contains the node `name`.
std::uint64_t sum_over(const std::vector<task_stats>& all, const std::string& name,
                       std::uint64_t task_stats::*field) {
  std::uint64_t n = 0;
  bool found = false;
  for (auto& s : all)
    if (s.chain.find(name) != std::string::npos) {
      n += s.*field;
      found = true;
    }
  BOOST_TEST(found, "no task runs '" << name << "'");
  return n;
}

} // namespace

// BOOST_TEST prints these in failures.
namespace sluice {
template <class K, class V>
std::ostream& boost_test_print_type(std::ostream& os, const window_result<K, V>& x) {
  return os << codec::to_json_line(x);
}
} // namespace sluice

// ---------------------------------------------------------------------------------------

BOOST_AUTO_TEST_SUITE(assigners)

BOOST_AUTO_TEST_CASE(tumbling_floors_towards_minus_infinity_with_offset) {
  windows::tumbling t{.size = std::chrono::seconds{10}};
  BOOST_TEST(windows_of(t, 0) == "[0,10000000)");
  BOOST_TEST(windows_of(t, 10 * sec - 1) == "[0,10000000)");
  BOOST_TEST(windows_of(t, 10 * sec) == "[10000000,20000000)");
  // Negative event times: -1µs is in [-10s, 0), not in [0, 10s) as truncation would say.
  BOOST_TEST(windows_of(t, -1) == "[-10000000,0)");
  BOOST_TEST(windows_of(t, -10 * sec) == "[-10000000,0)");
  BOOST_TEST(windows_of(t, -10 * sec - 1) == "[-20000000,-10000000)");

  windows::tumbling shifted{.size = std::chrono::seconds{10}, .offset = std::chrono::seconds{3}};
  BOOST_TEST(windows_of(shifted, 2 * sec) == "[-7000000,3000000)");
  BOOST_TEST(windows_of(shifted, 3 * sec) == "[3000000,13000000)");
  BOOST_TEST(windows_of(shifted, -8 * sec) == "[-17000000,-7000000)");
  windows::tumbling back{.size = std::chrono::seconds{10}, .offset = -std::chrono::seconds{3}};
  BOOST_TEST(windows_of(back, 6 * sec) == "[-3000000,7000000)");
  BOOST_TEST(windows_of(back, 7 * sec) == "[7000000,17000000)");
}

BOOST_AUTO_TEST_CASE(sliding_assigns_every_window_that_contains_the_record) {
  windows::sliding s{.size = std::chrono::seconds{10}, .slide = std::chrono::seconds{5}};
  BOOST_TEST(windows_of(s, 7 * sec) == "[5000000,15000000)[0,10000000)");
  BOOST_TEST(windows_of(s, 5 * sec) == "[5000000,15000000)[0,10000000)");
  BOOST_TEST(windows_of(s, -1) == "[-5000000,5000000)[-10000000,0)");
  // A size that the slide does not divide: 4 windows hold ts 0.
  windows::sliding odd{.size = std::chrono::seconds{10}, .slide = std::chrono::seconds{3}};
  BOOST_TEST(windows_of(odd, 0) ==
             "[0,10000000)[-3000000,7000000)[-6000000,4000000)[-9000000,1000000)");
  // slide > size would leave gaps (validate() rejects it); assignment itself skips them.
  windows::sliding gappy{.size = std::chrono::seconds{2}, .slide = std::chrono::seconds{5}};
  BOOST_TEST(windows_of(gappy, 1 * sec) == "[0,2000000)");
  BOOST_TEST(windows_of(gappy, 3 * sec) == "");
}

BOOST_AUTO_TEST_CASE(invalid_options_are_named_errors) {
  auto msg = [](result<void> r) {
    auto e = require_error(std::move(r));
    BOOST_TEST((e.code == error_code::invalid_option));
    return e.message;
  };
  BOOST_TEST(msg(windows::tumbling{}.validate()) ==
             "tumbling window: size must be positive, got 0us");
  BOOST_TEST(msg(windows::tumbling{.size = -1s}.validate()) ==
             "tumbling window: size must be positive, got -1000000us");
  BOOST_TEST(msg(windows::tumbling{.size = 10s, .offset = 10s}.validate()) ==
             "tumbling window: |offset| must be less than the size, got offset 10000000us for "
             "size 10000000us");
  BOOST_TEST(msg(windows::sliding{.size = 10s}.validate()) ==
             "sliding window: slide must be positive, got 0us");
  BOOST_TEST(msg(windows::sliding{.size = 0s, .slide = 1s}.validate()) ==
             "sliding window: size must be positive, got 0us");
  BOOST_TEST(msg(windows::session{}.validate()) == "session window: gap must be positive, got 0us");
  BOOST_TEST((windows::tumbling{.size = 10s, .offset = -9s}.validate().has_value()));
  BOOST_TEST(msg(windows::sliding{.size = 10s, .slide = 15s}.validate()) ==
             "sliding window: slide 15000000us is larger than the size 10000000us; records "
             "between windows would belong to none");
  BOOST_TEST((windows::sliding{.size = 10s, .slide = 10s}.validate().has_value()));
}

BOOST_AUTO_TEST_CASE(absurd_window_counts_per_record_are_refused) {
  // --window 10m --slide 1us: 600 million windows per record, memory grows until killed.
  auto e = require_error(windows::sliding{.size = 10min, .slide = 1us}.validate());
  BOOST_TEST((e.code == error_code::invalid_option));
  BOOST_TEST(e.message == "sliding window: size 600000000us / slide 1us = 600000000 windows per "
                          "record, more than the limit of 10000 (windows::max_windows_per_record); "
                          "use a larger slide",
             e.message);
  // The limit itself is fine, one more is not (ceil(size / slide) windows hold a record).
  BOOST_TEST((windows::sliding{.size = 10s, .slide = 1ms}.validate().has_value()));
  BOOST_TEST(windows::max_windows_per_record == 10'000);
  auto over = require_error(windows::sliding{.size = 10s + 1us, .slide = 1ms}.validate());
  BOOST_TEST(over.message.find("10001 windows per record") != std::string::npos, over.message);
}

BOOST_AUTO_TEST_CASE(windows_near_the_ends_of_the_time_line_do_not_fit) {
  // A record whose windows would end after the last representable instant (or start before
  // the first) has no window: the operators treat it as malformed.
  const auto max = event_time::max(), min = event_time::min();
  windows::tumbling t{.size = 10min};
  BOOST_TEST(t.fits(at(0)));
  BOOST_TEST(t.fits(max - 20min));
  BOOST_TEST(!t.fits(max - 1s));
  BOOST_TEST(!t.fits(max));
  BOOST_TEST(!t.fits(min));
  windows::sliding s{.size = 10min, .slide = 5min};
  BOOST_TEST(s.fits(at(-5 * sec)));
  BOOST_TEST(!s.fits(max - 1s));
  BOOST_TEST(!s.fits(min + 1s));
  windows::session g{.gap = 1h};
  BOOST_TEST(g.fits(at(0), 1h));
  BOOST_TEST(!g.fits(max - 1min, 1h));
  BOOST_TEST(g.fits(min, 1h));
}

BOOST_AUTO_TEST_SUITE_END()

// ---------------------------------------------------------------------------------------

BOOST_AUTO_TEST_SUITE(tumbling)

BOOST_AUTO_TEST_CASE(fires_when_the_watermark_reaches_the_max_timestamp) {
  operator_harness h{agg_op(windows::tumbling{.size = 10s}, window_aggregates::count{})};
  require_ok(h.open());
  // Out of order within the watermark: nothing is late yet.
  require_ok(h.push(std::vector<ev>{{1, 9 * sec, 0}, {1, 1 * sec, 0}, {2, 5 * sec, 0}}));
  require_ok(h.push(std::vector<ev>{{1, 10 * sec, 0}, {1, 10 * sec - 1, 0}}));
  require_ok(h.watermark(at(10 * sec - 2)));
  BOOST_TEST(h.take<count_res>().empty());
  require_ok(h.watermark(at(10 * sec - 1)));
  BOOST_TEST(sorted(h.take<count_res>()) ==
               (std::vector<count_res>{r<std::uint64_t>(1, 0, 10 * sec, 3),
                                       r<std::uint64_t>(2, 0, 10 * sec, 1)}),
             boost::test_tools::per_element());
  auto& op = static_cast<window_operator<int, ev, key_fn_t, ts_fn_t, windows::tumbling,
                                         aggregate_window_function<int, ev, window_aggregates::count>>&>(
    h.op());
  BOOST_TEST(op.window_count() == 1u); // fired windows are freed at once without lateness
  BOOST_TEST(op.timer_count() == 1u);
  require_ok(h.end_input());
  BOOST_TEST(h.take<count_res>() ==
               (std::vector<count_res>{r<std::uint64_t>(1, 10 * sec, 20 * sec, 1)}),
             boost::test_tools::per_element());
  BOOST_TEST(op.window_count() == 0u);
  BOOST_TEST(h.metrics().late_records.load() == 0u);
}

BOOST_AUTO_TEST_CASE(one_watermark_fires_every_due_window_and_no_other) {
  operator_harness h{agg_op(windows::tumbling{.size = 1s}, window_aggregates::count{})};
  require_ok(h.open());
  std::vector<ev> in;
  for (int k = 0; k < 50; ++k)
    for (int w = 4; w >= 0; --w)
      in.push_back({k, w * sec + k, 0});
  require_ok(h.push(in));
  require_ok(h.watermark(at(3 * sec - 1)));
  auto fired = h.take<count_res>();
  BOOST_REQUIRE_EQUAL(fired.size(), 150u);
  std::map<std::int64_t, int> per_end;
  for (auto& x : fired)
    ++per_end[x.end.time_since_epoch().count()];
  BOOST_TEST((per_end == std::map<std::int64_t, int>{{sec, 50}, {2 * sec, 50}, {3 * sec, 50}}));
  require_ok(h.end_input());
  BOOST_TEST(h.take<count_res>().size() == 100u);
}

BOOST_AUTO_TEST_CASE(offset_and_negative_timestamps) {
  operator_harness h{agg_op(windows::tumbling{.size = 10s, .offset = 3s}, window_aggregates::sum<ev, decltype(&value_of)>{&value_of})};
  require_ok(h.open());
  require_ok(h.push(std::vector<ev>{{1, 2 * sec, 1}, {1, 4 * sec, 10}, {1, -1, 100},
                                    {1, -7 * sec, 1000}, {1, -7 * sec - 1, 10000}}));
  // [-17s, -7s) fires first, at -7s - 1µs.
  require_ok(h.watermark(at(-7 * sec - 1)));
  BOOST_TEST(h.take<res<std::int64_t>>() ==
               (std::vector<res<std::int64_t>>{r<std::int64_t>(1, -17 * sec, -7 * sec, 10000)}),
             boost::test_tools::per_element());
  require_ok(h.end_input());
  BOOST_TEST(h.take<res<std::int64_t>>() ==
               (std::vector<res<std::int64_t>>{r<std::int64_t>(1, -7 * sec, 3 * sec, 1101),
                                               r<std::int64_t>(1, 3 * sec, 13 * sec, 10)}),
             boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(results_print_as_json) {
  window_result<int, std::uint64_t> x{7, at(0), at(10 * sec), 3, false, 0};
  BOOST_TEST(codec::to_json_line(x) == R"({"key":7,"start":"1970-01-01T00:00:00Z","end":"1970-01-01T00:00:10Z","value":3,"is_update":false,"firing":0})");
  window_result<void, double> y{at(0), at(sec), 2.5, true, 1};
  BOOST_TEST(codec::to_json_line(y) == R"({"start":"1970-01-01T00:00:00Z","end":"1970-01-01T00:00:01Z","value":2.5,"is_update":true,"firing":1})");
}

BOOST_AUTO_TEST_SUITE_END()

// ---------------------------------------------------------------------------------------

BOOST_AUTO_TEST_SUITE(sliding)

BOOST_AUTO_TEST_CASE(sums_every_overlapping_window) {
  operator_harness h{agg_op(windows::sliding{.size = 10s, .slide = 5s},
                            window_aggregates::sum<ev, decltype(&value_of)>{&value_of})};
  require_ok(h.open());
  require_ok(h.push(std::vector<ev>{{1, 1 * sec, 1}, {1, 6 * sec, 10}, {1, 12 * sec, 100}}));
  require_ok(h.watermark(at(5 * sec - 1)));
  BOOST_TEST(h.take<res<std::int64_t>>() ==
               (std::vector<res<std::int64_t>>{r<std::int64_t>(1, -5 * sec, 5 * sec, 1)}),
             boost::test_tools::per_element());
  require_ok(h.end_input());
  BOOST_TEST(h.take<res<std::int64_t>>() ==
               (std::vector<res<std::int64_t>>{r<std::int64_t>(1, 0, 10 * sec, 11),
                                               r<std::int64_t>(1, 5 * sec, 15 * sec, 110),
                                               r<std::int64_t>(1, 10 * sec, 20 * sec, 100)}),
             boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(lateness_is_decided_per_window) {
  operator_harness h{agg_op(windows::sliding{.size = 10s, .slide = 5s}, window_aggregates::count{})};
  require_ok(h.open());
  require_ok(h.push(std::vector<ev>{{1, 1 * sec, 0}}));
  require_ok(h.watermark(at(10 * sec - 1))); // fires [-5,5) and [0,10)
  BOOST_TEST(h.take<count_res>().size() == 2u);
  // 7s: [0,10) is late but [5,15) is not, so the record is kept and not counted late.
  require_ok(h.push(std::vector<ev>{{1, 7 * sec, 0}}));
  BOOST_TEST(h.metrics().late_records.load() == 0u);
  // 3s: both of its windows have fired: late.
  require_ok(h.push(std::vector<ev>{{1, 3 * sec, 0}}));
  BOOST_TEST(h.metrics().late_records.load() == 1u);
  require_ok(h.end_input());
  BOOST_TEST(h.take<count_res>() ==
               (std::vector<count_res>{r<std::uint64_t>(1, 5 * sec, 15 * sec, 1)}),
             boost::test_tools::per_element());
}

BOOST_AUTO_TEST_SUITE_END()

// ---------------------------------------------------------------------------------------

BOOST_AUTO_TEST_SUITE(sessions)

using sum_agg = window_aggregates::sum<ev, decltype(&value_of)>;

BOOST_AUTO_TEST_CASE(sessions_close_after_the_gap) {
  operator_harness h{agg_op(windows::session{.gap = 10s}, sum_agg{&value_of})};
  require_ok(h.open());
  require_ok(h.push(std::vector<ev>{{1, 0, 1}, {1, 5 * sec, 2}, {1, 30 * sec, 4}, {2, 0, 8}}));
  require_ok(h.watermark(at(15 * sec - 1)));
  BOOST_TEST(sorted(h.take<res<std::int64_t>>()) ==
               (std::vector<res<std::int64_t>>{r<std::int64_t>(1, 0, 15 * sec, 3),
                                               r<std::int64_t>(2, 0, 10 * sec, 8)}),
             boost::test_tools::per_element());
  require_ok(h.end_input());
  BOOST_TEST(h.take<res<std::int64_t>>() ==
               (std::vector<res<std::int64_t>>{r<std::int64_t>(1, 30 * sec, 40 * sec, 4)}),
             boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(a_record_bridging_two_sessions_merges_them) {
  operator_harness h{agg_op(windows::session{.gap = 10s}, sum_agg{&value_of})};
  require_ok(h.open());
  require_ok(h.push(std::vector<ev>{{1, 0, 1}, {1, 15 * sec, 10}}));
  auto& op = static_cast<session_window_operator<int, ev, key_fn_t, ts_fn_t, windows::session,
                                                 aggregate_window_function<int, ev, sum_agg>>&>(
    h.op());
  BOOST_TEST(op.window_count() == 2u);
  require_ok(h.push(std::vector<ev>{{1, 8 * sec, 100}})); // [8s, 18s) touches both
  BOOST_TEST(op.window_count() == 1u);
  require_ok(h.watermark(at(10 * sec - 1))); // the stale timer of [0, 10s) fires nothing
  BOOST_TEST(h.take<res<std::int64_t>>().empty());
  require_ok(h.end_input());
  BOOST_TEST(h.take<res<std::int64_t>>() ==
               (std::vector<res<std::int64_t>>{r<std::int64_t>(1, 0, 25 * sec, 111)}),
             boost::test_tools::per_element());
  BOOST_TEST(op.window_count() == 0u);
  BOOST_TEST(op.timer_count() == 0u);
}

// Sessions opened out of order (a source instance that runs ahead leaves many open sessions
// per key): a key's sessions are kept in start order and a record's touching sessions are
// found from the newest back, stopping at the first that ends before it.
BOOST_AUTO_TEST_CASE(sessions_opened_out_of_order_merge_with_the_ones_they_touch) {
  operator_harness h{agg_op(windows::session{.gap = 10s}, sum_agg{&value_of})};
  require_ok(h.open());
  auto& op = static_cast<session_window_operator<int, ev, key_fn_t, ts_fn_t, windows::session,
                                                 aggregate_window_function<int, ev, sum_agg>>&>(
    h.op());
  require_ok(h.push(std::vector<ev>{
    {1, 100 * sec, 1}, {1, 0, 2}, {1, 50 * sec, 4}, {1, 200 * sec, 8}, {1, 20 * sec, 16}}));
  BOOST_TEST(op.window_count() == 5u);
  require_ok(h.push(std::vector<ev>{{1, 10 * sec, 32}})); // [10s, 20s) touches [0, 10s), [20s, 30s)
  BOOST_TEST(op.window_count() == 4u);
  require_ok(h.push(std::vector<ev>{{1, 55 * sec, 64}, {1, 150 * sec, 128}}));
  BOOST_TEST(op.window_count() == 5u);
  require_ok(h.watermark(at(65 * sec - 1)));
  BOOST_TEST(sorted(h.take<res<std::int64_t>>()) ==
               (std::vector<res<std::int64_t>>{r<std::int64_t>(1, 0, 30 * sec, 50),
                                               r<std::int64_t>(1, 50 * sec, 65 * sec, 68)}),
             boost::test_tools::per_element());
  require_ok(h.end_input());
  BOOST_TEST(sorted(h.take<res<std::int64_t>>()) ==
               (std::vector<res<std::int64_t>>{r<std::int64_t>(1, 100 * sec, 110 * sec, 1),
                                               r<std::int64_t>(1, 150 * sec, 160 * sec, 128),
                                               r<std::int64_t>(1, 200 * sec, 210 * sec, 8)}),
             boost::test_tools::per_element());
  BOOST_TEST(op.window_count() == 0u);
}

// In-order input (a record at or after the start of its key's last session) is matched
// against that session alone; everything else takes the binary search. Both must keep
// Flink's merging: a record at a session's end touches it, one at its start extends it,
// and a record that falls between two sessions merges them.
BOOST_AUTO_TEST_CASE(in_order_records_extend_the_last_session_and_a_bridge_still_merges) {
  operator_harness h{agg_op(windows::session{.gap = 10s}, sum_agg{&value_of})};
  require_ok(h.open());
  auto& op = static_cast<session_window_operator<int, ev, key_fn_t, ts_fn_t, windows::session,
                                                 aggregate_window_function<int, ev, sum_agg>>&>(
    h.op());
  require_ok(h.push(std::vector<ev>{{1, 0, 1}, {1, 10 * sec, 2}})); // at the end: [0, 20s)
  BOOST_TEST(op.window_count() == 1u);
  require_ok(h.push(std::vector<ev>{{1, 25 * sec, 4}})); // after the end: [25s, 35s)
  BOOST_TEST(op.window_count() == 2u);
  require_ok(h.push(std::vector<ev>{{1, 25 * sec, 8}})); // at the last one's start
  BOOST_TEST(op.window_count() == 2u);
  // [20s, 30s) starts before the last session: it touches [0, 20s) and [25s, 35s).
  require_ok(h.push(std::vector<ev>{{1, 20 * sec, 16}}));
  BOOST_TEST(op.window_count() == 1u);
  require_ok(h.push(std::vector<ev>{{1, 35 * sec, 32}, {1, 2 * sec, 64}})); // [0, 45s)
  BOOST_TEST(op.window_count() == 1u);
  require_ok(h.watermark(at(45 * sec - 2)));
  BOOST_TEST(h.take<res<std::int64_t>>().empty());
  require_ok(h.watermark(at(45 * sec - 1)));
  BOOST_TEST(h.take<res<std::int64_t>>() ==
               (std::vector<res<std::int64_t>>{r<std::int64_t>(1, 0, 45 * sec, 127)}),
             boost::test_tools::per_element());
  BOOST_TEST(op.window_count() == 0u);
  // The key comes back: a new session, and a record late for it is dropped and counted.
  require_ok(h.push(std::vector<ev>{{1, 100 * sec, 128}, {1, 20 * sec, 256}}));
  BOOST_TEST(op.window_count() == 1u);
  BOOST_TEST(h.metrics().late_records.load() == 1u);
  require_ok(h.end_input());
  BOOST_TEST(h.take<res<std::int64_t>>() ==
               (std::vector<res<std::int64_t>>{r<std::int64_t>(1, 100 * sec, 110 * sec, 128)}),
             boost::test_tools::per_element());
  BOOST_TEST(op.timer_count() == 0u);
}

BOOST_AUTO_TEST_CASE(touching_sessions_merge_and_element_lists_merge) {
  operator_harness h{process_op(windows::session{.gap = 10s}, list_window)};
  require_ok(h.open());
  // [0,10) and [10,20) touch: one session (Flink's TimeWindow.intersects). [25,35) stays.
  require_ok(h.push(std::vector<ev>{{1, 0, 1}, {1, 25 * sec, 3}, {1, 10 * sec, 2}}));
  // A late arrival that bridges [0,20) and [25,35): everything merges.
  require_ok(h.push(std::vector<ev>{{1, 18 * sec, 4}}));
  require_ok(h.end_input());
  BOOST_TEST(h.take<std::string>() == (std::vector<std::string>{"1:[0,35)#0:1,2,3,4"}),
             boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(dynamic_gaps_per_record) {
  auto gap = [](const ev& e) { return e.key == 1 ? duration{5s} : duration{20s}; };
  operator_harness h{agg_op(windows::session_dynamic{gap}, window_aggregates::count{})};
  require_ok(h.open());
  require_ok(h.push(std::vector<ev>{{1, 0, 0}, {1, 6 * sec, 0}, {2, 0, 0}, {2, 6 * sec, 0}}));
  require_ok(h.end_input());
  BOOST_TEST(sorted(h.take<count_res>()) ==
               (std::vector<count_res>{r<std::uint64_t>(1, 0, 5 * sec, 1),
                                       r<std::uint64_t>(1, 6 * sec, 11 * sec, 1),
                                       r<std::uint64_t>(2, 0, 26 * sec, 2)}),
             boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(a_non_positive_dynamic_gap_fails_with_a_named_error) {
  auto gap = [](const ev& e) { return duration{e.value}; };
  operator_harness h{agg_op(windows::session_dynamic{gap}, window_aggregates::count{}),
                     harness_options{.name = "sessions"}};
  require_ok(h.open());
  require_ok(h.push(std::vector<ev>{{1, 0, 5}}));
  auto e = require_error(h.push(std::vector<ev>{{1, 0, 0}}));
  BOOST_TEST((e.code == error_code::invalid_option));
  BOOST_TEST(e.message == "window 'sessions': the session gap function returned 0us; gaps "
                          "must be positive");
}

BOOST_AUTO_TEST_CASE(a_record_whose_windows_overflow_the_time_line_is_malformed) {
  // Epoch milliseconds near INT64_MAX / 1000, read as microseconds: the window arithmetic
  // overflowed into windows that end before they start. Now such a record fails the
  // operator as malformed, naming it; the records before it are kept.
  const std::int64_t near_max = std::numeric_limits<std::int64_t>::max() - 1000;
  auto check = [&](std::unique_ptr<operator_base> op) {
    operator_harness h{std::move(op), harness_options{.name = "w"}};
    require_ok(h.open());
    require_ok(h.push(std::vector<ev>{{1, 5 * sec, 1}}));
    auto e = require_error(h.push(std::vector<ev>{{1, near_max, 7}}));
    BOOST_TEST((e.code == error_code::malformed_record));
    BOOST_TEST(e.message.find("window 'w'") != std::string::npos, e.message);
    BOOST_TEST(e.message.find(std::to_string(near_max) + "us") != std::string::npos, e.message);
    BOOST_TEST(e.message.find("record: ") != std::string::npos, e.message);
    BOOST_TEST(e.message.find("record: {1 @" + std::to_string(near_max) + "us = 7}") !=
                 std::string::npos,
               e.message);
    for (const auto& r : h.take<count_res>())
      BOOST_TEST((r.start < r.end), "a window that ends before it starts");
  };
  BOOST_TEST_CONTEXT("tumbling") { check(agg_op(windows::tumbling{.size = 10min}, window_aggregates::count{})); }
  BOOST_TEST_CONTEXT("sliding") {
    check(agg_op(windows::sliding{.size = 10min, .slide = 5min}, window_aggregates::count{}));
  }
  BOOST_TEST_CONTEXT("session") { check(agg_op(windows::session{.gap = 1h}, window_aggregates::count{})); }
  BOOST_TEST_CONTEXT("dynamic session") {
    auto gap = [](const ev&) { return duration{1h}; };
    check(agg_op(windows::session_dynamic{gap}, window_aggregates::count{}));
  }
  BOOST_TEST_CONTEXT("under an output mode") {
    operator_harness h{agg_op(windows::tumbling{.size = 10min}, window_aggregates::count{}),
                       harness_options{.name = "w", .mode = output_mode::update}};
    require_ok(h.open());
    auto e = require_error(h.push(std::vector<ev>{{1, near_max, 7}}));
    BOOST_TEST((e.code == error_code::malformed_record));
    BOOST_TEST(e.message.find("window 'w'") != std::string::npos, e.message);
  }
}

BOOST_AUTO_TEST_CASE(user_aggregate_with_flink_style_merge) {
  struct spread {
    struct acc {
      std::int64_t lo = INT64_MAX, hi = INT64_MIN;
    };
    acc create() const { return {}; }
    void add(acc& a, const ev& e) const {
      a.lo = std::min(a.lo, e.value);
      a.hi = std::max(a.hi, e.value);
    }
    acc merge(const acc& a, const acc& b) const {
      return {std::min(a.lo, b.lo), std::max(a.hi, b.hi)};
    }
    std::int64_t result(const acc& a) const { return a.hi - a.lo; }
  };
  operator_harness h{agg_op(windows::session{.gap = 3s}, spread{})};
  require_ok(h.open());
  require_ok(h.push(std::vector<ev>{{1, 0, 50}, {1, 5 * sec, 10}, {1, 2 * sec, 70}}));
  require_ok(h.end_input());
  BOOST_TEST(h.take<res<std::int64_t>>() ==
               (std::vector<res<std::int64_t>>{r<std::int64_t>(1, 0, 8 * sec, 60)}),
             boost::test_tools::per_element());
}

BOOST_AUTO_TEST_SUITE_END()

// ---------------------------------------------------------------------------------------

BOOST_AUTO_TEST_SUITE(lateness)

BOOST_AUTO_TEST_CASE(late_records_are_dropped_and_counted) {
  operator_harness h{agg_op(windows::tumbling{.size = 10s}, window_aggregates::count{})};
  require_ok(h.open());
  require_ok(h.push(std::vector<ev>{{1, 1 * sec, 0}}));
  require_ok(h.watermark(at(10 * sec - 1)));
  BOOST_TEST(h.take<count_res>().size() == 1u);
  require_ok(h.push(std::vector<ev>{{1, 2 * sec, 0}, {1, 10 * sec, 0}}));
  BOOST_TEST(h.metrics().late_records.load() == 1u);
  BOOST_TEST(h.metrics().late_records_to_side_output.load() == 0u);
  BOOST_TEST(h.take<count_res>().empty());
  BOOST_TEST(h.take<ev>(1).empty());
  require_ok(h.end_input());
  BOOST_TEST(h.take<count_res>() ==
               (std::vector<count_res>{r<std::uint64_t>(1, 10 * sec, 20 * sec, 1)}),
             boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(late_records_go_to_the_side_output_when_asked) {
  operator_harness h{agg_op(windows::tumbling{.size = 10s}, window_aggregates::count{},
                            {.late_to_side_output = true})};
  require_ok(h.open());
  require_ok(h.push(std::vector<ev>{{1, 1 * sec, 0}}));
  require_ok(h.watermark(at(10 * sec - 1)));
  require_ok(h.push(std::vector<ev>{{1, 2 * sec, 7}, {2, 10 * sec - 1, 8}, {3, 12 * sec, 9}}));
  BOOST_TEST(h.take<ev>(1) == (std::vector<ev>{{1, 2 * sec, 7}, {2, 10 * sec - 1, 8}}),
             boost::test_tools::per_element());
  BOOST_TEST(h.metrics().late_records.load() == 2u);
  BOOST_TEST(h.metrics().late_records_to_side_output.load() == 2u);
}

BOOST_AUTO_TEST_CASE(allowed_lateness_refires_with_updates_then_drops) {
  operator_harness h{agg_op(windows::tumbling{.size = 10s}, window_aggregates::count{},
                            {.allowed_lateness = 5s, .late_to_side_output = true})};
  require_ok(h.open());
  require_ok(h.push(std::vector<ev>{{1, 1 * sec, 0}}));
  require_ok(h.watermark(at(10 * sec - 1)));
  BOOST_TEST(h.take<count_res>() == (std::vector<count_res>{r<std::uint64_t>(1, 0, 10 * sec, 1)}),
             boost::test_tools::per_element());
  require_ok(h.push(std::vector<ev>{{1, 2 * sec, 0}}));
  BOOST_TEST(h.take<count_res>() ==
               (std::vector<count_res>{r<std::uint64_t>(1, 0, 10 * sec, 2, 1)}),
             boost::test_tools::per_element());
  require_ok(h.watermark(at(15 * sec - 2)));
  require_ok(h.push(std::vector<ev>{{1, 3 * sec, 0}}));
  BOOST_TEST(h.take<count_res>() ==
               (std::vector<count_res>{r<std::uint64_t>(1, 0, 10 * sec, 3, 2)}),
             boost::test_tools::per_element());
  // At max timestamp + lateness the state goes, silently; later records are late.
  require_ok(h.watermark(at(15 * sec - 1)));
  BOOST_TEST(h.take<count_res>().empty());
  require_ok(h.push(std::vector<ev>{{1, 4 * sec, 0}}));
  BOOST_TEST(h.take<count_res>().empty());
  BOOST_TEST(h.take<ev>(1) == (std::vector<ev>{{1, 4 * sec, 0}}), boost::test_tools::per_element());
  BOOST_TEST(h.metrics().late_records.load() == 1u);
}

BOOST_AUTO_TEST_CASE(a_window_first_seen_within_the_lateness_fires_at_once) {
  operator_harness h{agg_op(windows::tumbling{.size = 10s}, window_aggregates::count{},
                            {.allowed_lateness = 5s})};
  require_ok(h.open());
  require_ok(h.watermark(at(12 * sec)));
  require_ok(h.push(std::vector<ev>{{1, 5 * sec, 0}}));
  BOOST_TEST(h.take<count_res>() == (std::vector<count_res>{r<std::uint64_t>(1, 0, 10 * sec, 1)}),
             boost::test_tools::per_element());
  require_ok(h.end_input());
  BOOST_TEST(h.take<count_res>().empty(), "the cleanup timer emits nothing");
}

BOOST_AUTO_TEST_CASE(a_late_record_that_grows_a_fired_session_makes_an_update) {
  operator_harness h{agg_op(windows::session{.gap = 10s}, window_aggregates::count{},
                            {.allowed_lateness = 10s})};
  require_ok(h.open());
  require_ok(h.push(std::vector<ev>{{1, 0, 0}}));
  require_ok(h.watermark(at(10 * sec - 1)));
  BOOST_TEST(h.take<count_res>() == (std::vector<count_res>{r<std::uint64_t>(1, 0, 10 * sec, 1)}),
             boost::test_tools::per_element());
  // [5s, 15s) merges with the fired [0, 10s): [0, 15s) is not due yet, so it fires later,
  // as an update of the session.
  require_ok(h.push(std::vector<ev>{{1, 5 * sec, 0}}));
  BOOST_TEST(h.take<count_res>().empty());
  require_ok(h.watermark(at(15 * sec - 1)));
  BOOST_TEST(h.take<count_res>() ==
               (std::vector<count_res>{r<std::uint64_t>(1, 0, 15 * sec, 2, 1)}),
             boost::test_tools::per_element());
  // A record within [0, 15s) re-fires at once.
  require_ok(h.push(std::vector<ev>{{1, 1 * sec, 0}}));
  BOOST_TEST(h.take<count_res>() ==
               (std::vector<count_res>{r<std::uint64_t>(1, 0, 15 * sec, 3, 2)}),
             boost::test_tools::per_element());
  require_ok(h.end_input());
  BOOST_TEST(h.take<count_res>().empty());
  BOOST_TEST(h.metrics().late_records.load() == 0u);
}

BOOST_AUTO_TEST_SUITE_END()

// ---------------------------------------------------------------------------------------

BOOST_AUTO_TEST_SUITE(aggregates)

const std::vector<ev> mixed{{1, 1 * sec, 4}, {1, 2 * sec, -2}, {1, 3 * sec, 7}, {2, 4 * sec, 5}};

template <class Agg, class V>
void check_aggregate(Agg agg, std::vector<res<V>> expected) {
  operator_harness h{agg_op(windows::tumbling{.size = 10s}, agg)};
  require_ok(h.open());
  require_ok(h.push(mixed));
  require_ok(h.end_input());
  BOOST_TEST(sorted(h.take<res<V>>()) == expected, boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(built_in_aggregations) {
  check_aggregate<window_aggregates::count, std::uint64_t>(
    {}, {r<std::uint64_t>(1, 0, 10 * sec, 3), r<std::uint64_t>(2, 0, 10 * sec, 1)});
  check_aggregate<window_aggregates::sum<ev, decltype(&value_of)>, std::int64_t>(
    {&value_of}, {r<std::int64_t>(1, 0, 10 * sec, 9), r<std::int64_t>(2, 0, 10 * sec, 5)});
  check_aggregate<window_aggregates::min<ev, decltype(&value_of)>, std::int64_t>(
    {&value_of}, {r<std::int64_t>(1, 0, 10 * sec, -2), r<std::int64_t>(2, 0, 10 * sec, 5)});
  check_aggregate<window_aggregates::max<ev, decltype(&value_of)>, std::int64_t>(
    {&value_of}, {r<std::int64_t>(1, 0, 10 * sec, 7), r<std::int64_t>(2, 0, 10 * sec, 5)});
  check_aggregate<window_aggregates::avg<ev, decltype(&value_of)>, double>(
    {&value_of}, {r<double>(1, 0, 10 * sec, 3.0), r<double>(2, 0, 10 * sec, 5.0)});
}

BOOST_AUTO_TEST_CASE(member_pointers_as_value_functions) {
  check_aggregate<window_aggregates::max<ev, decltype(&ev::ts)>, std::int64_t>(
    {&ev::ts}, {r<std::int64_t>(1, 0, 10 * sec, 3 * sec), r<std::int64_t>(2, 0, 10 * sec, 4 * sec)});
}

BOOST_AUTO_TEST_CASE(user_aggregate_with_in_place_merge) {
  struct sum_of_squares {
    std::int64_t create() const { return 0; }
    void add(std::int64_t& a, const ev& e) const { a += e.value * e.value; }
    void merge(std::int64_t& a, const std::int64_t& b) const { a += b; }
    std::int64_t result(std::int64_t a) const { return a; }
  };
  check_aggregate<sum_of_squares, std::int64_t>(
    {}, {r<std::int64_t>(1, 0, 10 * sec, 69), r<std::int64_t>(2, 0, 10 * sec, 25)});
}

BOOST_AUTO_TEST_CASE(process_gets_every_element_and_the_window) {
  operator_harness h{process_op(windows::tumbling{.size = 2s}, list_window)};
  require_ok(h.open());
  require_ok(h.push(mixed));
  require_ok(h.end_input());
  BOOST_TEST(sorted(h.take<std::string>()) ==
               (std::vector<std::string>{"1:[0,2)#0:4", "1:[2,4)#0:-2,7", "2:[4,6)#0:5"}),
             boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(process_may_emit_zero_or_many_and_sees_updates) {
  auto fn = [](const window_context<int>& w, const std::vector<ev>& xs, collector<std::string>& out) {
    for (auto& x : xs)
      if (x.value > 0)
        out.collect(std::to_string(w.key()) + (w.is_update() ? " update " : " ") +
                    std::to_string(x.value));
  };
  operator_harness h{process_op(windows::tumbling{.size = 10s}, fn, {.allowed_lateness = 1s})};
  require_ok(h.open());
  require_ok(h.push(std::vector<ev>{{1, 0, -1}, {1, 1, 3}}));
  require_ok(h.watermark(at(10 * sec - 1)));
  BOOST_TEST(h.take<std::string>() == (std::vector<std::string>{"1 3"}),
             boost::test_tools::per_element());
  require_ok(h.push(std::vector<ev>{{1, 2, 4}}));
  BOOST_TEST(h.take<std::string>() == (std::vector<std::string>{"1 update 3", "1 update 4"}),
             boost::test_tools::per_element());
}

BOOST_AUTO_TEST_SUITE_END()

// ---------------------------------------------------------------------------------------

BOOST_AUTO_TEST_SUITE(job_level)

std::vector<ev> sample_events() {
  // Two keys, 1 s apart, slightly out of order (within 2 s).
  std::vector<ev> v;
  for (int i = 0; i < 40; ++i)
    v.push_back({i % 2, (i + (i % 3 == 0 ? 2 : 0)) * sec, i});
  return v;
}

BOOST_AUTO_TEST_CASE(keyed_tumbling_count_through_a_job) {
  job j{{.name = "windows", .parallelism = 2, .runtime = {.batch_size = 7}}};
  auto out = sinks::collect<count_res>{};
  j.from(sources::collection<ev>{sample_events()},
         watermarks::bounded_out_of_orderness<ev>(2s, ts_of))
    .key_by(key_of)
    .window(windows::tumbling{.size = 10s})
    .count()
    .name("counts")
    .sink_to(out);
  auto done = require_ok(j.run());
  BOOST_TEST(!done.cancelled);
  std::map<std::tuple<int, std::int64_t>, std::uint64_t> expected;
  for (auto& e : sample_events())
    ++expected[{e.key, e.ts / (10 * sec) * 10 * sec}];
  std::vector<count_res> want;
  for (auto& [kw, n] : expected)
    want.push_back(r<std::uint64_t>(std::get<0>(kw), std::get<1>(kw), std::get<1>(kw) + 10 * sec, n));
  BOOST_TEST(sorted(out.records()) == sorted(want), boost::test_tools::per_element());
  BOOST_TEST(sum_over(done.tasks, "counts", &task_stats::late_records) == 0u);
}

BOOST_AUTO_TEST_CASE(window_all_and_cascaded_windows) {
  job j{{.name = "cascade", .parallelism = 3}};
  auto per_key = sinks::collect<res<std::int64_t>>{};
  auto total = sinks::collect<window_result<void, std::int64_t>>{};
  auto sums = j.from(sources::collection<ev>{sample_events()},
                     watermarks::bounded_out_of_orderness<ev>(2s, ts_of))
                .key_by(key_of)
                .window(windows::tumbling{.size = 5s})
                .sum(&ev::value);
  sums.sink_to(per_key);
  // The 5 s results carry event time end - 1µs, so they can be windowed again.
  sums.window_all(windows::tumbling{.size = 20s})
    .sum([](const res<std::int64_t>& x) { return x.value; })
    .name("totals")
    .sink_to(total);
  auto done = require_ok(j.run());
  std::map<std::int64_t, std::int64_t> want_total;
  for (auto& e : sample_events())
    want_total[e.ts / (20 * sec) * 20 * sec] += e.value;
  std::vector<window_result<void, std::int64_t>> want;
  for (auto& [start, v] : want_total)
    want.push_back({at(start), at(start + 20 * sec), v, false, 0});
  BOOST_TEST(sorted(total.records()) == want, boost::test_tools::per_element());
  std::int64_t per_key_sum = 0;
  for (auto& x : per_key.records())
    per_key_sum += x.value;
  BOOST_TEST(per_key_sum == 780); // 0 + 1 + ... + 39
  int totals_tasks = 0;
  for (auto& t : done.tasks)
    totals_tasks += t.chain.find("totals") != std::string::npos;
  BOOST_TEST(totals_tasks == 1, "window_all runs one instance");
}

BOOST_AUTO_TEST_CASE(late_data_side_output_through_a_job) {
  // One record per batch, so the watermark advances between records.
  job j{{.name = "late", .parallelism = 1, .runtime = {.batch_size = 1}}};
  auto out = sinks::collect<count_res>{};
  auto late_out = sinks::collect<ev>{};
  auto w = j.from(sources::collection<ev>{{{1, 1 * sec, 0}, {1, 20 * sec, 1}, {1, 2 * sec, 2},
                                           {1, 15 * sec, 3}, {1, 12 * sec, 4}}},
                  watermarks::monotonous<ev>(ts_of))
             .key_by(key_of)
             .window(windows::tumbling{.size = 10s})
             .allowed_lateness(5s);
  w.count().name("counts").sink_to(out);
  w.late_data().sink_to(late_out);
  auto done = require_ok(j.run());
  // After 20s the watermark is 20s - 1µs: [0,10) has fired, and 2s is more than the 5 s
  // allowed behind it. [10,20) is due but within the lateness: 15s fires it at once and 12s
  // updates it.
  BOOST_TEST(late_out.records() == (std::vector<ev>{{1, 2 * sec, 2}}),
             boost::test_tools::per_element());
  BOOST_TEST(out.records() ==
               (std::vector<count_res>{r<std::uint64_t>(1, 0, 10 * sec, 1),
                                       r<std::uint64_t>(1, 10 * sec, 20 * sec, 1),
                                       r<std::uint64_t>(1, 10 * sec, 20 * sec, 2, 1),
                                       r<std::uint64_t>(1, 20 * sec, 30 * sec, 1)}),
             boost::test_tools::per_element());
  BOOST_TEST(sum_over(done.tasks, "counts", &task_stats::late_records_to_side_output) == 1u);
}

BOOST_AUTO_TEST_CASE(graph_errors_are_reported_before_the_start) {
  auto run_error = [](auto build) {
    job j{{.name = "bad"}};
    build(j);
    return require_error(j.run());
  };
  auto no_time = run_error([](job& j) {
    j.from(sources::collection<ev>{{{1, 0, 0}}})
      .key_by(key_of)
      .window(windows::tumbling{.size = 1s})
      .count()
      .sink_to(sinks::collect<count_res>{});
  });
  BOOST_TEST((no_time.code == error_code::invalid_graph));
  BOOST_TEST(no_time.message.find("window: the input stream has no event time") != std::string::npos,
             no_time.message);

  auto bad_size = run_error([](job& j) {
    j.from(sources::collection<ev>{{{1, 0, 0}}}, watermarks::monotonous<ev>(ts_of))
      .key_by(key_of)
      .window(windows::sliding{.size = 1s})
      .count()
      .sink_to(sinks::collect<count_res>{});
  });
  BOOST_TEST((bad_size.code == error_code::invalid_option));
  BOOST_TEST(bad_size.message.find("window 'window': sliding window: slide must be positive, "
                                   "got 0us") != std::string::npos,
             bad_size.message);

  auto early_late = run_error([](job& j) {
    auto w = j.from(sources::collection<ev>{{{1, 0, 0}}}, watermarks::monotonous<ev>(ts_of))
               .key_by(key_of)
               .window(windows::tumbling{.size = 1s});
    w.late_data().sink_to(sinks::collect<ev>{});
    w.count().sink_to(sinks::collect<count_res>{});
  });
  BOOST_TEST(early_late.message.find("late_data(): call it after the window function") !=
               std::string::npos,
             early_late.message);

  auto negative = run_error([](job& j) {
    j.from(sources::collection<ev>{{{1, 0, 0}}}, watermarks::monotonous<ev>(ts_of))
      .key_by(key_of)
      .window(windows::tumbling{.size = 1s})
      .allowed_lateness(-1s)
      .count()
      .sink_to(sinks::collect<count_res>{});
  });
  BOOST_TEST(negative.message.find("allowed lateness must not be negative") != std::string::npos,
             negative.message);

  auto parallel_all = run_error([](job& j) {
    j.from(sources::collection<ev>{{{1, 0, 0}}}, watermarks::monotonous<ev>(ts_of))
      .window_all(windows::tumbling{.size = 1s})
      .count()
      .parallelism(2)
      .sink_to(sinks::collect<window_result<void, std::uint64_t>>{});
  });
  BOOST_TEST(parallel_all.message.find("exceeds the maximum of 1") != std::string::npos,
             parallel_all.message);
}

BOOST_AUTO_TEST_CASE(absurd_window_counts_are_refused_before_the_start_naming_the_window) {
  job j{{.name = "bad"}};
  auto out = sinks::collect<count_res>{};
  j.from(sources::collection<ev>{{{1, 0, 0}}}, watermarks::monotonous<ev>(ts_of))
    .key_by(key_of)
    .window(windows::sliding{.size = 10min, .slide = 1us})
    .count()
    .name("counts")
    .sink_to(out);
  auto e = require_error(j.run());
  BOOST_TEST((e.code == error_code::invalid_option));
  BOOST_TEST(e.message.find("window 'counts': sliding window: size 600000000us / slide 1us = "
                            "600000000 windows per record") != std::string::npos,
             e.message);
  BOOST_TEST(out.size() == 0u);
}

BOOST_AUTO_TEST_CASE(a_malformed_event_time_fails_the_job_naming_the_window_and_the_record) {
  job j{{.name = "far"}};
  auto out = sinks::collect<count_res>{};
  const std::int64_t near_max = std::numeric_limits<std::int64_t>::max() - 5;
  j.from(sources::collection<ev>{{{1, 0, 0}, {2, near_max, 42}}},
         watermarks::monotonous<ev>(ts_of))
    .key_by(key_of)
    .window(windows::tumbling{.size = 1h})
    .count()
    .name("hourly")
    .sink_to(out);
  auto e = require_error(j.run());
  BOOST_TEST((e.code == error_code::malformed_record), e.to_string());
  BOOST_TEST(e.message.find("window 'hourly'") != std::string::npos, e.message);
  BOOST_TEST(e.message.find(std::to_string(near_max)) != std::string::npos, e.message);
  for (const auto& r : out.records())
    BOOST_TEST((r.start < r.end), "a window that ends before it starts");
}

BOOST_AUTO_TEST_CASE(with_timestamps_gives_a_stream_event_time) {
  job j{{.name = "declared"}};
  auto out = sinks::collect<std::string>{};
  j.from(sources::collection<ev>{{{1, 0, 1}, {1, 3 * sec, 2}, {2, 1 * sec, 3}}})
    .with_timestamps(ts_of)
    .key_by(key_of)
    .window(windows::session{.gap = 5s})
    .process(list_window)
    .sink_to(out);
  // No watermark strategy: the watermark stays at its minimum until the end of input,
  // when the max watermark fires everything.
  require_ok(j.run());
  BOOST_TEST(sorted(out.records()) == (std::vector<std::string>{"1:[0,8)#0:1,2", "2:[1,6)#0:3"}),
             boost::test_tools::per_element());
}

BOOST_AUTO_TEST_SUITE_END()

// ---------------------------------------------------------------------------------------

BOOST_AUTO_TEST_SUITE(property)

BOOST_AUTO_TEST_CASE(random_parallelism_and_batching_give_the_reference_result) {
  constexpr int n = 20000;
  constexpr int keys = 17;
  constexpr std::int64_t max_delay = 50'000; // 50 ms
  std::mt19937 gen{7u};
  std::vector<ev> events;
  for (int i = 0; i < n; ++i) {
    const auto jitter = std::uniform_int_distribution<std::int64_t>{0, max_delay}(gen);
    // Per key, gaps of about 1 ms, with a quiet period every 7 s so sessions close.
    const std::int64_t base = static_cast<std::int64_t>(i) * 1000 + (i / 7000) * 3 * sec;
    events.push_back({static_cast<int>(gen() % keys), base - jitter,
                      std::uniform_int_distribution<std::int64_t>{-100, 100}(gen)});
  }

  // Single-threaded references. No record is late: every split's records are at most
  // `max_delay` out of order, and that is the strategy's bound.
  std::map<std::tuple<int, std::int64_t>, std::int64_t> tumbling_ref;
  std::map<std::tuple<int, std::int64_t>, std::uint64_t> sliding_ref;
  for (auto& e : events) {
    tumbling_ref[{e.key, detail::window_start(at(e.ts), {}, 100ms).time_since_epoch().count()}] +=
      e.value;
    windows::sliding{.size = 300ms, .slide = 100ms}.assign(at(e.ts), [&](time_window w) {
      ++sliding_ref[{e.key, w.start.time_since_epoch().count()}];
    });
  }
  std::vector<res<std::int64_t>> want_tumbling;
  for (auto& [kw, v] : tumbling_ref)
    want_tumbling.push_back(
      r<std::int64_t>(std::get<0>(kw), std::get<1>(kw), std::get<1>(kw) + 100'000, v));
  std::vector<count_res> want_sliding;
  for (auto& [kw, v] : sliding_ref)
    want_sliding.push_back(
      r<std::uint64_t>(std::get<0>(kw), std::get<1>(kw), std::get<1>(kw) + 300'000, v));
  // Sessions with a 20 ms gap: sort each key's timestamps and split where the gap exceeds it
  // (touching sessions merge, so a distance of exactly the gap still joins).
  std::vector<count_res> want_sessions;
  {
    std::map<int, std::vector<std::int64_t>> by_key;
    for (auto& e : events)
      by_key[e.key].push_back(e.ts);
    for (auto& [k, ts] : by_key) {
      std::sort(ts.begin(), ts.end());
      std::size_t first = 0;
      for (std::size_t i = 1; i <= ts.size(); ++i)
        if (i == ts.size() || ts[i] > ts[i - 1] + 20'000) {
          want_sessions.push_back(r<std::uint64_t>(k, ts[first], ts[i - 1] + 20'000, i - first));
          first = i;
        }
    }
  }
  std::sort(want_tumbling.begin(), want_tumbling.end());
  std::sort(want_sliding.begin(), want_sliding.end());
  std::sort(want_sessions.begin(), want_sessions.end());
  BOOST_REQUIRE(want_sessions.size() > static_cast<std::size_t>(keys));

  std::mt19937 rng{20240612u};
  auto pick = [&](int lo, int hi) { return std::uniform_int_distribution<int>{lo, hi}(rng); };
  for (int iteration = 0; iteration < 12; ++iteration) {
    const int source_p = pick(1, 4), window_p = pick(1, 4), sink_p = pick(1, 4);
    const auto batch_size = static_cast<std::size_t>(pick(1, 2000));
    BOOST_TEST_CONTEXT("iteration " << iteration << ": source " << source_p << " windows "
                                    << window_p << " sinks " << sink_p << " batch_size "
                                    << batch_size) {
      job j{{.name = "window-property", .runtime = {.batch_size = batch_size}}};
      auto tumbling_out = sinks::collect<res<std::int64_t>>{};
      auto sliding_out = sinks::collect<count_res>{};
      auto session_out = sinks::collect<count_res>{};
      auto keyed = j.from(sources::collection<ev>{events},
                          watermarks::bounded_out_of_orderness<ev>(duration{max_delay}, ts_of))
                     .parallelism(source_p)
                     .key_by(key_of);
      keyed.window(windows::tumbling{.size = 100ms})
        .sum(&ev::value)
        .parallelism(window_p)
        .name("tumbling")
        .sink_to(tumbling_out)
        .parallelism(sink_p);
      keyed.window(windows::sliding{.size = 300ms, .slide = 100ms})
        .count()
        .parallelism(window_p)
        .sink_to(sliding_out)
        .parallelism(sink_p);
      keyed.window(windows::session{.gap = 20ms})
        .count()
        .parallelism(window_p)
        .sink_to(session_out)
        .parallelism(sink_p);
      auto done = require_ok(j.run());
      BOOST_TEST(sum_over(done.tasks, "tumbling", &task_stats::late_records) == 0u);
      auto got = sorted(tumbling_out.records());
      BOOST_TEST(got.size() == want_tumbling.size());
      BOOST_TEST((got == want_tumbling), "tumbling sums");
      auto got_sliding = sorted(sliding_out.records());
      BOOST_TEST((got_sliding == want_sliding), "sliding counts");
      auto got_sessions = sorted(session_out.records());
      BOOST_TEST(got_sessions.size() == want_sessions.size());
      BOOST_TEST((got_sessions == want_sessions), "session counts");
    }
  }
}

BOOST_AUTO_TEST_SUITE_END()
