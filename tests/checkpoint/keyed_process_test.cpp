// Checkpoints of keyed process functions: value, list and map state (with TTL) and event-
// and processing-time timers are snapshotted per key group and restored by whichever
// instance owns the key group next. Operator-level tests use the harness and an in-memory
// snapshot (every cut point, rescaling, TTL, corrupt pieces); job-level tests stop a job at
// a checkpoint (cancel, or a failure and restart) and require exactly the output of one
// uninterrupted run, also when the restarted job has another parallelism.
//
// Processing time comes from a manual clock that stands still while records flow, so a
// processing-time timer fires only when the test moves the clock, once every record has
// been processed: what it emits does not depend on thread timing.
#include <boost/test/unit_test.hpp>

#include "sluice/operators/harness.hpp"
#include "sluice/operators/keyed_process.hpp"
#include "sluice/sinks/memory.hpp"
#include "sluice/sources/collection.hpp"
#include "sluice/tests/checkpoint/job_helpers.hpp"
#include "sluice/tests/checkpoint/memory_checkpoints.hpp"

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <ostream>
#include <stdexcept>
#include <string>
#include <variant>
#include <vector>

using namespace sluice;
using namespace sluice::test;
using namespace sluice::test::ckpt;

namespace {

// -- records and the process function -------------------------------------------------------

/// Record `seq` of run incarnation `gen` (the source's how-many-th open).
struct tick {
  std::uint64_t seq = 0;
  std::int64_t key = 0;
  std::int64_t value = 0;
  event_time ts{};
  std::int64_t gen = 0;
};
template <class Inspector>
bool inspect(Inspector& f, tick& x) {
  return f.object("tick").fields(f.field("seq", x.seq), f.field("key", x.key),
                                 f.field("value", x.value), f.field("ts", x.ts),
                                 f.field("gen", x.gen));
}
std::int64_t tick_key(const tick& t) { return t.key; }
event_time tick_ts(const tick& t) { return t.ts; }

constexpr std::int64_t tick_keys = 20;

/// 10 ms of event time apart, in order (nothing is late); 20 keys.
tick make_tick(std::uint64_t seq, std::int64_t gen = 0) {
  const auto h = splitmix64(seq + 7);
  return {seq, static_cast<std::int64_t>(h % tick_keys),
          static_cast<std::int64_t>((h >> 20) % 1000),
          at_ms(static_cast<std::int64_t>(seq) * 10), gen};
}

/// What the function emits. Event-time timer: the sum of a key's one-second bucket
/// (`at` = the bucket's start, ms after `at_ms(0)`). Processing-time timer: the key's
/// total and the sum of its last three values (`at` = the timer, ms of the clock).
struct fired {
  std::int64_t key = 0;
  std::int64_t kind = 0; ///< 0: event-time timer, 1: processing-time timer
  std::int64_t at = 0;
  std::int64_t value = 0;
  std::int64_t extra = 0;
  friend auto operator<=>(const fired&, const fired&) = default;
};
template <class Inspector>
bool inspect(Inspector& f, fired& x) {
  return f.object("fired").fields(f.field("key", x.key), f.field("kind", x.kind),
                                  f.field("at", x.at), f.field("value", x.value),
                                  f.field("extra", x.extra));
}
std::ostream& operator<<(std::ostream& os, const fired& r) {
  return os << "{key " << r.key << (r.kind == 0 ? " bucket " : " timer ") << r.at << " value "
            << r.value << " extra " << r.extra << "}";
}

std::int64_t ms_after_base(event_time t) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(t - at_ms(0)).count();
}
std::int64_t clock_ms(clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
}

/// Where a job run is, as seen from inside it; the test thread waits on it. Only the
/// current incarnation counts: records of tasks a restart killed carry an older `gen`.
struct run_progress {
  std::mutex mtx;
  std::condition_variable cv;
  std::int64_t gen = 0;     ///< source opens so far
  std::uint64_t start = 0;  ///< where the current incarnation's source started
  std::uint64_t seen = 0;   ///< records of the current incarnation the function saw
  std::uint64_t fired = 0;  ///< processing-time timers fired
  bool resume = false;      ///< the source may read past its pause point
  bool end = false;         ///< the source may end after its last record

  template <class F>
  void update(F f) {
    {
      std::lock_guard guard{mtx};
      f();
    }
    cv.notify_all();
  }
  template <class P>
  bool wait(P pred) {
    std::unique_lock lk{mtx};
    return cv.wait_for(lk, safety_timeout, pred);
  }
};

