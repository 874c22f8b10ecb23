// Incremental checkpoints of the interval join (operators/join/interval_join.hpp): each
// key's buffers as key group bases and deltas. A delta holds the rows that changed, not a
// hot key's whole buffer; deltas restore at any parallelism to the state of a run that
// never stopped; damaged pieces are refused by name. And the late-row watermark that
// deduplication and the join keep per instance restores as the highest of all.
#include <boost/test/unit_test.hpp>

#include "sluice/operators/harness.hpp"
#include "sluice/operators/join/interval_join.hpp"
#include "sluice/operators/state/snapshot_codec.hpp"
#include "sluice/tests/checkpoint/incremental_pieces.hpp"
#include "sluice/tests/checkpoint/job_helpers.hpp"
#include "sluice/tests/checkpoint/memory_checkpoints.hpp"

#include <algorithm>
#include <functional>
#include <map>
#include <random>
#include <set>
#include <string>
#include <vector>

using namespace sluice;
using namespace sluice::test;
using namespace sluice::test::ckpt;

namespace {

std::string joined(const reading& l, const reading* r) {
  return std::to_string(l.key) + ":" + std::to_string(l.value) + "+" +
         (r ? std::to_string(r->value) : std::string{"none"});
}

auto make_join() {
  return make_interval_join_operator<std::int64_t, reading, reading>(
    interval_join_spec{-1s, 1s, join_type::left_outer}, key_of, key_of,
    std::function<event_time(const reading&)>{ts_of},
    std::function<event_time(const reading&)>{ts_of}, joined);
}
using join_op = std::remove_reference_t<decltype(*make_join())>;

/// The instances of one join at one parallelism; records go to the instance that owns
/// their key group.
struct join_instances {
  std::vector<std::unique_ptr<operator_harness>> hs;
  std::vector<join_op*> ops;

  explicit join_instances(int parallelism) {
    for (int i = 0; i < parallelism; ++i) {
      auto op = make_join();
      ops.push_back(op.get());
      hs.push_back(std::make_unique<operator_harness>(
        std::move(op), harness_options{.name = "join", .instance = i, .parallelism = parallelism}));
      BOOST_REQUIRE(hs.back()->open());
    }
  }
  void restore(memory_checkpoints& w) {
    for (auto& h : hs) {
      auto ok = h->op().restore(w);
      BOOST_REQUIRE_MESSAGE(ok, (ok ? "" : ok.error().to_string()));
    }
  }
  void push(int input, const std::vector<reading>& rows) {
    const auto p = static_cast<int>(hs.size());
    std::vector<std::vector<reading>> parts(hs.size());
    for (auto& r : rows)
      parts[static_cast<std::size_t>(instance_of_key_group(window_group_of(r.key), 128, p))]
        .push_back(r);
    for (std::size_t i = 0; i < hs.size(); ++i)
      if (!parts[i].empty())
        BOOST_REQUIRE(hs[i]->push(input, parts[i]));
  }
  void watermark(event_time wm) {
    for (auto& h : hs)
      BOOST_REQUIRE(h->watermark(wm));
  }
  std::vector<std::string> take() {
    std::vector<std::string> out;
    for (auto& h : hs)
      for (auto& s : h->take<std::string>())
        out.push_back(s);
    std::sort(out.begin(), out.end());
    return out;
  }
  std::size_t buffered() const {
    std::size_t n = 0;
    for (auto* op : ops)
      n += op->buffered_left() + op->buffered_right();
    return n;
  }
  /// What is still to come: matches with `later` right rows, then every expiry.
  std::vector<std::string> finish(const std::vector<reading>& later) {
    take();
    push(1, later);
    watermark(max_watermark);
    return take();
  }
};

} // namespace

BOOST_AUTO_TEST_SUITE(incremental)

