#pragma once
/// The monitor server's connections, below HTTP: which are admitted, how long they may stay
/// silent or take to send a request, and which thread serves them (`server_limits`).
///
/// cpp-httplib 0.11 (Debian 12's) gives every accepted connection a pool thread from accept
/// to close and queues the others without bound; its read timeout bounds each read, not a
/// request, and it reads a head line and a body whole into memory. So 200 idle connections
/// left nothing to serve a scrape, and one client could hold a thread or grow the job's
/// memory at will. Here one thread polls every open connection and buffers what arrives; a
/// worker gets a connection only once a whole request head is there (up to a blank line),
/// so silent and slow clients cost no worker, and a head's size and time are bounded before
/// anything parses it. cpp-httplib still parses, routes and answers (monitor/server.cpp).
#include "sluice/core/error.hpp"
#include "sluice/monitor/server.hpp"

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace sluice::monitor {

/// One accepted connection: its (non-blocking) socket and the bytes received but not yet
/// consumed. A worker uses it between `connection_pool`'s hand-over and the return of its
/// serve function; nobody else touches it then.
class connection {
public:
  using clock = std::chrono::steady_clock;

  /// Takes `fd` (closed on destruction); buffers up to `buffer_bytes`.
  connection(int fd, std::size_t buffer_bytes);
  ~connection();
  connection(const connection&) = delete;
  connection& operator=(const connection&) = delete;

  /// At most `n` bytes: buffered ones first, else waits until `deadline` for the socket.
  /// Returns how many (> 0), 0 when the peer closed, -1 on an error or when the deadline
  /// passed.
  std::ptrdiff_t read(char* out, std::size_t n, clock::time_point deadline);
  /// Writes all `n` bytes, waiting until `deadline` for room; false on an error or when the
  /// deadline passed.
  bool write(const char* data, std::size_t n, clock::time_point deadline);
  /// Waits until there is something to read (or the peer closed) or `deadline` passes.
  bool wait_readable(clock::time_point deadline) const;
  /// Waits until the socket takes more bytes or `deadline` passes.
  bool wait_writable(clock::time_point deadline) const;

  /// When the request being received must have arrived: `read_timeout` after its first byte.
  clock::time_point request_deadline() const noexcept { return request_deadline_; }
  /// Requests served on this connection so far.
  std::size_t requests() const noexcept { return requests_; }
  int fd() const noexcept { return fd_; }
  void peer_address(std::string& ip, int& port) const;
  void local_address(std::string& ip, int& port) const;

private:
  friend class connection_pool;
  enum class state { waiting, ready, serving, evicted };
  enum class received { data, nothing, closed };

  std::size_t buffered() const noexcept { return end_ - begin_; }
  bool buffer_full() const noexcept { return begin_ == 0 && end_ == buf_.size(); }
  /// Whether the buffer holds a whole request head (it ends at the first empty line).
  bool has_head() const;
  /// Reads what the socket holds into the buffer, without waiting.
  received receive();
  bool wait(short events, clock::time_point deadline) const;

  int fd_;
  std::vector<char> buf_;
  std::size_t begin_ = 0, end_ = 0;
  state state_ = state::waiting;
  clock::time_point last_active_{};
  clock::time_point request_deadline_{};
  std::size_t requests_ = 0;
};

/// The open connections of one server, a poll thread and `limits.threads` workers.
/// Thread-safe: `adopt` comes from cpp-httplib's accept thread, `shutdown` from any.
class connection_pool {
public:
  /// Serves one request of a connection whose head has arrived; true keeps it open.
  using serve_fn = std::function<bool(connection&)>;

  /// Starts the threads. Fails (naming the cause) when the system refuses a thread or the
  /// poll thread's wake-up descriptor.
  static result<std::unique_ptr<connection_pool>> start(const server_limits& limits, serve_fn serve);
  ~connection_pool();
  connection_pool(const connection_pool&) = delete;
  connection_pool& operator=(const connection_pool&) = delete;

  /// Takes an accepted socket. At `max_connections`, the connection silent longest is closed
  /// to make room; when every connection is being served the new one is refused (503,
  /// closed).
  void adopt(int fd);
  /// Closes every connection and joins the threads. A request being served ends at its next
  /// read or write. Idempotent.
  void shutdown();

private:
  connection_pool(const server_limits& limits, serve_fn serve, int wake_fd);
  void poll_loop();
  void work_loop();
  void wake() const;
  /// Looks at what arrived on a waiting connection (the lock is held).
  void on_readable(connection& c, connection::clock::time_point now);
  /// Closes `c` and forgets it (the lock is held; `c` is waiting, evicted or was served).
  void close_locked(const connection* c, const char* why);

  const server_limits limits_;
  const serve_fn serve_;
  const int wake_fd_;
  std::mutex mtx_;
  std::condition_variable ready_cv_;
  /// Every open connection, oldest first.
  std::vector<std::unique_ptr<connection>> conns_;
  /// Connections whose head has arrived, waiting for a worker, in arrival order.
  std::deque<connection*> ready_;
  /// Open connections not evicted (what `max_connections` bounds).
  std::size_t admitted_ = 0;
  bool stopping_ = false;
  std::thread poller_;
  std::vector<std::thread> workers_;
};

} // namespace sluice::monitor
