#pragma once
/// The ZeroMQ source: records from a PULL socket (fed by PUSH peers) or a SUB socket (fed by
/// PUB peers), one record per message, so other programs can feed a job.
///
/// ```cpp
/// // PUSH peers connect here; each message one JSON object:
/// job.from(sources::zmq<txn>{{.endpoint = "tcp://*:5557", .bind = true}});
/// // a PUB elsewhere, topics "txn.eu" and "txn.us", binary records:
/// job.from(sources::zmq<txn>{{.endpoint = "tcp://10.0.0.5:5556",
///                             .pattern = sources::zmq_pattern::sub,
///                             .topics = {"txn."},
///                             .format = sources::zmq_format::binary}});
/// ```
///
/// Delivery: **at-most-once**. ZeroMQ has no offsets to replay: a checkpoint stores nothing
/// for this source, so after a failure or a restart the messages the job had taken but not
/// yet written out, and those ZeroMQ had queued for the closed socket, are lost; nothing is
/// read twice. A job that takes checkpoints logs this once at warn.
#include "sluice/core/codec/record_text.hpp"
#include "sluice/net/zmq_format.hpp"
#include "sluice/net/zmq_socket.hpp"
#include "sluice/sources/malformed.hpp"
#include "sluice/sources/source.hpp"

#include <atomic>
#include <chrono>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace sluice::sources {

using zmq_format = net::zmq_format;

/// The ZeroMQ socket a `zmq` source reads from.
enum class zmq_pattern {
  /// PULL: each message has one part, the record. Several PUSH peers are fair-queued.
  pull,
  /// SUB: each message has two parts, the topic and the record (the ZeroMQ guide's pub-sub
  /// envelope, what `sinks::zmq` with `pub` sends). ZeroMQ drops messages for a SUB that
  /// falls behind its high-water mark, and a SUB misses what was published before its
  /// subscription reached the publisher.
  sub,
};

/// Options of the ZeroMQ source. Every field but `endpoint` has a working default.
struct zmq_options {
  /// A ZeroMQ endpoint: `tcp://host:port` (with `bind`, `tcp://*:port` or
  /// `tcp://127.0.0.1:*` for a port the system picks), `ipc://path`. Required.
  std::string endpoint{};
  /// PULL or SUB. Default: PULL.
  zmq_pattern pattern = zmq_pattern::pull;
  /// Bind the endpoint (peers connect to the job) instead of connecting to it. Default:
  /// connect. A bound socket is one instance (`max_parallelism() == 1`).
  bool bind = false;
  /// SUB only: topic prefixes to subscribe to; a message whose topic starts with one of them
  /// is read. Default: empty, every topic.
  std::vector<std::string> topics{};
  /// How a message's payload holds the record. Default: JSON.
  zmq_format format = zmq_format::json;
  /// ZeroMQ's receive high-water mark, in messages per peer connection: beyond it a PUSH peer
  /// waits (a PUB drops). 0 is no limit. Default 1000 (ZeroMQ's).
  int high_water_mark = 1000;
  /// A payload larger than this is malformed: refused with `malformed_record` naming its
  /// size (a dead letter keeps its first 1 KiB). ZeroMQ has received it whole by then:
  /// libzmq's own ZMQ_MAXMSGSIZE is not used because it drops the peer's connection without
  /// telling the application. Default 1 MiB.
  std::size_t max_message_bytes = std::size_t{1} << 20;
  /// How long to wait before polling again when no message is waiting. Default 10 ms.
  std::chrono::milliseconds poll_interval = std::chrono::milliseconds{10};
  /// What to do with a message that does not decode (or has the wrong number of parts, or
  /// is too large). Default: fail the job.
  on_malformed malformed = on_malformed::fail;
};

namespace detail {

/// Checks the options (and that the format can carry `T`'s kind: see `zmq<T>::validate`).
[[nodiscard]] result<void> validate_zmq_options(const zmq_options& options);

/// The socket options of a source's socket.
net::zmq_socket_options zmq_source_socket_options(const zmq_options& options);

/// The at-most-once warning, logged once per descriptor (its copies share `logged`).
void warn_zmq_source_at_most_once(std::atomic<bool>& logged, const std::string& name,
                                  const std::string& endpoint);

/// One instance of the ZeroMQ source. See `zmq` for the contract.
template <class T>
class zmq_source final : public source<T> {
public:
  zmq_source(zmq_options options, std::shared_ptr<std::atomic<bool>> warned)
    : options_(std::move(options)), warned_(std::move(warned)) {}

  result<void> open(const source_context& ctx) override {
    name_ = ctx.name;
    auto s = net::zmq_socket::open(zmq_source_socket_options(options_),
                                   "zmq source '" + name_ + "'");
    if (!s)
      return std::move(s).error();
    socket_ = std::move(*s);
    return {};
  }

  result<poll_result> poll(source_output<T>& out, std::size_t max) override {
    for (std::size_t n = 0; n < max; ++n) {
      auto got = socket_.try_receive(parts_);
      if (!got)
        return std::move(got).error();
      if (!*got)
        return poll_result::idle(options_.poll_interval);
      ++messages_;
      if (auto ok = take(out); !ok)
        return ok.error();
    }
    return poll_result::more();
  }

  void close() override { socket_.close(); }

