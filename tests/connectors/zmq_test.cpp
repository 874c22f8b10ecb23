#define BOOST_TEST_MODULE zmq_connector_test
#include <boost/test/unit_test.hpp>

// The ZeroMQ connectors (sources/zmq.hpp, sinks/zmq.hpp) against sockets the test owns, on
// loopback. Every wait has a deadline and waits on a condition (a message arriving, a log
// line appearing); none sleeps and hopes.
#include "sluice/tests/connectors/reading.hpp"
#include "sluice/tests/common/temp_dir.hpp"
#include "sluice/api/job.hpp"
#include "sluice/core/log.hpp"
#include "sluice/sinks/memory.hpp"
#include "sluice/sinks/zmq.hpp"
#include "sluice/sources/collection.hpp"
#include "sluice/sources/zmq.hpp"

#include <spdlog/sinks/base_sink.h>
#include <zmq.hpp>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

using namespace sluice;
using namespace std::chrono_literals;


using test_records::reading;

namespace {

std::string error_text(const auto& r) { return r ? std::string{} : r.error().to_string(); }

std::vector<reading> make_readings(int first, int count) {
  std::vector<reading> out;
  for (int i = first; i < first + count; ++i)
    out.push_back(reading{i, "r" + std::to_string(i), i * 0.5});
  return out;
}

using test_records::json_of;

std::string binary_of(const reading& r) {
  std::vector<std::byte> bytes;
  codec::to_binary(r, bytes);
  return {reinterpret_cast<const char*>(bytes.data()), bytes.size()};
}

/// The test's side: its own context, sockets bound on an ephemeral loopback port.
struct peer {
  zmq::context_t ctx{1};
  zmq::socket_t socket;
  std::string endpoint;

  explicit peer(zmq::socket_type type) : socket(ctx, type) {
    socket.set(zmq::sockopt::linger, 0);
    // Bounds every blocking send of the test: a send that cannot leave fails the test.
    socket.set(zmq::sockopt::sndtimeo, 30'000);
    socket.bind("tcp://127.0.0.1:*");
    endpoint = socket.get(zmq::sockopt::last_endpoint);
  }

  void send(const std::vector<std::string>& parts) {
    for (std::size_t i = 0; i < parts.size(); ++i) {
      auto flags = i + 1 < parts.size() ? zmq::send_flags::sndmore : zmq::send_flags::none;
      auto sent = socket.send(zmq::buffer(parts[i]), flags);
      BOOST_REQUIRE_MESSAGE(sent, "the test's send to " << endpoint << " timed out");
    }
  }

  /// The next message's parts, waiting at most `timeout`; none on timeout.
  std::optional<std::vector<std::string>> receive(std::chrono::milliseconds timeout) {
    zmq::pollitem_t item{socket.handle(), 0, ZMQ_POLLIN, 0};
    if (zmq::poll(&item, 1, timeout) <= 0)
      return std::nullopt;
    std::vector<std::string> parts;
    for (;;) {
      zmq::message_t m;
      auto got = socket.recv(m, zmq::recv_flags::dontwait);
      BOOST_REQUIRE(got);
      parts.push_back(m.to_string());
      if (!m.more())
        return parts;
    }
  }

  /// `n` messages, each within `per_message`; fails the test on a timeout.
  std::vector<std::vector<std::string>> receive_n(std::size_t n,
                                                  std::chrono::milliseconds per_message = 30s) {
    std::vector<std::vector<std::string>> out;
    while (out.size() < n) {
      auto m = receive(per_message);
      BOOST_REQUIRE_MESSAGE(m, "only " << out.size() << " of " << n << " messages arrived at "
                                       << endpoint);
      out.push_back(std::move(*m));
    }
    return out;
  }
};

/// One source instance opened outside any job, polled by hand.
template <class T>
struct source_driver {
  std::unique_ptr<source<T>> src;
  std::vector<T> records;
  std::vector<dead_letter> dead;
  result<void> open_result;

  template <class D>
  explicit source_driver(const D& desc) {
    source_context ctx{"src", 0, 1};
    src = desc.create(ctx);
    open_result = src->open(ctx);
  }

