// Keyed state, timers, state TTL and deduplication within the watermark: operator-level
// tests through the operator harness (manual processing clock, explicit watermarks) and
// job-level tests through job.run() under random parallelism.
#define BOOST_TEST_MODULE state_test
#include <boost/test/unit_test.hpp>

#include "sluice/api/job.hpp"
#include "sluice/operators/dedup.hpp"
#include "sluice/operators/harness.hpp"
#include "sluice/operators/keyed_process.hpp"
#include "sluice/sinks/memory.hpp"
#include "sluice/sources/collection.hpp"
#include "sluice/sources/generator.hpp"
#include "sluice/sources/watermarks.hpp"
#include "sluice/tests/engine/test_helpers.hpp"

#include <algorithm>
#include <functional>
#include <map>
#include <ostream>
#include <random>
#include <set>
#include <string>
#include <vector>

using namespace sluice;
using namespace sluice::test;

namespace {

struct ev {
  int key = 0;
  std::int64_t value = 0;
  event_time ts{};
  friend bool operator==(const ev&, const ev&) = default;
};
std::ostream& operator<<(std::ostream& os, const ev& e) {
  return os << "{key " << e.key << ", value " << e.value << ", ts " << e.ts.time_since_epoch().count()
            << "us}";
}

/// What the scripted functions emit: a key, a number and a tag saying what happened.
struct out_rec {
  int key = 0;
  std::int64_t value = 0;
  std::int64_t time = 0; ///< event time (µs) or processing time (ms since the clock's start)
  char tag = ' ';
  friend auto operator<=>(const out_rec&, const out_rec&) = default;
};
std::ostream& operator<<(std::ostream& os, const out_rec& r) {
  return os << "{" << r.tag << " key " << r.key << " value " << r.value << " time " << r.time
            << "}";
}

event_time at(std::chrono::microseconds t) { return event_time{t}; }
ev make_ev(int key, std::int64_t value, std::chrono::microseconds ts = 0us) {
  return ev{key, value, at(ts)};
}
std::int64_t ms_since_start(clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
}

using ctx_t = keyed_process_context<int>;

/// A process function whose callbacks each test writes as lambdas.
struct scripted {
  std::function<void(const ev&, ctx_t&, collector<out_rec>&)> element;
  std::function<void(event_time, ctx_t&, collector<out_rec>&)> event_timer =
    [](event_time, ctx_t&, collector<out_rec>&) {};
  std::function<void(clock::time_point, ctx_t&, collector<out_rec>&)> processing_timer =
    [](clock::time_point, ctx_t&, collector<out_rec>&) {};

  void on_element(const ev& e, ctx_t& ctx, collector<out_rec>& out) { element(e, ctx, out); }
  void on_timer(event_time t, ctx_t& ctx, collector<out_rec>& out) { event_timer(t, ctx, out); }
  void on_timer(clock::time_point t, ctx_t& ctx, collector<out_rec>& out) {
    processing_timer(t, ctx, out);
  }
};

/// Only `on_element`: registering a timer is a usage error.
struct no_timers {
  void on_element(const ev&, ctx_t& ctx, collector<out_rec>&) {
    ctx.timers().register_processing_time(ctx.processing_time() + 1ms);
  }
};

auto key_of = [](const ev& e) { return e.key; };
using key_fn_t = decltype(key_of);
std::function<event_time(const ev&)> ts_of = [](const ev& e) { return e.ts; };

template <class F>
using op_t = keyed_process_function_operator<int, ev, out_rec, key_fn_t, F>;

/// A harness around a keyed process operator; `op` points at the operator it owns.
template <class F>
struct rig {
  op_t<F>* op;
  operator_harness h;
  explicit rig(F fn, bool with_event_time = true)
    : rig(std::make_unique<op_t<F>>(key_of, std::move(fn),
                                    with_event_time ? ts_of : std::function<event_time(const ev&)>{})) {}

private:
  explicit rig(std::unique_ptr<op_t<F>> o) : op(o.get()), h(std::move(o)) {
    require_ok(h.open());
  }
};

} // namespace

// ---------------------------------------------------------------------------------------------

BOOST_AUTO_TEST_SUITE(state_handles)

