#define BOOST_TEST_MODULE coordinator_test
// The coordinator's CAF-free parts, driven directly: the epoch planner (triggers, barriers,
// acknowledgements, Spark's watermark), checkpoint coordination (due, expiry, declines,
// completion into a real store) and progress building. No actor system runs here.
#include <boost/test/unit_test.hpp>

#include "sluice/actors/checkpoint_coordinator.hpp"
#include "sluice/actors/epoch_planner.hpp"
#include "sluice/actors/progress_builder.hpp"
#include "sluice/actors/wiring.hpp"
#include "sluice/api/job.hpp"
#include "sluice/sinks/callback.hpp"
#include "sluice/sources/collection.hpp"
#include "sluice/tests/common/temp_dir.hpp"

#include <algorithm>
#include <map>
#include <string>
#include <vector>

using namespace sluice;
using namespace std::chrono_literals;

namespace {

using lines = std::vector<std::string>;

/// Records what the planner asked for, as text.
struct recording_driver final : epoch_driver {
  lines log;
  bool keep_going = true;
  std::map<std::int64_t, open_epoch> completed;
  void prepare(std::int64_t epoch, bool unlimited) override {
    log.push_back("prepare " + std::to_string(epoch) + (unlimited ? " unlimited" : ""));
  }
  void run(std::int64_t epoch, event_time wm) override {
    log.push_back("run " + std::to_string(epoch) + " wm " +
                  (wm == min_watermark ? std::string{"min"}
                                       : std::to_string(wm.time_since_epoch().count())));
  }
  void inject(std::int64_t epoch, bool checkpoint) override {
    log.push_back("inject " + std::to_string(epoch) + (checkpoint ? " cp" : ""));
  }
  void stop_sources() override { log.push_back("stop"); }
  void schedule_tick(sluice::clock::time_point at) override {
    log.push_back("tick at " + std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(
                                                at.time_since_epoch())
                                                .count()));
  }
  void status(std::string message, bool, bool) override { log.push_back("status " + message); }
  void idle() override { log.push_back("idle"); }
  bool epoch_complete(std::int64_t id, const open_epoch& e) override {
    log.push_back("complete " + std::to_string(id) + " (" + std::to_string(e.reports.size()) +
                  " reports)");
    completed[id] = e;
    return keep_going;
  }
  lines take() { return std::exchange(log, {}); }
};

sluice::clock::time_point ms(std::int64_t n) {
  return sluice::clock::time_point{std::chrono::milliseconds{n}};
}

std::shared_ptr<epoch_report> ack(int task, std::int64_t epoch, bool checkpoint = false) {
  auto r = std::make_shared<epoch_report>();
  r->task = task;
  r->epoch = epoch;
  r->checkpoint = checkpoint;
  return r;
}

/// A source task's ack that read rows with event times up to `max_us`, under a bounded
/// watermark strategy with `delay_us`.
epoch_report_ptr source_ack(int task, std::int64_t epoch, int node, std::int64_t max_us,
                            std::int64_t delay_us) {
  auto r = std::make_shared<epoch_report>();
  r->task = task;
  r->epoch = epoch;
  source_epoch_report s;
  s.node = node;
  s.rows = 1;
  s.event_times.add(event_time{duration{max_us}});
  s.watermark_delay = duration{delay_us};
  r->sources.push_back(s);
  return r;
}

bool contains(const lines& l, const std::string& s) {
  return std::find(l.begin(), l.end(), s) != l.end();
}

} // namespace

BOOST_AUTO_TEST_SUITE(epoch_planner_suite)

BOOST_AUTO_TEST_CASE(continuous_mode_injects_a_barrier_every_interval) {
  recording_driver d;
  epoch_planner p{triggers::continuous(100ms), 2, 1, false, d};
  p.start(ms(0), nullptr, -1);
  BOOST_TEST(d.take() == (lines{"tick at 100"}), boost::test_tools::per_element());
  p.tick(ms(100), false);
  p.tick(ms(200), true);
  BOOST_TEST(d.take() == (lines{"inject 0", "tick at 200", "inject 1 cp", "tick at 300"}),
             boost::test_tools::per_element());
  BOOST_TEST(p.next_epoch() == 2);
}