  /// Polls until `done()` holds; a poll error or the deadline fails the test.
  template <class F>
  void poll_until(F done, std::chrono::seconds limit = 30s) {
    const auto deadline = std::chrono::steady_clock::now() + limit;
    while (!done()) {
      BOOST_REQUIRE_MESSAGE(std::chrono::steady_clock::now() < deadline,
                            "source polled for " << limit.count() << " s: " << records.size()
                                                 << " records, " << dead.size()
                                                 << " dead letters");
      source_output<T> out{records, dead};
      auto r = src->poll(out, 64);
      BOOST_REQUIRE_MESSAGE(r, error_text(r));
      if (r->state == poll_result::status::idle)
        std::this_thread::yield(); // messages still on their way through loopback
    }
  }

  /// The result of polling until a poll fails (the test expects it to).
  error poll_until_error(std::chrono::seconds limit = 30s) {
    const auto deadline = std::chrono::steady_clock::now() + limit;
    while (std::chrono::steady_clock::now() < deadline) {
      source_output<T> out{records, dead};
      auto r = src->poll(out, 64);
      if (!r)
        return r.error();
      std::this_thread::yield();
    }
    BOOST_FAIL("the source never failed");
    return {};
  }
};

/// A sink instance opened outside any job.
template <class T>
struct sink_driver {
  std::unique_ptr<sink<T>> snk;
  result<void> open_result;

  template <class D>
  explicit sink_driver(const D& desc, bool checkpoints = false) {
    sink_context ctx{.name = "out", .checkpoints = checkpoints};
    snk = desc.create(ctx);
    open_result = snk->open(ctx);
  }
  ~sink_driver() { permit_unchecked(snk->close()); }

  result<void> write(std::vector<T> records) { return snk->write(records); }
};

/// How many increasing runs `ids` must at least be split into: the length of its longest
/// strictly decreasing subsequence. p instances that each keep their order give at most p.
std::size_t interleaved_runs(const std::vector<std::int64_t>& ids) {
  std::vector<std::int64_t> tails; // patience piles over the negated values
  for (auto id : ids) {
    auto it = std::lower_bound(tails.begin(), tails.end(), -id);
    if (it == tails.end())
      tails.push_back(-id);
    else
      *it = -id;
  }
  return tails.size();
}

/// Every line the "sluice" logger writes from warn up, for the whole test run (the logger
/// only ever gains sinks: `logging::add_sink`).
class log_lines {
public:
  static log_lines& instance() {
    static log_lines l;
    return l;
  }
  std::size_t count(const std::string& part) const {
    std::lock_guard g{sink_->mtx};
    return static_cast<std::size_t>(std::count_if(
      sink_->lines.begin(), sink_->lines.end(),
      [&](const std::string& l) { return l.find(part) != std::string::npos; }));
  }
  std::string all() const {
    std::lock_guard g{sink_->mtx};
    std::string out;
    for (auto& l : sink_->lines)
      out += "\n  " + l;
    return out;
  }

private:
  log_lines() {
    sink_->set_level(spdlog::level::warn);
    logging::add_sink(sink_);
    if (logging::get().level() > spdlog::level::warn)
      logging::get().set_level(spdlog::level::warn);
  }
  struct collector final : spdlog::sinks::base_sink<std::mutex> {
    mutable std::mutex mtx;
    std::vector<std::string> lines;
    void sink_it_(const spdlog::details::log_msg& m) override {
      std::lock_guard g{mtx};
      lines.emplace_back(m.payload.data(), m.payload.size());
    }
    void flush_() override {}
  };
  std::shared_ptr<collector> sink_ = std::make_shared<collector>();
};

template <class F>
bool wait_until(F done, std::chrono::seconds limit = 30s) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (!done()) {
    if (std::chrono::steady_clock::now() >= deadline)
      return false;
    std::this_thread::sleep_for(5ms); // re-check the condition; the deadline bounds it
  }
  return true;
}

} // namespace

// -- a job from a PUSH the test owns to a PULL the test owns ----------------------------------

BOOST_AUTO_TEST_SUITE(zmq_job)

