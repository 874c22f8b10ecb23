// Watermark alignment (Flink's withWatermarkAlignment): the coordinator's group logic and a
// source task's reporter driven directly (actors/watermark_alignment), and jobs whose source
// instances would drift apart in event time.
#define BOOST_TEST_MODULE alignment_test
#include <boost/test/unit_test.hpp>

#include "../engine/test_helpers.hpp"
#include "sluice/actors/watermark_alignment.hpp"
#include "sluice/api/job.hpp"
#include "sluice/sinks/memory.hpp"
#include "sluice/sources/watermarks.hpp"
#include "sluice/tests/common/temp_dir.hpp"

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <mutex>
#include <optional>
#include <stdexcept>

using namespace sluice;
using namespace sluice::test;

namespace {

event_time at(duration d) { return event_time{d}; }

struct ev {
  int key = 0; ///< the source instance that made it
  event_time ts{};
  friend bool operator==(const ev&, const ev&) = default;
};

auto ts_of = [](const ev& e) { return e.ts; };

/// Two source instances that drift apart in event time. Instance 1 runs free: each poll
/// emits 10 records 10 ms apart (a batch spans 100 ms of event time), 200 records in all.
/// Instance 0 is paced by the test: each released step emits 10 records 1 ms apart; it
/// ends once `end0` is set and its released steps are out.
struct pacing {
  std::atomic<int> released0{0};
  std::atomic<bool> end0{false};
};

constexpr int fast_polls = 20;
constexpr duration fast_span = 100ms; // how far one poll of instance 1 moves its watermark

class paced_source final : public source<ev> {
public:
  paced_source(std::shared_ptr<pacing> p, int instance) : p_(std::move(p)), instance_(instance) {}
  result<void> open(const source_context&) override { return {}; }
  result<poll_result> poll(source_output<ev>& out, std::size_t) override {
    if (instance_ == 1) {
      for (int i = 0; i < 10; ++i)
        out.records.push_back({1, at(next_ * fast_span + i * 10ms)});
      return ++next_ == fast_polls ? poll_result::end() : poll_result::more();
    }
    if (next_ < p_->released0.load()) {
      for (int i = 0; i < 10; ++i)
        out.records.push_back({0, at(next_ * 10ms + i * 1ms)});
      ++next_;
      return poll_result::more();
    }
    if (p_->end0.load())
      return poll_result::end();
    return poll_result::idle(std::chrono::milliseconds{1});
  }

private:
  std::shared_ptr<pacing> p_;
  int instance_;
  int next_ = 0;
};

struct paced {
  using record_type = ev;
  std::shared_ptr<pacing> p;
  std::unique_ptr<source<ev>> create(const source_context& ctx) const {
    return std::make_unique<paced_source>(p, ctx.instance);
  }
  std::string describe() const { return "paced"; }
  int max_parallelism() const { return 2; }
};

/// What the operator downstream of both instances saw: each instance's newest event time,
/// and the largest spread between them while both had records there.
struct spread_seen {
  mutable std::mutex m;
  event_time max0 = min_watermark;
  event_time max1 = min_watermark;
  std::uint64_t n0 = 0;
  std::uint64_t n1 = 0;
  duration widest{0};
  /// Armed: the recorder fails once, on instance 0's fifth batch, and forgets what it saw
  /// (the attempt after the restart is measured alone).
  bool fail_armed = false;

  template <class F>
  auto read(F f) const {
    std::lock_guard lk{m};
    return f(*this);
  }
};

class spread_recorder final : public operator_base {
public:
  explicit spread_recorder(std::shared_ptr<spread_seen> s) : s_(std::move(s)) {}
  result<void> process(int, batch_ptr in, output& out) override {
    {
      std::lock_guard lk{s_->m};
      const auto& rs = records_of<ev>(*in);
      if (s_->fail_armed && s_->n0 >= 40 && !rs.empty() && rs.front().key == 0) {
        s_->fail_armed = false;
        s_->max0 = s_->max1 = min_watermark;
        s_->n0 = s_->n1 = 0;
        s_->widest = duration{0};
        throw std::runtime_error("injected failure");
      }
      for (const auto& r : records_of<ev>(*in)) {
        if (r.key == 0) {
          s_->max0 = std::max(s_->max0, r.ts);
          ++s_->n0;
        } else {
          s_->max1 = std::max(s_->max1, r.ts);
          ++s_->n1;
        }
        if (s_->n0 > 0 && s_->n1 > 0)
          s_->widest = std::max({s_->widest, s_->max1 - s_->max0, s_->max0 - s_->max1});
      }
    }
    return out.emit(0, std::move(in));
  }

private:
  std::shared_ptr<spread_seen> s_;
};

constexpr duration drift = 300ms;

/// paced (2 instances) -> recorder (1 instance) -> memory sink.
struct drifting_job {
  std::shared_ptr<manual_clock> clk = std::make_shared<manual_clock>();
  std::shared_ptr<pacing> pace = std::make_shared<pacing>();
  std::shared_ptr<spread_seen> seen = std::make_shared<spread_seen>();
  sinks::collect<ev> got;
  job j;

