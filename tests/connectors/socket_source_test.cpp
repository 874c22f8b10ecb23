// The socket source (sources/socket.hpp) against a one-connection server on loopback.
#include <boost/test/unit_test.hpp>

#include "sluice/tests/connectors/reading.hpp"
#include "sluice/tests/connectors/source_driver.hpp"
#include "sluice/api/job.hpp"
#include "sluice/sinks/callback.hpp"
#include "sluice/sinks/memory.hpp"
#include "sluice/sources/socket.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <latch>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

using namespace sluice;
using namespace std::chrono_literals;
using sluice::test::source_driver;
using test_records::json_of;
using test_records::reading;

namespace {

std::string error_text(const auto& r) { return r ? std::string{} : r.error().to_string(); }

} // namespace

// -- socket source --------------------------------------------------------------------------

namespace {

/// A one-connection TCP server on an ephemeral loopback port: accepts, waits until the test
/// opens the gate, writes `payload`, closes.
class line_server {
public:
  explicit line_server(std::string payload) : payload_(std::move(payload)) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    BOOST_REQUIRE(fd_ >= 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = 0;
    BOOST_REQUIRE(::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
    BOOST_REQUIRE(::listen(fd_, 1) == 0);
    socklen_t len = sizeof addr;
    BOOST_REQUIRE(::getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len) == 0);
    port_ = ntohs(addr.sin_port);
    thread_ = std::thread{[this] { serve(); }};
  }
  ~line_server() {
    open_gate();
    // Wakes an accept() still waiting because the source never connected (a failed test).
    ::shutdown(fd_, SHUT_RDWR);
    if (thread_.joinable())
      thread_.join();
    ::close(fd_);
  }

  std::uint16_t port() const noexcept { return port_; }
  /// Lets the server write its payload.
  void open_gate() {
    if (!gate_opened_.exchange(true))
      gate_.count_down();
  }
  /// Blocks until the payload was written and the connection closed.
  void wait_done() { done_.wait(); }

private:
  void serve() {
    const int conn = ::accept(fd_, nullptr, nullptr);
    gate_.wait();
    if (conn >= 0) {
      std::size_t sent = 0;
      while (sent < payload_.size()) {
        auto n = ::send(conn, payload_.data() + sent, payload_.size() - sent, MSG_NOSIGNAL);
        if (n <= 0)
          break;
        sent += static_cast<std::size_t>(n);
      }
      ::close(conn);
    }
    done_.count_down();
  }

  std::string payload_;
  int fd_ = -1;
  std::uint16_t port_ = 0;
  std::latch gate_{1};
  std::atomic<bool> gate_opened_{false};
  std::latch done_{1};
  std::thread thread_;
};

/// A loopback port with nothing listening: bound, then released.
std::uint16_t closed_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  socklen_t len = sizeof addr;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  ::close(fd);
  return ntohs(addr.sin_port);
}

/// Polls until `end`; `idle` only means the bytes are still in flight on loopback.
template <class T>
void drain_socket(source_driver<T>& s) {
  const auto deadline = std::chrono::steady_clock::now() + 30s;
  while (std::chrono::steady_clock::now() < deadline) {
    auto r = s.poll();
    BOOST_REQUIRE_MESSAGE(r, error_text(r));
    if (r->state == poll_result::status::end)
      return;
    if (r->state == poll_result::status::idle)
      std::this_thread::yield();
  }
  BOOST_FAIL("socket source did not end");
}

} // namespace

BOOST_AUTO_TEST_SUITE(socket_source)

