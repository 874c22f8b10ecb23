#pragma once
/// One ZeroMQ socket of the ZeroMQ connectors (`sources::zmq`, `sinks::zmq`): opened bound
/// or connected, read and written one message at a time without blocking. Keeps libzmq's
/// headers out of the connectors' headers, as sources.cpp keeps <sys/socket.h> out.
///
/// Not the multi-node link (link.hpp): that one owns its sockets on an I/O thread of its
/// own. Here the caller's thread drives the socket: a source's or sink's task, one at a time
/// (ZeroMQ sockets may move between threads when each hand-over is a full memory barrier,
/// which an actor's mailbox is).
///
/// All sockets of the process share one ZeroMQ context, created with the first socket and
/// terminated with the last; the termination waits up to each closed socket's `linger` for
/// its queued messages to leave.
#include "sluice/core/error.hpp"

#include <chrono>
#include <cstddef>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace sluice::net {

/// The socket types the connectors use.
enum class zmq_socket_type {
  pull, ///< receives from PUSH peers, fair-queued
  sub,  ///< receives from PUB peers, filtered by topic prefix
  push, ///< sends to PULL peers, round-robin; blocks (EAGAIN) when every peer is full
  pub,  ///< sends to every SUB peer whose subscription matches; drops for full peers
};

/// "PULL", "SUB", "PUSH", "PUB".
std::string_view to_string(zmq_socket_type type) noexcept;

/// How to open a `zmq_socket`.
struct zmq_socket_options {
  zmq_socket_type type = zmq_socket_type::pull;
  /// A ZeroMQ endpoint: `tcp://host:port`, `ipc://path`, `inproc://name` (inproc only
  /// reaches sockets of the same context: other connectors of this process).
  std::string endpoint;
  /// Bind the endpoint (the stable side) instead of connecting to it.
  bool bind = false;
  /// SUB only: the topic prefixes subscribed to; empty subscribes to everything.
  std::vector<std::string> topics;
  /// ZeroMQ's high-water mark in messages: ZMQ_RCVHWM for PULL and SUB, ZMQ_SNDHWM for PUSH
  /// and PUB. Per peer connection.
  int high_water_mark = 1000;
  /// How long messages queued at `close` still try to leave (ZMQ_LINGER).
  std::chrono::milliseconds linger{0};
};

/// Checks the endpoint's shape (`transport://address`, a known transport, for tcp a
/// `host:port` with a numeric port or `*`) and the other options. Fails with
/// `invalid_option`; `who` starts the message ("zmq source 'in'").
[[nodiscard]] result<void> validate_zmq_socket_options(const zmq_socket_options& options,
                                                       std::string_view who);

/// A ZeroMQ socket driven by one thread at a time. Movable, not copyable.
class zmq_socket {
public:
  zmq_socket();
  zmq_socket(zmq_socket&&) noexcept;
  zmq_socket& operator=(zmq_socket&&) noexcept;
  ~zmq_socket();

  /// Creates, configures and binds or connects the socket. Fails with `io_error` naming the
  /// endpoint and ZeroMQ's reason (`zmq source 'in': cannot bind tcp://127.0.0.1:5555:
  /// Address already in use`). A connect succeeds before the peer exists: ZeroMQ retries in
  /// the background.
  [[nodiscard]] static result<zmq_socket> open(const zmq_socket_options& options,
                                               std::string_view who);

  /// The next whole message's parts, or false when none is waiting. Never blocks. Fails
  /// with `io_error` naming the endpoint when ZeroMQ reports anything but "nothing yet".
  [[nodiscard]] result<bool> try_receive(std::vector<std::string>& parts);

  /// Queues one message of `parts` (at least one). False when the socket would block: a
  /// PUSH whose peers are all at their high-water mark, or that has no peer yet. Never
  /// blocks and never queues part of a message. A PUB never returns false (it drops).
  [[nodiscard]] result<bool> try_send(const std::vector<std::string_view>& parts);

  /// Waits at most `timeout` until a message may be queued without blocking; false on
  /// timeout.
  [[nodiscard]] result<bool> wait_writable(std::chrono::milliseconds timeout);

  /// The endpoint as given; when bound, the endpoint ZeroMQ reports (a `*` port resolved).
  const std::string& endpoint() const noexcept;

  /// Closes the socket; queued messages keep leaving for up to `linger`.
  void close() noexcept;
  bool is_open() const noexcept;

private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

} // namespace sluice::net
