// Exactly-once through a real Apache Kafka broker (the kafka_broker CTest fixture): the
// mock cluster neither hides aborted transactions from read_committed readers nor stores
// offsets sent with a transaction, so these cases need the real thing.
#include <boost/test/unit_test.hpp>

#include "sluice/tests/common/temp_dir.hpp"
#include "sluice/tests/kafka/kafka_helpers.hpp"

#include "sluice/api/job.hpp"
#include "sluice/sinks/kafka.hpp"
#include "sluice/sinks/memory.hpp"
#include "sluice/sources/kafka.hpp"

#include "sluice/core/codec/binary.hpp"

#include <algorithm>
#include <cstdio>
#include <map>

using namespace sluice;
using namespace sluice::test::kafka_tests;
using namespace std::chrono_literals;

namespace {

std::string broker() {
  auto b = real_broker();
  if (!b)
    BOOST_FAIL("no real Kafka broker: run through ctest (fixture kafka_broker), or set "
               "SLUICE_KAFKA_DIR to a directory holding 'bootstrap'");
  return *b;
}

/// Checkpoint pieces in memory, for driving a sink instance by hand.
struct memory_pieces final : snapshot_writer, snapshot_reader {
  std::map<std::string, std::string> pieces;
  result<void> put(const std::string& piece, std::string bytes) override {
    pieces[piece] = std::move(bytes);
    return {};
  }
  result<std::optional<std::string>> get(const std::string& piece) override {
    if (auto it = pieces.find(piece); it != pieces.end())
      return std::optional<std::string>{it->second};
    return std::optional<std::string>{};
  }
};

sinks::kafka_sink_settings eo_settings(const std::string& topic, const std::string& prefix) {
  sinks::kafka_sink_settings s;
  s.bootstrap_servers = broker();
  s.topic = topic;
  s.delivery = sinks::kafka_delivery::exactly_once;
  s.transactional_id_prefix = prefix;
  s.transaction_timeout = 60s;
  return s;
}

/// A new topic named after `base` with `partitions` partitions.
std::string new_topic(const std::string& base, int partitions = 1) {
  const auto topic = unique_topic(base);
  must(kafka::create_topic(broker(), topic, partitions, 30s));
  return topic;
}

/// An exactly-once sink instance for `topic` (also its transactional id prefix), opened.
std::unique_ptr<sink<reading>> open_eo_sink(const std::string& topic, int pool = 2) {
  auto settings = eo_settings(topic, topic);
  settings.producer_pool_size = pool;
  auto s = sinks::kafka<reading>{{settings}}.create({});
  must(s->open(sink_context{.name = "out", .instance = 0, .parallelism = 1, .checkpoints = true}));
  return s;
}

/// `open_eo_sink` restored from no checkpoint: a first run.
std::unique_ptr<sink<reading>> fresh_eo_sink(const std::string& topic, int pool = 2) {
  memory_pieces none;
  auto s = open_eo_sink(topic, pool);
  must(s->restore(-1, none));
  return s;
}

/// Writes readings [from, to) to `s`, then checkpoint `id`'s barrier: pre-commit and
/// snapshot into `ck`.
void write_and_snapshot(sink<reading>& s, std::int64_t from, std::int64_t to, std::int64_t id,
                        memory_pieces& ck) {
  auto batch = readings(from, to);
  must(s.write(batch));
  must(s.pre_commit(id));
  must(s.snapshot(id, ck));
}

/// Four transactions of five readings each into partition 0 of `topic`, each delivered
/// before it ends (so aborted records are really in the log, and against librdkafka issue
/// 4849: an abort right after the first produce can fail with INVALID_TXN_STATE): readings
/// 0-4 and 10-14 committed, 5-9 and 15-19 aborted. Returns the producer, for more.
kafka::producer committed_and_aborted(const std::string& topic) {
  auto p = must(kafka::producer::open({.bootstrap_servers = broker(),
                                       .transactional_id = topic + "-writer"}));
  must(p.init_transactions(30s));
  for (int round = 0; round < 4; ++round) {
    must(p.begin_transaction());
    for (int i = 0; i < 5; ++i)
      must(p.produce(topic, 0, std::nullopt, codec::to_json_line(make_reading(round * 5 + i))));
    must(p.flush(30s));
    if (round % 2 == 0)
      must(p.commit_transaction(30s));
    else
      must(p.abort_transaction(30s));
  }
  return p;
}

/// What a job with `source` (bounded) -> collect read, sorted.
std::vector<reading> read_by_job(const std::string& name, sources::kafka_source_options source) {
  job j{{.name = name}};
  auto out = sinks::collect<reading>{};
  j.from(sources::kafka<reading>{std::move(source)}).sink_to(out);
  must(j.run());
  auto got = out.records();
  std::sort(got.begin(), got.end());
  return got;
}

std::vector<reading> readings_in(const std::string& topic, bool read_committed) {
  std::vector<reading> out;
  for (auto& m : read_topic(broker(), topic, read_committed))
    out.push_back(must(codec::from_json_line<reading>(m.value)));
  std::sort(out.begin(), out.end());
  return out;
}

std::vector<reading> committed_readings(const std::string& topic) {
  return readings_in(topic, true);
}

/// Whether the committed records of `topic` (read_committed) are `want` within 15 s. A
/// commit returns once the coordinator logged it; the markers that let read_committed
/// readers past the transaction reach the partitions a little later.
bool shows_committed(const std::string& topic, const std::vector<reading>& want) {
  const auto deadline = std::chrono::steady_clock::now() + 15s;
  while (std::chrono::steady_clock::now() < deadline) {
    if (committed_readings(topic) == want)
      return true;
    std::this_thread::sleep_for(20ms); // waiting on the markers, not on an outcome
  }
  return false;
}

/// Whether `topic` holds `want` (read_uncommitted: open transactions included) within 15 s.
/// Produced records reach the broker a few milliseconds after `write`.
bool reaches_kafka(const std::string& topic, const std::vector<reading>& want) {
  const auto deadline = std::chrono::steady_clock::now() + 15s;
  while (std::chrono::steady_clock::now() < deadline) {
    if (readings_in(topic, false) == want)
      return true;
    std::this_thread::sleep_for(20ms); // waiting on the network, not on an outcome
  }
  return false;
}

/// The sink's state before the producer pool (one producer, the marker offset is the
/// checkpoint id), as sinks/kafka.cpp wrote it under "instance/<i>".
struct old_pending_txn {
  std::int64_t id = 0;
  std::uint64_t token = 0;
  std::vector<sinks::detail::kafka_out_record> records;
};
template <class Inspector>
bool inspect(Inspector& f, old_pending_txn& x) {
  return f.object("pending_txn")
    .fields(f.field("id", x.id), f.field("token", x.token), f.field("records", x.records));
}
struct old_writer_state {
  std::int32_t parallelism = 0;
  std::vector<old_pending_txn> pending;
};
template <class Inspector>
bool inspect(Inspector& f, old_writer_state& x) {
  return f.object("kafka_sink_state")
    .fields(f.field("parallelism", x.parallelism), f.field("pending", x.pending));
}

} // namespace

