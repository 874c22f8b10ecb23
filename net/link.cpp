#include "sluice/net/link.hpp"
#include "sluice/net/cluster.hpp"

#include "sluice/core/log.hpp"

#include <fmt/format.h>
#include <zmq.hpp>

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <charconv>
#include <cstring>
#include <condition_variable>
#include <deque>
#include <limits>
#include <map>
#include <mutex>
#include <set>
#include <thread>

namespace sluice::net {

namespace {

error invalid(std::string message) {
  return make_error(error_code::invalid_option, "link options: " + std::move(message));
}

/// Splits "host:port" at its last colon (cluster.hpp's `parse_endpoint`).
std::optional<std::pair<std::string, int>> split_endpoint(const std::string& s) {
  auto e = parse_endpoint(s);
  if (!e)
    return std::nullopt;
  return std::pair{e->host, e->port};
}

bool valid_z85_key(const std::string& key) { return is_z85_key(key); }

result<void> validate(const link_options& o) {
  if (o.nodes.empty())
    return invalid("nodes is empty: list every node's host:port, node 0 first");
  if (o.node >= o.nodes.size())
    return invalid(fmt::format("node {} is not in the cluster of {} nodes", o.node,
                               o.nodes.size()));
  for (std::size_t i = 0; i < o.nodes.size(); ++i)
    if (!split_endpoint(o.nodes[i]))
      return invalid(fmt::format("node {}: '{}' is not host:port", i, o.nodes[i]));
  if (o.fingerprint.empty())
    return invalid("fingerprint is empty: give the job's fingerprint");
  if (o.fingerprint.size() > max_hello_string || o.cluster_digest.size() > max_hello_string)
    return invalid(fmt::format("fingerprint and cluster_digest are limited to {} bytes",
                               max_hello_string));
  if (o.attempt < 0)
    return invalid(fmt::format("attempt {} is negative", o.attempt));
  if (o.heartbeat_interval <= std::chrono::milliseconds::zero())
    return invalid(fmt::format("heartbeat_interval {} ms must be positive",
                               o.heartbeat_interval.count()));
  if (o.heartbeat_timeout <= o.heartbeat_interval)
    return invalid(fmt::format("heartbeat_timeout {} ms must exceed heartbeat_interval {} ms",
                               o.heartbeat_timeout.count(), o.heartbeat_interval.count()));
  if (o.timer_resolution <= std::chrono::milliseconds::zero())
    return invalid(fmt::format("timer_resolution {} ms must be positive",
                               o.timer_resolution.count()));
  if (o.max_frame_body == 0 || o.max_frame_body > 0xffffffffu - frame_header_bytes)
    return invalid(fmt::format("max_frame_body {} must be 1 to {} bytes", o.max_frame_body,
                               0xffffffffu - frame_header_bytes));
  if (o.max_inbound_frames == 0 || o.max_outbound_frames == 0)
    return invalid("max_inbound_frames and max_outbound_frames must be positive");
  if (o.high_water_mark <= 0)
    return invalid(fmt::format("high_water_mark {} must be positive", o.high_water_mark));
  if (o.cluster_key) {
    if (!valid_z85_key(o.cluster_key->public_key))
      return invalid("cluster_key.public_key is not a 40-character Z85 key");
    if (!valid_z85_key(o.cluster_key->secret_key))
      return invalid("cluster_key.secret_key is not a 40-character Z85 key");
  }
  return {};
}

zmq::message_t to_message(std::vector<std::byte> bytes) {
  // Hands the buffer to ZeroMQ without copying it; ZeroMQ frees it once sent.
  auto owned = std::make_unique<std::vector<std::byte>>(std::move(bytes));
  auto* data = owned->data();
  const auto size = owned->size();
  zmq::message_t msg{data, size,
                     [](void*, void* hint) { delete static_cast<std::vector<std::byte>*>(hint); },
                     owned.get()};
  owned.release();
  return msg;
}

std::span<const std::byte> bytes_of(const zmq::message_t& m) {
  return {static_cast<const std::byte*>(m.data()), m.size()};
}

/// The difference between our hello and a peer's, in words; empty when they agree.
std::string hello_difference(const hello_body& ours, const hello_body& theirs) {
  std::string out;
  auto add = [&](std::string s) {
    if (!out.empty())
      out += "; ";
    out += s;
  };
  if (theirs.fingerprint != ours.fingerprint)
    add(fmt::format("job fingerprint differs: the peer runs '{}', this node '{}'",
                    theirs.fingerprint, ours.fingerprint));
  if (theirs.cluster_digest != ours.cluster_digest)
    add(fmt::format("cluster file differs: the peer's digest is '{}', this node's '{}'",
                    theirs.cluster_digest, ours.cluster_digest));
  return out;
}

} // namespace

result<curve_keypair> make_curve_keypair() {
  std::array<char, 41> pub{};
  std::array<char, 41> sec{};
  if (zmq_curve_keypair(pub.data(), sec.data()) != 0)
    return make_error(error_code::io_error,
                      fmt::format("cannot make a CURVE keypair: {}", zmq_strerror(zmq_errno())));
  return curve_keypair{std::string(pub.data(), 40), std::string(sec.data(), 40)};
}

/// Everything the I/O thread owns, plus the queues it shares with callers.
struct link::state {
  link_options opt;
  std::shared_ptr<const clock> time;
  std::string endpoint;
  std::string security;
  hello_body hello; // ours

