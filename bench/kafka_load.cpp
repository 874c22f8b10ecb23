// The load and measuring side of the Kafka benchmark (bench/kafka_bench.sh, issue 6):
//
//   sluice_kafka_load create  --bootstrap B --topic out --partitions 4
//   sluice_kafka_load delete  --bootstrap B --topic out
//   sluice_kafka_load fill    --bootstrap B --topic in --records 2000000 --partitions 4
//   sluice_kafka_load count   --bootstrap B --topic out --expect 2000000
//   sluice_kafka_load latency --bootstrap B --in in --out out --rate 20000 --seconds 20
//
// create:  creates a topic (kcat cannot); delete: deletes one (the bench keeps the broker's
//          data small).
// fill:    creates the topic (with --partitions > 0) and writes N payments of exactly --size
//          bytes of JSON, `memo` padded, round-robin over the partitions.
// count:   reads the whole topic (read_committed) and checks it holds exactly --expect
//          records with the ids 0..expect-1, each once; exits 1 otherwise.
// latency: writes payments at a fixed rate with sent_us = system_clock µs at the send, while
//          a read_committed consumer of --out takes receive time - sent_us of every record;
//          prints p50/p99/p99.9/max over the records sent in --seconds after the first
//          --warmup seconds, and exits 1 unless each of them arrived once within --drain
//          seconds after the end of --seconds (the load goes on meanwhile). --out = --in
//          measures the broker and this driver alone.
//
// The payments are samples/kafka_pipeline's (payments.hpp); the measuring side reads only the
// "id" and "sent_us" fields, so it takes the pipeline's account_total and kcat's verbatim
// copies alike.
#include "sluice/core/codec/json.hpp"
#include "sluice/kafka/client.hpp"
#include "sluice/samples/kafka_pipeline/payments.hpp"

#include <CLI/CLI.hpp>
#include <fmt/core.h>
#include <librdkafka/rdkafka.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <charconv>
#include <chrono>
#include <cstdint>
#include <fstream>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

using namespace sluice;
using namespace std::chrono_literals;
using steady = std::chrono::steady_clock;

namespace {

using samples::payment;

std::int64_t now_us() {
  return std::chrono::duration_cast<std::chrono::microseconds>(
           std::chrono::system_clock::now().time_since_epoch())
    .count();
}

/// Payment `id` as JSON of exactly `size` bytes (the memo takes up the slack).
std::string payment_json(std::int64_t id, std::int64_t sent_us, std::size_t size) {
  payment p{id, id % 1000, 100 + (id * 7919) % 100000, sent_us, {}};
  const auto bare = codec::to_json_line(p).size();
  if (bare > size)
    throw std::runtime_error(fmt::format("payment {} needs {} bytes > --size {}", id, bare, size));
  p.memo.assign(size - bare, 'x');
  auto s = codec::to_json_line(p);
  if (s.size() != size)
    throw std::runtime_error(fmt::format("payment {} is {} bytes, not {}", id, s.size(), size));
  return s;
}

/// The integer after `"name":` in a JSON object (no nesting needed here).
std::optional<std::int64_t> int_field(std::string_view json, std::string_view quoted_name) {
  auto at = json.find(quoted_name);
  if (at == std::string_view::npos)
    return std::nullopt;
  at += quoted_name.size();
  std::int64_t v = 0;
  auto [end, ec] = std::from_chars(json.data() + at, json.data() + json.size(), v);
  if (ec != std::errc{})
    return std::nullopt;
  return v;
}

template <class T>
T must(result<T> r, const char* what) {
  if (!r)
    throw std::runtime_error(std::string{what} + ": " + r.error().to_string());
  return std::move(*r);
}
void must(result<void> r, const char* what) {
  if (!r)
    throw std::runtime_error(std::string{what} + ": " + r.error().to_string());
}

/// Tracks which ids arrived.
struct id_check {
  std::vector<std::uint8_t> seen;
  std::uint64_t records = 0, distinct = 0, duplicates = 0, bad = 0;
  explicit id_check(std::size_t n) : seen(n, 0) {}
  void add(std::optional<std::int64_t> id) {
    ++records;
    if (!id || *id < 0 || static_cast<std::size_t>(*id) >= seen.size()) {
      ++bad;
      return;
    }
    if (seen[static_cast<std::size_t>(*id)]++)
      ++duplicates;
    else
      ++distinct;
  }
};

kafka::consumer open_reader(const std::string& bootstrap, const std::string& topic,
                            bool report_end) {
  auto c = must(kafka::consumer::open({.bootstrap_servers = bootstrap,
                                       .group_id = "sluice-kafka-load",
                                       .read_committed = true,
                                       .report_end = report_end,
                                       .label = "reader of " + topic}),
                "opening the consumer");
  auto parts = must(c.partitions({topic}, "", 30s), "listing partitions");
  std::vector<std::pair<kafka::topic_partition, std::int64_t>> start;
  for (auto& tp : parts)
    start.emplace_back(tp, kafka::logical_offset::beginning);
  must(c.assign(start), "assigning partitions");
  return c;
}

/// Deletes `topic` (librdkafka's admin API; the wrapper has no call for it).
void delete_topic(const std::string& bootstrap, const std::string& topic) {
  std::array<char, 512> err{};
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  if (rd_kafka_conf_set(conf, "bootstrap.servers", bootstrap.c_str(), err.data(), err.size()) !=
      RD_KAFKA_CONF_OK)
    throw std::runtime_error(err.data());
  rd_kafka_t* rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err.data(), err.size());
  if (!rk)
    throw std::runtime_error(err.data());
  rd_kafka_queue_t* q = rd_kafka_queue_new(rk);
  rd_kafka_DeleteTopic_t* t = rd_kafka_DeleteTopic_new(topic.c_str());
  rd_kafka_DeleteTopics(rk, &t, 1, nullptr, q);
  rd_kafka_DeleteTopic_destroy(t);
  std::string failure;
  if (rd_kafka_event_t* ev = rd_kafka_queue_poll(q, 60000)) {
    if (rd_kafka_event_error(ev)) {
      failure = rd_kafka_event_error_string(ev);
    } else if (auto* res = rd_kafka_event_DeleteTopics_result(ev)) {
      size_t n = 0;
      auto** topics = rd_kafka_DeleteTopics_result_topics(res, &n);
      for (size_t i = 0; i < n; ++i)
        if (rd_kafka_topic_result_error(topics[i]))
          failure = rd_kafka_topic_result_error_string(topics[i]);
    }
    rd_kafka_event_destroy(ev);
  } else {
    failure = "no answer within 60 s";
  }
  rd_kafka_queue_destroy(q);
  rd_kafka_destroy(rk);
  if (!failure.empty())
    throw std::runtime_error("deleting topic " + topic + ": " + failure);
}

