#define BOOST_TEST_MODULE monitor_limits_test
// The monitor's server against broken and hostile clients (issue 23, defect 15): a body
// far over the limit, a head that never ends, hundreds of idle connections, a head sent
// byte by byte. Each must cost the server a bounded amount, and a fresh GET /metrics must
// still be answered right after. Clients talk to loopback only and every socket is closed.
//
// Every wait is bounded by `failure_bound`: a bound that ends a broken run with a failure,
// never a measurement that a correct run must beat.
#include <boost/test/unit_test.hpp>

#include "sluice/api/job.hpp"
#include "sluice/monitor/server.hpp"
#include "sluice/sinks/memory.hpp"
#include "sluice/sources/generator.hpp"
#include "sluice/tests/engine/test_helpers.hpp"

#include <httplib.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

using namespace sluice;
using namespace sluice::test;
using namespace std::chrono_literals;

namespace limits_test {

using steady = std::chrono::steady_clock;

constexpr auto failure_bound = 30s;

int millis_until(steady::time_point deadline) {
  const auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - steady::now());
  return static_cast<int>(std::max<std::int64_t>(0, left.count()));
}

/// A raw TCP client on loopback (for what a well-behaved client library will not do),
/// closed on destruction.
class raw_client {
public:
  enum class sent { all, closed, stuck };
  struct reply {
    std::string text;
    bool closed = false; ///< the server closed the connection (end of stream or reset)
  };

  explicit raw_client(int port) {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    BOOST_REQUIRE_MESSAGE(fd_ >= 0, "socket: " << std::strerror(errno));
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<std::uint16_t>(port));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    BOOST_REQUIRE_MESSAGE(::connect(fd_, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) == 0,
                          "connect to 127.0.0.1:" << port << ": " << std::strerror(errno));
  }
  ~raw_client() {
    if (fd_ >= 0)
      ::close(fd_);
  }
  raw_client(raw_client&& o) noexcept : fd_(std::exchange(o.fd_, -1)) {}
  raw_client(const raw_client&) = delete;
  raw_client& operator=(const raw_client&) = delete;
  raw_client& operator=(raw_client&&) = delete;

  /// Sends all of `data`: `closed` when the server closed the connection first, `stuck`
  /// when it neither read nor closed for `failure_bound`.
  sent send(std::string_view data) {
    const auto deadline = steady::now() + failure_bound;
    while (!data.empty()) {
      pollfd p{fd_, POLLOUT, 0};
      if (::poll(&p, 1, millis_until(deadline)) == 0)
        return sent::stuck;
      const auto n = ::send(fd_, data.data(), data.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
      if (n < 0 && (errno == EAGAIN || errno == EINTR))
        continue;
      if (n < 0)
        return sent::closed;
      data.remove_prefix(static_cast<std::size_t>(n));
    }
    return sent::all;
  }

  /// Waits up to `timeout` until there is something to read or the server closed.
  bool wait_readable(std::chrono::milliseconds timeout) {
    pollfd p{fd_, POLLIN, 0};
    return ::poll(&p, 1, static_cast<int>(timeout.count())) > 0;
  }

  /// True when the server has closed the connection: waits up to `failure_bound`, and
  /// anything the server sent first is skipped.
  bool closed_by_server() { return read_until(failure_bound, [](const std::string&) { return false; }).closed; }

  /// Reads until `done(text)`, the server closes the connection or `timeout` passes.
  template <class Done>
  reply read_until(std::chrono::milliseconds timeout, Done done) {
    reply r;
    const auto deadline = steady::now() + timeout;
    char buf[4096];
    while (!done(r.text)) {
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, millis_until(deadline)) == 0)
        break;
      const auto n = ::recv(fd_, buf, sizeof buf, 0);
      if (n < 0 && (errno == EAGAIN || errno == EINTR))
        continue;
      if (n <= 0) {
        r.closed = true;
        break;
      }
      r.text.append(buf, static_cast<std::size_t>(n));
    }
    return r;
  }
  reply read_until_closed() {
    return read_until(failure_bound, [](const std::string&) { return false; });
  }
  /// Whether the server has closed the connection, looked at now without waiting.
  bool closed_now() {
    pollfd p{fd_, POLLIN, 0};
    if (::poll(&p, 1, 0) == 0)
      return false;
    char c;
    return ::recv(fd_, &c, 1, MSG_PEEK) <= 0;
  }

private:
  int fd_ = -1;
};

