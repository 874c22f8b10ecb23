// Incremental checkpoints of the window operators (operators/window): their windows as
// key group bases and deltas, driven through the in-memory writer. A checkpoint writes the
// windows that changed (grew, fired, were freed) and refers to the rest; what it writes is
// the state at the barrier even when the task changed it before the writer encoded it;
// base plus deltas restore at any parallelism to the same results. Under complete mode
// every window fires at every epoch's end, yet a checkpoint writes only the windows
// records changed, and firing counts survive restores.
#include <boost/test/unit_test.hpp>

#include "sluice/operators/harness.hpp"
#include "sluice/operators/state/snapshot_codec.hpp"
#include "sluice/operators/window/session_operator.hpp"
#include "sluice/operators/window/window_operator.hpp"
#include "sluice/tests/checkpoint/incremental_pieces.hpp"
#include "sluice/tests/checkpoint/job_helpers.hpp"
#include "sluice/tests/checkpoint/memory_checkpoints.hpp"

#include <algorithm>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

using namespace sluice;
using namespace sluice::test;
using namespace sluice::test::ckpt;

namespace {

inline std::int64_t value_of(const reading& r) { return r.value; }
using key_fn_t = std::int64_t (*)(const reading&);
using ts_fn_t = event_time (*)(const reading&);
using sum_fn = aggregate_window_function<
  std::int64_t, reading, window_aggregates::sum<reading, std::int64_t (*)(const reading&)>>;
using sum_result = window_result<std::int64_t, std::int64_t>;
template <class Assigner>
using windows_op = window_operator<std::int64_t, reading, key_fn_t, ts_fn_t, Assigner, sum_fn>;
using sessions_op =
  session_window_operator<std::int64_t, reading, key_fn_t, ts_fn_t, windows::session, sum_fn>;

template <class Assigner>
std::unique_ptr<operator_base> make_windows(Assigner a, window_options o = {}) {
  if constexpr (is_merging_assigner<Assigner>)
    return std::make_unique<sessions_op>(key_of, ts_of, a, sum_fn{{value_of}}, o);
  else
    return std::make_unique<windows_op<Assigner>>(key_of, ts_of, a, sum_fn{{value_of}}, o);
}

/// A harness for instance `instance` of `parallelism`, opened.
template <class Assigner>
std::unique_ptr<operator_harness> window_harness(Assigner a, window_options o = {},
                                                 int instance = 0, int parallelism = 1,
                                                 std::optional<output_mode> mode = {}) {
  auto h = std::make_unique<operator_harness>(make_windows(a, o),
                                              harness_options{.name = "windows",
                                                              .instance = instance,
                                                              .parallelism = parallelism,
                                                              .mode = mode});
  BOOST_REQUIRE(h->open());
  return h;
}

/// Every result still to come from `h`: the max watermark fires (or frees) everything.
std::vector<sum_result> fire_all(operator_harness& h) {
  BOOST_REQUIRE(h.watermark(max_watermark));
  auto out = h.take<sum_result>();
  std::sort(out.begin(), out.end());
  return out;
}

/// What `finish(harness)` returns from each instance of `parallelism` restored from `w`,
/// merged.
template <class Assigner, class Finish>
std::vector<sum_result> restore_each(memory_checkpoints& w, Assigner a, window_options o,
                                     int parallelism, std::optional<output_mode> mode,
                                     Finish finish) {
  std::vector<sum_result> all;
  for (int i = 0; i < parallelism; ++i) {
    auto h = window_harness(a, o, i, parallelism, mode);
    auto ok = h->op().restore(w);
    BOOST_REQUIRE_MESSAGE(ok, (ok ? "" : ok.error().to_string()));
    auto part = finish(*h);
    all.insert(all.end(), part.begin(), part.end());
  }
  std::sort(all.begin(), all.end());
  return all;
}

/// `fire_all` over the instances of `parallelism` restored from `w`, merged.
template <class Assigner>
std::vector<sum_result> restore_and_fire(memory_checkpoints& w, Assigner a, window_options o,
                                         int parallelism) {
  return restore_each(w, a, o, parallelism, std::nullopt, fire_all);
}

} // namespace