int fill(const std::string& bootstrap, const std::string& topic, std::int64_t records,
         int partitions, std::size_t size) {
  if (partitions > 0)
    must(kafka::create_topic(bootstrap, topic, partitions, 60s), "creating the topic");
  auto p = must(kafka::producer::open({.bootstrap_servers = bootstrap,
                                       .extra = {{"linger.ms", "10"},
                                                 {"batch.num.messages", "10000"},
                                                 {"queue.buffering.max.messages", "1000000"}},
                                       .label = "filler"}),
                "opening the producer");
  const int n = must(p.partition_count(topic, 30s), "partition count");
  const auto t0 = steady::now();
  const auto sent = now_us();
  for (std::int64_t i = 0; i < records; ++i)
    must(p.produce(topic, static_cast<int>(i % n), std::nullopt, payment_json(i, sent, size)),
         "producing");
  must(p.flush(120s), "flushing");
  const double s = std::chrono::duration<double>(steady::now() - t0).count();
  fmt::print("fill: {} records of {} bytes into {} ({} partitions) in {:.2f} s\n", records, size,
             topic, n, s);
  return 0;
}

int count(const std::string& bootstrap, const std::string& topic, std::int64_t expect,
          double timeout_s) {
  auto c = open_reader(bootstrap, topic, true);
  const auto parts = must(c.partitions({topic}, "", 30s), "listing partitions");
  std::set<kafka::topic_partition> ended;
  id_check ids(static_cast<std::size_t>(expect));
  std::int64_t first_ts = INT64_MAX, last_ts = INT64_MIN;
  const auto deadline = steady::now() + std::chrono::duration<double>(timeout_s);
  while (ended.size() < parts.size() && steady::now() < deadline) {
    auto n = must(c.poll(
                    10000,
                    [&](const kafka::message_view& m) {
                      ids.add(int_field(m.value(), "\"id\":"));
                      if (auto ts = m.timestamp_ms()) {
                        first_ts = std::min(first_ts, *ts);
                        last_ts = std::max(last_ts, *ts);
                      }
                    },
                    [&](const kafka::topic_partition& tp, std::int64_t) { ended.insert(tp); }),
                  "polling");
    if (n == 0)
      std::this_thread::sleep_for(1ms);
  }
  const auto want = static_cast<std::uint64_t>(expect);
  const bool ok = ended.size() == parts.size() && ids.records == want && ids.distinct == want;
  fmt::print("count: {} holds {} records (read_committed), {} distinct ids of {}, {} duplicates, "
             "{} unreadable; record timestamps span {:.3f} s: {}\n",
             topic, ids.records, ids.distinct, expect, ids.duplicates, ids.bad,
             ids.records ? (last_ts - first_ts) / 1000.0 : 0.0, ok ? "OK" : "MISMATCH");
  return ok ? 0 : 1;
}

