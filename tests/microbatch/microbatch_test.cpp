// Micro-batch mode and Spark's output modes: the rules checked before a job starts, the
// available_now and once triggers over windows, running aggregates under update and
// complete, and the two rules for late rows.
//
// Triggers with a clock (processing_time, continuous) are in triggers_test.cpp; the
// memory-table and console sinks and progress reports in sinks_progress_test.cpp.
#define BOOST_TEST_MODULE microbatch_test
#include <boost/test/unit_test.hpp>

#include "microbatch_helpers.hpp"

#include "sluice/api/job.hpp"
#include "sluice/operators/window/window_operator.hpp"
#include "sluice/sinks/callback.hpp"
#include "sluice/sinks/console.hpp"
#include "sluice/sinks/file.hpp"
#include "sluice/sinks/memory.hpp"
#include "sluice/sources/collection.hpp"

#include <algorithm>
#include <atomic>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

using namespace sluice;
using namespace sluice::test;
using namespace sluice::test::mb;

namespace {

/// The error of `j.plan()`, required to be the same as `j.run()`'s.
error rule_error(job& j) {
  auto planned = require_error(j.plan());
  auto ran = require_error(j.run());
  BOOST_TEST(ran.message == planned.message);
  BOOST_TEST((ran.code == planned.code));
  return planned;
}

bool mentions(const error& e, const std::string& text) {
  return e.message.find(text) != std::string::npos;
}

job_options with(std::optional<output_mode> mode, trigger when = triggers::available_now()) {
  job_options o;
  o.name = "rules";
  o.trigger = when;
  o.output_mode = mode;
  return o;
}

/// A sink that only counts what reaches it: no invalid job may deliver a record.
struct reach_counter {
  std::shared_ptr<std::atomic<int>> n = std::make_shared<std::atomic<int>>(0);
  template <class T>
  auto sink() const {
    return sinks::for_each<T>([n = n](const T&) { n->fetch_add(1); });
  }
};

stream<kv> kv_input(job& j) {
  return j.from(sources::collection<kv>{{{"a", 1}, {"b", 2}}}).name("kvs");
}

stream<word_event> word_input(job& j) {
  return j.from(sources::collection<word_event>{{w("a", 1), w("b", 2)}},
                watermarks::bounded_out_of_orderness<word_event>(5s, ts_of))
    .name("words");
}

/// `left` interval-joined (within a second) with one word of a source "right", as "joined",
/// into `reached`.
/// One word in a source "right", keyed by word: the other side of the joins below.
auto right_words(job& j) {
  return j.from(sources::collection<word_event>{{w("a", 1)}},
                watermarks::bounded_out_of_orderness<word_event>(5s, ts_of))
    .name("right")
    .key_by(word_of);
}

template <class Left>
void join_with_right(job& j, Left left, const reach_counter& reached) {
  auto right = right_words(j);
  left.interval_join(right)
    .between(-1s, 1s)
    .apply()
    .name("joined")
    .sink_to(reached.sink<join_result<typename Left::record_type, word_event>>());
}

/// Spark's refusal of a stream-stream join in output mode `name` ("Update", "Complete"),
/// its message going on with `more`.
void require_join_refused(job& j, const std::string& name, const reach_counter& reached,
                          const std::string& more = "") {
  auto e = rule_error(j);
  BOOST_TEST((e.code == error_code::invalid_graph));
  BOOST_TEST(mentions(e, "Join between two streaming DataFrames/Datasets is not supported in " +
                           name + " output mode" + more),
             e.message);
  BOOST_TEST(reached.n->load() == 0);
}

} // namespace

// -- Spark's rules, checked before anything starts ---------------------------------------

BOOST_AUTO_TEST_SUITE(query_rules)

BOOST_AUTO_TEST_CASE(complete_mode_needs_an_aggregation) {
  job j{with(output_mode::complete)};
  reach_counter reached;
  kv_input(j).map([](const kv& x) { return x; }).sink_to(reached.sink<kv>());
  auto e = rule_error(j);
  BOOST_TEST((e.code == error_code::invalid_graph));
  BOOST_TEST(mentions(e, "Complete output mode not supported when there are no streaming "
                         "aggregations"),
             e.message);
  BOOST_TEST(reached.n->load() == 0);
}

BOOST_AUTO_TEST_CASE(append_mode_rejects_a_running_aggregate_without_watermark) {
  for (bool use_aggregate : {false, true}) {
    BOOST_TEST_CONTEXT("aggregate: " << use_aggregate) {
      job j{with(output_mode::append)};
      reach_counter reached;
      auto keyed = kv_input(j).key_by(key_of_kv);
      if (use_aggregate) {
        struct count_agg {
          std::int64_t create() const { return 0; }
          void add(std::int64_t& acc, const kv&) const { ++acc; }
          kv result(const std::string& k, const std::int64_t& acc) const { return {k, acc}; }
        };
        keyed.aggregate(count_agg{}).sink_to(reached.sink<kv>());
      } else {
        keyed.reduce(sum_kv).sink_to(reached.sink<kv>());
      }
      auto e = rule_error(j);
      BOOST_TEST((e.code == error_code::invalid_graph));
      BOOST_TEST(mentions(e, "Append output mode not supported when there are streaming "
                             "aggregations"),
                 e.message);
      BOOST_TEST(mentions(e, "without watermark"), e.message);
      BOOST_TEST(reached.n->load() == 0);
    }
  }
}

