// Spark's rate and rate-micro-batch sources. The expected rows are worked out by hand from
// Spark's formulas (RateStreamProvider.valueAtSecond, RateStreamMicroBatchStream's
// planInputPartitions and partition reader, RatePerMicroBatchStream); every clock is a
// manual_clock, whose count reads as ms since 1970 (so creation time 0 is 1970-01-01, as
// with Spark's ManualClock).
#include <boost/test/unit_test.hpp>

#include "../common/temp_dir.hpp"
#include "../engine/test_helpers.hpp"

#include "sluice/api/job.hpp"
#include "sluice/core/codec/json.hpp"
#include "sluice/sinks/callback.hpp"
#include "sluice/sinks/foreach_batch.hpp"
#include "sluice/sources/rate.hpp"

#include <algorithm>
#include <map>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <vector>

using namespace sluice;
using namespace sluice::test;
using namespace std::chrono_literals;
using sources::rate_row;

namespace {

/// (timestamp in ms since the epoch, value): how the expected rows are written.
struct row {
  std::int64_t ms = 0;
  std::int64_t value = 0;
  friend bool operator==(const row&, const row&) = default;
  friend std::ostream& operator<<(std::ostream& os, const row& r) {
    return os << "{" << r.ms << "ms, " << r.value << "}";
  }
};
using rows = std::vector<row>;

row as_pair(const rate_row& r) {
  return {std::chrono::duration_cast<std::chrono::milliseconds>(r.timestamp.time_since_epoch())
            .count(),
          r.value};
}

source_context ctx(const std::shared_ptr<manual_clock>& clk, trigger t, int instance = 0,
                   int parallelism = 1) {
  return source_context{"rate", instance, parallelism, clk, t};
}

/// Micro-batch: plans a trigger, reads it to its end. Unset when nothing is available.
std::optional<rows> read_batch(source<rate_row>& s) {
  auto plan = s.plan_trigger(false, 1000);
  BOOST_REQUIRE_MESSAGE(plan.has_value(), error_text(plan));
  if (!plan->available)
    return std::nullopt;
  rows out;
  for (int polls = 0; polls < 10'000; ++polls) {
    std::vector<rate_row> recs;
    std::vector<dead_letter> bad;
    source_output<rate_row> o{recs, bad};
    auto r = s.poll(o, 3); // small polls: a trigger spans several
    BOOST_REQUIRE_MESSAGE(r.has_value(), error_text(r));
    for (auto& x : recs)
      out.push_back(as_pair(x));
    if (r->state != poll_result::status::more)
      return out;
  }
  BOOST_FAIL("the trigger never ended");
  return out;
}

/// A trigger that must have input, by value (Boost.Test keeps references to what an
/// assertion's operands refer to, past the temporaries they belong to).
rows next_batch(source<rate_row>& s) {
  auto b = read_batch(s);
  BOOST_REQUIRE_MESSAGE(b.has_value(), "the trigger found no input");
  return *b;
}

/// Continuous: polls until the source goes idle (everything due by now is read).
rows due(source<rate_row>& s) {
  rows out;
  for (int polls = 0; polls < 10'000; ++polls) {
    std::vector<rate_row> recs;
    std::vector<dead_letter> bad;
    source_output<rate_row> o{recs, bad};
    auto r = s.poll(o, 3);
    BOOST_REQUIRE_MESSAGE(r.has_value(), error_text(r));
    for (auto& x : recs)
      out.push_back(as_pair(x));
    if (r->state != poll_result::status::more)
      return out;
  }
  BOOST_FAIL("the source never went idle");
  return out;
}

std::unique_ptr<source<rate_row>> open(const sources::rate& d, const source_context& c) {
  auto s = d.create(c);
  auto ok = s->open(c);
  BOOST_REQUIRE_MESSAGE(ok.has_value(), error_text(ok));
  return s;
}

std::unique_ptr<source<rate_row>> open(const sources::rate_micro_batch& d,
                                       const source_context& c) {
  auto s = d.create(c);
  auto ok = s->open(c);
  BOOST_REQUIRE_MESSAGE(ok.has_value(), error_text(ok));
  return s;
}

rows sorted(rows r) {
  std::sort(r.begin(), r.end(), [](const row& a, const row& b) { return a.value < b.value; });
  return r;
}

/// Values 0..n-1 exactly once each.
bool each_value_once(const rows& r, std::int64_t n) {
  auto s = sorted(r);
  if (static_cast<std::int64_t>(s.size()) != n)
    return false;
  for (std::int64_t i = 0; i < n; ++i)
    if (s[static_cast<std::size_t>(i)].value != i)
      return false;
  return true;
}

const trigger every_second = triggers::processing_time(1s);

} // namespace

