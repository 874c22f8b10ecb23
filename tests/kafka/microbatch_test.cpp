// The Kafka source under micro-batch triggers (issue 23, defect 10), on librdkafka's mock
// cluster: each trigger reads up to end offsets fixed when it is planned (Spark's
// KafkaMicroBatchStream), available_now ends at the offsets there at its start,
// processing_time runs no batch without new offsets, max_offsets_per_trigger splits a
// backlog by Spark's rule, and a planned batch is read again exactly after a restart.
//
// Messages that "arrive while the query runs" are produced by the job itself (from a map
// or a foreach_batch function, acknowledged before it returns), so they are in the topic at
// a known step of the query: nothing here waits for time to pass.
#include <boost/test/unit_test.hpp>

#include "sluice/tests/kafka/kafka_helpers.hpp"
#include "sluice/tests/microbatch/microbatch_helpers.hpp"

#include "sluice/api/job.hpp"
#include "sluice/sinks/callback.hpp"
#include "sluice/sinks/foreach_batch.hpp"
#include "sluice/sources/kafka.hpp"
#include "sluice/sources/kafka_plan.hpp"
#include "sluice/tools/kafka_mock/mock_cluster.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <map>
#include <memory>
#include <mutex>
#include <stdexcept>

using namespace sluice;
using namespace sluice::test;
using namespace sluice::test::kafka_tests;
using namespace std::chrono_literals;
namespace fs = std::filesystem;

namespace {

sources::kafka_source_options stream_source(const std::string& bootstrap) {
  sources::kafka_source_options o;
  o.bootstrap_servers = bootstrap;
  o.topics = {"in"};
  o.connect_timeout = 5s;
  return o;
}

std::vector<std::int64_t> ids_of(const std::vector<reading>& rows) {
  std::vector<std::int64_t> ids;
  for (auto& r : rows)
    ids.push_back(r.id);
  std::sort(ids.begin(), ids.end());
  return ids;
}

std::vector<std::int64_t> id_range(std::int64_t from, std::int64_t to) {
  std::vector<std::int64_t> v;
  for (auto i = from; i < to; ++i)
    v.push_back(i);
  return v;
}

/// Produces readings with ids from `next` on into topic "in" (id % 2 picks the partition),
/// from inside a job. Errors are kept for the test thread (Boost.Test is not thread-safe).
class late_producer {
public:
  late_producer(std::string bootstrap, std::int64_t first_id)
    : bootstrap_(std::move(bootstrap)), next_(first_id) {}

  /// Writes `n` readings and waits until the broker acknowledged them.
  void produce(int n) {
    std::lock_guard guard{m_};
    if (!p_) {
      auto p = kafka::producer::open({.bootstrap_servers = bootstrap_, .label = "late producer"});
      if (!p) {
        error_ = p.error().to_string();
        return;
      }
      p_.emplace(std::move(*p));
    }
    for (int i = 0; i < n; ++i, ++next_) {
      auto ok = p_->produce("in", static_cast<int>(next_ % 2), std::nullopt,
                            codec::to_json_line(make_reading(next_)));
      if (!ok)
        error_ = ok.error().to_string();
    }
    if (auto ok = p_->flush(30s); !ok)
      error_ = ok.error().to_string();
    produced_ += n;
  }
  int produced() const {
    std::lock_guard guard{m_};
    return produced_;
  }
  std::string error() const {
    std::lock_guard guard{m_};
    return error_;
  }

private:
  mutable std::mutex m_;
  std::string bootstrap_;
  std::int64_t next_;
  std::optional<kafka::producer> p_;
  int produced_ = 0;
  std::string error_;
};

/// What a foreach_batch function saw, per batch id.
template <class T>
class seen_batches {
public:
  void add(std::int64_t id, const std::vector<T>& rows) {
    std::lock_guard guard{m_};
    auto& b = batches_[id];
    b.insert(b.end(), rows.begin(), rows.end());
  }
  std::map<std::int64_t, std::vector<T>> take() const {
    std::lock_guard guard{m_};
    return batches_;
  }

private:
  mutable std::mutex m_;
  std::map<std::int64_t, std::vector<T>> batches_;
};

/// Runs a started micro-batch job to its end; a job that does not end within `limit` (an
/// available_now query that never stops) is cancelled and fails the test.
result<job_result> finish_within(std::unique_ptr<job_execution> exec, std::chrono::seconds limit,
                                 const std::string& what) {
  if (!exec->wait_for(limit)) {
    const auto batches = exec->recent_progress().size();
    exec->cancel();
    permit_unchecked(exec->wait());
    BOOST_FAIL(what << " did not end within " << limit.count() << " s (" << batches
                    << " micro-batches ran)");
  }
  return exec->wait();
}

std::string at(const kafka::record<reading>& r) {
  return "p" + std::to_string(r.partition) + "@" + std::to_string(r.offset);
}

/// "p<partition>@<offset>" for offsets [from, to) of a partition.
std::vector<std::string> offsets_of(int partition, std::int64_t from, std::int64_t to) {
  std::vector<std::string> out;
  for (auto o = from; o < to; ++o)
    out.push_back("p" + std::to_string(partition) + "@" + std::to_string(o));
  return out;
}

} // namespace

