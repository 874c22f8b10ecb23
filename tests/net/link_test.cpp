// net/link.hpp over loopback: two links exchange every frame kind in order; a wrong
// fingerprint is refused naming the difference and the peer; garbage from raw sockets is
// counted and harms nothing; with CURVE a peer without the cluster key gets nothing
// through; a silent peer is reported lost (manual clocks), and a lost peer that talks on is
// told so; frames queued for a node that was lost or restarted never reach its next run.
// Every wait is bounded.
#include "sluice/net/batch_codec.hpp"
#include "sluice/net/link.hpp"

#include <boost/test/unit_test.hpp>
#include <zmq.hpp>

#include <atomic>
#include <chrono>
#include <functional>
#include <random>
#include <thread>
#include <string>
#include <vector>

using namespace sluice;
using namespace sluice::net;
using namespace std::chrono_literals;

namespace {

constexpr auto patience = 10s; // generous: the machine is shared; never reached when correct

link_options options_for(std::uint32_t node, std::vector<std::string> nodes,
                         std::string fingerprint = "job-1") {
  link_options o;
  o.node = node;
  o.nodes = std::move(nodes);
  o.fingerprint = std::move(fingerprint);
  o.cluster_digest = "cluster-1";
  o.heartbeat_interval = 100ms;
  o.heartbeat_timeout = 60s; // tests that need a loss use a manual clock
  return o;
}

std::unique_ptr<net::link> start(link_options o) {
  auto l = net::link::start(std::move(o));
  BOOST_REQUIRE_MESSAGE(l.has_value(), (l.has_value() ? std::string{} : l.error().to_string()));
  return std::move(*l);
}

/// Node 0 on a free port, then node 1 dialling it; `tweak` adjusts node 1's options.
std::pair<std::unique_ptr<net::link>, std::unique_ptr<net::link>> pair_of(
  std::function<void(link_options&)> tweak0 = {}, std::function<void(link_options&)> tweak1 = {}) {
  auto o0 = options_for(0, {"127.0.0.1:0", "127.0.0.1:0"});
  if (tweak0)
    tweak0(o0);
  auto a = start(o0);
  auto o1 = options_for(1, {a->endpoint(), "127.0.0.1:0"});
  if (tweak1)
    tweak1(o1);
  auto b = start(o1);
  return {std::move(a), std::move(b)};
}

/// The next event of `kind` (others are collected in `skipped`), failing after `patience`.
link_event next(net::link& l, link_event::kind kind, std::vector<link_event>* skipped = nullptr) {
  const auto deadline = std::chrono::steady_clock::now() + patience;
  while (std::chrono::steady_clock::now() < deadline) {
    auto ev = l.receive_for(100ms);
    if (!ev)
      continue;
    if (ev->what == kind)
      return std::move(*ev);
    if (skipped)
      skipped->push_back(std::move(*ev));
    else
      BOOST_TEST_MESSAGE("skipped event " << static_cast<int>(ev->what) << " "
                                          << ev->error.to_string());
  }
  BOOST_FAIL("no event of kind " << static_cast<int>(kind) << " within the patience");
  return {};
}

/// Waits until `pred()` holds, failing after `patience`.
template <class Pred>
void wait_until(Pred pred, const std::string& what) {
  const auto deadline = std::chrono::steady_clock::now() + patience;
  while (!pred()) {
    BOOST_REQUIRE_MESSAGE(std::chrono::steady_clock::now() < deadline, "timed out: " << what);
    std::this_thread::sleep_for(5ms); // polling a condition, not hoping for an outcome
  }
}

void both_up(net::link& a, net::link& b) {
  BOOST_TEST(next(a, link_event::kind::peer_up).peer == 1u);
  BOOST_TEST(next(b, link_event::kind::peer_up).peer == 0u);
}

struct rec {
  std::int64_t key = 0;
  std::string text;
  friend bool operator==(const rec&, const rec&) = default;
};
template <class F>
bool inspect(F& f, rec& x) {
  return f.object("rec").fields(f.field("key", x.key), f.field("text", x.text));
}

/// Every kind a caller sends, on channel `ch`.
std::vector<frame> channel_frames(std::uint32_t ch) {
  return {
    {2, ch, data_body{{std::byte{1}, std::byte{2}}}},
    {2, ch, watermark_body{event_time{std::chrono::microseconds{1234}}}},
    {2, ch, idle_body{}},
    {2, ch, active_body{}},
    {2, ch, barrier_body{7, true}},
    {2, ch, barrier_body{8, false}},
    {2, ch, credit_body{16}},
    {2, ch, end_body{}},
  };
}

/// Exchanges a frame both ways, proving the link still works.
void round_trip(net::link& a, net::link& b, std::uint32_t ch) {
  BOOST_REQUIRE(b.send(0, {1, ch, end_body{}}).has_value());
  auto got = next(a, link_event::kind::frame);
  BOOST_TEST(got.frame.channel == ch);
  BOOST_REQUIRE(a.send(1, {1, ch, end_body{}}).has_value());
  BOOST_TEST(next(b, link_event::kind::frame).frame.channel == ch);
}

std::vector<std::byte> random_bytes(std::mt19937& rng, std::size_t max) {
  std::vector<std::byte> out(rng() % max);
  for (auto& b : out)
    b = static_cast<std::byte>(rng());
  return out;
}

} // namespace

