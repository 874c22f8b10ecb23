#pragma once
/// The socket source: text lines from a TCP connection, like Spark's socket source.
///
/// ```cpp
/// job.from(sources::socket_text{{.host = "127.0.0.1", .port = 9999}});   // std::string
/// job.from(sources::socket<txn>{{.port = 9999}});                        // JSON lines
/// ```
///
/// Meant for tests and demos (`nc -lk 9999`): the connection has no offsets to replay, so
/// delivery is at-most-once across restarts.
#include "sluice/core/codec/json.hpp"
#include "sluice/sources/malformed.hpp"
#include "sluice/sources/source.hpp"

#include <chrono>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>

namespace sluice::sources {

/// Options of the socket sources. Every field but `port` has a working default.
struct socket_options {
  /// The host to connect to: a name or a numeric address. Default: the IPv4 loopback.
  std::string host = "127.0.0.1";
  /// The TCP port. Required.
  std::uint16_t port = 0;
  /// How long to wait before reading again when no data has arrived. Default 10 ms.
  std::chrono::milliseconds poll_interval = std::chrono::milliseconds{10};
  /// How long `open` may wait for the connection. Default 5 s.
  std::chrono::milliseconds connect_timeout = std::chrono::seconds{5};
  /// A line longer than this is malformed (and the rest of it skipped), so a peer that
  /// never sends a newline cannot exhaust memory. Default 1 MiB.
  std::size_t max_line_bytes = std::size_t{1} << 20;
  /// What to do with a line that does not decode (or is too long). Default: fail the job.
  on_malformed malformed = on_malformed::fail;
};

namespace detail {

/// A connected TCP socket read as lines without blocking. Owns the file descriptor.
class line_socket {
public:
  line_socket() = default;
  line_socket(const line_socket&) = delete;
  line_socket& operator=(const line_socket&) = delete;
  ~line_socket() { close(); }

  /// Connects, waiting at most `timeout`. Fails with `io_error` naming `host:port`.
  [[nodiscard]] result<void> connect(const socket_options& options);

  /// What `next_line` found.
  enum class status {
    line,        ///< `line` holds the next line
    too_long,    ///< `line` holds the first `max_line_bytes` of an over-long line
    would_block, ///< no complete line has arrived yet
    closed,      ///< the peer closed and every line (a final partial one too) was returned
  };

  /// The next line, without its terminator (`\n` or `\r\n`). `line` stays valid until the
  /// next call. Never blocks. Fails with `io_error` if reading fails (a reset connection).
  [[nodiscard]] result<status> next_line(std::string_view& line);

  /// Whether `next_line` has something other than `would_block` to return: a complete (or
  /// over-long) line has arrived, or the peer closed. Reads what is waiting, never blocks;
  /// invalidates the last returned `line`. Fails as `next_line`.
  [[nodiscard]] result<bool> has_input();

  /// "socket 127.0.0.1:9999 line 4": where the last returned line came from.
  std::string location() const;
  /// "127.0.0.1:9999"
  const std::string& peer() const noexcept { return peer_; }

  void close() noexcept;

private:
  [[nodiscard]] result<bool> receive(); // false: would block

  int fd_ = -1;
  std::string peer_;
  std::size_t max_line_ = 0;
  std::string buf_;
  std::size_t pos_ = 0;     // start of the unread part of buf_
  std::size_t scanned_ = 0; // buf_[pos_, scanned_) holds no newline
  std::uint64_t line_number_ = 0;
  bool eof_ = false;
  bool discarding_ = false; // skipping the rest of an over-long line
};

/// Logs once per instance that available_now reads only what has arrived at the start.
void note_available_now(const std::string& name, const socket_options& options);

/// How a socket source turns a line into a record.
enum class line_decoding { text, json };

/// One instance of the socket sources. See `socket_text` and `socket` for the contract.
template <class T, line_decoding Decoding>
class socket_source final : public source<T> {
public:
  explicit socket_source(socket_options options) : options_(std::move(options)) {}

  result<void> open(const source_context& ctx) override {
    name_ = ctx.name;
    // Spark's socket source lacks SupportsTriggerAvailableNow, so Spark wraps it
    // (AvailableNowDataStreamWrapper): available_now, like once, takes the lines received
    // when the query starts and then stops, rather than waiting for the peer.
    one_trigger_ = ctx.epochs.how == trigger::kind::available_now ||
                   ctx.epochs.how == trigger::kind::once;
    if (ctx.epochs.how == trigger::kind::available_now)
      note_available_now(name_, options_);
    return socket_.connect(options_);
  }

  /// Micro-batch: input is waiting when a line (or the peer's close) has arrived, so a
  /// trigger finds nothing rather than running an empty batch. Under available_now and
  /// once only the first trigger takes input.
  result<bool> begin_trigger(bool /*unlimited*/) override {
    if (reading_)
      return true; // asked again before the trigger's polls ended: the same input
    if (took_last_)
      return false;
    auto waiting = socket_.has_input();
    if (!waiting)
      return std::move(waiting).error();
    took_last_ = one_trigger_;
    reading_ = *waiting;
    return *waiting;
  }