BOOST_AUTO_TEST_SUITE(rate_source)

BOOST_AUTO_TEST_CASE(value_at_second_is_sparks) {
  using sources::rate_detail::value_at_second;
  // Spark's own example: ramp-up 4 s to 10 rows/s, speed + 10/(4+1) = 2 per second:
  // speeds 0 2 4 6 8 | 10 10, end values 0 2 6 12 20 | 30 40.
  std::vector<std::int64_t> got;
  for (int s = 0; s <= 6; ++s)
    got.push_back(value_at_second(s, 10, 4));
  BOOST_TEST(got == (std::vector<std::int64_t>{0, 2, 6, 12, 20, 30, 40}),
             boost::test_tools::per_element());
  // No ramp-up: rows_per_second per second.
  BOOST_TEST(value_at_second(3, 5, 0) == 15);
  // 1 row/s over a 5 s ramp-up: 1 / 6 = 0 per second, so nothing until the ramp ends.
  BOOST_TEST(value_at_second(5, 1, 5) == 0);
  BOOST_TEST(value_at_second(7, 1, 5) == 2);
}

BOOST_AUTO_TEST_CASE(first_seconds_without_ramp_up) {
  auto clk = std::make_shared<manual_clock>();
  sources::rate d{{.rows_per_second = 4, .num_partitions = 1}};
  auto s = open(d, ctx(clk, every_second));
  // t = 0: Spark's batch 0 goes from no offset to offset 0: it runs, without rows (real
  // Spark 4 does so too). Then offset 0 again: no batch.
  BOOST_TEST(next_batch(*s).empty());
  BOOST_TEST(!read_batch(*s).has_value());
  clk->advance(2s);
  // Seconds 0..2: values valueAtSecond(0)=0 .. valueAtSecond(2)-1 = 7; relativeMsPerValue
  // = 2000 ms / 8 values = 250; timestamp = creation 0 + 0 s + round((v - 0) * 250).
  BOOST_TEST(next_batch(*s) ==
               (rows{{0, 0}, {250, 1}, {500, 2}, {750, 3}, {1000, 4}, {1250, 5}, {1500, 6},
                     {1750, 7}}),
             boost::test_tools::per_element());
  clk->advance(1500ms);
  // t = 3.5 s: offset 3 (whole seconds). Values 8..11, from 2000 ms at 1000 / 4 = 250 ms.
  BOOST_TEST(next_batch(*s) == (rows{{2000, 8}, {2250, 9}, {2500, 10}, {2750, 11}}),
             boost::test_tools::per_element());
  clk->advance(400ms);
  BOOST_TEST(!read_batch(*s).has_value()); // t = 3.9 s: still offset 3
  BOOST_TEST(s->offset() == "3");
}

