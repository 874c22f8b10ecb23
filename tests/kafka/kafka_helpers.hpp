#pragma once
/// Shared pieces of the Kafka tests: a record type and its test data, producing it,
/// reading a topic back completely, librdkafka's mock cluster, and finding the real broker
/// started by the CTest fixture.
#include "sluice/core/codec/json.hpp"
#include "sluice/kafka/client.hpp"
#include "sluice/kafka/record.hpp"
#include "sluice/tools/kafka_mock/mock_cluster.hpp"

#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <initializer_list>
#include <map>
#include <optional>
#include <unistd.h>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace sluice::test::kafka_tests {

using namespace std::chrono_literals;

struct reading {
  std::int64_t id = 0;
  std::string name;
  std::int64_t value = 0;
  event_time ts{};
  friend bool operator==(const reading&, const reading&) = default;
  friend auto operator<=>(const reading&, const reading&) = default;
  friend std::ostream& operator<<(std::ostream& os, const reading& r) {
    return os << "reading{" << r.id << "," << r.name << "," << r.value << "}";
  }
};
template <class Inspector>
bool inspect(Inspector& f, reading& x) {
  return f.object("reading").fields(f.field("id", x.id), f.field("name", x.name),
                                    f.field("value", x.value), f.field("ts", x.ts));
}

inline event_time at_ms(std::int64_t ms) {
  return event_time{std::chrono::milliseconds{1'700'000'000'000 + ms}};
}

inline reading make_reading(std::int64_t i) {
  return {i, "k" + std::to_string(i % 7), i * 10, at_ms(i)};
}

template <class T>
T must(result<T> r) {
  if (!r)
    BOOST_FAIL(r.error().to_string());
  return std::move(*r);
}
inline void must(result<void> r) {
  if (!r)
    BOOST_FAIL(r.error().to_string());
}

/// Readings [from, to), in order.
inline std::vector<reading> readings(std::int64_t from, std::int64_t to) {
  std::vector<reading> out;
  for (auto i = from; i < to; ++i)
    out.push_back(make_reading(i));
  return out;
}

/// The readings of every range [from, to), sorted.
inline std::vector<reading>
readings(std::initializer_list<std::pair<std::int64_t, std::int64_t>> ranges) {
  std::vector<reading> out;
  for (auto [from, to] : ranges)
    for (auto& r : readings(from, to))
      out.push_back(r);
  std::sort(out.begin(), out.end());
  return out;
}

/// Readings [from, to) as JSON lines: what a producer writes.
inline std::vector<std::string> json_readings(std::int64_t from, std::int64_t to) {
  std::vector<std::string> out;
  for (auto& r : readings(from, to))
    out.push_back(codec::to_json_line(r));
  return out;
}

/// librdkafka's mock cluster with one broker, for tests that link sluice_kafka_mock.
struct mock_fixture {
  kafka::mock_cluster cluster = must(kafka::mock_cluster::create(1));
  std::string bootstrap = cluster.bootstrap();
};

/// Writes `values` to `topic`: value i goes to partition `partition_of(i)` (-1: by key).
inline void produce_all(const std::string& bootstrap, const std::string& topic,
                        const std::vector<std::string>& values,
                        const std::function<int(std::size_t)>& partition_of,
                        const std::function<std::optional<std::string>(std::size_t)>& key_of = {},
                        const kafka::header_list* headers = nullptr) {
  auto p = must(kafka::producer::open({.bootstrap_servers = bootstrap, .label = "test producer"}));
  for (std::size_t i = 0; i < values.size(); ++i) {
    std::optional<std::string> key = key_of ? key_of(i) : std::nullopt;
    must(p.produce(topic, partition_of(i),
                   key ? std::optional<std::string_view>{*key} : std::nullopt, values[i], headers));
  }
  must(p.flush(30s));
}

/// Every record of `topic` as a `read_committed` (or uncommitted) consumer sees it now.
inline std::vector<kafka::message> read_topic(const std::string& bootstrap, const std::string& topic,
                                              bool read_committed = true) {
  auto c = must(kafka::consumer::open({.bootstrap_servers = bootstrap,
                                       .group_id = "test-reader",
                                       .read_committed = read_committed,
                                       .report_end = true,
                                       .label = "test reader"}));
  auto parts = must(c.partitions({topic}, "", 10s));
  std::vector<std::pair<kafka::topic_partition, std::int64_t>> start;
  for (auto& tp : parts)
    start.emplace_back(tp, kafka::logical_offset::beginning);
  must(c.assign(start));
  std::vector<kafka::message> out;
  std::set<kafka::topic_partition> done;
  const auto deadline = std::chrono::steady_clock::now() + 60s;
  while (done.size() < parts.size()) {
    if (std::chrono::steady_clock::now() > deadline)
      BOOST_FAIL("reading topic " + topic + " did not reach its end within 60 s");
    auto n = must(c.poll(
      1000,
      [&](const kafka::message_view& m) {
        kafka::message r;
        r.value = std::string{m.value()};
        if (m.key())
          r.key = std::string{*m.key()};
        r.topic = std::string{m.topic()};
        r.partition = m.partition();
        r.offset = m.offset();
        r.headers = m.headers();
        out.push_back(std::move(r));
      },
      [&](const kafka::topic_partition& tp, std::int64_t) { done.insert(tp); }));
    if (n == 0)
      std::this_thread::sleep_for(2ms); // waiting on the network, not on an outcome
  }
  return out;
}

/// The real broker's address, from the CTest fixture (tests/kafka/README.md); unset when
/// the test runs without it.
inline std::optional<std::string> real_broker() {
  const char* dir = std::getenv("SLUICE_KAFKA_DIR");
  if (!dir)
    return std::nullopt;
  std::ifstream in{std::string{dir} + "/bootstrap"};
  std::string addr;
  if (!(in >> addr))
    return std::nullopt;
  return addr;
}

/// A topic name not used before on a shared broker.
inline std::string unique_topic(const std::string& base) {
  static int n = 0;
  return base + "-" + std::to_string(::getpid()) + "-" + std::to_string(++n) + "-" +
         std::to_string(std::chrono::steady_clock::now().time_since_epoch().count() % 1000000);
}

} // namespace sluice::test::kafka_tests