double percentile(const std::vector<std::int64_t>& sorted, double q) {
  if (sorted.empty())
    return 0;
  auto i = static_cast<std::size_t>(q * static_cast<double>(sorted.size() - 1) + 0.5);
  return static_cast<double>(sorted[std::min(i, sorted.size() - 1)]);
}

int latency(const std::string& bootstrap, const std::string& in, const std::string& out,
            double rate, double seconds, double warmup, double drain, std::size_t size,
            bool series, const std::string& arrivals_file) {
  // Records 0..total-1 are measured (after the warmup); the load then goes on at the same
  // rate until all of them arrived, so none is judged at the end of a stream (kcat -P holds
  // its last partial read; a transaction commits at the next checkpoint).
  const auto total = static_cast<std::int64_t>(rate * seconds);
  auto reader = open_reader(bootstrap, out, false);
  auto p = must(kafka::producer::open({.bootstrap_servers = bootstrap, .label = "load"}),
                "opening the producer");
  const int n = must(p.partition_count(in, 30s), "partition count");

  std::atomic<bool> all_arrived{false};
  std::atomic<bool> give_up{false};
  std::atomic<std::int64_t> measure_from_us{INT64_MAX};
  std::vector<std::int64_t> lat;
  lat.reserve(static_cast<std::size_t>(total));
  // --series: the worst latency per second of sending, to see where the tail comes from.
  std::vector<std::int64_t> worst(static_cast<std::size_t>(seconds + drain + 2), 0);
  std::atomic<std::int64_t> series_from_us{0};
  id_check ids(static_cast<std::size_t>(total));
  std::optional<std::string> reader_error;
  // --arrivals: (receive, send) wall clock µs of every measured record, for timelines.
  std::vector<std::pair<std::int64_t, std::int64_t>> arrivals;

  std::thread consume([&] {
    try {
      while (ids.distinct < static_cast<std::uint64_t>(total) && !give_up) {
        const auto on_record = [&](const kafka::message_view& m) {
          const auto now = now_us();
          auto id = int_field(m.value(), "\"id\":");
          if (id && *id >= total)
            return; // sent after the measured ones
          ids.add(id);
          auto sent = int_field(m.value(), "\"sent_us\":");
          if (!sent)
            return;
          if (*sent >= measure_from_us.load()) {
            lat.push_back(now - *sent);
            if (!arrivals_file.empty())
              arrivals.emplace_back(now, *sent);
          }
          const auto sec = static_cast<std::size_t>(
            std::max<std::int64_t>(0, *sent - series_from_us.load()) / 1'000'000);
          if (sec < worst.size())
            worst[sec] = std::max(worst[sec], now - *sent);
        };
        auto got = must(reader.poll(10000, on_record), "polling");
        if (got == 0)
          std::this_thread::sleep_for(100us);
      }
    } catch (const std::exception& e) {
      reader_error = e.what();
    }
    all_arrived = true;
  });

  // The load: every 500 µs, send what is due at `rate` since the start.
  const auto t0 = steady::now();
  const auto start_us = now_us();
  series_from_us = start_us;
  measure_from_us = start_us + static_cast<std::int64_t>(warmup * 1e6);
  std::int64_t sent = 0;
  double measured_s = 0;
  while (!all_arrived) {
    const double elapsed = std::chrono::duration<double>(steady::now() - t0).count();
    if (elapsed > seconds + drain) {
      give_up = true;
      break;
    }
    const auto due = static_cast<std::int64_t>(elapsed * rate);
    for (; sent < due; ++sent) {
      must(p.produce(in, static_cast<int>(sent % n), std::nullopt,
                     payment_json(sent, now_us(), size)),
           "producing");
      if (sent + 1 == total)
        measured_s = std::chrono::duration<double>(steady::now() - t0).count();
    }
    p.poll();
    std::this_thread::sleep_for(500us);
  }
  consume.join();
  must(p.flush(60s), "flushing");
  if (reader_error)
    throw std::runtime_error(*reader_error);

  if (series) {
    std::string line = "worst latency (ms) per second of sending:";
    for (std::size_t i = 0; i < static_cast<std::size_t>(seconds) && i < worst.size(); ++i)
      line += fmt::format(" {:.0f}", worst[i] / 1e3);
    fmt::print(stderr, "{}\n", line);
  }
  if (!arrivals_file.empty()) {
    std::ofstream a{arrivals_file};
    for (auto [recv, snd] : arrivals)
      a << recv << ' ' << snd << '\n';
    if (!a)
      throw std::runtime_error("cannot write " + arrivals_file);
  }
  std::sort(lat.begin(), lat.end());
  const bool ok = ids.distinct == static_cast<std::uint64_t>(total) && ids.bad == 0;
  fmt::print("latency: sent {} at {:.0f} rec/s (asked {:.0f}) in {:.1f} s, then {} more until "
             "they arrived; received {} ({} distinct, {} duplicates); measured {} after {:.0f} s "
             "warmup: p50_ms {:.2f} p99_ms {:.2f} p999_ms {:.2f} max_ms {:.2f}: {}\n",
             total, measured_s > 0 ? total / measured_s : 0.0, rate, measured_s, sent - total,
             ids.records, ids.distinct, ids.duplicates, lat.size(), warmup,
             percentile(lat, 0.5) / 1e3, percentile(lat, 0.99) / 1e3,
             percentile(lat, 0.999) / 1e3, lat.empty() ? 0.0 : lat.back() / 1e3,
             ok ? "OK" : "MISSING RECORDS");
  return ok ? 0 : 1;
}

} // namespace

