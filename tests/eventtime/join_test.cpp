// Joins: the interval join (operator harness and whole jobs) and the stream-static join.
#define BOOST_TEST_MODULE join_test
#include <boost/test/unit_test.hpp>

#include "sluice/tests/common/temp_dir.hpp"
#include "../engine/test_helpers.hpp"
#include "sluice/api/job.hpp"
#include "sluice/operators/harness.hpp"
#include "sluice/operators/join/interval_join.hpp"
#include "sluice/operators/join/static_join.hpp"
#include "sluice/sinks/memory.hpp"
#include "sluice/sources/collection.hpp"
#include "sluice/sources/generator.hpp"
#include "sluice/sources/static_table.hpp"
#include "sluice/sources/watermarks.hpp"

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <unistd.h>
#include <vector>

using namespace sluice;
using namespace sluice::test;
namespace fs = std::filesystem;

namespace {

event_time at(duration d) { return event_time{d}; }

struct click {
  int key = 0;
  event_time ts{};
  int id = 0;
};
struct view {
  int key = 0;
  event_time ts{};
  int id = 0;
};

auto click_key = [](const click& c) { return c.key; };
auto view_key = [](const view& v) { return v.key; };
auto click_ts = [](const click& c) { return c.ts; };
auto view_ts = [](const view& v) { return v.ts; };

/// "left:right", with "-" for no right row: printable and easy to compare.
auto pair_text = [](const click& c, const view* v) {
  return std::to_string(c.id) + ":" + (v ? std::to_string(v->id) : std::string{"-"});
};

auto make_join(duration lower, duration upper, join_type type) {
  return make_interval_join_operator<int, click, view>(interval_join_spec{lower, upper, type},
                                                       click_key, view_key, click_ts, view_ts,
                                                       pair_text);
}
using join_op = std::remove_reference_t<decltype(*make_join(0s, 0s, join_type::inner))>;

/// A harness around a join, keeping a pointer to the concrete operator for its counters.
struct join_fixture {
  join_op* op;
  operator_harness h;
  explicit join_fixture(std::unique_ptr<join_op> j, harness_options opts = {})
    : op(j.get()), h(std::move(j), std::move(opts)) {
    require_ok(h.open());
  }
  std::vector<std::string> take() { return h.take<std::string>(); }
};

using strings = std::vector<std::string>;

} // namespace

// -- the interval join, one operator ---------------------------------------------------------

BOOST_AUTO_TEST_SUITE(interval_join)

BOOST_AUTO_TEST_CASE(inner_join_matches_inclusive_bounds_in_both_arrival_orders) {
  join_fixture f{make_join(-2s, 1s, join_type::inner)};
  // Rights first; the left at 10 s matches r.ts in [8 s, 11 s], edges included.
  require_ok(f.h.push(1, std::vector<view>{{1, at(8s - 1us), 10},
                                            {1, at(8s), 11},
                                            {1, at(10s), 12},
                                            {1, at(11s), 13},
                                            {1, at(11s + 1us), 14},
                                            {2, at(10s), 15}}));
  BOOST_TEST(f.take().empty());
  require_ok(f.h.push(0, std::vector<click>{{1, at(10s), 1}}));
  BOOST_TEST(f.take() == (strings{"1:11", "1:12", "1:13"}), boost::test_tools::per_element());
  // A second left at 12 s: [10 s, 13 s].
  require_ok(f.h.push(0, std::vector<click>{{1, at(12s), 2}}));
  BOOST_TEST(f.take() == (strings{"2:12", "2:13", "2:14"}), boost::test_tools::per_element());
  // A right arriving after the lefts: lefts with l.ts in [r.ts - 1 s, r.ts + 2 s] = [8 s, 11 s].
  require_ok(f.h.push(1, std::vector<view>{{1, at(9s), 16}}));
  BOOST_TEST(f.take() == (strings{"1:16"}), boost::test_tools::per_element());
  // Other keys never meet.
  require_ok(f.h.push(0, std::vector<click>{{3, at(10s), 3}}));
  BOOST_TEST(f.take().empty());
}