BOOST_AUTO_TEST_CASE(text_job_reads_lines_until_the_peer_closes) {
  line_server server{"hello\r\nworld\n\nlast without newline"};
  server.open_gate();
  job j;
  auto out = sinks::collect<std::string>{};
  j.from(sources::socket_text{{.host = "127.0.0.1", .port = server.port()}}).sink_to(out);
  auto r = j.run();
  BOOST_REQUIRE_MESSAGE(r, error_text(r));
  BOOST_TEST(out.records() ==
               (std::vector<std::string>{"hello", "world", "", "last without newline"}),
             boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(poll_is_idle_until_data_arrives) {
  line_server server{"one\ntwo\nthr"};
  source_driver<std::string> s{
    sources::socket_text{{.host = "127.0.0.1", .port = server.port(), .poll_interval = 7ms}}};
  BOOST_REQUIRE_MESSAGE(s.open_result, error_text(s.open_result));
  // The server holds its data back until the gate opens, so this poll must find nothing.
  auto r = s.poll();
  BOOST_REQUIRE(r);
  BOOST_TEST((r->state == poll_result::status::idle));
  BOOST_TEST(r->retry_after == std::chrono::nanoseconds{7ms});
  BOOST_TEST(s.records.empty());

  server.open_gate();
  server.wait_done();
  drain_socket(s);
  BOOST_TEST(s.records == (std::vector<std::string>{"one", "two", "thr"}),
             boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(available_now_and_once_take_what_has_arrived_and_stop_without_spinning) {
  // Spark's socket source lacks SupportsTriggerAvailableNow, so Spark wraps it
  // (AvailableNowDataStreamWrapper): the lines received when the query starts, then stop.
  // The peer here sends only once the query has ended (or after a bound): the query must
  // neither wait for it nor run empty batch after empty batch meanwhile.
  for (auto when : {triggers::available_now(), triggers::once()}) {
    BOOST_TEST_CONTEXT((when.how == trigger::kind::once ? "once" : "available_now")) {
      line_server server{"late\n"};
      job_options o;
      o.trigger = when;
      job j{o};
      auto out = sinks::collect<std::string>{};
      j.from(sources::socket_text{{.host = "127.0.0.1", .port = server.port()}}).name("sock")
        .sink_to(out);
      auto started = j.start();
      BOOST_REQUIRE_MESSAGE(started, error_text(started));
      auto& run = **started;
      const bool ended_before_the_peer_sent = run.wait_for(10s);
      server.open_gate();
      auto r = run.wait();
      BOOST_REQUIRE_MESSAGE(r, error_text(r));
      BOOST_TEST(ended_before_the_peer_sent, "the query waited for the peer");
      const auto batches = run.recent_progress().size();
      BOOST_TEST(batches <= 1u, batches << " batches ran while nothing arrived");
      BOOST_TEST(out.records().empty());
    }
  }
}

BOOST_AUTO_TEST_CASE(has_input_says_whether_a_trigger_would_find_a_line) {
  // What begin_trigger asks, so that a micro-batch trigger without input runs no batch.
  line_server server{"one\ntwo"};
  sources::detail::line_socket sock;
  auto connected = sock.connect({.host = "127.0.0.1", .port = server.port()});
  BOOST_REQUIRE_MESSAGE(connected, error_text(connected));
  auto before = sock.has_input();
  BOOST_REQUIRE(before);
  BOOST_TEST(!*before); // the server holds its data back until the gate opens
  server.open_gate();
  server.wait_done(); // sent and closed
  bool waiting = false;
  for (int i = 0; i < 5000 && !waiting; ++i) { // bounded wait for the bytes to arrive
    auto r = sock.has_input();
    BOOST_REQUIRE(r);
    waiting = *r;
    if (!waiting)
      std::this_thread::sleep_for(1ms);
  }
  BOOST_REQUIRE(waiting);
  std::string_view line;
  auto got = sock.next_line(line);
  BOOST_REQUIRE(got);
  BOOST_TEST((*got == sources::detail::line_socket::status::line));
  BOOST_TEST(line == "one");
}

BOOST_AUTO_TEST_CASE(json_lines_with_dead_letters) {
  line_server server{json_of({1, "a", 1}) + "\nnot json\n\n" + json_of({2, "b", 2}) + "\n" +
                     std::string(40, 'y') + "\n" + json_of({3, "c", 3})};
  server.open_gate();
  job j;
  auto good = sinks::collect<reading>{};
  auto bad = sinks::collect<dead_letter>{};
  auto in = j.from(sources::socket<reading>{{.port = server.port(),
                                             .max_line_bytes = 32,
                                             .malformed = on_malformed::dead_letter}})
              .name("sock");
  in.sink_to(good);
  in.dead_letters().sink_to(bad);
  auto r = j.run();
  BOOST_REQUIRE_MESSAGE(r, error_text(r));
  BOOST_TEST(good.records() == (std::vector<reading>{{1, "a", 1}, {2, "b", 2}, {3, "c", 3}}),
             boost::test_tools::per_element());
  auto letters = bad.records();
  BOOST_REQUIRE_EQUAL(letters.size(), 2u);
  const auto peer = "127.0.0.1:" + std::to_string(server.port());
  BOOST_TEST(letters[0].source == "sock");
  BOOST_TEST(letters[0].location == "socket " + peer + " line 2");
  BOOST_TEST(letters[0].raw == "not json");
  BOOST_TEST(letters[1].location == "socket " + peer + " line 5");
  BOOST_TEST(letters[1].raw == std::string(32, 'y'));
  BOOST_TEST(letters[1].error == "line longer than 32 bytes");
}

BOOST_AUTO_TEST_CASE(json_lines_fail_policy_names_the_line) {
  line_server server{json_of({1, "a", 1}) + "\n{\"id\": 2}\n"};
  server.open_gate();
  job j;
  j.from(sources::socket<reading>{{.port = server.port()}}).sink_to(sinks::collect<reading>{});
  auto r = j.run();
  BOOST_REQUIRE(!r);
  BOOST_TEST((r.error().code == error_code::malformed_record));
  const auto expected =
    "socket 127.0.0.1:" + std::to_string(server.port()) + " line 2: missing field 'name'";
  BOOST_TEST(r.error().message.find(expected) != std::string::npos, r.error().message);
}

BOOST_AUTO_TEST_CASE(unreachable_port_is_an_io_error_naming_host_and_port) {
  const auto port = closed_port();
  const auto peer = "127.0.0.1:" + std::to_string(port);
  source_driver<std::string> s{sources::socket_text{{.port = port}}};
  BOOST_REQUIRE(!s.open_result);
  BOOST_TEST((s.open_result.error().code == error_code::io_error));
  BOOST_TEST(s.open_result.error().message.find(peer) != std::string::npos,
             s.open_result.error().message);

  job j;
  j.from(sources::socket_text{{.port = port}}).sink_to(sinks::collect<std::string>{});
  auto r = j.run();
  BOOST_REQUIRE(!r);
  BOOST_TEST((r.error().code == error_code::io_error));
  BOOST_TEST(r.error().message.find(peer) != std::string::npos, r.error().message);
}

BOOST_AUTO_TEST_CASE(one_instance_only_and_port_required) {
  BOOST_TEST(source_max_parallelism(sources::socket_text{{.port = 1}}) == 1);
  BOOST_TEST(source_max_parallelism(sources::socket<reading>{{.port = 1}}) == 1);
  auto bad = validate_source(sources::socket_text{{.host = "localhost"}});
  BOOST_REQUIRE(!bad);
  BOOST_TEST((bad.error().code == error_code::invalid_option));
}

BOOST_AUTO_TEST_SUITE_END()

