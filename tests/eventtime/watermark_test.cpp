// Watermarks: strategies, per-split tracking, idleness, and how they travel between tasks.
#define BOOST_TEST_MODULE watermark_test
#include <boost/test/unit_test.hpp>

#include "../engine/test_helpers.hpp"
#include "sluice/api/job.hpp"
#include "sluice/operators/harness.hpp"
#include "sluice/sinks/memory.hpp"
#include "sluice/sources/collection.hpp"
#include "sluice/sources/generator.hpp"
#include "sluice/sources/watermarks.hpp"

#include <atomic>
#include <mutex>
#include <random>

using namespace sluice;
using namespace sluice::test;

namespace {

event_time at(duration d) { return event_time{d}; }

struct ev {
  int key = 0;
  event_time ts{};
  friend bool operator==(const ev&, const ev&) = default;
};

auto ts_of = [](const ev& e) { return e.ts; };

/// Seen by a recording operator, read by the test thread after or during the run.
struct recording {
  mutable std::mutex m;
  std::vector<event_time> watermarks;
  std::uint64_t records = 0;
  std::uint64_t records_at_or_below_watermark = 0;

  event_time last() const {
    std::lock_guard lk{m};
    return watermarks.empty() ? min_watermark : watermarks.back();
  }
  std::uint64_t count() const {
    std::lock_guard lk{m};
    return records;
  }
};

/// Forwards records unchanged and records every watermark it sees, and the records that
/// arrive at or below the watermark (there must be none when sources are in order).
template <class T, class TsFn>
class watermark_recorder final : public operator_base {
public:
  watermark_recorder(std::shared_ptr<recording> rec, TsFn ts) : rec_(std::move(rec)), ts_(ts) {}
  result<void> process(int, batch_ptr in, output& out) override {
    {
      std::lock_guard lk{rec_->m};
      for (auto& r : records_of<T>(*in)) {
        ++rec_->records;
        if (ts_(r) <= current_watermark())
          ++rec_->records_at_or_below_watermark;
      }
    }
    return out.emit(0, std::move(in));
  }
  result<void> on_watermark(event_time wm, output&) override {
    std::lock_guard lk{rec_->m};
    rec_->watermarks.push_back(wm);
    return {};
  }

private:
  std::shared_ptr<recording> rec_;
  TsFn ts_;
};

template <class T, class TsFn>
stream<T> record_watermarks(stream<T> s, std::shared_ptr<recording> rec, TsFn ts) {
  return s.template attach<T>("recorder", [rec, ts] {
    return std::make_unique<watermark_recorder<T, TsFn>>(rec, ts);
  });
}

/// A source driven by the test thread: each step is released by `release(n)`; once the
/// released steps are emitted it idles until cancelled.
class scripted_source final : public source<ev> {
public:
  struct script {
    std::vector<std::vector<ev>> steps;
    std::atomic<std::size_t> released{0};
  };
  explicit scripted_source(std::shared_ptr<script> s) : s_(std::move(s)) {}
  result<void> open(const source_context&) override { return {}; }
  result<poll_result> poll(source_output<ev>& out, std::size_t) override {
    if (next_ < s_->released.load() && next_ < s_->steps.size()) {
      for (auto& e : s_->steps[next_])
        out.records.push_back(e);
      ++next_;
      return poll_result::more();
    }
    return poll_result::idle(std::chrono::milliseconds{1});
  }

private:
  std::shared_ptr<script> s_;
  std::size_t next_ = 0;
};

struct scripted {
  using record_type = ev;
  std::shared_ptr<scripted_source::script> s;
  std::unique_ptr<source<ev>> create(const source_context&) const {
    return std::make_unique<scripted_source>(s);
  }
  std::string describe() const { return "scripted"; }
  int max_parallelism() const { return 1; }
};

/// Splits given by the test: each poll emits the next (split, records) step.
class split_source final : public source<ev> {
public:
  struct step {
    int split;
    std::vector<ev> records;
    bool end_split = false;
  };
  explicit split_source(std::vector<step> steps) : steps_(std::move(steps)) {}
  result<void> open(const source_context&) override { return {}; }
  result<poll_result> poll(source_output<ev>& out, std::size_t) override {
    auto& s = steps_[next_++];
    if (s.split >= 0) // -1: keep reading the split marked last, without marking it again
      out.begin_split(s.split);
    for (auto& e : s.records)
      out.records.push_back(e);
    if (s.end_split)
      out.end_split(s.split);
    return next_ == steps_.size() ? poll_result::end() : poll_result::more();
  }

private:
  std::vector<step> steps_;
  std::size_t next_ = 0;
};

/// Polls `src` once and returns the watermark update.
watermark_update poll_once(source<ev>& src, clock::time_point now = {}) {
  batch_ptr records, dead;
  BOOST_REQUIRE(src.poll_batches(64, records, dead).has_value());
  return src.watermarks(now);
}

} // namespace