BOOST_AUTO_TEST_CASE(json_records_arrive_equal_and_in_order) {
  peer in{zmq::socket_type::push};
  peer out{zmq::socket_type::pull};
  const auto sent = make_readings(0, 2000);
  job j{{.name = "zmq-roundtrip", .parallelism = 1}};
  j.from(sources::zmq<reading>{{.endpoint = in.endpoint}})
    .name("in")
    .sink_to(sinks::zmq<reading>{{.endpoint = out.endpoint}});
  auto exec = j.start();
  BOOST_REQUIRE_MESSAGE(exec, error_text(exec));
  for (const auto& r : sent)
    in.send({json_of(r)});
  auto got = out.receive_n(sent.size());
  std::vector<reading> records;
  for (auto& m : got) {
    BOOST_REQUIRE_EQUAL(m.size(), 1u);
    auto r = codec::from_json_line<reading>(m[0]);
    BOOST_REQUIRE_MESSAGE(r, error_text(r));
    records.push_back(*r);
  }
  BOOST_TEST(records == sent, boost::test_tools::per_element());
  (*exec)->cancel();
  auto done = (*exec)->wait();
  BOOST_REQUIRE_MESSAGE(done, error_text(done));
}

BOOST_AUTO_TEST_CASE(binary_records_at_parallelism_two_keep_order_per_instance) {
  peer in{zmq::socket_type::push};
  peer out{zmq::socket_type::pull};
  const auto sent = make_readings(0, 3000);
  job j{{.name = "zmq-roundtrip-2", .parallelism = 2}};
  j.from(sources::zmq<reading>{{.endpoint = in.endpoint, .format = sources::zmq_format::binary}})
    .name("in")
    .sink_to(sinks::zmq<reading>{{.endpoint = out.endpoint, .format = sinks::zmq_format::binary}});
  auto exec = j.start();
  BOOST_REQUIRE_MESSAGE(exec, error_text(exec));
  for (const auto& r : sent)
    in.send({binary_of(r)});
  auto got = out.receive_n(sent.size());
  std::vector<reading> records;
  std::vector<std::int64_t> ids;
  for (auto& m : got) {
    BOOST_REQUIRE_EQUAL(m.size(), 1u);
    auto r = net::decode_zmq_payload<reading>(m[0], net::zmq_format::binary);
    BOOST_REQUIRE_MESSAGE(r, error_text(r));
    records.push_back(*r);
    ids.push_back(r->id);
  }
  // PUSH deals the records round-robin to the two source instances; each instance's sink
  // sends its share in order, and the test's PULL merges the two connections: what arrives
  // is every record once, in two increasing runs at most.
  std::sort(records.begin(), records.end());
  BOOST_TEST(records == sent, boost::test_tools::per_element());
  BOOST_TEST(interleaved_runs(ids) <= 2u);
  (*exec)->cancel();
  auto done = (*exec)->wait();
  BOOST_REQUIRE_MESSAGE(done, error_text(done));
}

BOOST_AUTO_TEST_CASE(truncated_binary_fails_the_job_naming_endpoint_and_message) {
  peer in{zmq::socket_type::push};
  job j;
  j.from(sources::zmq<reading>{{.endpoint = in.endpoint, .format = sources::zmq_format::binary}})
    .sink_to(sinks::collect<reading>{});
  auto exec = j.start();
  BOOST_REQUIRE_MESSAGE(exec, error_text(exec));
  const auto whole = binary_of({7, "seven", 7});
  in.send({whole});
  in.send({whole.substr(0, whole.size() - 3)});
  auto done = (*exec)->wait();
  BOOST_REQUIRE(!done);
  BOOST_TEST((done.error().code == error_code::malformed_record));
  const auto where = "zmq " + in.endpoint + " message 2: ";
  BOOST_TEST(done.error().message.find(where) != std::string::npos, done.error().message);
  BOOST_TEST(done.error().message.find("truncated input") != std::string::npos,
             done.error().message);
}

