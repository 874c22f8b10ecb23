// Checkpoints of keyed process functions at operator level: value, list and map state (with
// TTL) and event- and processing-time timers are snapshotted per key group and restored by
// whichever instance owns the key group next. The harness and an in-memory snapshot (every
// cut point, rescaling, TTL, processing-time timers, corrupt pieces, state types). Deltas:
// keyed_process_incremental_test.cpp; whole jobs: keyed_process_job_test.cpp.
//
// Processing time comes from the harness's clock, which moves only when the test moves it:
// what a processing-time timer emits does not depend on thread timing.
#include <boost/test/unit_test.hpp>

#include "sluice/operators/harness.hpp"
#include "sluice/operators/keyed_process.hpp"
#include "sluice/tests/checkpoint/job_helpers.hpp"
#include "sluice/tests/checkpoint/keyed_process_rig.hpp"
#include "sluice/tests/checkpoint/keyed_process_tally.hpp"

#include <algorithm>
#include <chrono>
#include <string>
#include <utility>
#include <vector>

using namespace sluice;
using namespace sluice::test;
using namespace sluice::test::ckpt;

BOOST_AUTO_TEST_SUITE(keyed_process_checkpoint)

BOOST_AUTO_TEST_CASE(a_restore_at_every_cut_point_continues_exactly_like_one_run) {
  const auto steps = script();
  const auto ref = uninterrupted_steps(steps);
  const auto count = [&](std::int64_t kind) {
    return std::count_if(ref.begin(), ref.end(), [&](auto& r) { return r.kind == kind; });
  };
  BOOST_REQUIRE(count(0) > 50); // buckets fired by watermarks...
  BOOST_REQUIRE(count(1) > 50); // ...and timers by the clock, all along the script
  for (std::size_t cut = 0; cut <= steps.size(); ++cut) {
    BOOST_TEST_CONTEXT("cut before step " << cut) {
      auto [got, snap] = cut_and_resume(steps, cut, 1, 1);
      BOOST_TEST(got == ref, boost::test_tools::per_element());
    }
  }
}

