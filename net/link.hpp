#pragma once
/// The connections of one node to the other nodes of a cluster, over ZeroMQ.
///
/// One connection per node pair: every node binds a ROUTER on its own `host:port`, and
/// connects a DEALER to each node listed before it in the cluster file, so node `i` dials
/// nodes `0..i-1` and is dialled by the nodes after it. Frames (frame.hpp) travel both ways
/// on that connection, in order. One I/O thread per link owns every socket (ZeroMQ sockets
/// are not thread-safe); callers hand it frames through a queue and a wake-up pipe and take
/// what arrived from another queue, so nothing blocks a caller.
///
/// The link carries frames; it does not do flow control. Credits are the channels' job
/// (channels/output_gate.hpp): a credit frame is carried like any other. ZeroMQ's
/// high-water marks and the link's queue bounds are a safety net, not the flow control.
///
/// Handshake: each side sends a hello (format version, job fingerprint, node id, cluster
/// digest) and checks the other's; a difference refuses the peer with `peer_refused`,
/// naming the difference and the peer ("node 1 (127.0.0.1:7001): job fingerprint differs:
/// ..."). The dialler repeats its hello every heartbeat interval until it is answered, so a
/// restarted node is greeted again. Frames sent to a peer that is not up yet wait for it.
///
/// Heartbeats: every node sends one to each peer that is up every `heartbeat_interval`; a
/// peer from which nothing arrived for `heartbeat_timeout` is reported lost (`node_lost`)
/// and must say hello again before its frames are taken. Time comes from the injected
/// clock.
///
/// Frames queued for a peer wait while it is away, and leave when it is up again: a caller
/// that knows they were meant for the run of the peer that is gone drops them (`discard`,
/// by attempt). A peer that says hello on a new connection while it still looked up
/// restarted before its loss was noticed: what was queued for it up to the caller's
/// current attempt is dropped then (`set_current_attempt`; counted in
/// `frames_discarded`).
///
/// Security: with `cluster_key` set, every connection uses CurveZMQ (authenticated and
/// encrypted); each node's server key is the cluster's public key, and a ZAP handler admits
/// only clients that prove they hold the cluster key. Without a key the link works but
/// `security()` says, for the caller to log, that the cluster is unauthenticated.
#include "sluice/core/error.hpp"
#include "sluice/core/time.hpp"
#include "sluice/net/frame.hpp"

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace sluice::net {

/// A CurveZMQ keypair, each key 40 characters of Z85.
struct curve_keypair {
  std::string public_key;
  std::string secret_key;
};

/// A new random keypair (libzmq's `zmq_curve_keypair`). Fails with `io_error` when libzmq
/// was built without CURVE.
[[nodiscard]] result<curve_keypair> make_curve_keypair();

/// How a link connects and watches its peers.
struct link_options {
  /// This node's index in `nodes`.
  std::uint32_t node = 0;
  /// Every node's `host:port`, node 0 first: the cluster file's lines. This node binds its
  /// own entry (port 0 picks a free port; see `link::endpoint`). Required.
  std::vector<std::string> nodes;
  /// The job's fingerprint (graph and plan); peers must send the same. Required, at most
  /// `max_hello_string` bytes.
  std::string fingerprint;
  /// A digest of the cluster file; peers must send the same. At most `max_hello_string`
  /// bytes. Default: empty (every peer must then send an empty one too).
  std::string cluster_digest;
  /// The attempt stamped on the link's own frames (hello, heartbeat). Default 0.
  std::int64_t attempt = 0;
  /// How often a heartbeat goes to each peer that is up, and a hello to each peer this node
  /// dials that has not answered yet. Default 1 s.
  std::chrono::milliseconds heartbeat_interval{1000};
  /// A peer silent for longer is reported lost. Must exceed `heartbeat_interval`.
  /// Default 10 s.
  std::chrono::milliseconds heartbeat_timeout{10000};
  /// The clock heartbeats are timed with. Default: the process's steady clock.
  std::shared_ptr<const clock> time_source;
  /// The longest the I/O thread sleeps before it looks at the clock again, in real time.
  /// With a manual clock, the delay between moving it and the link noticing. Default 20 ms.
  std::chrono::milliseconds timer_resolution{20};
  /// The cluster's CurveZMQ keypair, shared by every node. Default: none (unauthenticated).
  std::optional<curve_keypair> cluster_key;
  /// The largest frame body accepted; a larger message closes the connection (ZeroMQ's
  /// ZMQ_MAXMSGSIZE) or is refused. Default `default_max_frame_body` (64 MiB).
  std::size_t max_frame_body = default_max_frame_body;
  /// Received frames waiting for the caller. When reached, the I/O thread stops reading
  /// (TCP pushes back on the senders) and does not declare peers lost until the caller
  /// catches up. With credits this is never reached. Default 65536.
  std::size_t max_inbound_frames = 65536;
  /// Frames waiting to be sent to one peer (not up yet, or its socket full); `send` fails
  /// beyond it. Default 65536.
  std::size_t max_outbound_frames = 65536;
  /// ZeroMQ's send and receive high-water marks, in messages. Default 1000.
  int high_water_mark = 1000;
  /// Called on the I/O thread whenever an event is queued for the caller, so that a caller
  /// need not poll (an actor bridge sends itself a message). Must not block and must not
  /// call back into the link's `receive_for`. Default: none.
  std::function<void()> on_event;
};

/// What the link reports to its caller.
struct link_event {
  enum class kind : std::uint8_t {
    frame,        ///< `frame` arrived from `peer`, in that peer's sending order
    peer_up,      ///< `peer` completed the handshake (again, after a loss or restart)
    peer_refused, ///< the handshake with `peer` failed; `error` names the difference
    peer_lost,    ///< nothing arrived from `peer` within the heartbeat timeout
    peer_error,   ///< `peer`, past the handshake, sent a malformed frame (`error`)
  };
  kind what = kind::frame;
  /// The node, or `unknown_peer` when a connection that never said who it is was refused.
  std::uint32_t peer = 0;
  net::frame frame;
  sluice::error error;
};

/// `link_event::peer` of a connection that is no known node.
inline constexpr std::uint32_t unknown_peer = 0xffffffffu;

/// Counters of a link, safe to read from any thread.
struct link_stats {
  std::uint64_t frames_sent = 0;
  std::uint64_t frames_received = 0; ///< frames handed to the caller
  std::uint64_t bytes_sent = 0;
  std::uint64_t bytes_received = 0;
  std::uint64_t heartbeats_received = 0;
  /// Messages refused before or outside a handshake: undecodable bytes, frames from a
  /// connection that never said hello, a hello of another format version.
  std::uint64_t garbage_received = 0;
  std::uint64_t handshakes_refused = 0;
  /// Connections refused by ZeroMQ's own handshake: a client without the cluster key (ZAP),
  /// another security mechanism, bad keys, a broken ZMTP greeting. (Bytes that happen to
  /// parse as ZMTP 1.0, which libzmq still accepts without CURVE, arrive as messages and
  /// are counted in `garbage_received`.)
  std::uint64_t transport_refusals = 0;
  /// Frames dropped unsent: by `discard`, or because the peer they waited for said hello on
  /// a new connection while it still looked up (it restarted before its loss was noticed):
  /// see `set_current_attempt`.
  std::uint64_t frames_discarded = 0;
  /// The last refusal or garbage, in words ("" if none).
  std::string last_refusal;
};

/// One node's end of the cluster's connections. Thread-safe: any thread may `send`,
/// `try_receive` and read `stats` at once.
class link {
public:
  /// Binds this node's port, connects to the nodes before it and starts the I/O thread.
  /// Fails with `invalid_option` (naming the option) or `io_error` (the endpoint that
  /// could not be bound).
  [[nodiscard]] static result<std::unique_ptr<link>> start(link_options options);

  /// Stops the I/O thread and closes every socket at once (unsent frames are discarded).
  ~link();
  link(const link&) = delete;
  link& operator=(const link&) = delete;

  /// Queues `f` for node `peer` and returns at once. Frames to one peer arrive in the
  /// order they were sent. Fails with `invalid_option` for an unknown peer or this node,
  /// or `io_error` when `max_outbound_frames` wait for that peer already.
  [[nodiscard]] result<void> send(std::uint32_t peer, const frame& f);
  /// As `send`, for bytes already encoded by `encode_frame` or `encode_data_frame`.
  /// Hello and heartbeat frames are the link's own: sending one fails with `invalid_option`.
  [[nodiscard]] result<void> send_encoded(std::uint32_t peer, std::vector<std::byte> bytes);

  /// The next event, if one is waiting. Never blocks.
  std::optional<link_event> try_receive();
  /// The next event, waiting up to `timeout` for one.
  std::optional<link_event> receive_for(std::chrono::milliseconds timeout);

  /// Drops the frames of attempts up to `through_attempt` queued for `peer` and not handed
  /// to ZeroMQ yet (the I/O thread drops those it took soon after; `stats()
  /// .frames_discarded` counts them). Frames of newer attempts, and frames sent after this
  /// call, are kept, in order. For a peer that was lost: what its failed attempt queued
  /// for it would otherwise wait (memory held) and then go to its next run, while the next
  /// attempt's start must wait for it. An unknown peer or this node is ignored.
  void discard(std::uint32_t peer, std::int64_t through_attempt);
  /// The attempt the caller runs now. When a peer says hello on a new connection while it
  /// still looked up (it restarted before its loss was noticed), the frames queued for it
  /// of this attempt and older are dropped: they were meant for its run that is gone, and
  /// this attempt fails with it. Frames of newer attempts are kept. Default: none, and
  /// nothing is dropped (before the runtime wires its first attempt, the first attempt's
  /// start may be waiting for that very peer).
  void set_current_attempt(std::int64_t attempt);
  /// Frames queued for `peer` and not handed to ZeroMQ yet (0 for an unknown peer).
  std::size_t queued(std::uint32_t peer) const;

  /// Waits up to `timeout` until every frame queued for a peer that is up has been handed
  /// to ZeroMQ, and lets ZeroMQ use the rest of the time to send them when the link is
  /// destroyed (instead of discarding them). For a process about to end: the last frames
  /// (the job's end, acknowledgements) reach the peers. True when the queues emptied.
  bool drain(std::chrono::milliseconds timeout);

  /// Whether the handshake with `peer` succeeded and it has not been lost since.
  bool is_up(std::uint32_t peer) const;
  /// The `host:port` this node listens on (the port picked, when given as 0).
  const std::string& endpoint() const noexcept;
  /// Whether connections are authenticated (a cluster key is set).
  bool authenticated() const noexcept;
  /// What protects the cluster, in words for the log: CurveZMQ with the cluster key, or
  /// that the cluster is unauthenticated and who can join it.
  const std::string& security() const noexcept;
  /// "node 1 (127.0.0.1:7001)": how errors name a node.
  std::string peer_name(std::uint32_t peer) const;
  link_stats stats() const;

private:
  struct state;
  explicit link(std::unique_ptr<state> s);
  std::unique_ptr<state> s_;
};

} // namespace sluice::net