BOOST_AUTO_TEST_CASE(dead_letters_reach_the_job_s_dead_letter_output) {
  peer in{zmq::socket_type::push};
  job j;
  auto good = sinks::collect<reading>{};
  auto bad = sinks::collect<dead_letter>{};
  auto s = j.from(sources::zmq<reading>{{.endpoint = in.endpoint,
                                         .malformed = on_malformed::dead_letter}})
             .name("zin");
  s.sink_to(good);
  s.dead_letters().sink_to(bad);
  auto exec = j.start();
  BOOST_REQUIRE_MESSAGE(exec, error_text(exec));
  in.send({json_of({1, "a", 1})});
  in.send({"{\"id\": 2}"});
  in.send({json_of({3, "c", 3}), "tail"});
  in.send({json_of({4, "d", 4})});
  BOOST_REQUIRE(wait_until([&] { return good.records().size() + bad.records().size() >= 4; }));
  (*exec)->cancel();
  auto done = (*exec)->wait();
  BOOST_REQUIRE_MESSAGE(done, error_text(done));
  BOOST_TEST(good.records() == (std::vector<reading>{{1, "a", 1}, {4, "d", 4}}),
             boost::test_tools::per_element());
  auto letters = bad.records();
  BOOST_REQUIRE_EQUAL(letters.size(), 2u);
  BOOST_TEST(letters[0].source == "zin");
  BOOST_TEST(letters[0].location == "zmq " + in.endpoint + " message 2");
  BOOST_TEST(letters[0].error.find("missing field 'name'") != std::string::npos, letters[0].error);
  BOOST_TEST(letters[1].location == "zmq " + in.endpoint + " message 3");
  BOOST_TEST(letters[1].error == "message of 2 parts, expected 1 (the record)");
}

BOOST_AUTO_TEST_CASE(bad_endpoints_fail_at_start_naming_them) {
  for (const std::string bad : {"nonsense", "tcp://127.0.0.1", "tcp://127.0.0.1:99999",
                                "udp://127.0.0.1:5555", "tcp://127.0.0.1:*"}) {
    job j;
    j.from(sources::zmq<reading>{{.endpoint = bad}}).sink_to(sinks::collect<reading>{});
    auto r = j.run();
    BOOST_REQUIRE_MESSAGE(!r, bad);
    BOOST_TEST((r.error().code == error_code::invalid_option), r.error().to_string());
    BOOST_TEST(r.error().message.find("'" + bad + "'") != std::string::npos, r.error().message);

    job k;
    k.from(sources::collection<reading>{make_readings(0, 1)})
      .sink_to(sinks::zmq<reading>{{.endpoint = bad}});
    auto s = k.run();
    BOOST_REQUIRE_MESSAGE(!s, bad);
    BOOST_TEST((s.error().code == error_code::invalid_option), s.error().to_string());
    BOOST_TEST(s.error().message.find("'" + bad + "'") != std::string::npos, s.error().message);
  }
}

BOOST_AUTO_TEST_CASE(a_port_in_use_fails_the_job_at_start_naming_it) {
  peer taken{zmq::socket_type::pull};
  {
    job j;
    j.from(sources::zmq<reading>{{.endpoint = taken.endpoint, .bind = true}})
      .sink_to(sinks::collect<reading>{});
    auto r = j.run();
    BOOST_REQUIRE(!r);
    BOOST_TEST((r.error().code == error_code::io_error), r.error().to_string());
    BOOST_TEST(r.error().message.find("cannot bind " + taken.endpoint) != std::string::npos,
               r.error().message);
  }
  {
    job j;
    j.from(sources::collection<reading>{make_readings(0, 1)})
      .sink_to(sinks::zmq<reading>{{.endpoint = taken.endpoint, .bind = true}});
    auto r = j.run();
    BOOST_REQUIRE(!r);
    BOOST_TEST((r.error().code == error_code::io_error), r.error().to_string());
    BOOST_TEST(r.error().message.find("cannot bind " + taken.endpoint) != std::string::npos,
               r.error().message);
  }
}