BOOST_AUTO_TEST_SUITE(link_suite)

BOOST_AUTO_TEST_CASE(two_links_exchange_every_frame_kind_in_order) {
  auto [a, b] = pair_of();
  both_up(*a, *b);
  BOOST_TEST(!a->authenticated());
  BOOST_TEST(a->security().starts_with("unauthenticated: no cluster key"), a->security());

  // Both directions: node 1 -> node 0 over its DEALER, node 0 -> node 1 over the ROUTER.
  for (auto [from, to, peer] : {std::tuple{b.get(), a.get(), 0u}, std::tuple{a.get(), b.get(), 1u}}) {
    const auto sent = channel_frames(5);
    for (const auto& f : sent)
      BOOST_REQUIRE(from->send(peer, f).has_value());
    // Then many batches, encoded straight into their frames, to check the order at volume.
    for (int i = 0; i < 500; ++i) {
      auto batch = make_batch<rec>();
      batch->records = {{i, std::string(static_cast<std::size_t>(i % 50), 'x')}};
      std::vector<std::byte> bytes;
      encode_batch_frame<rec>(2, 6, *batch, bytes);
      BOOST_REQUIRE(from->send_encoded(peer, std::move(bytes)).has_value());
    }
    for (const auto& f : sent) {
      auto ev = next(*to, link_event::kind::frame);
      BOOST_TEST(ev.peer == 1u - peer);
      BOOST_TEST(ev.frame.attempt == 2);
      BOOST_TEST(ev.frame.channel == 5u);
      BOOST_REQUIRE_MESSAGE(ev.frame.kind() == f.kind(), "got " << to_string(ev.frame.kind())
                                                                << ", sent "
                                                                << to_string(f.kind()));
    }
    for (int i = 0; i < 500; ++i) {
      auto ev = next(*to, link_event::kind::frame);
      BOOST_REQUIRE(ev.frame.kind() == frame_kind::data);
      auto batch = decode_batch<rec>(std::get<data_body>(ev.frame.body).payload);
      BOOST_REQUIRE(batch.has_value());
      const auto& records = records_of<rec>(**batch);
      BOOST_REQUIRE_EQUAL(records.size(), 1u);
      BOOST_REQUIRE_EQUAL(records[0].key, i);
    }
  }
  // Values survive the trip (kinds were checked above; spot-check the bodies).
  BOOST_REQUIRE(b->send(0, {3, 9, barrier_body{41, true}}).has_value());
  auto barrier = next(*a, link_event::kind::frame);
  BOOST_TEST(std::get<barrier_body>(barrier.frame.body).epoch == 41);
  BOOST_TEST(std::get<barrier_body>(barrier.frame.body).checkpoint);

  BOOST_TEST(!b->send(1, {0, 0, end_body{}}).has_value()); // to itself
  BOOST_TEST(!b->send(2, {0, 0, end_body{}}).has_value()); // no such node
  BOOST_TEST(!b->send(0, {0, control_channel, heartbeat_body{1}}).has_value());
  BOOST_TEST(a->stats().garbage_received == 0u);
}