/// The processing-time timer every record registers in the job tests: one per key, far
/// after the clock's start, so it fires only when the test moves the clock past it.
constexpr auto job_timer_at = clock::time_point{} + std::chrono::minutes{10};

/// Value, list and map state, event-time timers per bucket, processing-time timers.
struct tally {
  std::shared_ptr<run_progress> progress{};
  /// Harness tests: a processing-time timer 5 s after each record's processing time
  /// instead of `job_timer_at`.
  bool relative_timer = false;
  state_descriptor<value_state<std::int64_t>> total{"total"};
  state_descriptor<list_state<std::int64_t>> recent{"recent"};
  state_descriptor<map_state<std::int64_t, std::int64_t>> buckets{"buckets"};

  void on_element(const tick& t, keyed_process_context<std::int64_t>& ctx, collector<fired>&) {
    auto sum = ctx.state(total);
    sum.update(sum.value_or(0) + t.value);
    auto last = ctx.state(recent);
    auto values = last.get();
    values.push_back(t.value);
    if (values.size() > 3)
      values.erase(values.begin());
    last.update(values);
    const auto b = ms_after_base(t.ts) / 1000 * 1000;
    auto m = ctx.state(buckets);
    m.put(b, m.get(b).value_or(0) + t.value);
    ctx.timers().register_event_time(at_ms(b + 1000) - duration{1});
    ctx.timers().register_processing_time(
      relative_timer ? ctx.timers().current_processing_time() + std::chrono::seconds{5}
                     : job_timer_at);
    if (progress)
      progress->update([&] {
        if (t.gen == progress->gen)
          ++progress->seen;
      });
  }
  void on_timer(event_time at, keyed_process_context<std::int64_t>& ctx, collector<fired>& out) {
    const auto b = ms_after_base(at + duration{1}) - 1000;
    auto m = ctx.state(buckets);
    out.collect({ctx.current_key(), 0, b, m.get(b).value_or(-1), 0});
    m.remove(b);
  }
  void on_timer(clock::time_point at, keyed_process_context<std::int64_t>& ctx,
                collector<fired>& out) {
    std::int64_t last = 0;
    for (auto v : ctx.state(recent).get())
      last += v;
    out.collect({ctx.current_key(), 1, clock_ms(at), ctx.state(total).value_or(-1), last});
    if (progress)
      progress->update([&] { ++progress->fired; });
  }
};

// -- operator level: the harness and an in-memory checkpoint --------------------------------

/// A checkpoint in memory: what the writers put, for the readers.
struct memory_snapshot final : snapshot_writer, snapshot_reader {
  std::map<std::string, std::string> pieces;
  /// Holds `put_later` pieces until `finish`, as the writer thread would.
  bool defer = false;
  std::vector<std::pair<std::string, std::function<result<std::string>()>>> deferred;
  result<void> put(const std::string& piece, std::string bytes) override {
    pieces[piece] = std::move(bytes);
    return {};
  }
  result<void> put_later(const std::string& piece,
                         std::function<result<std::string>()> encode) override {
    if (!defer)
      return snapshot_writer::put_later(piece, std::move(encode));
    deferred.emplace_back(piece, std::move(encode));
    return {};
  }
  void finish() {
    for (auto& [piece, encode] : deferred)
      pieces[piece] = require_ok(encode());
    deferred.clear();
  }
  result<std::optional<std::string>> get(const std::string& piece) override {
    auto it = pieces.find(piece);
    if (it == pieces.end())
      return std::optional<std::string>{};
    return std::optional<std::string>{it->second};
  }
  /// The key group pieces, by name.
  std::vector<std::string> key_group_pieces() const {
    std::vector<std::string> out;
    for (auto& [name, bytes] : pieces)
      if (name.starts_with("kg/"))
        out.push_back(name);
    return out;
  }
};

using key_fn_ptr = std::int64_t (*)(const tick&);
template <class F>
using kp_op = keyed_process_function_operator<std::int64_t, tick, fired, key_fn_ptr, F>;

/// One instance of the operator under a harness whose clock starts at `clock_at`.
template <class F>
struct rig {
  kp_op<F>* op;
  operator_harness h;

