// Spark's order inside a micro-batch for the stateful operators other than windows over
// aggregations: session windows and deduplication run the batch's rows first, judge
// lateness by the previous batch's watermark (3.4+) or the batch's own, and evict state at
// the batch's watermark only after the rows (docs/micro-batch.md, "Late rows").
#include <boost/test/unit_test.hpp>

#include "sluice/api/job.hpp"
#include "sluice/sources/collection.hpp"
#include "sluice/tests/microbatch/microbatch_helpers.hpp"

#include <string>
#include <utility>
#include <vector>

using namespace sluice;
using namespace sluice::test;
using namespace sluice::test::mb;

// -- Spark's order in a micro-batch for sessions and deduplication -------------------------
//
// Spark runs a batch's rows first, judging lateness by the previous batch's watermark (3.4+)
// or the batch's own (before 3.4), and evicts state at the batch's watermark only after the
// rows are in. Both cases below were Sluice answers that differed from pyspark 4.3.

BOOST_AUTO_TEST_SUITE(spark_order)

namespace {

/// Two rows per micro-batch (one instance, batch size 1, cap 2), watermark delay 0.
job_options two_rows_per_batch(late_row_rule rule, output_mode mode = output_mode::append) {
  job_options o;
  o.name = "order";
  o.trigger = triggers::available_now();
  o.output_mode = mode;
  o.late_rows = rule;
  o.runtime.batch_size = 1;
  o.runtime.max_records_per_trigger = 2;
  return o;
}

const state_operator_progress* state_of(const query_progress& p, const std::string& name) {
  for (auto& s : p.state_operators)
    if (s.name == name)
      return &s;
  return nullptr;
}

/// Sessions with a 10 s gap over
///
///   batch 0: a@5  z@40   runs with watermark 1970; opens a [5,15)
///   batch 1: a@8  y@45   runs with watermark 40
///
/// a@8 touches a's open session. Spark 3.4+ takes it (its own session [8,18) ends after the
/// previous watermark, 1970), merges it into [5,18), and only then evicts at 40: one row
/// a[5,18)=2. Under the pre-3.4 rule a@8 is late (18 <= 40) although it touches a session
/// still held: Spark drops it and emits a[5,15)=1.
std::vector<strings> run_sessions(late_row_rule rule, std::vector<query_progress>* progress) {
  batch_log<word_count> log;
  job j{two_rows_per_batch(rule)};
  j.from(sources::collection<word_event>{{w("a", 5), w("z", 40), w("a", 8), w("y", 45)}},
         watermarks::bounded_out_of_orderness<word_event>(0s, ts_of))
    .name("words")
    .key_by(word_of)
    .window(windows::session{.gap = 10s})
    .count()
    .name("sessions")
    .sink_to(log.sink());
  auto [done, p] = run_until_it_ends(j);
  BOOST_TEST(!done.cancelled);
  *progress = std::move(p);
  return log.batches(row_text);
}

} // namespace

BOOST_AUTO_TEST_CASE(a_session_takes_the_rows_of_the_batch_whose_watermark_closes_it) {
  std::vector<query_progress> progress;
  auto batches = run_sessions(late_row_rule::previous_watermark, &progress);
  BOOST_REQUIRE_GE(batches.size(), 2u);
  BOOST_TEST(batches[0] == strings{}, boost::test_tools::per_element());
  BOOST_TEST(batches[1] == strings{"a[5,18)=2"}, boost::test_tools::per_element());
  for (std::size_t i = 2; i < batches.size(); ++i)
    BOOST_TEST(batches[i] == strings{}, boost::test_tools::per_element());
  BOOST_REQUIRE_GE(progress.size(), 2u);
  auto* s = state_of(progress[1], "sessions");
  BOOST_REQUIRE(s);
  BOOST_TEST(s->num_rows_dropped_by_watermark == 0u);
}

