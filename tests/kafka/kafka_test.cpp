#define BOOST_TEST_MODULE kafka_test
#include <boost/test/unit_test.hpp>

#include "sluice/tests/kafka/kafka_helpers.hpp"

#include "sluice/api/job.hpp"
#include "sluice/sinks/kafka.hpp"
#include "sluice/sinks/memory.hpp"
#include "sluice/sources/collection.hpp"
#include "sluice/sources/kafka.hpp"
#include "sluice/sources/watermarks.hpp"
#include "sluice/tools/kafka_mock/mock_cluster.hpp"

#include <sys/resource.h>

#include <algorithm>
#include <condition_variable>
#include <mutex>
#include <thread>

using namespace sluice;
using namespace sluice::test::kafka_tests;
using namespace std::chrono_literals;

namespace {

sources::kafka_source_options bounded_source(const std::string& bootstrap, const std::string& topic) {
  sources::kafka_source_options o;
  o.bootstrap_servers = bootstrap;
  o.topics = {topic};
  o.bounded = true;
  o.connect_timeout = 5s;
  return o;
}

template <class T>
std::vector<T> sorted(std::vector<T> v) {
  std::sort(v.begin(), v.end());
  return v;
}

std::vector<reading> decode_all(const std::vector<kafka::message>& msgs) {
  std::vector<reading> out;
  for (auto& m : msgs)
    out.push_back(must(codec::from_json_line<reading>(m.value)));
  return out;
}

} // namespace

// -- the source, on librdkafka's mock cluster ----------------------------------------------

BOOST_AUTO_TEST_SUITE(kafka_source_mock)

