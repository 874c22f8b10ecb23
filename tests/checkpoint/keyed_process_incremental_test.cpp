// Incremental checkpoints of keyed process functions at operator level: a checkpoint writes
// the state entries and timers that changed as deltas and refers to the rest, holds the
// state at the barrier even when the next batch runs before its pieces are encoded, and
// restores at any parallelism to the output of one uninterrupted run.
#include <boost/test/unit_test.hpp>

#include "sluice/operators/keyed_process.hpp"
#include "sluice/tests/checkpoint/job_helpers.hpp"
#include "sluice/tests/checkpoint/keyed_process_rig.hpp"
#include "sluice/tests/checkpoint/keyed_process_tally.hpp"
#include "sluice/tests/checkpoint/memory_checkpoints.hpp"

#include <algorithm>
#include <chrono>
#include <set>
#include <string>
#include <utility>
#include <vector>

using namespace sluice;
using namespace sluice::test;
using namespace sluice::test::ckpt;

BOOST_AUTO_TEST_SUITE(keyed_process_checkpoint)

/// A running sum (cleared on values divisible by 10: erasures), the last value with an
/// event-time TTL of 30 s, and one event-time timer per key, registered again by every
/// record (a no-op: the key group's timers change only when a key first appears).
struct sums {
  state_descriptor<value_state<std::int64_t>> total{"total"};
  state_descriptor<value_state<std::int64_t>> last{"last",
                                                   state_ttl::event(std::chrono::seconds{30})};
  void on_element(const tick& t, keyed_process_context<std::int64_t>& ctx, collector<fired>& out) {
    auto sum = ctx.state(total);
    if (t.value % 10 == 0)
      sum.clear();
    else
      sum.update(sum.value_or(0) + t.value);
    auto l = ctx.state(last);
    const auto before = l.value_or(-1);
    l.update(t.value);
    ctx.timers().register_event_time(at_ms(1'000'000));
    out.collect({ctx.current_key(), 2, static_cast<std::int64_t>(t.seq), sum.value_or(-1), before});
  }
  void on_timer(event_time, keyed_process_context<std::int64_t>& ctx, collector<fired>& out) {
    out.collect({ctx.current_key(), 0, 0, ctx.state(total).value_or(-1),
                 ctx.state(last).value_or(-1)});
  }
};