  std::uint64_t malformed_count() const noexcept override { return malformed_; }

  /// Nothing to store: ZeroMQ cannot replay. Called at each checkpoint, so the warning that
  /// this source is at-most-once comes when a job really takes checkpoints.
  std::optional<std::string> snapshot_position(std::int64_t) override {
    warn_zmq_source_at_most_once(*warned_, name_, options_.endpoint);
    return std::nullopt;
  }

private:
  result<void> take(source_output<T>& out) {
    const std::size_t expected = options_.pattern == zmq_pattern::sub ? 2 : 1;
    if (parts_.size() != expected) {
      std::string raw;
      for (const auto& p : parts_) {
        if (raw.size() >= max_dead_letter_raw)
          break;
        if (!raw.empty())
          raw += '|';
        raw += p.substr(0, max_dead_letter_raw);
      }
      return malformed(raw, make_error(error_code::malformed_record,
                                       "message of " + std::to_string(parts_.size()) +
                                         (parts_.size() == 1 ? " part" : " parts") +
                                         ", expected " + std::to_string(expected) +
                                         (expected == 2 ? " (topic, record)" : " (the record)")),
                       out);
    }
    const std::string& payload = parts_.back();
    if (payload.size() > options_.max_message_bytes)
      return malformed(payload,
                       make_error(error_code::malformed_record,
                                  "message of " + std::to_string(payload.size()) +
                                    " bytes, larger than max_message_bytes " +
                                    std::to_string(options_.max_message_bytes)),
                       out);
    auto decoded = net::decode_zmq_payload<T>(payload, options_.format);
    if (!decoded)
      return malformed(payload, decoded.error(), out);
    out.records.push_back(std::move(*decoded));
    return {};
  }

  /// "zmq tcp://127.0.0.1:5557 message 4" (topic 'x' for SUB): counts messages this
  /// instance received, malformed ones included.
  std::string location() const {
    std::string where = "zmq " + socket_.endpoint() + " message " + std::to_string(messages_);
    if (options_.pattern == zmq_pattern::sub && parts_.size() == 2)
      where += " topic '" + truncate_raw(parts_.front(), 64) + "'";
    return where;
  }

  result<void> malformed(std::string_view raw, const error& cause, source_output<T>& out) {
    ++malformed_;
    if (options_.malformed == on_malformed::fail) {
      auto e = located_error(location(), cause);
      e.message += "; message: " + truncate_text(std::string{raw}, max_error_raw_chars);
      return e;
    }
    out.dead_letters.push_back(dead_letter{name_, location(), truncate_raw(raw), cause.message});
    return {};
  }

  zmq_options options_;
  std::shared_ptr<std::atomic<bool>> warned_;
  std::string name_;
  net::zmq_socket socket_;
  std::vector<std::string> parts_; // reused across messages
  std::uint64_t messages_ = 0;
  std::uint64_t malformed_ = 0;
};

} // namespace detail

/// Descriptor: `job.from(sources::zmq<T>{{.endpoint = "tcp://127.0.0.1:5557"}})`.
///
/// - Opens its socket in `open`: a bind that fails (a port in use, an unknown interface) or
///   an endpoint ZeroMQ refuses fails the job at start with `io_error` naming the endpoint;
///   `validate` refuses an endpoint that is not `transport://address` with `invalid_option`.
///   A connect succeeds before the peer is up (ZeroMQ keeps trying).
/// - `poll` never blocks: it takes up to `max` waiting messages and returns
///   `idle(poll_interval)` when none is waiting. Unbounded: the source never ends (cancel
///   the job, or stop it with a trigger).
/// - A message that does not decode, has the wrong number of parts, or is larger than
///   `max_message_bytes` fails the job with `malformed_record: zmq <endpoint> message <n>:
///   <cause>; message: <payload>`, or becomes a dead letter with `on_malformed::dead_letter`.
/// - Parallelism: PULL with connect, any (each instance connects; PUSH peers deal messages
///   round-robin among the instances, so order holds per instance only). PULL with bind,
///   and SUB (every instance would get every message), one instance.
/// - Delivery: at-most-once (see the file's comment).
template <class T>
  requires std::default_initializable<T> && std::movable<T>
struct zmq : zmq_options {
  using record_type = T;

  explicit zmq(zmq_options options) : zmq_options(std::move(options)) {}

  const zmq_options& options() const noexcept { return *this; }
  std::unique_ptr<source<T>> create(const source_context&) const {
    return std::make_unique<detail::zmq_source<T>>(options(), warned);
  }
  std::string describe() const {
    return std::string{"zmq("} + (pattern == zmq_pattern::sub ? "sub " : "pull ") + endpoint +
           ")";
  }
  int max_parallelism() const noexcept {
    return pattern == zmq_pattern::pull && !bind ? 1 << 16 : 1;
  }
  result<void> validate() const {
    if (auto ok = net::check_zmq_format<T>(format, "zmq source " + endpoint); !ok)
      return ok;
    return detail::validate_zmq_options(*this);
  }

  /// Whether the at-most-once warning was logged; shared by the descriptor's copies and the
  /// instances they create, so a job logs it once.
  std::shared_ptr<std::atomic<bool>> warned = std::make_shared<std::atomic<bool>>(false);
};

} // namespace sluice::sources