BOOST_AUTO_TEST_CASE(a_snapshot_encoded_after_the_task_went_on_holds_the_state_at_the_barrier) {
  // The writer thread encodes after the task went on: the state it encodes must be the
  // state at the barrier (frozen groups), not what the task changed, added or freed since.
  const auto steps = script();
  const auto ref = sorted(uninterrupted_steps(steps));
  const tally fn{nullptr, true};
  const auto at = steps.begin() + static_cast<std::ptrdiff_t>(steps.size() / 2);
  auto before = instances_of(fn, 2);
  apply(before, steps.begin(), at);
  memory_snapshot snap;
  snap.defer = true;
  for (auto& r : before)
    require_ok(r->op->snapshot(1, snap));
  auto got = emitted(before, false);
  const auto now = before.front()->h.processing_time().time_since_epoch();
  apply(before, at, steps.end()); // every key's state changes, timers fire, state is freed
  emitted(before, true);
  BOOST_TEST(!snap.deferred.empty());
  snap.finish();
  auto after = instances_of(fn, 3, now);
  for (auto& r : after)
    require_ok(r->op->restore(snap));
  apply(after, at, steps.end());
  auto rest = emitted(after, true);
  got.insert(got.end(), rest.begin(), rest.end());
  BOOST_TEST(sorted(got) == ref, boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(each_instance_restores_the_key_groups_it_owns_after_rescaling) {
  const auto steps = script();
  const auto ref = sorted(uninterrupted_steps(steps));
  for (auto [from, to] : {std::pair{1, 2}, std::pair{2, 1}, std::pair{1, 3}, std::pair{3, 2}}) {
    for (std::size_t cut : {std::size_t{9}, steps.size() / 2, steps.size() - 4}) {
      BOOST_TEST_CONTEXT(from << " -> " << to << " instances, cut before step " << cut) {
        auto [got, snap] = cut_and_resume(steps, cut, from, to);
        BOOST_TEST(sorted(got) == ref, boost::test_tools::per_element());
        // Every instance left its watermark; key groups went to pieces of their own.
        for (int i = 0; i < from; ++i)
          BOOST_TEST(snap.pieces.count(instance_piece(i)) == 1u);
        BOOST_TEST(!snap.key_group_pieces().empty());
      }
    }
  }
}

BOOST_AUTO_TEST_CASE(a_checkpoint_right_after_a_restore_keeps_state_not_used_yet) {
  // States are decoded on first use; a checkpoint before that (no input since the restore)
  // must write them on unchanged, with their timers.
  const auto steps = script();
  const auto ref = uninterrupted_steps(steps);
  const auto at = steps.begin() + static_cast<std::ptrdiff_t>(steps.size() / 2);
  const tally fn{nullptr, true};
  auto first = instances_of(fn, 1);
  apply(first, steps.begin(), at);
  memory_snapshot snap;
  require_ok(first.front()->op->snapshot(1, snap));
  auto out = emitted(first, false);
  const auto now = first.front()->h.processing_time().time_since_epoch();

  auto idle = instances_of(fn, 1, now);
  auto& middle = *idle.front()->op;
  require_ok(middle.restore(snap));
  BOOST_TEST(middle.state_size("total") > 0u, "restored, not decoded yet");
  memory_snapshot again;
  require_ok(middle.snapshot(2, again));
  BOOST_TEST((again.pieces == snap.pieces), "nothing happened in between: the same pieces");

  auto last = instances_of(fn, 1, now);
  require_ok(last.front()->op->restore(again));
  for (auto* name : {"total", "recent", "buckets"})
    BOOST_TEST(last.front()->op->state_size(name) == middle.state_size(name), name);
  apply(last, at, steps.end());
  auto rest = emitted(last, true);
  out.insert(out.end(), rest.begin(), rest.end());
  BOOST_TEST(out == ref, boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(ttl_deadlines_survive_a_restore_and_expired_entries_stay_expired) {
  using ctx_t = keyed_process_context<std::int64_t>;
  // value > 0 writes both states; value 0 reads them: `value` says which exist (1: the
  // processing-time one, 2: the event-time one), `extra` is the watermark seen (ms).
  struct ttl_fn {
    state_descriptor<value_state<std::int64_t>> by_clock{
      "by_clock", state_ttl::processing(std::chrono::seconds{10})};
    state_descriptor<value_state<std::int64_t>> by_event{
      "by_event", state_ttl::event(std::chrono::seconds{10})};
    void on_element(const tick& t, ctx_t& ctx, collector<fired>& out) {
      if (t.value > 0) {
        ctx.state(by_clock).update(t.value);
        ctx.state(by_event).update(t.value);
        return;
      }
      const std::int64_t seen = (ctx.state(by_clock).exists() ? 1 : 0) +
                                (ctx.state(by_event).exists() ? 2 : 0);
      out.collect({ctx.current_key(), 9, 0, seen, ms_after_base(ctx.current_watermark())});
    }
  };
  auto write = [](std::int64_t key, std::int64_t s) {
    return std::vector<tick>{{0, key, 1, at_ms(s * 1000), 0}};
  };
  auto read = [](auto& r, std::vector<std::int64_t> keys) {
    std::vector<tick> ts;
    for (auto k : keys)
      ts.push_back({0, k, 0, at_ms(0), 0});
    require_ok(r.h.push(ts));
    std::vector<std::int64_t> seen;
    for (auto& f : r.h.template take<fired>())
      seen.push_back(f.value);
    return seen;
  };
  using v = std::vector<std::int64_t>;

  // Key 1 written at clock 0 s and event time 0 s, key 2 at 4 s and 4 s; both expire 10 s
  // later in their domain. The checkpoint: clock 4 s, watermark 5 s.
  rig<ttl_fn> a{ttl_fn{}};
  require_ok(a.h.push(write(1, 0)));
  require_ok(a.h.advance_processing_time(std::chrono::seconds{4}));
  require_ok(a.h.push(write(2, 4)));
  require_ok(a.h.watermark(at_ms(5'000)));
  memory_snapshot snap;
  require_ok(a.op->snapshot(1, snap));

  BOOST_TEST_CONTEXT("the same clock, restored at once") {
    rig<ttl_fn> b{ttl_fn{}, 0, 1, std::chrono::seconds{4}};
    require_ok(b.op->restore(snap));
    BOOST_TEST(b.op->state_size("by_clock") == 2u);
    BOOST_TEST(!b.h.requested_wakeup().has_value(), "no timers; states not decoded yet");
    BOOST_TEST(read(b, {1, 2}) == (v{3, 3}), boost::test_tools::per_element());
    // The restored watermark holds until a later one arrives.
    require_ok(b.h.push(std::vector<tick>{{0, 1, 0, at_ms(0), 0}}));
    BOOST_TEST(b.h.take<fired>().at(0).extra == 5'000);
    // Decoding asked for a wake-up at the first processing-time expiry (key 1 at 10 s).
    BOOST_REQUIRE(b.h.requested_wakeup().has_value());
    BOOST_TEST(clock_ms(*b.h.requested_wakeup()) == 10'000);
    require_ok(b.h.advance_processing_time(std::chrono::milliseconds{5'999}));
    BOOST_TEST(read(b, {1, 2}) == (v{3, 3}), boost::test_tools::per_element());
    require_ok(b.h.advance_processing_time(std::chrono::milliseconds{1}));
    BOOST_TEST(b.op->state_size("by_clock") == 1u, "freed at its deadline, 10 s");
    BOOST_TEST(read(b, {1, 2}) == (v{2, 3}), boost::test_tools::per_element());
    require_ok(b.h.watermark(at_ms(10'000)));
    BOOST_TEST(read(b, {1, 2}) == (v{0, 3}), boost::test_tools::per_element());
    require_ok(b.h.advance_processing_time(std::chrono::seconds{4}));
    require_ok(b.h.watermark(at_ms(14'000)));
    BOOST_TEST(read(b, {1, 2}) == (v{0, 0}), boost::test_tools::per_element());
    BOOST_TEST(b.op->state_size("by_clock") == 0u);
    BOOST_TEST(b.op->state_size("by_event") == 0u);
  }
  BOOST_TEST_CONTEXT("the same clock, 8 s later: key 1 expired while the job was down") {
    rig<ttl_fn> c{ttl_fn{}, 0, 1, std::chrono::seconds{12}};
    require_ok(c.op->restore(snap));
    BOOST_TEST(read(c, {1, 2}) == (v{2, 3}), boost::test_tools::per_element());
  }
  BOOST_TEST_CONTEXT("a clock behind the checkpoint's: each entry keeps the time it had left") {
    rig<ttl_fn> d{ttl_fn{}}; // at 0 s, 4 s behind
    require_ok(d.op->restore(snap));
    require_ok(d.h.advance_processing_time(std::chrono::milliseconds{5'999}));
    BOOST_TEST(read(d, {1, 2}) == (v{3, 3}), boost::test_tools::per_element());
    require_ok(d.h.advance_processing_time(std::chrono::milliseconds{1})); // 6 s: key 1's 10 s
    BOOST_TEST(read(d, {1, 2}) == (v{2, 3}), boost::test_tools::per_element());
  }
  BOOST_TEST_CONTEXT("expired, not yet freed entries are not written; a lower replayed "
                     "watermark revives nothing") {
    require_ok(a.h.watermark(at_ms(10'000))); // key 1's event-time entry expires at 10 s
    require_ok(a.h.push(write(3, 0)));        // expired at once: written at 0 s + 10 s
    BOOST_TEST(a.op->state_size("by_event") == 2u, "key 3 waits for the next cleanup pass");
    memory_snapshot later;
    require_ok(a.op->snapshot(2, later));
    rig<ttl_fn> e{ttl_fn{}, 0, 1, std::chrono::seconds{4}};
    require_ok(e.op->restore(later));
    BOOST_TEST(e.op->state_size("by_event") == 1u, "only key 2");
    require_ok(e.h.watermark(at_ms(1'000))); // behind the checkpoint's 10 s
    BOOST_TEST(read(e, {1, 2, 3}) == (v{1, 3, 1}), boost::test_tools::per_element());
  }
}

BOOST_AUTO_TEST_CASE(processing_time_timers_keep_their_time_or_the_time_they_had_left) {
  rig<tally> a{tally{nullptr, true}};
  require_ok(a.h.advance_processing_time(std::chrono::seconds{2}));
  require_ok(a.h.push(std::vector<tick>{make_tick(0)})); // a timer at 7 s
  memory_snapshot snap;
  require_ok(a.op->snapshot(1, snap));
  {
    rig<tally> same{tally{nullptr, true}, 0, 1, std::chrono::seconds{3}};
    require_ok(same.op->restore(snap));
    BOOST_REQUIRE(same.h.requested_wakeup().has_value());
    BOOST_TEST(clock_ms(*same.h.requested_wakeup()) == 7'000);
    require_ok(same.h.advance_processing_time(std::chrono::seconds{4}));
    auto out = same.h.take<fired>();
    BOOST_REQUIRE_EQUAL(out.size(), 1u);
    BOOST_TEST(out[0].at == 7'000);
  }
  {
    rig<tally> behind{tally{nullptr, true}}; // another clock, at 0 s: 5 s left
    require_ok(behind.op->restore(snap));
    BOOST_REQUIRE(behind.h.requested_wakeup().has_value());
    BOOST_TEST(clock_ms(*behind.h.requested_wakeup()) == 5'000);
  }
}

BOOST_AUTO_TEST_CASE(a_corrupt_piece_is_an_error_naming_the_operator_and_key_group) {
  rig<tally> a{tally{nullptr, true}};
  std::vector<tick> batch;
  for (std::uint64_t i = 0; i < 40; ++i)
    batch.push_back(make_tick(i));
  require_ok(a.h.push(batch));
  memory_snapshot snap;
  require_ok(a.op->snapshot(1, snap));
  const auto piece = snap.key_group_pieces().front();
  const auto group = piece.substr(3);
  const auto good = snap.pieces[piece];

  auto restore_with = [&](const std::string& bytes) {
    auto copy = snap;
    copy.pieces[piece] = bytes;
    rig<tally> b{tally{nullptr, true}};
    return b.op->restore(copy);
  };
  auto bad_version = good;
  bad_version[21] = 4; // after the tag's length byte and its 20 characters
  const std::vector<std::pair<std::string, std::string>> cases{
    {"\x05hello world", "not a keyed process piece"},
    {good.substr(0, good.size() / 2), "truncated"},
    {good.substr(0, 30), "truncated"},
    {good + "x", "bytes after the timers"},
    {bad_version, "format version 4"},
    {"", "truncated"},
  };
  for (auto& [bytes, why] : cases) {
    BOOST_TEST_CONTEXT("expecting '" << why << "'") {
      auto e = require_error(restore_with(bytes));
      BOOST_TEST((e.code == error_code::io_error));
      BOOST_TEST(mentions(e.message, "operator 'tally'"), e.message);
      BOOST_TEST(mentions(e.message, "key group " + group), e.message);
      BOOST_TEST(mentions(e.message, why), e.message);
    }
  }
  {
    auto copy = snap;
    copy.pieces[instance_piece(0)] = "junk";
    rig<tally> b{tally{nullptr, true}};
    auto e = require_error(b.op->restore(copy));
    BOOST_TEST(mentions(e.message, "operator 'tally', instance 0"), e.message);
  }

  // A state section whose entries do not decode: the piece reads, the state fails when the
  // function first uses it, still naming operator, key group and state.
  {
    detail::state_decoder dec{good};
    std::string tag;
    std::uint32_t version = 0;
    event_time wm{};
    std::int64_t ref = 0;
    std::vector<detail::state_section> sections;
    require_ok(dec.get(tag));
    require_ok(dec.get(version));
    require_ok(dec.get(wm));
    require_ok(dec.get(ref));
    require_ok(dec.get(sections));
    const auto timers = good.substr(good.size() - dec.remaining());
    auto it = std::find_if(sections.begin(), sections.end(),
                           [](auto& s) { return s.name == "total"; });
    BOOST_REQUIRE(it != sections.end());
    it->entries.resize(it->entries.size() - 3);
    detail::state_encoder enc;
    enc.put(tag);
    enc.put(version);
    enc.put(wm);
    enc.put(ref);
    enc.put(sections);
    auto copy = snap;
    copy.pieces[piece] = enc.take() + timers;
    rig<tally> b{tally{nullptr, true}};
    require_ok(b.op->restore(copy));
    auto e = require_error(b.h.push(std::vector<tick>{make_tick(100)}));
    BOOST_TEST((e.code == error_code::io_error));
    BOOST_TEST(mentions(e.message, "operator 'tally'"), e.message);
    BOOST_TEST(mentions(e.message, "key group " + group), e.message);
    BOOST_TEST(mentions(e.message, "state 'total'"), e.message);
    BOOST_TEST(mentions(e.message, "truncated"), e.message);
  }
}

BOOST_AUTO_TEST_CASE(a_state_restored_as_another_type_is_refused_by_name) {
  struct as_text {
    state_descriptor<value_state<std::string>> total{"total"};
    void on_element(const tick& t, keyed_process_context<std::int64_t>& ctx, collector<fired>&) {
      ctx.state(total).update(std::to_string(t.value));
    }
  };
  rig<tally> a{tally{nullptr, true}};
  require_ok(a.h.push(std::vector<tick>{make_tick(0)}));
  memory_snapshot snap;
  require_ok(a.op->snapshot(1, snap));
  rig<as_text> b{as_text{}};
  require_ok(b.op->restore(snap));
  auto e = require_error(b.h.push(std::vector<tick>{make_tick(0)}));
  BOOST_TEST(mentions(e.message, "operator 'tally'"), e.message);
  BOOST_TEST(mentions(e.message, "state 'total'"), e.message);
  BOOST_TEST(mentions(e.message, "type long"), e.message);
  BOOST_TEST(mentions(e.message, "std::"), e.message); // the new type, demangled
}

BOOST_AUTO_TEST_CASE(a_state_type_without_inspect_cannot_be_snapshotted) {
  struct opaque {
    std::int64_t n = 0;
  };
  struct keeps_opaque {
    void on_element(const tick& t, keyed_process_context<std::int64_t>& ctx, collector<fired>&) {
      ctx.value_state<opaque>("blob").update(opaque{t.value});
    }
  };
  rig<keeps_opaque> a{keeps_opaque{}};
  require_ok(a.h.push(std::vector<tick>{make_tick(0)}));
  memory_snapshot snap;
  auto e = require_error(a.op->snapshot(1, snap));
  BOOST_TEST(mentions(e.message, "operator 'tally'"), e.message);
  BOOST_TEST(mentions(e.message, "state 'blob'"), e.message);
  BOOST_TEST(mentions(e.message, "inspect()"), e.message);
}

BOOST_AUTO_TEST_SUITE_END()