bool starts_with(const std::string& s, std::string_view prefix) { return s.rfind(prefix, 0) == 0; }

/// The first line of an answer, for messages.
std::string first_line(const std::string& s) { return s.substr(0, s.find('\r')); }

/// A small finished job and a monitor serving it with `limits`.
struct served_job {
  sinks::collect<std::uint64_t> out;
  job j{{.name = "limits"}};
  std::unique_ptr<job_execution> exec;
  std::unique_ptr<monitor::server> server;

  explicit served_job(monitor::server_limits limits) {
    j.from(sources::generator({.count = 100}, [](std::uint64_t n) { return n; }))
      .name("numbers")
      .sink_to(out)
      .name("out");
    exec = require_ok(j.start());
    require_ok(exec->wait());
    server = require_ok(monitor::server::start(*exec, {.limits = limits}));
  }
  int port() const { return server->port(); }

  /// GET /metrics from a fresh client: it must be answered, with the job's metrics.
  void require_metrics_answered() const {
    httplib::Client client{"127.0.0.1", port()};
    client.set_connection_timeout(failure_bound);
    client.set_read_timeout(failure_bound);
    client.set_write_timeout(failure_bound);
    auto res = client.Get("/metrics");
    BOOST_REQUIRE_MESSAGE(res, "GET /metrics got no answer: " << httplib::to_string(res.error()));
    BOOST_REQUIRE_EQUAL(res->status, 200);
    BOOST_TEST(res->body.find("sluice_records_in_total{job=\"limits\"") != std::string::npos);
  }
};

const std::string post_head = "POST /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                              "Content-Type: application/octet-stream\r\n";

} // namespace limits_test

using namespace limits_test;

BOOST_AUTO_TEST_SUITE(hostile_clients)

BOOST_AUTO_TEST_CASE(a_body_over_the_limit_is_answered_413_without_being_read) {
  served_job s{{.max_body_bytes = 1024}};
  const auto declared = std::to_string(std::uint64_t{400} << 20); // 400 MiB

  // The first 64 KiB of the body, and never the rest: only an answer that does not wait
  // for the whole body can come.
  raw_client big{s.port()};
  BOOST_REQUIRE(big.send(post_head + "Content-Length: " + declared + "\r\n\r\n") == raw_client::sent::all);
  static_cast<void>(big.send(std::string(64 * 1024, 'x'))); // the server may have closed already
  auto reply = big.read_until_closed();
  BOOST_TEST(starts_with(reply.text, "HTTP/1.1 413"), "answer: " << first_line(reply.text));
  BOOST_TEST(reply.closed, "the server kept open a connection whose body it did not read");

  // A client that waits for "100 Continue" before sending its body is refused at once.
  raw_client polite{s.port()};
  BOOST_REQUIRE(polite.send(post_head + "Content-Length: " + declared + "\r\nExpect: 100-continue\r\n\r\n") ==
                raw_client::sent::all);
  reply = polite.read_until_closed();
  BOOST_TEST(starts_with(reply.text, "HTTP/1.1 413"), "answer: " << first_line(reply.text));
  BOOST_TEST(reply.closed);

  // A body without a length (chunked) cannot be checked against the limit before it is read.
  raw_client chunked{s.port()};
  BOOST_REQUIRE(chunked.send(post_head + "Transfer-Encoding: chunked\r\n\r\n10000\r\n" + std::string(4096, 'x')) ==
                raw_client::sent::all);
  reply = chunked.read_until_closed();
  BOOST_TEST(starts_with(reply.text, "HTTP/1.1 411"), "answer: " << first_line(reply.text));
  BOOST_TEST(reply.closed);

  s.require_metrics_answered();
}

BOOST_AUTO_TEST_CASE(a_head_over_the_limit_closes_the_connection_before_it_is_read) {
  served_job s{{.max_header_bytes = 4096}};
  raw_client c{s.port()};
  BOOST_REQUIRE(c.send("GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: ") == raw_client::sent::all);
  // One header line of up to 64 MiB: the server must close the connection long before.
  const std::string chunk(64 * 1024, 'a');
  std::uint64_t sent = 0;
  auto outcome = raw_client::sent::all;
  while (sent < (std::uint64_t{64} << 20) && outcome == raw_client::sent::all) {
    outcome = c.send(chunk);
    if (outcome == raw_client::sent::all)
      sent += chunk.size();
  }
  BOOST_TEST((outcome == raw_client::sent::closed),
             "the server " << (outcome == raw_client::sent::stuck ? "stopped reading without closing"
                                                                   : "read all of")
                           << " a " << sent << "-byte header");
  s.require_metrics_answered();
}