BOOST_AUTO_TEST_CASE(incremental_checkpoints_write_deltas_that_restore_at_any_parallelism) {
  // 2,000 keys (about 16 per key group) written once, then 11 batches of 30 records, 5 s of
  // event time apart: the keys of the first batch expire (TTL 30 s) along the way.
  std::vector<step> steps;
  std::uint64_t seq = 0;
  for (std::int64_t b = 0; b < 12; ++b) {
    std::vector<tick> batch;
    const auto ts = at_ms(b * 5000);
    for (std::int64_t i = 0; i < (b == 0 ? 2000 : 30); ++i, ++seq) {
      const auto h = splitmix64(seq + 99);
      batch.push_back({seq, b == 0 ? i : static_cast<std::int64_t>(h % 2000),
                       static_cast<std::int64_t>((h >> 20) % 1000) + 1, ts, 0});
    }
    steps.emplace_back(std::move(batch));
    steps.emplace_back(event_time{ts - duration{1}});
  }
  const sums fn;
  auto one = instances_of(fn, 1);
  apply(one, steps.begin(), steps.end());
  const auto ref = sorted(emitted(one, true));

  // A checkpoint after every batch and its watermark. The next batch runs before the
  // checkpoint's pieces are encoded: they must hold the state at the barrier.
  batch_runner runner{fn, steps, 2};
  auto& run = runner.run;
  auto& so_far = runner.so_far;
  memory_checkpoints w;
  std::vector<memory_checkpoints> taken;    // taken[j]: after batch j
  std::vector<std::vector<fired>> emitted_before; // what the run emitted up to taken[j]
  auto run_batch = [&](std::size_t b) { runner.run_batch(b); };
  run_batch(0);
  for (std::size_t b = 1; b <= 12; ++b) {
    emitted_before.push_back(so_far);
    w.begin();
    require_ok(run.front()->op->snapshot(static_cast<std::int64_t>(b), w));
    if (b < 12)
      run_batch(b);
    w.finish();
    taken.push_back(w);
  }
  auto rest = emitted(run, true);
  so_far.insert(so_far.end(), rest.begin(), rest.end());
  BOOST_TEST(sorted(so_far) == ref, boost::test_tools::per_element());

  auto is_delta = [](const std::string& n) { return n.find("/d") != std::string::npos; };
  auto key_group_pieces = [](const std::set<std::string>& names) {
    std::vector<std::string> out;
    for (auto& n : names)
      if (n.starts_with("kg/"))
        out.push_back(n);
    return out;
  };
  const auto firsts = key_group_pieces(taken[0].written);
  BOOST_TEST(firsts.size() > 100u);
  BOOST_TEST(std::none_of(firsts.begin(), firsts.end(), is_delta), "the first is full");
  std::size_t base_bytes = 0;
  for (auto& n : firsts)
    base_bytes += taken[0].current.at(n).size();
  for (std::size_t j = 1; j <= 4; ++j) {
    BOOST_TEST_CONTEXT("checkpoint after batch " << j) {
      const auto written = key_group_pieces(taken[j].written);
      BOOST_TEST(!written.empty());
      BOOST_TEST(std::all_of(written.begin(), written.end(), is_delta),
                 "30 records change a few keys: deltas only");
      BOOST_TEST(taken[j].reused.size() >= firsts.size(), "the full pieces are referred to");
      std::size_t delta_bytes = 0;
      for (auto& n : written)
        delta_bytes += taken[j].current.at(n).size();
      BOOST_TEST(delta_bytes * 5 < base_bytes, delta_bytes << " of " << base_bytes << " bytes");
    }
  }
  for (std::size_t j : {std::size_t{0}, std::size_t{2}, std::size_t{6}, std::size_t{11}}) {
    for (int p : {1, 2, 3}) {
      BOOST_TEST_CONTEXT("restored after batch " << j << " at parallelism " << p) {
        auto after = instances_of(fn, p);
        for (auto& r : after)
          require_ok(r->op->restore(taken[j]));
        apply(after, runner.end_of(j), steps.end());
        auto got = emitted_before[j];
        auto more = emitted(after, true);
        got.insert(got.end(), more.begin(), more.end());
        BOOST_TEST(sorted(got) == ref, boost::test_tools::per_element());
      }
    }
  }
}

/// Timers that change with every record, among many that do not: each record registers an
/// event-time timer 3 s after it (fired by its batch's watermark), one 100 s after it
/// (long-lived), a processing-time timer 2.5 s on (every eighth record), and deletes its
/// key's previous long-lived timer when its value is odd.
struct reminders {
  state_descriptor<value_state<std::int64_t>> previous{"previous"};
  void on_element(const tick& t, keyed_process_context<std::int64_t>& ctx, collector<fired>&) {
    auto& timers = ctx.timers();
    timers.register_event_time(t.ts + std::chrono::seconds{3});
    const auto far = t.ts + std::chrono::seconds{100};
    auto prev = ctx.state(previous);
    if (t.value % 2 == 1 && prev.value())
      timers.delete_event_time(at_ms(*prev.value()));
    timers.register_event_time(far);
    prev.update(ms_after_base(far));
    if (t.seq % 8 == 0)
      timers.register_processing_time(timers.current_processing_time() +
                                      std::chrono::milliseconds{2500});
  }
  void on_timer(event_time at, keyed_process_context<std::int64_t>& ctx, collector<fired>& out) {
    out.collect({ctx.current_key(), 0, ms_after_base(at), 0, 0});
  }
  void on_timer(clock::time_point at, keyed_process_context<std::int64_t>& ctx,
                collector<fired>& out) {
    out.collect({ctx.current_key(), 1, clock_ms(at), 0, 0});
  }
};