  explicit rig(F fn, int instance = 0, int parallelism = 1,
               std::chrono::nanoseconds clock_at = std::chrono::nanoseconds{0})
    : rig(std::make_unique<kp_op<F>>(tick_key, std::move(fn), tick_ts), instance, parallelism,
          clock_at) {}

private:
  rig(std::unique_ptr<kp_op<F>> o, int instance, int parallelism, std::chrono::nanoseconds clock_at)
    : op(o.get()),
      h(std::move(o), harness_options{.name = "tally", .instance = instance,
                                       .parallelism = parallelism}) {
    require_ok(h.advance_processing_time(clock_at)); // nothing is open yet: only the clock moves
    require_ok(h.open());
  }
};

/// A step of a scripted run: a batch, a watermark, or processing time moving on.
using step = std::variant<std::vector<tick>, event_time, std::chrono::nanoseconds>;

/// 400 records in batches of 25; after each a watermark just behind it; the clock moves
/// 3 s every second batch (processing-time timers are 5 s after their record).
std::vector<step> script() {
  std::vector<step> out;
  for (std::uint64_t b = 0; b < 16; ++b) {
    std::vector<tick> batch;
    for (std::uint64_t i = 0; i < 25; ++i)
      batch.push_back(make_tick(b * 25 + i));
    const auto wm = batch.back().ts - duration{1};
    out.emplace_back(std::move(batch));
    out.emplace_back(wm);
    if (b % 2 == 1)
      out.emplace_back(std::chrono::nanoseconds{std::chrono::seconds{3}});
  }
  return out;
}

int instance_of(std::int64_t key, int parallelism) {
  return instance_of_key_group(key_group_of(key_hash<std::int64_t>{}(key), default_max_key_groups),
                               default_max_key_groups, parallelism);
}

template <class F>
using instances = std::vector<std::unique_ptr<rig<F>>>;

/// Runs `steps` on the instances of one parallelism, as a keyed edge and a task would:
/// each gets its keys' records, every watermark and every clock move.
template <class F>
void apply(instances<F>& all, std::vector<step>::const_iterator first,
           std::vector<step>::const_iterator last) {
  const int p = static_cast<int>(all.size());
  for (; first != last; ++first)
    for (int i = 0; i < p; ++i) {
      auto& h = all[static_cast<std::size_t>(i)]->h;
      if (auto* batch = std::get_if<std::vector<tick>>(&*first)) {
        std::vector<tick> mine;
        for (auto& t : *batch)
          if (instance_of(t.key, p) == i)
            mine.push_back(t);
        require_ok(h.push(std::move(mine)));
      } else if (auto* wm = std::get_if<event_time>(&*first)) {
        require_ok(h.watermark(*wm));
      } else {
        require_ok(h.advance_processing_time(std::get<std::chrono::nanoseconds>(*first)));
      }
    }
}

/// What the instances emitted so far (after the end of input when `end`).
template <class F>
std::vector<fired> emitted(instances<F>& all, bool end) {
  std::vector<fired> out;
  for (auto& r : all) {
    if (end)
      require_ok(r->h.end_input());
    auto got = r->h.template take<fired>();
    out.insert(out.end(), got.begin(), got.end());
  }
  return out;
}

template <class F>
instances<F> instances_of(const F& fn, int parallelism, std::chrono::nanoseconds clock_at = {}) {
  instances<F> out;
  for (int i = 0; i < parallelism; ++i)
    out.push_back(std::make_unique<rig<F>>(fn, i, parallelism, clock_at));
  return out;
}

/// One instance of `fn` fed a script `stride` steps (a batch) at a time, with everything it
/// emitted so far.
template <class F>
struct batch_runner {
  const std::vector<step>& steps;
  std::size_t stride;
  instances<F> run;
  std::vector<fired> so_far;

  batch_runner(const F& fn, const std::vector<step>& s, std::size_t n)
    : steps(s), stride(n), run(instances_of(fn, 1)) {}
  /// Where batch `b` ends in the script.
  std::vector<step>::const_iterator end_of(std::size_t b) const {
    return steps.begin() + static_cast<std::ptrdiff_t>(stride * (b + 1));
  }
  void run_batch(std::size_t b) {
    apply(run, steps.begin() + static_cast<std::ptrdiff_t>(stride * b), end_of(b));
    auto got = emitted(run, false);
    so_far.insert(so_far.end(), got.begin(), got.end());
  }
};