BOOST_AUTO_TEST_CASE(value_state_is_scoped_to_the_current_key) {
  struct counter {
    state_descriptor<value_state<std::int64_t>> count{"count"};
    void on_element(const ev& e, ctx_t& ctx, collector<out_rec>& out) {
      auto n = ctx.state(count);
      if (e.value < 0) {
        n.clear();
        return;
      }
      n.update(n.value_or(0) + 1);
      out.collect({ctx.current_key(), *n.value(), 0, 'c'});
    }
  };
  rig r{counter{}};
  require_ok(r.h.push(std::vector<ev>{make_ev(1, 0), make_ev(2, 0), make_ev(1, 0), make_ev(1, 0),
                                      make_ev(2, 0), make_ev(3, 0)}));
  std::vector<out_rec> expected{{1, 1, 0, 'c'}, {2, 1, 0, 'c'}, {1, 2, 0, 'c'},
                                {1, 3, 0, 'c'}, {2, 2, 0, 'c'}, {3, 1, 0, 'c'}};
  BOOST_TEST(r.h.take<out_rec>() == expected, boost::test_tools::per_element());
  BOOST_TEST(r.op->state_size("count") == 3u);

  // Clearing frees the key; counting starts over.
  require_ok(r.h.push(std::vector<ev>{make_ev(1, -1), make_ev(1, 0), make_ev(2, 0)}));
  BOOST_TEST(r.op->state_size("count") == 3u);
  expected = {{1, 1, 0, 'c'}, {2, 3, 0, 'c'}};
  BOOST_TEST(r.h.take<out_rec>() == expected, boost::test_tools::per_element());
  require_ok(r.h.push(std::vector<ev>{make_ev(3, -1)}));
  BOOST_TEST(r.op->state_size("count") == 2u);
}