BOOST_AUTO_TEST_CASE(update_mode_rejects_session_windows) {
  auto sessions = [](job& j) {
    return word_input(j).key_by(word_of).window(windows::session{.gap = 5s}).count();
  };
  job j{with(output_mode::update)};
  reach_counter reached;
  sessions(j).name("sessions").sink_to(reached.sink<word_count>());
  auto e = rule_error(j);
  BOOST_TEST((e.code == error_code::invalid_graph));
  BOOST_TEST(mentions(e, "Update output mode not supported for session window"), e.message);
  BOOST_TEST(mentions(e, "'sessions'"), e.message);
  // Session windows are fine in the two other modes.
  for (auto mode : {output_mode::append, output_mode::complete}) {
    job ok{with(mode)};
    sessions(ok).sink_to(reached.sink<word_count>());
    require_ok(ok.plan());
  }
  BOOST_TEST(reached.n->load() == 0);
}

BOOST_AUTO_TEST_CASE(a_stream_stream_join_runs_in_append_and_in_update_without_aggregation) {
  auto build = [](job& j, const reach_counter& reached) {
    join_with_right(j, word_input(j).key_by(word_of), reached);
  };
  // Without an aggregation update emits what append does; pyspark 4.3 runs it.
  for (auto mode : {output_mode::append, output_mode::update}) {
    BOOST_TEST_CONTEXT(to_string(mode)) {
      job j{with(mode)};
      reach_counter reached;
      build(j, reached);
      require_ok(j.plan());
    }
  }
  // Complete needs an aggregation, and Spark says so first.
  job j{with(output_mode::complete)};
  reach_counter reached;
  build(j, reached);
  auto e = rule_error(j);
  BOOST_TEST(mentions(e, "Complete output mode not supported when there are no streaming "
                         "aggregations"),
             e.message);
}

BOOST_AUTO_TEST_CASE(a_stream_stream_join_with_an_aggregation_only_runs_in_append_mode) {
  auto build = [](job& j, const reach_counter& reached) {
    auto left = word_input(j).key_by(word_of);
    auto right = right_words(j);
    left.interval_join(right)
      .between(-1s, 1s)
      .apply()
      .name("joined")
      .key_by([](const join_result<word_event, word_event>& r) { return r.left.word; })
      .window(windows::tumbling{.size = 10s})
      .count()
      .sink_to(reached.sink<word_count>());
  };
  for (auto [mode, name] : {std::pair{output_mode::update, "Update"},
                            std::pair{output_mode::complete, "Complete"}}) {
    BOOST_TEST_CONTEXT(name) {
      job j{with(mode)};
      reach_counter reached;
      build(j, reached);
      require_join_refused(j, name, reached, ", only in Append output mode");
    }
  }
  job ok{with(output_mode::append)};
  reach_counter reached;
  build(ok, reached);
  require_ok(ok.plan());
}

// pyspark 4.3 runs an inner stream-stream join in update mode but refuses an outer one
// (tests/golden/spark/cases/stream_join_left).
BOOST_AUTO_TEST_CASE(a_left_outer_stream_stream_join_runs_only_in_append_mode) {
  auto build = [](job& j, const reach_counter& reached) {
    auto left = word_input(j).key_by(word_of);
    left.interval_join(right_words(j))
      .between(-1s, 1s)
      .left_outer()
      .apply()
      .name("joined")
      .sink_to(reached.sink<join_result<word_event, word_event>>());
  };
  {
    job j{with(output_mode::update)};
    reach_counter reached;
    build(j, reached);
    auto e = rule_error(j);
    BOOST_TEST((e.code == error_code::invalid_graph));
    BOOST_TEST(mentions(e, "LeftOuter join between two streaming DataFrames/Datasets is not "
                           "supported in Update output mode, only in Append output mode"),
               e.message);
    BOOST_TEST(mentions(e, "'joined'"), e.message);
    BOOST_TEST(reached.n->load() == 0);
  }
  job ok{with(output_mode::append)};
  reach_counter reached;
  build(ok, reached);
  require_ok(ok.plan());
}

BOOST_AUTO_TEST_CASE(the_file_sink_is_append_only) {
  temp_dir dir;
  for (auto [mode, name] : {std::pair{output_mode::update, "Update"},
                            std::pair{output_mode::complete, "Complete"}}) {
    BOOST_TEST_CONTEXT(name) {
      job j{with(mode)};
      kv_input(j).key_by(key_of_kv).reduce(sum_kv).sink_to(
        sinks::file<kv>{{.path = dir.path / "out.jsonl"}});
      auto e = rule_error(j);
      BOOST_TEST((e.code == error_code::invalid_graph));
      BOOST_TEST(mentions(e, "Data source file does not support " + std::string{name} +
                               " output mode"),
                 e.message);
    }
  }
  BOOST_TEST(!std::filesystem::exists(dir.path / "out.jsonl"), "nothing may run");
  // Append over event-time windows is fine.
  job ok{with(output_mode::append)};
  word_input(ok).key_by(word_of).window(windows::tumbling{.size = 10s}).count().sink_to(
    sinks::file<word_count>{{.path = dir.path / "out.jsonl"}});
  require_ok(ok.plan());
}

