// Event-time windows at operator level: assigners, firing of tumbling and sliding windows,
// lateness and side output, the built-in and user aggregations and full-window process
// functions. Sessions and merging: window_sessions_test.cpp; whole jobs and the property
// test under random parallelism and batching: window_job_test.cpp.
#define BOOST_TEST_MODULE window_test
#include <boost/test/unit_test.hpp>

#include "sluice/core/codec/json.hpp"
#include "sluice/operators/harness.hpp"
#include "sluice/operators/window/window_operator.hpp"
#include "sluice/tests/engine/test_helpers.hpp"
#include "sluice/tests/eventtime/window_events.hpp"

#include <cstdint>
#include <map>
#include <sstream>
#include <string>
#include <vector>

using namespace sluice;
using namespace sluice::test;
using namespace sluice::test::win;

namespace {

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

} // namespace

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