BOOST_AUTO_TEST_SUITE(incremental)

BOOST_AUTO_TEST_CASE(a_window_checkpoint_writes_deltas_of_the_changed_windows_and_reuses_the_rest) {
  const windows::tumbling tumbling{.size = 10s};
  const window_options lateness{.allowed_lateness = 5s};
  auto h = window_harness(tumbling, lateness);
  auto& op = static_cast<windows_op<windows::tumbling>&>(h->op());
  memory_checkpoints w;
  std::vector<reading> first;
  for (std::int64_t k = 0; k < 10'000; ++k)
    first.push_back(rec(k, 1, 12'000 + k % 1000)); // window [10 s, 20 s)
  for (std::int64_t k = 0; k < 5; ++k)
    first.push_back(rec(k, 10, 3'000)); // window [0, 10 s)
  BOOST_REQUIRE(h->push(first));
  checkpoint(*h, w);
  const auto bases = group_pieces(w.written);
  BOOST_TEST(bases.size() == 128u);
  BOOST_TEST(w.written.count("instance/0") == 1u);

  // Three windows grow and the watermark fires the five windows of [0, 10 s), which stay
  // for the allowed lateness: eight windows changed, in their key groups only.
  std::map<int, int> chains;
  BOOST_REQUIRE(
    h->push(std::vector{rec(100, 5, 13'000), rec(200, 5, 14'000), rec(300, 5, 15'000)}));
  BOOST_REQUIRE(h->watermark(at_ms(10'000)));
  BOOST_TEST(h->take<sum_result>().size() == 5u);
  checkpoint(*h, w);
  auto expected = next_deltas({0, 1, 2, 3, 4, 100, 200, 300}, chains);
  BOOST_TEST(group_pieces(w.written) == expected, names(group_pieces(w.written)));
  BOOST_TEST(entries_written(w) == 8u, "one entry per changed window");
  BOOST_TEST(group_pieces(w.reused) == bases, "every base is referred to");
  BOOST_TEST(w.written.count("instance/0") == 1u);
  {
    // The fired windows come back as fired (their cleanup pending, nothing to fire again).
    const auto back = restore_and_fire(w, tumbling, lateness, 1);
    BOOST_TEST(back.size() == 10'000u);
    BOOST_TEST(std::none_of(back.begin(), back.end(),
                            [](const sum_result& r) { return r.start == at_ms(0); }));
    BOOST_TEST(std::count(back.begin(), back.end(),
                          sum_result{100, at_ms(10'000), at_ms(20'000), 6, false, 0}) == 1);
  }

  // A late record updates one fired window; the watermark then frees all five (their
  // lateness is over); one more window grows. Erasures go into the deltas too.
  BOOST_REQUIRE(h->push(std::vector{rec(2, 1, 4'000)}));
  BOOST_TEST(h->take<sum_result>().size() == 1u, "the late record re-fires its window");
  BOOST_REQUIRE(h->watermark(at_ms(15'000)));
  BOOST_REQUIRE(h->push(std::vector{rec(7, 2, 16'000)}));
  BOOST_TEST(op.window_count() == 10'000u);
  checkpoint(*h, w);
  expected = next_deltas({0, 1, 2, 3, 4, 7}, chains);
  BOOST_TEST(group_pieces(w.written) == expected, names(group_pieces(w.written)));
  BOOST_TEST(entries_written(w) == 6u);

  // Base plus deltas, at any parallelism, hold the same windows and fire the same results.
  {
    auto back = window_harness(tumbling, lateness);
    BOOST_REQUIRE(back->op().restore(w));
    auto& restored = static_cast<windows_op<windows::tumbling>&>(back->op());
    BOOST_TEST(restored.window_count() == op.window_count());
    BOOST_TEST(restored.timer_count() == op.timer_count());
  }
  const auto one = restore_and_fire(w, tumbling, lateness, 1);
  const auto two = restore_and_fire(w, tumbling, lateness, 2);
  const auto three = restore_and_fire(w, tumbling, lateness, 3);
  const auto original = fire_all(*h);
  BOOST_TEST(original.size() == 10'000u);
  BOOST_TEST((one == original));
  BOOST_TEST((two == original));
  BOOST_TEST((three == original));
}

BOOST_AUTO_TEST_CASE(a_window_checkpoint_is_the_state_at_the_barrier_even_when_changed_before_encoding) {
  const windows::sliding sliding{.size = 10s, .slide = 5s};
  const window_options lateness{.allowed_lateness = 5s};
  auto step0 = [](operator_harness& h) { // three windows per key
    std::vector<reading> rows;
    for (std::int64_t k = 0; k < 2000; ++k) {
      rows.push_back(rec(k, 1, 2'000));
      rows.push_back(rec(k, 2, 6'000));
    }
    BOOST_REQUIRE(h.push(rows));
  };
  auto step1 = [](operator_harness& h) { // changes every window: new values, firings, keys
    std::vector<reading> rows;
    for (std::int64_t k = 0; k < 2000; k += 2)
      rows.push_back(rec(k, 100, 7'000));
    for (std::int64_t k = 5000; k < 5100; ++k)
      rows.push_back(rec(k, 1, 3'000));
    BOOST_REQUIRE(h.push(rows));
    BOOST_REQUIRE(h.watermark(at_ms(5'000))); // fires [-5 s, 5 s) of every key
  };
  auto step2 = [](operator_harness& h) { // a few windows change: deltas
    BOOST_REQUIRE(h.push(std::vector{rec(0, 1000, 8'000), rec(1, 1000, 8'500)}));
  };
  auto step3 = [](operator_harness& h) { // the same windows again, a firing, erasures
    BOOST_REQUIRE(h.push(std::vector{rec(0, 7, 9'000), rec(1, 7, 4'000)}));
    BOOST_REQUIRE(h.watermark(at_ms(10'001)));
  };
  auto twin = [&](int steps) {
    auto t = window_harness(sliding, lateness);
    step0(*t);
    if (steps > 1)
      step1(*t);
    if (steps > 2)
      step2(*t);
    t->take<sum_result>(); // fired before the barrier: not state
    return fire_all(*t);
  };

  auto h = window_harness(sliding, lateness);
  memory_checkpoints w;
  step0(*h);
  w.begin();
  BOOST_REQUIRE(h->op().snapshot(1, w)); // full: every group shared, encoded later
  step1(*h);
  w.finish();
  BOOST_TEST(w.reused.empty());
  const auto at_first_barrier = twin(1);
  BOOST_TEST(at_first_barrier.size() == 6000u);
  BOOST_TEST((restore_and_fire(w, sliding, lateness, 1) == at_first_barrier));
  BOOST_TEST((at_first_barrier != twin(2)), "the changes after the barrier change results");

  checkpoint(*h, w); // full again: step 1 changed every window
  step2(*h);
  w.begin();
  BOOST_REQUIRE(h->op().snapshot(2, w));
  step3(*h);
  w.finish();
  BOOST_TEST(!group_pieces(w.written).empty());
  BOOST_TEST(all_deltas(group_pieces(w.written)), names(group_pieces(w.written)));
  const auto at_second_barrier = twin(3);
  BOOST_TEST((restore_and_fire(w, sliding, lateness, 2) == at_second_barrier));
}

BOOST_AUTO_TEST_CASE(a_session_checkpoint_writes_deltas_of_the_changed_keys_and_holds_the_barrier_state) {
  const windows::session gap{.gap = 1s};
  const window_options lateness{.allowed_lateness = 2s};
  std::vector<reading> first;
  for (std::int64_t k = 0; k < 10'000; ++k)
    first.push_back(rec(k, 1, 20'000)); // [20 s, 21 s)
  for (std::int64_t k = 0; k < 5; ++k)
    first.push_back(rec(k, 10, 1'000)); // [1 s, 2 s)
  first.push_back(rec(3, 1, 21'500));   // [21.5 s, 22.5 s)
  // A session grows, a record bridges two sessions, a key opens a second one, and the
  // watermark fires five sessions (kept for the allowed lateness): seven keys change.
  auto round2 = [](operator_harness& h) {
    BOOST_REQUIRE(h.push(std::vector{rec(100, 5, 20'500), rec(3, 1, 20'800), rec(200, 1, 30'000)}));
    BOOST_REQUIRE(h.watermark(at_ms(2'500)));
    BOOST_TEST(h.take<sum_result>().size() == 5u);
  };
  // The lateness of the five is over (erased) and one session grows: six keys change.
  auto round3 = [](operator_harness& h) {
    BOOST_REQUIRE(h.watermark(at_ms(4'500)));
    BOOST_REQUIRE(h.push(std::vector{rec(7, 2, 21'000)}));
  };

  auto h = window_harness(gap, lateness);
  memory_checkpoints w;
  BOOST_REQUIRE(h->push(first));
  checkpoint(*h, w);
  const auto bases = group_pieces(w.written);
  BOOST_TEST(bases.size() == 128u);

  std::map<int, int> chains;
  round2(*h);
  checkpoint(*h, w);
  auto expected = next_deltas({0, 1, 2, 3, 4, 100, 200}, chains);
  BOOST_TEST(group_pieces(w.written) == expected, names(group_pieces(w.written)));
  BOOST_TEST(entries_written(w) == 7u, "one entry per changed key");
  BOOST_TEST(group_pieces(w.reused) == bases);
  {
    const auto back = restore_and_fire(w, gap, lateness, 3);
    BOOST_TEST(back.size() == 10'001u, "the fired sessions do not fire again");
    BOOST_TEST(std::count(back.begin(), back.end(),
                          sum_result{3, at_ms(20'000), at_ms(22'500), 3, false, 0}) == 1);
    BOOST_TEST(std::count(back.begin(), back.end(),
                          sum_result{100, at_ms(20'000), at_ms(21'500), 6, false, 0}) == 1);
  }

  // The snapshot is taken at the barrier and encoded after more changes: merges, a new
  // key, and a watermark that fires most sessions. It holds the sessions at the barrier.
  round3(*h);
  w.begin();
  BOOST_REQUIRE(h->op().snapshot(3, w));
  BOOST_REQUIRE(h->push(std::vector{rec(7, 50, 21'500), rec(8, 50, 20'900), rec(9, 1, 40'000)}));
  BOOST_REQUIRE(h->watermark(at_ms(21'200)));
  BOOST_TEST(h->take<sum_result>().size() > 9000u);
  w.finish();
  expected = next_deltas({0, 1, 2, 3, 4, 7}, chains);
  BOOST_TEST(group_pieces(w.written) == expected, names(group_pieces(w.written)));
  BOOST_TEST(entries_written(w) == 6u);
  auto twin = window_harness(gap, lateness);
  BOOST_REQUIRE(twin->push(first));
  round2(*twin);
  round3(*twin);
  const auto at_barrier = fire_all(*twin);
  BOOST_TEST(at_barrier.size() == 10'001u);
  BOOST_TEST(std::count(at_barrier.begin(), at_barrier.end(),
                        sum_result{7, at_ms(20'000), at_ms(22'000), 3, false, 0}) == 1);
  BOOST_TEST((restore_and_fire(w, gap, lateness, 1) == at_barrier));
  BOOST_TEST((restore_and_fire(w, gap, lateness, 2) == at_barrier));

  // A full checkpoint shares the groups with the writer thread; changes before it
  // encodes copy them.
  auto g = window_harness(gap, lateness);
  BOOST_REQUIRE(g->push(first));
  memory_checkpoints full;
  full.begin();
  BOOST_REQUIRE(g->op().snapshot(1, full));
  round2(*g);
  BOOST_REQUIRE(g->watermark(at_ms(20'000))); // the five fired sessions are erased
  full.finish();
  auto fresh = window_harness(gap, lateness);
  BOOST_REQUIRE(fresh->push(first));
  const auto at_full_barrier = fire_all(*fresh);
  BOOST_TEST(at_full_barrier.size() == 10'006u);
  BOOST_TEST((restore_and_fire(full, gap, lateness, 2) == at_full_barrier));
}

// -- complete mode: every window fires at every epoch's end, yet a checkpoint writes only
// the windows records changed ------------------------------------------------------------

namespace {

/// Ends epoch `epoch` and returns its rows, sorted.
std::vector<sum_result> end_epoch(operator_harness& h, std::int64_t epoch) {
  BOOST_REQUIRE(h.end_epoch(epoch));
  auto rows = h.take<sum_result>();
  std::sort(rows.begin(), rows.end());
  return rows;
}

/// The rows of epoch `epoch` from the instances of `parallelism` restored from `w`, merged.
template <class Assigner>
std::vector<sum_result> restore_and_end_epoch(memory_checkpoints& w, Assigner a, int parallelism,
                                              std::int64_t epoch) {
  return restore_each(w, a, {}, parallelism, output_mode::complete,
                      [epoch](operator_harness& h) { return end_epoch(h, epoch); });
}

std::uint32_t max_firing(const std::vector<sum_result>& rows) {
  std::uint32_t n = 0;
  for (auto& r : rows)
    n = std::max(n, r.firing);
  return n;
}

} // namespace

BOOST_AUTO_TEST_CASE(complete_mode_windows_fire_every_epoch_and_checkpoints_write_only_the_changed) {
  const windows::tumbling tumbling{.size = 10s};
  auto h = window_harness(tumbling, {}, 0, 1, output_mode::complete);
  memory_checkpoints w;
  std::vector<reading> first;
  for (std::int64_t k = 0; k < 10'000; ++k)
    first.push_back(rec(k, 1, 1'000));
  BOOST_REQUIRE(h->push(first));
  auto rows = end_epoch(*h, 0);
  BOOST_TEST(rows.size() == 10'000u);
  BOOST_TEST(max_firing(rows) == 0u);
  checkpoint(*h, w);
  const auto bases = group_pieces(w.written);
  BOOST_TEST(bases.size() == 128u);

  // Three windows change (one new); every window fires again, and only the three are written.
  std::map<int, int> chains;
  BOOST_REQUIRE(
    h->push(std::vector{rec(100, 5, 2'000), rec(200, 5, 3'000), rec(300, 5, 15'000)}));
  rows = end_epoch(*h, 1);
  BOOST_TEST(rows.size() == 10'001u);
  BOOST_TEST(std::count(rows.begin(), rows.end(),
                        sum_result{100, at_ms(0), at_ms(10'000), 6, true, 1}) == 1);
  BOOST_TEST(std::count(rows.begin(), rows.end(),
                        sum_result{300, at_ms(10'000), at_ms(20'000), 5, false, 0}) == 1);
  checkpoint(*h, w);
  BOOST_TEST(group_pieces(w.written) == next_deltas({100, 200, 300}, chains),
             names(group_pieces(w.written)));
  BOOST_TEST(entries_written(w) == 3u, "one entry per window a record changed");
  BOOST_TEST(group_pieces(w.reused) == bases);

  // An epoch without records changes no window: the checkpoint writes no key group.
  rows = end_epoch(*h, 2);
  BOOST_TEST(rows.size() == 10'001u);
  BOOST_TEST(max_firing(rows) == 2u);
  checkpoint(*h, w);
  BOOST_TEST(group_pieces(w.written).empty(), names(group_pieces(w.written)));
  BOOST_TEST(w.written.count("instance/0") == 1u);

  // Restored at any parallelism, the next epoch's rows, firing numbers included, are the
  // uninterrupted run's.
  const auto one = restore_and_end_epoch(w, tumbling, 1, 3);
  const auto two = restore_and_end_epoch(w, tumbling, 2, 3);
  const auto three = restore_and_end_epoch(w, tumbling, 3, 3);
  const auto original = end_epoch(*h, 3);
  BOOST_TEST(original.size() == 10'001u);
  BOOST_TEST(std::count(original.begin(), original.end(),
                        sum_result{300, at_ms(10'000), at_ms(20'000), 5, true, 2}) == 1);
  BOOST_TEST(std::count(original.begin(), original.end(),
                        sum_result{7, at_ms(0), at_ms(10'000), 1, true, 3}) == 1);
  BOOST_TEST((one == original));
  BOOST_TEST((two == original));
  BOOST_TEST((three == original));
}

// A session that grows in place is noted in the change log once per checkpoint, not once
// per record: its growth after each checkpoint must still reach the next delta.
BOOST_AUTO_TEST_CASE(a_session_growing_in_place_reaches_every_later_delta) {
  const windows::session gap{.gap = 1s};
  auto h = window_harness(gap, window_options{});
  memory_checkpoints w;
  std::vector<reading> first;
  for (std::int64_t k = 0; k < 10'000; ++k)
    first.push_back(rec(k, 1, 10'000));
  BOOST_REQUIRE(h->push(first));
  checkpoint(*h, w);
  BOOST_TEST(group_pieces(w.written).size() == 128u);
  std::map<int, int> chains;
  // Key 5 grows twice between two checkpoints, then once before each of the next two.
  BOOST_REQUIRE(h->push(std::vector{rec(5, 10, 10'500), rec(5, 100, 10'900)}));
  checkpoint(*h, w);
  BOOST_TEST(group_pieces(w.written) == next_deltas({5}, chains), names(group_pieces(w.written)));
  BOOST_TEST(entries_written(w) == 1u);
  BOOST_REQUIRE(h->push(std::vector{rec(5, 1'000, 11'500)}));
  checkpoint(*h, w);
  BOOST_TEST(group_pieces(w.written) == next_deltas({5}, chains), names(group_pieces(w.written)));
  BOOST_TEST(entries_written(w) == 1u);
  BOOST_REQUIRE(h->push(std::vector{rec(5, 10'000, 12'000)}));
  checkpoint(*h, w);
  BOOST_TEST(group_pieces(w.written) == next_deltas({5}, chains), names(group_pieces(w.written)));
  for (int parallelism : {1, 2}) {
    const auto back = restore_and_fire(w, gap, window_options{}, parallelism);
    BOOST_TEST(back.size() == 10'000u);
    BOOST_TEST(std::count(back.begin(), back.end(),
                          sum_result{5, at_ms(10'000), at_ms(13'000), 11'111, false, 0}) == 1,
               "parallelism " << parallelism);
  }
}

BOOST_AUTO_TEST_CASE(complete_mode_sessions_keep_firing_numbers_across_merges_and_restores) {
  const windows::session gap{.gap = 1s};
  auto h = window_harness(gap, {}, 0, 1, output_mode::complete);
  memory_checkpoints w;
  std::vector<reading> first;
  for (std::int64_t k = 0; k < 2'000; ++k)
    first.push_back(rec(k, 1, 1'000)); // [1 s, 2 s)
  BOOST_REQUIRE(h->push(first));
  BOOST_TEST(end_epoch(*h, 0).size() == 2'000u);
  checkpoint(*h, w);

  // Key 5 opens a second session, fired once, then a record bridges the two: the merged
  // session has fired as often as the older one.
  std::map<int, int> chains;
  BOOST_REQUIRE(h->push(std::vector{rec(5, 10, 2'500)})); // [2.5 s, 3.5 s)
  auto rows = end_epoch(*h, 1);
  BOOST_TEST(std::count(rows.begin(), rows.end(),
                        sum_result{5, at_ms(2'500), at_ms(3'500), 10, false, 0}) == 1);
  checkpoint(*h, w);
  BOOST_TEST(group_pieces(w.written) == next_deltas({5}, chains), names(group_pieces(w.written)));
  BOOST_REQUIRE(h->push(std::vector{rec(5, 100, 1'800)})); // [1.8 s, 2.8 s) bridges them
  rows = end_epoch(*h, 2);
  BOOST_TEST(rows.size() == 2'000u);
  BOOST_TEST(std::count(rows.begin(), rows.end(),
                        sum_result{5, at_ms(1'000), at_ms(3'500), 111, true, 2}) == 1);
  checkpoint(*h, w);
  BOOST_TEST(group_pieces(w.written) == next_deltas({5}, chains), names(group_pieces(w.written)));
  BOOST_TEST(entries_written(w) == 1u);

  const auto original = end_epoch(*h, 3);
  BOOST_TEST(max_firing(original) == 3u);
  BOOST_TEST((restore_and_end_epoch(w, gap, 1, 3) == original));
  BOOST_TEST((restore_and_end_epoch(w, gap, 2, 3) == original));
}

namespace {

/// A window as an earlier version checkpointed it under complete mode: its firings so far.
struct counted_window {
  std::int64_t acc = 0;
  std::uint32_t firings = 0;
  template <class Inspector>
  friend bool inspect(Inspector& f, counted_window& x) {
    return f.object("window_state").fields(f.field("acc", x.acc), f.field("firings", x.firings));
  }
};

} // namespace

BOOST_AUTO_TEST_CASE(complete_mode_windows_restore_the_firing_counts_an_earlier_version_wrote) {
  // Key 1's window fired twice, key 2's once; the instance piece has only the watermark.
  const windows::tumbling tumbling{.size = 10s};
  memory_checkpoints w;
  std::map<int, std::unordered_map<detail::window_slot<std::int64_t>, counted_window,
                                   detail::window_slot_hash<std::int64_t>>>
    groups;
  groups[window_group_of(1)].emplace(detail::window_slot<std::int64_t>{1, {at_ms(0), at_ms(10'000)}},
                                     counted_window{4, 2});
  groups[window_group_of(2)].emplace(detail::window_slot<std::int64_t>{2, {at_ms(0), at_ms(10'000)}},
                                     counted_window{6, 1});
  for (auto& [g, map] : groups)
    w.current[key_group_piece(g)] = detail::encode_group(map);
  detail::state_encoder enc;
  enc.put(min_watermark);
  w.current[instance_piece(0)] = enc.take();

  auto h = window_harness(tumbling, {}, 0, 1, output_mode::complete);
  BOOST_REQUIRE(h->op().restore(w));
  BOOST_REQUIRE(h->push(std::vector{rec(3, 1, 1'000)}));
  BOOST_TEST((end_epoch(*h, 5) == std::vector<sum_result>{{1, at_ms(0), at_ms(10'000), 4, true, 2},
                                                          {2, at_ms(0), at_ms(10'000), 6, true, 1},
                                                          {3, at_ms(0), at_ms(10'000), 1, false, 0}}));
  // Checkpointed now, the counts restore as counts.
  checkpoint(*h, w);
  BOOST_TEST((restore_and_end_epoch(w, tumbling, 2, 6) == end_epoch(*h, 6)));
}

// -- the interval join: each key's buffers as bases and deltas -----------------------------

BOOST_AUTO_TEST_SUITE_END()