int main(int argc, char** argv) {
  CLI::App app{"Load and measurements for the Kafka benchmark (bench/kafka_bench.sh)"};
  app.require_subcommand(1);
  std::string bootstrap = "127.0.0.1:9092";
  std::size_t size = 100;
  app.add_option("--bootstrap", bootstrap, "Kafka bootstrap servers");
  app.add_option("--size", size, "bytes of JSON per payment");

  std::string topic;
  std::int64_t records = 2'000'000;
  int partitions = 0;
  auto* f = app.add_subcommand("fill", "write N payments of --size bytes");
  f->add_option("--topic", topic)->required();
  f->add_option("--records", records);
  f->add_option("--partitions", partitions, "create the topic with this many partitions first");

  auto* k = app.add_subcommand("create", "create a topic");
  k->add_option("--topic", topic)->required();
  k->add_option("--partitions", partitions)->required();

  auto* d = app.add_subcommand("delete", "delete a topic");
  d->add_option("--topic", topic)->required();

  std::int64_t expect = 0;
  double timeout = 300;
  auto* c = app.add_subcommand("count", "check a topic holds exactly ids 0..expect-1");
  c->add_option("--topic", topic)->required();
  c->add_option("--expect", expect)->required();
  c->add_option("--timeout", timeout, "seconds");

  std::string in, out;
  double rate = 20000, seconds = 20, warmup = 2, drain = 30;
  bool series = false;
  std::string arrivals;
  auto* l = app.add_subcommand("latency", "fixed-rate load and end-to-end latency");
  l->add_option("--in", in)->required();
  l->add_option("--out", out)->required();
  l->add_option("--rate", rate, "records per second");
  l->add_option("--seconds", seconds, "how long to send");
  l->add_option("--warmup", warmup, "seconds of sending not measured");
  l->add_option("--drain", drain, "seconds to wait for the last records");
  l->add_flag("--series", series, "also print the worst latency of each second (stderr)");
  l->add_option("--arrivals", arrivals,
                 "write 'receive_us sent_us' (wall clock) of each measured record to this file");
  CLI11_PARSE(app, argc, argv);

  try {
    if (*k) {
      must(kafka::create_topic(bootstrap, topic, partitions, 60s), "creating the topic");
      return 0;
    }
    if (*d) {
      delete_topic(bootstrap, topic);
      return 0;
    }
    if (*f)
      return fill(bootstrap, topic, records, partitions, size);
    if (*c)
      return count(bootstrap, topic, expect, timeout);
    return latency(bootstrap, in, out, rate, seconds, warmup, drain, size, series, arrivals);
  } catch (const std::exception& e) {
    fmt::print(stderr, "sluice_kafka_load: {}\n", e.what());
    return 2;
  }
}
