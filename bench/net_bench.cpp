// net_bench: frames/s and MB/s of data frames between two net::link nodes over loopback,
// against raw cppzmq PUSH/PULL moving messages of the same size in the same run.
//
//   build/bench/net_bench --runs 5
//
// Each run moves `--frames-1k` frames of 1 KiB and `--frames-64k` of 64 KiB payload from
// node 1 to node 0 (node 1's DEALER to node 0's ROUTER). The sender encodes each data
// frame (header and payload copy) on its own thread and hands it to the link; the
// receiver takes decoded frames from the link's queue. A window of in-flight frames stands
// in for the channels' credits, which the link leaves to its callers. The baseline is a
// PUSH socket on one thread and a PULL socket on another, same sizes, no encoding.
#include "sluice/net/frame.hpp"
#include "sluice/net/link.hpp"

#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <zmq.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstring>
#include <thread>
#include <vector>

namespace {

using clock_type = std::chrono::steady_clock;
using namespace std::chrono_literals;

struct rate {
  double frames_per_s = 0;
  double mb_per_s = 0;
};

rate rate_of(std::size_t frames, std::size_t bytes, clock_type::duration d) {
  const double s = std::chrono::duration<double>(d).count();
  return {frames / s, bytes / s / 1e6};
}

/// node 1 -> node 0 through two links; nullopt when something failed.
std::optional<rate> run_link(std::size_t frames, std::size_t size, std::size_t window) {
  using namespace sluice::net;
  link_options o0;
  o0.node = 0;
  o0.nodes = {"127.0.0.1:0", "127.0.0.1:0"};
  o0.fingerprint = "net_bench";
  o0.max_inbound_frames = window;
  o0.max_outbound_frames = window;
  auto a = link::start(o0);
  if (!a) {
    fmt::print(stderr, "{}\n", a.error().to_string());
    return std::nullopt;
  }
  auto o1 = o0;
  o1.node = 1;
  o1.nodes = {(*a)->endpoint(), "127.0.0.1:0"};
  auto b = link::start(o1);
  if (!b) {
    fmt::print(stderr, "{}\n", b.error().to_string());
    return std::nullopt;
  }
  auto& rx = **a;
  auto& tx = **b;
  // Both sides up before the clock starts.
  for (int seen = 0; seen < 1;) {
    auto ev = rx.receive_for(10s);
    if (!ev) {
      fmt::print(stderr, "net_bench: the links did not connect\n");
      return std::nullopt;
    }
    seen += ev->what == link_event::kind::peer_up;
  }
  while (!tx.is_up(0))
    std::this_thread::sleep_for(1ms);

  const std::vector<std::byte> payload(size, std::byte{0x5a});
  std::atomic<std::size_t> received{0};
  std::atomic<bool> failed{false};
  const auto start = clock_type::now();
  std::thread sender{[&] {
    for (std::size_t i = 0; i < frames; ++i) {
      // The window: at most `window` frames between send and receipt (credits' stand-in).
      while (i - received.load(std::memory_order_acquire) >= window && !failed.load())
        std::this_thread::yield();
      if (failed.load())
        return;
      std::vector<std::byte> bytes;
      bytes.reserve(frame_header_bytes + size);
      encode_data_frame(0, 1, bytes, [&](std::vector<std::byte>& out) {
        out.insert(out.end(), payload.begin(), payload.end());
      });
      // The window keeps the queue below its bound, so a refusal is a failure.
      if (auto sent = tx.send_encoded(0, std::move(bytes)); !sent) {
        fmt::print(stderr, "net_bench: {} (frame {} of {} bytes, {} received)\n",
                   sent.error().to_string(), i, size, received.load());
        failed.store(true);
        return;
      }
    }
  }};
  std::size_t bytes = 0;
  bool ok = true;
  while (received.load() < frames) {
    auto ev = rx.receive_for(10s);
    if (!ev || ev->what != link_event::kind::frame) {
      fmt::print(stderr, "net_bench: expected a frame, got {}\n",
                 ev ? ev->error.to_string() : "nothing for 10 s");
      ok = false;
      break;
    }
    bytes += std::get<data_body>(ev->frame.body).payload.size();
    received.fetch_add(1, std::memory_order_release);
  }
  const auto elapsed = clock_type::now() - start;
  if (!ok) {
    failed.store(true); // release the sender
    sender.join();
    return std::nullopt;
  }
  sender.join();
  if (bytes != frames * size) {
    fmt::print(stderr, "net_bench: received {} payload bytes, sent {}\n", bytes, frames * size);
    return std::nullopt;
  }
  return rate_of(frames, bytes, elapsed);
}

/// The same transfer over raw PUSH/PULL.
std::optional<rate> run_raw(std::size_t frames, std::size_t size) {
  zmq::context_t ctx;
  zmq::socket_t pull{ctx, zmq::socket_type::pull};
  pull.set(zmq::sockopt::linger, 0);
  pull.bind("tcp://127.0.0.1:*");
  const auto ep = pull.get(zmq::sockopt::last_endpoint);
  zmq::socket_t push{ctx, zmq::socket_type::push};
  push.set(zmq::sockopt::linger, 0);
  push.connect(ep);
  const std::vector<std::byte> payload(size, std::byte{0x5a});
  // Connected before the clock starts: one message through.
  push.send(zmq::buffer(payload.data(), 1));
  zmq::message_t first;
  static_cast<void>(pull.recv(first));
  const auto start = clock_type::now();
  std::thread sender{[&] {
    for (std::size_t i = 0; i < frames; ++i)
      push.send(zmq::buffer(payload.data(), payload.size()));
  }};
  std::size_t bytes = 0;
  for (std::size_t i = 0; i < frames; ++i) {
    zmq::message_t m;
    static_cast<void>(pull.recv(m));
    bytes += m.size();
  }
  const auto elapsed = clock_type::now() - start;
  sender.join();
  if (bytes != frames * size)
    return std::nullopt;
  return rate_of(frames, bytes, elapsed);
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

} // namespace

int main(int argc, char** argv) {
  CLI::App app{"net_bench: data frames between two net::link nodes vs raw PUSH/PULL"};
  int runs = 5;
  std::size_t frames_1k = 200000;
  std::size_t frames_64k = 20000;
  std::size_t window = 1024;
  app.add_option("--runs", runs, "runs per size; the median is reported")->check(CLI::Range(1, 100));
  app.add_option("--frames-1k", frames_1k, "1 KiB frames per run")->check(CLI::Range(1, 100000000));
  app.add_option("--frames-64k", frames_64k, "64 KiB frames per run")->check(CLI::Range(1, 10000000));
  app.add_option("--window", window, "frames in flight (the credits' stand-in)")->check(CLI::Range(1, 65536));
  CLI11_PARSE(app, argc, argv);

  fmt::print("| payload | link frames/s | link MB/s | raw PUSH/PULL msg/s | raw MB/s | ratio |\n");
  fmt::print("|---|---|---|---|---|---|\n");
  for (auto [size, frames] : {std::pair{std::size_t{1024}, frames_1k},
                              std::pair{std::size_t{65536}, frames_64k}}) {
    std::vector<double> link_f, link_mb, raw_f, raw_mb;
    for (int r = 0; r < runs; ++r) {
      // Alternate, so that a slow spell of the machine hits both.
      auto l = run_link(frames, size, window);
      auto w = run_raw(frames, size);
      if (!l || !w) {
        fmt::print(stderr, "net_bench: run {} failed\n", r + 1);
        return 1;
      }
      link_f.push_back(l->frames_per_s);
      link_mb.push_back(l->mb_per_s);
      raw_f.push_back(w->frames_per_s);
      raw_mb.push_back(w->mb_per_s);
    }
    const auto lf = median(link_f);
    const auto rf = median(raw_f);
    fmt::print("| {} KiB | {:.0f} | {:.0f} | {:.0f} | {:.0f} | {:.2f} |\n", size / 1024, lf,
               median(link_mb), rf, median(raw_mb), lf / rf);
  }
  return 0;
}
