// Session windows: sessions close after the gap, records that bridge or touch sessions
// merge them (in any arrival order), dynamic gaps, records whose windows overflow the time
// line, and a user aggregate with a Flink-style merge.
#include <boost/test/unit_test.hpp>

#include "sluice/operators/harness.hpp"
#include "sluice/operators/window/session_operator.hpp"
#include "sluice/tests/engine/test_helpers.hpp"
#include "sluice/tests/eventtime/window_events.hpp"

#include <algorithm>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

using namespace sluice;
using namespace sluice::test;
using namespace sluice::test::win;

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
