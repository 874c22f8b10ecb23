#pragma once
/// The ZeroMQ sink: records to a PUSH socket (read by PULL peers) or a PUB socket (read by
/// SUB peers), one record per message, so other programs can read a job's output.
///
/// ```cpp
/// // PULL peers connect here, each message one JSON object:
/// stream.sink_to(sinks::zmq<alert>{{.endpoint = "tcp://*:5558", .bind = true}});
/// // published on topic "alerts", binary records:
/// stream.sink_to(sinks::zmq<alert>{{.endpoint = "tcp://*:5559", .bind = true,
///                                    .pattern = sinks::zmq_pattern::pub,
///                                    .topic = "alerts",
///                                    .format = sinks::zmq_format::binary}});
/// ```
///
/// Delivery: **at-most-once**. A message handed to ZeroMQ is gone from the job's view: no
/// acknowledgement, no transaction, nothing re-sent after a restart. Messages queued in
/// ZeroMQ when the process dies are lost; records a restarted job reads again (from a
/// replayable source) are sent again. A job that takes checkpoints logs this once at warn.
///
/// PUSH never drops: when every peer is at its high-water mark (or no peer is connected
/// yet) the sink waits, which is backpressure, and fails after `send_timeout`. PUB drops
/// by design: ZeroMQ discards messages for a subscriber that is at its high-water mark, and
/// everything published while no subscriber is connected (or before its subscription
/// arrived); use PUSH when every record must arrive.
#include "sluice/net/zmq_format.hpp"
#include "sluice/net/zmq_socket.hpp"
#include "sluice/sinks/sink.hpp"

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace sluice::sinks {

using zmq_format = net::zmq_format;

/// The ZeroMQ socket a `zmq` sink writes to.
enum class zmq_pattern {
  /// PUSH: one part per message, the record; dealt round-robin among PULL peers. Waits
  /// when they are all full (no loss).
  push,
  /// PUB: two parts per message, `topic` and the record; every SUB peer whose subscription
  /// matches gets a copy. Drops for slow or absent subscribers.
  pub,
};

/// Options of the ZeroMQ sink. Every field but `endpoint` has a working default.
struct zmq_sink_options {
  /// A ZeroMQ endpoint: `tcp://host:port` (with `bind`, `tcp://*:port`), `ipc://path`.
  /// Required.
  std::string endpoint{};
  /// PUSH or PUB. Default: PUSH.
  zmq_pattern pattern = zmq_pattern::push;
  /// Bind the endpoint (readers connect to the job) instead of connecting to it. Default:
  /// connect. A bound socket is one instance (`max_parallelism() == 1`).
  bool bind = false;
  /// PUB only: the topic, the first part of every message (SUB peers filter on its prefix).
  /// Default: empty.
  std::string topic{};
  /// How a message's payload holds the record. Default: JSON.
  zmq_format format = zmq_format::json;
  /// ZeroMQ's send high-water mark, in messages per peer connection. 0 is no limit (memory
  /// then grows while readers are slow). Default 1000 (ZeroMQ's).
  int high_water_mark = 1000;
  /// PUSH: how long `write` waits for room when every peer is at its high-water mark or none
  /// is connected, before the job fails with `connector_failed`. The task is blocked
  /// meanwhile (backpressure: it returns no credit upstream), and a cancel waits for it too.
  /// Default 10 s.
  std::chrono::milliseconds send_timeout = std::chrono::seconds{10};
  /// At `close`, how long messages still queued in ZeroMQ keep trying to leave; the last
  /// connector socket of the process to close waits for them up to this long. Default 5 s.
  std::chrono::milliseconds linger = std::chrono::seconds{5};
};

namespace detail {

[[nodiscard]] result<void> validate_zmq_sink_options(const zmq_sink_options& options);
net::zmq_socket_options zmq_sink_socket_options(const zmq_sink_options& options);

/// Sends one message; waits (PUSH) up to `send_timeout` for room. `connector_failed` on
/// timeout, naming the endpoint and how many records of the batch are unsent.
[[nodiscard]] result<void> zmq_send(net::zmq_socket& socket, const zmq_sink_options& options,
                                    std::string_view who, std::string_view payload,
                                    std::size_t unsent);

/// The at-most-once warning, logged once per descriptor (its copies share `logged`).
void warn_zmq_sink_at_most_once(std::atomic<bool>& logged, const std::string& name,
                                const std::string& endpoint);

/// One instance of the ZeroMQ sink. See `zmq` for the contract.
template <class T>
class zmq_sink final : public sink<T> {
public:
  zmq_sink(zmq_sink_options options, std::shared_ptr<std::atomic<bool>> warned)
    : options_(std::move(options)), warned_(std::move(warned)) {}

  result<void> open(const sink_context& ctx) override {
    who_ = "zmq sink '" + ctx.name + "'";
    if (ctx.checkpoints)
      warn_zmq_sink_at_most_once(*warned_, ctx.name, options_.endpoint);
    auto s = net::zmq_socket::open(zmq_sink_socket_options(options_), who_);
    if (!s)
      return std::move(s).error();
    socket_ = std::move(*s);
    return {};
  }

  result<void> write(std::vector<T>& records) override {
    for (std::size_t i = 0; i < records.size(); ++i) {
      net::encode_zmq_payload(records[i], options_.format, payload_);
      if (auto ok = zmq_send(socket_, options_, who_, payload_, records.size() - i); !ok)
        return ok;
    }
    return {};
  }

  result<void> close() override {
    socket_.close();
    return {};
  }

private:
  zmq_sink_options options_;
  std::shared_ptr<std::atomic<bool>> warned_;
  std::string who_;
  net::zmq_socket socket_;
  std::string payload_; // reused across records
};

} // namespace detail

/// Descriptor: `stream.sink_to(sinks::zmq<T>{{.endpoint = "tcp://127.0.0.1:5558"}})`.
///
/// - Opens its socket in `open`: a bind that fails (a port in use) or an endpoint ZeroMQ
///   refuses fails the job at start with `io_error` naming the endpoint; `validate` refuses
///   an endpoint that is not `transport://address` with `invalid_option`.
/// - `write` hands each record to ZeroMQ without blocking (ZMQ_DONTWAIT). When a PUSH socket
///   cannot take it, the sink waits for room (zmq_poll) up to `send_timeout`: the task stops
///   meanwhile and stops returning credit, so backpressure reaches the sources as for every
///   sink (sinks/README.md). Then `connector_failed: zmq sink '<name>': no PULL peer of
///   <endpoint> took a message for <n> ms ...`. Nothing is dropped silently.
/// - `flush` does nothing: ZeroMQ has no flush; messages leave in the background.
/// - Parallelism: connect, any (each instance has its own connection; order holds per
///   instance). Bind, one instance.
/// - Delivery: at-most-once (see the file's comment).
template <class T>
struct zmq : zmq_sink_options {
  using record_type = T;

  explicit zmq(zmq_sink_options options) : zmq_sink_options(std::move(options)) {}

  const zmq_sink_options& options() const noexcept { return *this; }
  std::unique_ptr<sink<T>> create(const sink_context&) const {
    return std::make_unique<detail::zmq_sink<T>>(options(), warned);
  }
  std::string describe() const {
    return std::string{"zmq("} + (pattern == zmq_pattern::pub ? "pub " : "push ") + endpoint +
           ")";
  }
  int max_parallelism() const noexcept { return bind ? 1 : 1 << 16; }
  result<void> validate() const {
    if (auto ok = net::check_zmq_format<T>(format, "zmq sink " + endpoint); !ok)
      return ok;
    return detail::validate_zmq_sink_options(*this);
  }

  /// Whether the at-most-once warning was logged; shared by the descriptor's copies and the
  /// instances they create, so a job logs it once.
  std::shared_ptr<std::atomic<bool>> warned = std::make_shared<std::atomic<bool>>(false);
};

} // namespace sluice::sinks