BOOST_AUTO_TEST_CASE(an_epoch_completes_when_every_task_acked_or_finished_oldest_first) {
  recording_driver d;
  epoch_planner p{triggers::continuous(100ms), 3, 1, false, d};
  p.start(ms(0), nullptr, -1);
  p.tick(ms(100), false);
  p.tick(ms(200), false);
  d.take();
  BOOST_TEST(p.acknowledged(ms(210), ack(0, 1))); // epoch 1 before 0 at one task
  BOOST_TEST(p.acknowledged(ms(210), ack(0, 0)));
  BOOST_TEST(p.acknowledged(ms(210), ack(1, 0)));
  BOOST_TEST(p.acknowledged(ms(210), ack(1, 1)));
  BOOST_TEST(d.take().empty()); // task 2 has acked neither
  p.task_done(ms(220), 2);      // it finished: it acknowledges no further epoch
  BOOST_TEST(d.take() == (lines{"complete 0 (2 reports)", "complete 1 (2 reports)"}),
             boost::test_tools::per_element());
  BOOST_TEST(p.finished(2));
  BOOST_TEST(!p.finished(0));
}

BOOST_AUTO_TEST_CASE(a_source_at_its_end_gets_a_barrier_numbered_by_the_planner) {
  recording_driver d;
  epoch_planner p{triggers::continuous(100ms), 2, 2, false, d};
  p.start(ms(0), nullptr, -1);
  p.tick(ms(100), false); // epoch 0, no checkpoint
  d.take();
  // A source that has seen epoch 0 reaches its end: it needs a checkpoint after it.
  p.final_barrier(ms(120), 0, true);
  BOOST_TEST(d.take() == (lines{"inject 1 cp"}), boost::test_tools::per_element());
  // The other source asks too, having seen only epoch 0: checkpoint 1 is on its way to it.
  p.final_barrier(ms(121), 0, true);
  BOOST_TEST(d.take().empty());
  // Without checkpoints any later epoch will do.
  p.final_barrier(ms(122), 0, false);
  BOOST_TEST(d.take().empty());
  p.final_barrier(ms(123), 1, false);
  BOOST_TEST(d.take() == (lines{"inject 2"}), boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(final_barriers_are_injected_while_stopping) {
  recording_driver d;
  epoch_planner p{triggers::continuous(100ms), 1, 1, false, d};
  p.start(ms(0), nullptr, -1);
  p.cancel(); // the sources stop and each asks for its last barrier
  BOOST_TEST(d.take() == (lines{"tick at 100", "stop"}), boost::test_tools::per_element());
  p.final_barrier(ms(1), -1, true);
  BOOST_TEST(d.take() == (lines{"inject 0 cp"}), boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(an_ack_for_an_epoch_that_was_never_started_is_refused) {
  recording_driver d;
  epoch_planner p{triggers::continuous(100ms), 1, 1, false, d};
  p.start(ms(0), nullptr, -1);
  BOOST_TEST(!p.acknowledged(ms(1), ack(0, 3, true)));
  p.tick(ms(100), false);
  BOOST_TEST(p.acknowledged(ms(101), ack(0, 0)));
  BOOST_TEST(!p.acknowledged(ms(102), ack(0, 0))); // completed already
}

BOOST_AUTO_TEST_CASE(a_driver_that_ended_the_job_stops_the_completion_loop) {
  recording_driver d;
  epoch_planner p{triggers::continuous(100ms), 1, 1, false, d};
  p.start(ms(0), nullptr, -1);
  p.tick(ms(100), true);
  p.tick(ms(200), false);
  d.take();
  d.keep_going = false;
  BOOST_TEST(p.acknowledged(ms(210), ack(0, 1)));
  BOOST_TEST(p.acknowledged(ms(210), ack(0, 0)));
  BOOST_TEST(d.take() == (lines{"complete 0 (1 reports)"}), boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(available_now_runs_batches_until_nothing_is_left_then_stops) {
  recording_driver d;
  epoch_planner p{triggers::available_now(), 2, 2, false, d};
  p.start(ms(0), nullptr, -1);
  BOOST_TEST(d.take() == (lines{"status Getting offsets from sources", "prepare 0"}),
             boost::test_tools::per_element());
  p.prepared(ms(1), 0, true);
  BOOST_TEST(d.take().empty()); // the other source has not answered
  p.prepared(ms(1), 0, false);
  BOOST_TEST(d.take() == (lines{"status Processing new data", "run 0 wm min"}),
             boost::test_tools::per_element());
  BOOST_TEST((p.current() == epoch_planner::phase::running));
  BOOST_TEST(p.acknowledged(ms(5), ack(0, 0)));
  BOOST_TEST(p.acknowledged(ms(5), ack(1, 0)));
  BOOST_TEST(d.take() == (lines{"complete 0 (2 reports)", "status Waiting for next trigger",
                                "status Getting offsets from sources", "prepare 1"}),
             boost::test_tools::per_element());
  p.prepared(ms(6), 1, false);
  p.prepared(ms(6), 1, false);
  BOOST_TEST(d.take() == (lines{"status Waiting for data to arrive", "idle", "stop"}),
             boost::test_tools::per_element());
  BOOST_TEST((p.current() == epoch_planner::phase::stopping));
}

BOOST_AUTO_TEST_CASE(a_stale_prepared_answer_is_ignored) {
  recording_driver d;
  epoch_planner p{triggers::available_now(), 1, 1, false, d};
  p.start(ms(0), nullptr, -1);
  d.take();
  p.prepared(ms(1), 7, true);
  BOOST_TEST(d.take().empty());
}

BOOST_AUTO_TEST_CASE(processing_time_waits_for_the_next_interval_when_idle_or_early) {
  recording_driver d;
  epoch_planner p{triggers::processing_time(1000ms), 1, 1, false, d};
  p.start(ms(0), nullptr, -1);
  p.prepared(ms(1), 0, false);
  BOOST_TEST(contains(d.take(), "tick at 1000"));
  p.tick(ms(1000), false);
  p.prepared(ms(1001), 0, true);
  BOOST_TEST(p.acknowledged(ms(1200), ack(0, 0)));
  BOOST_TEST(contains(d.take(), "tick at 2000")); // done early: waits for the interval
  p.tick(ms(2000), false);
  p.prepared(ms(2001), 1, true);
  d.take();
  BOOST_TEST(p.acknowledged(ms(3500), ack(0, 1))); // overran: the next trigger starts at once
  BOOST_TEST(contains(d.take(), "prepare 2"));
}

BOOST_AUTO_TEST_CASE(once_runs_a_single_unlimited_batch) {
  recording_driver d;
  epoch_planner p{triggers::once(), 1, 1, false, d};
  p.start(ms(0), nullptr, -1);
  BOOST_TEST(contains(d.take(), "prepare 0 unlimited"));
  p.prepared(ms(1), 0, true);
  BOOST_TEST(p.acknowledged(ms(2), ack(0, 0)));
  auto l = d.take();
  BOOST_TEST(l.back() == "stop");
}

BOOST_AUTO_TEST_CASE(the_watermark_is_sparks_max_event_time_minus_delay_lowest_over_sources) {
  recording_driver d;
  epoch_planner p{triggers::available_now(), 2, 2, true, d};
  p.start(ms(0), nullptr, -1);
  p.prepared(ms(1), 0, true);
  p.prepared(ms(1), 0, true);
  d.take();
  BOOST_TEST(p.acknowledged(ms(2), source_ack(0, 0, /*node*/ 0, 10'000, 1'000)));
  BOOST_TEST(p.acknowledged(ms(2), source_ack(1, 0, /*node*/ 1, 50'000, 1'000)));
  BOOST_TEST((p.spark_watermark().value() == event_time{duration{9'000}}));
  p.prepared(ms(3), 1, true);
  p.prepared(ms(3), 1, true);
  // The engine's convention: one microsecond below Spark's watermark.
  BOOST_TEST(contains(d.take(), "run 1 wm 8999"));
  // It never goes back, even when a later batch holds older rows.
  BOOST_TEST(p.acknowledged(ms(4), source_ack(0, 1, 0, 5'000, 1'000)));
  BOOST_TEST(p.acknowledged(ms(4), source_ack(1, 1, 1, 5'000, 1'000)));
  BOOST_TEST((p.spark_watermark().value() == event_time{duration{9'000}}));
}

// Whether any operator waits for the watermark in the job's output mode (an aggregation
// not in complete mode; dedup, joins, keyed state in any) is the job's to say
// (runtime_options::has_event_time_state); the planner runs the no-data batch when it does.
BOOST_AUTO_TEST_CASE(a_moved_watermark_runs_a_batch_without_data_when_state_waits_for_it) {
  for (bool waits : {true, false}) {
    recording_driver d;
    epoch_planner p{triggers::available_now(), 1, 1, waits, d};
    p.start(ms(0), nullptr, -1);
    p.prepared(ms(1), 0, true);
    BOOST_TEST(p.acknowledged(ms(2), source_ack(0, 0, 0, 10'000, 1'000)));
    d.take();
    p.prepared(ms(3), 1, false); // no new data, but the watermark moved from none to 9 ms
    auto l = d.take();
    if (waits)
      BOOST_TEST(contains(l, "run 1 wm 8999"));
    else
      BOOST_TEST(contains(l, "stop"));
  }
}

BOOST_AUTO_TEST_CASE(cancel_lets_the_running_batch_complete_first) {
  recording_driver d;
  epoch_planner p{triggers::processing_time(1000ms), 1, 1, false, d};
  p.start(ms(0), nullptr, -1);
  p.prepared(ms(1), 0, true);
  d.take();
  p.cancel();
  BOOST_TEST(d.take().empty());
  BOOST_TEST(p.acknowledged(ms(2), ack(0, 0)));
  BOOST_TEST(d.take().back() == "stop");
}

BOOST_AUTO_TEST_CASE(a_restored_run_continues_the_epochs_and_watermarks_of_its_checkpoint) {
  recording_driver d;
  epoch_planner p{triggers::available_now(), 1, 1, true, d};
  checkpoint_meta m;
  m.id = 7;
  m.properties = {{"spark_watermark", "9000"}, {"last_run_watermark", "9000"},
                  {"source_max/0", "10000"}, {"source_delay/0", "1000"}};
  p.start(ms(0), &m, -1);
  BOOST_TEST(p.next_epoch() == 8);
  BOOST_TEST(contains(d.take(), "prepare 8"));
  BOOST_TEST((p.spark_watermark().value() == event_time{duration{9'000}}));
  std::map<std::string, std::string> saved;
  p.save(saved);
  BOOST_TEST(saved == m.properties);
  // A later first epoch (savepoints newer than the restored checkpoint) wins.
  recording_driver d2;
  epoch_planner q{triggers::continuous(100ms), 1, 1, false, d2};
  q.start(ms(0), &m, 12);
  q.tick(ms(100), false);
  BOOST_TEST(contains(d2.take(), "inject 12"));
}

BOOST_AUTO_TEST_SUITE_END()

namespace {

/// A fresh directory for the checkpoint coordinator's store.
struct store_dir {
  test::temp_dir dir;

  /// Opens the store in the directory.
  std::shared_ptr<checkpoint_store> open_store(checkpoint_store_options o = {}) {
    auto opened = checkpoint_store::open(dir.path, o);
    BOOST_REQUIRE(opened);
    return std::shared_ptr<checkpoint_store>{std::move(*opened)};
  }
};

/// The ids of the store's complete checkpoints.
std::vector<std::int64_t> complete_ids(checkpoint_store& store) {
  auto ids = store.complete_ids();
  BOOST_REQUIRE(ids);
  return *ids;
}

open_epoch acked_epoch(std::vector<epoch_report_ptr> reports, std::size_t tasks) {
  open_epoch e;
  e.triggered = e.started = ms(0);
  e.acked.assign(tasks, false);
  for (auto& r : reports)
    e.acked[static_cast<std::size_t>(r->task)] = true;
  e.reports = std::move(reports);
  return e;
}
epoch_report_ptr with_piece(std::shared_ptr<epoch_report> r, checkpoint_store& store, std::int64_t id,
                            const std::string& name) {
  auto stored = store.put(id, name, "bytes of " + name);
  BOOST_REQUIRE(stored);
  r->pieces.push_back(*stored);
  return r;
}

} // namespace

BOOST_FIXTURE_TEST_SUITE(checkpoint_coordination, store_dir)

BOOST_AUTO_TEST_CASE(due_follows_the_interval_and_min_pause_one_at_a_time) {
  checkpoint_options o;
  o.interval = 1000ms;
  o.min_pause = 300ms;
  checkpoint_coordinator c{open_store(), o, "job", 128};
  BOOST_TEST(c.due(ms(0)));
  c.begin(0, ms(0));
  BOOST_TEST(!c.due(ms(5000))); // one in flight
  auto out = c.epoch_ended(0, acked_epoch({ack(0, 0, true)}, 1), {}, {}, false, ms(900));
  BOOST_REQUIRE(out.completed);
  BOOST_TEST(!c.due(ms(999)));  // the interval counts from the start
  BOOST_TEST(!c.due(ms(1100))); // the pause counts from the end (900 + 300)
  BOOST_TEST(c.due(ms(1200)));
}

BOOST_AUTO_TEST_CASE(without_a_store_nothing_is_ever_due) {
  checkpoint_coordinator c{nullptr, checkpoint_options{}, "job", 128};
  BOOST_TEST(!c.enabled());
  BOOST_TEST(!c.due(ms(100'000)));
}

BOOST_AUTO_TEST_CASE(a_complete_checkpoint_lists_every_piece_and_carries_finished_sources) {
  auto store = open_store();
  checkpoint_coordinator c{store, checkpoint_options{}, "job", 128};
  c.begin(3, ms(0));
  auto e = acked_epoch({with_piece(ack(0, 3, true), *store, 3, "sum/kg-0"),
                        with_piece(ack(1, 3, true), *store, 3, "sum/kg-1")},
                       3);
  final_positions finals{{2, {"source/numbers/0", "end"}}};
  auto out = c.epoch_ended(3, e, finals, {{"query_id", "q"}}, false, ms(40));
  BOOST_REQUIRE(out.completed);
  BOOST_TEST(out.completed->id == 3);
  BOOST_TEST((out.completed->duration == std::chrono::microseconds{40'000}));
  std::vector<std::string> skipped;
  auto latest = store->latest(skipped);
  BOOST_REQUIRE(latest);
  BOOST_REQUIRE(*latest);
  BOOST_TEST((*latest)->id == 3);
  BOOST_TEST((*latest)->pieces.size() == 3u);
  BOOST_TEST((*latest)->properties.at("query_id") == "q");
  auto pos = store->get(**latest, "source/numbers/0");
  BOOST_REQUIRE(pos);
  BOOST_TEST(*pos == "end");
  BOOST_TEST(c.completed() == 1);
  BOOST_TEST(!c.in_flight());
}

BOOST_AUTO_TEST_CASE(an_epoch_whose_barrier_was_no_checkpoint_writes_nothing) {
  auto store = open_store();
  checkpoint_coordinator c{store, checkpoint_options{}, "job", 128};
  auto out = c.epoch_ended(4, acked_epoch({ack(0, 4)}, 1), {}, {}, false, ms(1));
  BOOST_TEST(!out.completed);
  BOOST_TEST(!out.failed);
  BOOST_TEST(complete_ids(*store).empty());
}

BOOST_AUTO_TEST_CASE(a_declined_checkpoint_fails_and_failures_in_a_row_fail_the_job) {
  checkpoint_options o;
  o.tolerable_failures = 1;
  checkpoint_coordinator c{open_store(), o, "job", 128};
  auto declined = ack(0, 1, true);
  declined->checkpoint_problem = "disk full";
  c.begin(1, ms(0));
  auto out = c.epoch_ended(1, acked_epoch({declined}, 1), {}, {}, false, ms(1));
  BOOST_REQUIRE(out.failed);
  BOOST_TEST(out.failed->why == "disk full");
  BOOST_TEST(!c.in_flight());
  BOOST_TEST(!c.count_failure(*out.failed)); // one is tolerated
  auto fatal = c.count_failure(checkpoint_failure{2, "disk still full"});
  BOOST_REQUIRE(fatal);
  BOOST_TEST((fatal->code == error_code::checkpoint_failed));
  BOOST_TEST(fatal->message.find("2 checkpoint failures in a row") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(a_checkpoint_with_a_task_that_did_not_snapshot_never_completes) {
  auto store = open_store();
  checkpoint_options o;
  o.tolerable_failures = 5;
  checkpoint_coordinator c{store, o, "job", 128};
  c.begin(6, ms(0));
  // Task 1's barrier was no checkpoint's: completing would leave its pieces out.
  auto out = c.epoch_ended(6, acked_epoch({ack(0, 6, true), ack(1, 6, false)}, 2), {}, {},
                           false, ms(1));
  BOOST_TEST(!out.completed);
  BOOST_REQUIRE(out.failed);
  BOOST_TEST(out.failed->why.find("task 1 ended the epoch without a snapshot") != std::string::npos);
  BOOST_TEST(complete_ids(*store).empty());
}

BOOST_AUTO_TEST_CASE(several_checkpoints_in_flight_expire_oldest_first) {
  checkpoint_options o;
  o.timeout = 100ms;
  checkpoint_coordinator c{open_store(), o, "job", 128};
  c.begin(1, ms(0));
  c.begin(2, ms(50)); // a source's final barrier while 1 is in flight
  BOOST_TEST(!c.due(ms(10'000)));
  BOOST_TEST(c.expire(ms(100))->id == 1);
  BOOST_TEST(!c.expire(ms(120)));
  BOOST_TEST(c.expire(ms(150))->id == 2);
  BOOST_TEST(!c.in_flight());
}

BOOST_AUTO_TEST_CASE(an_expired_checkpoint_is_given_up_and_its_late_epoch_ignored) {
  checkpoint_options o;
  o.timeout = 500ms;
  checkpoint_coordinator c{open_store(), o, "job", 128};
  c.begin(5, ms(0));
  BOOST_TEST(!c.expire(ms(499)));
  auto expired = c.expire(ms(500));
  BOOST_REQUIRE(expired);
  BOOST_TEST(expired->id == 5);
  BOOST_TEST(!c.in_flight());
  auto out = c.epoch_ended(5, acked_epoch({ack(0, 5, true)}, 1), {}, {}, false, ms(600));
  BOOST_TEST(!out.completed);
  BOOST_TEST(!out.failed);
}

BOOST_AUTO_TEST_CASE(a_savepoint_is_marked_so_retention_keeps_it) {
  auto store = open_store({.retained = 1});
  checkpoint_options o;
  o.retained = 1;
  checkpoint_coordinator c{store, o, "job", 128};
  BOOST_REQUIRE(c.epoch_ended(1, acked_epoch({ack(0, 1, true)}, 1), {}, {}, true, ms(1)).completed);
  BOOST_REQUIRE(c.epoch_ended(2, acked_epoch({ack(0, 2, true)}, 1), {}, {}, false, ms(2)).completed);
  BOOST_REQUIRE(c.epoch_ended(3, acked_epoch({ack(0, 3, true)}, 1), {}, {}, false, ms(3)).completed);
  BOOST_TEST(complete_ids(*store) == (std::vector<std::int64_t>{1, 3}),
             boost::test_tools::per_element());
}

BOOST_AUTO_TEST_SUITE_END()

// -- progress building --------------------------------------------------------------------

BOOST_AUTO_TEST_SUITE(progress_building)

namespace {
/// A blueprint of numbers -> double (one chain, two instances: tasks 0 and 1) -> out (one
/// instance: task 2), with a manual clock.
struct small_job {
  std::shared_ptr<manual_clock> clock = std::make_shared<manual_clock>();
  blueprint bp;
  explicit small_job(std::chrono::milliseconds interval) {
    job j{{.name = "small", .parallelism = 2}};
    j.from(sources::collection<int>{{1, 2, 3}})
      .name("numbers")
      .map([](int x) { return 2 * x; })
      .name("double")
      .sink_to(sinks::for_each<int>([](const int&) {}))
      .name("out")
      .parallelism(1); // its own task, which is not a source
    auto plan = j.plan();
    BOOST_REQUIRE(plan);
    bp.logical = j.graph();
    bp.plan = *plan;
    bp.tasks = wire(bp.plan);
    bp.options.query_name = "small";
    bp.options.progress_interval = interval;
    bp.metrics = std::make_unique<task_metrics[]>(bp.tasks.size());
    for (std::size_t i = 0; i < bp.tasks.size(); ++i) {
      auto& m = bp.metrics[i];
      m.node_count = bp.plan.chains[static_cast<std::size_t>(bp.tasks[i].chain)].nodes.size();
      m.nodes = std::make_unique<node_metrics[]>(m.node_count);
    }
  }
};

epoch_report_ptr source_rows(int task, std::int64_t epoch, int node, std::uint64_t rows,
                             std::string start, std::string end) {
  auto r = std::make_shared<epoch_report>();
  r->task = task;
  r->epoch = epoch;
  source_epoch_report s;
  s.node = node;
  s.name = "numbers";
  s.description = "collection";
  s.rows = rows;
  s.start_offset = std::move(start);
  s.end_offset = std::move(end);
  r->sources.push_back(s);
  return r;
}
} // namespace

BOOST_AUTO_TEST_CASE(an_epochs_report_sums_its_sources_and_keys_offsets_by_instance) {
  small_job j{0ms};
  progress_builder b{j.bp, j.clock, true};
  open_epoch e;
  e.triggered = e.started = j.clock->now();
  e.acked.assign(j.bp.tasks.size(), true);
  // Acks in any order: offsets come out keyed by instance, in instance order.
  e.reports = {source_rows(1, 4, 0, 30, "{\"records\": 10}", "{\"records\": 40}"),
               source_rows(0, 4, 0, 20, "{\"records\": 0}", "{\"records\": 20}")};
  j.clock->advance(2s);
  auto p = b.epoch_progress(4, e, query_ids{"q", "r"});
  BOOST_TEST(p.batch_id == 4);
  BOOST_TEST(p.id == "q");
  BOOST_TEST(p.run_id == "r");
  BOOST_TEST(p.num_input_rows == 50u);
  BOOST_REQUIRE(p.sources.size() == 1u);
  BOOST_TEST(p.sources[0].start_offset == "{\"0\": {\"records\": 0}, \"1\": {\"records\": 10}}");
  BOOST_TEST(p.sources[0].end_offset == "{\"0\": {\"records\": 20}, \"1\": {\"records\": 40}}");
  BOOST_TEST(p.processed_rows_per_second == 25.0);
  BOOST_TEST(p.duration_ms.at("triggerExecution") == 2000);
}

BOOST_AUTO_TEST_CASE(micro_batch_reports_are_handed_back_at_once) {
  small_job j{10'000ms};
  progress_builder b{j.bp, j.clock, true};
  query_progress p;
  p.batch_id = 1;
  auto ready = b.offer(p);
  BOOST_REQUIRE(ready);
  BOOST_TEST(!ready->interval);
  BOOST_TEST(ready->report.batch_id == 1);
  BOOST_TEST(ready->report.operators.size() == 3u); // numbers, double, out
}

BOOST_AUTO_TEST_CASE(continuous_reports_fold_the_epochs_of_an_interval) {
  small_job j{1000ms};
  progress_builder b{j.bp, j.clock, false};
  query_progress p;
  p.num_input_rows = 100;
  j.clock->advance(400ms);
  BOOST_TEST(!b.offer(p)); // the interval is not over
  j.clock->advance(700ms);
  p.num_input_rows = 120;
  auto ready = b.offer(p);
  BOOST_REQUIRE(ready);
  BOOST_TEST(ready->interval);
  BOOST_TEST(ready->report.num_input_rows == 220u);
  // Rates over the whole interval (1.1 s), not one epoch.
  BOOST_TEST(ready->report.input_rows_per_second == 200.0, boost::test_tools::tolerance(1e-9));
  // The job's end flushes what the interval holds so far.
  p.num_input_rows = 5;
  BOOST_TEST(!b.offer(p));
  auto last = b.offer(std::nullopt, true);
  BOOST_REQUIRE(last);
  BOOST_TEST(last->report.num_input_rows == 5u);
}

BOOST_AUTO_TEST_CASE(the_next_report_names_the_newest_completed_checkpoint_once) {
  small_job j{0ms};
  progress_builder b{j.bp, j.clock, true};
  b.checkpoint_completed(checkpoint_progress{9, 12, 3456});
  auto first = b.offer(query_progress{});
  BOOST_REQUIRE(first);
  BOOST_REQUIRE(first->report.checkpoint);
  BOOST_TEST(first->report.checkpoint->id == 9);
  auto second = b.offer(query_progress{});
  BOOST_REQUIRE(second);
  BOOST_TEST(!second->report.checkpoint);
}

BOOST_AUTO_TEST_CASE(the_continuous_watermark_is_the_lowest_source_watermark_in_sparks_convention) {
  small_job j{0ms};
  progress_builder b{j.bp, j.clock, false};
  BOOST_TEST(!b.continuous_watermark()); // no source has a watermark yet
  // Tasks 0 and 1 are the source chain's instances, task 2 is the sink.
  BOOST_REQUIRE_EQUAL(j.bp.tasks.size(), 3u);
  BOOST_REQUIRE(!j.bp.plan.chains[static_cast<std::size_t>(j.bp.tasks[2].chain)].is_source);
  j.bp.metrics[0].watermark.store(5'000);
  j.bp.metrics[1].watermark.store(7'000);
  j.bp.metrics[2].watermark.store(1); // not a source: does not count
  BOOST_TEST((b.continuous_watermark().value() == event_time{duration{5'001}}));
}

BOOST_AUTO_TEST_SUITE_END()

// -- exact replay of micro-batches ---------------------------------------------------------

#include "sluice/actors/trigger_plans.hpp"

BOOST_AUTO_TEST_SUITE(trigger_planning)

BOOST_AUTO_TEST_CASE(a_logged_plan_is_replayed_task_by_task_and_never_logged_again) {
  test::temp_dir dir;
  std::vector<trigger_plans::source_task> sources{{"files", 0, 2}, {"files", 1, 2}, {"socket", 0, 1}};
  {
    trigger_plans first{offset_log{dir.path}, sources};
    auto steps = first.begin(5);
    BOOST_REQUIRE(steps);
    BOOST_TEST(!first.replaying());
    BOOST_TEST(((*steps)[0].what == trigger_plans::step::plan));
    first.planned(0, "[\"a\"]");
    first.planned(1, "[\"b\"]");
    first.planned(2, ""); // a socket cannot replay
    BOOST_REQUIRE(first.log());
  }
  trigger_plans again{offset_log{dir.path}, sources};
  auto steps = again.begin(5);
  BOOST_REQUIRE(steps);
  BOOST_TEST(again.replaying());
  BOOST_TEST(((*steps)[0].what == trigger_plans::step::replay));
  BOOST_TEST((*steps)[0].end == "[\"a\"]");
  BOOST_TEST((*steps)[1].end == "[\"b\"]");
  BOOST_TEST(((*steps)[2].what == trigger_plans::step::plan)); // planned afresh
  again.planned(0, "[\"other\"]");  // ignored while replaying
  BOOST_REQUIRE(again.log());
  auto logged = offset_log{dir.path}.read(5);
  BOOST_REQUIRE(logged);
  BOOST_TEST((*logged)->ends.at("files/0") == "[\"a\"]");
  // The next batch has no plan yet.
  auto next = again.begin(6);
  BOOST_REQUIRE(next);
  BOOST_TEST(!again.replaying());
}

BOOST_AUTO_TEST_CASE(a_plan_made_at_another_parallelism_goes_merged_to_every_new_instance) {
  test::temp_dir dir;
  {
    trigger_plans first{offset_log{dir.path}, {{"files", 0, 2}, {"files", 1, 2}, {"socket", 0, 1}}};
    BOOST_REQUIRE(first.begin(3));
    first.planned(0, "[\"a\"]");
    first.planned(1, "[\"b\"]");
    first.planned(2, ""); // a socket cannot replay
    BOOST_REQUIRE(first.log());
  }
  // Both sources changed parallelism; only the one with logged ends replays.
  trigger_plans again{offset_log{dir.path},
                      {{"files", 0, 3}, {"files", 1, 3}, {"files", 2, 3}, {"socket", 0, 2}, {"socket", 1, 2}}};
  auto steps = again.begin(3);
  BOOST_REQUIRE(steps);
  BOOST_TEST(again.replaying());
  for (std::size_t i = 0; i < 3; ++i) {
    BOOST_TEST(((*steps)[i].what == trigger_plans::step::replay_merged));
    auto merged = trigger_plans::merged_plan::decode((*steps)[i].end);
    BOOST_REQUIRE(merged);
    BOOST_TEST(merged->node == "files");
    BOOST_TEST(merged->parallelism == 2);
    BOOST_TEST(merged->ends == (std::vector<std::string>{"[\"a\"]", "[\"b\"]"}),
               boost::test_tools::per_element());
    auto refusal = merged->cannot_replay_at(3).message;
    BOOST_TEST(refusal.find("source 'files' at parallelism 2") != std::string::npos, refusal);
    BOOST_TEST(refusal.find((dir.path / "offsets" / "3").string()) != std::string::npos, refusal);
  }
  BOOST_TEST(((*steps)[3].what == trigger_plans::step::plan));
  BOOST_TEST(((*steps)[4].what == trigger_plans::step::plan));
  BOOST_TEST(!trigger_plans::merged_plan::decode("{\"batch\": 1}").has_value());
}

BOOST_AUTO_TEST_CASE(without_a_log_nothing_is_replayed_or_written) {
  trigger_plans none{std::nullopt, {{"gen", 0, 1}}};
  auto steps = none.begin(0);
  BOOST_REQUIRE(steps);
  BOOST_TEST(((*steps)[0].what == trigger_plans::step::plan));
  none.planned(0, "100");
  BOOST_TEST(none.log().has_value());
}

BOOST_AUTO_TEST_CASE(completed_batches_keep_the_last_hundred_plans) {
  test::temp_dir dir;
  trigger_plans plans{offset_log{dir.path}, {{"gen", 0, 1}}};
  for (std::int64_t b = 0; b < 105; ++b) {
    BOOST_REQUIRE(plans.begin(b));
    plans.planned(0, std::to_string(b));
    BOOST_REQUIRE(plans.log());
  }
  BOOST_REQUIRE(plans.completed(104));
  offset_log log{dir.path};
  BOOST_TEST(!*log.read(4));
  BOOST_TEST(log.read(5)->has_value());
  BOOST_TEST(log.read(104)->has_value());
}

BOOST_AUTO_TEST_SUITE_END()
