#pragma once
/// The records and the process function of the keyed process checkpoint tests
/// (keyed_process_*_test.cpp): ticks in, `fired` rows out, and `tally`, which keeps value,
/// list and map state and registers event- and processing-time timers. Shared because the
/// operator-level and the job-level tests run the same function.
#include "sluice/operators/keyed_process.hpp"
#include "sluice/tests/checkpoint/job_helpers.hpp"

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <ostream>

namespace sluice::test::ckpt {

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
inline std::int64_t tick_key(const tick& t) { return t.key; }
inline event_time tick_ts(const tick& t) { return t.ts; }

inline constexpr std::int64_t tick_keys = 20;

/// 10 ms of event time apart, in order (nothing is late); 20 keys.
inline tick make_tick(std::uint64_t seq, std::int64_t gen = 0) {
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
inline std::ostream& operator<<(std::ostream& os, const fired& r) {
  return os << "{key " << r.key << (r.kind == 0 ? " bucket " : " timer ") << r.at << " value "
            << r.value << " extra " << r.extra << "}";
}

inline std::int64_t ms_after_base(event_time t) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(t - at_ms(0)).count();
}
inline std::int64_t clock_ms(clock::time_point t) {
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
inline constexpr auto job_timer_at = clock::time_point{} + std::chrono::minutes{10};

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

} // namespace sluice::test::ckpt