BOOST_AUTO_TEST_CASE(a_sender_within_its_credits_is_never_refused) {
  // Credits keep at most `window` frames between send and receipt; with the link's bound
  // at the same number, no send may fail (the link counts a frame out before it leaves,
  // since the peer may take it before the send returns).
  constexpr std::size_t window = 4;
  auto bounded = [](link_options& o) {
    o.max_outbound_frames = window;
    o.max_inbound_frames = window;
  };
  auto [a, b] = pair_of(bounded, bounded);
  both_up(*a, *b);
  constexpr std::size_t frames = 20000;
  std::atomic<std::size_t> received{0};
  std::atomic<bool> refused{false};
  std::string refusal;
  std::thread sender{[&] {
    for (std::size_t i = 0; i < frames && !refused.load(); ++i) {
      const auto deadline = std::chrono::steady_clock::now() + patience;
      while (i - received.load() >= window && std::chrono::steady_clock::now() < deadline)
        std::this_thread::yield();
      if (auto ok = b->send(0, {0, 1, credit_body{1}}); !ok) {
        refusal = ok.error().to_string();
        refused.store(true);
      }
    }
  }};
  while (received.load() < frames && !refused.load()) {
    auto ev = a->receive_for(std::chrono::duration_cast<std::chrono::milliseconds>(patience));
    if (!ev || ev->what != link_event::kind::frame)
      break;
    received.fetch_add(1);
  }
  refused.store(refused.load() || received.load() < frames);
  sender.join();
  BOOST_TEST(refusal == "");
  BOOST_TEST(received.load() == frames);
}

BOOST_AUTO_TEST_CASE(a_wrong_fingerprint_is_refused_naming_the_difference_and_the_peer) {
  auto [a, b] = pair_of({}, [](link_options& o) { o.fingerprint = "job-2"; });
  const auto at_a = next(*a, link_event::kind::peer_refused);
  BOOST_TEST(at_a.peer == 1u);
  BOOST_TEST((at_a.error.code == error_code::peer_refused));
  BOOST_TEST(at_a.error.message ==
               "node 1 (127.0.0.1:0): job fingerprint differs: the peer runs 'job-2', this "
               "node 'job-1'",
             at_a.error.message);
  const auto at_b = next(*b, link_event::kind::peer_refused);
  BOOST_TEST(at_b.peer == 0u);
  BOOST_TEST(at_b.error.message ==
               "node 0 (" + a->endpoint() +
                 "): job fingerprint differs: the peer runs 'job-1', this node 'job-2'",
             at_b.error.message);
  BOOST_TEST(!a->is_up(1));
  BOOST_TEST(!b->is_up(0));
  // A frame sent meanwhile waits for a handshake that never succeeds: it is not delivered.
  BOOST_REQUIRE(b->send(0, {0, 1, end_body{}}).has_value());
  wait_until([&] { return a->stats().handshakes_refused >= 2; }, "a second hello refused");
  BOOST_TEST(a->stats().frames_received == 0u);
}

BOOST_AUTO_TEST_CASE(another_cluster_file_is_refused_too) {
  auto [a, b] = pair_of({}, [](link_options& o) { o.cluster_digest = "cluster-2"; });
  const auto at_a = next(*a, link_event::kind::peer_refused);
  BOOST_TEST(at_a.error.message.find("node 1 (127.0.0.1:0): cluster file differs: the peer's "
                                     "digest is 'cluster-2', this node's 'cluster-1'") == 0u,
             at_a.error.message);
}