/// The steps before `cut` at parallelism `from`, a checkpoint, the rest at parallelism `to`
/// restored from it. Returns everything emitted, and the checkpoint.
std::pair<std::vector<fired>, memory_snapshot> cut_and_resume(const std::vector<step>& steps,
                                                              std::size_t cut, int from, int to) {
  const tally fn{nullptr, true};
  const auto at = steps.begin() + static_cast<std::ptrdiff_t>(cut);
  auto before = instances_of(fn, from);
  apply(before, steps.begin(), at);
  memory_snapshot snap;
  for (auto& r : before)
    require_ok(r->op->snapshot(1, snap));
  auto out = emitted(before, false);
  // The same clock: the restored instances start where the old ones stopped.
  const auto now = before.front()->h.processing_time().time_since_epoch();
  auto after = instances_of(fn, to, now);
  for (auto& r : after)
    require_ok(r->op->restore(snap));
  apply(after, at, steps.end());
  auto rest = emitted(after, true);
  out.insert(out.end(), rest.begin(), rest.end());
  return {out, std::move(snap)};
}

std::vector<fired> uninterrupted_steps(const std::vector<step>& steps) {
  auto one = instances_of(tally{nullptr, true}, 1);
  apply(one, steps.begin(), steps.end());
  return emitted(one, true);
}

} // namespace

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

// -- incremental checkpoints -------------------------------------------------------------

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

// -- job level -------------------------------------------------------------------------------

namespace {

/// Records `make_tick(0..n-1)` stamped with the incarnation, replayable. It pauses before
/// `pause_at` until `progress->resume`, and after the last record it waits for
/// `progress->end`: so the test moves the clock only once every record was processed.
class tick_source final : public source<tick> {
public:
  tick_source(std::uint64_t n, std::uint64_t pause_at, std::shared_ptr<run_progress> p)
    : n_(n), pause_at_(pause_at), p_(std::move(p)) {}
  result<void> open(const source_context&) override {
    p_->update([&] {
      gen_ = ++p_->gen;
      p_->start = p_->seen = p_->fired = 0;
    });
    return {};
  }
  result<poll_result> poll(source_output<tick>& out, std::size_t max) override {
    bool resume = false, end = false;
    {
      std::lock_guard guard{p_->mtx};
      resume = p_->resume;
      end = p_->end;
    }
    const auto limit = resume ? n_ : std::min(pause_at_, n_);
    std::size_t k = 0;
    for (; k < max && next_ < limit; ++k, ++next_)
      out.records.push_back(make_tick(next_, gen_));
    if (k > 0)
      return poll_result::more();
    if (next_ >= n_ && end)
      return poll_result::end();
    return poll_result::idle(std::chrono::milliseconds{1});
  }
  std::optional<std::string> position() const override { return std::to_string(next_); }
  result<void> seek(std::string_view pos) override {
    next_ = std::stoull(std::string{pos});
    p_->update([&] { p_->start = next_; });
    return {};
  }

private:
  std::uint64_t n_;
  std::uint64_t pause_at_;
  std::shared_ptr<run_progress> p_;
  std::uint64_t next_ = 0;
  std::int64_t gen_ = 0;
};

struct ticks {
  using record_type = tick;
  std::uint64_t n;
  std::uint64_t pause_at;
  std::shared_ptr<run_progress> progress;
  std::unique_ptr<source<tick>> create(const source_context&) const {
    return std::make_unique<tick_source>(n, pause_at, progress);
  }
  std::string describe() const { return "ticks"; }
  int max_parallelism() const { return 1; }
};

constexpr std::uint64_t job_records = 4'000;

/// ticks -> check (may hold or throw) -> key_by -> tally -> transactional file sink.
struct tally_job {
  fs::path out;
  fs::path checkpoints{};
  int parallelism = 1; ///< of tally and the sink
  std::shared_ptr<manual_clock> clock = std::make_shared<manual_clock>();
  std::shared_ptr<run_progress> progress = std::make_shared<run_progress>();
  std::uint64_t pause_at = job_records;
  std::shared_ptr<gate> hold{};
  std::uint64_t fail_at = job_records; ///< none
  std::shared_ptr<std::atomic<bool>> failed = std::make_shared<std::atomic<bool>>(false);
  sluice::trigger trigger = triggers::continuous(std::chrono::hours{1});
  restart_strategy restart = restart_strategy::none();
  std::function<void(const char*, std::int64_t)> sync_point{};