BOOST_AUTO_TEST_CASE(checkpoints_log_once_that_the_connectors_are_not_exactly_once) {
  auto& log = log_lines::instance();
  const auto source_before = log.count("zmq source 'zin'");
  const auto sink_before = log.count("zmq sink 'zout'");
  sluice::test::temp_dir dir;
  peer in{zmq::socket_type::push};
  peer out{zmq::socket_type::pull};
  job j{{.name = "zmq-checkpoints", .parallelism = 2}};
  j.options().checkpoints.dir = dir.path / "ckpt";
  j.options().checkpoints.interval = 20ms;
  j.from(sources::zmq<reading>{{.endpoint = in.endpoint}})
    .name("zin")
    .sink_to(sinks::zmq<reading>{{.endpoint = out.endpoint}})
    .name("zout");
  auto exec = j.start();
  BOOST_REQUIRE_MESSAGE(exec, error_text(exec));
  // The source warns at its first checkpoint, the sink when it opens.
  BOOST_REQUIRE_MESSAGE(wait_until([&] { return log.count("zmq source 'zin'") > source_before; }),
                        "no warning from the source:" << log.all());
  BOOST_REQUIRE(wait_until([&] { return log.count("zmq sink 'zout'") > sink_before; }));
  // Let a few more checkpoints pass: the source must not warn again.
  for (int i = 0; i < 4; ++i)
    in.send({json_of({i, "x", 0})});
  static_cast<void>(out.receive_n(4));
  (*exec)->cancel();
  auto done = (*exec)->wait();
  BOOST_REQUIRE_MESSAGE(done, error_text(done));
  BOOST_TEST(log.count("zmq source 'zin'") == source_before + 1, log.all());
  BOOST_TEST(log.count("zmq sink 'zout'") == sink_before + 1, log.all());
  BOOST_TEST(log.count("at-most-once") >= 2u);
  exec->reset(); // lets go of the checkpoint store

  // The checkpoints hold no position for the source, so a run restoring them starts, at
  // another parallelism too, and reads what comes next (nothing is replayed).
  job again{{.name = "zmq-checkpoints", .parallelism = 1}};
  again.options().checkpoints.dir = dir.path / "ckpt";
  again.from(sources::zmq<reading>{{.endpoint = in.endpoint}})
    .name("zin")
    .sink_to(sinks::zmq<reading>{{.endpoint = out.endpoint}})
    .name("zout");
  auto second = again.start();
  BOOST_REQUIRE_MESSAGE(second, error_text(second));
  in.send({json_of({100, "after", 1})});
  auto m = out.receive_n(1);
  BOOST_TEST(m.at(0).at(0) == json_of({100, "after", 1}));
  (*second)->cancel();
  auto ended = (*second)->wait();
  BOOST_REQUIRE_MESSAGE(ended, error_text(ended));
  BOOST_TEST(ended->restored_from.has_value());
}

BOOST_AUTO_TEST_CASE(a_bounded_job_s_output_has_all_left_when_it_ends) {
  peer out{zmq::socket_type::pull};
  const auto sent = make_readings(0, 500);
  job j;
  j.from(sources::collection<reading>{sent}).sink_to(sinks::zmq<reading>{{.endpoint = out.endpoint}});
  auto r = j.run();
  BOOST_REQUIRE_MESSAGE(r, error_text(r));
  // run() returned: the sink is closed and the last connector socket's context waited for
  // the queued messages to leave (linger).
  std::vector<reading> records;
  for (auto& m : out.receive_n(sent.size()))
    records.push_back(*codec::from_json_line<reading>(m.at(0)));
  BOOST_TEST(records == sent, boost::test_tools::per_element());
}

BOOST_AUTO_TEST_SUITE_END()

// -- the source ----------------------------------------------------------------------------

BOOST_AUTO_TEST_SUITE(zmq_source)