BOOST_AUTO_TEST_CASE(garbage_from_raw_sockets_is_counted_and_harms_nothing) {
  auto [a, b] = pair_of();
  both_up(*a, *b);
  zmq::context_t ctx;
  const auto target = "tcp://" + a->endpoint();

  // A ZeroMQ peer that never says hello: random bytes, multi-part messages, a valid frame
  // before any handshake, a hello of another version, a hello claiming node 0 itself.
  zmq::socket_t dealer{ctx, zmq::socket_type::dealer};
  dealer.set(zmq::sockopt::linger, 0);
  dealer.connect(target);
  std::mt19937 rng{42};
  int sent = 0;
  for (int i = 0; i < 300; ++i, ++sent) {
    auto bytes = random_bytes(rng, 80);
    dealer.send(zmq::buffer(bytes.data(), bytes.size()));
  }
  dealer.send(zmq::str_buffer("two"), zmq::send_flags::sndmore);
  dealer.send(zmq::str_buffer("parts"));
  ++sent;
  std::vector<std::byte> data;
  encode_frame({0, 1, data_body{{std::byte{1}}}}, data);
  dealer.send(zmq::buffer(data.data(), data.size()));
  ++sent;
  std::vector<std::byte> other_version;
  encode_frame({0, control_channel, hello_body{1, "job-1", "cluster-1"}}, other_version);
  other_version[4] = std::byte{2};
  dealer.send(zmq::buffer(other_version.data(), other_version.size()));
  ++sent;
  // The node answers another version with its own hello, so that the peer can say why.
  zmq::message_t answer;
  dealer.set(zmq::sockopt::rcvtimeo, static_cast<int>(std::chrono::milliseconds{patience}.count()));
  BOOST_REQUIRE(dealer.recv(answer).has_value());
  auto hello = decode_frame({static_cast<const std::byte*>(answer.data()), answer.size()});
  BOOST_REQUIRE(hello.has_value());
  BOOST_TEST(std::get<hello_body>(hello->body).node == 0u);
  wait_until([&] { return a->stats().garbage_received >= static_cast<std::uint64_t>(sent); },
             "every garbage message counted");
  BOOST_TEST(a->stats().garbage_received == static_cast<std::uint64_t>(sent));
  std::vector<std::byte> self_claim;
  encode_frame({0, control_channel, hello_body{0, "job-1", "cluster-1"}}, self_claim);
  dealer.send(zmq::buffer(self_claim.data(), self_claim.size()));
  std::vector<link_event> skipped;
  const auto refused = next(*a, link_event::kind::peer_refused, &skipped);
  BOOST_TEST(refused.peer == unknown_peer);
  BOOST_TEST(refused.error.message.find("a peer claiming node 0 was refused") == 0u,
             refused.error.message);

  // Not ZeroMQ at all: raw TCP bytes through STREAM sockets. Pure noise parses as legacy
  // ZMTP 1.0 messages (counted as garbage); noise behind a ZMTP 3 greeting fails ZeroMQ's
  // handshake (counted as a transport refusal).
  auto raw_tcp = [&](bool greeting) {
    std::mt19937 rng{7}; // its own seed: what ZMTP 1.0 makes of the noise depends on it
    zmq::socket_t stream{ctx, zmq::socket_type::stream};
    stream.set(zmq::sockopt::linger, 0);
    stream.connect(target);
    const auto rid = stream.get(zmq::sockopt::routing_id);
    for (int i = 0; i < 20; ++i) {
      auto bytes = random_bytes(rng, 200);
      bytes.push_back(std::byte{0}); // never empty: an empty message would close the stream
      if (greeting && i == 0) {
        bytes.resize(std::max<std::size_t>(bytes.size(), 64));
        std::fill_n(bytes.begin(), 10, std::byte{0});
        bytes[0] = std::byte{0xff}; // signature: 0xff, 8 bytes, 0x7f
        bytes[9] = std::byte{0x7f};
        bytes[10] = std::byte{3}; // version 3, then a nonsense mechanism
      }
      stream.send(zmq::buffer(rid), zmq::send_flags::sndmore);
      stream.send(zmq::buffer(bytes.data(), bytes.size()));
    }
    return stream;
  };
  const auto garbage_before = a->stats().garbage_received;
  auto noise = raw_tcp(false);
  wait_until([&] { return a->stats().garbage_received > garbage_before; },
             "raw TCP noise counted as garbage");
  auto greeted = raw_tcp(true);
  wait_until([&] { return a->stats().transport_refusals >= 1; },
             "the broken ZMTP greeting refused");

  // None of it reached the caller, and the real peer still talks.
  BOOST_TEST(skipped.empty());
  BOOST_TEST(a->stats().frames_received == 0u);
  round_trip(*a, *b, 3);
  BOOST_TEST(a->stats().frames_received == 1u);
  BOOST_TEST(a->is_up(1));
}