  // --- shared with callers -------------------------------------------------------------
  mutable std::mutex mu;
  std::condition_variable event_cv;
  std::deque<link_event> events;
  std::size_t inbound_frames = 0; // `frame` events in `events`
  /// Frames callers queued, per peer, not yet taken by the I/O thread.
  std::vector<std::deque<zmq::message_t>> outbox;
  /// Frames per peer queued in `outbox` or `pending`: bounded by max_outbound_frames.
  /// Raised under `mu` (so that the bound is exact), lowered by the I/O thread as each
  /// frame leaves, without the lock.
  std::unique_ptr<std::atomic<std::size_t>[]> queued;
  std::vector<char> up; // per peer, for is_up
  /// Per peer: `discard` was called; the I/O thread drops its `pending` frames of attempts
  /// up to this one.
  std::vector<std::optional<std::int64_t>> discard_through;
  /// `set_current_attempt`: what a reconnection while up drops (none before it is set).
  std::atomic<std::int64_t> current_attempt{std::numeric_limits<std::int64_t>::min()};
  link_stats counters;
  std::atomic<bool> stopping{false};
  /// ZeroMQ's linger when the sockets close, in ms: 0 but after `drain`.
  std::atomic<int> close_linger{0};
  std::atomic<bool> wake_pending{false};
  int wake_read = -1;
  int wake_write = -1;

  // --- I/O thread only -----------------------------------------------------------------
  zmq::context_t ctx;
  zmq::socket_t router;
  std::vector<std::optional<zmq::socket_t>> dealers; // [j] for each j < node
  std::optional<zmq::socket_t> zap;
  std::optional<zmq::socket_t> monitor;
  struct peer_state {
    bool up = false;
    bool refused_reported = false;
    bool error_reported = false;
    std::string routing_id; // on the ROUTER, for peers that dial us
    clock::time_point last_heard{};
    clock::time_point last_sent{};
    clock::time_point last_hello{}; // sent to it (a node this one dials)
    clock::time_point lost_at{};
    clock::time_point last_told{};  // a hello sent to it as a lost node still talking
    std::uint64_t heartbeat_seq = 0;
    std::deque<zmq::message_t> pending; // taken from outbox, not yet sent
  };
  std::vector<peer_state> peers;
  std::map<std::string, std::uint32_t> routes; // ROUTER routing id -> node
  std::set<std::string> refused_routes;        // reported once each (bounded below)
  std::thread io;

  ~state() {
    if (wake_read >= 0)
      ::close(wake_read);
    if (wake_write >= 0)
      ::close(wake_write);
  }

  std::string name(std::uint32_t peer) const {
    if (peer >= opt.nodes.size())
      return "an unknown peer";
    return fmt::format("node {} ({})", peer, opt.nodes[peer]);
  }

  void wake() {
    if (!wake_pending.exchange(true)) {
      const char b = 1;
      // A full pipe already wakes the thread; nothing else can fail here.
      [[maybe_unused]] auto n = ::write(wake_write, &b, 1);
    }
  }

  void post(link_event ev) {
    {
      std::lock_guard lock{mu};
      if (ev.what == link_event::kind::frame) {
        ++inbound_frames;
        ++counters.frames_received;
      }
      if (ev.what == link_event::kind::peer_up || ev.what == link_event::kind::peer_lost)
        up[ev.peer] = ev.what == link_event::kind::peer_up;
      events.push_back(std::move(ev));
    }
    event_cv.notify_all();
    if (opt.on_event)
      opt.on_event();
  }

  void count_garbage(std::string what) {
    logging::get().debug("net: {}", what);
    std::lock_guard lock{mu};
    const auto n = ++counters.garbage_received;
    counters.last_refusal = std::move(what);
    // Rate-limited: a hostile peer must not flood the log.
    if ((n & (n - 1)) == 0)
      logging::get().warn("net: {} refused messages so far; last: {}", n, counters.last_refusal);
  }

  void refuse(std::uint32_t peer, std::string what, bool report) {
    {
      std::lock_guard lock{mu};
      ++counters.handshakes_refused;
      counters.last_refusal = what;
    }
    if (report) {
      logging::get().error("net: {}", what);
      link_event ev;
      ev.what = link_event::kind::peer_refused;
      ev.peer = peer;
      ev.error = make_error(error_code::peer_refused, std::move(what));
      post(std::move(ev));
    }
  }

  bool inbound_full() {
    std::lock_guard lock{mu};
    return inbound_frames >= opt.max_inbound_frames;
  }

  zmq::message_t encode(const frame& f) {
    std::vector<std::byte> bytes;
    encode_frame(f, bytes);
    return to_message(std::move(bytes));
  }