BOOST_AUTO_TEST_CASE(incremental_checkpoints_write_the_timers_that_changed_not_all_of_them) {
  // 2,000 keys with five records each (about 7,000 long-lived timers after the deletes),
  // then 9 batches of 30 records, 5 s of event time and 1 s of processing time apart.
  std::vector<step> steps;
  std::uint64_t seq = 0;
  for (std::int64_t b = 0; b < 10; ++b) {
    std::vector<tick> batch;
    for (std::int64_t i = 0; i < (b == 0 ? 10'000 : 30); ++i, ++seq) {
      const auto h = splitmix64(seq + 5);
      batch.push_back({seq, b == 0 ? i % 2000 : static_cast<std::int64_t>(h % 2000),
                       static_cast<std::int64_t>((h >> 20) % 1000),
                       at_ms(b * 5000 + (b == 0 ? i / 5 : 0)), 0}); // short timers fire in b
    }
    steps.emplace_back(std::move(batch));
    steps.emplace_back(at_ms(b * 5000 + 6000 - 1));
    steps.emplace_back(std::chrono::nanoseconds{std::chrono::seconds{1}});
  }
  const reminders fn;
  auto one = instances_of(fn, 1);
  apply(one, steps.begin(), steps.end());
  const auto ref = sorted(emitted(one, true));
  BOOST_TEST(ref.size() > 10'000u, "the short timers fired, and every key's last long one");

  batch_runner runner{fn, steps, 3};
  auto& run = runner.run;
  auto& so_far = runner.so_far;
  memory_checkpoints w;
  std::vector<memory_checkpoints> taken;
  std::vector<std::vector<fired>> emitted_before;
  std::vector<std::chrono::nanoseconds> clock_at;
  auto run_batch = [&](std::size_t b) { runner.run_batch(b); };
  run_batch(0);
  for (std::size_t b = 1; b <= 10; ++b) {
    emitted_before.push_back(so_far);
    clock_at.push_back(run.front()->h.processing_time().time_since_epoch());
    w.begin();
    require_ok(run.front()->op->snapshot(static_cast<std::int64_t>(b), w));
    if (b < 10)
      run_batch(b); // before the pieces are encoded: they must hold the barrier's timers
    w.finish();
    taken.push_back(w);
  }
  auto rest = emitted(run, true);
  so_far.insert(so_far.end(), rest.begin(), rest.end());
  BOOST_TEST(sorted(so_far) == ref, boost::test_tools::per_element());

  auto bytes_of = [](const memory_checkpoints& c, bool deltas) {
    std::size_t n = 0, pieces = 0;
    for (auto& name : c.written)
      if (name.starts_with("kg/") && (name.find("/d") != std::string::npos) == deltas) {
        n += c.current.at(name).size();
        ++pieces;
      }
    return std::pair{n, pieces};
  };
  const auto [base_bytes, bases] = bytes_of(taken[0], false);
  BOOST_TEST(bases > 100u);
  for (std::size_t j = 1; j <= 4; ++j) {
    BOOST_TEST_CONTEXT("checkpoint after batch " << j) {
      const auto [full_bytes, fulls] = bytes_of(taken[j], false);
      const auto [delta_bytes, deltas] = bytes_of(taken[j], true);
      BOOST_TEST(fulls == 0u);
      BOOST_TEST(deltas > 0u);
      // About 130 timer changes and 30 state entries, against some 8,000 timers and 2,000
      // entries: all timers of the ~30 key groups touched would be about a quarter. (Batch
      // 2's clock fires the ~900 processing-time timers of batch 0: a larger delta.)
      if (j != 2)
        BOOST_TEST(delta_bytes * 20 < base_bytes, delta_bytes << " of " << base_bytes << " bytes");
    }
  }
  for (std::size_t j : {std::size_t{0}, std::size_t{2}, std::size_t{5}, std::size_t{8}}) {
    for (int p : {1, 2, 3}) {
      BOOST_TEST_CONTEXT("restored after batch " << j << " at parallelism " << p) {
        auto after = instances_of(fn, p, clock_at[j]);
        for (auto& r : after)
          require_ok(r->op->restore(taken[j]));
        apply(after, runner.end_of(j), steps.end());
        auto got = emitted_before[j];
        auto more = emitted(after, true);
        got.insert(got.end(), more.begin(), more.end());
        BOOST_TEST(sorted(got) == ref, boost::test_tools::per_element());
      }
    }
  }
}

BOOST_AUTO_TEST_SUITE_END()