  job_options options() const {
    job_options o;
    o.name = "tallies";
    o.parallelism = parallelism;
    o.trigger = trigger;
    o.checkpoints.dir = checkpoints;
    o.checkpoints.interval = std::chrono::milliseconds{0};
    o.checkpoints.restart = restart;
    o.runtime.batch_size = 128;
    o.runtime.threads = 4; // a gate blocks one worker
    o.runtime.sync_point = sync_point;
    o.runtime.processing_clock = clock;
    return o;
  }

  void build(job& j) const {
    auto g = hold;
    auto fail = fail_at;
    auto once = failed;
    j.from(ticks{job_records, pause_at, progress},
           watermarks::bounded_out_of_orderness<tick>(duration{0}, tick_ts))
      .name("ticks")
      .parallelism(1)
      .map([g, fail, once](const tick& t) {
        if (g)
          g->pass();
        if (t.seq == fail && !once->exchange(true))
          throw std::runtime_error("poison record " + std::to_string(fail));
        return t;
      })
      .name("check")
      .parallelism(1)
      .disable_chaining() // a map that waits must not hold up the source's task
      .key_by(tick_key)
      .process(tally{progress})
      .name("tally")
      .sink_to(sinks::file<fired>{{.path = out, .transactional = true}})
      .name("out");
  }

  /// Waits until the current incarnation (`gen`) processed every record, moves the clock
  /// past the processing-time timers, waits until one fired per key, lets the source end.
  result<job_result> finish(job_execution& exec, std::int64_t gen) const {
    const bool all_seen = progress->wait([&] {
      return progress->gen == gen && progress->seen == job_records - progress->start;
    });
    BOOST_REQUIRE_MESSAGE(all_seen, "the job never processed every record");
    clock->advance(std::chrono::hours{1});
    const bool all_fired = progress->wait([&] {
      return progress->fired == static_cast<std::uint64_t>(tick_keys);
    });
    BOOST_REQUIRE_MESSAGE(all_fired, "the processing-time timers never fired");
    progress->update([&] { progress->end = true; });
    return exec.wait();
  }

  /// A run to the end.
  job_result run_to_end(std::int64_t gen = 1) const {
    progress->update([&] { progress->resume = true; });
    job j{options()};
    build(j);
    auto exec = require_ok(j.start());
    return require_ok(finish(*exec, gen));
  }

  /// A run held by `hold`, cancelled there (the cancel's barrier is its checkpoint).
  job_result run_cancelled(sync_log& log) const {
    progress->update([&] { progress->resume = true; });
    job j{options()};
    build(j);
    return cancel_at_gate(j, hold, &log);
  }
};

/// What the function must emit: per key and bucket the bucket's sum, and per key one
/// processing-time row with the total and the sum of the last three values.
std::vector<fired> expected_rows() {
  std::map<std::pair<std::int64_t, std::int64_t>, std::int64_t> buckets;
  std::map<std::int64_t, std::vector<std::int64_t>> values;
  for (std::uint64_t i = 0; i < job_records; ++i) {
    const auto t = make_tick(i);
    buckets[{t.key, ms_after_base(t.ts) / 1000 * 1000}] += t.value;
    values[t.key].push_back(t.value);
  }
  std::vector<fired> out;
  for (auto& [kb, sum] : buckets)
    out.push_back({kb.first, 0, kb.second, sum, 0});
  for (auto& [key, vs] : values) {
    std::int64_t total = 0, last = 0;
    for (auto v : vs)
      total += v;
    for (std::size_t i = vs.size() >= 3 ? vs.size() - 3 : 0; i < vs.size(); ++i)
      last += vs[i];
    out.push_back({key, 1, clock_ms(job_timer_at), total, last});
  }
  return sorted(out);
}

/// The uninterrupted run, without checkpoints, once per test binary.
const std::vector<fired>& reference_rows() {
  static const std::vector<fired> rows = [] {
    temp_dir dir;
    tally_job spec{dir.path / "out"};
    spec.run_to_end();
    return sorted(read_committed<fired>(spec.out));
  }();
  return rows;
}

/// Runs the job at each parallelism in turn on one checkpoint directory, cancelling every
/// run but the last at its gate; returns the committed rows.
std::vector<fired> run_sequence(const std::vector<int>& parallelisms, std::uint64_t hold_at) {
  temp_dir dir;
  sync_log log;
  tally_job spec{dir.path / "out", dir.path / "ckpt"};
  spec.sync_point = log.callback();
  std::optional<std::int64_t> previous;
  for (std::size_t i = 0; i < parallelisms.size(); ++i) {
    BOOST_TEST_CONTEXT("run " << i + 1 << " at parallelism " << parallelisms[i]) {
      spec.parallelism = parallelisms[i];
      spec.progress = std::make_shared<run_progress>(); // the clock carries on
      const bool last = i + 1 == parallelisms.size();
      spec.hold = last ? nullptr : std::make_shared<gate>(hold_at);
      const auto r = last ? spec.run_to_end() : spec.run_cancelled(log);
      BOOST_TEST(r.cancelled == !last);
      BOOST_TEST((r.restored_from == previous), "restored from the previous run's checkpoint");
      BOOST_TEST(r.skipped_checkpoints.empty());
      const auto completed = log.ids("completed");
      BOOST_REQUIRE(!completed.empty());
      previous = completed.back();
      if (!last) {
        const auto seen = spec.progress->seen;
        BOOST_TEST(seen < job_records, "stopped midway: " << seen << " records");
      }
      BOOST_TEST(hidden_files(spec.out).empty());
    }
  }
  return sorted(read_committed<fired>(spec.out));
}

} // namespace