  zmq::message_t hello_message() { return encode({opt.attempt, control_channel, hello}); }

  /// Sends one frame now if the socket takes it; false when it would block (or the peer is
  /// not connected to the ROUTER right now), and the frame stays with the caller.
  bool try_send(std::uint32_t peer, zmq::message_t& msg) {
    try {
      const auto size = msg.size();
      if (peer < opt.node) {
        if (!dealers[peer]->send(msg, zmq::send_flags::dontwait))
          return false;
      } else {
        auto& p = peers[peer];
        zmq::message_t id{p.routing_id.data(), p.routing_id.size()};
        if (!router.send(id, zmq::send_flags::sndmore | zmq::send_flags::dontwait))
          return false;
        // After the identity part, ZeroMQ takes the rest of an atomic message.
        if (!router.send(msg, zmq::send_flags::dontwait))
          return false;
      }
      std::lock_guard lock{mu};
      ++counters.frames_sent;
      counters.bytes_sent += size;
      return true;
    } catch (const zmq::error_t& e) {
      if (e.num() == EHOSTUNREACH)
        return false; // the dialler is gone; keep the frame for its next hello
      throw;
    }
  }

  /// Sends a control frame (hello, heartbeat) now, if the socket takes it: they carry no
  /// data, so one that would block is simply skipped (the next one follows).
  void send_control(std::uint32_t peer, zmq::message_t msg) {
    static_cast<void>(try_send(peer, msg));
  }

  /// `reconnected`: a new connection of a peer that may still look up; reported again,
  /// because the node behind it may have restarted.
  void set_up(std::uint32_t peer, bool reconnected = false) {
    auto& p = peers[peer];
    p.last_heard = time->now();
    p.refused_reported = false;
    p.error_reported = false;
    if (p.up && !reconnected)
      return;
    p.up = true;
    logging::get().info("net: {} is up", name(peer));
    link_event ev;
    ev.what = link_event::kind::peer_up;
    ev.peer = peer;
    post(std::move(ev));
  }

  /// A hello from `peer` (claimed, for the ROUTER; known, for a DEALER).
  /// Returns whether it was accepted.
  bool check_hello(std::uint32_t peer, const hello_body& theirs) {
    auto diff = hello_difference(hello, theirs);
    if (diff.empty())
      return true;
    auto& p = peers[peer];
    refuse(peer, fmt::format("{}: {}", name(peer), diff), !p.refused_reported);
    p.refused_reported = true;
    return false;
  }

  void deliver(std::uint32_t peer, frame f) {
    auto& p = peers[peer];
    p.last_heard = time->now();
    switch (f.kind()) {
      case frame_kind::hello: return; // handled by the callers
      case frame_kind::heartbeat: {
        std::lock_guard lock{mu};
        ++counters.heartbeats_received;
        return;
      }
      default: break;
    }
    link_event ev;
    ev.what = link_event::kind::frame;
    ev.peer = peer;
    ev.frame = std::move(f);
    post(std::move(ev));
  }

  void peer_error(std::uint32_t peer, const error& e, std::size_t size) {
    auto& p = peers[peer];
    {
      std::lock_guard lock{mu};
      counters.last_refusal = fmt::format("{}: {}", name(peer), e.message);
    }
    logging::get().warn("net: {}: malformed frame of {} bytes: {}", name(peer), size, e.message);
    if (p.error_reported)
      return;
    p.error_reported = true;
    link_event ev;
    ev.what = link_event::kind::peer_error;
    ev.peer = peer;
    ev.error = make_error(error_code::malformed_frame, fmt::format("{}: {}", name(peer), e.message));
    post(std::move(ev));
  }

  /// One message on the ROUTER: [routing id][frame].
  void on_router() {
    zmq::message_t id;
    if (!router.recv(id, zmq::recv_flags::dontwait))
      return;
    std::vector<zmq::message_t> parts;
    for (bool more = id.more(); more;) {
      zmq::message_t part;
      if (!router.recv(part, zmq::recv_flags::dontwait))
        break;
      more = part.more();
      parts.push_back(std::move(part));
    }
    const std::string rid{static_cast<const char*>(id.data()), id.size()};
    const auto route = routes.find(rid);
    const bool known = route != routes.end() && peers[route->second].up;
    auto from = [&] {
      if (route != routes.end())
        return name(route->second);
      const char* addr = parts.empty() ? nullptr : zmq_msg_gets(parts[0].handle(), "Peer-Address");
      return fmt::format("a connection from {} that never said hello", addr ? addr : "?");
    };
    if (parts.size() != 1) {
      count_garbage(fmt::format("{}: a message of {} parts, frames have one", from(),
                                parts.size()));
      return;
    }
    {
      std::lock_guard lock{mu};
      counters.bytes_received += parts[0].size();
    }
    auto f = decode_frame(bytes_of(parts[0]), opt.max_frame_body);
    if (!f) {
      if (known) {
        peer_error(route->second, f.error(), parts[0].size());
        return;
      }
      count_garbage(fmt::format("{}: {}", from(), f.error().message));
      const auto version = peek_frame_version(bytes_of(parts[0]));
      if (version && *version != frame_format_version) {
        // Another version cannot be read, but it can be told ours: the dialler then names
        // the difference itself.
        answer_hello(rid);
      }
      return;
    }
    if (f->kind() == frame_kind::hello) {
      on_router_hello(rid, std::get<hello_body>(f->body));
      return;
    }
    if (!known) {
      count_garbage(fmt::format("{}: a {} frame before the handshake", from(),
                                to_string(f->kind())));
      if (route != routes.end())
        tell_lost(route->second, rid);
      return;
    }
    deliver(route->second, std::move(*f));
  }