BOOST_AUTO_TEST_CASE(memory_sinks_cannot_update) {
  {
    job j{with(output_mode::update)};
    auto out = sinks::collect<kv>{};
    kv_input(j).key_by(key_of_kv).reduce(sum_kv).sink_to(out);
    auto e = rule_error(j);
    BOOST_TEST((e.code == error_code::invalid_graph));
    BOOST_TEST(mentions(e, "Data source memory does not support Update output mode"), e.message);
    BOOST_TEST(out.size() == 0u);
  }
  {
    job j{with(output_mode::update)};
    auto table = sinks::memory_table<kv>{};
    kv_input(j).key_by(key_of_kv).reduce(sum_kv).sink_to(table);
    auto e = rule_error(j);
    BOOST_TEST((e.code == error_code::invalid_graph));
    BOOST_TEST(mentions(e, "Data source memory_table does not support Update output mode"),
               e.message);
    BOOST_TEST(table.rows().empty());
    BOOST_TEST(table.last_epoch() == -1);
  }
  // Append and complete are theirs.
  for (auto mode : {output_mode::append, output_mode::complete}) {
    job ok{with(mode)};
    auto keyed = word_input(ok).key_by(word_of).window(windows::tumbling{.size = 10s}).count();
    keyed.sink_to(sinks::collect<word_count>{});
    keyed.sink_to(sinks::memory_table<word_count>{});
    require_ok(ok.plan());
  }
}

BOOST_AUTO_TEST_CASE(micro_batches_need_a_bounded_watermark_strategy) {
  auto build = [](job& j) {
    j.from(sources::collection<word_event>{{w("a", 1)}},
           watermarks::custom<word_event>(ts_of, [] {
             return std::make_unique<bounded_out_of_orderness_generator<word_event>>(5s);
           }))
      .name("customized")
      .key_by(word_of)
      .window(windows::tumbling{.size = 10s})
      .count()
      .sink_to(sinks::collect<word_count>{});
  };
  for (auto when : {triggers::available_now(), triggers::once(), triggers::processing_time(1s)}) {
    BOOST_TEST_CONTEXT(when.describe()) {
      job j{with(output_mode::append, when)};
      build(j);
      auto e = rule_error(j);
      BOOST_TEST((e.code == error_code::invalid_option));
      BOOST_TEST(mentions(e, "source 'customized'"), e.message);
      BOOST_TEST(mentions(e, "not a custom one"), e.message);
      BOOST_TEST(mentions(e, "watermarks::bounded_out_of_orderness"), e.message);
    }
  }
  // Continuous epochs keep the sources' own watermarks: a custom strategy is fine there,
  // with or without an output mode.
  for (auto mode : {std::optional<output_mode>{}, std::optional{output_mode::append}}) {
    job ok{with(mode, triggers::continuous())};
    build(ok);
    require_ok(ok.plan());
  }
  // And monotonous is a bounded strategy (delay 0).
  job mono{with(output_mode::append)};
  mono.from(sources::collection<word_event>{{w("a", 1)}}, watermarks::monotonous<word_event>(ts_of))
    .key_by(word_of)
    .window(windows::tumbling{.size = 10s})
    .count()
    .sink_to(sinks::collect<word_count>{});
  require_ok(mono.plan());
}

BOOST_AUTO_TEST_CASE(trigger_intervals_must_be_positive) {
  for (auto when : {triggers::processing_time(0ms), triggers::processing_time(-1s),
                    triggers::continuous(0ms), triggers::continuous(-5ms)}) {
    BOOST_TEST_CONTEXT(when.describe()) {
      job j{with(std::nullopt, when)};
      reach_counter reached;
      kv_input(j).sink_to(reached.sink<kv>());
      auto e = rule_error(j);
      BOOST_TEST((e.code == error_code::invalid_option));
      BOOST_TEST(mentions(e, "the interval must be positive"), e.message);
      BOOST_TEST(mentions(e, when.describe()), e.message);
      BOOST_TEST(reached.n->load() == 0);
    }
  }
  job ok{with(std::nullopt, triggers::processing_time(1ms))};
  kv_input(ok).sink_to(sinks::collect<kv>{});
  require_ok(ok.plan());
}

// -- Spark 3.4+: nothing stateful after an aggregation in update or complete mode ---------
//
// Spark's UnsupportedOperationChecker (checkStreamingQueryGlobalWatermarkLimit) refuses a
// stateful operator (aggregation, deduplication, join, flatMapGroupsWithState) downstream
// of an aggregation unless the output mode is append: in update and complete mode the
// aggregation re-emits rows older than the watermark, which the next stateful operator
// would drop as late. One test per shape; the last shows append still chains.