BOOST_AUTO_TEST_SUITE(kafka_real_broker)

BOOST_AUTO_TEST_CASE(output_becomes_visible_to_read_committed_only_when_the_checkpoint_completes) {
  const auto topic = new_topic("eo-visible", 2);
  auto s = fresh_eo_sink(topic);
  memory_pieces ck1;
  write_and_snapshot(*s, 0, 20, 1, ck1);
  // Pre-committed: in Kafka, not visible.
  BOOST_TEST(committed_readings(topic).empty());
  BOOST_TEST(read_topic(broker(), topic, false).size() == 20u); // read_uncommitted sees it
  auto later = readings(20, 30);
  must(s->write(later)); // after the barrier: belongs to the next checkpoint
  must(s->commit(1));
  BOOST_TEST(shows_committed(topic, readings(0, 20)));
  must(s->close()); // aborts what no checkpoint covers
  BOOST_TEST(committed_readings(topic) == readings(0, 20), boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(a_crash_between_checkpoint_completion_and_commit_is_replayed_once) {
  const auto topic = new_topic("eo-replay");
  memory_pieces ck;
  {
    auto s = fresh_eo_sink(topic);
    write_and_snapshot(*s, 0, 50, 1, ck);
    // Checkpoint 1 completes now, but the process dies before commit(1): the sink object
    // is dropped without commit or abort, its transaction left open in the broker.
    s.release(); // leak on purpose: a crashed process runs no destructor
  }
  auto s = open_eo_sink(topic);
  must(s->restore(1, ck)); // fences the dead producer, sees no marker, writes checkpoint 1 again
  BOOST_TEST(committed_readings(topic) == readings(0, 50), boost::test_tools::per_element());
  // A second restart from the same checkpoint finds the marker and writes nothing.
  auto again = open_eo_sink(topic);
  must(again->restore(1, ck));
  BOOST_TEST(committed_readings(topic) == readings(0, 50), boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(a_crash_after_the_commit_does_not_write_again) {
  const auto topic = new_topic("eo-committed");
  memory_pieces ck;
  {
    auto s = fresh_eo_sink(topic);
    write_and_snapshot(*s, 0, 30, 1, ck);
    must(s->commit(1));
    auto more = readings(30, 40);
    must(s->write(more)); // open transaction of the next checkpoint, lost in the crash
    s.release();
  }
  auto s = open_eo_sink(topic);
  must(s->restore(1, ck));
  BOOST_TEST(committed_readings(topic) == readings(0, 30), boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(markers_of_an_earlier_run_do_not_hide_a_new_runs_output) {
  // A first run commits checkpoints 1..3; the checkpoint directory is then deleted and a new
  // run starts over at 1 with the same prefix. Its checkpoint 1, interrupted before the
  // commit, must still be written: markers only count within the run that wrote them.
  const auto topic = new_topic("eo-runs");
  {
    memory_pieces ck;
    auto s = fresh_eo_sink(topic);
    for (int id = 1; id <= 3; ++id) {
      write_and_snapshot(*s, id * 10, id * 10 + 5, id, ck);
      must(s->commit(id));
    }
    must(s->close());
  }
  memory_pieces ck;
  {
    auto s = fresh_eo_sink(topic);
    write_and_snapshot(*s, 100, 105, 1, ck);
    s.release();
  }
  auto s = open_eo_sink(topic);
  must(s->restore(1, ck));
  BOOST_TEST(committed_readings(topic) == readings({{10, 15}, {20, 25}, {30, 35}, {100, 105}}),
             boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(a_zombie_producer_is_fenced_off) {
  const auto topic = new_topic("eo-fence");
  auto zombie = fresh_eo_sink(topic);
  auto batch = readings(0, 5);
  must(zombie->write(batch));
  auto successor = fresh_eo_sink(topic); // same transactional id: takes over
  // Fenced at the first transactional call after the takeover (here the marker of the
  // pre-commit; with nothing to pre-commit it would be the commit).
  auto r = zombie->pre_commit(1);
  if (r)
    r = zombie->commit(1);
  BOOST_REQUIRE(!r);
  BOOST_TEST(r.error().message.find("another producer with the same transactional id") !=
               std::string::npos,
             r.error().message);
  BOOST_TEST(committed_readings(topic).empty());
}

BOOST_AUTO_TEST_CASE(records_after_a_barrier_go_into_the_next_transaction_before_the_previous_commits) {
  // Flink's producer pool: checkpoint 1's transaction waits, pre-committed, for the
  // checkpoint to complete while the records after its barrier are already in Kafka, in the
  // transaction of checkpoint 2 (on the pool's second producer).
  const auto topic = new_topic("eo-pool", 2);
  auto s = fresh_eo_sink(topic);
  memory_pieces ck1;
  write_and_snapshot(*s, 0, 20, 1, ck1);
  auto later = readings(20, 30);
  must(s->write(later)); // after barrier 1; checkpoint 1 is not complete yet
  must(s->flush());
  BOOST_TEST(reaches_kafka(topic, readings(0, 30)),
             "the records after barrier 1 are not in Kafka before checkpoint 1 commits");
  BOOST_TEST(committed_readings(topic).empty());
  must(s->commit(1));
  BOOST_TEST(shows_committed(topic, readings(0, 20)));
  memory_pieces ck2;
  write_and_snapshot(*s, 30, 35, 2, ck2);
  must(s->commit(2));
  BOOST_TEST(shows_committed(topic, readings(0, 35)));
  must(s->close());
}

BOOST_AUTO_TEST_CASE(a_pool_of_one_producer_keeps_the_records_after_a_barrier_until_the_commit) {
  const auto topic = new_topic("eo-pool1");
  auto s = fresh_eo_sink(topic, 1);
  memory_pieces ck1;
  write_and_snapshot(*s, 0, 20, 1, ck1);
  auto later = readings(20, 30);
  must(s->write(later)); // no free producer: waits in memory
  must(s->commit(1));    // then goes into the next transaction
  BOOST_TEST(committed_readings(topic) == readings(0, 20), boost::test_tools::per_element());
  memory_pieces ck2;
  write_and_snapshot(*s, 30, 35, 2, ck2);
  must(s->commit(2));
  BOOST_TEST(shows_committed(topic, readings(0, 35)));
  must(s->close());
}

BOOST_AUTO_TEST_CASE(a_crash_with_the_next_transaction_open_writes_the_completed_checkpoint_once) {
  // Two transactions in Kafka at the crash: checkpoint 1's, pre-committed and complete but
  // not committed, and the open one after barrier 1. The restart fences both producers
  // (aborting both), writes checkpoint 1 again from the checkpoint, and leaves the rest to
  // the sources' replay.
  const auto topic = new_topic("eo-crash-open");
  memory_pieces ck1;
  {
    auto s = fresh_eo_sink(topic);
    write_and_snapshot(*s, 0, 20, 1, ck1);
    auto later = readings(20, 30);
    must(s->write(later));
    must(s->flush());
    BOOST_REQUIRE(reaches_kafka(topic, readings(0, 30)));
    s.release(); // a crashed process runs no destructor
  }
  auto s = open_eo_sink(topic);
  must(s->restore(1, ck1));
  BOOST_TEST(committed_readings(topic) == readings(0, 20), boost::test_tools::per_element());
  auto again = open_eo_sink(topic);
  must(again->restore(1, ck1));
  BOOST_TEST(committed_readings(topic) == readings(0, 20), boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(a_crash_after_a_commit_on_one_producer_settles_the_other_once) {
  // Checkpoint 1 committed on the first producer; checkpoint 2 pre-committed on the second
  // and complete; the crash comes before commit(2), with checkpoint 3's records open on the
  // first producer again.
  const auto topic = new_topic("eo-crash-two");
  memory_pieces ck2;
  {
    auto s = fresh_eo_sink(topic);
    memory_pieces ck1;
    write_and_snapshot(*s, 0, 20, 1, ck1);
    write_and_snapshot(*s, 20, 30, 2, ck2); // barrier 2 before commit(1): two pre-committed
    must(s->commit(1));
    auto later = readings(30, 35);
    must(s->write(later));
    must(s->flush());
    BOOST_REQUIRE(reaches_kafka(topic, readings(0, 35)));
    s.release();
  }
  auto s = open_eo_sink(topic);
  must(s->restore(2, ck2)); // ck2 holds both; 1 is found committed, 2 is written again
  BOOST_TEST(committed_readings(topic) == readings(0, 30), boost::test_tools::per_element());
  auto again = open_eo_sink(topic);
  must(again->restore(2, ck2));
  BOOST_TEST(committed_readings(topic) == readings(0, 30), boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(barriers_overtaking_commits_wait_in_memory_and_stay_exactly_once) {
  // Three barriers before any commit with a pool of two: checkpoint 3's records find no free
  // producer and wait in memory; commit(3) writes them in a transaction of their own. A crash
  // before that commit, and one after it, each give every record once.
  for (bool crash_before_last_commit : {true, false}) {
    const auto topic = new_topic(crash_before_last_commit ? "eo-overtake-a" : "eo-overtake-b");
    memory_pieces ck1, ck2, ck3;
    {
      auto s = fresh_eo_sink(topic);
      write_and_snapshot(*s, 0, 10, 1, ck1);
      write_and_snapshot(*s, 10, 20, 2, ck2);
      write_and_snapshot(*s, 20, 30, 3, ck3); // no producer free: in memory
      must(s->commit(2));
      BOOST_TEST(shows_committed(topic, readings(0, 20)));
      auto later = readings(30, 35); // waits too: checkpoint 3 must reach Kafka first
      must(s->write(later));
      if (!crash_before_last_commit) {
        must(s->commit(3));
        BOOST_TEST(shows_committed(topic, readings(0, 30)));
      }
      s.release();
    }
    auto s = open_eo_sink(topic);
    must(s->restore(3, ck3));
    BOOST_TEST(committed_readings(topic) == readings(0, 30), boost::test_tools::per_element());
    auto again = open_eo_sink(topic);
    must(again->restore(3, ck3));
    BOOST_TEST(committed_readings(topic) == readings(0, 30), boost::test_tools::per_element());
  }
}

BOOST_AUTO_TEST_CASE(a_checkpoint_of_the_single_producer_sink_restores_exactly_once) {
  // A checkpoint written before the producer pool: its piece "instance/0" holds a pending
  // transaction whose marker would be the checkpoint id, in the group of the same
  // transactional id as the pool's first producer.
  const auto topic = new_topic("eo-old-state");
  old_writer_state st;
  st.parallelism = 1;
  old_pending_txn t{1, 12345, {}};
  for (auto& r : readings(0, 5))
    t.records.push_back({std::nullopt, codec::to_json_line(r), -1});
  st.pending.push_back(std::move(t));
  std::vector<std::byte> bytes;
  codec::to_binary(st, bytes);
  memory_pieces ck;
  ck.pieces["instance/0"] = std::string{reinterpret_cast<const char*>(bytes.data()), bytes.size()};
  auto s = open_eo_sink(topic);
  must(s->restore(1, ck));
  BOOST_TEST(committed_readings(topic) == readings(0, 5), boost::test_tools::per_element());
  auto again = open_eo_sink(topic);
  must(again->restore(1, ck));
  BOOST_TEST(committed_readings(topic) == readings(0, 5), boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(the_source_skips_aborted_transactions_by_default) {
  const auto topic = new_topic("rc-source");
  committed_and_aborted(topic);
  BOOST_TEST(read_by_job("rc", {.bootstrap_servers = broker(), .topics = {topic}, .bounded = true}) ==
               readings({{0, 5}, {10, 15}}),
             boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(micro_batches_end_at_the_last_stable_offset_past_transaction_markers) {
  // Committed and aborted transactions, then one left open: under read_committed a trigger
  // ends at the last stable offset, which lies past a marker (no record for the source to
  // reach it by) and before the open transaction's records.
  const auto topic = new_topic("rc-micro");
  auto p = committed_and_aborted(topic);
  // Offsets 0-4 committed, 5 marker, 6-10 aborted, 11 marker, 12-16 committed, 17 marker,
  // 18-22 aborted, 23 marker: the last stable offset is 24. Then 24-28, not committed yet.
  must(p.begin_transaction());
  for (int i = 20; i < 25; ++i)
    must(p.produce(topic, 0, std::nullopt, codec::to_json_line(make_reading(i))));
  must(p.flush(30s));
  job_options o{.name = "rc-micro", .trigger = triggers::available_now()};
  o.output_mode = output_mode::append;
  job j{o};
  auto out = sinks::collect<reading>{};
  auto opts = sources::kafka_source_options{.bootstrap_servers = broker(), .topics = {topic}};
  opts.max_offsets_per_trigger = 6; // ends inside aborted records and on markers
  j.from(sources::kafka<reading>{opts}).name("in").sink_to(out);
  auto exec = must(j.start());
  if (!exec->wait_for(60s)) {
    exec->cancel();
    permit_unchecked(exec->wait());
    BOOST_FAIL("available_now over a transactional topic did not end within 60 s");
  }
  must(exec->wait());
  auto got = out.records();
  std::sort(got.begin(), got.end());
  BOOST_TEST(got == readings({{0, 5}, {10, 15}}), boost::test_tools::per_element());
  auto last = exec->last_progress();
  BOOST_REQUIRE(last);
  BOOST_REQUIRE_EQUAL(last->sources.size(), 1u);
  BOOST_TEST(last->sources[0].end_offset == "{\"" + topic + "\":{\"0\":24}}");
  must(p.commit_transaction(30s));
}

BOOST_AUTO_TEST_CASE(a_stateful_job_writes_exactly_once_with_checkpoints) {
  const auto in = new_topic("job-in", 3);
  const auto out_topic = new_topic("job-out", 2);
  std::vector<std::string> values;
  for (int i = 0; i < 600; ++i)
    values.push_back(codec::to_json_line(make_reading(i)));
  produce_all(broker(), in, values, [](std::size_t i) { return int(i % 3); });
  test::temp_dir dir;
  job_options o{.name = "eo-job", .parallelism = 2};
  o.checkpoints.dir = dir.path / "ckpt";
  o.checkpoints.interval = 50ms;
  job j{o};
  j.from(sources::kafka<reading>{{.bootstrap_servers = broker(), .topics = {in}, .bounded = true}})
    .name("in")
    .key_by([](const reading& r) { return r.name; })
    .reduce([](const reading& acc, const reading& r) {
      return reading{r.id, r.name, acc.value + r.value, r.ts};
    })
    .name("sum")
    .sink_to(sinks::kafka<reading>{{eo_settings(out_topic, out_topic)}})
    .name("out");
  auto done = must(j.run());
  BOOST_TEST(done.checkpoints_completed >= 1);
  auto got = committed_readings(out_topic);
  BOOST_REQUIRE_EQUAL(got.size(), 600u);
  // One output per input record, and each key's last output holds the key's whole sum.
  std::map<std::string, std::int64_t> sums, last;
  for (int i = 0; i < 600; ++i)
    sums[make_reading(i).name] += make_reading(i).value;
  for (auto& r : got)
    last[r.name] = std::max(last[r.name], r.value);
  BOOST_TEST(last == sums);
  // The consumer group saw the checkpointed offsets (for lag tools).
  std::int64_t committed = 0;
  for (int p = 0; p < 3; ++p) {
    auto c = must(kafka::committed_offset(broker(), {}, "sluice-in", {in, p}, 10s));
    if (c)
      committed += c->offset;
  }
  BOOST_TEST(committed == 600);
}

BOOST_AUTO_TEST_CASE(new_partitions_of_a_topic_are_read_after_discovery) {
  const auto topic = new_topic("grow");
  produce_all(broker(), topic, {codec::to_json_line(make_reading(0))}, [](std::size_t) { return 0; });
  auto clock = std::make_shared<manual_clock>();
  auto src = sources::kafka<reading>{{.bootstrap_servers = broker(), .topics = {topic},
                                      .discovery_interval = 5s}}.create({});
  must(src->open(source_context{"grow", 0, 1, clock}));
  std::vector<reading> got;
  auto poll_until = [&](std::size_t n) {
    const auto deadline = std::chrono::steady_clock::now() + 30s;
    while (got.size() < n) {
      BOOST_REQUIRE(std::chrono::steady_clock::now() < deadline);
      batch_ptr recs, dead;
      auto r = must(src->poll_batches(100, recs, dead));
      if (recs)
        for (auto& x : records_of<reading>(*recs))
          got.push_back(x);
      if (r.state == poll_result::status::idle)
        std::this_thread::sleep_for(1ms);
    }
  };
  poll_until(1);
  must(kafka::add_partitions(broker(), topic, 3, 30s));
  produce_all(broker(), topic,
              {codec::to_json_line(make_reading(1)), codec::to_json_line(make_reading(2))},
              [](std::size_t i) { return int(i + 1); });
  clock->advance(5s);
  poll_until(3);
  std::sort(got.begin(), got.end());
  BOOST_TEST(got == readings(0, 3), boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(a_fresh_start_at_a_timestamp_skips_older_records) {
  const auto topic = new_topic("by-time");
  produce_all(broker(), topic, {codec::to_json_line(make_reading(0)), codec::to_json_line(make_reading(1))},
              [](std::size_t) { return 0; });
  // Create times are the wall clock when produced: the cut lies between the two batches.
  const auto cut = std::chrono::time_point_cast<std::chrono::microseconds>(
    std::chrono::system_clock::now() + 1ms);
  std::this_thread::sleep_for(5ms); // so the second batch's create time is after the cut
  produce_all(broker(), topic, {codec::to_json_line(make_reading(2))}, [](std::size_t) { return 0; });
  auto read_from = [&](event_time t) {
    return read_by_job("by-time", {.bootstrap_servers = broker(), .topics = {topic},
                                   .start_position = sources::kafka_start::at_timestamp(t),
                                   .bounded = true});
  };
  BOOST_TEST(read_from(event_time{}) == readings(0, 3), boost::test_tools::per_element());
  BOOST_TEST(read_from(cut) == readings(2, 3), boost::test_tools::per_element());
  BOOST_TEST(read_from(cut + std::chrono::hours{24}).empty());
}

BOOST_AUTO_TEST_CASE(kcat_writes_what_the_engine_reads_and_reads_what_it_commits) {
  const auto in = new_topic("kcat-in");
  const auto out_topic = new_topic("kcat-out");
  test::temp_dir dir;
  {
    std::ofstream lines{dir.path / "in.jsonl"};
    for (int i = 0; i < 25; ++i)
      lines << codec::to_json_line(make_reading(i)) << "\n";
  }
  const auto produce = "kcat -P -b " + broker() + " -t " + in + " -l " +
                       (dir.path / "in.jsonl").string();
  BOOST_REQUIRE_EQUAL(std::system(produce.c_str()), 0);
  job_options o{.name = "kcat-interop"};
  o.checkpoints.dir = dir.path / "ckpt";
  o.checkpoints.interval = 50ms;
  job j{o};
  j.from(sources::kafka<reading>{{.bootstrap_servers = broker(), .topics = {in}, .bounded = true}})
    .name("in")
    .sink_to(sinks::kafka<reading>{{eo_settings(out_topic, out_topic)}})
    .name("out");
  must(j.run());
  const auto consume = "kcat -C -b " + broker() + " -t " + out_topic +
                       " -X isolation.level=read_committed -e -q -o beginning";
  std::FILE* pipe = ::popen(consume.c_str(), "r");
  BOOST_REQUIRE(pipe);
  std::vector<reading> got;
  char buf[4096];
  while (std::fgets(buf, sizeof buf, pipe)) {
    std::string line{buf};
    while (!line.empty() && (line.back() == '\n' || line.back() == '\r'))
      line.pop_back();
    if (!line.empty())
      got.push_back(must(codec::from_json_line<reading>(line)));
  }
  BOOST_REQUIRE_EQUAL(::pclose(pipe), 0);
  std::sort(got.begin(), got.end());
  BOOST_TEST(got == readings(0, 25), boost::test_tools::per_element());
}

BOOST_AUTO_TEST_SUITE_END()