BOOST_AUTO_TEST_CASE(malformed_messages_become_dead_letters_naming_endpoint_and_message) {
  peer in{zmq::socket_type::push};
  source_driver<reading> s{sources::zmq<reading>{{.endpoint = in.endpoint,
                                                  .max_message_bytes = 64,
                                                  .malformed = on_malformed::dead_letter}}};
  BOOST_REQUIRE_MESSAGE(s.open_result, error_text(s.open_result));
  in.send({json_of({1, "a", 1})});
  in.send({"not json"});
  in.send({json_of({2, "b", 2}), "second part"});
  in.send({std::string(100, 'y')});
  in.send({json_of({3, "c", 3}) + "\n"});
  in.send({json_of({4, "d", 4}) + "\n" + json_of({5, "e", 5})});
  s.poll_until([&] { return s.records.size() + s.dead.size() >= 6; });
  BOOST_TEST(s.records == (std::vector<reading>{{1, "a", 1}, {3, "c", 3}}),
             boost::test_tools::per_element());
  BOOST_REQUIRE_EQUAL(s.dead.size(), 4u);
  const auto at = "zmq " + in.endpoint + " message ";
  BOOST_TEST(s.dead[0].source == "src");
  BOOST_TEST(s.dead[0].location == at + "2");
  BOOST_TEST(s.dead[0].raw == "not json");
  BOOST_TEST(s.dead[0].error.starts_with("invalid JSON"), s.dead[0].error);
  BOOST_TEST(s.dead[1].location == at + "3");
  BOOST_TEST(s.dead[1].error == "message of 2 parts, expected 1 (the record)");
  BOOST_TEST(s.dead[1].raw == json_of({2, "b", 2}) + "|second part");
  BOOST_TEST(s.dead[2].location == at + "4");
  BOOST_TEST(s.dead[2].error == "message of 100 bytes, larger than max_message_bytes 64");
  BOOST_TEST(s.dead[3].location == at + "6");
  BOOST_TEST(s.src->malformed_count() == 4u);
}