BOOST_AUTO_TEST_CASE(inner_join_accepts_a_function_of_two_references) {
  auto op = make_interval_join_operator<int, click, view>(
    interval_join_spec{0s, 0s, join_type::inner}, click_key, view_key, click_ts, view_ts,
    [](const click& c, const view& v) { return c.id * 100 + v.id; });
  operator_harness h{std::move(op)};
  require_ok(h.open());
  require_ok(h.push(0, std::vector<click>{{1, at(5s), 1}, {1, at(6s), 2}}));
  require_ok(h.push(1, std::vector<view>{{1, at(5s), 7}, {1, at(5s + 1us), 8}}));
  BOOST_TEST(h.take<int>() == (std::vector<int>{107}), boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(left_outer_emits_an_unmatched_row_exactly_when_the_watermark_reaches_ts_plus_upper) {
  join_fixture f{make_join(-2s, 1s, join_type::left_outer)};
  require_ok(f.h.push(0, std::vector<click>{{1, at(10s), 1}, {1, at(20s), 2}, {2, at(10s + 500ms), 3}}));
  require_ok(f.h.push(1, std::vector<view>{{1, at(21s), 20}}));
  BOOST_TEST(f.take() == (strings{"2:20"}), boost::test_tools::per_element());
  BOOST_TEST(f.op->buffered_left() == 3u);
  BOOST_TEST(f.op->buffered_right() == 1u);
  BOOST_TEST(f.op->buffered_keys() == 2u);

  // 10 s + upper = 11 s: a right at exactly 11 s could still come while W < 11 s.
  require_ok(f.h.watermark(at(11s - 1us)));
  BOOST_TEST(f.take().empty());
  BOOST_TEST(f.op->buffered_left() == 3u);
  require_ok(f.h.watermark(at(11s)));
  BOOST_TEST(f.take() == (strings{"1:-"}), boost::test_tools::per_element());
  BOOST_TEST(f.op->buffered_left() == 2u);
  require_ok(f.h.watermark(at(11s + 500ms - 1us)));
  BOOST_TEST(f.take().empty());
  require_ok(f.h.watermark(at(11s + 500ms)));
  BOOST_TEST(f.take() == (strings{"3:-"}), boost::test_tools::per_element());
  BOOST_TEST(f.op->buffered_keys() == 1u);
  // The matched left expires silently; the right (kept until W >= 21 s + 2 s) goes too.
  require_ok(f.h.watermark(at(30s)));
  BOOST_TEST(f.take().empty());
  BOOST_TEST(f.op->buffered_left() == 0u);
  BOOST_TEST(f.op->buffered_right() == 0u);
  BOOST_TEST(f.op->buffered_keys() == 0u);
  require_ok(f.h.end_input());
  BOOST_TEST(f.take().empty(), "nothing is emitted twice");
}

BOOST_AUTO_TEST_CASE(watermark_frees_each_side_when_no_partner_can_still_arrive) {
  // r.ts in [l.ts, l.ts + 5 s]: a left is kept until W >= l.ts + 5 s, a right until W >= r.ts.
  join_fixture f{make_join(0s, 5s, join_type::inner)};
  require_ok(f.h.push(0, std::vector<click>{{1, at(1s), 1}, {1, at(2s), 2}, {1, at(3s), 3}}));
  require_ok(f.h.push(1, std::vector<view>{{1, at(1s), 11}, {1, at(2s), 12}, {1, at(3s), 13}}));
  BOOST_TEST(f.take() == (strings{"1:11", "1:12", "2:12", "1:13", "2:13", "3:13"}),
             boost::test_tools::per_element());
  BOOST_TEST(f.op->buffered_left() == 3u);
  BOOST_TEST(f.op->buffered_right() == 3u);
  require_ok(f.h.watermark(at(2s)));
  BOOST_TEST(f.op->buffered_left() == 3u);
  BOOST_TEST(f.op->buffered_right() == 1u);
  require_ok(f.h.watermark(at(6s)));
  BOOST_TEST(f.op->buffered_left() == 2u);
  BOOST_TEST(f.op->buffered_right() == 0u);
  require_ok(f.h.watermark(at(8s)));
  BOOST_TEST(f.op->buffered_left() == 0u);
  BOOST_TEST(f.op->buffered_keys() == 0u);
  BOOST_TEST(f.take().empty());
  BOOST_TEST(f.h.metrics().late_records.load() == 0u);
}

BOOST_AUTO_TEST_CASE(records_at_or_behind_the_watermark_are_counted_late_and_dropped) {
  join_fixture f{make_join(-1s, 1s, join_type::left_outer)};
  require_ok(f.h.watermark(at(20s)));
  require_ok(f.h.push(0, std::vector<click>{{1, at(20s), 1}, {1, at(19s), 2}, {1, at(20s + 1us), 3}}));
  require_ok(f.h.push(1, std::vector<view>{{1, at(15s), 10}, {1, at(20s + 2us), 11}}));
  BOOST_TEST(f.h.metrics().late_records.load() == 3u);
  BOOST_TEST(f.h.metrics().late_records_to_side_output.load() == 0u);
  BOOST_TEST(f.take() == (strings{"3:11"}), boost::test_tools::per_element());
  BOOST_TEST(f.op->buffered_left() == 1u);
  BOOST_TEST(f.op->buffered_right() == 1u);
  // Late left rows are not emitted as unmatched either: they were dropped.
  require_ok(f.h.end_input());
  BOOST_TEST(f.take().empty());
}

BOOST_AUTO_TEST_CASE(a_row_whose_range_is_already_behind_the_watermark_is_not_buffered) {
  // r.ts in [l.ts - 5 s, l.ts - 2 s]: a left expires at l.ts - 2 s, before its own time.
  join_fixture f{make_join(-5s, -2s, join_type::left_outer)};
  require_ok(f.h.watermark(at(10s)));
  require_ok(f.h.push(1, std::vector<view>{{1, at(10s + 500ms), 20}}));
  BOOST_TEST(f.op->buffered_right() == 1u); // kept until W >= 15.5 s
  // Left at 11 s: range [6 s, 9 s] is behind W = 10 s, no right can come: unmatched now.
  // Left at 13 s: range [8 s, 11 s] holds the right at 10.5 s and is still open.
  require_ok(f.h.push(0, std::vector<click>{{1, at(11s), 1}, {1, at(13s), 2}}));
  BOOST_TEST(f.take() == (strings{"1:-", "2:20"}), boost::test_tools::per_element());
  BOOST_TEST(f.op->buffered_left() == 1u);
  BOOST_TEST(f.h.metrics().late_records.load() == 0u);

  // Symmetric for rights with lower > 0: r.ts in [l.ts + 2 s, l.ts + 5 s]; a right expires
  // at r.ts - 2 s.
  join_fixture g{make_join(2s, 5s, join_type::inner)};
  require_ok(g.h.watermark(at(10s)));
  require_ok(g.h.push(1, std::vector<view>{{1, at(11s), 30}}));
  BOOST_TEST(g.op->buffered_right() == 0u);
  BOOST_TEST(g.take().empty());
}

BOOST_AUTO_TEST_CASE(end_of_input_flushes_unmatched_rows_in_event_time_order) {
  join_fixture f{make_join(-1s, 1s, join_type::left_outer)};
  require_ok(f.h.push(0, std::vector<click>{{1, at(5s), 1}, {2, at(3s), 2}, {3, at(4s), 3}}));
  require_ok(f.h.push(1, std::vector<view>{{1, at(5s), 10}}));
  BOOST_TEST(f.take() == (strings{"1:10"}), boost::test_tools::per_element());
  require_ok(f.h.end_input());
  BOOST_TEST(f.take() == (strings{"2:-", "3:-"}), boost::test_tools::per_element());
  BOOST_TEST(f.op->buffered_left() == 0u);
  BOOST_TEST(f.op->buffered_right() == 0u);
  BOOST_TEST(f.op->buffered_keys() == 0u);
}

BOOST_AUTO_TEST_CASE(inner_join_emits_nothing_for_unmatched_rows) {
  join_fixture f{make_join(-1s, 1s, join_type::inner)};
  require_ok(f.h.push(0, std::vector<click>{{1, at(5s), 1}, {2, at(3s), 2}}));
  require_ok(f.h.end_input());
  BOOST_TEST(f.take().empty());
  BOOST_TEST(f.op->buffered_left() == 0u);
}

BOOST_AUTO_TEST_CASE(out_of_order_rows_stay_sorted_and_expire_in_time_order) {
  join_fixture f{make_join(0s, 0s, join_type::left_outer)};
  require_ok(f.h.push(0, std::vector<click>{{1, at(9s), 1}, {1, at(3s), 2}, {1, at(6s), 3},
                                            {1, at(3s), 4}}));
  require_ok(f.h.push(1, std::vector<view>{{1, at(3s), 10}}));
  BOOST_TEST(f.take() == (strings{"2:10", "4:10"}), boost::test_tools::per_element());
  require_ok(f.h.watermark(at(6s)));
  BOOST_TEST(f.take() == (strings{"3:-"}), boost::test_tools::per_element());
  BOOST_TEST(f.op->buffered_left() == 1u);
}

// The buffer's range search starts where the previous one ended (a hint, rows arrive
// nearly in order): checked against a scan of every row for ranges anywhere in the buffer,
// so from hints before, at and after the answer, before and after rows expire from the
// front, with rows in order, out of order and with equal times.
BOOST_AUTO_TEST_CASE(between_finds_exactly_the_rows_in_range_wherever_the_range_lies) {
  struct row {
    event_time ts;
    int id;
  };
  std::mt19937 rng{7};
  for (int round = 0; round < 50; ++round) {
    time_sorted_rows<row> rows;
    std::vector<row> all; // every live row, kept sorted the same way (stable by arrival)
    const int n = std::uniform_int_distribution<int>{0, 300}(rng);
    const int disorder = std::uniform_int_distribution<int>{0, 20}(rng);
    for (int i = 0; i < n; ++i) {
      const auto ts = at(duration{i + std::uniform_int_distribution<int>{-disorder, 0}(rng)});
      rows.insert(1, ts, i);
      all.insert(std::upper_bound(all.begin(), all.end(), ts,
                                  [](event_time t, const row& r) { return t < r.ts; }),
                 row{ts, i});
    }
    const int popped = n == 0 ? 0 : std::uniform_int_distribution<int>{0, n / 2}(rng);
    for (int i = 0; i < popped; ++i)
      rows.pop_front(1);
    all.erase(all.begin(), all.begin() + popped);
    for (int q = 0; q < 40; ++q) {
      const int lo = std::uniform_int_distribution<int>{-30, n + 30}(rng);
      const int hi = lo + std::uniform_int_distribution<int>{-2, 40}(rng);
      std::vector<int> expected, found;
      for (const auto& r : all)
        if (r.ts >= at(duration{lo}) && r.ts <= at(duration{hi}))
          expected.push_back(r.id);
      for (auto [it, end] = rows.between(at(duration{lo}), at(duration{hi})); it != end; ++it)
        found.push_back(it->id);
      BOOST_TEST_REQUIRE(found == expected, "round " << round << " range [" << lo << ", " << hi
                                                     << "] of " << all.size() << " rows");
    }
  }
}

BOOST_AUTO_TEST_CASE(lower_bound_above_upper_bound_fails_open) {
  operator_harness h{make_join(2s, 1s, join_type::inner)};
  auto e = require_error(h.open());
  BOOST_TEST(e.code == error_code::invalid_option);
  BOOST_TEST(e.message.find("lower bound exceeds upper bound") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(a_record_of_a_key_group_this_instance_does_not_own_is_an_error) {
  // Instance 0 of 2 owns key groups [0, 64) of 128.
  int foreign = 0;
  while (key_group_of(key_hash<int>{}(foreign), default_max_key_groups) < 64)
    ++foreign;
  join_fixture f{make_join(-1s, 1s, join_type::inner), harness_options{.parallelism = 2}};
  auto e = require_error(f.h.push(0, std::vector<click>{{foreign, at(1s), 1}}));
  BOOST_TEST(e.code == error_code::internal);
}

BOOST_AUTO_TEST_SUITE_END()

// -- the interval join under micro-batches (Spark's order) -----------------------------------

namespace {

event_time hm(int h, int m) { return at(std::chrono::hours{h} + std::chrono::minutes{m}); }

/// One micro-batch of the golden stream_join case (tests/golden/spark/cases/stream_join):
/// both inputs' rows and the batch's watermark, Spark's W (the engine's is W - 1 us).
struct micro_batch {
  std::vector<click> left;
  std::vector<view> right;
  event_time spark_watermark;
};

/// How a batch's rows and its watermark reach the join. In a task the combined watermark
/// moves once both inputs delivered theirs, and each input's watermark precedes its rows,
/// so one input's rows may come before or after the watermark moves.
enum class arrival {
  watermark_first,             ///< both watermarks, then the left rows, then the right
  left_then_watermark_then_right,
  right_then_watermark_then_left,
};

struct micro_batch_run {
  std::vector<strings> rows;                      ///< per batch, sorted
  std::vector<state_epoch_report> state;          ///< per batch
};

micro_batch_run run_micro_batches(const std::vector<micro_batch>& batches, arrival order,
                                  join_type type, late_row_rule rule) {
  join_fixture f{make_join(-5min, 5min, type),
                 harness_options{.mode = output_mode::append, .micro_batch = true,
                                 .late_rows = rule}};
  micro_batch_run run;
  std::int64_t id = 0;
  for (auto& b : batches) {
    const auto wm = b.spark_watermark == min_watermark ? min_watermark
                                                        : b.spark_watermark - 1us;
    switch (order) {
    case arrival::watermark_first:
      require_ok(f.h.watermark(wm));
      require_ok(f.h.push(0, b.left));
      require_ok(f.h.push(1, b.right));
      break;
    case arrival::left_then_watermark_then_right:
      require_ok(f.h.push(0, b.left));
      require_ok(f.h.watermark(wm));
      require_ok(f.h.push(1, b.right));
      break;
    case arrival::right_then_watermark_then_left:
      require_ok(f.h.push(1, b.right));
      require_ok(f.h.watermark(wm));
      require_ok(f.h.push(0, b.left));
      break;
    }
    require_ok(f.h.end_epoch(id++));
    auto got = f.take();
    std::sort(got.begin(), got.end());
    run.rows.push_back(std::move(got));
    BOOST_TEST(f.h.epoch_stats().state.has_value(),
               "batch " << id - 1 << ": no stateOperators entry");
    run.state.push_back(f.h.epoch_stats().state.value_or(state_epoch_report{}));
  }
  return run;
}

/// The golden case's input: bound 5 minutes, watermark delay 10 minutes, W(1) = 11:53,
/// W(2) = 12:10, then a batch without data at W(3) = 12:30.
std::vector<micro_batch> golden_stream_join_batches() {
  return {
    {{{1, hm(12, 0), 1}, {2, hm(12, 5), 2}}, {{1, hm(12, 3), 10}}, min_watermark},
    {{{1, hm(12, 20), 3}},
     {{2, hm(12, 9), 11}, {1, hm(12, 24), 12}, {1, hm(12, 16), 13}},
     hm(11, 53)},
    {{{3, hm(12, 40), 4}, {2, hm(12, 21), 5}},
     {{1, hm(12, 25), 14}, {2, hm(12, 0), 15}, {3, hm(12, 45), 16}},
     hm(12, 10)},
    {{}, {}, hm(12, 30)},
  };
}

/// The golden stream_join_left case's input (keys a..h as 1..8): W(1) = 11:53, W(2) = 12:15,
/// W(3) = 12:30, then a batch without data at W(4) = 12:31.
std::vector<micro_batch> golden_stream_join_left_batches() {
  return {
    {{{1, hm(12, 0), 1}, {2, hm(12, 2), 2}, {3, hm(12, 4), 3}}, {{1, hm(12, 3), 10}},
     min_watermark},
    {{{1, hm(12, 20), 4}, {4, hm(12, 25), 5}}, {{2, hm(12, 6), 11}, {1, hm(12, 30), 12}},
     hm(11, 53)},
    {{{5, hm(12, 8), 6}, {6, hm(12, 9), 7}, {7, hm(11, 50), 8}, {1, hm(12, 40), 9}},
     {{5, hm(12, 10), 13}, {1, hm(12, 41), 14}},
     hm(12, 15)},
    {{{8, hm(12, 50), 10}}, {{4, hm(12, 27), 16}, {1, hm(12, 20), 15}}, hm(12, 30)},
    {{}, {}, hm(12, 31)},
  };
}

/// "total updated removed dropped" per batch, as the golden progress files list them.
strings counts(const micro_batch_run& r) {
  strings out;
  for (auto& s : r.state)
    out.push_back(std::to_string(s.rows_total) + " " + std::to_string(s.rows_updated) + " " +
                  std::to_string(s.rows_removed) + " " +
                  std::to_string(s.rows_dropped_by_watermark));
  return out;
}

/// Every batch's rows as "batch/left:right", in batch order.
strings flat(const micro_batch_run& r) {
  strings out;
  for (std::size_t b = 0; b < r.rows.size(); ++b)
    for (auto& row : r.rows[b])
      out.push_back(std::to_string(b) + "/" + row);
  return out;
}

} // namespace

BOOST_AUTO_TEST_SUITE(interval_join_micro_batch)

// Spark 3.4+: a right row of batch 2 at 12:00 is behind W(2) = 12:10 but not W(1) = 11:53,
// so it joins the left row at 12:05 whichever way the batch reaches the join.
BOOST_AUTO_TEST_CASE(every_arrival_order_gives_sparks_rows_and_counts) {
  const strings want{"0/1:10", "1/2:11", "1/3:12", "1/3:13", "2/2:15", "2/3:14", "2/4:16"};
  const strings want_counts{"3 3 0 0", "7 4 0 0", "9 4 2 0", "3 0 6 0"};
  for (auto order : {arrival::watermark_first, arrival::left_then_watermark_then_right,
                     arrival::right_then_watermark_then_left}) {
    BOOST_TEST_CONTEXT("arrival order " << static_cast<int>(order)) {
      auto run = run_micro_batches(golden_stream_join_batches(), order, join_type::inner,
                                   late_row_rule::previous_watermark);
      BOOST_TEST(flat(run) == want, boost::test_tools::per_element());
      BOOST_TEST(counts(run) == want_counts, boost::test_tools::per_element());
    }
  }
}

// Spark 3.3 (one watermark): the same right row is late by W(2) and dropped, in every order.
BOOST_AUTO_TEST_CASE(the_single_watermark_rule_drops_by_the_batch_watermark_in_every_order) {
  const strings want{"0/1:10", "1/2:11", "1/3:12", "1/3:13", "2/3:14", "2/4:16"};
  const strings want_counts{"3 3 0 0", "7 4 0 0", "9 4 2 1", "3 0 6 0"};
  for (auto order : {arrival::watermark_first, arrival::left_then_watermark_then_right,
                     arrival::right_then_watermark_then_left}) {
    BOOST_TEST_CONTEXT("arrival order " << static_cast<int>(order)) {
      auto run = run_micro_batches(golden_stream_join_batches(), order, join_type::inner,
                                   late_row_rule::epoch_watermark);
      BOOST_TEST(flat(run) == want, boost::test_tools::per_element());
      BOOST_TEST(counts(run) == want_counts, boost::test_tools::per_element());
    }
  }
}

// Left outer: batch 2's left rows e 12:08 and f 12:09 are behind W(2) = 12:15's cleanup but
// not late by W(1): e still joins the batch's right e 12:10, f comes out unmatched in that
// batch, with c 12:04 (whose range W(2) passed). Rows matched in a later batch never come
// out unmatched.
BOOST_AUTO_TEST_CASE(a_left_outer_join_emits_unmatched_rows_at_the_end_of_the_batch_that_frees_them) {
  const strings want{"0/1:10", "1/2:11", "2/3:-", "2/6:13", "2/7:-", "2/9:14", "3/4:15", "3/5:16"};
  const strings want_counts{"4 4 0 0", "8 4 0 0", "6 5 7 1", "6 2 2 0", "5 0 1 0"};
  for (auto order : {arrival::watermark_first, arrival::left_then_watermark_then_right,
                     arrival::right_then_watermark_then_left}) {
    BOOST_TEST_CONTEXT("arrival order " << static_cast<int>(order)) {
      auto run = run_micro_batches(golden_stream_join_left_batches(), order,
                                   join_type::left_outer, late_row_rule::previous_watermark);
      BOOST_TEST(flat(run) == want, boost::test_tools::per_element());
      BOOST_TEST(counts(run) == want_counts, boost::test_tools::per_element());
    }
  }
  // Spark 3.3's rule: e, f and g are late in batch 2, the right d 12:27 in batch 3, so d 12:25
  // comes out unmatched in the batch without data.
  const strings want_single{"0/1:10", "1/2:11", "2/3:-", "2/9:14", "3/4:-", "4/5:-"};
  const strings want_single_counts{"4 4 0 0", "8 4 0 0", "5 2 5 4", "5 1 1 2", "4 0 1 0"};
  auto run = run_micro_batches(golden_stream_join_left_batches(), arrival::watermark_first,
                               join_type::left_outer, late_row_rule::epoch_watermark);
  BOOST_TEST(flat(run) == want_single, boost::test_tools::per_element());
  BOOST_TEST(counts(run) == want_single_counts, boost::test_tools::per_element());
}

BOOST_AUTO_TEST_SUITE_END()

// -- the interval join in jobs ---------------------------------------------------------------

namespace {

/// i * step ms, plus up to 599 ms of jitter from the hash `h`.
duration jittered(int i, int step_ms, std::uint64_t h) {
  return std::chrono::milliseconds{static_cast<std::int64_t>(i) * step_ms +
                                   static_cast<std::int64_t>((h >> 40) % 600)};
}

/// Two streams over 9 keys, out of order by up to 600 ms (within the 1 s watermark delay).
std::vector<click> make_clicks(int n) {
  std::vector<click> v;
  for (int i = 0; i < n; ++i) {
    const auto h = splitmix64(static_cast<std::uint64_t>(i));
    v.push_back({static_cast<int>(h % 9), at(jittered(i, 100, h)), i});
  }
  return v;
}
std::vector<view> make_views(int n) {
  std::vector<view> v;
  for (int i = 0; i < n; ++i) {
    const auto h = splitmix64(static_cast<std::uint64_t>(i) + 1'000'000);
    v.push_back({static_cast<int>(h % 9), at(jittered(i, 130, h)), 100'000 + i});
  }
  return v;
}

/// The join computed by brute force, sorted.
strings reference_join(const std::vector<click>& cs, const std::vector<view>& vs, duration lower,
                       duration upper, join_type type) {
  strings out;
  for (auto& c : cs) {
    bool matched = false;
    for (auto& v : vs)
      if (c.key == v.key && c.ts + lower <= v.ts && v.ts <= c.ts + upper) {
        out.push_back(pair_text(c, &v));
        matched = true;
      }
    if (!matched && type == join_type::left_outer)
      out.push_back(pair_text(c, nullptr));
  }
  std::sort(out.begin(), out.end());
  return out;
}

std::uint64_t total_late(const job_result& r) {
  std::uint64_t n = 0;
  for (auto& t : r.tasks)
    n += t.late_records;
  return n;
}

struct job_config {
  int clicks_p = 1, views_p = 1, join_p = 1, sink_p = 1;
  std::size_t batch_size = 1024;
  int credits = 4;
};
std::ostream& operator<<(std::ostream& os, const job_config& c) {
  return os << "parallelism clicks " << c.clicks_p << " views " << c.views_p << " join "
            << c.join_p << " sink " << c.sink_p << ", batch_size " << c.batch_size
            << ", credits " << c.credits;
}

/// Runs clicks ⋈ views through a job and returns the sorted "left:right" results.
strings run_join_job(const std::vector<click>& cs, const std::vector<view>& vs, duration lower,
                     duration upper, join_type type, const job_config& cfg, job_result* stats) {
  job j{{.name = "join", .runtime = {.batch_size = cfg.batch_size, .credits = cfg.credits}}};
  auto clicks = j.from(sources::collection<click>{cs},
                       watermarks::bounded_out_of_orderness<click>(1s, click_ts))
                  .name("clicks")
                  .parallelism(cfg.clicks_p);
  auto views = j.from(sources::collection<view>{vs},
                      watermarks::bounded_out_of_orderness<view>(1s, view_ts))
                 .name("views")
                 .parallelism(cfg.views_p);
  auto joined = clicks.key_by(click_key).interval_join(views.key_by(view_key)).between(lower, upper);
  if (type == join_type::left_outer)
    joined = joined.left_outer();
  auto out = sinks::collect<std::string>{};
  joined.apply(pair_text).name("clicks-views").parallelism(cfg.join_p).sink_to(out).parallelism(
    cfg.sink_p);
  auto done = require_ok(j.run());
  if (stats)
    *stats = done;
  auto got = out.records();
  std::sort(got.begin(), got.end());
  return got;
}

} // namespace

BOOST_AUTO_TEST_SUITE(interval_join_job)

BOOST_AUTO_TEST_CASE(two_sources_key_by_and_inner_join_give_the_reference_result) {
  const auto cs = make_clicks(400);
  const auto vs = make_views(300);
  const auto want = reference_join(cs, vs, -300ms, 200ms, join_type::inner);
  BOOST_REQUIRE(want.size() > 50u);
  job_result stats;
  const auto got = run_join_job(cs, vs, -300ms, 200ms, join_type::inner, {}, &stats);
  BOOST_TEST(got == want, boost::test_tools::per_element());
  BOOST_TEST(total_late(stats) == 0u);
}

BOOST_AUTO_TEST_CASE(left_outer_job_flushes_unmatched_rows_at_end_of_input) {
  const auto cs = make_clicks(400);
  const auto vs = make_views(300);
  const auto want = reference_join(cs, vs, -300ms, 200ms, join_type::left_outer);
  BOOST_REQUIRE(std::count_if(want.begin(), want.end(),
                              [](auto& s) { return s.ends_with(":-"); }) > 50);
  const auto got = run_join_job(cs, vs, -300ms, 200ms, join_type::left_outer,
                                {.clicks_p = 2, .views_p = 2, .join_p = 2, .sink_p = 1}, nullptr);
  BOOST_TEST(got == want, boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(join_result_stream_carries_max_of_both_event_times) {
  job j;
  auto clicks = j.from(sources::collection<click>{{1, at(5s), 1}},
                       watermarks::monotonous<click>(click_ts));
  auto views = j.from(sources::collection<view>{{1, at(6s), 2}},
                      watermarks::monotonous<view>(view_ts));
  auto joined =
    clicks.key_by(click_key).interval_join(views.key_by(view_key)).between(-2s, 2s).left_outer().apply();
  BOOST_REQUIRE(static_cast<bool>(joined.timestamps()));
  const click c{1, at(5s), 1};
  const view v{1, at(6s), 2};
  BOOST_TEST((joined.timestamps()(join_result<click, view>{c, v}) == at(6s)));
  BOOST_TEST((joined.timestamps()(join_result<click, view>{c, std::nullopt}) == at(5s)));
  auto out = sinks::collect<join_result<click, view>>{};
  joined.sink_to(out);
  require_ok(j.run());
  auto got = out.records();
  BOOST_REQUIRE(got.size() == 1u);
  BOOST_TEST(got[0].left.id == 1);
  BOOST_REQUIRE(got[0].right.has_value());
  BOOST_TEST(got[0].right->id == 2);
}

BOOST_AUTO_TEST_CASE(a_side_without_event_time_is_a_graph_error) {
  job j;
  auto clicks = j.from(sources::collection<click>{{1, at(5s), 1}},
                       watermarks::monotonous<click>(click_ts));
  auto views = j.from(sources::collection<view>{{1, at(6s), 2}}); // no strategy
  auto out = sinks::collect<std::string>{};
  clicks.key_by(click_key).interval_join(views.key_by(view_key)).between(-1s, 1s).apply(pair_text).sink_to(out);
  auto e = require_error(j.run());
  BOOST_TEST(e.code == error_code::invalid_graph);
  BOOST_TEST(e.message.find("the right input has no event time") != std::string::npos, e.message);
}

BOOST_AUTO_TEST_CASE(between_with_lower_above_upper_is_a_graph_error) {
  job j;
  auto clicks = j.from(sources::collection<click>{{1, at(5s), 1}},
                       watermarks::monotonous<click>(click_ts));
  auto views = j.from(sources::collection<view>{{1, at(6s), 2}},
                      watermarks::monotonous<view>(view_ts));
  auto out = sinks::collect<std::string>{};
  clicks.key_by(click_key).interval_join(views.key_by(view_key)).between(1s, -1s).apply(pair_text).sink_to(out);
  auto e = require_error(j.run());
  BOOST_TEST(e.code == error_code::invalid_option);
  BOOST_TEST(e.message.find("lower bound exceeds the upper bound") != std::string::npos, e.message);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(join_property)

BOOST_AUTO_TEST_CASE(random_parallelism_and_batching_give_the_reference_result) {
  const auto cs = make_clicks(1500);
  const auto vs = make_views(1200);
  const auto want_inner = reference_join(cs, vs, -250ms, 400ms, join_type::inner);
  const auto want_outer = reference_join(cs, vs, -250ms, 400ms, join_type::left_outer);
  std::mt19937 rng{20240612u};
  auto pick = [&](int lo, int hi) { return std::uniform_int_distribution<int>{lo, hi}(rng); };
  for (int iteration = 0; iteration < 12; ++iteration) {
    job_config cfg{pick(1, 4), pick(1, 4), pick(1, 4), pick(1, 4),
                   static_cast<std::size_t>(pick(1, 300)), pick(1, 8)};
    const auto type = iteration % 2 ? join_type::left_outer : join_type::inner;
    BOOST_TEST_CONTEXT("iteration " << iteration << ": " << cfg
                                    << (iteration % 2 ? ", left outer" : ", inner")) {
      job_result stats;
      const auto got = run_join_job(cs, vs, -250ms, 400ms, type, cfg, &stats);
      const auto& want = type == join_type::inner ? want_inner : want_outer;
      BOOST_TEST(got.size() == want.size());
      BOOST_TEST((got == want), "the multiset of join results");
      BOOST_TEST(total_late(stats) == 0u);
    }
  }
}

BOOST_AUTO_TEST_SUITE_END()

// -- the stream-static join ------------------------------------------------------------------

namespace {

struct account {
  int id = 0;
  std::string name;
};
template <class Inspector>
bool inspect(Inspector& f, account& x) {
  return f.object("account").fields(f.field("id", x.id), f.field("name", x.name));
}

struct txn {
  int account = 0;
  int amount = 0;
};

using sluice::test::temp_dir;

const std::string accounts_json = "{\"id\":1,\"name\":\"alice\"}\n"
                                  "\n"
                                  "{\"id\":2,\"name\":\"bob\"}\n"
                                  "{\"id\":2,\"name\":\"bob-2\"}\n";

auto txn_key = [](const txn& t) { return t.account; };
auto account_key = [](const account& a) { return a.id; };
auto enrich = [](const txn& t, const account* a) {
  return std::to_string(t.account) + "/" + std::to_string(t.amount) + ":" + (a ? a->name : "-");
};

auto make_static_join(const static_table<int, account>& table, join_type type) {
  using op = static_join_operator<txn, int, account, lookup_table<int, account>, std::string,
                                  decltype(txn_key), decltype(enrich)>;
  return std::make_unique<op>([table] { return table.load(); }, type, txn_key, enrich);
}

const std::vector<txn> txns{{1, 10}, {2, 20}, {3, 30}, {1, 40}};

} // namespace

BOOST_AUTO_TEST_SUITE(static_join)

BOOST_AUTO_TEST_CASE(inner_join_emits_one_result_per_table_row_of_the_key) {
  temp_dir dir;
  auto table = static_table<int, account>::from_file(dir.write("accounts.jsonl", accounts_json),
                                                     sources::file_format::json_lines, account_key);
  operator_harness h{make_static_join(table, join_type::inner)};
  require_ok(h.open());
  require_ok(h.push(txns));
  BOOST_TEST(h.take<std::string>() == (strings{"1/10:alice", "2/20:bob", "2/20:bob-2", "1/40:alice"}),
             boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(left_outer_join_emits_records_without_a_row) {
  temp_dir dir;
  auto table = static_table<int, account>::from_file(dir.write("accounts.jsonl", accounts_json),
                                                     sources::file_format::json_lines, account_key);
  operator_harness h{make_static_join(table, join_type::left_outer)};
  require_ok(h.open());
  require_ok(h.push(txns));
  BOOST_TEST(h.take<std::string>() ==
               (strings{"1/10:alice", "2/20:bob", "2/20:bob-2", "3/30:-", "1/40:alice"}),
             boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(csv_table_with_header_and_crlf_lines) {
  temp_dir dir;
  auto path = dir.write("accounts.csv", "id,name\r\n3,carol\r\n1,\"al, ice\"\r\n");
  auto table =
    static_table<int, account>::from_file(path, sources::file_format::csv, account_key);
  auto loaded = require_ok(table.load());
  BOOST_TEST(loaded->rows() == 2u);
  BOOST_TEST(loaded->keys() == 2u);
  operator_harness h{make_static_join(table, join_type::inner)};
  require_ok(h.open());
  require_ok(h.push(txns));
  BOOST_TEST(h.take<std::string>() == (strings{"1/10:al, ice", "3/30:carol", "1/40:al, ice"}),
             boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(missing_file_fails_open_naming_the_file) {
  temp_dir dir;
  const auto path = dir.path / "nope.jsonl";
  auto table = static_table<int, account>::from_file(path, sources::file_format::json_lines,
                                                     account_key);
  operator_harness h{make_static_join(table, join_type::inner)};
  auto e = require_error(h.open());
  BOOST_TEST(e.code == error_code::io_error);
  BOOST_TEST(e.message.find(path.string()) != std::string::npos, e.message);
}

BOOST_AUTO_TEST_CASE(malformed_row_fails_open_naming_file_and_line) {
  temp_dir dir;
  const auto path = dir.write("accounts.jsonl", "{\"id\":1,\"name\":\"alice\"}\n\n{\"id\":\"x\"}\n");
  auto table = static_table<int, account>::from_file(path, sources::file_format::json_lines,
                                                     account_key);
  operator_harness h{make_static_join(table, join_type::inner)};
  auto e = require_error(h.open());
  BOOST_TEST(e.code == error_code::malformed_record);
  BOOST_TEST(e.message.find("static table " + path.string() + ":3: ") == 0u, e.message);
}

BOOST_AUTO_TEST_CASE(csv_row_with_wrong_field_count_names_its_line) {
  temp_dir dir;
  const auto path = dir.write("accounts.csv", "id,name\n1,alice\n2\n");
  auto table = static_table<int, account>::from_file(path, sources::file_format::csv, account_key);
  auto e = require_error(table.load());
  BOOST_TEST(e.code == error_code::malformed_record);
  BOOST_TEST(e.message == "static table " + path.string() + ":3: expected 2 fields, found 1");
}

BOOST_AUTO_TEST_CASE(job_joins_on_every_instance_with_the_whole_table) {
  temp_dir dir;
  auto table = static_table<int, account>::from_file(dir.write("accounts.jsonl", accounts_json),
                                                     sources::file_format::json_lines, account_key);
  std::vector<txn> many;
  for (int i = 0; i < 300; ++i)
    many.push_back({i % 4, i});
  strings want;
  for (auto& t : many) {
    const auto prefix = std::to_string(t.account) + "/" + std::to_string(t.amount) + ":";
    if (t.account == 1)
      want.push_back(prefix + "alice");
    else if (t.account == 2) {
      want.push_back(prefix + "bob");
      want.push_back(prefix + "bob-2");
    } else
      want.push_back(prefix + "-");
  }
  std::sort(want.begin(), want.end());

  job j{{.name = "static", .parallelism = 3, .runtime = {.batch_size = 16}}};
  auto out = sinks::collect<std::string>{};
  j.from(sources::collection<txn>{many})
    .rebalance()
    .join_static(table, txn_key, enrich, join_type::left_outer)
    .name("enrich")
    .sink_to(out);
  require_ok(j.run());
  auto got = out.records();
  std::sort(got.begin(), got.end());
  BOOST_TEST(got == want, boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(join_result_output_keeps_the_left_event_time) {
  temp_dir dir;
  auto table = static_table<int, account>::from_file(dir.write("accounts.jsonl", accounts_json),
                                                     sources::file_format::json_lines, account_key);
  job j;
  auto s = j.from(sources::collection<click>{{1, at(5s), 1}},
                  watermarks::monotonous<click>(click_ts));
  auto joined = s.join_static(table, click_key, to_join_result<click, account>{});
  BOOST_REQUIRE(static_cast<bool>(joined.timestamps()));
  BOOST_TEST((joined.timestamps()(join_result<click, account>{{1, at(5s), 1}, std::nullopt}) ==
              at(5s)));
  auto out = sinks::collect<join_result<click, account>>{};
  joined.sink_to(out);
  require_ok(j.run());
  auto got = out.records();
  BOOST_REQUIRE(got.size() == 1u);
  BOOST_REQUIRE(got[0].right.has_value());
  BOOST_TEST(got[0].right->name == "alice");
}

BOOST_AUTO_TEST_CASE(bad_table_file_fails_the_job_with_file_line_and_operator) {
  temp_dir dir;
  const auto path = dir.write("accounts.jsonl", "{\"id\":1,\"name\":\"alice\"}\nnot json\n");
  auto table = static_table<int, account>::from_file(path, sources::file_format::json_lines,
                                                     account_key);
  job j{{.name = "static", .parallelism = 2}};
  auto out = sinks::collect<std::string>{};
  j.from(sources::collection<txn>{txns}).join_static(table, txn_key, enrich).name("enrich").sink_to(out);
  auto e = require_error(j.run());
  BOOST_TEST(e.code == error_code::malformed_record);
  BOOST_TEST(e.message.find("operator 'enrich'") != std::string::npos, e.message);
  BOOST_TEST(e.message.find("static table " + path.string() + ":2: ") != std::string::npos,
             e.message);
}

BOOST_AUTO_TEST_SUITE_END()