BOOST_AUTO_TEST_CASE(a_hello_from_a_peer_gone_before_the_answer_harms_nothing) {
  // A node restarting in a loop dials, says hello and dies before the listener has read
  // the hello: the answer goes to a connection that no longer exists (ZeroMQ: "host
  // unreachable"). The listener's link must go on, not lose its I/O thread.
  auto three = [](link_options& o) {
    o.nodes = {o.nodes[0], o.nodes[1], "127.0.0.1:0"};
    o.max_inbound_frames = 1; // node 0 stops reading while one frame waits for the caller
  };
  auto [a, b] = pair_of(three, three);
  both_up(*a, *b);
  BOOST_REQUIRE(b->send(0, {0, 3, end_body{}}).has_value());
  wait_until([&] { return a->stats().frames_received == 1u; }, "node 0's inbound queue full");
  {
    zmq::context_t ctx;
    zmq::socket_t dealer{ctx, zmq::socket_type::dealer};
    dealer.set(zmq::sockopt::linger, 5000); // the hello leaves before the socket closes
    dealer.connect("tcp://" + a->endpoint());
    std::vector<std::byte> hello;
    encode_frame({0, control_channel, hello_body{2, "job-1", "cluster-1"}}, hello);
    dealer.send(zmq::buffer(hello.data(), hello.size()));
  } // gone
  // Only picks the moment: node 0's ZeroMQ sees the connection close before its link reads
  // the hello (it reads it either way once the caller takes the waiting frame).
  std::this_thread::sleep_for(200ms);
  std::vector<link_event> skipped;
  BOOST_TEST(next(*a, link_event::kind::frame, &skipped).frame.channel == 3u);
  round_trip(*a, *b, 4);
  round_trip(*a, *b, 5);
  while (auto ev = a->try_receive())
    skipped.push_back(std::move(*ev));
  for (const auto& ev : skipped)
    BOOST_TEST((ev.what != link_event::kind::peer_error), ev.error.message);
}

BOOST_AUTO_TEST_CASE(with_curve_a_peer_without_the_cluster_key_gets_nothing_through) {
  auto key = make_curve_keypair();
  BOOST_REQUIRE(key.has_value());
  auto with_key = [&](link_options& o) { o.cluster_key = *key; };
  auto [a, b] = pair_of(with_key, with_key);
  both_up(*a, *b);
  BOOST_TEST(a->authenticated());
  BOOST_TEST(a->security().starts_with("CurveZMQ"), a->security());
  round_trip(*a, *b, 1);

  zmq::context_t ctx;
  const auto target = "tcp://" + a->endpoint();
  std::vector<std::byte> hello;
  encode_frame({0, control_channel, hello_body{1, "job-1", "cluster-1"}}, hello);
  std::vector<std::byte> data;
  encode_frame({0, 1, data_body{{std::byte{1}}}}, data);
  auto inject = [&](zmq::socket_t& s) {
    s.set(zmq::sockopt::linger, 0);
    s.connect(target);
    // A perfect impostor of node 1 but for the key: its hello and a data frame.
    static_cast<void>(s.send(zmq::buffer(hello.data(), hello.size()), zmq::send_flags::dontwait));
    static_cast<void>(s.send(zmq::buffer(data.data(), data.size()), zmq::send_flags::dontwait));
  };
  // No CURVE at all.
  zmq::socket_t plain{ctx, zmq::socket_type::dealer};
  inject(plain);
  wait_until([&] { return a->stats().transport_refusals >= 1; }, "the plain peer refused");
  // CURVE with the server's public key but a key pair of its own.
  auto other = make_curve_keypair();
  BOOST_REQUIRE(other.has_value());
  zmq::socket_t wrong{ctx, zmq::socket_type::dealer};
  wrong.set(zmq::sockopt::curve_serverkey, key->public_key);
  wrong.set(zmq::sockopt::curve_publickey, other->public_key);
  wrong.set(zmq::sockopt::curve_secretkey, other->secret_key);
  const auto before = a->stats().transport_refusals;
  inject(wrong);
  wait_until([&] { return a->stats().transport_refusals > before; }, "the wrong key refused");
  BOOST_TEST(a->stats().last_refusal.find("CURVE") != std::string::npos, a->stats().last_refusal);

  // Neither got a byte through: after a later legitimate round trip, node 0 has seen that
  // frame only, no garbage, no hello, no second peer.
  round_trip(*a, *b, 2);
  const auto st = a->stats();
  BOOST_TEST(st.frames_received == 2u);
  BOOST_TEST(st.garbage_received == 0u);
  BOOST_TEST(st.handshakes_refused == 0u);
  BOOST_TEST(!a->try_receive().has_value());
}