BOOST_AUTO_TEST_SUITE(keyed_process_checkpoint_jobs)

BOOST_AUTO_TEST_CASE(the_uninterrupted_run_emits_every_bucket_and_timer_once) {
  const auto& ref = reference_rows();
  BOOST_TEST(ref == expected_rows(), boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(a_job_cancelled_at_a_checkpoint_resumes_with_state_and_timers) {
  const auto got = run_sequence({1, 1}, 1'500);
  BOOST_TEST(got == reference_rows(), boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(rescaling_from_1_to_2_and_from_2_to_1_matches_one_uninterrupted_run) {
  BOOST_TEST_CONTEXT("1 -> 2") {
    const auto got = run_sequence({1, 2}, 1'500);
    BOOST_TEST(got == reference_rows(), boost::test_tools::per_element());
  }
  BOOST_TEST_CONTEXT("2 -> 1") {
    const auto got = run_sequence({2, 1}, 2'000);
    BOOST_TEST(got == reference_rows(), boost::test_tools::per_element());
  }
}

BOOST_AUTO_TEST_CASE(a_failure_after_a_checkpoint_restarts_from_it_with_state_and_timers) {
  // The source stops after half the records; the clock moves in 1 s steps until an epoch's
  // checkpoint completed; then the source goes on and the first record of the second half
  // throws. The restart restores state and timers from that checkpoint.
  temp_dir dir;
  sync_log log;
  tally_job spec{dir.path / "out", dir.path / "ckpt"};
  spec.sync_point = log.callback();
  spec.pause_at = job_records / 2;
  spec.fail_at = job_records / 2;
  spec.trigger = triggers::continuous(std::chrono::seconds{1});
  spec.restart = restart_strategy::fixed(3, std::chrono::milliseconds{10});
  job j{spec.options()};
  spec.build(j);
  auto exec = require_ok(j.start());
  BOOST_REQUIRE(spec.progress->wait([&] { return spec.progress->seen == job_records / 2; }));
  for (int i = 0; i < 300 && !log.wait_for("completed", 1, std::chrono::milliseconds{100}); ++i)
    spec.clock->advance(std::chrono::seconds{1}); // stays far before the timers' 10 min
  BOOST_REQUIRE_MESSAGE(log.count("completed") >= 1, "no checkpoint completed");
  spec.progress->update([&] { spec.progress->resume = true; });
  auto r = require_ok(spec.finish(*exec, 2));
  BOOST_TEST(spec.failed->load());
  BOOST_TEST(r.restarts == 1);
  BOOST_TEST(spec.progress->start > 0u, "the restart resumed from a checkpoint, not from scratch");
  const auto got = sorted(read_committed<fired>(spec.out));
  BOOST_TEST(got == reference_rows(), boost::test_tools::per_element());
  BOOST_TEST(hidden_files(spec.out).empty());
}

// The micro-batch file job of the error cases: files -> key_by -> process "tally" ->
// foreach_batch.
template <class F>
result<job_result> run_files(const fs::path& input, const fs::path& ckpt, F fn,
                             std::optional<std::int64_t> restore_from = std::nullopt) {
  job_options o;
  o.name = "files";
  o.trigger = triggers::available_now();
  o.checkpoints.dir = ckpt;
  o.checkpoints.restore_from = restore_from;
  o.checkpoints.restart = restart_strategy::none();
  job j{o};
  batch_log<fired> log;
  sources::file_options files;
  files.path = input;
  files.max_files_per_trigger = 1;
  j.from(sources::file<reading>{files})
    .name("files")
    .key_by(key_of)
    .process(std::move(fn))
    .name("tally")
    .sink_to(log.sink())
    .name("batches");
  return j.run();
}

BOOST_AUTO_TEST_CASE(a_state_whose_type_changed_since_the_checkpoint_fails_by_name) {
  using ctx_t = keyed_process_context<std::int64_t>;
  struct counts {
    state_descriptor<value_state<std::int64_t>> total{"total"};
    void on_element(const reading& r, ctx_t& ctx, collector<fired>&) {
      ctx.state(total).update(ctx.state(total).value_or(0) + r.value);
    }
  };
  struct counts_as_text {
    state_descriptor<value_state<std::string>> total{"total"};
    void on_element(const reading& r, ctx_t& ctx, collector<fired>&) {
      ctx.state(total).update(std::to_string(r.value));
    }
  };
  temp_dir dir;
  drop_file<reading>(dir.path / "in", "0.jsonl", {{1, 1, at_ms(0)}, {2, 2, at_ms(1)}});
  drop_file<reading>(dir.path / "in", "1.jsonl", {{1, 3, at_ms(2)}});
  const auto first = require_ok(run_files(dir.path / "in", dir.path / "ckpt", counts{}));
  BOOST_TEST(first.checkpoints_completed == 2);
  // From checkpoint 0 the second file runs again, with the state read as text.
  auto e = require_error(run_files(dir.path / "in", dir.path / "ckpt", counts_as_text{}, 0));
  BOOST_TEST(mentions(e.message, "operator 'tally'"), e.message);
  BOOST_TEST(mentions(e.message, "key group"), e.message);
  BOOST_TEST(mentions(e.message, "state 'total'"), e.message);
  BOOST_TEST(mentions(e.message, "checkpoint 0"), e.message);
}

BOOST_AUTO_TEST_CASE(a_state_type_without_inspect_fails_at_first_use_with_checkpoints) {
  struct opaque {
    std::int64_t n = 0;
  };
  struct keeps_opaque {
    void on_element(const reading& r, keyed_process_context<std::int64_t>& ctx, collector<fired>&) {
      ctx.value_state<opaque>("blob").update(opaque{r.value});
    }
  };
  temp_dir dir;
  drop_file<reading>(dir.path / "in", "0.jsonl", {{1, 1, at_ms(0)}});
  auto e = require_error(run_files(dir.path / "in", dir.path / "ckpt", keeps_opaque{}));
  BOOST_TEST((e.code == error_code::invalid_option));
  BOOST_TEST(mentions(e.message, "'tally'"), e.message);
  BOOST_TEST(mentions(e.message, "state 'blob'"), e.message);
  BOOST_TEST(mentions(e.message, "inspect()"), e.message);
}

BOOST_AUTO_TEST_CASE(a_keyed_co_process_has_no_keyed_state_and_runs_with_checkpoints) {
  // keyed.connect_process gives its function a keyed_context only (no state, no timers):
  // there is nothing to snapshot, so a job with checkpoints takes it.
  struct co {
    void process_element1(const reading& a, keyed_context<std::int64_t>& ctx,
                          collector<reading>& out) {
      out.collect({ctx.current_key(), a.value, a.ts});
    }
    void process_element2(const reading& b, keyed_context<std::int64_t>& ctx,
                          collector<reading>& out) {
      out.collect({ctx.current_key(), -b.value, b.ts});
    }
  };
  temp_dir dir;
  job_options o;
  o.checkpoints.dir = dir.path / "ckpt";
  job j{o};
  sinks::collect<reading> out;
  auto a = j.from(sources::collection<reading>{{{1, 1, at_ms(0)}, {2, 2, at_ms(1)}}})
             .name("a")
             .key_by(key_of);
  auto b = j.from(sources::collection<reading>{{{1, 5, at_ms(2)}}}).name("b").key_by(key_of);
  a.connect_process(b, co{}).name("both").parallelism(2).sink_to(out).name("out");
  auto r = require_ok(j.run());
  BOOST_TEST(r.checkpoints_completed >= 1);
  BOOST_TEST(out.size() == 3u);
}

BOOST_AUTO_TEST_SUITE_END()