BOOST_AUTO_TEST_CASE(reads_every_partition_once_with_two_instances) {
  mock_fixture m;
  must(m.cluster.create_topic("in", 3));
  produce_all(m.bootstrap, "in", json_readings(0, 300), [](std::size_t i) { return int(i % 3); });
  job j{{.name = "kafka-read", .parallelism = 2}};
  auto out = sinks::collect<reading>{};
  j.from(sources::kafka<reading>{bounded_source(m.bootstrap, "in")}).name("in").sink_to(out);
  must(j.run());
  BOOST_TEST(sorted(out.records()) == readings(0, 300), boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(records_carry_key_headers_partition_offset_and_timestamp) {
  mock_fixture m;
  must(m.cluster.create_topic("in", 2));
  kafka::header_list headers{{"trace", "abc"}, {"empty", ""}};
  produce_all(
    m.bootstrap, "in", json_readings(0, 10), [](std::size_t i) { return int(i % 2); },
    [](std::size_t i) { return std::optional<std::string>{"key" + std::to_string(i)}; }, &headers);
  job j{{.name = "kafka-meta"}};
  auto out = sinks::collect<kafka::record<reading>>{};
  j.from(sources::kafka<kafka::record<reading>>{bounded_source(m.bootstrap, "in")}).sink_to(out);
  const auto before = std::chrono::system_clock::now();
  must(j.run());
  auto recs = out.records();
  BOOST_REQUIRE_EQUAL(recs.size(), 10u);
  std::map<int, std::vector<std::int64_t>> offsets;
  for (auto& r : recs) {
    BOOST_TEST(r.topic == "in");
    BOOST_TEST(r.partition == int(r.value.id % 2));
    BOOST_TEST(*r.key == "key" + std::to_string(r.value.id));
    BOOST_TEST(r.headers == headers);
    // Create time, set by the producer a moment ago.
    BOOST_TEST(r.timestamp.time_since_epoch().count() > 0);
    BOOST_TEST((r.timestamp <= std::chrono::time_point_cast<std::chrono::microseconds>(before)));
    offsets[r.partition].push_back(r.offset);
  }
  BOOST_TEST(offsets[0] == (std::vector<std::int64_t>{0, 1, 2, 3, 4}));
  BOOST_TEST(offsets[1] == (std::vector<std::int64_t>{0, 1, 2, 3, 4}));
}

BOOST_AUTO_TEST_CASE(a_malformed_value_fails_the_job_naming_topic_partition_offset) {
  mock_fixture m;
  must(m.cluster.create_topic("in", 1));
  auto values = json_readings(0, 3);
  values[1] = "{not json";
  produce_all(m.bootstrap, "in", values, [](std::size_t) { return 0; });
  job j{{.name = "kafka-bad"}};
  auto out = sinks::collect<reading>{};
  j.from(sources::kafka<reading>{bounded_source(m.bootstrap, "in")}).name("in").sink_to(out);
  auto r = j.run();
  BOOST_REQUIRE(!r);
  BOOST_TEST(r.error().to_string().find("kafka in/0@1") != std::string::npos, r.error().to_string());
  BOOST_TEST(r.error().to_string().find("malformed_record") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(malformed_values_become_counted_dead_letters) {
  mock_fixture m;
  must(m.cluster.create_topic("in", 2));
  auto values = json_readings(0, 20);
  values[4] = "oops";
  values[7] = "{\"id\": \"x\"}";
  produce_all(m.bootstrap, "in", values, [](std::size_t i) { return int(i % 2); });
  job j{{.name = "kafka-dlq"}};
  auto good = sinks::collect<reading>{};
  auto bad = sinks::collect<dead_letter>{};
  auto opts = bounded_source(m.bootstrap, "in");
  opts.malformed = on_malformed::dead_letter;
  auto s = j.from(sources::kafka<reading>{opts}).name("in");
  s.sink_to(good);
  s.dead_letters().sink_to(bad);
  must(j.run());
  BOOST_TEST(good.size() == 18u);
  auto dl = bad.records();
  BOOST_REQUIRE_EQUAL(dl.size(), 2u);
  std::set<std::string> where{dl[0].location, dl[1].location};
  BOOST_TEST(where.count("kafka in/0@2") == 1u); // value 4: partition 0, third record
  BOOST_TEST(where.count("kafka in/1@3") == 1u); // value 7: partition 1, fourth record
  for (auto& d : dl)
    BOOST_TEST(d.source == "in");
}

BOOST_AUTO_TEST_CASE(unreachable_brokers_fail_with_the_address) {
  auto opts = bounded_source("127.0.0.1:1", "in");
  opts.connect_timeout = 500ms;
  job j{{.name = "kafka-unreachable"}};
  auto out = sinks::collect<reading>{};
  j.from(sources::kafka<reading>{opts}).sink_to(out);
  auto r = j.run();
  BOOST_REQUIRE(!r);
  BOOST_TEST(r.error().to_string().find("cannot reach the brokers at '127.0.0.1:1'") !=
               std::string::npos,
             r.error().to_string());
}

BOOST_AUTO_TEST_CASE(a_missing_topic_is_named) {
  mock_fixture m;
  job j{{.name = "kafka-missing"}};
  auto out = sinks::collect<reading>{};
  j.from(sources::kafka<reading>{bounded_source(m.bootstrap, "nope")}).sink_to(out);
  auto r = j.run();
  BOOST_REQUIRE(!r);
  BOOST_TEST(r.error().to_string().find("topic 'nope' does not exist") != std::string::npos,
             r.error().to_string());
}

BOOST_AUTO_TEST_CASE(bad_options_are_rejected_before_start) {
  auto check = [](sources::kafka_source_options o, const std::string& expect) {
    auto r = sources::kafka<reading>{std::move(o)}.validate();
    BOOST_REQUIRE(!r);
    BOOST_TEST(r.error().message.find(expect) != std::string::npos, r.error().message);
  };
  check({}, "bootstrap_servers is empty");
  check({.bootstrap_servers = "x:1"}, "give topics or a topic_pattern");
  check({.bootstrap_servers = "x:1", .topic_pattern = "(("}, "not a valid regex");
  sources::kafka_source_options text{.bootstrap_servers = "x:1", .topics = {"t"}};
  text.format = kafka::value_format::text;
  check(text, "value format 'text' needs std::string");
  check({.bootstrap_servers = "x:1", .topics = {"t"}, .poll_interval = 0us},
        "poll_interval must be positive (got 0 us)");
  check({.bootstrap_servers = "x:1", .topics = {"t"}, .poll_interval = -2ms},
        "poll_interval must be positive (got -2000 us)");
  auto r = sinks::kafka<reading>{{{.bootstrap_servers = "x:1", .topic = "t",
                                   .delivery = sinks::kafka_delivery::exactly_once}}}
             .validate();
  BOOST_REQUIRE(!r);
  BOOST_TEST(r.error().message.find("transactional_id_prefix") != std::string::npos);
  for (int pool : {0, -1, sinks::max_kafka_producer_pool + 1}) {
    sinks::kafka_sink_options<reading> o{{.bootstrap_servers = "x:1", .topic = "t",
                                          .delivery = sinks::kafka_delivery::exactly_once,
                                          .transactional_id_prefix = "p"}};
    o.producer_pool_size = pool;
    auto bad = sinks::kafka<reading>{o}.validate();
    BOOST_REQUIRE(!bad);
    BOOST_TEST(bad.error().message.find("producer_pool_size must be between 1 and 16, not " +
                                        std::to_string(pool)) != std::string::npos,
               bad.error().message);
  }
}

/// Drives one source instance by hand with a manual clock, as the runtime would.
struct driven_source {
  std::shared_ptr<manual_clock> clock = std::make_shared<manual_clock>();
  std::unique_ptr<source<reading>> src;
  std::vector<reading> got;

  /// `wake`: the context's `source_context::wake` (the runtime's asks the task to poll).
  explicit driven_source(sources::kafka_source_options o, std::function<void()> wake = [] {}) {
    src = sources::kafka<reading>{std::move(o)}.create({});
    source_context ctx{"in", 0, 1, clock};
    ctx.wake = std::move(wake);
    must(src->open(ctx));
  }
  /// Polls until `n` records arrived in all (bounded by a real-time deadline: the data
  /// travels over loopback).
  void poll_until(std::size_t n) {
    const auto deadline = std::chrono::steady_clock::now() + 30s;
    while (got.size() < n) {
      BOOST_REQUIRE_MESSAGE(std::chrono::steady_clock::now() < deadline,
                            "only " << got.size() << " of " << n << " records arrived");
      batch_ptr recs, dead;
      auto r = must(src->poll_batches(100, recs, dead));
      if (recs)
        for (auto& x : records_of<reading>(*recs))
          got.push_back(x);
      if (r.state == poll_result::status::idle)
        std::this_thread::sleep_for(1ms);
    }
  }
};

/// Reads `topic` to its end with a bounded source of these options; returns the ids.
std::vector<std::int64_t> ids_read(sources::kafka_source_options o) {
  o.bounded = true;
  job j{{.name = "kafka-start"}};
  auto out = sinks::collect<reading>{};
  j.from(sources::kafka<reading>{std::move(o)}).sink_to(out);
  must(j.run());
  std::vector<std::int64_t> ids;
  for (auto& r : out.records())
    ids.push_back(r.id);
  std::sort(ids.begin(), ids.end());
  return ids;
}

std::vector<std::int64_t> range(std::int64_t from, std::int64_t to) {
  std::vector<std::int64_t> v;
  for (auto i = from; i < to; ++i)
    v.push_back(i);
  return v;
}

BOOST_AUTO_TEST_CASE(start_positions_earliest_latest_offsets_committed) {
  mock_fixture m;
  must(m.cluster.create_topic("in", 1));
  produce_all(m.bootstrap, "in", json_readings(0, 10), [](std::size_t) { return 0; });
  auto o = bounded_source(m.bootstrap, "in");
  BOOST_TEST(ids_read(o) == range(0, 10));
  o.start_position = sources::kafka_start::latest();
  BOOST_TEST(ids_read(o).empty());
  o.start_position = sources::kafka_start::at_offsets({{{"in", 0}, 7}});
  BOOST_TEST(ids_read(o) == range(7, 10));
  // (Start by timestamp: kafka_real_broker; the mock does not look up offsets by time.)
  // Committed offsets of the group, else the fallback.
  o.group_id = "start-test";
  o.start_position = sources::kafka_start::committed(sources::kafka_start::kind::latest);
  BOOST_TEST(ids_read(o).empty()); // nothing committed yet: latest
  {
    auto c = must(kafka::consumer::open({.bootstrap_servers = m.bootstrap, .group_id = "start-test",
                                         .label = "committer"}));
    must(c.commit({{{"in", 0}, 4}}, true));
  }
  BOOST_TEST(ids_read(o) == range(4, 10));
}

BOOST_AUTO_TEST_CASE(csv_and_text_values) {
  mock_fixture m;
  must(m.cluster.create_topic("csv", 1));
  must(m.cluster.create_topic("text", 1));
  std::vector<std::string> rows;
  for (int i = 0; i < 5; ++i)
    rows.push_back(codec::to_csv_row(make_reading(i)));
  produce_all(m.bootstrap, "csv", rows, [](std::size_t) { return 0; });
  produce_all(m.bootstrap, "text", {"plain words", "{not json either}"}, [](std::size_t) { return 0; });
  job j{{.name = "kafka-formats"}};
  auto csv_out = sinks::collect<reading>{};
  auto text_out = sinks::collect<std::string>{};
  auto csv = bounded_source(m.bootstrap, "csv");
  csv.format = kafka::value_format::csv;
  auto text = bounded_source(m.bootstrap, "text");
  text.format = kafka::value_format::text;
  j.from(sources::kafka<reading>{csv}).name("csv").sink_to(csv_out);
  j.from(sources::kafka<std::string>{text}).name("text").sink_to(text_out);
  must(j.run());
  BOOST_TEST(sorted(csv_out.records()) == readings(0, 5), boost::test_tools::per_element());
  BOOST_TEST(sorted(text_out.records()) ==
               (std::vector<std::string>{"plain words", "{not json either}"}),
             boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(completed_checkpoints_commit_offsets_to_the_group) {
  mock_fixture m;
  must(m.cluster.create_topic("in", 2));
  produce_all(m.bootstrap, "in", json_readings(0, 20), [](std::size_t i) { return int(i % 2); });
  driven_source d{{.bootstrap_servers = m.bootstrap, .topics = {"in"}, .group_id = "lag"}};
  d.poll_until(20);
  (void)d.src->snapshot_position(1);
  must(d.src->notify_checkpoint_complete(1));
  d.src->close(); // waits for the commit
  for (int p = 0; p < 2; ++p) {
    auto c = must(kafka::committed_offset(m.bootstrap, {}, "lag", {"in", p}, 10s));
    BOOST_REQUIRE(c);
    BOOST_TEST(c->offset == 10);
  }
}

BOOST_AUTO_TEST_CASE(topics_matching_the_pattern_are_discovered_on_the_discovery_interval) {
  mock_fixture m;
  must(m.cluster.create_topic("orders-a", 1));
  produce_all(m.bootstrap, "orders-a", json_readings(0, 5), [](std::size_t) { return 0; });
  sources::kafka_source_options o{.bootstrap_servers = m.bootstrap, .topic_pattern = "orders-.*"};
  o.discovery_interval = 10s;
  driven_source d{o};
  d.poll_until(5);
  must(m.cluster.create_topic("orders-b", 2));
  std::vector<std::string> more;
  for (int i = 5; i < 9; ++i)
    more.push_back(codec::to_json_line(make_reading(i)));
  produce_all(m.bootstrap, "orders-b", more, [](std::size_t i) { return int(i % 2); });
  // Before the interval passed the new topic is not assigned: nothing more arrives.
  for (int i = 0; i < 50; ++i) {
    batch_ptr recs, dead;
    (void)must(d.src->poll_batches(100, recs, dead));
    BOOST_TEST(!recs);
  }
  d.clock->advance(10s);
  d.poll_until(9);
  BOOST_TEST(sorted(d.got) == readings(0, 9), boost::test_tools::per_element());
  auto pos = *d.src->position();
  BOOST_TEST(pos.find("\"orders-b/1\":2") != std::string::npos, pos);
}

BOOST_AUTO_TEST_CASE(a_restart_continues_from_the_checkpointed_offsets_at_any_parallelism) {
  mock_fixture m;
  must(m.cluster.create_topic("in", 4));
  produce_all(m.bootstrap, "in", json_readings(0, 40), [](std::size_t i) { return int(i % 4); });
  // One instance reads everything and checkpoints; two instances continue from its position.
  std::string position;
  {
    sources::kafka_source_options o{.bootstrap_servers = m.bootstrap, .topics = {"in"}};
    driven_source d{o};
    d.poll_until(40);
    position = *d.src->snapshot_position(1);
  }
  std::vector<std::string> more;
  for (int i = 40; i < 60; ++i)
    more.push_back(codec::to_json_line(make_reading(i)));
  produce_all(m.bootstrap, "in", more, [](std::size_t i) { return int(i % 4); });
  std::vector<reading> after;
  std::size_t partitions = 0;
  for (int instance = 0; instance < 2; ++instance) {
    auto clock = std::make_shared<manual_clock>();
    auto src = sources::kafka<reading>{{.bootstrap_servers = m.bootstrap, .topics = {"in"},
                                        .bounded = true}}.create({});
    must(src->open(source_context{"in", instance, 2, clock}));
    BOOST_REQUIRE(src->restores_from_all_instances());
    must(src->seek_all({position}));
    for (;;) {
      batch_ptr recs, dead;
      auto r = must(src->poll_batches(100, recs, dead));
      if (recs)
        for (auto& x : records_of<reading>(*recs))
          after.push_back(x);
      if (r.state == poll_result::status::end)
        break;
      if (r.state == poll_result::status::idle)
        std::this_thread::sleep_for(1ms);
    }
    auto pos = nlohmann::json::parse(*src->position());
    partitions += pos["partitions"].size();
  }
  BOOST_TEST(partitions == 4u); // every partition owned by exactly one instance
  std::vector<reading> want;
  for (int i = 40; i < 60; ++i)
    want.push_back(make_reading(i));
  BOOST_TEST(sorted(after) == want, boost::test_tools::per_element());
}

// A barrier may reach a restored source before its first poll (the coordinator's interval
// is shorter than connecting): that checkpoint must still hold the restored offsets, or the
// next restore reads those partitions again from the start (the kafka_kill9 test saw one
// partition's running totals counted twice).
BOOST_AUTO_TEST_CASE(a_checkpoint_before_the_first_poll_keeps_the_restored_offsets) {
  mock_fixture m;
  must(m.cluster.create_topic("in", 4));
  produce_all(m.bootstrap, "in", json_readings(0, 40), [](std::size_t i) { return int(i % 4); });
  std::string position;
  {
    driven_source d{{.bootstrap_servers = m.bootstrap, .topics = {"in"}}};
    d.poll_until(40);
    position = *d.src->snapshot_position(1);
  }
  // Restored at parallelism 2 and checkpointed at once, without a poll.
  std::vector<std::string> again;
  for (int instance = 0; instance < 2; ++instance) {
    auto src = sources::kafka<reading>{{.bootstrap_servers = m.bootstrap, .topics = {"in"}}}
                 .create({});
    must(src->open(source_context{"in", instance, 2, std::make_shared<manual_clock>()}));
    must(src->seek_all({position}));
    again.push_back(*src->snapshot_position(2));
  }
  std::map<std::string, std::int64_t> merged;
  for (const auto& text : again) {
    const auto j = nlohmann::json::parse(text);
    for (const auto& [tp, off] : j["partitions"].items())
      BOOST_TEST(merged.emplace(tp, off.get<std::int64_t>()).second, tp << " twice");
  }
  std::map<std::string, std::int64_t> want;
  const auto first = nlohmann::json::parse(position);
  for (const auto& [tp, off] : first["partitions"].items())
    want.emplace(tp, off.get<std::int64_t>());
  BOOST_TEST(want.size() == 4u);
  BOOST_TEST(merged == want);
  // Restored from that checkpoint, nothing is read again.
  produce_all(m.bootstrap, "in", json_readings(40, 44), [](std::size_t i) { return int(i % 4); });
  driven_source d{{.bootstrap_servers = m.bootstrap, .topics = {"in"}}};
  must(d.src->seek_all(again));
  d.poll_until(4);
  BOOST_TEST(sorted(d.got) == readings(40, 44), boost::test_tools::per_element());
}

// The source's task waits `poll_interval` after a poll that found nothing; a record that
// arrives meanwhile must wake it (source_context::wake, called from librdkafka's queue
// event) rather than wait. Here the wake-ups are counted: none may be missing for a record
// that arrives at an empty queue.
BOOST_AUTO_TEST_CASE(a_record_arriving_while_the_source_waits_wakes_its_task) {
  mock_fixture m;
  must(m.cluster.create_topic("in", 1));
  produce_all(m.bootstrap, "in", json_readings(0, 10), [](std::size_t) { return 0; });
  struct wake_count {
    std::mutex mtx;
    std::condition_variable cv;
    int n = 0;
  };
  auto wakes = std::make_shared<wake_count>();
  driven_source d{{.bootstrap_servers = m.bootstrap, .topics = {"in"}}, [wakes] {
                    {
                      std::lock_guard lk{wakes->mtx};
                      ++wakes->n;
                    }
                    wakes->cv.notify_all();
                  }};
  d.poll_until(10);
  for (int i = 1; i <= 3; ++i) {
    // Drained: the next poll finds nothing, as the task's last poll before a wait does.
    batch_ptr recs, dead;
    BOOST_REQUIRE(must(d.src->poll_batches(100, recs, dead)).state == poll_result::status::idle);
    BOOST_REQUIRE(!recs);
    int before = 0;
    {
      std::lock_guard lk{wakes->mtx};
      before = wakes->n;
    }
    produce_all(m.bootstrap, "in", {codec::to_json_line(make_reading(9 + i))},
                [](std::size_t) { return 0; });
    std::unique_lock lk{wakes->mtx};
    BOOST_REQUIRE_MESSAGE(wakes->cv.wait_for(lk, 10s, [&] { return wakes->n > before; }),
                          "record " << 9 + i << " arrived without waking the source's task");
    lk.unlock();
    d.poll_until(10 + static_cast<std::size_t>(i));
  }
  BOOST_TEST(sorted(d.got) == readings(0, 13), boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(a_broker_outage_delays_but_loses_nothing) {
  mock_fixture m;
  must(m.cluster.create_topic("in", 1));
  produce_all(m.bootstrap, "in", json_readings(0, 10), [](std::size_t) { return 0; });
  driven_source d{{.bootstrap_servers = m.bootstrap, .topics = {"in"}}};
  d.poll_until(10);
  must(m.cluster.broker_down(1));
  // Polls during the outage report no data and no error: librdkafka reconnects by itself.
  for (int i = 0; i < 100; ++i) {
    batch_ptr recs, dead;
    (void)must(d.src->poll_batches(100, recs, dead));
    BOOST_TEST(!recs);
  }
  must(m.cluster.broker_up(1));
  std::vector<std::string> more;
  for (int i = 10; i < 30; ++i)
    more.push_back(codec::to_json_line(make_reading(i)));
  produce_all(m.bootstrap, "in", more, [](std::size_t) { return 0; });
  d.poll_until(30);
  BOOST_TEST(sorted(d.got) == readings(0, 30), boost::test_tools::per_element());
}

BOOST_AUTO_TEST_SUITE_END()

// -- per-partition watermarks ---------------------------------------------------------------

BOOST_AUTO_TEST_SUITE(kafka_watermarks)

BOOST_AUTO_TEST_CASE(an_assigned_empty_partition_holds_the_watermark_until_idle) {
  auto strategy = watermarks::bounded_out_of_orderness<reading>(0ms, [](const reading& r) {
                    return r.ts;
                  }).with_idleness(5s);
  watermark_tracker<reading> t{strategy};
  const clock::time_point t0{};
  t.add_split(0);
  t.add_split(1); // assigned, never has records
  std::vector<reading> recs{make_reading(100)};
  t.observe(recs, {split_mark{0, 0}});
  BOOST_TEST(!t.update(t0).advanced); // split 1 holds it back
  BOOST_TEST(!t.update(t0 + 4s).advanced);
  recs = {make_reading(200)};
  t.observe(recs, {split_mark{0, 0}});
  auto u = t.update(t0 + 5s); // split 1 idle now; split 0 just had records
  BOOST_REQUIRE(u.advanced);
  BOOST_TEST(u.advanced->time_since_epoch().count() ==
             (make_reading(200).ts - duration{1}).time_since_epoch().count());
}

BOOST_AUTO_TEST_CASE(partitions_far_apart_in_event_time_lose_no_record) {
  // Partition 1 is an hour ahead of partition 0. With one watermark per partition the
  // job's watermark follows partition 0, so none of its records is late.
  mock_fixture m;
  must(m.cluster.create_topic("in", 2));
  std::vector<std::string> values;
  for (int i = 0; i < 200; ++i) {
    auto r = make_reading(i);
    if (i % 2)
      r.ts += std::chrono::hours{1};
    values.push_back(codec::to_json_line(r));
  }
  produce_all(m.bootstrap, "in", values, [](std::size_t i) { return int(i % 2); });
  job j{{.name = "kafka-wm"}};
  auto out = sinks::collect<window_result<std::string, std::uint64_t>>{};
  auto late = sinks::collect<reading>{};
  auto counted = j.from(sources::kafka<reading>{bounded_source(m.bootstrap, "in")},
                        watermarks::bounded_out_of_orderness<reading>(
                          0ms, [](const reading& r) { return r.ts; }))
                   .key_by([](const reading& r) { return r.name; })
                   .window(windows::tumbling(1s))
                   .count();
  counted.sink_to(out);
  must(j.run());
  std::uint64_t total = 0;
  for (auto& w : out.records())
    total += w.value;
  BOOST_TEST(total == 200u);
}

BOOST_AUTO_TEST_SUITE_END()

// -- the sink, on the mock cluster ----------------------------------------------------------

BOOST_AUTO_TEST_SUITE(kafka_sink_mock)

BOOST_AUTO_TEST_CASE(at_least_once_writes_every_record_with_key_and_partitioner) {
  mock_fixture m;
  must(m.cluster.create_topic("out", 3));
  job j{{.name = "kafka-write", .parallelism = 2}};
  j.from(sources::collection<reading>{readings(0, 100)})
    .rebalance()
    .sink_to(sinks::kafka<reading>{{{.bootstrap_servers = m.bootstrap, .topic = "out"},
                                    [](const reading& r) { return std::optional{r.name}; },
                                    [](const reading& r, int n) { return int(r.id % n); }}})
    .parallelism(2);
  must(j.run());
  auto msgs = read_topic(m.bootstrap, "out");
  BOOST_TEST(sorted(decode_all(msgs)) == readings(0, 100), boost::test_tools::per_element());
  for (auto& msg : msgs) {
    auto r = must(codec::from_json_line<reading>(msg.value));
    BOOST_TEST(msg.partition == int(r.id % 3));
    BOOST_TEST(*msg.key == r.name);
  }
}

/// CPU time of this process so far, every thread.
std::chrono::microseconds process_cpu() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  auto us = [](const timeval& t) {
    return std::chrono::seconds{t.tv_sec} + std::chrono::microseconds{t.tv_usec};
  };
  return us(ru.ru_utime) + us(ru.ru_stime);
}

/// The wall time `work` takes; fails the test when the process used a tenth of it in CPU
/// meanwhile (a spinning librdkafka thread uses nearly all of it).
template <class Work>
std::chrono::steady_clock::duration require_no_spinning(Work&& work) {
  const auto cpu_before = process_cpu();
  const auto wall_before = std::chrono::steady_clock::now();
  work();
  const auto cpu = process_cpu() - cpu_before;
  const auto wall = std::chrono::steady_clock::now() - wall_before;
  BOOST_TEST_MESSAGE("CPU " << cpu.count() << " us in " << wall / 1us << " us");
  BOOST_TEST(cpu < wall / 10,
             "the producer used " << cpu.count() << " us of CPU in " << wall / 1us << " us");
  return wall;
}

BOOST_AUTO_TEST_CASE(the_at_least_once_producer_waits_for_a_late_response_without_spinning) {
  // librdkafka 2.0.2's idempotent producer, once a partition had 5 records in flight, polled
  // with a zero timeout until the response came (sinks/kafka.cpp, producer_properties): a
  // core per producer, which starved a broker on the same 2 cores into stalls of seconds.
  mock_fixture m;
  must(m.cluster.create_topic("late", 1));
  const auto props = sinks::detail::producer_properties(
    {.delivery = sinks::kafka_delivery::at_least_once}, false);
  auto p = must(kafka::producer::open(
    {.bootstrap_servers = m.bootstrap, .extra = props, .label = "late-response producer"}));
  must(p.produce("late", 0, std::nullopt, "warm-up")); // connected, producer id if any
  must(p.flush(10s));
  must(m.cluster.set_rtt(1, 400ms));
  for (int i = 0; i < 50; ++i)
    must(p.produce("late", 0, std::nullopt, "first"));
  // The first 50 leave after linger.ms (1 ms); if they had not, both groups would share a
  // request and nothing could spin: the test would pass without showing anything.
  std::this_thread::sleep_for(50ms);
  for (int i = 0; i < 50; ++i)
    must(p.produce("late", 0, std::nullopt, "second")); // wait behind the first request
  const auto wall = require_no_spinning([&] { must(p.flush(10s)); });
  BOOST_TEST(wall >= 350ms); // the late response was waited for
  BOOST_TEST(read_topic(m.bootstrap, "late").size() == 101u);
}

BOOST_AUTO_TEST_CASE(a_transactional_producer_waits_for_responses_without_spinning) {
  // Idempotent, so limited as above; records written over a second while each response
  // takes 50 ms must not be older than linger.ms when a request waits.
  mock_fixture m;
  must(m.cluster.create_topic("txn", 1));
  const auto props = sinks::detail::producer_properties(
    {.delivery = sinks::kafka_delivery::exactly_once, .transactional_id_prefix = "t"}, true);
  auto p = must(kafka::producer::open({.bootstrap_servers = m.bootstrap,
                                       .transactional_id = "spin-test",
                                       .extra = props,
                                       .label = "transactional producer"}));
  must(p.init_transactions(10s));
  must(p.begin_transaction());
  must(p.produce("txn", 0, std::nullopt, "warm-up")); // the partition joins the transaction
  must(p.flush(10s));
  must(m.cluster.set_rtt(1, 50ms));
  require_no_spinning([&] {
    for (int i = 0; i < 400; ++i) { // a record every 2.5 ms: over 5 in flight per response
      must(p.produce("txn", 0, std::nullopt, std::to_string(i)));
      std::this_thread::sleep_for(2500us);
    }
    must(p.flush(10s));
  });
  must(p.commit_transaction(10s));
  BOOST_TEST(read_topic(m.bootstrap, "txn").size() == 401u);
}

BOOST_AUTO_TEST_CASE(a_partitioner_out_of_range_fails_the_job_by_name) {
  mock_fixture m;
  must(m.cluster.create_topic("out", 2));
  job j{{.name = "kafka-bad-partitioner"}};
  j.from(sources::collection<reading>{readings(0, 3)})
    .sink_to(sinks::kafka<reading>{{{.bootstrap_servers = m.bootstrap, .topic = "out"},
                                    {},
                                    [](const reading&, int) { return 7; }}});
  auto r = j.run();
  BOOST_REQUIRE(!r);
  BOOST_TEST(r.error().to_string().find("partitioner returned 7 for a topic with 2 partitions") !=
               std::string::npos,
             r.error().to_string());
}

BOOST_AUTO_TEST_CASE(exactly_once_without_checkpoints_is_refused) {
  mock_fixture m;
  must(m.cluster.create_topic("out", 1));
  job j{{.name = "kafka-eo-nockpt"}};
  j.from(sources::collection<reading>{readings(0, 3)})
    .sink_to(sinks::kafka<reading>{{{.bootstrap_servers = m.bootstrap, .topic = "out",
                                     .delivery = sinks::kafka_delivery::exactly_once,
                                     .transactional_id_prefix = "t"}}});
  auto r = j.run();
  BOOST_REQUIRE(!r);
  BOOST_TEST(r.error().to_string().find("exactly_once delivery needs checkpoints") !=
               std::string::npos,
             r.error().to_string());
}

BOOST_AUTO_TEST_CASE(produce_errors_injected_by_the_broker_are_retried_without_duplicates) {
  mock_fixture m;
  must(m.cluster.create_topic("out", 1));
  m.cluster.push_errors(kafka::request::produce,
                        {kafka::broker_error::not_leader_for_partition,
                         kafka::broker_error::request_timed_out,
                         kafka::broker_error::not_enough_replicas});
  job j{{.name = "kafka-retry"}};
  j.from(sources::collection<reading>{readings(0, 50)})
    .sink_to(sinks::kafka<reading>{{{.bootstrap_servers = m.bootstrap, .topic = "out"}}});
  must(j.run());
  BOOST_TEST(sorted(decode_all(read_topic(m.bootstrap, "out"))) == readings(0, 50),
             boost::test_tools::per_element());
}

BOOST_AUTO_TEST_SUITE_END()