BOOST_AUTO_TEST_SUITE(strategies)

BOOST_AUTO_TEST_CASE(bounded_out_of_orderness_trails_the_max_by_the_delay_and_one_microsecond) {
  split_source src{{{0, {{1, at(10s)}, {1, at(4s)}}}, {0, {{1, at(7s)}}}, {0, {{1, at(12s)}}}}};
  src.set_watermark_strategy(watermarks::bounded_out_of_orderness<ev>(3s, ts_of));
  auto u = poll_once(src);
  BOOST_REQUIRE(u.advanced.has_value());
  BOOST_TEST((*u.advanced == at(7s - 1us)));
  // An older record does not move the watermark back, nor does it advance.
  BOOST_TEST(!poll_once(src).advanced.has_value());
  u = poll_once(src);
  BOOST_REQUIRE(u.advanced.has_value());
  BOOST_TEST((*u.advanced == at(9s - 1us)));
}

BOOST_AUTO_TEST_CASE(monotonous_is_the_max_minus_one_microsecond) {
  split_source src{{{0, {{1, at(5s)}, {1, at(6s)}}}}};
  src.set_watermark_strategy(watermarks::monotonous<ev>(ts_of));
  auto u = poll_once(src);
  BOOST_REQUIRE(u.advanced.has_value());
  BOOST_TEST((*u.advanced == at(6s - 1us)));
}

/// Punctuated: key 0 records carry a watermark equal to their time.
class punctuated final : public watermark_generator<ev> {
public:
  void on_event(const ev& e, event_time ts) override {
    if (e.key == 0)
      wm_ = ts;
  }
  std::optional<event_time> current() override { return wm_; }

private:
  std::optional<event_time> wm_;
};

BOOST_AUTO_TEST_CASE(custom_generator_decides_the_watermark) {
  split_source src{{{0, {{1, at(50s)}}}, {0, {{0, at(20s)}, {1, at(60s)}}}}};
  src.set_watermark_strategy(
    watermarks::custom<ev>(ts_of, [] { return std::make_unique<punctuated>(); }, "punctuated"));
  BOOST_TEST(!poll_once(src).advanced.has_value());
  auto u = poll_once(src);
  BOOST_REQUIRE(u.advanced.has_value());
  BOOST_TEST((*u.advanced == at(20s)));
}

BOOST_AUTO_TEST_CASE(the_instance_watermark_is_the_minimum_over_its_splits) {
  split_source src{{{0, {{1, at(10s)}}},
                    {1, {{1, at(4s)}}},
                    {0, {{1, at(20s)}}},
                    {1, {{1, at(8s)}}, true}, // split 1 ends: only split 0 counts now
                    {0, {{1, at(21s)}}}}};
  src.set_watermark_strategy(watermarks::monotonous<ev>(ts_of));
  auto u = poll_once(src);
  BOOST_TEST((u.advanced && *u.advanced == at(10s - 1us)));
  // Split 1 appears behind split 0: the watermark may not go back, so it holds.
  BOOST_TEST(!poll_once(src).advanced.has_value());
  BOOST_TEST(!poll_once(src).advanced.has_value()); // split 1 at 4s holds it
  u = poll_once(src);
  BOOST_TEST((u.advanced && *u.advanced == at(20s - 1us)));
  u = poll_once(src);
  BOOST_TEST((u.advanced && *u.advanced == at(21s - 1us)));
}