BOOST_AUTO_TEST_CASE(first_seconds_with_ramp_up) {
  // The clock starts at 1 000 000 ms: the creation time, added to every timestamp.
  auto clk = std::make_shared<manual_clock>(clock::time_point{1'000'000ms});
  sources::rate d{{.rows_per_second = 10, .ramp_up_time = 4s, .num_partitions = 1}};
  auto s = open(d, ctx(clk, every_second));
  clk->advance(3s);
  // Seconds 0..3: values 0 .. valueAtSecond(3)-1 = 11; 3000 ms / 12 = 250 ms per value.
  rows first;
  for (std::int64_t v = 0; v < 12; ++v)
    first.push_back({1'000'000 + v * 250, v});
  BOOST_TEST(next_batch(*s) == first, boost::test_tools::per_element());
  clk->advance(2200ms);
  // t = 5.2 s: seconds 3..5, values 12 .. valueAtSecond(5)-1 = 29 (18 values); 2000 ms / 18
  // = 111.11 ms per value from 1 003 000: round(k * 111.11) for k = 0..17 is
  // 0 111 222 333 444 556 667 778 889 1000 1111 1222 1333 1444 1556 1667 1778 1889.
  BOOST_TEST(next_batch(*s) == (rows{{1'003'000, 12}, {1'003'111, 13}, {1'003'222, 14},
                                 {1'003'333, 15}, {1'003'444, 16}, {1'003'556, 17},
                                 {1'003'667, 18}, {1'003'778, 19}, {1'003'889, 20},
                                 {1'004'000, 21}, {1'004'111, 22}, {1'004'222, 23},
                                 {1'004'333, 24}, {1'004'444, 25}, {1'004'556, 26},
                                 {1'004'667, 27}, {1'004'778, 28}, {1'004'889, 29}}),
             boost::test_tools::per_element());
  clk->advance(1s);
  // Second 5..6, after the ramp-up: 10 values 30..39, 100 ms apart from 1 005 000.
  rows third;
  for (std::int64_t v = 30; v < 40; ++v)
    third.push_back({1'005'000 + (v - 30) * 100, v});
  BOOST_TEST(next_batch(*s) == third, boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(partitions_are_split_over_instances) {
  auto clk = std::make_shared<manual_clock>();
  // 8 rows/s, 3 partitions over 2 instances: partition p holds 0+p, 3+p, 6+p (< 8);
  // instance 0 reads partitions 0 and 2, instance 1 partition 1. 1000 ms / 8 = 125 ms.
  sources::rate d{{.rows_per_second = 8, .num_partitions = 3}};
  auto i0 = open(d, ctx(clk, every_second, 0, 2));
  auto i1 = open(d, ctx(clk, every_second, 1, 2));
  clk->advance(1s);
  BOOST_TEST(next_batch(*i0) == (rows{{0, 0}, {250, 2}, {375, 3}, {625, 5}, {750, 6}}),
             boost::test_tools::per_element());
  BOOST_TEST(next_batch(*i1) == (rows{{125, 1}, {500, 4}, {875, 7}}),
             boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(the_union_of_instances_is_the_whole_sequence) {
  for (int partitions = 1; partitions <= 5; ++partitions)
    for (int parallelism = 1; parallelism <= 4; ++parallelism) {
      BOOST_TEST_CONTEXT("partitions " << partitions << ", parallelism " << parallelism) {
        auto clk = std::make_shared<manual_clock>();
        const sources::rate_options o{
          .rows_per_second = 7, .ramp_up_time = 3s, .num_partitions = partitions};
        sources::rate one{o};
        sources::rate many{o};
        auto whole = open(one, ctx(clk, every_second));
        std::vector<std::unique_ptr<source<rate_row>>> parts;
        for (int i = 0; i < parallelism; ++i)
          parts.push_back(open(many, ctx(clk, every_second, i, parallelism)));
        rows expected, got;
        // Batches of 1, 2 and 3 seconds, across the end of the ramp-up.
        for (auto step : {1s, 2s, 3s, 1s}) {
          clk->advance(step);
          const auto b = read_batch(*whole);
          BOOST_REQUIRE(b.has_value());
          expected.insert(expected.end(), b->begin(), b->end());
          for (auto& p : parts)
            if (auto b = read_batch(*p))
              for (auto& r : *b)
                got.push_back(r);
        }
        // valueAtSecond(7) with 7 rows/s, 3 s ramp-up (speed + 7/4 = 1 per second):
        // 1*3*4/2 = 6 by second 3, then 4 * 7: 34.
        BOOST_TEST(each_value_once(got, 34));
        BOOST_TEST(sorted(got) == expected, boost::test_tools::per_element());
      }
    }
}

BOOST_AUTO_TEST_CASE(continuous_rows_come_when_their_time_has_come) {
  auto clk = std::make_shared<manual_clock>();
  sources::rate d{{.rows_per_second = 2}};
  auto s = open(d, ctx(clk, triggers::continuous(1s)));
  // Second by second: value v of second s at s * 1000 + (v - 2s) * 500 ms.
  BOOST_TEST(due(*s) == (rows{{0, 0}}), boost::test_tools::per_element());
  clk->advance(500ms);
  BOOST_TEST(due(*s) == (rows{{500, 1}}), boost::test_tools::per_element());
  clk->advance(600ms);
  BOOST_TEST(due(*s) == (rows{{1000, 2}}), boost::test_tools::per_element());
  clk->advance(2s); // t = 3.1 s
  BOOST_TEST(due(*s) == (rows{{1500, 3}, {2000, 4}, {2500, 5}, {3000, 6}}),
             boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(the_jobs_start_is_the_creation_time_and_a_new_start_replaces_an_old_one) {
  // source_context::job_start is what the coordinator (node 0) fixed for every node. One
  // process keeps the descriptor's timeline over attempts: when node 0 starts the job anew,
  // its new start must replace the old creation time, and a restored one must win.
  auto clk = std::make_shared<manual_clock>(clock::time_point{10s});
  sources::rate d{{.rows_per_second = 2, .num_partitions = 2}};
  auto started_at = [&](std::chrono::milliseconds start, int instance) {
    auto c = ctx(clk, triggers::continuous(1s), instance, 2);
    c.job_start = event_time{start};
    return c;
  };
  // Value v at start + 500 ms * v, although this instance opens at 10 s.
  auto first = open(d, started_at(7000ms, 0));
  BOOST_TEST(due(*first) == (rows{{7000, 0}, {8000, 2}, {9000, 4}, {10000, 6}}),
             boost::test_tools::per_element());
  const auto position = first->position().value();
  // Node 0 began the job again at 9 s: the same process, the same timeline, a new creation.
  auto again = open(d, started_at(9000ms, 0));
  BOOST_TEST(due(*again) == (rows{{9000, 0}, {10000, 2}}), boost::test_tools::per_element());
  // ... from a checkpoint of the first run: its creation time wins, for the other
  // instance of this process too.
  auto restored = open(d, started_at(9000ms, 0));
  require_ok(restored->seek(position));
  auto sibling = open(d, started_at(9000ms, 1));
  BOOST_TEST(due(*sibling) == (rows{{7500, 1}, {8500, 3}, {9500, 5}}),
             boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(continuous_restore_mid_second_has_no_gap_or_duplicate) {
  auto clk = std::make_shared<manual_clock>();
  const sources::rate_options o{.rows_per_second = 10, .ramp_up_time = 2s, .num_partitions = 3};
  sources::rate before{o};
  std::vector<std::unique_ptr<source<rate_row>>> a;
  for (int i = 0; i < 2; ++i)
    a.push_back(open(before, ctx(clk, triggers::continuous(1s), i, 2)));
  rows got;
  clk->advance(1450ms);
  for (auto& s : a)
    for (auto& r : due(*s))
      got.push_back(r);
  std::vector<std::string> positions;
  for (auto& s : a)
    positions.push_back(s->position().value());
  a.clear();
  // Another run (a new descriptor) restores the positions and reads on to 4 s.
  clk->advance(2550ms);
  sources::rate after{o};
  for (int i = 0; i < 2; ++i) {
    auto s = open(after, ctx(clk, triggers::continuous(1s), i, 2));
    require_ok(s->seek(positions[static_cast<std::size_t>(i)]));
    for (auto& r : due(*s))
      got.push_back(r);
  }
  // The same rows as one instance that never stopped: valueAtSecond(4) = 0+3+6 + 2*10 = 29
  // values, and value 29 (second 4's first, at 4000 ms) is due too.
  sources::rate ref_d{o};
  auto ref_clk = std::make_shared<manual_clock>();
  auto ref = open(ref_d, ctx(ref_clk, triggers::continuous(1s)));
  ref_clk->advance(4s);
  auto expected = due(*ref);
  BOOST_TEST(expected.size() == 30u);
  BOOST_TEST(each_value_once(got, 30));
  BOOST_TEST(sorted(got) == expected, boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(another_parallelism_restores_between_batches_only) {
  auto clk = std::make_shared<manual_clock>();
  const sources::rate_options o{.rows_per_second = 10, .num_partitions = 4};
  sources::rate d{o};
  std::vector<std::string> between, mid;
  for (int i = 0; i < 2; ++i) {
    auto s = open(d, ctx(clk, every_second, i, 2));
    clk->advance(i == 0 ? 1s : 0s);
    next_batch(*s);
    between.push_back(s->position().value());
  }
  clk->advance(1s); // t = 2 s
  // Three instances go on from second 1: values 10..19 of second 1..2, none twice.
  sources::rate d3{o};
  rows got;
  for (int i = 0; i < 3; ++i) {
    auto s = open(d3, ctx(clk, every_second, i, 3));
    require_ok(s->seek_all(between));
    if (auto b = read_batch(*s))
      got.insert(got.end(), b->begin(), b->end());
  }
  rows expected;
  for (std::int64_t v = 10; v < 20; ++v)
    expected.push_back({1000 + (v - 10) * 100, v});
  BOOST_TEST(sorted(got) == expected, boost::test_tools::per_element());

  // Continuous, stopped in the middle of a second: only the old parallelism restores.
  sources::rate c{o};
  for (int i = 0; i < 2; ++i) {
    auto s = open(c, ctx(clk, triggers::continuous(1s), i, 2));
    due(*s);
    mid.push_back(s->position().value());
  }
  sources::rate c3{o};
  auto s = open(c3, ctx(clk, triggers::continuous(1s), 0, 3));
  auto refused = s->seek_all(mid);
  BOOST_REQUIRE(!refused.has_value());
  BOOST_TEST(refused.error().code == error_code::restore_conflict);
  BOOST_TEST(refused.error().message.find("restore it at the parallelism it was taken at") !=
             std::string::npos);
  auto again = open(c3, ctx(clk, triggers::continuous(1s), 1, 2));
  require_ok(again->seek_all(mid)); // its own position, at the old parallelism
}

BOOST_AUTO_TEST_CASE(micro_batch_restore_continues_and_replays_exactly) {
  auto clk = std::make_shared<manual_clock>();
  const sources::rate_options o{.rows_per_second = 4, .num_partitions = 2};
  sources::rate d{o};
  auto s = open(d, ctx(clk, every_second));
  clk->advance(2s);
  auto b0 = next_batch(*s); // values 0..7
  const auto pos = s->position().value();
  clk->advance(1s);
  auto plan = require_ok(s->plan_trigger(false, 1000));
  BOOST_TEST(plan.end == "3");
  auto b1 = next_batch(*s); // the same trigger, read now: values 8..11
  BOOST_TEST(b1 == (rows{{2000, 8}, {2250, 9}, {2500, 10}, {2750, 11}}),
             boost::test_tools::per_element());
  // A restart after b0's checkpoint, much later: the logged end of b1 reads b1 again.
  clk->advance(5s);
  sources::rate d2{o};
  auto r = open(d2, ctx(clk, every_second));
  require_ok(r->seek(pos));
  require_ok(r->replay_trigger(plan.end));
  rows again;
  for (int polls = 0; polls < 100; ++polls) {
    std::vector<rate_row> recs;
    std::vector<dead_letter> bad;
    source_output<rate_row> out{recs, bad};
    auto p = require_ok(r->poll(out, 100));
    for (auto& x : recs)
      again.push_back(as_pair(x));
    if (p.state != poll_result::status::more)
      break;
  }
  BOOST_TEST(again == b1, boost::test_tools::per_element());
  // The next plan goes on from second 3 to now (8 s): values 12 .. 4*8-1 = 31.
  auto b2 = next_batch(*r);
  BOOST_TEST(b2.front() == (row{3000, 12}));
  BOOST_TEST(b2.back() == (row{7750, 31}));
  BOOST_TEST(b2.size() == 20u);
}

BOOST_AUTO_TEST_CASE(available_now_stops_at_the_offset_of_its_first_plan) {
  auto clk = std::make_shared<manual_clock>();
  sources::rate d{{.rows_per_second = 2}};
  auto s = open(d, ctx(clk, triggers::available_now()));
  clk->advance(3s);
  BOOST_TEST(next_batch(*s).size() == 6u); // seconds 0..3
  clk->advance(3s);
  BOOST_TEST(!read_batch(*s).has_value()); // Spark fixes the latest offset once
  // A fresh query at t = 0: Spark's latest offset is 0, so one empty batch, then the end.
  sources::rate fresh{{.rows_per_second = 2}};
  auto f = open(fresh, ctx(clk, triggers::available_now()));
  BOOST_TEST(next_batch(*f).empty());
  clk->advance(3s);
  BOOST_TEST(!read_batch(*f).has_value());
}

BOOST_AUTO_TEST_CASE(bad_options_are_refused_naming_the_option) {
  auto refused = [](const auto& desc, const std::string& option) {
    auto ok = desc.validate();
    BOOST_REQUIRE(!ok.has_value());
    BOOST_TEST(ok.error().code == error_code::invalid_option);
    BOOST_TEST_INFO(ok.error().message);
    BOOST_TEST(ok.error().message.find(option) != std::string::npos);
  };
  refused(sources::rate{{.rows_per_second = 0}}, "rows_per_second");
  refused(sources::rate{{.rows_per_second = -5}}, "rows_per_second");
  refused(sources::rate{{.ramp_up_time = -1s}}, "ramp_up_time");
  refused(sources::rate{{.num_partitions = 0}}, "num_partitions");
  // Spark's incorrectRampUpRate: the ramp-up alone would pass int64's largest value.
  refused(sources::rate{{.rows_per_second = std::int64_t{1} << 62, .ramp_up_time = 3s}},
          "ramp_up_time");
  refused(sources::rate_micro_batch{{.rows_per_batch = 0}}, "rows_per_batch");
  refused(sources::rate_micro_batch{{.rows_per_batch = 1, .num_partitions = -1}},
          "num_partitions");
  refused(sources::rate_micro_batch{{.rows_per_batch = 1, .start_timestamp = event_time{-1s}}},
          "start_timestamp");
  refused(sources::rate_micro_batch{{.rows_per_batch = 1, .advance_millis_per_batch = -1ms}},
          "advance_millis_per_batch");

  // A job with one is refused before it starts, naming it.
  job j{{.name = "bad"}};
  j.from(sources::rate{{.rows_per_second = 0}}).sink_to(sinks::for_each<rate_row>([](auto&) {}));
  auto done = j.run();
  BOOST_REQUIRE(!done.has_value());
  BOOST_TEST(done.error().message.find("rows_per_second") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(offsets_past_int64_fail_naming_the_limit) {
  // 2^62 rows/s: int64 holds 1 s of values (Spark's maxSeconds = (2^63-1) / 2^62 = 1).
  auto clk = std::make_shared<manual_clock>();
  sources::rate d{{.rows_per_second = std::int64_t{1} << 62, .num_partitions = 1}};
  auto s = open(d, ctx(clk, every_second));
  clk->advance(2s);
  auto r = s->plan_trigger(false, 0);
  BOOST_REQUIRE(!r.has_value());
  BOOST_TEST_INFO(r.error().message);
  BOOST_TEST(r.error().message.find("integer overflow") != std::string::npos);
  BOOST_TEST(r.error().message.find("largest offset is 1 s, but it is 2 s") != std::string::npos);
}

// -- rate_micro_batch ---------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(micro_batch_rows_are_fixed_per_batch) {
  auto clk = std::make_shared<manual_clock>();
  const sources::rate_micro_batch_options o{.rows_per_batch = 5,
                                            .num_partitions = 2,
                                            .start_timestamp = event_time{1000ms},
                                            .advance_millis_per_batch = 500ms};
  sources::rate_micro_batch d{o};
  auto i0 = open(d, ctx(clk, every_second, 0, 2));
  auto i1 = open(d, ctx(clk, every_second, 1, 2));
  // Batch N: values 5N .. 5N+4, all stamped 1000 + N * 500 ms; partition p: 5N+p, 5N+p+2...
  BOOST_TEST(next_batch(*i0) == (rows{{1000, 0}, {1000, 2}, {1000, 4}}),
             boost::test_tools::per_element());
  BOOST_TEST(next_batch(*i1) == (rows{{1000, 1}, {1000, 3}}), boost::test_tools::per_element());
  clk->advance(1h); // the clock does not matter
  BOOST_TEST(next_batch(*i0) == (rows{{1500, 5}, {1500, 7}, {1500, 9}}),
             boost::test_tools::per_element());
  BOOST_TEST(next_batch(*i1) == (rows{{1500, 6}, {1500, 8}}), boost::test_tools::per_element());
  BOOST_TEST(i0->offset() == R"({"offset":10,"timestamp":2000})");
}

BOOST_AUTO_TEST_CASE(micro_batch_available_now_reads_one_batch) {
  auto clk = std::make_shared<manual_clock>();
  sources::rate_micro_batch d{{.rows_per_batch = 3}};
  auto s = open(d, ctx(clk, triggers::available_now()));
  BOOST_TEST(next_batch(*s) == (rows{{0, 0}, {0, 1}, {0, 2}}), boost::test_tools::per_element());
  BOOST_TEST(!read_batch(*s).has_value());
}

BOOST_AUTO_TEST_CASE(micro_batch_source_refuses_continuous_mode) {
  auto clk = std::make_shared<manual_clock>();
  sources::rate_micro_batch d{{.rows_per_batch = 3}};
  auto c = ctx(clk, triggers::continuous(1s));
  auto s = d.create(c);
  auto ok = s->open(c);
  BOOST_REQUIRE(!ok.has_value());
  BOOST_TEST(ok.error().message.find("micro-batch triggers only") != std::string::npos);
}

// -- in jobs ------------------------------------------------------------------------------

namespace {

/// What a foreach_batch sink saw per batch id, as each row's JSON line, sorted.
struct seen_batches {
  std::mutex m;
  std::map<std::int64_t, std::vector<std::string>> by_id;
  void record(std::int64_t id, const std::vector<rate_row>& rows) {
    std::vector<std::string> lines;
    for (auto& r : rows)
      lines.push_back(codec::to_json_line(r));
    std::sort(lines.begin(), lines.end());
    std::lock_guard guard{m};
    by_id[id] = std::move(lines);
  }
  std::map<std::int64_t, std::vector<std::string>> take() {
    std::lock_guard guard{m};
    return by_id;
  }
  std::size_t size() {
    std::lock_guard guard{m};
    return by_id.size();
  }
};

std::vector<std::string> lines(const rows& r) {
  std::vector<std::string> out;
  for (auto& [ms, v] : r)
    out.push_back(codec::to_json_line(rate_row{event_time{std::chrono::milliseconds{ms}}, v}));
  std::sort(out.begin(), out.end());
  return out;
}

} // namespace

BOOST_AUTO_TEST_CASE(a_job_under_processing_time_then_available_now_after_a_restore) {
  temp_dir ckpt;
  auto clk = std::make_shared<manual_clock>();
  const sources::rate_options o{.rows_per_second = 3, .num_partitions = 2};
  seen_batches first, second;
  auto build = [&](job& j, seen_batches& out) {
    j.from(sources::rate{o})
      .name("rate")
      .sink_to(sinks::foreach_batch<rate_row>(
        [&out](std::int64_t id, std::vector<rate_row>& rows) { out.record(id, rows); }))
      .name("each-batch");
  };
  {
    job_options jo;
    jo.name = "rate-job";
    jo.parallelism = 2;
    jo.trigger = triggers::processing_time(1s);
    jo.output_mode = output_mode::append;
    jo.runtime.processing_clock = clk;
    jo.checkpoints.dir = ckpt.path;
    jo.checkpoints.restart = restart_strategy::none();
    job j{jo};
    build(j, first);
    auto exec = require_ok(j.start());
    // The trigger at t = 0 runs Spark's batch 0, from no offset to 0 s: no rows (the
    // instances have opened, so the creation time is 0). Then t = 2.5 s: batch 1 = seconds
    // 0..2, values 0..5 at 2000 / 6 = 333.33 ms: round(k * 333.33) = 0 333 667 1000 1333
    // 1667 (real Spark 4.x gave these numbers with a real clock, 1.5 s triggers).
    BOOST_REQUIRE(wait_until(*exec, [&] { return first.size() >= 1; }));
    clk->advance(2500ms);
    BOOST_REQUIRE(wait_until(*exec, [&] { return first.size() >= 2; }));
    // t = 3.5 s (the next trigger): batch 2 = second 2..3, values 6..8 at 333.33 ms.
    clk->advance(1s);
    BOOST_REQUIRE(wait_until(*exec, [&] { return first.size() >= 3; }));
    exec->cancel();
    require_ok(exec->wait());
  }
  auto run1 = first.take();
  BOOST_REQUIRE(run1.size() == 3u);
  BOOST_TEST(run1[0].empty());
  BOOST_TEST(run1[1] == lines({{0, 0}, {333, 1}, {667, 2}, {1000, 3}, {1333, 4}, {1667, 5}}),
             boost::test_tools::per_element());
  BOOST_TEST(run1[2] == lines({{2000, 6}, {2333, 7}, {2667, 8}}),
             boost::test_tools::per_element());

  // Restart at t = 6.4 s under available_now, at parallelism 3 (the checkpoint lies between
  // batches): Spark's latest offset at the start is 6 s, so one batch, seconds 3..6: values
  // 9..17, 3000 ms / 9 = 333.33 ms apart from 3000.
  clk->advance(2900ms);
  job_options jo;
  jo.name = "rate-job";
  jo.parallelism = 3;
  jo.trigger = triggers::available_now();
  jo.output_mode = output_mode::append;
  jo.runtime.processing_clock = clk;
  jo.checkpoints.dir = ckpt.path;
  jo.checkpoints.restart = restart_strategy::none();
  job j{jo};
  build(j, second);
  auto done = require_ok(j.run());
  BOOST_TEST(done.restored_from.value() == 2);
  auto run2 = second.take();
  BOOST_REQUIRE(run2.size() == 1u);
  BOOST_TEST(run2[3] == lines({{3000, 9},
                               {3333, 10},
                               {3667, 11},
                               {4000, 12},
                               {4333, 13},
                               {4667, 14},
                               {5000, 15},
                               {5333, 16},
                               {5667, 17}}),
             boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(a_continuous_job_emits_rows_on_the_processing_clock) {
  auto clk = std::make_shared<manual_clock>();
  std::mutex m;
  rows got;
  job_options jo;
  jo.name = "rate-continuous";
  jo.parallelism = 2;
  jo.trigger = triggers::continuous(1s);
  jo.runtime.processing_clock = clk;
  job j{jo};
  j.from(sources::rate{{.rows_per_second = 3}})
    .name("rate")
    .sink_to(sinks::for_each<rate_row>([&](const rate_row& r) {
      std::lock_guard guard{m};
      got.push_back(as_pair(r));
    }));
  auto exec = require_ok(j.start());
  auto count = [&] {
    std::lock_guard guard{m};
    return got.size();
  };
  // t = 0: only value 0 is due. t = 2 s: values 0..6 (6 = second 2's first, at 2000 ms).
  BOOST_REQUIRE(wait_until(*exec, [&] { return count() >= 1; }));
  clk->advance(2s);
  BOOST_REQUIRE(wait_until(*exec, [&] { return count() >= 7; }));
  exec->cancel();
  require_ok(exec->wait());
  std::lock_guard guard{m};
  BOOST_TEST(sorted(got) == (rows{{0, 0}, {333, 1}, {667, 2}, {1000, 3}, {1333, 4}, {1667, 5},
                                 {2000, 6}}),
             boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(a_replayed_rate_micro_batch_is_byte_identical) {
  temp_dir ckpt;
  auto clk = std::make_shared<manual_clock>();
  const sources::rate_micro_batch_options o{.rows_per_batch = 4,
                                            .num_partitions = 3,
                                            .start_timestamp = event_time{10s},
                                            .advance_millis_per_batch = 250ms};
  seen_batches first, second;
  auto run = [&](seen_batches& out, trigger t, std::int64_t fail_in, int parallelism) {
    job_options jo;
    jo.name = "rmb";
    jo.parallelism = parallelism;
    jo.trigger = t;
    jo.output_mode = output_mode::append;
    jo.runtime.processing_clock = clk;
    jo.checkpoints.dir = ckpt.path;
    jo.checkpoints.restart = restart_strategy::none();
    job j{jo};
    j.from(sources::rate_micro_batch{o})
      .name("rate-micro-batch")
      .sink_to(sinks::foreach_batch<rate_row>(
        [&out, fail_in](std::int64_t id, std::vector<rate_row>& rows) {
          out.record(id, rows);
          if (id == fail_in)
            throw std::runtime_error("the batch function failed");
        }));
    return j.start();
  };
  {
    // Batches at t = 0, 1, 2 s; the function fails in batch 2 after recording it.
    auto exec = require_ok(run(first, triggers::processing_time(1s), 2, 2));
    BOOST_REQUIRE(wait_until(*exec, [&] { return first.size() >= 1; }));
    clk->advance(1s);
    BOOST_REQUIRE(wait_until(*exec, [&] { return first.size() >= 2; }));
    clk->advance(1s);
    BOOST_REQUIRE(exec->wait_for(safety_timeout));
    BOOST_REQUIRE(!exec->wait().has_value());
  }
  auto seen1 = first.take();
  BOOST_REQUIRE(seen1.count(2));
  // Batch N: values 4N..4N+3 at 10 000 + 250 N ms.
  BOOST_TEST(seen1[0] == lines({{10'000, 0}, {10'000, 1}, {10'000, 2}, {10'000, 3}}),
             boost::test_tools::per_element());
  BOOST_TEST(seen1[2] == lines({{10'500, 8}, {10'500, 9}, {10'500, 10}, {10'500, 11}}),
             boost::test_tools::per_element());
  // The restart, at parallelism 3, replays batch 2 from the offset log (the old instances'
  // logged ends, split anew), then available_now reads one more batch.
  auto exec = require_ok(run(second, triggers::available_now(), -1, 3));
  auto done = require_ok(exec->wait());
  BOOST_TEST(done.restored_from.value() == 1);
  auto seen2 = second.take();
  BOOST_REQUIRE(seen2.size() == 2u);
  BOOST_TEST(seen2[2] == seen1[2], boost::test_tools::per_element());
  BOOST_TEST(seen2[3] == lines({{10'750, 12}, {10'750, 13}, {10'750, 14}, {10'750, 15}}),
             boost::test_tools::per_element());
}

BOOST_AUTO_TEST_SUITE_END()
