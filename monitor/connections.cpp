#include "sluice/monitor/connections.hpp"

#include "sluice/core/log.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <exception>
#include <string_view>
#include <system_error>

namespace sluice::monitor {

namespace {

using clock = connection::clock;

/// Milliseconds from now until `deadline` for poll(): 0 once it passed, rounded up so a
/// wait never ends just before its deadline.
int poll_millis(clock::time_point deadline) {
  if (deadline == clock::time_point::max())
    return -1;
  const auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - clock::now()).count();
  return static_cast<int>(std::clamp<std::int64_t>(left, 0, 24 * 3600 * 1000));
}

void address_of(int fd, bool peer, std::string& ip, int& port) {
  sockaddr_storage addr{};
  socklen_t len = sizeof addr;
  auto* sa = reinterpret_cast<sockaddr*>(&addr);
  ip.clear();
  port = -1;
  if ((peer ? ::getpeername(fd, sa, &len) : ::getsockname(fd, sa, &len)) != 0)
    return;
  char text[INET6_ADDRSTRLEN] = {};
  if (addr.ss_family == AF_INET) {
    const auto* in = reinterpret_cast<const sockaddr_in*>(&addr);
    if (::inet_ntop(AF_INET, &in->sin_addr, text, sizeof text))
      ip = text;
    port = ntohs(in->sin_port);
  } else if (addr.ss_family == AF_INET6) {
    const auto* in6 = reinterpret_cast<const sockaddr_in6*>(&addr);
    if (::inet_ntop(AF_INET6, &in6->sin6_addr, text, sizeof text))
      ip = text;
    port = ntohs(in6->sin6_port);
  }
}

/// Tells a refused client why before closing, without waiting: it may not even read.
void refuse(int fd) {
  static const std::string busy = [] {
    const std::string body = "monitor: too many connections, try again\n";
    return "HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\n"
           "Content-Type: text/plain\r\nContent-Length: " +
           std::to_string(body.size()) + "\r\n\r\n" + body;
  }();
  [[maybe_unused]] const auto sent = ::send(fd, busy.data(), busy.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
  ::close(fd);
}

} // namespace

// -- connection ---------------------------------------------------------------------------

connection::connection(int fd, std::size_t buffer_bytes) : fd_(fd), buf_(buffer_bytes) {}

connection::~connection() { ::close(fd_); }

bool connection::wait(short events, clock::time_point deadline) const {
  for (;;) {
    pollfd p{fd_, events, 0};
    const int n = ::poll(&p, 1, poll_millis(deadline));
    if (n > 0)
      return true;
    if (n == 0 || errno != EINTR)
      return false;
  }
}

bool connection::wait_readable(clock::time_point deadline) const {
  return buffered() > 0 || wait(POLLIN, deadline);
}

bool connection::wait_writable(clock::time_point deadline) const { return wait(POLLOUT, deadline); }

connection::received connection::receive() {
  if (begin_ > 0) {
    std::memmove(buf_.data(), buf_.data() + begin_, end_ - begin_);
    end_ -= begin_;
    begin_ = 0;
  }
  if (end_ == buf_.size())
    return received::nothing;
  for (;;) {
    const auto n = ::recv(fd_, buf_.data() + end_, buf_.size() - end_, MSG_DONTWAIT);
    if (n > 0) {
      end_ += static_cast<std::size_t>(n);
      return received::data;
    }
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
      return received::nothing;
    return received::closed;
  }
}

bool connection::has_head() const {
  // A head ends at its first empty line: "\r\n" right after a line's "\n". cpp-httplib
  // decides what the head says; if it disagrees about where it ends, it reads on under the
  // request's deadline and byte budget (monitor/server.cpp).
  static constexpr std::string_view blank_line = "\n\r\n";
  const std::string_view held{buf_.data() + begin_, buffered()};
  return held.find(blank_line) != std::string_view::npos;
}

std::ptrdiff_t connection::read(char* out, std::size_t n, clock::time_point deadline) {
  if (n == 0)
    return 0;
  while (buffered() == 0) {
    switch (receive()) {
    case received::data:
      break;
    case received::closed:
      return 0;
    case received::nothing:
      if (!wait(POLLIN, deadline))
        return -1;
      break;
    }
  }
  const auto k = std::min(n, buffered());
  std::memcpy(out, buf_.data() + begin_, k);
  begin_ += k;
  return static_cast<std::ptrdiff_t>(k);
}

bool connection::write(const char* data, std::size_t n, clock::time_point deadline) {
  while (n > 0) {
    const auto k = ::send(fd_, data, n, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (k > 0) {
      data += k;
      n -= static_cast<std::size_t>(k);
    } else if (k < 0 && errno == EINTR) {
      continue;
    } else if (k < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      if (!wait(POLLOUT, deadline))
        return false;
    } else {
      return false;
    }
  }
  return true;
}

void connection::peer_address(std::string& ip, int& port) const { address_of(fd_, true, ip, port); }

void connection::local_address(std::string& ip, int& port) const { address_of(fd_, false, ip, port); }

// -- connection_pool ----------------------------------------------------------------------

result<std::unique_ptr<connection_pool>> connection_pool::start(const server_limits& limits,
                                                                serve_fn serve) {
  const int wake_fd = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (wake_fd < 0)
    return make_error(error_code::io_error,
                      std::string{"monitor: cannot create the connection pool's eventfd: "} +
                        std::strerror(errno));
  std::unique_ptr<connection_pool> pool{new connection_pool{limits, std::move(serve), wake_fd}};
  try {
    pool->poller_ = std::thread{[p = pool.get()] { p->poll_loop(); }};
    for (std::size_t i = 0; i < limits.threads; ++i)
      pool->workers_.emplace_back([p = pool.get()] { p->work_loop(); });
  } catch (const std::system_error& e) {
    pool->shutdown();
    return make_error(error_code::io_error,
                      std::string{"monitor: cannot start the server's threads: "} + e.what());
  }
  return pool;
}

connection_pool::connection_pool(const server_limits& limits, serve_fn serve, int wake_fd)
  : limits_(limits), serve_(std::move(serve)), wake_fd_(wake_fd) {}

connection_pool::~connection_pool() {
  shutdown();
  ::close(wake_fd_);
}

void connection_pool::wake() const {
  const std::uint64_t one = 1;
  [[maybe_unused]] const auto n = ::write(wake_fd_, &one, sizeof one); // a full counter wakes too
}

void connection_pool::shutdown() {
  {
    std::lock_guard guard{mtx_};
    stopping_ = true;
    // Wakes the workers out of their reads and writes; each closes its own connection.
    for (auto& c : conns_)
      if (c->state_ == connection::state::serving)
        ::shutdown(c->fd_, SHUT_RDWR);
  }
  wake();
  ready_cv_.notify_all();
  if (poller_.joinable())
    poller_.join();
  for (auto& w : workers_)
    if (w.joinable())
      w.join();
  std::lock_guard guard{mtx_};
  ready_.clear();
  conns_.clear();
  admitted_ = 0;
}

void connection_pool::adopt(int fd) {
  // Non-blocking: every wait is a poll() with a deadline, and shutdown() can end it.
  const int flags = ::fcntl(fd, F_GETFL, 0);
  ::fcntl(fd, F_SETFL, flags | O_NONBLOCK);
  // Responses go out as a head and a body in two writes: without this the body would wait
  // for the client's delayed acknowledgement of the head.
  const int yes = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &yes, sizeof yes);
  std::unique_lock lock{mtx_};
  if (stopping_) {
    lock.unlock();
    ::close(fd);
    return;
  }
  if (admitted_ >= limits_.max_connections) {
    connection* silent = nullptr;
    for (auto& c : conns_)
      if (c->state_ == connection::state::waiting &&
          (!silent || c->last_active_ < silent->last_active_))
        silent = c.get();
    if (!silent) {
      lock.unlock();
      logging::get().debug("monitor: refused a connection: {} open, all being served",
                           limits_.max_connections);
      refuse(fd);
      return;
    }
    // Only the poll thread closes waiting connections: it may be polling this one now.
    silent->state_ = connection::state::evicted;
    --admitted_;
  }
  auto c = std::make_unique<connection>(fd, limits_.max_header_bytes);
  c->last_active_ = clock::now();
  conns_.push_back(std::move(c));
  ++admitted_;
  lock.unlock();
  wake();
}

void connection_pool::close_locked(const connection* c, const char* why) {
  if (c->state_ != connection::state::evicted)
    --admitted_;
  if (why)
    logging::get().debug("monitor: closed a connection: {}", why);
  std::erase_if(conns_, [c](const std::unique_ptr<connection>& p) { return p.get() == c; });
}

void connection_pool::on_readable(connection& c, clock::time_point now) {
  const bool had_bytes = c.buffered() > 0;
  switch (c.receive()) {
  case connection::received::closed:
    close_locked(&c, nullptr);
    return;
  case connection::received::nothing:
    return;
  case connection::received::data:
    break;
  }
  c.last_active_ = now;
  if (!had_bytes)
    c.request_deadline_ = now + limits_.read_timeout;
  if (c.has_head()) {
    c.state_ = connection::state::ready;
    ready_.push_back(&c);
    ready_cv_.notify_one();
  } else if (c.buffer_full()) {
    close_locked(&c, "request head over limits.max_header_bytes");
  }
}

void connection_pool::poll_loop() {
  std::vector<pollfd> fds;
  std::vector<connection*> watched;
  std::unique_lock lock{mtx_};
  while (!stopping_) {
    auto now = clock::now();
    fds.assign(1, pollfd{wake_fd_, POLLIN, 0});
    watched.clear();
    auto next = clock::time_point::max();
    std::vector<const connection*> expired;
    for (auto& p : conns_) {
      auto& c = *p;
      if (c.state_ == connection::state::evicted) {
        expired.push_back(&c);
        continue;
      }
      if (c.state_ != connection::state::waiting)
        continue;
      // Silent: the idle timeout runs. Part of a head received: the request's deadline.
      const auto deadline =
        c.buffered() > 0 ? c.request_deadline_ : c.last_active_ + limits_.idle_timeout;
      if (deadline <= now) {
        expired.push_back(&c);
        continue;
      }
      next = std::min(next, deadline);
      fds.push_back(pollfd{c.fd_, POLLIN, 0});
      watched.push_back(&c);
    }
    for (auto* c : expired)
      close_locked(c, c->state_ == connection::state::evicted ? "silent longest at limits.max_connections"
                      : c->buffered() > 0                      ? "request head not complete within limits.read_timeout"
                                                               : "silent for limits.idle_timeout");
    lock.unlock();
    ::poll(fds.data(), fds.size(), poll_millis(next));
    if (fds[0].revents != 0) {
      std::uint64_t count = 0;
      [[maybe_unused]] const auto n = ::read(wake_fd_, &count, sizeof count);
    }
    lock.lock();
    now = clock::now();
    // Only this thread closes waiting connections, so every watched one is still open; one
    // evicted meanwhile is closed at the top of the next round.
    for (std::size_t i = 0; i < watched.size(); ++i)
      if (fds[i + 1].revents != 0 && watched[i]->state_ == connection::state::waiting)
        on_readable(*watched[i], now);
  }
}

void connection_pool::work_loop() {
  std::unique_lock lock{mtx_};
  for (;;) {
    ready_cv_.wait(lock, [this] { return stopping_ || !ready_.empty(); });
    if (stopping_)
      return;
    auto* c = ready_.front();
    ready_.pop_front();
    c->state_ = connection::state::serving;
    lock.unlock();
    bool keep = false;
    try {
      keep = serve_(*c);
    } catch (const std::exception& e) {
      // cpp-httplib answers a handler's exception with 500 itself; this is its own failure
      // (out of memory, say): the connection is closed, the server goes on.
      logging::get().warn("monitor: serving a request failed: {}", e.what());
    } catch (...) {
      logging::get().warn("monitor: serving a request failed (not a std::exception)");
    }
    lock.lock();
    ++c->requests_;
    if (!keep || stopping_) {
      close_locked(c, nullptr);
      continue;
    }
    const auto now = clock::now();
    c->last_active_ = now;
    if (c->has_head()) { // pipelined: served again, after the ones already waiting
      c->request_deadline_ = now + limits_.read_timeout;
      c->state_ = connection::state::ready;
      ready_.push_back(c);
      ready_cv_.notify_one();
      continue;
    }
    c->state_ = connection::state::waiting;
    if (c->buffered() > 0)
      c->request_deadline_ = now + limits_.read_timeout;
    wake();
  }
}

} // namespace sluice::monitor