  /// With `checkpoints`: a checkpoint directory, so that a failure restarts the job.
  explicit drifting_job(watermark_strategy<ev> strategy,
                        std::optional<std::filesystem::path> checkpoints = std::nullopt)
    : j{options(clk, checkpoints)} {
    auto src = j.from(paced{pace}, std::move(strategy)).name("paced");
    auto rec = src.rebalance().attach<ev>("recorder", [s = seen] {
      return std::make_unique<spread_recorder>(s);
    });
    rec.parallelism(1);
    rec.sink_to(got);
  }

  static job_options options(std::shared_ptr<manual_clock> clk,
                             const std::optional<std::filesystem::path>& checkpoints) {
    job_options o{.parallelism = 2, .runtime = {.processing_clock = std::move(clk)}};
    if (checkpoints) {
      o.checkpoints.dir = checkpoints->string();
      o.checkpoints.restart = restart_strategy::fixed(3, std::chrono::milliseconds{10});
    }
    return o;
  }

  duration widest() const { return seen->read([](auto& s) { return s.widest; }); }
  std::uint64_t n0() const { return seen->read([](auto& s) { return s.n0; }); }
  std::uint64_t n1() const { return seen->read([](auto& s) { return s.n1; }); }
  /// Instance 1 is past what it may reach (at least `drift` ahead of instance 0), or done.
  bool fast_one_pushes() const {
    return seen->read([](auto& s) {
      return s.n1 == 10u * fast_polls || (s.n0 > 0 && s.max1 - s.max0 >= drift);
    });
  }
  /// Releases instance 0 ten records at a time, 200 times, letting instance 1 push against
  /// its limit after each step; then ends instance 0's input.
  void release_step_by_step(job_execution& exec) const {
    for (int step = 1; step <= 200; ++step) {
      pace->released0 = step;
      BOOST_REQUIRE(wait_until(exec, [&] { return n0() == 10u * static_cast<unsigned>(step); }));
      BOOST_REQUIRE(wait_until(exec, [&] { return fast_one_pushes(); }));
    }
    pace->end0 = true;
  }
};

watermark_strategy<ev> aligned() {
  return watermarks::monotonous<ev>(ts_of).with_watermark_alignment("g", drift, 1ms);
}

} // namespace

BOOST_AUTO_TEST_SUITE(alignment_options)

BOOST_AUTO_TEST_CASE(bad_alignment_options_are_refused_naming_the_source) {
  struct bad_case {
    watermark_strategy<ev> strategy;
    std::string says;
  };
  const auto mono = watermarks::monotonous<ev>(ts_of);
  std::vector<bad_case> cases{
    {mono.with_watermark_alignment("", 1s), "the group needs a name"},
    {mono.with_watermark_alignment("g", -5ms), "the max drift must be positive, got -5000us"},
    {mono.with_watermark_alignment("g", 0s), "the max drift must be positive, got 0us"},
    {mono.with_watermark_alignment("g", 1s, 0ms), "the update interval must be positive, got 0ns"},
    {mono.with_watermark_alignment("g", 1s, -1ms),
     "the update interval must be positive, got -1000000ns"},
  };
  for (auto& c : cases) {
    BOOST_TEST_CONTEXT(c.says) {
      job j;
      auto pace = std::make_shared<pacing>();
      pace->end0 = true; // should it run after all, it ends at once
      j.from(paced{pace}, c.strategy).name("orders").sink_to(sinks::collect<ev>{});
      auto err = require_error(j.run());
      BOOST_TEST((err.code == error_code::invalid_option));
      BOOST_TEST(err.message.find("source 'orders': watermark alignment: " + c.says) !=
                   std::string::npos,
                 err.message);
    }
  }
}