BOOST_AUTO_TEST_CASE(a_silent_peer_is_reported_lost_and_a_live_one_is_not) {
  auto c0 = std::make_shared<manual_clock>();
  auto c1 = std::make_shared<manual_clock>();
  auto timing = [](std::shared_ptr<manual_clock> c) {
    return [c](link_options& o) {
      o.time_source = c;
      o.heartbeat_interval = 1s;
      o.heartbeat_timeout = 5s;
    };
  };
  auto [a, b] = pair_of(timing(c0), timing(c1));
  both_up(*a, *b);

  // Alive: 20 s of manual time in heartbeat steps, each step waiting for the heartbeats.
  for (int step = 0; step < 20; ++step) {
    const auto ha = a->stats().heartbeats_received;
    const auto hb = b->stats().heartbeats_received;
    c0->advance(1s);
    c1->advance(1s);
    wait_until([&] { return a->stats().heartbeats_received > ha &&
                            b->stats().heartbeats_received > hb; },
               "a heartbeat each way");
  }
  BOOST_TEST(a->is_up(1));
  BOOST_TEST(!a->try_receive().has_value());

  // Node 1 goes silent (gone): node 0 reports it lost once 5 s pass without a frame.
  b.reset();
  link_event lost;
  bool found = false;
  for (int step = 0; step < 50 && !found; ++step) {
    c0->advance(1s);
    while (auto ev = a->receive_for(50ms))
      if (ev->what == link_event::kind::peer_lost) {
        lost = std::move(*ev);
        found = true;
        break;
      }
  }
  BOOST_REQUIRE(found);
  BOOST_TEST(lost.peer == 1u);
  BOOST_TEST((lost.error.code == error_code::node_lost));
  BOOST_TEST(lost.error.message.find("node 1 (127.0.0.1:0): nothing received for") == 0u,
             lost.error.message);
  BOOST_TEST(lost.error.message.find("(heartbeat timeout 5000 ms)") != std::string::npos,
             lost.error.message);
  BOOST_TEST(!a->is_up(1));
}