  /// `peer` talks on the connection of a run this node lost (a partition that healed before
  /// the peer noticed anything: its heartbeat timeout is longer, or it ran late). It would
  /// go on in its old attempt until its own timeout, its frames refused: an unasked hello
  /// tells it (see `on_dealer`) to say hello again. At most one per heartbeat interval.
  void tell_lost(std::uint32_t peer, const std::string& rid) {
    auto& p = peers[peer];
    const auto now = time->now();
    if (p.last_told != clock::time_point{} && now - p.last_told < opt.heartbeat_interval)
      return;
    p.last_told = now;
    static_cast<void>(answer_hello(rid));
  }

  /// Sends our hello to the connection `rid` on the ROUTER, if it still exists: false when
  /// it closed after its message arrived (a peer that died right after its hello).
  bool answer_hello(const std::string& rid) {
    try {
      zmq::message_t reply_id{rid.data(), rid.size()};
      auto reply = hello_message();
      if (router.send(reply_id, zmq::send_flags::sndmore | zmq::send_flags::dontwait))
        static_cast<void>(router.send(reply, zmq::send_flags::dontwait));
      return true;
    } catch (const zmq::error_t& e) {
      if (e.num() != EHOSTUNREACH)
        throw;
      logging::get().debug("net: a hello from a connection that closed since: not answered");
      return false;
    }
  }

  void on_router_hello(const std::string& rid, const hello_body& theirs) {
    const auto claimed = theirs.node;
    // Only the nodes after this one dial it.
    if (claimed >= opt.nodes.size() || claimed <= opt.node) {
      if (refused_routes.size() < 1024 && refused_routes.insert(rid).second)
        refuse(unknown_peer,
               fmt::format("a peer claiming node {} was refused: {}", claimed,
                           claimed >= opt.nodes.size()
                             ? fmt::format("the cluster has {} nodes", opt.nodes.size())
                             : fmt::format("node {} listens and is dialled by the nodes after it",
                                           claimed)),
               true);
      return;
    }
    // Tell the peer who we are either way, so that a mismatch is named on both sides.
    if (!answer_hello(rid))
      return; // it is gone already: its next run says hello again
    if (!check_hello(claimed, theirs))
      return;
    auto& p = peers[claimed];
    bool reconnected = false;
    if (p.routing_id != rid) {
      // A new connection from that node: it restarted or reconnected.
      reconnected = !p.routing_id.empty();
      routes.erase(p.routing_id);
      p.routing_id = rid;
      routes[rid] = claimed;
      if (reconnected && p.up) {
        // It still looked up, so nothing was queued for a run to come: what waits was meant
        // for the connection that is gone (a dialler says hello again only when it lost
        // this node, or as a new process). Its next run must not get it.
        std::size_t dropped = 0;
        {
          std::lock_guard lock{mu};
          const auto through = current_attempt.load();
          dropped = drop_locked(claimed, outbox[claimed], through) +
                    drop_locked(claimed, p.pending, through);
        }
        if (dropped > 0)
          logging::get().info("net: {} connected anew: {} frames queued for its previous "
                              "connection dropped",
                              name(claimed), dropped);
      }
    }
    set_up(claimed, reconnected);
  }

  /// A hello arriving this many heartbeat intervals after this node's last one answers
  /// none (answers to hellos queued behind a partition come together, right after the
  /// first); taking a late answer for an unasked hello costs a restart, not a wrong result.
  static constexpr int unasked_after = 10;