BOOST_AUTO_TEST_CASE(a_two_part_message_fails_the_fail_policy_naming_the_endpoint) {
  peer in{zmq::socket_type::push};
  source_driver<reading> s{sources::zmq<reading>{{.endpoint = in.endpoint}}};
  BOOST_REQUIRE_MESSAGE(s.open_result, error_text(s.open_result));
  in.send({json_of({1, "a", 1})});
  in.send({"topic", json_of({2, "b", 2})});
  auto e = s.poll_until_error();
  BOOST_TEST((e.code == error_code::malformed_record));
  BOOST_TEST(e.message == "zmq " + in.endpoint +
                            " message 2: message of 2 parts, expected 1 (the record); message: "
                            "topic|" + json_of({2, "b", 2}),
             e.message);
  BOOST_TEST(s.records == (std::vector<reading>{{1, "a", 1}}), boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(binary_with_trailing_bytes_is_malformed) {
  peer in{zmq::socket_type::push};
  source_driver<reading> s{sources::zmq<reading>{{.endpoint = in.endpoint,
                                                  .format = sources::zmq_format::binary,
                                                  .malformed = on_malformed::dead_letter}}};
  BOOST_REQUIRE_MESSAGE(s.open_result, error_text(s.open_result));
  in.send({binary_of({1, "a", 1}) + "xyz"});
  in.send({binary_of({2, "b", 2})});
  s.poll_until([&] { return s.records.size() + s.dead.size() >= 2; });
  BOOST_TEST(s.records == (std::vector<reading>{{2, "b", 2}}), boost::test_tools::per_element());
  BOOST_REQUIRE_EQUAL(s.dead.size(), 1u);
  BOOST_TEST(s.dead[0].error == "3 trailing bytes after the record");
}

BOOST_AUTO_TEST_CASE(sub_reads_only_its_topics) {
  // An XPUB shows the test each subscription as it arrives, so it publishes only once the
  // source is subscribed (a PUB would drop what comes before).
  peer pub{zmq::socket_type::xpub};
  source_driver<reading> s{sources::zmq<reading>{{.endpoint = pub.endpoint,
                                                  .pattern = sources::zmq_pattern::sub,
                                                  .topics = {"eu.", "us"},
                                                  .malformed = on_malformed::dead_letter}}};
  BOOST_REQUIRE_MESSAGE(s.open_result, error_text(s.open_result));
  std::vector<std::string> subscriptions;
  while (subscriptions.size() < 2) {
    auto m = pub.receive(30s);
    BOOST_REQUIRE_MESSAGE(m, "the source did not subscribe");
    subscriptions.push_back(m->at(0));
  }
  std::sort(subscriptions.begin(), subscriptions.end());
  BOOST_TEST(subscriptions == (std::vector<std::string>{std::string{"\x01"} + "eu.", "\x01us"}),
             boost::test_tools::per_element());
  pub.send({"eu.fr", json_of({1, "a", 1})});
  pub.send({"asia", json_of({2, "b", 2})});
  pub.send({"e", json_of({3, "c", 3})});
  pub.send({"usa", json_of({4, "d", 4})});
  pub.send({"us-only-one-part"});
  pub.send({"us", json_of({5, "e", 5})});
  s.poll_until([&] { return s.records.size() + s.dead.size() >= 4; });
  BOOST_TEST(s.records == (std::vector<reading>{{1, "a", 1}, {4, "d", 4}, {5, "e", 5}}),
             boost::test_tools::per_element());
  BOOST_REQUIRE_EQUAL(s.dead.size(), 1u);
  BOOST_TEST(s.dead[0].error == "message of 1 part, expected 2 (topic, record)");
}

BOOST_AUTO_TEST_CASE(parallelism_and_options) {
  using sources::zmq;
  BOOST_TEST(source_max_parallelism(zmq<reading>{{.endpoint = "tcp://127.0.0.1:1"}}) > 1);
  BOOST_TEST(source_max_parallelism(zmq<reading>{{.endpoint = "tcp://*:1", .bind = true}}) == 1);
  BOOST_TEST(source_max_parallelism(zmq<reading>{{.endpoint = "tcp://127.0.0.1:1",
                                                  .pattern = sources::zmq_pattern::sub}}) == 1);
  auto topics_on_pull = validate_source(zmq<reading>{{.endpoint = "tcp://127.0.0.1:1",
                                                      .topics = {"a"}}});
  BOOST_REQUIRE(!topics_on_pull);
  BOOST_TEST(topics_on_pull.error().message.find("topics") != std::string::npos);
  auto text_of_struct = validate_source(zmq<reading>{{.endpoint = "tcp://127.0.0.1:1",
                                                      .format = sources::zmq_format::text}});
  BOOST_REQUIRE(!text_of_struct);
  BOOST_TEST(text_of_struct.error().message.find("std::string") != std::string::npos);
  BOOST_TEST(validate_source(zmq<std::string>{{.endpoint = "ipc:///tmp/x",
                                               .format = sources::zmq_format::text}})
               .has_value());
  auto zero = validate_source(zmq<reading>{{.endpoint = "tcp://127.0.0.1:1",
                                            .max_message_bytes = 0}});
  BOOST_REQUIRE(!zero);
  BOOST_TEST(zero.error().message.find("max_message_bytes") != std::string::npos);
}

BOOST_AUTO_TEST_SUITE_END()

// -- the sink -------------------------------------------------------------------------------

BOOST_AUTO_TEST_SUITE(zmq_sink)

BOOST_AUTO_TEST_CASE(push_waits_for_a_slow_reader_and_loses_nothing) {
  peer out{zmq::socket_type::pull};
  out.socket.set(zmq::sockopt::rcvhwm, 2);
  sink_driver<reading> s{sinks::zmq<reading>{{.endpoint = out.endpoint, .high_water_mark = 2}}};
  BOOST_REQUIRE_MESSAGE(s.open_result, error_text(s.open_result));
  const auto sent = make_readings(0, 200);
  std::vector<std::vector<std::string>> got;
  // The reader takes its messages one by one while the sink is blocked on the full queue.
  // (No Boost.Test assertion on this thread: the main thread checks what it got.)
  std::thread reader{[&] {
    while (got.size() < sent.size()) {
      auto m = out.receive(5s);
      if (!m)
        return;
      got.push_back(std::move(*m));
    }
  }};
  auto w = s.write(sent);
  reader.join();
  BOOST_REQUIRE_MESSAGE(w, error_text(w));
  BOOST_REQUIRE_EQUAL(got.size(), sent.size());
  std::vector<reading> records;
  for (auto& m : got)
    records.push_back(*codec::from_json_line<reading>(m.at(0)));
  BOOST_TEST(records == sent, boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(push_with_no_reader_fails_after_send_timeout_naming_the_endpoint) {
  // Nothing ever listens here: ZeroMQ queues up to the high-water mark, then the sink waits
  // and fails; it never drops.
  peer vacated{zmq::socket_type::pull}; // bound for a free port, then closed
  const auto endpoint = vacated.endpoint;
  vacated.socket.close();
  sink_driver<reading> s{sinks::zmq<reading>{
    {.endpoint = endpoint, .high_water_mark = 3, .send_timeout = 50ms, .linger = 0ms}}};
  BOOST_REQUIRE_MESSAGE(s.open_result, error_text(s.open_result));
  auto w = s.write(make_readings(0, 10));
  BOOST_REQUIRE(!w);
  BOOST_TEST((w.error().code == error_code::connector_failed));
  BOOST_TEST(w.error().message.find("zmq sink 'out': no PULL peer of " + endpoint) !=
               std::string::npos,
             w.error().message);
  BOOST_TEST(w.error().message.find("records of the batch unsent") != std::string::npos,
             w.error().message);
}

BOOST_AUTO_TEST_CASE(pub_sends_topic_and_record) {
  peer sub{zmq::socket_type::sub};
  sub.socket.set(zmq::sockopt::subscribe, "alerts");
  sink_driver<reading> s{sinks::zmq<reading>{{.endpoint = sub.endpoint,
                                              .pattern = sinks::zmq_pattern::pub,
                                              .topic = "alerts.eu",
                                              .format = sinks::zmq_format::binary}}};
  BOOST_REQUIRE_MESSAGE(s.open_result, error_text(s.open_result));
  // A PUB drops what it publishes before the subscription reaches it: write a marker until
  // one arrives (bounded), then the records.
  const reading marker{-1, "marker", 0};
  bool subscribed = false;
  for (int i = 0; i < 1000 && !subscribed; ++i) {
    BOOST_REQUIRE(s.write({marker}));
    subscribed = sub.receive(20ms).has_value();
  }
  BOOST_REQUIRE_MESSAGE(subscribed, "the subscription never reached the sink");
  const auto sent = make_readings(0, 50);
  BOOST_REQUIRE(s.write(sent));
  std::vector<reading> records;
  while (records.size() < sent.size()) {
    auto m = sub.receive(30s);
    BOOST_REQUIRE_MESSAGE(m, "only " << records.size() << " records arrived");
    BOOST_REQUIRE_EQUAL(m->size(), 2u);
    BOOST_TEST(m->at(0) == "alerts.eu");
    auto r = net::decode_zmq_payload<reading>(m->at(1), net::zmq_format::binary);
    BOOST_REQUIRE_MESSAGE(r, error_text(r));
    if (r->id != marker.id) // markers written before the subscription settled
      records.push_back(*r);
  }
  BOOST_TEST(records == sent, boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(text_format_sends_strings_as_they_are) {
  peer out{zmq::socket_type::pull};
  sink_driver<std::string> s{sinks::zmq<std::string>{{.endpoint = out.endpoint,
                                                      .format = sinks::zmq_format::text}}};
  BOOST_REQUIRE_MESSAGE(s.open_result, error_text(s.open_result));
  BOOST_REQUIRE(s.write({"plain", "with \"quotes\"", ""}));
  std::vector<std::string> got;
  for (auto& m : out.receive_n(3)) {
    BOOST_REQUIRE_EQUAL(m.size(), 1u);
    got.push_back(m[0]);
  }
  BOOST_TEST(got == (std::vector<std::string>{"plain", "with \"quotes\"", ""}),
             boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(parallelism_and_options) {
  using sinks::zmq;
  BOOST_TEST(sink_max_parallelism(zmq<reading>{{.endpoint = "tcp://127.0.0.1:1"}}) > 1);
  BOOST_TEST(sink_max_parallelism(zmq<reading>{{.endpoint = "tcp://*:1", .bind = true}}) == 1);
  auto topic_on_push = validate_sink(zmq<reading>{{.endpoint = "tcp://127.0.0.1:1",
                                                   .topic = "t"}});
  BOOST_REQUIRE(!topic_on_push);
  BOOST_TEST(topic_on_push.error().message.find("topic 't'") != std::string::npos);
  auto timeout = validate_sink(zmq<reading>{{.endpoint = "tcp://127.0.0.1:1",
                                             .send_timeout = 0ms}});
  BOOST_REQUIRE(!timeout);
  BOOST_TEST(timeout.error().message.find("send_timeout") != std::string::npos);
}

BOOST_AUTO_TEST_SUITE_END()