  result<poll_result> poll(source_output<T>& out, std::size_t max) override {
    for (std::size_t n = 0; n < max;) {
      std::string_view line;
      auto got = socket_.next_line(line);
      if (!got)
        return std::move(got).error();
      switch (*got) {
        case line_socket::status::line:
          ++n;
          if constexpr (Decoding == line_decoding::text) {
            out.records.emplace_back(line);
          } else {
            if (line.empty())
              continue;
            auto decoded = codec::from_json_line<T>(line);
            if (decoded)
              out.records.push_back(std::move(*decoded));
            else if (auto handled = on_malformed_line(line, decoded.error(), out); !handled)
              return std::move(handled).error();
          }
          break;
        case line_socket::status::too_long: {
          ++n;
          auto cause = make_error(error_code::malformed_record,
                                  "line longer than " + std::to_string(options_.max_line_bytes) +
                                    " bytes");
          if (auto handled = on_malformed_line(line, cause, out); !handled)
            return std::move(handled).error();
          break;
        }
        case line_socket::status::would_block:
          reading_ = false;
          return poll_result::idle(options_.poll_interval);
        case line_socket::status::closed:
          reading_ = false;
          return poll_result::end();
      }
    }
    return poll_result::more();
  }

  void close() override { socket_.close(); }

  std::uint64_t malformed_count() const noexcept override { return malformed_; }

private:
  result<void> on_malformed_line(std::string_view line, const error& cause,
                                 source_output<T>& out) {
    ++malformed_;
    if (options_.malformed == on_malformed::fail)
      return located_error(socket_.location(), cause);
    out.dead_letters.push_back(
      dead_letter{name_, socket_.location(), truncate_raw(line), cause.message});
    return {};
  }

  socket_options options_;
  std::string name_;
  line_socket socket_;
  std::uint64_t malformed_ = 0;
  bool one_trigger_ = false; ///< available_now or once: one trigger takes input
  bool took_last_ = false;   ///< that trigger has begun
  bool reading_ = false;     ///< a trigger with input is being read
};

/// Checks options shared by both socket descriptors.
[[nodiscard]] result<void> validate_socket_options(const socket_options& options);

} // namespace detail

/// Descriptor: `job.from(sources::socket_text{{.host = "127.0.0.1", .port = 9999}})`, one
/// `std::string` per line, empty lines included.
///
/// - Connects in `open` (failing with `io_error` naming host:port if unreachable); `poll`
///   never blocks and returns `idle(poll_interval)` when no data is waiting.
/// - Ends when the peer closes the connection, after a final line without newline if any.
/// - Micro-batch: a trigger runs when a line has arrived. Under `available_now` and `once`
///   the first trigger takes the lines that have arrived, then the query stops, as Spark's
///   wrapped socket source does; use `processing_time` or `continuous` to keep reading.
/// - Only over-long lines are malformed (see `socket_options::max_line_bytes`).
/// - One instance only (`max_parallelism() == 1`): a second would open its own connection.
/// - Delivery: at-most-once. Nothing is replayed after a restart.
struct socket_text : socket_options {
  using record_type = std::string;

  explicit socket_text(socket_options options) : socket_options(std::move(options)) {}

  const socket_options& options() const noexcept { return *this; }
  std::unique_ptr<source<std::string>> create(const source_context&) const {
    return std::make_unique<detail::socket_source<std::string, detail::line_decoding::text>>(
      options());
  }
  std::string describe() const { return "socket(" + host + ":" + std::to_string(port) + ")"; }
  int max_parallelism() const noexcept { return 1; }
  result<void> validate() const { return detail::validate_socket_options(*this); }
};

/// Descriptor: `job.from(sources::socket<T>{{.port = 9999}})`, each non-empty line decoded
/// as one JSON object (`codec::from_json_line<T>`). A line that does not decode fails the
/// job with `malformed_record: socket <host:port> line <n>: <cause>`, or becomes a dead
/// letter with `on_malformed::dead_letter`. Otherwise as `socket_text`.
template <class T>
  requires std::default_initializable<T> && std::movable<T>
struct socket : socket_options {
  using record_type = T;

  explicit socket(socket_options options) : socket_options(std::move(options)) {}

  const socket_options& options() const noexcept { return *this; }
  std::unique_ptr<source<T>> create(const source_context&) const {
    return std::make_unique<detail::socket_source<T, detail::line_decoding::json>>(options());
  }
  std::string describe() const { return "socket(" + host + ":" + std::to_string(port) + ")"; }
  int max_parallelism() const noexcept { return 1; }
  result<void> validate() const { return detail::validate_socket_options(*this); }
};

} // namespace sluice::sources