BOOST_AUTO_TEST_CASE(before_3_4_a_row_behind_its_own_session_end_is_late_even_if_it_touches_one) {
  std::vector<query_progress> progress;
  auto batches = run_sessions(late_row_rule::epoch_watermark, &progress);
  BOOST_REQUIRE_GE(batches.size(), 2u);
  BOOST_TEST(batches[1] == strings{"a[5,15)=1"}, boost::test_tools::per_element());
  BOOST_REQUIRE_GE(progress.size(), 2u);
  auto* s = state_of(progress[1], "sessions");
  BOOST_REQUIRE(s);
  BOOST_TEST(s->num_rows_dropped_by_watermark == 1u);
}

namespace {

/// Deduplication within the watermark (key: the word, each key held 3 s past its first row)
/// then a 10 s tumbling count, over
///
///   batch 0: a@5  b@25   runs with watermark 1970; b expires at 28
///   batch 1: c@30 f@29   runs with watermark 25
///   batch 2: d@27 b@26   runs with watermark 30
///
/// In batch 2, d@27 is behind the batch's own watermark (30) but not the previous one (25):
/// Spark 3.4+ keeps it. b@26 is a duplicate: b's state (expiry 28) is evicted at 30 only
/// after batch 2's rows, so Spark drops it as a duplicate, not as late, and counts b once.
struct dedup_run {
  std::vector<strings> batches;
  std::vector<query_progress> progress;
};

dedup_run run_dedup(late_row_rule rule) {
  batch_log<word_count> log;
  job j{two_rows_per_batch(rule)};
  j.from(sources::collection<word_event>{{w("a", 5), w("b", 25), w("c", 30), w("f", 29),
                                          w("d", 27), w("b", 26)}},
         watermarks::bounded_out_of_orderness<word_event>(0s, ts_of))
    .name("words")
    .drop_duplicates_within_watermark(word_of, 3s)
    .name("dedup")
    .key_by(word_of)
    .window(windows::tumbling{.size = 10s})
    .count()
    .name("counts")
    .sink_to(log.sink());
  auto [done, progress] = run_until_it_ends(j);
  BOOST_TEST(!done.cancelled);
  return {log.batches(row_text), std::move(progress)};
}

} // namespace

BOOST_AUTO_TEST_CASE(dedup_judges_lateness_by_the_previous_watermark_and_evicts_after_the_rows) {
  auto r = run_dedup(late_row_rule::previous_watermark);
  BOOST_REQUIRE_GE(r.batches.size(), 3u);
  BOOST_TEST(r.batches[1] == strings{"a[0,10)=1"}, boost::test_tools::per_element());
  BOOST_TEST(r.batches[2] == (strings{"b[20,30)=1", "d[20,30)=1", "f[20,30)=1"}),
             boost::test_tools::per_element());
  BOOST_REQUIRE_GE(r.progress.size(), 3u);
  auto* s = state_of(r.progress[2], "dedup");
  BOOST_REQUIRE(s);
  // Batch 2 writes d (expiry 30) and, after its rows, evicts at 30 the keys expiring by
  // then: b (28) and d (30), Spark's `watermark >= expiresAt`; c (33) and f (32) stay. (a,
  // expiry 8, went at batch 1's end.)
  BOOST_TEST(s->num_rows_updated == 1u);
  BOOST_TEST(s->num_rows_dropped_by_watermark == 0u);
  BOOST_TEST(s->num_rows_removed == 2u);
  BOOST_TEST(s->num_rows_total == 2u);
}

BOOST_AUTO_TEST_CASE(dedup_under_the_pre_3_4_rule_drops_rows_behind_the_batch_watermark) {
  auto r = run_dedup(late_row_rule::epoch_watermark);
  BOOST_REQUIRE_GE(r.batches.size(), 3u);
  BOOST_TEST(r.batches[2] == (strings{"b[20,30)=1", "f[20,30)=1"}),
             boost::test_tools::per_element());
  BOOST_REQUIRE_GE(r.progress.size(), 3u);
  auto* s = state_of(r.progress[2], "dedup");
  BOOST_REQUIRE(s);
  BOOST_TEST(s->num_rows_dropped_by_watermark == 2u);
}

BOOST_AUTO_TEST_SUITE_END()