BOOST_AUTO_TEST_CASE(an_interval_join_checkpoint_writes_deltas_of_the_changed_keys) {
  std::vector<reading> left, right, later;
  for (std::int64_t k = 0; k < 10'000; ++k) {
    left.push_back(rec(k, k, 10'000));
    if (k % 2 == 0)
      right.push_back(rec(k, -k, 20'000)); // matches no left row yet
    else
      later.push_back(rec(k, -k, 10'500)); // matches the left row at 10 s
  }
  for (std::int64_t k = 0; k < 5; ++k)
    left.push_back(rec(k, 100 + k, 1'000)); // expires at 2 s
  auto step0 = [&](join_instances& j) {
    j.push(0, left);
    j.push(1, right);
  };
  // A new left row matches a buffered right row, a right row marks a left row matched,
  // and the watermark expires five left rows (unmatched: emitted): six keys change.
  auto step1 = [](join_instances& j) {
    j.push(0, {rec(4, 44, 20'500)});
    j.push(1, {rec(7, 77, 10'200)});
    j.watermark(at_ms(2'000));
    BOOST_TEST(j.take().size() == 7u);
  };

  join_instances j{1};
  memory_checkpoints w;
  step0(j);
  w.begin();
  BOOST_REQUIRE(j.hs[0]->op().snapshot(1, w)); // full: shared, encoded later
  step1(j);
  w.finish();
  const auto bases = group_pieces(w.written);
  BOOST_TEST(bases.size() == 128u);
  {
    join_instances twin{1}, back{2};
    step0(twin);
    back.restore(w);
    BOOST_TEST(back.buffered() == twin.buffered(), "the buffers at the barrier");
    BOOST_TEST((back.finish(later) == twin.finish(later)));
  }

  checkpoint(*j.hs[0], w);
  std::map<int, int> chains;
  const auto expected = next_deltas({0, 1, 2, 3, 4, 7}, chains);
  BOOST_TEST(group_pieces(w.written) == expected, names(group_pieces(w.written)));
  BOOST_TEST(entries_written(w) == 6u, "one entry per changed key");
  BOOST_TEST(group_pieces(w.reused) == bases);

  join_instances one{1}, two{2}, three{3};
  one.restore(w);
  two.restore(w);
  three.restore(w);
  BOOST_TEST(one.buffered() == j.buffered());
  BOOST_TEST(three.buffered() == j.buffered());
  const auto original = j.finish(later);
  BOOST_TEST(original.size() == 10'000u);
  BOOST_TEST((one.finish(later) == original));
  BOOST_TEST((two.finish(later) == original));
  BOOST_TEST((three.finish(later) == original));
}

BOOST_AUTO_TEST_CASE(an_interval_join_delta_holds_the_rows_that_changed_not_a_hot_keys_whole_buffer) {
  // One key buffers 5000 left rows; then three arrive, one right row marks recent rows
  // matched, and the watermark expires the oldest 101.
  auto step0 = [](join_instances& j) {
    std::vector<reading> rows;
    for (std::int64_t i = 0; i < 5'000; ++i)
      rows.push_back(rec(1, i, 10'000 + i));
    j.push(0, rows);
  };
  auto step1 = [](join_instances& j) {
    j.push(0, {rec(1, -1, 15'500), rec(1, -2, 14'990), rec(1, -3, 16'000)});
    j.push(1, {rec(1, 7, 15'995)});
    j.watermark(at_ms(11'100));
  };
  const std::vector<reading> later{rec(1, 9, 12'000), rec(1, 8, 15'999)};

  join_instances j{1};
  memory_checkpoints w;
  step0(j);
  checkpoint(*j.hs[0], w);
  const auto g = window_group_of(1);
  const auto base = w.current.at(key_group_piece(g)).size();
  step1(j);
  checkpoint(*j.hs[0], w);
  BOOST_TEST((group_pieces(w.written) == std::set<std::string>{detail::delta_piece(g, 1)}));
  const auto delta = w.current.at(detail::delta_piece(g, 1));
  BOOST_TEST(delta_entries(delta) == 1u);
  BOOST_TEST(delta.size() * 50 < base, "delta " << delta.size() << " B, base " << base << " B");

  join_instances twin{1}, one{1}, two{2};
  step0(twin);
  step1(twin);
  one.restore(w);
  two.restore(w);
  BOOST_TEST(one.buffered() == twin.buffered());
  BOOST_TEST(j.buffered() == 4'903u, "5003 left rows, 101 expired, one right row");
  const auto expected = twin.finish(later);
  // 2001 + 3 matches with the later rows, then the 2894 left rows never matched.
  BOOST_TEST(expected.size() == 4'898u);
  BOOST_TEST((one.finish(later) == expected));
  BOOST_TEST((two.finish(later) == expected));
}

BOOST_AUTO_TEST_CASE(interval_join_deltas_of_changes_restore_every_round_of_a_random_run) {
  // Rows of a few hot keys arrive out of order, match old rows and expire; some keys empty
  // and come back. After every round a checkpoint (deltas, and bases when chains compact)
  // restores at parallelism 1 and 2 to the state of a run that never stopped.
  auto round = [](join_instances& j, int r) {
    std::mt19937 rng(static_cast<std::uint32_t>(1000 + r));
    // Mostly in order (the newest 400 ms), one row in 40 anywhere ahead of the watermark.
    std::uniform_int_distribution<int> key(0, 5), recent(2'600, 3'000), ahead(1, 3'000),
      side(0, 2), order(0, 39);
    const std::int64_t wm = r * 400;
    std::vector<reading> left, right;
    for (int i = 0; i < 40; ++i) {
      const auto row = rec(key(rng), r * 100 + i, wm + (order(rng) == 0 ? ahead(rng) : recent(rng)));
      (side(rng) == 0 ? right : left).push_back(row);
    }
    j.push(0, left);
    j.push(1, right);
    j.watermark(at_ms(wm + 400));
  };
  // Right rows of every key just ahead of round r's watermark (the harness does not restore
  // an operator's watermark: a job's sources bring it back).
  auto later = [](int r) {
    std::vector<reading> rows;
    for (std::int64_t k = 0; k < 6; ++k)
      rows.push_back(rec(k, 1'000 + k, (r + 1) * 400 + 500));
    return rows;
  };
  const int rounds = 24; // the buffers fill in 10 (4 s of rows, 400 ms per round)
  join_instances j{1};
  memory_checkpoints w;
  int deltas = 0;
  for (int r = 0; r < rounds; ++r) {
    round(j, r);
    checkpoint(*j.hs[0], w);
    for (auto& n : group_pieces(w.written))
      deltas += n.find("/d") != std::string::npos;
    join_instances twin{1}, one{1}, two{2};
    for (int t = 0; t <= r; ++t)
      round(twin, t);
    one.restore(w);
    two.restore(w);
    BOOST_TEST(one.buffered() == twin.buffered(), "round " << r);
    BOOST_TEST(two.buffered() == twin.buffered(), "round " << r);
    const auto expected = twin.finish(later(r));
    BOOST_TEST((one.finish(later(r)) == expected), "round " << r);
    BOOST_TEST((two.finish(later(r)) == expected), "round " << r);
  }
  BOOST_TEST(deltas > rounds, "the rounds wrote deltas, not only bases: " << deltas);
  BOOST_TEST(j.buffered() > 0u);
}

BOOST_AUTO_TEST_CASE(an_interval_join_delta_that_keeps_rows_the_base_lacks_is_refused_by_name) {
  join_instances j{1};
  memory_checkpoints w;
  std::vector<reading> rows;
  for (std::int64_t i = 0; i < 20; ++i)
    rows.push_back(rec(1, i, 10'000 + i));
  j.push(0, rows);
  checkpoint(*j.hs[0], w);
  j.push(0, {rec(1, 20, 10'020)});
  checkpoint(*j.hs[0], w);
  const auto g = window_group_of(1);
  auto& delta = w.current.at(detail::delta_piece(g, 1));
  // Rewrite the left side's `keep` (after the count, the key, the flag and `skip`): 20 -> 50.
  const std::size_t keep_at = 8 + 8 + 1 + 8;
  BOOST_REQUIRE(delta.size() > keep_at + 8);
  BOOST_REQUIRE(delta[keep_at] == 20);
  delta[keep_at] = 50;
  join_instances back{1};
  auto ok = back.hs[0]->op().restore(w);
  BOOST_REQUIRE(!ok);
  const auto& m = ok.error().message;
  BOOST_TEST(m.find("operator 'join', key group " + std::to_string(g)) != std::string::npos, m);
  BOOST_TEST(m.find("left rows: a delta keeps rows 0 to 50 of 20") != std::string::npos, m);
}

namespace {

/// A right-side record of its own type, so this test's join is its own instantiation.
struct probe {
  std::int64_t key = 0;
  event_time ts{};
};
template <class Inspector>
bool inspect(Inspector& f, probe& x) {
  return f.object("probe").fields(f.field("key", x.key), f.field("ts", x.ts));
}

} // namespace

BOOST_AUTO_TEST_CASE(an_interval_join_piece_with_rows_out_of_time_order_is_refused_by_name) {
  using rows = interval_join_buffers<reading, probe>;
  const std::int64_t key = 42;
  const int g = window_group_of(key);
  detail::state_encoder enc;
  enc.put(std::uint64_t{1}); // one key
  enc.put(key);
  enc.put(std::vector<rows::left_row>{{at_ms(2'000), false, rec(key, 1, 2'000)},
                                      {at_ms(1'000), false, rec(key, 2, 1'000)}});
  enc.put(std::vector<rows::right_row>{});
  memory_checkpoints w;
  w.current[key_group_piece(g)] = enc.take();
  operator_harness h{make_interval_join_operator<std::int64_t, reading, probe>(
                       interval_join_spec{-1s, 1s, join_type::inner}, key_of,
                       [](const probe& p) { return p.key; },
                       std::function<event_time(const reading&)>{ts_of},
                       std::function<event_time(const probe&)>{[](const probe& p) { return p.ts; }},
                       [](const reading& l, const probe&) { return l.value; }),
                     harness_options{.name = "join"}};
  BOOST_REQUIRE(h.open());
  auto ok = h.op().restore(w);
  BOOST_REQUIRE(!ok);
  const auto& m = ok.error().message;
  BOOST_TEST(m.find("operator 'join', key group " + std::to_string(g)) != std::string::npos, m);
  BOOST_TEST(m.find("field 'left': inspect() rejected the value") != std::string::npos, m);
}

BOOST_AUTO_TEST_CASE(the_late_row_watermark_restores_as_the_highest_of_every_instance) {
  // Deduplication and the interval join keep it per instance; a rescaled instance takes
  // the highest of all (the watermark was the job's when they were written).
  memory_checkpoints m;
  const event_time t5{std::chrono::seconds{5}}, t7{std::chrono::seconds{7}};
  BOOST_REQUIRE(detail::put_late_watermark(m, 0, t5));
  BOOST_REQUIRE(detail::put_late_watermark(m, 1, t7));
  event_time late = min_watermark;
  BOOST_REQUIRE(detail::restore_late_watermark(m, "deduplication 'd'", late));
  BOOST_TEST((late == t7));
  // Damaged: a piece with bytes after the watermark is named, not guessed.
  m.current["instance/1"] += "x";
  auto bad = detail::restore_late_watermark(m, "deduplication 'd'", late);
  BOOST_REQUIRE(!bad);
  BOOST_TEST(bad.error().message ==
             "deduplication 'd', instance 1: unreadable state: bytes after the late-row watermark");
  // A checkpoint written before the operator kept it: nothing to read, nothing changes.
  memory_checkpoints none;
  event_time kept = t5;
  BOOST_REQUIRE(detail::restore_late_watermark(none, "interval join 'j'", kept));
  BOOST_TEST((kept == t5));
}

BOOST_AUTO_TEST_SUITE_END()