BOOST_AUTO_TEST_CASE(the_default_update_interval_is_flinks_and_explain_shows_the_group) {
  const auto s = watermarks::monotonous<ev>(ts_of).with_watermark_alignment("g", 20s);
  BOOST_REQUIRE(s.alignment);
  BOOST_TEST(s.alignment->group == "g");
  BOOST_TEST(s.alignment->max_drift.count() == duration{20s}.count());
  BOOST_TEST(s.alignment->update_interval.count() == std::chrono::nanoseconds{1s}.count());
  BOOST_TEST(s.description.find("aligned in group 'g' (max drift 20000ms)") != std::string::npos);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(alignment_groups_suite)

using state = alignment_state;
using allowance = alignment_groups::allowance;

BOOST_AUTO_TEST_CASE(each_member_may_run_its_drift_ahead_of_the_others_minimum) {
  alignment_groups g{{{0, "g", 10ms}, {1, "g", 10ms}, {2, "g", 50ms}}};
  BOOST_TEST(g.report(0, state::active, at(100ms)).empty()); // 1 and 2 still unknown
  // 2 knows the others now: the slower one's watermark plus its own drift.
  const auto first = g.report(1, state::active, at(300ms));
  const std::vector<allowance> want0{{2, at(150ms)}};
  BOOST_TEST((first == want0));
  const auto sent = g.report(2, state::active, at(200ms));
  const std::vector<allowance> want{{0, at(210ms)}, {1, at(110ms)}};
  BOOST_TEST((sent == want));
  // The slowest moves: only the allowances that change are sent again.
  const auto moved = g.report(0, state::active, at(150ms));
  const std::vector<allowance> want2{{1, at(160ms)}, {2, at(200ms)}};
  BOOST_TEST((moved == want2));
  BOOST_TEST(g.report(0, state::active, at(120ms)).empty()); // reports never go back
}

BOOST_AUTO_TEST_CASE(a_member_without_a_watermark_holds_its_group_at_unknown) {
  alignment_groups g{{{0, "g", 10ms}, {1, "g", 10ms}}};
  // Member 0 may run as far as it likes over member 1's watermark, but 1 waits for 0.
  const auto sent = g.report(1, state::active, at(5s));
  const std::vector<allowance> want{{0, at(5s + 10ms)}};
  BOOST_TEST((sent == want));
  BOOST_TEST(!g.minimum("g").has_value());
  const auto known = g.report(0, state::active, at(1s));
  const std::vector<allowance> want2{{1, at(1s + 10ms)}};
  BOOST_TEST((known == want2));
  BOOST_TEST((*g.minimum("g") == at(1s)));
}

BOOST_AUTO_TEST_CASE(idle_and_finished_members_release_the_others) {
  alignment_groups g{{{0, "g", 10ms}, {1, "g", 10ms}, {2, "g", 10ms}}};
  static_cast<void>(g.report(0, state::active, at(1s)));
  static_cast<void>(g.report(1, state::active, at(2s)));
  static_cast<void>(g.report(2, state::active, at(3s)));
  // 0 goes idle: it no longer holds 1 and 2 (0's own allowance stays 1's plus the drift).
  const auto idle = g.report(0, state::idle, at(1s));
  const std::vector<allowance> want{{1, at(3s + 10ms)}, {2, at(2s + 10ms)}};
  BOOST_TEST((idle == want));
  // 1 ends: only 2 holds 0, nothing holds 2; the ended one hears nothing more.
  const auto ended = g.report(1, state::ended, at(2s));
  const std::vector<allowance> want2{{0, at(3s + 10ms)}, {2, max_watermark}};
  BOOST_TEST((ended == want2));
  // 2 ends too: 0, idle, may run without a limit.
  const auto last = g.report(2, state::ended, at(3s));
  const std::vector<allowance> want3{{0, max_watermark}};
  BOOST_TEST((last == want3));
  // 0 comes back with records: alone, it is never held by itself.
  BOOST_TEST(g.report(0, state::active, at(9s)).empty());
}

BOOST_AUTO_TEST_CASE(groups_are_independent_and_a_restart_forgets_every_report) {
  alignment_groups g{{{0, "a", 10ms}, {1, "a", 10ms}, {2, "b", 10ms}, {3, "b", 10ms}}};
  static_cast<void>(g.report(0, state::active, at(1s)));
  static_cast<void>(g.report(1, state::active, at(1s)));
  BOOST_TEST((*g.minimum("a") == at(1s)));
  BOOST_TEST(!g.minimum("b").has_value());
  BOOST_TEST(g.report(7, state::active, at(1s)).empty()); // not a member
  g.restart();
  BOOST_TEST(!g.minimum("a").has_value());
  // After the restart the old allowances count as never sent: they are sent again.
  const auto again0 = g.report(0, state::active, at(1s));
  const std::vector<allowance> want0{{1, at(1s + 10ms)}};
  BOOST_TEST((again0 == want0));
  const auto again1 = g.report(1, state::active, at(1s));
  const std::vector<allowance> want1{{0, at(1s + 10ms)}};
  BOOST_TEST((again1 == want1));
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(alignment_reporter_suite)

using state = alignment_state;
using steady = std::chrono::steady_clock;
const steady::time_point t0{std::chrono::seconds{100}};

BOOST_AUTO_TEST_CASE(a_source_polls_until_its_first_watermark_then_within_its_allowance) {
  alignment_reporter r{1s};
  BOOST_TEST(!r.holds(min_watermark)); // no watermark: it reads until it has one
  BOOST_TEST(r.holds(at(5ms)));        // a watermark but no answer yet: its group may be unknown
  r.allow(at(10ms));
  BOOST_TEST(!r.holds(at(10ms)));
  BOOST_TEST(r.holds(at(11ms)));
}

BOOST_AUTO_TEST_CASE(a_change_of_state_is_reported_at_once_a_new_watermark_once_per_interval) {
  alignment_reporter r{100ms};
  BOOST_TEST(!r.update(state::waiting, min_watermark, t0).report); // the state it starts in
  auto first = r.update(state::active, at(5ms), t0);
  BOOST_REQUIRE(first.report);
  BOOST_TEST((*first.report == alignment_report{state::active, at(5ms)}));
  // A newer watermark within the interval: one wake-up at its end, not one per update.
  auto early = r.update(state::active, at(7ms), t0 + 30ms);
  BOOST_TEST(!early.report);
  BOOST_REQUIRE(early.wake_at);
  BOOST_TEST((*early.wake_at == t0 + 100ms));
  auto again = r.update(state::active, at(8ms), t0 + 40ms);
  BOOST_TEST((!again.report && !again.wake_at));
  // A change of state does not wait for the interval.
  auto idle = r.update(state::idle, at(8ms), t0 + 50ms);
  BOOST_REQUIRE(idle.report);
  BOOST_TEST((idle.report->state == state::idle));
  r.woke();
  auto back = r.update(state::active, at(9ms), t0 + 60ms);
  BOOST_REQUIRE(back.report);
  // The interval counts from the last report: due at +160 ms.
  auto next = r.update(state::active, at(12ms), t0 + 70ms);
  BOOST_REQUIRE(next.wake_at);
  BOOST_TEST((*next.wake_at == t0 + 160ms));
  r.woke();
  auto due = r.update(state::active, at(12ms), t0 + 160ms);
  BOOST_REQUIRE(due.report);
  BOOST_TEST((*due.report == alignment_report{state::active, at(12ms)}));
  // The same watermark again: nothing to say.
  auto same = r.update(state::active, at(12ms), t0 + 500ms);
  BOOST_TEST((!same.report && !same.wake_at));
}

BOOST_AUTO_TEST_CASE(an_ended_instance_reports_once_and_then_nothing) {
  alignment_reporter r{1ms};
  BOOST_REQUIRE(r.update(state::active, at(5ms), t0).report);
  auto last = r.end(at(5ms), t0 + 1ms);
  BOOST_REQUIRE(last);
  BOOST_TEST((last->state == state::ended));
  BOOST_TEST(!r.end(at(5ms), t0 + 2ms));
  auto after = r.update(state::active, at(9ms), t0 + 1s);
  BOOST_TEST((!after.report && !after.wake_at));
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(alignment_jobs)

// Instance 1 produces event time ten times faster. Without alignment it runs to its end
// while instance 0 is still near the start: downstream sees the two far apart.
BOOST_AUTO_TEST_CASE(without_alignment_the_fast_instance_runs_far_ahead) {
  drifting_job d{watermarks::monotonous<ev>(ts_of)};
  auto exec = require_ok(d.j.start());
  d.pace->released0 = 1;
  BOOST_REQUIRE(wait_until(*exec, [&] { return d.n0() == 10u && d.n1() == 10u * fast_polls; }));
  d.pace->released0 = 200;
  d.pace->end0 = true;
  require_ok(exec->wait());
  BOOST_TEST(d.got.size() == 2000u + 10u * fast_polls);
  BOOST_TEST(d.widest().count() > duration{drift + fast_span}.count());
}

// With alignment, instance 1 stops polling whenever it is more than the drift ahead of
// instance 0; the test releases instance 0 step by step and lets instance 1 push against
// its limit after each step. The spread downstream never exceeds the drift plus the event
// time one poll of instance 1 covers.
BOOST_AUTO_TEST_CASE(with_alignment_the_spread_downstream_stays_within_the_drift_and_one_batch) {
  drifting_job d{aligned()};
  auto exec = require_ok(d.j.start());
  d.release_step_by_step(*exec);
  require_ok(exec->wait());
  BOOST_TEST(d.got.size() == 2000u + 10u * fast_polls); // nothing lost, nothing doubled
  BOOST_TEST(d.widest().count() <= duration{drift + fast_span}.count());
  BOOST_TEST(d.widest().count() >= drift.count()); // it did push against the limit
}

// Instance 1 is held by instance 0; instance 0's input ends: instance 1 runs to its end.
BOOST_AUTO_TEST_CASE(a_finished_instance_releases_the_others) {
  drifting_job d{aligned()};
  auto exec = require_ok(d.j.start());
  d.pace->released0 = 1;
  BOOST_REQUIRE(wait_until(*exec, [&] { return d.n0() == 10u && d.fast_one_pushes(); }));
  BOOST_TEST(d.n1() < 10u * fast_polls); // held: it cannot finish while instance 0 lags
  d.pace->end0 = true;
  require_ok(exec->wait());
  BOOST_TEST(d.n1() == 10u * fast_polls);
  BOOST_TEST(d.got.size() == 10u + 10u * fast_polls);
}

// A failure restarts the job (alignment is not checkpointed, as in Flink): the new attempt's
// instances report afresh, instance 1 is held and released again, and the spread stays
// within the bound.
BOOST_AUTO_TEST_CASE(after_a_restart_alignment_rebuilds_from_new_reports) {
  temp_dir dir;
  drifting_job d{aligned(), dir.path / "ckpt"};
  {
    std::lock_guard lk{d.seen->m};
    d.seen->fail_armed = true;
  }
  auto exec = require_ok(d.j.start());
  d.release_step_by_step(*exec);
  auto r = require_ok(exec->wait());
  BOOST_TEST(r.restarts == 1);
  BOOST_TEST(d.n1() == 10u * fast_polls);
  BOOST_TEST(d.widest().count() <= duration{drift + fast_span}.count());
}

// Instance 0 gets nothing more; once its idle timeout passes on the job's clock it is idle
// and no longer holds instance 1 back.
BOOST_AUTO_TEST_CASE(an_idle_instance_releases_the_others) {
  drifting_job d{aligned().with_idleness(5s)};
  auto exec = require_ok(d.j.start());
  d.pace->released0 = 1;
  BOOST_REQUIRE(wait_until(*exec, [&] { return d.n0() == 10u && d.fast_one_pushes(); }));
  BOOST_TEST(d.n1() < 10u * fast_polls);
  d.clk->advance(6s);
  BOOST_REQUIRE(wait_until(*exec, [&] { return d.n1() == 10u * fast_polls; }));
  d.pace->end0 = true;
  require_ok(exec->wait());
  BOOST_TEST(d.got.size() == 10u + 10u * fast_polls);
}

BOOST_AUTO_TEST_SUITE_END()