namespace {

word_count add_counts(const word_count& a, const word_count& b) {
  auto r = a;
  r.value += b.value;
  return r;
}
std::string key_of_count(const word_count& c) { return c.key; }

/// Windowed counts per word: word_input -> tumbling 10 s -> count "counts".
stream<word_count> windowed_counts(job& j) {
  return word_input(j).key_by(word_of).window(windows::tumbling{.size = 10s}).count().name("counts");
}

/// A running sum per key: kv_input -> reduce "sums".
stream<kv> running_sums(job& j) { return kv_input(j).key_by(key_of_kv).reduce(sum_kv).name("sums"); }

/// The refusal names Spark's pattern, both operators and the output mode.
void require_chain_refused(job& j, output_mode mode, const std::string& downstream,
                           const std::string& aggregation, const reach_counter& reached) {
  auto e = rule_error(j);
  BOOST_TEST((e.code == error_code::invalid_graph));
  BOOST_TEST(mentions(e, "Detected pattern of possible 'correctness' issue due to global "
                         "watermark"),
             e.message);
  BOOST_TEST(mentions(e, "'" + downstream + "'"), e.message);
  BOOST_TEST(mentions(e, "'" + aggregation + "'"), e.message);
  const std::string name = mode == output_mode::update ? "Update" : "Complete";
  BOOST_TEST(mentions(e, name + " output mode"), e.message);
  BOOST_TEST(reached.n->load() == 0);
}

/// The job `build(j, reached)` makes is refused in update and in complete mode, as
/// `require_chain_refused` says.
template <class Build>
void refused_in_update_and_complete(const std::string& downstream, const std::string& aggregation,
                                    Build build) {
  for (auto mode : {output_mode::update, output_mode::complete}) {
    BOOST_TEST_CONTEXT(to_string(mode)) {
      job j{with(mode)};
      reach_counter reached;
      build(j, reached);
      require_chain_refused(j, mode, downstream, aggregation, reached);
    }
  }
}

} // namespace

BOOST_AUTO_TEST_CASE(update_and_complete_refuse_an_aggregation_after_an_aggregation) {
  // Windowed counts, then a running total per word over them.
  refused_in_update_and_complete("totals", "counts", [](job& j, const reach_counter& reached) {
    windowed_counts(j)
      .key_by(key_of_count)
      .reduce(add_counts)
      .name("totals")
      .sink_to(reached.sink<word_count>());
  });
  // A running aggregate followed by another, with a stateless step between them.
  job j{with(output_mode::update)};
  reach_counter reached;
  running_sums(j)
    .map([](const kv& x) { return kv{x.key.substr(0, 1), x.value}; })
    .key_by(key_of_kv)
    .reduce(sum_kv)
    .name("sums of sums")
    .sink_to(reached.sink<kv>());
  require_chain_refused(j, output_mode::update, "sums of sums", "sums", reached);
}

BOOST_AUTO_TEST_CASE(update_and_complete_refuse_deduplication_after_an_aggregation) {
  refused_in_update_and_complete("once", "counts", [](job& j, const reach_counter& reached) {
    windowed_counts(j)
      .key_by(key_of_count)
      .drop_duplicates_within_watermark(1s)
      .name("once")
      .sink_to(reached.sink<word_count>());
  });
}

BOOST_AUTO_TEST_CASE(update_and_complete_refuse_keyed_state_after_an_aggregation) {
  // Keyed process functions are Sluice's flatMapGroupsWithState / transformWithState.
  refused_in_update_and_complete("stateful", "sums", [](job& j, const reach_counter& reached) {
    running_sums(j)
      .key_by(key_of_kv)
      .process([](const kv& x, keyed_context<std::string>&, collector<kv>& out) { out.collect(x); })
      .name("stateful")
      .sink_to(reached.sink<kv>());
  });
}

BOOST_AUTO_TEST_CASE(complete_refuses_a_session_window_after_an_aggregation) {
  // (Update refuses session windows anywhere, update_mode_rejects_session_windows.)
  job j{with(output_mode::complete)};
  reach_counter reached;
  windowed_counts(j)
    .key_by(key_of_count)
    .window(windows::session{.gap = 1min})
    .count()
    .name("sessions")
    .sink_to(reached.sink<window_result<std::string, std::uint64_t>>());
  require_chain_refused(j, output_mode::complete, "sessions", "counts", reached);
}

BOOST_AUTO_TEST_CASE(update_and_complete_refuse_a_join_after_an_aggregation) {
  // Spark's join rule answers first (a stream-stream join is append-only), as in Spark.
  for (auto [mode, name] : {std::pair{output_mode::update, "Update"},
                            std::pair{output_mode::complete, "Complete"}}) {
    BOOST_TEST_CONTEXT(name) {
      job j{with(mode)};
      reach_counter reached;
      join_with_right(j, windowed_counts(j).key_by(key_of_count), reached);
      require_join_refused(j, name, reached);
    }
  }
}