BOOST_AUTO_TEST_CASE(value_state_get_points_at_the_stored_value_without_a_copy) {
  // get() is the stored object itself: the same address on every read of a key, null for a
  // key without a value, and the value an update wrote. Another state may be written while
  // the pointer is held.
  struct longest {
    state_descriptor<value_state<std::string>> text{"text"};
    state_descriptor<value_state<std::int64_t>> writes{"writes"};
    std::map<int, const std::string*>* seen;
    void on_element(const ev& e, ctx_t& ctx, collector<out_rec>& out) {
      auto t = ctx.state(text);
      const std::string* before = t.get();
      if (!before)
        t.update(std::string(static_cast<std::size_t>(e.value), 'x'));
      const std::string* now = t.get();
      BOOST_REQUIRE(now != nullptr);
      auto w = ctx.state(writes);
      w.update(w.value_or(0) + 1); // another state: `now` stays valid
      if (before)
        BOOST_TEST(before == now);
      if (auto [it, fresh] = seen->try_emplace(ctx.current_key(), now); !fresh)
        BOOST_TEST(it->second == now, "key " << ctx.current_key() << " moved without a write");
      out.collect({ctx.current_key(), static_cast<std::int64_t>(now->size()), 0, 'g'});
    }
  };
  std::map<int, const std::string*> seen;
  rig r{longest{{"text"}, {"writes"}, &seen}};
  require_ok(r.h.push(std::vector<ev>{make_ev(1, 40), make_ev(1, 7), make_ev(2, 30)}));
  const std::vector<out_rec> expected{{1, 40, 0, 'g'}, {1, 40, 0, 'g'}, {2, 30, 0, 'g'}};
  BOOST_TEST(r.h.take<out_rec>() == expected, boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(list_state_appends_reads_and_clears) {
  rig r{scripted{[](const ev& e, ctx_t& ctx, collector<out_rec>& out) {
    auto l = ctx.list_state<std::int64_t>("seen");
    if (e.value == 0) {
      l.clear();
      return;
    }
    l.add(e.value);
    std::int64_t sum = 0;
    for (auto v : l.get())
      sum += v;
    out.collect({ctx.current_key(), sum, static_cast<std::int64_t>(l.get().size()), 'l'});
  }}};
  require_ok(r.h.push(std::vector<ev>{make_ev(7, 5), make_ev(8, 1), make_ev(7, 6), make_ev(7, 0),
                                      make_ev(7, 2), make_ev(8, 10)}));
  std::vector<out_rec> expected{{7, 5, 1, 'l'}, {8, 1, 1, 'l'}, {7, 11, 2, 'l'},
                                {7, 2, 1, 'l'}, {8, 11, 2, 'l'}};
  BOOST_TEST(r.h.take<out_rec>() == expected, boost::test_tools::per_element());
  BOOST_TEST(r.op->state_size("seen") == 2u);
}

BOOST_AUTO_TEST_CASE(map_state_put_get_contains_remove_entries) {
  // value > 0: put(value % 10 -> value); value < 0: remove(-value); then report the map.
  rig r{scripted{[](const ev& e, ctx_t& ctx, collector<out_rec>& out) {
    auto m = ctx.map_state<int, std::int64_t>("m");
    if (e.value > 0) {
      m.put(static_cast<int>(e.value % 10), e.value);
      out.collect({ctx.current_key(), *m.get(static_cast<int>(e.value % 10)), 0, 'g'});
    } else {
      const bool removed = m.remove(static_cast<int>(-e.value));
      out.collect({ctx.current_key(), -e.value, removed ? 1 : 0, 'r'});
    }
    auto entries = m.entries();
    std::sort(entries.begin(), entries.end());
    for (auto& [k, v] : entries)
      out.collect({ctx.current_key(), v, k, 'e'});
    out.collect({ctx.current_key(), m.contains(3) ? 1 : 0, m.is_empty() ? 1 : 0, 'k'});
  }}};
  require_ok(r.h.push(std::vector<ev>{make_ev(1, 13), make_ev(1, 21), make_ev(1, 23)}));
  std::vector<out_rec> expected{
    {1, 13, 0, 'g'}, {1, 13, 3, 'e'}, {1, 1, 0, 'k'},                 // {3: 13}
    {1, 21, 0, 'g'}, {1, 21, 1, 'e'}, {1, 13, 3, 'e'}, {1, 1, 0, 'k'}, // {1: 21, 3: 13}
    {1, 23, 0, 'g'}, {1, 21, 1, 'e'}, {1, 23, 3, 'e'}, {1, 1, 0, 'k'}, // 3 overwritten
  };
  BOOST_TEST(r.h.take<out_rec>() == expected, boost::test_tools::per_element());

  require_ok(r.h.push(std::vector<ev>{make_ev(1, -3), make_ev(1, -3), make_ev(1, -1)}));
  expected = {
    {1, 3, 1, 'r'}, {1, 21, 1, 'e'}, {1, 0, 0, 'k'}, // removed 3
    {1, 3, 0, 'r'}, {1, 21, 1, 'e'}, {1, 0, 0, 'k'}, // nothing to remove
    {1, 1, 1, 'r'}, {1, 0, 1, 'k'},                  // the last entry: the map is empty
  };
  BOOST_TEST(r.h.take<out_rec>() == expected, boost::test_tools::per_element());
  BOOST_TEST(r.op->state_size("m") == 0u, "removing the last entry frees the key");
}

BOOST_AUTO_TEST_CASE(a_name_registered_with_two_types_is_an_error) {
  rig r{scripted{[](const ev& e, ctx_t& ctx, collector<out_rec>&) {
    if (e.value == 0)
      ctx.value_state<std::int64_t>("x").update(1);
    else
      ctx.list_state<std::int64_t>("x").add(1);
  }}};
  require_ok(r.h.push(std::vector<ev>{make_ev(1, 0)}));
  auto err = require_error(r.h.push(std::vector<ev>{make_ev(1, 1)}));
  BOOST_TEST(err.code == error_code::invalid_option);
  BOOST_TEST(err.message.find("operator-under-test") != std::string::npos, err.message);
  BOOST_TEST(err.message.find("'x'") != std::string::npos, err.message);
}

BOOST_AUTO_TEST_SUITE_END()

// ---------------------------------------------------------------------------------------------

BOOST_AUTO_TEST_SUITE(event_timers)

BOOST_AUTO_TEST_CASE(fire_in_time_order_once_per_key_and_time_and_not_after_delete) {
  // value > 0 registers a timer at `value` µs, value < 0 deletes the one at `-value`.
  rig r{scripted{
    [](const ev& e, ctx_t& ctx, collector<out_rec>&) {
      auto n = ctx.value_state<std::int64_t>("n");
      n.update(n.value_or(0) + 1);
      if (e.value > 0)
        ctx.timers().register_event_time(at(std::chrono::microseconds{e.value}));
      else
        ctx.timers().delete_event_time(at(std::chrono::microseconds{-e.value}));
    },
    [](event_time t, ctx_t& ctx, collector<out_rec>& out) {
      BOOST_TEST((ctx.timer_domain() == time_domain::event_time));
      BOOST_TEST((ctx.timestamp() == t));
      out.collect({ctx.current_key(), ctx.value_state<std::int64_t>("n").value_or(-1),
                   t.time_since_epoch().count(), 't'});
    }}};
  require_ok(r.h.push(std::vector<ev>{make_ev(1, 30), make_ev(1, 10), make_ev(1, 10), make_ev(2, 20),
                                      make_ev(2, 10), make_ev(3, 40), make_ev(3, -40)}));
  BOOST_TEST(r.op->timer_count(time_domain::event_time) == 4u, "(1,10) is registered once");

  require_ok(r.h.watermark(at(9us)));
  BOOST_TEST(r.h.take<out_rec>().empty());

  require_ok(r.h.watermark(at(15us)));
  auto fired = r.h.take<out_rec>();
  // Same time: ordered by key group, then key.
  auto kg = [](int k) { return key_group_of(key_hash<int>{}(k), default_max_key_groups); };
  std::vector<out_rec> expected{{1, 3, 10, 't'}, {2, 2, 10, 't'}};
  if (kg(2) < kg(1))
    std::swap(expected[0], expected[1]);
  BOOST_TEST(fired == expected, boost::test_tools::per_element());
  BOOST_TEST(r.op->timer_count(time_domain::event_time) == 2u);

  require_ok(r.h.watermark(at(100us)));
  expected = {{2, 2, 20, 't'}, {1, 3, 30, 't'}};
  BOOST_TEST(r.h.take<out_rec>() == expected, boost::test_tools::per_element());
  BOOST_TEST(r.op->timer_count(time_domain::event_time) == 0u, "key 3's timer was deleted");
  require_ok(r.h.end_input());
  BOOST_TEST(r.h.take<out_rec>().empty());
}

BOOST_AUTO_TEST_CASE(a_due_time_fires_at_the_next_watermark_and_end_of_input_fires_the_rest) {
  rig r{scripted{
    [](const ev& e, ctx_t& ctx, collector<out_rec>&) {
      ctx.timers().register_event_time(at(std::chrono::microseconds{e.value}));
    },
    [](event_time t, ctx_t& ctx, collector<out_rec>& out) {
      out.collect({ctx.current_key(), 0, t.time_since_epoch().count(), 't'});
      // A chain of timers: each registers one that is already due.
      if (t < at(60us))
        ctx.timers().register_event_time(t + 1us);
    }}};
  require_ok(r.h.watermark(at(50us)));
  require_ok(r.h.push(std::vector<ev>{make_ev(1, 20), make_ev(2, 1000)}));
  BOOST_TEST(r.h.take<out_rec>().empty(), "registered in the past: waits for the next watermark");
  require_ok(r.h.watermark(at(51us)));
  std::vector<out_rec> expected{{1, 0, 20, 't'}};
  BOOST_TEST(r.h.take<out_rec>() == expected, boost::test_tools::per_element());
  require_ok(r.h.watermark(at(52us)));
  expected = {{1, 0, 21, 't'}};
  BOOST_TEST(r.h.take<out_rec>() == expected, boost::test_tools::per_element());
  require_ok(r.h.end_input());
  expected = {{1, 0, 22, 't'}, {2, 0, 1000, 't'}};
  BOOST_TEST(r.h.take<out_rec>() == expected, boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(state_written_in_on_timer_belongs_to_the_timer_key) {
  rig r{scripted{
    [](const ev& e, ctx_t& ctx, collector<out_rec>&) {
      ctx.value_state<std::int64_t>("sum").update(ctx.value_state<std::int64_t>("sum").value_or(0) +
                                                  e.value);
      ctx.timers().register_event_time(at(100us));
    },
    [](event_time, ctx_t& ctx, collector<out_rec>& out) {
      auto s = ctx.value_state<std::int64_t>("sum");
      out.collect({ctx.current_key(), s.value_or(-1), 0, 's'});
      s.clear();
    }}};
  require_ok(r.h.push(std::vector<ev>{make_ev(5, 1), make_ev(6, 10), make_ev(5, 2)}));
  require_ok(r.h.watermark(at(100us)));
  auto got = r.h.take<out_rec>();
  std::sort(got.begin(), got.end());
  std::vector<out_rec> expected{{5, 3, 0, 's'}, {6, 10, 0, 's'}};
  BOOST_TEST(got == expected, boost::test_tools::per_element());
  BOOST_TEST(r.op->state_size("sum") == 0u);
}

BOOST_AUTO_TEST_SUITE_END()

// ---------------------------------------------------------------------------------------------

BOOST_AUTO_TEST_SUITE(processing_timers)

BOOST_AUTO_TEST_CASE(fire_when_the_clock_reaches_them_through_requested_wakeups) {
  // value > 0 registers now + value ms; value < 0 deletes now + (-value) ms.
  rig r{scripted{
    [](const ev& e, ctx_t& ctx, collector<out_rec>&) {
      const auto now = ctx.processing_time();
      if (e.value > 0)
        ctx.timers().register_processing_time(now + std::chrono::milliseconds{e.value});
      else
        ctx.timers().delete_processing_time(now + std::chrono::milliseconds{-e.value});
    },
    {},
    [](clock::time_point t, ctx_t& ctx, collector<out_rec>& out) {
      BOOST_TEST((ctx.timer_domain() == time_domain::processing_time));
      BOOST_TEST(!ctx.timestamp().has_value());
      out.collect({ctx.current_key(), ms_since_start(ctx.timers().current_processing_time()),
                   ms_since_start(t), 'p'});
    }}};
  const auto start = r.h.processing_time();
  require_ok(r.h.push(std::vector<ev>{make_ev(1, 10), make_ev(2, 5), make_ev(2, 5), make_ev(3, 7)}));
  BOOST_TEST(r.op->timer_count(time_domain::processing_time) == 3u);
  BOOST_TEST((r.h.requested_wakeup() == start + 5ms));

  require_ok(r.h.advance_processing_time(4ms));
  BOOST_TEST(r.h.take<out_rec>().empty());
  require_ok(r.h.advance_processing_time(2ms)); // at 6ms
  std::vector<out_rec> expected{{2, 6, 5, 'p'}};
  BOOST_TEST(r.h.take<out_rec>() == expected, boost::test_tools::per_element());
  BOOST_TEST((r.h.requested_wakeup() == start + 7ms), "the next timer is asked for");

  // At 6ms, key 3 deletes its timer (6 + 1 = 7ms).
  require_ok(r.h.push(std::vector<ev>{make_ev(3, -1)}));
  require_ok(r.h.advance_processing_time(1ms)); // 7ms: the wake-up finds nothing due
  BOOST_TEST(r.h.take<out_rec>().empty());
  BOOST_TEST((r.h.requested_wakeup() == start + 10ms));
  require_ok(r.h.advance_processing_time(20ms));
  expected = {{1, 27, 10, 'p'}};
  BOOST_TEST(r.h.take<out_rec>() == expected, boost::test_tools::per_element());
  BOOST_TEST(!r.h.requested_wakeup().has_value());
  BOOST_TEST(r.op->timer_count(time_domain::processing_time) == 0u);
}

BOOST_AUTO_TEST_CASE(a_timer_without_a_matching_on_timer_is_an_error) {
  operator_harness h{std::make_unique<op_t<no_timers>>(key_of, no_timers{}, ts_of)};
  require_ok(h.open());
  auto err = require_error(h.push(std::vector<ev>{make_ev(1, 0)}));
  BOOST_TEST(err.code == error_code::invalid_option);
  BOOST_TEST(err.message.find("on_timer") != std::string::npos, err.message);
}

BOOST_AUTO_TEST_SUITE_END()

// ---------------------------------------------------------------------------------------------

BOOST_AUTO_TEST_SUITE(ttl)

/// value > 0 writes it, value == 0 reads (emits 'v' with the value or -1).
scripted ttl_script(state_ttl ttl) {
  return scripted{[ttl](const ev& e, ctx_t& ctx, collector<out_rec>& out) {
    auto s = ctx.value_state<std::int64_t>("v", ttl);
    if (e.value > 0)
      s.update(e.value);
    else
      out.collect({ctx.current_key(), s.value_or(-1), 0, 'v'});
  }};
}

BOOST_AUTO_TEST_CASE(processing_time_ttl_hides_and_frees_expired_entries) {
  rig r{ttl_script(state_ttl::processing(10ms))};
  const auto start = r.h.processing_time();
  require_ok(r.h.push(std::vector<ev>{make_ev(1, 11), make_ev(2, 22), make_ev(3, 33)}));
  BOOST_TEST((r.h.requested_wakeup() == start + 10ms), "cleanup is scheduled at the expiry");
  require_ok(r.h.advance_processing_time(5ms));
  require_ok(r.h.push(std::vector<ev>{make_ev(2, 23)})); // a write restarts key 2's TTL
  require_ok(r.h.advance_processing_time(4ms));          // 9ms
  require_ok(r.h.push(std::vector<ev>{make_ev(1, 0), make_ev(2, 0)}));
  std::vector<out_rec> expected{{1, 11, 0, 'v'}, {2, 23, 0, 'v'}};
  BOOST_TEST(r.h.take<out_rec>() == expected, boost::test_tools::per_element());

  require_ok(r.h.advance_processing_time(1ms)); // 10ms: keys 1 and 3 expire and are freed
  BOOST_TEST(r.op->state_size("v") == 1u);
  BOOST_TEST((r.h.requested_wakeup() == start + 15ms), "key 2 is re-queued at its expiry");
  require_ok(r.h.push(std::vector<ev>{make_ev(1, 0), make_ev(2, 0), make_ev(3, 0)}));
  expected = {{1, -1, 0, 'v'}, {2, 23, 0, 'v'}, {3, -1, 0, 'v'}};
  BOOST_TEST(r.h.take<out_rec>() == expected, boost::test_tools::per_element());

  require_ok(r.h.advance_processing_time(5ms)); // 15ms
  BOOST_TEST(r.op->state_size("v") == 0u);
  BOOST_TEST(!r.h.requested_wakeup().has_value());
}

BOOST_AUTO_TEST_CASE(processing_time_ttl_updated_on_read) {
  rig r{ttl_script(state_ttl::processing(10ms, ttl_update::on_read_and_write))};
  require_ok(r.h.push(std::vector<ev>{make_ev(1, 5)}));
  require_ok(r.h.advance_processing_time(8ms));
  require_ok(r.h.push(std::vector<ev>{make_ev(1, 0)})); // read at 8ms: lives until 18ms
  require_ok(r.h.advance_processing_time(4ms));         // 12ms
  BOOST_TEST(r.op->state_size("v") == 1u, "the 10ms cleanup pass re-queued the entry");
  require_ok(r.h.push(std::vector<ev>{make_ev(1, 0)})); // read at 12ms: lives until 22ms
  require_ok(r.h.advance_processing_time(9ms));         // 21ms
  require_ok(r.h.push(std::vector<ev>{make_ev(1, 0)})); // until 31ms
  require_ok(r.h.advance_processing_time(10ms));        // 31ms
  require_ok(r.h.push(std::vector<ev>{make_ev(1, 0)}));
  std::vector<out_rec> expected{{1, 5, 0, 'v'}, {1, 5, 0, 'v'}, {1, 5, 0, 'v'}, {1, -1, 0, 'v'}};
  BOOST_TEST(r.h.take<out_rec>() == expected, boost::test_tools::per_element());
  BOOST_TEST(r.op->state_size("v") == 0u);
}

BOOST_AUTO_TEST_CASE(event_time_ttl_follows_the_watermark_and_record_time) {
  rig r{ttl_script(state_ttl::event(10s))};
  require_ok(r.h.push(std::vector<ev>{make_ev(1, 1, 100s), make_ev(2, 2, 105s), make_ev(3, 3, 200s),
                                      make_ev(3, 4, 150s)})); // an older write keeps key 3's 210s
  require_ok(r.h.watermark(at(109s)));
  BOOST_TEST(r.op->state_size("v") == 3u);
  require_ok(r.h.push(std::vector<ev>{make_ev(1, 0, 109s)}));
  require_ok(r.h.watermark(at(110s))); // key 1: 100s + 10s reached
  BOOST_TEST(r.op->state_size("v") == 2u);
  require_ok(r.h.push(std::vector<ev>{make_ev(1, 0, 111s), make_ev(2, 0, 111s)}));
  require_ok(r.h.watermark(at(170s)));
  BOOST_TEST(r.op->state_size("v") == 1u, "key 3 expires at 210s, not 160s");
  require_ok(r.h.push(std::vector<ev>{make_ev(2, 0, 171s), make_ev(3, 0, 171s)}));
  require_ok(r.h.watermark(at(210s)));
  BOOST_TEST(r.op->state_size("v") == 0u);
  require_ok(r.h.push(std::vector<ev>{make_ev(3, 0, 211s)}));
  std::vector<out_rec> expected{{1, 1, 0, 'v'}, {1, -1, 0, 'v'}, {2, 2, 0, 'v'},
                                {2, -1, 0, 'v'}, {3, 4, 0, 'v'}, {3, -1, 0, 'v'}};
  BOOST_TEST(r.h.take<out_rec>() == expected, boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(a_list_with_ttl_starts_over_after_expiry) {
  rig r{scripted{[](const ev& e, ctx_t& ctx, collector<out_rec>& out) {
    auto l = ctx.list_state<std::int64_t>("l", state_ttl::event(10s));
    l.add(e.value);
    out.collect({ctx.current_key(), static_cast<std::int64_t>(l.get().size()), 0, 'n'});
  }}};
  require_ok(r.h.push(std::vector<ev>{make_ev(1, 1, 1s), make_ev(1, 2, 2s)}));
  require_ok(r.h.watermark(at(11s))); // expires at 2s + 10s = 12s: still there
  require_ok(r.h.push(std::vector<ev>{make_ev(1, 3, 12s)}));
  require_ok(r.h.watermark(at(30s)));
  BOOST_TEST(r.op->state_size("l") == 0u);
  require_ok(r.h.push(std::vector<ev>{make_ev(1, 4, 31s)}));
  std::vector<out_rec> expected{{1, 1, 0, 'n'}, {1, 2, 0, 'n'}, {1, 3, 0, 'n'}, {1, 1, 0, 'n'}};
  BOOST_TEST(r.h.take<out_rec>() == expected, boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(event_time_ttl_needs_event_time) {
  rig r{ttl_script(state_ttl::event(10s)), /*with_event_time=*/false};
  auto err = require_error(r.h.push(std::vector<ev>{make_ev(1, 1)}));
  BOOST_TEST(err.code == error_code::invalid_option);
  BOOST_TEST(err.message.find("no event time") != std::string::npos, err.message);
}

BOOST_AUTO_TEST_CASE(a_ttl_must_be_positive) {
  rig r{ttl_script(state_ttl::processing(0ms))};
  auto err = require_error(r.h.push(std::vector<ev>{make_ev(1, 1)}));
  BOOST_TEST(err.message.find("positive") != std::string::npos, err.message);
}

BOOST_AUTO_TEST_SUITE_END()

// ---------------------------------------------------------------------------------------------

BOOST_AUTO_TEST_SUITE(dedup)

BOOST_AUTO_TEST_CASE(drops_duplicates_and_frees_state_once_the_watermark_passes) {
  using op = dedup_within_watermark_operator<int, ev, key_fn_t>;
  auto owned = std::make_unique<op>(key_of, ts_of, 5s);
  auto* d = owned.get();
  operator_harness h{std::move(owned)};
  require_ok(h.open());
  require_ok(h.push(std::vector<ev>{make_ev(1, 1, 10s), make_ev(1, 2, 12s), make_ev(2, 3, 11s),
                                    make_ev(1, 4, 9s)}));
  std::vector<ev> expected{make_ev(1, 1, 10s), make_ev(2, 3, 11s)};
  BOOST_TEST(h.take<ev>() == expected, boost::test_tools::per_element());
  BOOST_TEST(d->state_size() == 2u);
  BOOST_TEST(d->dropped_duplicates() == 2u);
  BOOST_TEST(h.metrics().duplicates_dropped.load() == 2u);

  require_ok(h.watermark(at(15s))); // kept while watermark <= 10s + 5s
  BOOST_TEST(d->state_size() == 2u);
  require_ok(h.watermark(at(15s + 1us)));
  BOOST_TEST(d->state_size() == 1u, "key 1 is freed once the watermark passes 15s");

  // Key 1 is new again; key 2 still a duplicate; a record behind the watermark is late.
  require_ok(h.push(std::vector<ev>{make_ev(1, 5, 20s), make_ev(2, 6, 17s), make_ev(3, 7, 15s)}));
  expected = {make_ev(1, 5, 20s)};
  BOOST_TEST(h.take<ev>() == expected, boost::test_tools::per_element());
  BOOST_TEST(h.metrics().late_records.load() == 1u);
  require_ok(h.end_input());
  BOOST_TEST(d->state_size() == 0u);
}

BOOST_AUTO_TEST_CASE(needs_the_streams_event_time) {
  job j;
  auto out = sinks::collect<ev>{};
  j.from(sources::collection<ev>{{make_ev(1, 1)}})
    .drop_duplicates_within_watermark([](const ev& e) { return e.key; })
    .sink_to(out);
  auto err = require_error(j.run());
  BOOST_TEST(err.code == error_code::invalid_graph);
  BOOST_TEST(err.message.find("no event time") != std::string::npos, err.message);
}

BOOST_AUTO_TEST_SUITE_END()

// ---------------------------------------------------------------------------------------------

BOOST_AUTO_TEST_SUITE(state_jobs)

namespace {

/// Counts records per key and 10s event-time window; an event-time timer at the window's
/// end emits the count and clears the state.
struct window_counter {
  state_descriptor<value_state<std::int64_t>> count{"count"};
  state_descriptor<map_state<std::int64_t, std::int64_t>> per_window{"per_window"};

  static std::int64_t window_end(event_time t) {
    return (t.time_since_epoch() / 10s + 1) * 10'000'000 - 1;
  }
  void on_element(const ev& e, ctx_t& ctx, collector<out_rec>&) {
    const auto end = window_end(e.ts);
    auto m = ctx.state(per_window);
    m.put(end, m.get(end).value_or(0) + 1);
    auto c = ctx.state(count);
    c.update(c.value_or(0) + 1);
    ctx.timers().register_event_time(event_time{std::chrono::microseconds{end}});
  }
  void on_timer(event_time t, ctx_t& ctx, collector<out_rec>& out) {
    auto m = ctx.state(per_window);
    const auto end = t.time_since_epoch().count();
    out.collect({ctx.current_key(), m.get(end).value_or(-1), end, 'w'});
    m.remove(end);
    if (m.is_empty())
      ctx.state(count).clear();
  }
};

std::vector<ev> timeline() {
  // Sorted by event time, so every source instance reads in event-time order and no
  // record is ever behind the watermark, whatever the parallelism.
  std::vector<ev> v;
  for (int i = 0; i < 3000; ++i) {
    const auto ts = std::chrono::microseconds{std::int64_t{i} * 20'000}; // 20ms apart: 60s
    const int key = static_cast<int>(splitmix64(static_cast<std::uint64_t>(i)) % 37);
    for (int copy = 0; copy <= i % 3; ++copy) // ids appear 1-3 times, identical records
      v.push_back(ev{key, i, event_time{ts}});
  }
  return v;
}

} // namespace

BOOST_AUTO_TEST_CASE(keyed_timers_and_dedup_give_the_reference_result_under_random_parallelism) {
  const auto items = timeline();
  // The reference: distinct records by id (value), and per (key, window) counts of them.
  std::map<std::int64_t, ev> distinct;
  for (auto& e : items)
    distinct.emplace(e.value, e);
  std::vector<ev> ref_dedup;
  std::map<std::pair<int, std::int64_t>, std::int64_t> counts;
  for (auto& [id, e] : distinct) {
    ref_dedup.push_back(e);
    ++counts[{e.key, window_counter::window_end(e.ts)}];
  }
  std::vector<out_rec> ref_windows;
  for (auto& [kw, n] : counts)
    ref_windows.push_back({kw.first, n, kw.second, 'w'});
  std::sort(ref_windows.begin(), ref_windows.end());
  auto by_value = [](const ev& a, const ev& b) { return a.value < b.value; };
  BOOST_REQUIRE(ref_dedup.size() == 3000u);
  BOOST_REQUIRE(items.size() == 6000u);

  std::mt19937 rng{20240612u};
  auto pick = [&](int lo, int hi) { return std::uniform_int_distribution<int>{lo, hi}(rng); };
  for (int iteration = 0; iteration < 6; ++iteration) {
    const int source_p = pick(1, 3), dedup_p = pick(1, 4), process_p = pick(1, 4);
    const auto batch = static_cast<std::size_t>(pick(1, 300));
    BOOST_TEST_CONTEXT("iteration " << iteration << ": source " << source_p << ", dedup "
                                    << dedup_p << ", process " << process_p << ", batch "
                                    << batch) {
      job j{{.name = "state-job", .runtime = {.batch_size = batch}}};
      auto deduped_out = sinks::collect<ev>{};
      auto windows_out = sinks::collect<out_rec>{};
      auto deduped =
        j.from(sources::collection<ev>{items},
               watermarks::bounded_out_of_orderness<ev>(1s, [](const ev& e) { return e.ts; }))
          .parallelism(source_p)
          .drop_duplicates_within_watermark([](const ev& e) { return e.value; }, 2s)
          .parallelism(dedup_p);
      deduped.sink_to(deduped_out);
      deduped.key_by([](const ev& e) { return e.key; })
        .process(window_counter{})
        .parallelism(process_p)
        .sink_to(windows_out);
      require_ok(j.run());

      auto got = deduped_out.records();
      std::sort(got.begin(), got.end(), by_value);
      BOOST_TEST(got.size() == ref_dedup.size());
      BOOST_TEST((got == ref_dedup), "each id exactly once");
      auto windows = windows_out.records();
      std::sort(windows.begin(), windows.end());
      BOOST_TEST(windows.size() == ref_windows.size());
      BOOST_TEST((windows == ref_windows), "one count per key and window");
    }
  }
}

BOOST_AUTO_TEST_CASE(plain_lambdas_still_work_as_keyed_process_functions) {
  job j{{.parallelism = 2}};
  auto out = sinks::collect<out_rec>{};
  j.from(sources::collection<ev>{{make_ev(1, 1), make_ev(2, 2), make_ev(1, 3)}})
    .key_by([](const ev& e) { return e.key; })
    .process([](const ev& e, keyed_context<int>& ctx, collector<out_rec>& c) {
      c.collect({ctx.current_key(), e.value, 0, 'p'});
    })
    .sink_to(out);
  require_ok(j.run());
  auto got = out.records();
  std::sort(got.begin(), got.end());
  std::vector<out_rec> expected{{1, 1, 0, 'p'}, {1, 3, 0, 'p'}, {2, 2, 0, 'p'}};
  BOOST_TEST(got == expected, boost::test_tools::per_element());
}

BOOST_AUTO_TEST_SUITE_END()