  void on_dealer(std::uint32_t peer) {
    zmq::message_t msg;
    if (!dealers[peer]->recv(msg, zmq::recv_flags::dontwait))
      return;
    {
      std::lock_guard lock{mu};
      counters.bytes_received += msg.size();
    }
    auto f = decode_frame(bytes_of(msg), opt.max_frame_body);
    auto& p = peers[peer];
    if (!f) {
      // We dialled this node's address, so it is named even before its hello.
      if (p.up) {
        peer_error(peer, f.error(), msg.size());
      } else {
        refuse(peer, fmt::format("{}: {}", name(peer), f.error().message), !p.refused_reported);
        p.refused_reported = true;
      }
      return;
    }
    if (f->kind() == frame_kind::hello) {
      const auto& theirs = std::get<hello_body>(f->body);
      if (p.up && time->now() - p.last_hello > unasked_after * opt.heartbeat_interval) {
        // No answer to a hello of ours (this node says hello only while the peer is not up,
        // and answers come at once): the node lost this one, which it tells so
        // (`tell_lost`), or it restarted. Either way what this node runs with it is gone:
        // lost, and the next hello greets it again. Not this node's heartbeat timeout: a
        // node whose timeout is longer than its peers' would wait that long.
        lose(peer, fmt::format("{}: it no longer knows this node (it lost this node, or it "
                               "restarted) while this node still heard from it",
                               name(peer)));
        return;
      }
      if (!p.up && p.last_hello < p.lost_at)
        return; // another unasked one (`tell_lost` repeats): the answer to our next counts
      if (theirs.node != peer) {
        refuse(peer,
               fmt::format("{}: answers as node {}: the cluster files disagree", name(peer),
                           theirs.node),
               !p.refused_reported);
        p.refused_reported = true;
        return;
      }
      if (check_hello(peer, theirs))
        set_up(peer);
      return;
    }
    if (!p.up) {
      count_garbage(fmt::format("{}: a {} frame before the handshake", name(peer),
                                to_string(f->kind())));
      return;
    }
    deliver(peer, std::move(*f));
  }

  /// One event from the ROUTER's monitor: a failed security handshake.
  void on_monitor() {
    zmq::message_t head;
    if (!monitor->recv(head, zmq::recv_flags::dontwait))
      return;
    zmq::message_t addr;
    if (head.more())
      static_cast<void>(monitor->recv(addr, zmq::recv_flags::dontwait));
    if (head.size() < 6)
      return;
    std::uint16_t event = 0;
    std::memcpy(&event, head.data(), 2);
    std::lock_guard lock{mu};
    ++counters.transport_refusals;
    counters.last_refusal = fmt::format("a connection failed the {} handshake (ZeroMQ event {:#x})",
                                        opt.cluster_key ? "CURVE" : "ZMTP", event);
  }

  /// One ZAP request: admit CURVE clients holding the cluster key, nothing else.
  void on_zap() {
    std::vector<zmq::message_t> req;
    do {
      zmq::message_t part;
      if (!zap->recv(part, zmq::recv_flags::dontwait))
        break;
      req.push_back(std::move(part));
    } while (req.back().more());
    // version, request id, domain, address, identity, mechanism, credentials...
    if (req.size() < 6)
      return;
    const std::string mechanism = req[5].to_string();
    bool ok = false;
    if (mechanism == "CURVE" && req.size() >= 7 && req[6].size() == 32) {
      std::array<std::uint8_t, 32> expected{};
      zmq_z85_decode(expected.data(), opt.cluster_key->public_key.c_str());
      ok = std::memcmp(req[6].data(), expected.data(), 32) == 0;
    }
    if (!ok) {
      std::lock_guard lock{mu};
      ++counters.transport_refusals;
      counters.last_refusal = fmt::format("a {} client at {} does not hold the cluster key",
                                          mechanism, req[3].to_string());
    }
    const std::array<std::string, 6> reply{"1.0", req[1].to_string(), ok ? "200" : "400",
                                           ok ? "OK" : "not the cluster key", "", ""};
    for (std::size_t i = 0; i < reply.size(); ++i)
      zap->send(zmq::buffer(reply[i]),
                i + 1 < reply.size() ? zmq::send_flags::sndmore : zmq::send_flags::none);
  }

  /// Drops the messages of `q` of attempts up to `through`, for `peer`; `mu` held.
  std::size_t drop_locked(std::uint32_t peer, std::deque<zmq::message_t>& q,
                          std::int64_t through) {
    const auto n = std::erase_if(q, [&](const zmq::message_t& m) {
      const auto attempt = peek_frame_attempt(bytes_of(m));
      return attempt && *attempt <= through;
    });
    queued[peer].fetch_sub(n, std::memory_order_acq_rel);
    counters.frames_discarded += n;
    return n;
  }

  /// Moves what callers queued into the per-peer pending queues, after dropping what a
  /// caller discarded (of what was taken before its `discard`; the outbox holds only what
  /// it sent after).
  void take_outbox() {
    std::lock_guard lock{mu};
    for (std::uint32_t i = 0; i < outbox.size(); ++i)
      if (auto through = std::exchange(discard_through[i], std::nullopt))
        drop_locked(i, peers[i].pending, *through);
    for (std::size_t i = 0; i < outbox.size(); ++i)
      while (!outbox[i].empty()) {
        peers[i].pending.push_back(std::move(outbox[i].front()));
        outbox[i].pop_front();
      }
  }

  /// Sends pending frames to the peers that are up, until a socket would block.
  void flush() {
    for (std::uint32_t i = 0; i < peers.size(); ++i) {
      auto& p = peers[i];
      while (p.up && !p.pending.empty()) {
        // Counted out before it leaves: the peer may take it (and its sender then send the
        // next) before try_send returns. A caller whose credits keep at most
        // max_outbound_frames in flight is then never refused.
        queued[i].fetch_sub(1, std::memory_order_acq_rel);
        if (!try_send(i, p.pending.front())) {
          queued[i].fetch_add(1, std::memory_order_acq_rel);
          break;
        }
        p.pending.pop_front();
      }
    }
  }

