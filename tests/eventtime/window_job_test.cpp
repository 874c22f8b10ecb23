// Event-time windows in whole jobs: keyed, window_all and cascaded windows, late data to a
// side output, graph errors before the start, malformed event times, and a property test:
// random parallelism and batching give the single-threaded reference result.
#include <boost/test/unit_test.hpp>

#include "sluice/api/job.hpp"
#include "sluice/sinks/memory.hpp"
#include "sluice/sources/collection.hpp"
#include "sluice/sources/watermarks.hpp"
#include "sluice/tests/engine/test_helpers.hpp"
#include "sluice/tests/eventtime/window_events.hpp"

#include <algorithm>
#include <cstdint>
#include <limits>
#include <map>
#include <random>
#include <string>
#include <tuple>
#include <vector>

using namespace sluice;
using namespace sluice::test;
using namespace sluice::test::win;

namespace {

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