BOOST_AUTO_TEST_CASE(a_node_lost_by_its_peer_but_still_talking_is_told_and_greets_again) {
  // A partition heals after node 0 lost node 1 but before node 1 noticed anything (its
  // heartbeat timeout is longer): node 1 talks on over its old connection. Node 0 refuses
  // its frames and answers them with an unasked hello; node 1 reports node 0 lost (what it
  // ran with node 0 is gone) and greets it again, instead of sitting in its old attempt
  // until its own heartbeat timeout.
  auto c0 = std::make_shared<manual_clock>();
  auto c1 = std::make_shared<manual_clock>();
  auto [a, b] = pair_of(
    [&](link_options& o) {
      o.time_source = c0;
      o.heartbeat_interval = 1s;
      o.heartbeat_timeout = 5s;
    },
    [&](link_options& o) {
      o.time_source = c1;
      o.heartbeat_interval = 1s;
      o.heartbeat_timeout = 600s;
    });
  both_up(*a, *b);
  // Node 1's clock stands still: it sends nothing, and node 0 loses it.
  bool lost = false;
  for (int step = 0; step < 50 && !lost; ++step) {
    c0->advance(1s);
    while (auto ev = a->receive_for(50ms))
      lost = lost || (ev->what == link_event::kind::peer_lost && ev->peer == 1u);
  }
  BOOST_REQUIRE(lost);
  BOOST_TEST(b->is_up(0));
  // Node 1 talks again (heartbeats): it is told, and says so.
  link_event told;
  bool found = false;
  for (int step = 0; step < 50 && !found; ++step) {
    c0->advance(1s);
    c1->advance(1s);
    while (auto ev = b->receive_for(50ms))
      if (ev->what == link_event::kind::peer_lost) {
        told = std::move(*ev);
        found = true;
        break;
      }
  }
  BOOST_REQUIRE_MESSAGE(found, "node 1 was never told that node 0 lost it");
  BOOST_TEST(told.peer == 0u);
  BOOST_TEST((told.error.code == error_code::node_lost));
  BOOST_TEST(told.error.message.find("it no longer knows this node") != std::string::npos,
             told.error.message);
  // Its next hello (one heartbeat interval on) makes both up again.
  bool up0 = false, up1 = false;
  for (int step = 0; step < 50 && !(up0 && up1); ++step) {
    c1->advance(1s);
    while (auto ev = b->receive_for(50ms))
      up1 = up1 || (ev->what == link_event::kind::peer_up && ev->peer == 0u);
    while (auto ev = a->receive_for(10ms))
      up0 = up0 || (ev->what == link_event::kind::peer_up && ev->peer == 1u);
  }
  BOOST_REQUIRE(up0 && up1);
  round_trip(*a, *b, 9);
}

BOOST_AUTO_TEST_CASE(frames_queued_for_a_lost_node_do_not_reach_its_next_run) {
  // Node 1 dies; node 0's runtime still sends it frames of the attempt that ran there (a
  // task's last batches, a completed checkpoint) until it hears of the loss. Those must
  // not reach node 1's next run, which starts knowing no attempt; what node 0 sends after
  // (the next attempt's start) must.
  auto c0 = std::make_shared<manual_clock>();
  auto [a, b] = pair_of([&](link_options& o) {
    o.time_source = c0;
    o.heartbeat_interval = 1s;
    o.heartbeat_timeout = 5s;
  });
  both_up(*a, *b);
  b.reset();
  bool lost = false;
  for (int step = 0; step < 50 && !lost; ++step) {
    c0->advance(1s);
    while (auto ev = a->receive_for(50ms))
      lost = lost || (ev->what == link_event::kind::peer_lost && ev->peer == 1u);
  }
  BOOST_REQUIRE(lost);
  // Attempt 3's frames, sent before node 0 acted on the loss; attempt 4's start, which
  // node 0 had already queued (another failure restarted the job meanwhile).
  for (int i = 0; i < 3; ++i)
    BOOST_REQUIRE(a->send(1, {3, 5, data_body{std::vector<std::byte>(1000, std::byte{7})}}).has_value());
  BOOST_REQUIRE(a->send(1, {4, control_channel, control_body{"start attempt 4"}}).has_value());
  BOOST_TEST(a->queued(1) == 4u);
  // (The runtime's bridge does this when it hears of the loss: attempt 3 failed with it.)
  a->discard(1, 3);
  wait_until([&] { return a->stats().frames_discarded == 3u; }, "3 frames discarded");
  BOOST_TEST(a->queued(1) == 1u);
  // Sent after the discard: kept too, behind the start.
  BOOST_REQUIRE(a->send(1, {3, 5, end_body{}}).has_value());
  auto b2 = start(options_for(1, {a->endpoint(), "127.0.0.1:0"}));
  BOOST_TEST(next(*a, link_event::kind::peer_up).peer == 1u);
  const auto first = next(*b2, link_event::kind::frame);
  BOOST_TEST(first.frame.attempt == 4);
  BOOST_TEST(first.frame.channel == control_channel);
  const auto second = next(*b2, link_event::kind::frame);
  BOOST_TEST(second.frame.attempt == 3);
  BOOST_TEST((second.frame.kind() == frame_kind::end));
  round_trip(*a, *b2, 9);
  BOOST_TEST(a->stats().frames_discarded == 3u);
}