  /// `peer` is lost (`what` says why): reported, and it must say hello again.
  void lose(std::uint32_t peer, std::string what) {
    peers[peer].up = false;
    peers[peer].lost_at = time->now();
    logging::get().error("net: {}", what);
    link_event ev;
    ev.what = link_event::kind::peer_lost;
    ev.peer = peer;
    ev.error = make_error(error_code::node_lost, std::move(what));
    post(std::move(ev));
  }

  void timers() {
    const auto now = time->now();
    const bool full = inbound_full();
    for (std::uint32_t i = 0; i < peers.size(); ++i) {
      if (i == opt.node)
        continue;
      auto& p = peers[i];
      if (p.up && !full && now - p.last_heard > opt.heartbeat_timeout)
        lose(i, fmt::format("{}: nothing received for {} ms (heartbeat timeout {} ms)", name(i),
                            std::chrono::duration_cast<std::chrono::milliseconds>(
                              now - p.last_heard)
                              .count(),
                            opt.heartbeat_timeout.count()));
      if (now - p.last_sent < opt.heartbeat_interval)
        continue;
      if (p.up) {
        p.last_sent = now;
        send_control(i, encode({opt.attempt, control_channel, heartbeat_body{++p.heartbeat_seq}}));
      } else if (i < opt.node) {
        p.last_sent = p.last_hello = now;
        send_control(i, hello_message());
      }
    }
  }

  void run() {
    try {
      loop();
    } catch (const std::exception& e) {
      // A broken invariant of the I/O thread: report it rather than die silently.
      logging::get().critical("net: the I/O thread stopped: {}", e.what());
      link_event ev;
      ev.what = link_event::kind::peer_error;
      ev.peer = unknown_peer;
      ev.error = make_error(error_code::internal, fmt::format("net I/O thread: {}", e.what()));
      post(std::move(ev));
    }
    // Sockets belong to this thread: close them here, at once (or after `drain`, giving
    // what ZeroMQ still holds the rest of its time to leave).
    const int linger = close_linger.load();
    if (linger > 0) {
      router.set(zmq::sockopt::linger, linger);
      for (auto& d : dealers)
        if (d)
          d->set(zmq::sockopt::linger, linger);
    }
    router.close();
    for (auto& d : dealers)
      if (d)
        d->close();
    if (zap)
      zap->close();
    if (monitor)
      monitor->close();
  }

  void loop() {
    // Greet the nodes this one dials; DEALERs queue it until connected.
    for (std::uint32_t j = 0; j < opt.node; ++j) {
      peers[j].last_sent = peers[j].last_hello = time->now();
      send_control(j, hello_message());
    }
    std::vector<zmq::pollitem_t> items;
    while (!stopping.load()) {
      const bool reading = !inbound_full();
      bool router_blocked = false;
      items.clear();
      items.push_back({nullptr, wake_read, ZMQ_POLLIN, 0});
      for (std::uint32_t i = opt.node + 1; i < peers.size(); ++i)
        router_blocked = router_blocked || (peers[i].up && !peers[i].pending.empty());
      items.push_back({router.handle(), 0, static_cast<short>(reading ? ZMQ_POLLIN : 0), 0});
      for (std::uint32_t j = 0; j < opt.node; ++j) {
        short ev = reading ? ZMQ_POLLIN : 0;
        if (peers[j].up && !peers[j].pending.empty())
          ev |= ZMQ_POLLOUT;
        items.push_back({dealers[j]->handle(), 0, ev, 0});
      }
      const std::size_t zap_at = items.size();
      if (zap)
        items.push_back({zap->handle(), 0, ZMQ_POLLIN, 0});
      const std::size_t monitor_at = items.size();
      if (monitor)
        items.push_back({monitor->handle(), 0, ZMQ_POLLIN, 0});
      // A ROUTER does not say when one peer's pipe has room again: retry soon.
      const auto timeout = router_blocked ? std::chrono::milliseconds{1} : opt.timer_resolution;
      zmq::poll(items.data(), items.size(), timeout);
      if (stopping.load())
        break;
      if (items[0].revents & ZMQ_POLLIN) {
        // Drain first, then clear: a caller that finds the flag set has its frame taken by
        // take_outbox below; one that finds it clear writes a byte the next poll sees.
        std::array<char, 64> sink{};
        while (::read(wake_read, sink.data(), sink.size()) > 0) {
        }
        wake_pending.store(false);
      }
      take_outbox();
      if (zap && (items[zap_at].revents & ZMQ_POLLIN))
        for (int k = 0; k < 64 && (zap->get(zmq::sockopt::events) & ZMQ_POLLIN); ++k)
          on_zap();
      if (monitor && (items[monitor_at].revents & ZMQ_POLLIN))
        for (int k = 0; k < 64 && (monitor->get(zmq::sockopt::events) & ZMQ_POLLIN); ++k)
          on_monitor();
      // Bounded batches per socket and turn, so that one busy peer cannot starve the rest.
      if (items[1].revents & ZMQ_POLLIN)
        for (int k = 0; k < 256 && !inbound_full() &&
                        (router.get(zmq::sockopt::events) & ZMQ_POLLIN);
             ++k)
          on_router();
      for (std::uint32_t j = 0; j < opt.node; ++j)
        if (items[2 + j].revents & ZMQ_POLLIN)
          for (int k = 0; k < 256 && !inbound_full() &&
                          (dealers[j]->get(zmq::sockopt::events) & ZMQ_POLLIN);
               ++k)
            on_dealer(j);
      flush();
      timers();
    }
  }
};

link::link(std::unique_ptr<state> s) : s_(std::move(s)) {}

bool link::drain(std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  auto empty = [&] {
    for (std::uint32_t i = 0; i < s_->opt.nodes.size(); ++i)
      if (i != s_->opt.node && is_up(i) && s_->queued[i].load() > 0)
        return false;
    return true;
  };
  // Bounded by `timeout`; the I/O thread lowers the counters without telling anyone, so
  // this looks every millisecond (it runs once, as a process ends).
  while (!empty() && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds{1});
  const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
    deadline - std::chrono::steady_clock::now());
  s_->close_linger.store(static_cast<int>(std::max<std::int64_t>(left.count(), 1)));
  return empty();
}