BOOST_AUTO_TEST_CASE(idle_connections_do_not_keep_a_fresh_request_waiting) {
  constexpr std::size_t cap = 32, idle = 200;
  // Idle connections are never timed out here: only the cap may close them.
  served_job s{{.max_connections = cap, .idle_timeout = 10min}};
  std::vector<raw_client> held;
  held.reserve(idle);
  for (std::size_t i = 0; i < idle; ++i)
    held.emplace_back(s.port());
  s.require_metrics_answered();

  // The server kept at most `cap` connections: to admit each new one it closed the one
  // silent longest. The 200 came in order, then the GET: all but the newest cap - 1 idle
  // ones are closed, and those are still open and served.
  const std::size_t evicted = idle - (cap - 1);
  for (std::size_t i = 0; i < evicted; ++i)
    BOOST_TEST(held[i].closed_by_server(), "idle connection " << i << " (of the oldest " << evicted
                                                              << ") is still open");
  for (std::size_t i = evicted; i < idle; ++i)
    BOOST_TEST(!held[i].closed_now(), "idle connection " << i << " (of the newest) was closed");
  auto& newest = held.back();
  BOOST_REQUIRE(newest.send("GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n") == raw_client::sent::all);
  const auto reply = newest.read_until(failure_bound, [](const std::string& t) { return t.find("\r\n") != std::string::npos; });
  BOOST_TEST(starts_with(reply.text, "HTTP/1.1 200"), "answer: " << first_line(reply.text));
}

BOOST_AUTO_TEST_CASE(a_head_sent_byte_by_byte_is_cut_off_by_the_read_timeout) {
  const monitor::server_limits limits{.read_timeout = 200ms};
  served_job s{limits};
  raw_client c{s.port()};
  const std::string head = "GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ";
  std::size_t sent = 0;
  raw_client::reply reply;
  const auto give_up = steady::now() + failure_bound;
  while (!reply.closed && steady::now() < give_up) {
    const char byte = sent < head.size() ? head[sent] : 'a';
    if (c.send({&byte, 1}) != raw_client::sent::all) {
      reply.closed = true;
      break;
    }
    ++sent;
    // A byte every 10 ms, far more often than any timeout between two reads: only a bound
    // on the whole request can stop this client. The wait also notices the close.
    if (c.wait_readable(10ms))
      reply = c.read_until_closed();
  }
  BOOST_TEST(reply.closed, "a client sent " << sent << " bytes of one head, one at a time, and was not cut off");
  BOOST_TEST(!starts_with(reply.text, "HTTP/1.1 200"), "an unfinished head was answered: " << first_line(reply.text));
  // It was the time, not the size: the head stayed far below the limit.
  BOOST_TEST(sent < limits.max_header_bytes);
  s.require_metrics_answered();
}

BOOST_AUTO_TEST_CASE(requests_pipelined_on_one_connection_are_all_answered_up_to_the_maximum) {
  served_job s{{.max_requests_per_connection = 3}};
  raw_client c{s.port()};
  const std::string get = "GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
  // Four in one write: three are answered, then the connection closes.
  BOOST_REQUIRE(c.send(get + get + get + get) == raw_client::sent::all);
  const auto reply = c.read_until_closed();
  BOOST_TEST(reply.closed);
  std::size_t answers = 0;
  for (auto at = reply.text.find("HTTP/1.1 200"); at != std::string::npos; at = reply.text.find("HTTP/1.1 200", at + 1))
    ++answers;
  BOOST_TEST(answers == 3u);
  BOOST_TEST(reply.text.find("Connection: close") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(limits_out_of_range_are_named) {
  served_job s{{}};
  auto refused = [&](monitor::server_limits l, const std::string& name) {
    auto err = require_error(monitor::server::start(*s.exec, {.limits = l}));
    BOOST_TEST(err.message.find(name) != std::string::npos, err.message);
  };
  refused({.threads = 0}, "threads");
  refused({.max_connections = 0}, "max_connections");
  refused({.read_timeout = -1s}, "read_timeout");
  refused({.write_timeout = 0s}, "write_timeout");
  refused({.idle_timeout = 0s}, "idle_timeout");
  refused({.max_header_bytes = 100}, "max_header_bytes");
  refused({.max_requests_per_connection = 0}, "max_requests_per_connection");
}

BOOST_AUTO_TEST_SUITE_END()