BOOST_AUTO_TEST_CASE(append_chains_stateful_operators_after_windowed_aggregations) {
  // Spark 3.4+: windows over windows, and deduplication or keyed state after a window, run
  // in append mode (each window's row is final when emitted).
  job j{with(output_mode::append)};
  auto counts = windowed_counts(j);
  counts.key_by(key_of_count)
    .window(windows::tumbling{.size = 1min})
    .sum([](const word_count& c) { return c.value; })
    .name("per minute")
    .sink_to(sinks::collect<window_result<std::string, std::uint64_t>>{});
  counts.key_by(key_of_count)
    .drop_duplicates_within_watermark(1s)
    .name("once")
    .sink_to(sinks::collect<word_count>{});
  require_ok(j.plan());
  // And the job runs: the minute sums add up the ten-second counts. (Continuous epochs: the
  // end of the bounded input brings the final watermark, which closes every window; under
  // available_now, as in Spark, the watermark stays at max event time - delay.)
  job run{with(output_mode::append, triggers::continuous())};
  sinks::collect<window_result<std::string, std::uint64_t>> out;
  windowed_counts(run)
    .key_by(key_of_count)
    .window(windows::tumbling{.size = 1min})
    .sum([](const word_count& c) { return c.value; })
    .sink_to(out);
  require_ok(run.run());
  std::vector<std::string> rows;
  for (const auto& r : out.records())
    rows.push_back(r.key + "=" + std::to_string(r.value));
  std::sort(rows.begin(), rows.end());
  BOOST_TEST(rows == (std::vector<std::string>{"a=1", "b=1"}), boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(console_for_each_and_foreach_batch_take_every_mode) {
  std::ostringstream text;
  for (auto mode : {output_mode::append, output_mode::update, output_mode::complete}) {
    BOOST_TEST_CONTEXT(to_string(mode)) {
      // Windows with a watermark: valid in all three modes.
      job j{with(mode)};
      auto counts =
        word_input(j).key_by(word_of).window(windows::tumbling{.size = 10s}).count();
      counts.sink_to(sinks::console<word_count>{{.out = &text}});
      counts.sink_to(sinks::for_each<word_count>([](const word_count&) {}));
      counts.sink_to(sinks::foreach_batch<word_count>([](std::int64_t, std::vector<word_count>&) {}));
      require_ok(j.plan());
      if (mode != output_mode::append) {
        // A running aggregate: valid in update and complete.
        job r{with(mode)};
        auto sums = kv_input(r).key_by(key_of_kv).reduce(sum_kv);
        sums.sink_to(sinks::console<kv>{{.out = &text}});
        sums.sink_to(sinks::for_each<kv>([](const kv&) {}));
        sums.sink_to(sinks::foreach_batch<kv>([](std::int64_t, std::vector<kv>&) {}));
        require_ok(r.plan());
      }
    }
  }
  // Without an output mode nothing of Spark's applies: a reduce into a file is fine.
  temp_dir dir;
  job flink{with(std::nullopt, triggers::continuous())};
  kv_input(flink).key_by(key_of_kv).reduce(sum_kv).sink_to(
    sinks::file<kv>{{.path = dir.path / "out.jsonl"}});
  require_ok(flink.plan());
  BOOST_TEST(text.str().empty(), "validation runs nothing");
}

BOOST_AUTO_TEST_SUITE_END()

// -- available_now and once over files -----------------------------------------------------

namespace {

struct word_run {
  std::vector<std::int64_t> ids;
  std::vector<strings> batches;
  std::vector<query_progress> progress;
};

/// The word count over the four word files, `max_files` per trigger, to its end.
word_run run_words(output_mode mode, trigger when,
                   late_row_rule rule = late_row_rule::previous_watermark,
                   std::size_t max_files = 1, int parallelism = 1) {
  temp_dir dir;
  write_word_files(dir);
  batch_log<word_count> log;
  job_options o{.name = "words", .trigger = when, .output_mode = mode, .late_rows = rule};
  o.parallelism = parallelism;
  job j{o};
  word_count_job(j, files_in(dir, max_files), log.sink());
  auto [done, progress] = run_until_it_ends(j);
  BOOST_TEST(!done.cancelled);
  return {log.ids(), log.batches(row_text), progress};
}

} // namespace

BOOST_AUTO_TEST_SUITE(available_now)

BOOST_AUTO_TEST_CASE(append_emits_each_window_once_when_the_watermark_passes_it) {
  auto r = run_words(output_mode::append, triggers::available_now());
  BOOST_TEST(r.ids == (std::vector<std::int64_t>{0, 1, 2, 3, 4}), boost::test_tools::per_element());
  std::vector<strings> want{{},
                            {},
                            {},
                            {"a[0,10)=2", "a[10,20)=2", "b[0,10)=3", "c[10,20)=1"},
                            {"a[20,30)=1"}}; // the no-data batch: watermark 20 -> 31
  BOOST_TEST(r.batches == want, boost::test_tools::per_element());
  BOOST_TEST(ids_of(r.progress) == r.ids, boost::test_tools::per_element());
  BOOST_TEST(input_rows_of(r.progress) == (std::vector<std::uint64_t>{3, 3, 2, 3, 0}),
             boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(max_files_per_trigger_is_the_whole_sources_cap_at_any_parallelism) {
  // Spark's maxFilesPerTrigger caps the query's source, not each task: two source
  // instances still read one file per batch between them (they used to read one each).
  for (int parallelism : {2, 3}) {
    BOOST_TEST_CONTEXT("parallelism " << parallelism) {
      auto r = run_words(output_mode::append, triggers::available_now(),
                         late_row_rule::previous_watermark, 1, parallelism);
      BOOST_TEST(input_rows_of(r.progress) == (std::vector<std::uint64_t>{3, 3, 2, 3, 0}),
                 boost::test_tools::per_element());
      BOOST_TEST(r.ids == (std::vector<std::int64_t>{0, 1, 2, 3, 4}),
                 boost::test_tools::per_element());
      BOOST_REQUIRE_EQUAL(r.batches.size(), 5u);
      BOOST_TEST(r.batches[3] == (strings{"a[0,10)=2", "a[10,20)=2", "b[0,10)=3", "c[10,20)=1"}),
                 boost::test_tools::per_element());
    }
  }
  // Two per trigger: {001, 002} and {003, 004}, as at parallelism 1.
  auto two = run_words(output_mode::update, triggers::available_now(),
                       late_row_rule::previous_watermark, 2, 2);
  BOOST_TEST(input_rows_of(two.progress) == (std::vector<std::uint64_t>{6, 5, 0}),
             boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(update_emits_the_windows_changed_in_each_batch) {
  auto r = run_words(output_mode::update, triggers::available_now());
  BOOST_TEST(r.ids == (std::vector<std::int64_t>{0, 1, 2, 3, 4}), boost::test_tools::per_element());
  std::vector<strings> want{{"a[0,10)=2", "b[0,10)=1"},
                            {"a[10,20)=1", "b[0,10)=2", "c[10,20)=1"},
                            {"a[10,20)=2", "a[20,30)=1"},
                            {"a[30,40)=1", "b[0,10)=3"}, // x@-2 is late; b@5 is not (yet)
                            {}}; // no-data batch: evicts a[20,30) without output
  BOOST_TEST(r.batches == want, boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(complete_emits_the_whole_table_and_runs_no_empty_batch) {
  auto r = run_words(output_mode::complete, triggers::available_now());
  BOOST_TEST(r.ids == (std::vector<std::int64_t>{0, 1, 2, 3}), boost::test_tools::per_element());
  std::vector<strings> want{
    {"a[0,10)=2", "b[0,10)=1"},
    {"a[0,10)=2", "a[10,20)=1", "b[0,10)=2", "c[10,20)=1"},
    {"a[0,10)=2", "a[10,20)=2", "a[20,30)=1", "b[0,10)=2", "c[10,20)=1"},
    // Complete mode drops and evicts nothing: x@-2 counts.
    {"a[0,10)=2", "a[10,20)=2", "a[20,30)=1", "a[30,40)=1", "b[0,10)=3", "c[10,20)=1",
     "x[-10,0)=1"}};
  BOOST_TEST(r.batches == want, boost::test_tools::per_element());
  BOOST_TEST(input_rows_of(r.progress) == (std::vector<std::uint64_t>{3, 3, 2, 3}),
             boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(once_reads_every_file_in_one_batch) {
  const strings everything{"a[0,10)=2", "a[10,20)=2", "a[20,30)=1", "a[30,40)=1",
                           "b[0,10)=3", "c[10,20)=1", "x[-10,0)=1"};
  for (auto mode : {output_mode::append, output_mode::update, output_mode::complete}) {
    BOOST_TEST_CONTEXT(to_string(mode)) {
      auto r = run_words(mode, triggers::once());
      // One batch although max_files_per_trigger is 1, with Spark's first watermark, so
      // nothing is late and append emits nothing; no no-data batch follows.
      BOOST_TEST(r.ids == (std::vector<std::int64_t>{0}), boost::test_tools::per_element());
      BOOST_REQUIRE_EQUAL(r.batches.size(), 1u);
      BOOST_TEST(r.batches[0] == (mode == output_mode::append ? strings{} : everything),
                 boost::test_tools::per_element());
      BOOST_REQUIRE_EQUAL(r.progress.size(), 1u);
      BOOST_TEST(r.progress[0].num_input_rows == word_rows);
      BOOST_TEST(r.progress[0].event_time.at("watermark") == "1970-01-01T00:00:00.000Z");
    }
  }
}

BOOST_AUTO_TEST_CASE(max_files_per_trigger_groups_files_into_batches) {
  // Two files per trigger: batches {001, 002} and {003, 004}.
  auto r = run_words(output_mode::update, triggers::available_now(),
                     late_row_rule::previous_watermark, 2);
  // Batch 1 judges lateness by batch 0's watermark (1970), so b@5 and even x@-2 count; it
  // runs with watermark 13 - 5 = 8, which frees x's window right after counting it (update
  // emits it once). The no-data batch 2 moves the watermark to 36 - 5 = 31.
  BOOST_TEST(input_rows_of(r.progress) == (std::vector<std::uint64_t>{6, 5, 0}),
             boost::test_tools::per_element());
  BOOST_TEST(r.ids == (std::vector<std::int64_t>{0, 1, 2}), boost::test_tools::per_element());
  std::vector<strings> want{{"a[0,10)=2", "a[10,20)=1", "b[0,10)=2", "c[10,20)=1"},
                            {"a[10,20)=2", "a[20,30)=1", "a[30,40)=1", "b[0,10)=3", "x[-10,0)=1"},
                            {}};
  BOOST_TEST(r.batches == want, boost::test_tools::per_element());
}

BOOST_AUTO_TEST_SUITE_END()

// -- running aggregates (keyed reduce / aggregate) -----------------------------------------

BOOST_AUTO_TEST_SUITE(running_aggregates)

namespace {

struct count_and_sum {
  struct acc {
    std::int64_t count = 0;
    std::int64_t sum = 0;
  };
  acc create() const { return {}; }
  void add(acc& a, const kv& x) const {
    ++a.count;
    a.sum += x.value;
  }
  /// "count:sum" in the value's digits: count * 1000 + sum.
  kv result(const std::string& key, const acc& a) const { return {key, a.count * 1000 + a.sum}; }
};

std::vector<strings> run_sales(output_mode mode, bool use_aggregate) {
  batch_log<kv> log;
  job j{split_options(mode)};
  auto keyed = j.from(sources::collection<kv>{sales()}).name("sales").key_by(key_of_kv);
  if (use_aggregate)
    keyed.aggregate(count_and_sum{}).name("totals").sink_to(log.sink());
  else
    keyed.reduce(sum_kv).name("totals").sink_to(log.sink());
  auto done = require_ok(j.run());
  BOOST_TEST(!done.cancelled);
  BOOST_TEST(log.ids() == (std::vector<std::int64_t>{0, 1, 2}), boost::test_tools::per_element());
  return log.batches(kv_text);
}

} // namespace

BOOST_AUTO_TEST_CASE(reduce_in_update_mode_emits_only_the_keys_changed_in_the_batch) {
  auto got = run_sales(output_mode::update, false);
  std::vector<strings> want{{"a=4", "b=2", "c=4"}, {"a=5", "b=32", "d=5"}, {"a=7", "e=7"}};
  BOOST_TEST(got == want, boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(reduce_in_complete_mode_emits_every_key_every_batch) {
  auto got = run_sales(output_mode::complete, false);
  std::vector<strings> want{{"a=4", "b=2", "c=4"},
                            {"a=5", "b=32", "c=4", "d=5"},
                            {"a=7", "b=32", "c=4", "d=5", "e=7"}};
  BOOST_TEST(got == want, boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(aggregate_follows_the_same_modes) {
  // value = count * 1000 + sum
  auto update = run_sales(output_mode::update, true);
  BOOST_TEST(update == (std::vector<strings>{{"a=2004", "b=1002", "c=1004"},
                                             {"a=3005", "b=3032", "d=1005"},
                                             {"a=4007", "e=1007"}}),
             boost::test_tools::per_element());
  auto complete = run_sales(output_mode::complete, true);
  BOOST_TEST(complete == (std::vector<strings>{{"a=2004", "b=1002", "c=1004"},
                                               {"a=3005", "b=3032", "c=1004", "d=1005"},
                                               {"a=4007", "b=3032", "c=1004", "d=1005", "e=1007"}}),
             boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(state_reports_count_keys_written_and_held) {
  for (auto mode : {output_mode::update, output_mode::complete}) {
    BOOST_TEST_CONTEXT(to_string(mode)) {
      progress_log progress;
      auto opts = split_options(mode);
      opts.on_progress = progress.callback();
      batch_log<kv> log;
      job j{opts};
      j.from(sources::collection<kv>{sales()})
        .name("sales")
        .key_by(key_of_kv)
        .reduce(sum_kv)
        .name("totals")
        .sink_to(log.sink());
      require_ok(j.run());
      auto ps = progress.reports();
      BOOST_REQUIRE_EQUAL(ps.size(), 3u);
      const std::vector<std::uint64_t> total{3, 4, 5}, updated{3, 3, 2};
      const std::vector<std::uint64_t> out_rows =
        mode == output_mode::update ? std::vector<std::uint64_t>{3, 3, 2}
                                    : std::vector<std::uint64_t>{3, 4, 5};
      auto entries = log.entries();
      for (std::size_t b = 0; b < ps.size(); ++b) {
        BOOST_TEST_CONTEXT("batch " << b) {
          BOOST_TEST(ps[b].num_input_rows == 4u - (b == 2 ? 2u : 0u));
          BOOST_REQUIRE_EQUAL(ps[b].state_operators.size(), 1u);
          auto& s = ps[b].state_operators[0];
          BOOST_TEST(s.name == "totals");
          BOOST_TEST(s.num_rows_total == total[b]);
          BOOST_TEST(s.num_rows_updated == updated[b]);
          BOOST_TEST(s.num_rows_removed == 0u);
          BOOST_TEST(ps[b].sink.num_output_rows == out_rows[b]);
          BOOST_TEST(entries[b].rows.size() == out_rows[b]);
        }
      }
    }
  }
}

BOOST_AUTO_TEST_CASE(once_reads_every_record_in_one_batch_despite_the_record_cap) {
  // Trigger.Once ignores per-trigger caps (core/epoch.hpp): the record cap too.
  auto opts = split_options(output_mode::complete);
  opts.trigger = triggers::once();
  batch_log<kv> log;
  job j{opts};
  j.from(sources::collection<kv>{sales()}).key_by(key_of_kv).reduce(sum_kv).sink_to(log.sink());
  auto progress = run_until_it_ends(j).progress;
  BOOST_TEST(log.ids() == (std::vector<std::int64_t>{0}), boost::test_tools::per_element());
  BOOST_TEST(log.batches(kv_text) == (std::vector<strings>{{"a=7", "b=32", "c=4", "d=5", "e=7"}}),
             boost::test_tools::per_element());
  BOOST_TEST(input_rows_of(progress) == (std::vector<std::uint64_t>{10}),
             boost::test_tools::per_element());
}

BOOST_AUTO_TEST_SUITE_END()

// -- which watermark makes a row late ------------------------------------------------------

BOOST_AUTO_TEST_SUITE(late_rows)

namespace {

/// Three micro-batches of two rows (one instance, batch size 1, cap 2), watermark delay 0,
/// tumbling 10 s windows:
///
///   batch 0: a@5 b@25    runs with watermark 1970, ends with max event time 25
///   batch 1: c@30 f@29   runs with watermark 25
///   batch 2: d@27 e@12   runs with watermark 30
///
/// In batch 2, d@27 (window [20,30), end 30) is late by the batch's own watermark (30) but
/// not by the previous one (25); e@12 (end 20) is late by both.
std::vector<word_event> late_input() {
  return {w("a", 5), w("b", 25), w("c", 30), w("f", 29), w("d", 27), w("e", 12)};
}

struct late_run {
  std::vector<strings> batches;
  std::vector<query_progress> progress;
  std::uint64_t late_records = 0;
};

late_run run_late(late_row_rule rule) {
  batch_log<word_count> log;
  job_options o;
  o.name = "late";
  o.trigger = triggers::available_now();
  o.output_mode = output_mode::append;
  o.late_rows = rule;
  o.runtime.batch_size = 1;
  o.runtime.max_records_per_trigger = 2;
  job j{o};
  j.from(sources::collection<word_event>{late_input()},
         watermarks::bounded_out_of_orderness<word_event>(0s, ts_of))
    .name("words")
    .key_by(word_of)
    .window(windows::tumbling{.size = 10s})
    .count()
    .name("counts")
    .sink_to(log.sink());
  auto [done, progress] = run_until_it_ends(j);
  late_run r{log.batches(row_text), progress, 0};
  for (auto& t : done.tasks)
    if (t.chain.find("counts") != std::string::npos)
      r.late_records += t.late_records;
  return r;
}

std::vector<std::uint64_t> dropped_of(const std::vector<query_progress>& ps) {
  std::vector<std::uint64_t> out;
  for (auto& p : ps)
    out.push_back(p.state_operators.empty() ? 999u
                                            : p.state_operators[0].num_rows_dropped_by_watermark);
  return out;
}

} // namespace

BOOST_AUTO_TEST_CASE(previous_watermark_counts_a_row_its_own_batch_then_emits) {
  auto r = run_late(late_row_rule::previous_watermark);
  std::vector<strings> want{{}, {"a[0,10)=1"}, {"b[20,30)=1", "d[20,30)=1", "f[20,30)=1"}};
  BOOST_TEST(r.batches == want, boost::test_tools::per_element());
  BOOST_TEST(dropped_of(r.progress) == (std::vector<std::uint64_t>{0, 0, 1}),
             boost::test_tools::per_element());
  BOOST_TEST(r.late_records == 1u);
  BOOST_REQUIRE_EQUAL(r.progress.size(), 3u);
  BOOST_TEST(r.progress[2].event_time.at("watermark") == "2023-11-14T22:13:50.000Z"); // 30
}

BOOST_AUTO_TEST_CASE(epoch_watermark_drops_it) {
  auto r = run_late(late_row_rule::epoch_watermark);
  std::vector<strings> want{{}, {"a[0,10)=1"}, {"b[20,30)=1", "f[20,30)=1"}};
  BOOST_TEST(r.batches == want, boost::test_tools::per_element());
  BOOST_TEST(dropped_of(r.progress) == (std::vector<std::uint64_t>{0, 0, 2}),
             boost::test_tools::per_element());
  BOOST_TEST(r.late_records == 2u);
}

BOOST_AUTO_TEST_CASE(the_rules_differ_on_the_word_files_too) {
  // Batch 3 of the word files: b@5 (end 10) against watermark 8 (previous) or 20 (own).
  for (auto rule : {late_row_rule::previous_watermark, late_row_rule::epoch_watermark}) {
    const bool previous = rule == late_row_rule::previous_watermark;
    BOOST_TEST_CONTEXT((previous ? "previous" : "epoch")) {
      auto r = run_words(output_mode::append, triggers::available_now(), rule);
      BOOST_REQUIRE_EQUAL(r.batches.size(), 5u);
      BOOST_TEST(r.batches[3] == (strings{"a[0,10)=2", "a[10,20)=2",
                                        previous ? "b[0,10)=3" : "b[0,10)=2", "c[10,20)=1"}),
                 boost::test_tools::per_element());
      BOOST_TEST(dropped_of(r.progress) ==
                   (std::vector<std::uint64_t>{0, 0, 0, previous ? 1u : 2u, 0}),
                 boost::test_tools::per_element());
    }
  }
}

BOOST_AUTO_TEST_SUITE_END()