link::~link() {
  s_->stopping.store(true);
  s_->wake();
  if (s_->io.joinable())
    s_->io.join();
}

result<std::unique_ptr<link>> link::start(link_options options) {
  if (auto ok = validate(options); !ok)
    return std::move(ok).error();
  auto s = std::make_unique<state>();
  s->opt = std::move(options);
  auto& o = s->opt;
  s->time = o.time_source ? o.time_source : default_clock();
  s->hello = {o.node, o.fingerprint, o.cluster_digest};
  const auto n = o.nodes.size();
  s->outbox = std::vector<std::deque<zmq::message_t>>(n); // resize() would need copies
  s->queued = std::make_unique<std::atomic<std::size_t>[]>(n);
  s->up.assign(n, 0);
  s->discard_through.assign(n, std::nullopt);
  s->peers = std::vector<state::peer_state>(n);
  s->dealers.resize(o.node);

  int fds[2];
  if (::pipe2(fds, O_NONBLOCK | O_CLOEXEC) != 0)
    return make_error(error_code::io_error, "link: cannot create the wake-up pipe");
  s->wake_read = fds[0];
  s->wake_write = fds[1];

  const auto [host, port] = *split_endpoint(o.nodes[o.node]);
  const auto max_msg = static_cast<std::int64_t>(o.max_frame_body + frame_header_bytes);
  auto common = [&](zmq::socket_t& sock) {
    sock.set(zmq::sockopt::linger, 0);
    sock.set(zmq::sockopt::sndhwm, o.high_water_mark);
    sock.set(zmq::sockopt::rcvhwm, o.high_water_mark);
    sock.set(zmq::sockopt::maxmsgsize, max_msg);
  };
  try {
    if (o.cluster_key) {
      if (!zmq_has("curve"))
        return make_error(error_code::io_error, "link: libzmq was built without CURVE");
      // The ZAP handler must be bound before the first connection arrives.
      s->zap.emplace(s->ctx, zmq::socket_type::rep);
      s->zap->set(zmq::sockopt::linger, 0);
      s->zap->bind("inproc://zeromq.zap.01");
    }
    s->router = zmq::socket_t{s->ctx, zmq::socket_type::router};
    common(s->router);
    s->router.set(zmq::sockopt::router_mandatory, 1);
    if (o.cluster_key) {
      s->router.set(zmq::sockopt::curve_server, 1);
      s->router.set(zmq::sockopt::curve_secretkey, o.cluster_key->secret_key);
      s->router.set(zmq::sockopt::zap_domain, "sluice");
    }
    const auto monitor_ep = fmt::format("inproc://sluice-link-monitor-{}", static_cast<void*>(s.get()));
    if (zmq_socket_monitor(s->router.handle(), monitor_ep.c_str(),
                           ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL |
                             ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL |
                             ZMQ_EVENT_HANDSHAKE_FAILED_AUTH) != 0)
      return make_error(error_code::io_error, "link: cannot monitor the listening socket");
    s->monitor.emplace(s->ctx, zmq::socket_type::pair);
    s->monitor->set(zmq::sockopt::linger, 0);
    s->monitor->connect(monitor_ep);
    const auto bind_ep = fmt::format("tcp://{}:{}", host, port == 0 ? std::string{"*"}
                                                                  : std::to_string(port));
    try {
      s->router.bind(bind_ep);
    } catch (const zmq::error_t& e) {
      return make_error(error_code::io_error,
                        fmt::format("link: node {} cannot listen on {}: {}", o.node,
                                    o.nodes[o.node], e.what()));
    }
    const auto last = s->router.get(zmq::sockopt::last_endpoint); // "tcp://127.0.0.1:5555"
    s->endpoint = last.starts_with("tcp://") ? last.substr(6) : last;
    o.nodes[o.node] = s->endpoint;
    for (std::uint32_t j = 0; j < o.node; ++j) {
      auto& d = s->dealers[j].emplace(s->ctx, zmq::socket_type::dealer);
      common(d);
      if (o.cluster_key) {
        d.set(zmq::sockopt::curve_serverkey, o.cluster_key->public_key);
        d.set(zmq::sockopt::curve_publickey, o.cluster_key->public_key);
        d.set(zmq::sockopt::curve_secretkey, o.cluster_key->secret_key);
      }
      d.connect("tcp://" + o.nodes[j]);
    }
  } catch (const zmq::error_t& e) {
    return make_error(error_code::io_error, fmt::format("link: node {}: {}", o.node, e.what()));
  }
  s->security =
    o.cluster_key
      ? "CurveZMQ: connections are authenticated and encrypted with the cluster key"
      : fmt::format("unauthenticated: no cluster key; any process that reaches {} can join "
                    "the cluster and send frames, and traffic is not encrypted",
                    s->endpoint);
  auto* raw = s.get();
  s->io = std::thread{[raw] { raw->run(); }};
  return std::unique_ptr<link>{new link{std::move(s)}};
}