BOOST_AUTO_TEST_CASE(a_node_that_restarts_before_its_loss_is_noticed_gets_none_of_its_old_frames) {
  // Node 1 dies and its next run says hello before node 0's heartbeat timeout: node 1
  // still looks up, so node 0's frames for it wait (the old connection is gone). They
  // were meant for the run that died: the new connection's hello drops them.
  auto c0 = std::make_shared<manual_clock>(); // never advanced: no loss is noticed
  auto [a, b] = pair_of([&](link_options& o) { o.time_source = c0; });
  a->set_current_attempt(3);
  both_up(*a, *b);
  b.reset();
  // Frames sent while ZeroMQ still had the old connection vanish with it; wait until
  // frames stay queued (the connection is gone), sending one at a time.
  wait_until(
    [&] {
      if (a->queued(1) < 3)
        BOOST_REQUIRE(a->send(1, {3, 5, data_body{std::vector<std::byte>(100, std::byte{7})}}).has_value());
      return a->queued(1) >= 3;
    },
    "frames waiting for the dead node 1");
  BOOST_TEST(a->is_up(1));
  // A newer attempt than the caller runs (its start queued before the caller knew of it):
  // kept for the next run.
  BOOST_REQUIRE(a->send(1, {4, control_channel, control_body{"start attempt 4"}}).has_value());
  auto b2 = start(options_for(1, {a->endpoint(), "127.0.0.1:0"}));
  BOOST_TEST(next(*a, link_event::kind::peer_up).peer == 1u); // again: a new connection
  BOOST_TEST(a->stats().frames_discarded >= 3u);
  const auto first = next(*b2, link_event::kind::frame);
  BOOST_TEST(first.frame.attempt == 4);
  BOOST_TEST(first.frame.channel == control_channel);
  round_trip(*a, *b2, 9);
  BOOST_TEST(a->queued(1) == 0u);
}

BOOST_AUTO_TEST_CASE(bad_options_are_named) {
  auto refused = [](link_options o, const std::string& expected) {
    auto l = net::link::start(std::move(o));
    BOOST_REQUIRE(!l.has_value());
    BOOST_TEST((l.error().code == error_code::invalid_option));
    BOOST_TEST(l.error().message.find(expected) != std::string::npos, l.error().message);
  };
  refused(options_for(0, {}), "nodes is empty");
  refused(options_for(2, {"127.0.0.1:0", "127.0.0.1:0"}), "node 2 is not in the cluster of 2");
  refused(options_for(0, {"127.0.0.1"}), "node 0: '127.0.0.1' is not host:port");
  refused(options_for(0, {"127.0.0.1:70000"}), "is not host:port");
  refused(options_for(0, {"127.0.0.1:0"}, ""), "fingerprint is empty");
  auto o = options_for(0, {"127.0.0.1:0"});
  o.heartbeat_timeout = o.heartbeat_interval;
  refused(o, "heartbeat_timeout 100 ms must exceed heartbeat_interval 100 ms");
  o = options_for(0, {"127.0.0.1:0"});
  o.heartbeat_interval = -1ms;
  refused(o, "heartbeat_interval -1 ms must be positive");
  o = options_for(0, {"127.0.0.1:0"});
  o.cluster_key = curve_keypair{"short", "short"};
  refused(o, "cluster_key.public_key is not a 40-character Z85 key");
  // A port that is taken: an io_error naming the endpoint.
  auto first = start(options_for(0, {"127.0.0.1:0"}));
  auto taken = net::link::start(options_for(0, {first->endpoint()}));
  BOOST_REQUIRE(!taken.has_value());
  BOOST_TEST((taken.error().code == error_code::io_error));
  BOOST_TEST(taken.error().message.find("cannot listen on " + first->endpoint()) !=
               std::string::npos,
             taken.error().message);
}

BOOST_AUTO_TEST_SUITE_END()