BOOST_AUTO_TEST_CASE(a_split_marked_once_keeps_its_records_over_later_polls) {
  // The second poll continues split 1 without marking it. Were its records taken for
  // another split, that split (stuck at 20s) would hold the watermark below 30s.
  split_source src{{{1, {{1, at(10s)}}}, {-1, {{1, at(20s)}}}, {1, {{1, at(30s)}}}}};
  src.set_watermark_strategy(watermarks::monotonous<ev>(ts_of));
  BOOST_TEST((poll_once(src).advanced == std::optional{at(10s - 1us)}));
  BOOST_TEST((poll_once(src).advanced == std::optional{at(20s - 1us)}));
  BOOST_TEST((poll_once(src).advanced == std::optional{at(30s - 1us)}));
}

BOOST_AUTO_TEST_CASE(an_idle_split_stops_holding_back_and_rejoins_with_data) {
  split_source src{{{0, {{1, at(10s)}}}, {1, {{1, at(3s)}}}, {0, {{1, at(30s)}}},
                    {0, {{1, at(31s)}}}, {1, {{1, at(40s)}}}, {0, {{1, at(50s)}}}}};
  src.set_watermark_strategy(watermarks::monotonous<ev>(ts_of).with_idleness(5s));
  const clock::time_point t0{};
  BOOST_TEST((poll_once(src, t0).advanced == std::optional{at(10s - 1us)}));
  BOOST_TEST(!poll_once(src, t0 + 1s).advanced.has_value()); // split 1 at 3s holds
  BOOST_TEST(!poll_once(src, t0 + 2s).advanced.has_value());
  // Split 1 has had nothing for 5 s: idle, so split 0 alone decides.
  auto u = poll_once(src, t0 + 6s);
  BOOST_TEST((u.advanced == std::optional{at(31s - 1us)}));
  BOOST_TEST(!u.idle.has_value()); // the instance is not idle: split 0 is active
  // Split 1 rejoins at 40s: it is active again and holds the watermark at 40s.
  BOOST_TEST(!poll_once(src, t0 + 7s).advanced.has_value());
  u = poll_once(src, t0 + 8s);
  BOOST_TEST((u.advanced == std::optional{at(40s - 1us)}));
}

BOOST_AUTO_TEST_CASE(an_instance_without_records_becomes_idle_and_wakes_up) {
  auto s = std::make_shared<scripted_source::script>();
  s->steps = {{{1, at(1s)}}};
  scripted_source src{s};
  src.set_watermark_strategy(watermarks::monotonous<ev>(ts_of).with_idleness(5s));
  const clock::time_point t0{};
  auto u = poll_once(src, t0);
  BOOST_TEST(!u.idle.has_value());
  u = poll_once(src, t0 + 5s);
  BOOST_TEST((u.idle == std::optional{true}));
  s->released = 1;
  u = poll_once(src, t0 + 6s);
  BOOST_TEST((u.idle == std::optional{false}));
  BOOST_TEST((u.advanced == std::optional{at(1s - 1us)}));
}

BOOST_AUTO_TEST_CASE(invalid_strategies_are_rejected_before_start) {
  job j;
  auto bad = watermarks::monotonous<ev>(ts_of).with_idleness(0s);
  j.from(sources::collection<ev>{{{1, at(1s)}}}, bad).sink_to(sinks::collect<ev>{});
  auto e = require_error(j.run());
  BOOST_TEST(e.code == error_code::invalid_option);
  BOOST_TEST(e.message.find("idle timeout") != std::string::npos, e.message);
}

BOOST_AUTO_TEST_CASE(a_negative_delay_is_rejected_before_start_naming_the_source) {
  // A negative delay puts the watermark ahead of the newest record: the newest rows would
  // be dropped as late (Spark rejects a negative delay too).
  job j;
  auto out = sinks::collect<ev>{};
  j.from(sources::collection<ev>{{{1, at(1s)}}},
         watermarks::bounded_out_of_orderness<ev>(-5min, ts_of))
    .name("readings")
    .sink_to(out);
  auto e = require_error(j.run());
  BOOST_TEST(e.code == error_code::invalid_option);
  BOOST_TEST(e.message == "source 'readings': the watermark delay must not be negative, got "
                          "-300000000us",
             e.message);
  BOOST_TEST(out.size() == 0u);
}