result<void> link::send(std::uint32_t peer, const frame& f) {
  std::vector<std::byte> bytes;
  encode_frame(f, bytes);
  return send_encoded(peer, std::move(bytes));
}

result<void> link::send_encoded(std::uint32_t peer, std::vector<std::byte> bytes) {
  if (peer >= s_->opt.nodes.size() || peer == s_->opt.node)
    return make_error(error_code::invalid_option,
                      fmt::format("link: node {} cannot send to node {} (the cluster has {} nodes)",
                                  s_->opt.node, peer, s_->opt.nodes.size()));
  if (bytes.size() >= frame_header_bytes) {
    const auto kind = static_cast<frame_kind>(std::to_integer<std::uint8_t>(bytes[6]));
    if (kind == frame_kind::hello || kind == frame_kind::heartbeat)
      return make_error(error_code::invalid_option,
                        fmt::format("link: the link sends its own {} frames", to_string(kind)));
  }
  {
    std::lock_guard lock{s_->mu};
    const auto waiting = s_->queued[peer].load(std::memory_order_acquire);
    if (waiting >= s_->opt.max_outbound_frames)
      return make_error(error_code::io_error,
                        fmt::format("link: {} frames already wait for {}", waiting,
                                    s_->name(peer)));
    s_->queued[peer].fetch_add(1, std::memory_order_acq_rel);
    s_->outbox[peer].push_back(to_message(std::move(bytes)));
  }
  s_->wake();
  return {};
}

std::optional<link_event> link::try_receive() {
  std::optional<link_event> out;
  bool resume = false;
  {
    std::lock_guard lock{s_->mu};
    if (s_->events.empty())
      return std::nullopt;
    out = std::move(s_->events.front());
    s_->events.pop_front();
    if (out->what == link_event::kind::frame) {
      resume = s_->inbound_frames-- == s_->opt.max_inbound_frames;
    }
  }
  if (resume)
    s_->wake(); // the I/O thread stopped reading when the queue filled up
  return out;
}

std::optional<link_event> link::receive_for(std::chrono::milliseconds timeout) {
  {
    std::unique_lock lock{s_->mu};
    if (!s_->event_cv.wait_for(lock, timeout, [&] { return !s_->events.empty(); }))
      return std::nullopt;
  }
  return try_receive();
}

void link::discard(std::uint32_t peer, std::int64_t through_attempt) {
  if (peer >= s_->opt.nodes.size() || peer == s_->opt.node)
    return;
  {
    std::lock_guard lock{s_->mu};
    s_->drop_locked(peer, s_->outbox[peer], through_attempt);
    // What the I/O thread took was sent before this call: it drops those at its next turn
    // (under `mu` again, before it takes what is sent after).
    auto& through = s_->discard_through[peer];
    through = std::max(through.value_or(through_attempt), through_attempt);
  }
  s_->wake();
}

void link::set_current_attempt(std::int64_t attempt) { s_->current_attempt.store(attempt); }

std::size_t link::queued(std::uint32_t peer) const {
  if (peer >= s_->opt.nodes.size())
    return 0;
  return s_->queued[peer].load(std::memory_order_acquire);
}

bool link::is_up(std::uint32_t peer) const {
  std::lock_guard lock{s_->mu};
  return peer < s_->up.size() && s_->up[peer];
}

const std::string& link::endpoint() const noexcept { return s_->endpoint; }
bool link::authenticated() const noexcept { return s_->opt.cluster_key.has_value(); }
const std::string& link::security() const noexcept { return s_->security; }
std::string link::peer_name(std::uint32_t peer) const { return s_->name(peer); }

link_stats link::stats() const {
  std::lock_guard lock{s_->mu};
  return s_->counters;
}

} // namespace sluice::net