// -- jobs ------------------------------------------------------------------------------------

BOOST_AUTO_TEST_SUITE(kafka_microbatch)

BOOST_AUTO_TEST_CASE(available_now_reads_what_was_there_at_start_and_ends) {
  mock_fixture m;
  must(m.cluster.create_topic("in", 2));
  produce_all(m.bootstrap, "in", json_readings(0, 100), [](std::size_t i) { return int(i % 2); });
  // More messages keep arriving while the query runs: 10 as soon as the source's chain sees
  // its first record (batch 0 is being read), 10 more after every batch.
  auto more = std::make_shared<late_producer>(m.bootstrap, 1000);
  auto started = std::make_shared<std::once_flag>();
  auto seen = std::make_shared<seen_batches<reading>>();
  job_options o;
  o.name = "kafka-available-now";
  o.trigger = triggers::available_now();
  o.output_mode = output_mode::append;
  job j{o};
  j.from(sources::kafka<reading>{stream_source(m.bootstrap)})
    .name("in")
    .map([more, started](const reading& r) {
      std::call_once(*started, [&] { more->produce(10); });
      return r;
    })
    .name("relay")
    .sink_to(sinks::foreach_batch<reading>([seen, more](std::int64_t id, std::vector<reading>& rows) {
      seen->add(id, rows);
      more->produce(10);
    }))
    .name("each-batch");
  auto done = finish_within(require_ok(j.start()), 30s, "available_now over a growing topic");
  require_ok(std::move(done));
  BOOST_TEST(more->error().empty(), more->error());
  BOOST_TEST(more->produced() >= 20, "messages arrived while the query ran");
  std::vector<reading> all;
  for (auto& [id, rows] : seen->take())
    all.insert(all.end(), rows.begin(), rows.end());
  BOOST_TEST(ids_of(all) == id_range(0, 100), boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(processing_time_runs_no_batch_and_writes_no_checkpoint_without_new_offsets) {
  mock_fixture m;
  must(m.cluster.create_topic("in", 2));
  produce_all(m.bootstrap, "in", json_readings(0, 10), [](std::size_t i) { return int(i % 2); });
  temp_dir dir;
  auto clk = std::make_shared<manual_clock>();
  mb::trigger_probe probe;
  auto seen = std::make_shared<seen_batches<reading>>();
  job_options o;
  o.name = "kafka-processing-time";
  o.trigger = triggers::processing_time(10s);
  o.output_mode = output_mode::append;
  o.runtime.processing_clock = clk;
  o.checkpoints.dir = dir.path;
  job j{o};
  j.from(sources::kafka<reading>{stream_source(m.bootstrap)})
    .name("in")
    .sink_to(sinks::foreach_batch<reading>(
      [seen](std::int64_t id, std::vector<reading>& rows) { seen->add(id, rows); }))
    .name("each-batch");
  // The probe counts the triggers: once it saw trigger n + 1, trigger n is decided.
  j.from(probe).name("probe").sink_to(sinks::for_each<int>([](int) {}));
  auto exec = require_ok(j.start());
  mb::trigger_stepper triggers{*exec, *clk, probe, 10s}; // one trigger per step
  auto step = [&] { triggers.step(); };
  auto checkpoint_ids = [&] {
    std::vector<std::int64_t> ids;
    for (auto& c : exec->snapshot().checkpoints)
      ids.push_back(c.id);
    return ids;
  };

  // t = 0: batch 0 reads the 10 records. t = 10, 20, 30: no new offsets, no batch.
  for (int i = 0; i < 3; ++i)
    step();
  BOOST_REQUIRE(wait_until(*exec, [&] { return exec->snapshot().checkpoints_completed >= 1; }));
  auto ps = exec->recent_progress();
  BOOST_TEST(mb::ids_of(ps) == (std::vector<std::int64_t>{0}), boost::test_tools::per_element());
  BOOST_TEST(mb::input_rows_of(ps) == (std::vector<std::uint64_t>{10}),
             boost::test_tools::per_element());
  const auto first = checkpoint_ids();
  BOOST_TEST(first.size() == 1u, "one checkpoint for one batch, none for the idle triggers");

  // Five new messages: exactly one batch (and checkpoint) with them, then quiet again.
  produce_all(m.bootstrap, "in", json_readings(10, 15), [](std::size_t i) { return int(i % 2); });
  for (int i = 0; i < 4; ++i)
    step();
  BOOST_REQUIRE(wait_until(*exec, [&] { return exec->snapshot().checkpoints_completed >= 2; }));
  ps = exec->recent_progress();
  BOOST_TEST(mb::ids_of(ps) == (std::vector<std::int64_t>{0, 1}), boost::test_tools::per_element());
  BOOST_TEST(mb::input_rows_of(ps) == (std::vector<std::uint64_t>{10, 5}),
             boost::test_tools::per_element());
  BOOST_TEST(checkpoint_ids().size() == 2u);
  exec->cancel();
  auto done = require_ok(exec->wait());
  BOOST_TEST(done.checkpoints_completed == 2);
  auto batches = seen->take();
  BOOST_REQUIRE_EQUAL(batches.size(), 2u);
  BOOST_TEST(ids_of(batches[0]) == id_range(0, 10), boost::test_tools::per_element());
  BOOST_TEST(ids_of(batches[1]) == id_range(10, 15), boost::test_tools::per_element());
}

namespace {

/// Partition 0 holds 10 records, partition 1 20, partition 2 30 (60 in all).
void write_backlog(const std::string& bootstrap) {
  produce_all(bootstrap, "in", json_readings(0, 60),
              [](std::size_t i) { return i < 10 ? 0 : i < 30 ? 1 : 2; });
}

/// Reads the backlog under `trigger` with `max_offsets_per_trigger = cap`; each batch's
/// records as "p<partition>@<offset>", sorted.
std::vector<std::vector<std::string>> batches_of(const std::string& bootstrap, trigger when,
                                                 std::int64_t cap, int parallelism = 1) {
  auto seen = std::make_shared<seen_batches<kafka::record<reading>>>();
  job_options o;
  o.name = "kafka-capped";
  o.parallelism = parallelism;
  o.trigger = when;
  o.output_mode = output_mode::append;
  job j{o};
  auto opts = stream_source(bootstrap);
  opts.max_offsets_per_trigger = cap;
  j.from(sources::kafka<kafka::record<reading>>{opts})
    .name("in")
    .sink_to(sinks::foreach_batch<kafka::record<reading>>(
      [seen](std::int64_t id, std::vector<kafka::record<reading>>& rows) { seen->add(id, rows); }))
    .name("each-batch");
  require_ok(finish_within(require_ok(j.start()), 60s, when.describe()));
  std::vector<std::vector<std::string>> out;
  for (auto& [id, rows] : seen->take()) {
    std::vector<std::string> b;
    for (auto& r : rows)
      b.push_back(at(r));
    std::sort(b.begin(), b.end());
    out.push_back(std::move(b));
  }
  return out;
}

std::vector<std::string> concat(std::initializer_list<std::vector<std::string>> parts) {
  std::vector<std::string> out;
  for (auto& p : parts)
    out.insert(out.end(), p.begin(), p.end());
  std::sort(out.begin(), out.end());
  return out;
}

} // namespace

BOOST_AUTO_TEST_CASE(max_offsets_per_trigger_splits_a_backlog_as_spark_does) {
  mock_fixture m;
  must(m.cluster.create_topic("in", 3));
  write_backlog(m.bootstrap);
  // Spark's rateLimit with maxOffsetsPerTrigger 25 over lags 10/20/30: 25 * lag / total,
  // rounded down: 4/8/12; then over 6/12/18 again 4/8/12; then the rest, 2/4/6.
  auto batches = batches_of(m.bootstrap, triggers::available_now(), 25);
  BOOST_REQUIRE_EQUAL(batches.size(), 3u);
  BOOST_TEST(batches[0] == concat({offsets_of(0, 0, 4), offsets_of(1, 0, 8), offsets_of(2, 0, 12)}),
             boost::test_tools::per_element());
  BOOST_TEST(batches[1] == concat({offsets_of(0, 4, 8), offsets_of(1, 8, 16), offsets_of(2, 12, 24)}),
             boost::test_tools::per_element());
  BOOST_TEST(batches[2] ==
               concat({offsets_of(0, 8, 10), offsets_of(1, 16, 20), offsets_of(2, 24, 30)}),
             boost::test_tools::per_element());

  // Trigger.Once reads all that is available, whatever the limit.
  auto once = batches_of(m.bootstrap, triggers::once(), 25);
  BOOST_REQUIRE_EQUAL(once.size(), 1u);
  BOOST_TEST(once[0].size() == 60u);

  // Two instances share the limit (13 + 12): no batch is larger, every record is read once.
  auto two = batches_of(m.bootstrap, triggers::available_now(), 25, 2);
  BOOST_TEST(two.size() >= 3u);
  std::vector<std::string> all;
  for (auto& b : two) {
    BOOST_TEST(b.size() <= 25u);
    all.insert(all.end(), b.begin(), b.end());
  }
  std::sort(all.begin(), all.end());
  BOOST_TEST(all == concat({offsets_of(0, 0, 10), offsets_of(1, 0, 20), offsets_of(2, 0, 30)}),
             boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(max_offsets_per_trigger_must_be_positive) {
  for (std::int64_t bad : {0, -5}) {
    auto opts = stream_source("127.0.0.1:1");
    opts.max_offsets_per_trigger = bad;
    auto r = sources::kafka<reading>{opts}.validate();
    BOOST_REQUIRE(!r);
    BOOST_TEST(r.error().message.find("max_offsets_per_trigger must be positive (got " +
                                      std::to_string(bad) + ")") != std::string::npos,
               r.error().message);
    job j{{.name = "kafka-bad-cap", .trigger = triggers::available_now()}};
    j.from(sources::kafka<reading>{opts}).name("in").sink_to(sinks::for_each<reading>([](const reading&) {}));
    auto run = j.run();
    BOOST_REQUIRE(!run);
    BOOST_TEST(run.error().message.find("max_offsets_per_trigger") != std::string::npos,
               run.error().message);
  }
}

namespace {

/// available_now over topic "in" with `max_offsets_per_trigger = cap` into a foreach_batch
/// function that records each batch and throws in batch `fail_in` (-1: never).
result<job_result> run_replayable(const std::string& bootstrap, const fs::path& ckpt,
                                  std::int64_t cap, std::int64_t fail_in,
                                  seen_batches<reading>& out) {
  job j{mb::replay_options("kafka-replay", ckpt)};
  auto opts = stream_source(bootstrap);
  opts.max_offsets_per_trigger = cap;
  auto* sink_out = &out;
  j.from(sources::kafka<reading>{opts})
    .name("in")
    .sink_to(sinks::foreach_batch<reading>(
      [sink_out, fail_in](std::int64_t id, std::vector<reading>& rows) {
        sink_out->add(id, rows);
        if (id == fail_in)
          throw std::runtime_error("the batch function failed");
      }))
    .name("each-batch");
  return finish_within(require_ok(j.start()), 60s, "available_now with a restart");
}

} // namespace

BOOST_AUTO_TEST_CASE(a_batch_that_ran_but_did_not_complete_reads_the_same_offsets_again) {
  mock_fixture m;
  must(m.cluster.create_topic("in", 2));
  produce_all(m.bootstrap, "in", json_readings(0, 40), [](std::size_t i) { return int(i % 2); });
  temp_dir dir;
  seen_batches<reading> first, second;
  // Run 1: 10 offsets per batch (5 per partition); batch 2 fails after its function saw
  // ids 20..29.
  auto failed = run_replayable(m.bootstrap, dir.path, 10, 2, first);
  BOOST_REQUIRE(!failed.has_value());
  BOOST_TEST(failed.error().message.find("the batch function failed") != std::string::npos,
             failed.error().message);
  auto seen1 = first.take();
  BOOST_REQUIRE(seen1.count(2));
  BOOST_TEST(ids_of(seen1[2]) == id_range(20, 30), boost::test_tools::per_element());
  // 20 more arrive before the restart, and the restart has another limit: planned afresh,
  // batch 2 would read 25 offsets. The offset log makes it read exactly ids 20..29 again.
  produce_all(m.bootstrap, "in", json_readings(40, 60), [](std::size_t i) { return int(i % 2); });
  auto done = require_ok(run_replayable(m.bootstrap, dir.path, 25, -1, second));
  BOOST_TEST(done.restored_from.value() == 1);
  auto seen2 = second.take();
  BOOST_REQUIRE(seen2.count(2));
  BOOST_TEST(ids_of(seen2[2]) == ids_of(seen1[2]), boost::test_tools::per_element());
  // Later batches are planned afresh, with the new limit, up to the offsets there at the
  // restarted query's first plan: 30 left, 12 + 12, then 3 + 3.
  std::vector<std::size_t> sizes;
  for (auto& [id, rows] : seen2)
    sizes.push_back(rows.size());
  BOOST_TEST(sizes == (std::vector<std::size_t>{10, 24, 6}), boost::test_tools::per_element());
  std::vector<reading> all = seen1[0];
  all.insert(all.end(), seen1[1].begin(), seen1[1].end());
  for (auto& [id, rows] : seen2)
    all.insert(all.end(), rows.begin(), rows.end());
  BOOST_TEST(ids_of(all) == id_range(0, 60), boost::test_tools::per_element());
}

BOOST_AUTO_TEST_SUITE_END()

// -- one source instance, driven as the runtime drives it ------------------------------------

BOOST_AUTO_TEST_SUITE(kafka_trigger_plans)

namespace {

/// One source instance opened under a micro-batch trigger.
struct trigger_reader {
  std::shared_ptr<manual_clock> clock = std::make_shared<manual_clock>();
  std::unique_ptr<source<reading>> src;

  explicit trigger_reader(sources::kafka_source_options o,
                          trigger when = triggers::processing_time(1s), int instance = 0,
                          int parallelism = 1) {
    src = sources::kafka<reading>{std::move(o)}.create({});
    must(src->open(source_context{"in", instance, parallelism, clock, when}));
  }
  /// Polls until the trigger's records are read (the source says `idle` or `end`); returns
  /// them and that last state. Bounded by a real-time deadline: data travels over loopback.
  std::pair<std::vector<reading>, poll_result::status> read_trigger() {
    std::vector<reading> got;
    const auto deadline = std::chrono::steady_clock::now() + 30s;
    for (;;) {
      BOOST_REQUIRE_MESSAGE(std::chrono::steady_clock::now() < deadline,
                            "the trigger did not end; " << got.size() << " records read");
      batch_ptr recs, dead;
      auto r = must(src->poll_batches(7, recs, dead));
      if (recs)
        for (auto& x : records_of<reading>(*recs))
          got.push_back(x);
      if (r.state != poll_result::status::more)
        return {got, r.state};
    }
  }
};

} // namespace

BOOST_AUTO_TEST_CASE(a_replayed_plan_reads_the_same_records_although_more_arrived) {
  mock_fixture m;
  must(m.cluster.create_topic("in", 2));
  produce_all(m.bootstrap, "in", json_readings(0, 20), [](std::size_t i) { return int(i % 2); });
  const auto opts = stream_source(m.bootstrap);
  trigger_reader a{opts};
  auto plan = must(a.src->plan_trigger(false, 1'000'000));
  BOOST_TEST(plan.available);
  BOOST_REQUIRE(!plan.end.empty());
  BOOST_TEST(nlohmann::json::parse(plan.end) == nlohmann::json::parse(R"({"in":{"0":10,"1":10}})"),
             plan.end);
  const auto start = *a.src->position();
  // More arrive after the plan, before the polls: the trigger still stops at its end.
  produce_all(m.bootstrap, "in", json_readings(20, 30), [](std::size_t i) { return int(i % 2); });
  auto [read, state] = a.read_trigger();
  BOOST_TEST((state == poll_result::status::idle));
  BOOST_TEST(ids_of(read) == id_range(0, 20), boost::test_tools::per_element());
  for (int i = 0; i < 20; ++i) {
    batch_ptr recs, dead;
    auto r = must(a.src->poll_batches(100, recs, dead));
    BOOST_TEST(!recs, "poll " << i << " after the trigger's end handed out records");
    BOOST_TEST((r.state == poll_result::status::idle));
  }
  BOOST_TEST(a.src->offset() == R"({"in":{"0":10,"1":10}})");

  // A restart: a fresh instance restored to where the trigger began replays its end, and
  // reads the same records, not the 10 that came since.
  trigger_reader b{opts};
  must(b.src->seek_all({start}));
  must(b.src->replay_trigger(plan.end));
  auto [again, again_state] = b.read_trigger();
  BOOST_TEST((again_state == poll_result::status::idle));
  BOOST_TEST(ids_of(again) == ids_of(read), boost::test_tools::per_element());

  // The next plan takes what came since; after it, nothing is available.
  auto next = must(b.src->plan_trigger(false, 1'000'000));
  BOOST_TEST(next.available);
  BOOST_TEST(nlohmann::json::parse(next.end) == nlohmann::json::parse(R"({"in":{"0":15,"1":15}})"),
             next.end);
  BOOST_TEST(ids_of(b.read_trigger().first) == id_range(20, 30), boost::test_tools::per_element());
  auto none = must(b.src->plan_trigger(false, 1'000'000));
  BOOST_TEST(!none.available);
  BOOST_TEST(b.read_trigger().first.empty());
}

BOOST_AUTO_TEST_CASE(a_plan_replays_at_another_parallelism_each_instance_reading_its_share) {
  mock_fixture m;
  must(m.cluster.create_topic("in", 4));
  auto by_id = [](std::size_t i) { return int(i % 4); };
  produce_all(m.bootstrap, "in", json_readings(0, 40), by_id);
  auto opts = stream_source(m.bootstrap);
  opts.max_offsets_per_trigger = 24; // 12 per instance: 6 of the 10 in each partition
  // Run 1 at parallelism 2: both instances plan batch 0 and read it.
  std::vector<std::string> positions, ends;
  std::vector<std::int64_t> run1;
  for (int i = 0; i < 2; ++i) {
    trigger_reader r{opts, triggers::processing_time(1s), i, 2};
    auto plan = must(r.src->plan_trigger(false, 1'000'000));
    BOOST_TEST(plan.available);
    positions.push_back(*r.src->position());
    ends.push_back(plan.end);
    for (auto id : ids_of(r.read_trigger().first))
      run1.push_back(id);
  }
  std::sort(run1.begin(), run1.end());
  BOOST_REQUIRE_EQUAL(run1.size(), 24u); // 6 offsets of each of the 4 partitions
  BOOST_TEST(run1 == id_range(0, 24), boost::test_tools::per_element());
  // More arrive before the restart; a plan made afresh would read them too.
  produce_all(m.bootstrap, "in", json_readings(40, 80), by_id);

  // Parallelism 1: the one instance reads the union of both plans.
  {
    trigger_reader r{stream_source(m.bootstrap)};
    must(r.src->seek_all(positions));
    must(r.src->replay_trigger_all(ends));
    auto [again, state] = r.read_trigger();
    BOOST_TEST((state == poll_result::status::idle));
    BOOST_TEST(ids_of(again) == run1, boost::test_tools::per_element());
  }
  // Parallelism 3: each instance reads the planned ends of the partitions it owns now.
  std::vector<std::int64_t> split;
  std::size_t readers_with_records = 0;
  for (int i = 0; i < 3; ++i) {
    trigger_reader r{stream_source(m.bootstrap), triggers::processing_time(1s), i, 3};
    must(r.src->seek_all(positions));
    must(r.src->replay_trigger_all(ends));
    auto got = ids_of(r.read_trigger().first);
    readers_with_records += got.empty() ? 0 : 1;
    split.insert(split.end(), got.begin(), got.end());
  }
  std::sort(split.begin(), split.end());
  BOOST_TEST(readers_with_records >= 2u, "the partitions are split over the new instances");
  BOOST_TEST(split == run1, boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(merged_plans_that_do_not_fit_are_refused_by_name) {
  mock_fixture m;
  must(m.cluster.create_topic("in", 2));
  produce_all(m.bootstrap, "in", json_readings(0, 20), [](std::size_t i) { return int(i % 2); });
  trigger_reader r{stream_source(m.bootstrap)};
  auto e = r.src->replay_trigger_all({R"({"in":{"0":5}})", R"({"in":{"0":6,"1":3}})"});
  BOOST_REQUIRE(!e);
  BOOST_TEST(e.error().message.find("the offset log's plans disagree on the end of in/0 (5 and 6)") !=
               std::string::npos,
             e.error().message);
  trigger_reader q{stream_source(m.bootstrap)};
  e = q.src->replay_trigger_all({R"({"in":{"0":5}})", "not json"});
  BOOST_REQUIRE(!e);
  BOOST_TEST(e.error().message.find("the planned end offsets in the offset log is not valid") !=
               std::string::npos,
             e.error().message);
}

BOOST_AUTO_TEST_CASE(available_now_ends_at_the_offsets_of_its_first_plan) {
  mock_fixture m;
  must(m.cluster.create_topic("in", 2));
  produce_all(m.bootstrap, "in", json_readings(0, 10), [](std::size_t i) { return int(i % 2); });
  auto opts = stream_source(m.bootstrap);
  opts.max_offsets_per_trigger = 6;
  trigger_reader r{opts, triggers::available_now()};
  auto plan = must(r.src->plan_trigger(false, 1'000'000));
  BOOST_TEST(nlohmann::json::parse(plan.end) == nlohmann::json::parse(R"({"in":{"0":3,"1":3}})"),
             plan.end);
  produce_all(m.bootstrap, "in", json_readings(10, 20), [](std::size_t i) { return int(i % 2); });
  auto [first, first_state] = r.read_trigger();
  BOOST_TEST(ids_of(first) == id_range(0, 6), boost::test_tools::per_element());
  BOOST_TEST((first_state == poll_result::status::idle));
  // The second trigger reads the rest of what was there at the first plan, and ends.
  plan = must(r.src->plan_trigger(false, 1'000'000));
  BOOST_TEST(plan.available);
  BOOST_TEST(nlohmann::json::parse(plan.end) == nlohmann::json::parse(R"({"in":{"0":5,"1":5}})"),
             plan.end);
  auto [second, second_state] = r.read_trigger();
  BOOST_TEST(ids_of(second) == id_range(6, 10), boost::test_tools::per_element());
  BOOST_TEST((second_state == poll_result::status::end));
  plan = must(r.src->plan_trigger(false, 1'000'000));
  BOOST_TEST(!plan.available);
}

BOOST_AUTO_TEST_CASE(a_planned_end_that_does_not_fit_is_refused_by_name) {
  mock_fixture m;
  must(m.cluster.create_topic("in", 2));
  produce_all(m.bootstrap, "in", json_readings(0, 20), [](std::size_t i) { return int(i % 2); });
  const auto opts = stream_source(m.bootstrap);
  auto refused = [&](const std::string& position, const std::string& end) {
    trigger_reader r{opts};
    if (!position.empty())
      must(r.src->seek_all({position}));
    auto e = r.src->replay_trigger(end);
    BOOST_REQUIRE(!e);
    return e.error().message;
  };
  auto msg = refused(R"({"partitions":{"in/0":8,"in/1":8}})", R"({"in":{"0":5,"1":9}})");
  BOOST_TEST(msg.find("the planned end 5 of in/0 lies before the restored position 8") !=
               std::string::npos,
             msg);
  msg = refused("", R"({"in":{"7":5}})");
  BOOST_TEST(msg.find("in/7") != std::string::npos, msg);
  msg = refused("", "{\"in\": [1, 2]}");
  BOOST_TEST(msg.find("the planned end offsets in the offset log is not valid") != std::string::npos,
             msg);
  msg = refused("", R"({"in":{"x":5}})");
  BOOST_TEST(msg.find("partition 'x' of topic 'in' is not a number") != std::string::npos, msg);
}

BOOST_AUTO_TEST_CASE(spark_rate_limit_and_the_instance_share) {
  using sources::detail::partition_offsets;
  const partition_offsets from{{{"t", 0}, 0}, {{"t", 1}, 0}, {{"t", 2}, 0}};
  const partition_offsets until{{{"t", 0}, 10}, {{"t", 1}, 20}, {{"t", 2}, 30}};
  auto limited = sources::detail::rate_limit(25, from, until);
  BOOST_TEST((limited == partition_offsets{{{"t", 0}, 4}, {{"t", 1}, 8}, {{"t", 2}, 12}}));
  // A share below one offset is rounded up: no partition starves.
  const partition_offsets lopsided{{{"t", 0}, 1}, {{"t", 1}, 100}, {{"t", 2}, 0}};
  limited = sources::detail::rate_limit(2, from, lopsided);
  BOOST_TEST((limited == partition_offsets{{{"t", 0}, 1}, {{"t", 1}, 1}, {{"t", 2}, 0}}));
  // Nothing to read: the latest offsets as they are.
  BOOST_TEST((sources::detail::rate_limit(5, until, until) == until));
  BOOST_TEST(sources::detail::instance_share(25, 0, 2) == 13);
  BOOST_TEST(sources::detail::instance_share(25, 1, 2) == 12);
  BOOST_TEST(sources::detail::instance_share(1, 1, 2) == 1);
}

BOOST_AUTO_TEST_SUITE_END()