BOOST_AUTO_TEST_CASE(watermarks_near_the_start_of_the_time_line_do_not_wrap) {
  // max event time - delay - 1µs, saturated: a record near the first instant does not wrap
  // the watermark around to the far future (which would make every later record late).
  split_source src{{{0, {{1, event_time::min() + 1s}}}}};
  src.set_watermark_strategy(watermarks::bounded_out_of_orderness<ev>(1h, ts_of));
  auto u = poll_once(src);
  BOOST_TEST((!u.advanced || *u.advanced < event_time::min() + 1s));
  bounded_out_of_orderness_generator<ev> g{1h};
  g.on_event(ev{1, event_time::min() + 1s}, event_time::min() + 1s);
  auto w = g.current();
  BOOST_REQUIRE(w.has_value());
  BOOST_TEST((*w == event_time::min()));
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(propagation)

BOOST_AUTO_TEST_CASE(watermarks_reach_downstream_behind_the_data_and_end_at_max) {
  std::mt19937 rng{20261127};
  for (int round = 0; round < 6; ++round) {
    const int p_src = 1 + static_cast<int>(rng() % 3);
    const int p_op = 1 + static_cast<int>(rng() % 4);
    const std::size_t batch = 1 + rng() % 64;
    const auto linger = std::chrono::microseconds{rng() % 2 ? 0 : 200};
    BOOST_TEST_CONTEXT("round " << round << ": sources " << p_src << ", recorder " << p_op
                                << ", batch " << batch << ", linger " << linger.count()) {
      job j{{.parallelism = p_src,
             .runtime = {.batch_size = batch, .linger = linger, .credits = 2}}};
      auto rec = std::make_shared<recording>();
      // Record n has event time n µs; each source instance emits its share in order.
      auto ts = [](const std::uint64_t& n) { return event_time{duration{n}}; };
      auto src = j.from(sources::generator(sources::generator_options{.count = 20000},
                                           [](std::uint64_t n) { return n; }),
                        watermarks::monotonous<std::uint64_t>(ts));
      auto out =
        record_watermarks(src.key_by([](const std::uint64_t& n) { return n % 17; }).input(),
                          rec, ts);
      out.parallelism(p_op);
      auto sink = sinks::collect<std::uint64_t>{};
      out.sink_to(sink);
      require_ok(j.run());
      std::lock_guard lk{rec->m};
      BOOST_TEST(rec->records == 20000u);
      // Data never arrives behind a watermark that was sent after it.
      BOOST_TEST(rec->records_at_or_below_watermark == 0u);
      BOOST_REQUIRE(!rec->watermarks.empty());
      BOOST_TEST((rec->watermarks.back() == max_watermark));
      BOOST_TEST(std::is_sorted(rec->watermarks.begin(), rec->watermarks.end()));
      // Strictly increasing: only advances are delivered.
      BOOST_TEST((std::adjacent_find(rec->watermarks.begin(), rec->watermarks.end()) ==
                  rec->watermarks.end()));
    }
  }
}

BOOST_AUTO_TEST_CASE(a_source_without_a_strategy_still_ends_event_time_at_the_end) {
  job j;
  auto rec = std::make_shared<recording>();
  auto src = j.from(sources::collection<ev>{{{1, at(1s)}, {2, at(2s)}}});
  record_watermarks(src, rec, ts_of).sink_to(sinks::collect<ev>{});
  require_ok(j.run());
  std::lock_guard lk{rec->m};
  BOOST_TEST(rec->watermarks.size() == 1u);
  BOOST_TEST((rec->watermarks.back() == max_watermark));
}

BOOST_AUTO_TEST_CASE(a_cancelled_job_does_not_fire_event_time) {
  auto clk = std::make_shared<manual_clock>();
  job j{{.runtime = {.processing_clock = clk}}};
  auto rec = std::make_shared<recording>();
  auto script = std::make_shared<scripted_source::script>();
  script->steps = {{{1, at(5s)}}};
  script->released = 1;
  auto src = j.from(scripted{script}, watermarks::monotonous<ev>(ts_of));
  record_watermarks(src, rec, ts_of).sink_to(sinks::collect<ev>{});
  auto exec = require_ok(j.start());
  BOOST_REQUIRE(wait_until(*exec, [&] { return rec->last() == at(5s - 1us); }));
  exec->cancel();
  require_ok(exec->wait());
  BOOST_TEST((rec->last() == at(5s - 1us)));
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(idleness)

// Two sources feed one operator. Source A goes quiet; after its idle timeout it stops
// holding the watermark back. Then A sends an old record: it is delivered (not dropped)
// and counted as arriving behind the watermark, so the loss a window would cause is
// visible in the metrics.
BOOST_AUTO_TEST_CASE(an_idle_input_does_not_stall_and_its_late_data_is_counted) {
  auto clk = std::make_shared<manual_clock>();
  job j{{.runtime = {.processing_clock = clk}}};
  auto a = std::make_shared<scripted_source::script>();
  a->steps = {{{1, at(1s)}}, {{1, at(2s)}}};
  a->released = 1;
  auto b = std::make_shared<scripted_source::script>();
  b->steps = {{{2, at(1s)}}, {{2, at(10s)}}};
  b->released = 1;
  auto rec = std::make_shared<recording>();
  auto sa = j.from(scripted{a}, watermarks::monotonous<ev>(ts_of).with_idleness(5s)).name("a");
  auto sb = j.from(scripted{b}, watermarks::monotonous<ev>(ts_of)).name("b");
  auto got = sinks::collect<ev>{};
  record_watermarks(sa.union_with(sb).rebalance(), rec, ts_of).name("recorder").sink_to(got);
  auto exec = require_ok(j.start());

  BOOST_REQUIRE(wait_until(*exec, [&] { return rec->last() == at(1s - 1us); }));
  b->released = 2; // b moves to 10 s; a still holds the watermark at 1 s
  BOOST_REQUIRE(wait_until(*exec, [&] { return rec->count() == 3; }));
  clk->advance(6s); // a has had nothing for 6 s > 5 s: idle
  BOOST_REQUIRE(wait_until(*exec, [&] { return rec->last() == at(10s - 1us); }));
  a->released = 2; // a rejoins with a record at 2 s, behind the watermark of 10 s
  BOOST_REQUIRE(wait_until(*exec, [&] { return rec->count() == 4; }));
  exec->cancel();
  auto done = require_ok(exec->wait());

  BOOST_TEST(got.size() == 4u);
  BOOST_TEST(sum_of(done.tasks, "recorder -> memory", &task_stats::records_behind_watermark) ==
             1u);
  BOOST_TEST((rec->last() == at(10s - 1us))); // never went back
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(harness)

// The harness drives an operator without actors: watermarks only advance, and end of
// input delivers the max watermark.
BOOST_AUTO_TEST_CASE(harness_delivers_watermarks_in_order_and_ends_at_max) {
  auto rec = std::make_shared<recording>();
  operator_harness h{std::make_unique<watermark_recorder<ev, decltype(ts_of)>>(rec, ts_of)};
  require_ok(h.open());
  require_ok(h.push(std::vector<ev>{{1, at(1s)}}));
  require_ok(h.watermark(at(5s)));
  require_ok(h.watermark(at(3s))); // behind: ignored
  require_ok(h.push(std::vector<ev>{{1, at(4s)}}));
  require_ok(h.end_input());
  BOOST_TEST(h.take<ev>().size() == 2u);
  std::lock_guard lk{rec->m};
  BOOST_TEST(rec->watermarks.size() == 2u);
  BOOST_TEST((rec->watermarks.back() == max_watermark));
  BOOST_TEST(rec->records_at_or_below_watermark == 1u); // the 4 s record after wm 5 s
}

BOOST_AUTO_TEST_SUITE_END()
