// Backpressure across node processes (issue 24): a throttled sink on node 1 holds back the
// generator on node 0 (tests/net/backpressure_node.cpp), and neither process buffers what
// it cannot pass on. The input is far larger than the limit asserted on each process's peak
// RSS (VmHWM, which the nodes report themselves at their end; the test also samples VmRSS
// from /proc/PID/status while they run), so a queue that grew without bound anywhere (node
// 0's stand-in or link, ZeroMQ's buffers, node 1's input) would fail it. The credit windows
// bound the batches in flight: remote_credits on the channel between the nodes. The bytes
// in flight on it (encoded batches sent and not credited back: net/inflight.hpp) are read
// from both nodes' Prometheus /metrics while the sink is throttled: never more than the
// credits times the largest batch's encoding. The limit bites: with --remote-credits 1024 (a
// 256 MiB window, close to no flow control for this input) the same run peaks at about
// 84 MiB on node 0 and 152 MiB on node 1.
#define BOOST_TEST_MODULE cluster_backpressure
#include <boost/test/unit_test.hpp>

#include "sluice/tests/common/cluster_nodes.hpp"
#include "sluice/tests/common/loopback.hpp"
#include "sluice/tests/common/temp_dir.hpp"

#include <httplib.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using sluice::test::cluster_file;
using sluice::test::cluster_nodes;
using sluice::test::log_tails;
using sluice::test::read_all;

namespace {

/// VmRSS of a running process in KiB; 0 once it is gone (or a zombie).
std::uint64_t rss_kib(pid_t pid) {
  std::ifstream in{"/proc/" + std::to_string(pid) + "/status"};
  std::string line;
  while (std::getline(in, line))
    if (line.rfind("VmRSS:", 0) == 0)
      return std::stoull(line.substr(6));
  return 0;
}

/// The samples of one metric family in Prometheus text, by their label set.
std::map<std::string, double> samples_of(const std::string& text, const std::string& name) {
  std::map<std::string, double> out;
  std::istringstream in{text};
  std::string line;
  while (std::getline(in, line))
    if (line.rfind(name + "{", 0) == 0) {
      const auto close = line.rfind('}');
      out[line.substr(name.size(), close + 1 - name.size())] = std::stod(line.substr(close + 2));
    }
  return out;
}

/// What one scrape of a node's /metrics said about its channels to the other node.
struct remote_scrape {
  std::map<std::string, double> bytes, batches, max_bytes, max_batches, largest, window;
};

/// GET /metrics of the node on `port`; nothing when it does not answer (not up yet, or
/// ended).
std::optional<remote_scrape> scrape(int port) {
  httplib::Client client{"127.0.0.1", port};
  client.set_connection_timeout(std::chrono::milliseconds{200});
  client.set_read_timeout(std::chrono::seconds{2});
  auto res = client.Get("/metrics");
  if (!res || res->status != 200)
    return std::nullopt;
  const auto& t = res->body;
  return remote_scrape{samples_of(t, "sluice_remote_inflight_bytes"),
                       samples_of(t, "sluice_remote_inflight_batches"),
                       samples_of(t, "sluice_remote_inflight_bytes_max"),
                       samples_of(t, "sluice_remote_inflight_batches_max"),
                       samples_of(t, "sluice_remote_batch_bytes_max"),
                       samples_of(t, "sluice_remote_credit_window")};
}

/// The "key=value ..." line a node prints at its end.
std::map<std::string, std::uint64_t> report(const std::string& text) {
  std::map<std::string, std::uint64_t> out;
  std::istringstream in{text};
  std::string word;
  while (in >> word)
    if (auto eq = word.find('='); eq != std::string::npos)
      out[word.substr(0, eq)] = std::stoull(word.substr(eq + 1));
  return out;
}

} // namespace

BOOST_AUTO_TEST_SUITE(cluster_backpressure_processes)

BOOST_AUTO_TEST_CASE(a_throttled_sink_on_node_1_keeps_both_nodes_rss_bounded) {
  // SLUICE_BACKPRESSURE_RECORDS=N: a longer input (the limit does not change with it).
  const std::uint64_t records =
    std::getenv("SLUICE_BACKPRESSURE_RECORDS") ? std::stoull(std::getenv("SLUICE_BACKPRESSURE_RECORDS")) : 20'000;
  constexpr std::uint64_t payload = 16 * 1024;
  constexpr std::uint64_t batch = 16;
  constexpr std::uint64_t remote_credits = 8;
  // Half the records go to node 1's sink instance: an unbounded queue in front of it
  // would hold up to that much, on node 0 or on node 1.
  // A node of this job peaks at about 20-25 MiB of RSS whatever the input's length
  // (RelWithDebInfo; 20k and 80k records measured alike).
  constexpr std::uint64_t limit_mib = 64;
  const std::uint64_t input_mib = records * payload >> 20;
  const std::uint64_t to_node_1_mib = input_mib / 2;
  // A batch's payload; what the channel between the nodes may have in flight.
  const std::uint64_t window_kib = remote_credits * batch * payload >> 10;
  BOOST_TEST_MESSAGE("input " << input_mib << " MiB, " << to_node_1_mib
                              << " MiB of it to node 1; RSS limit " << limit_mib
                              << " MiB per node; remote window " << window_kib << " KiB");
  BOOST_REQUIRE_GE(to_node_1_mib, 2 * limit_mib); // the limit means something

  sluice::test::temp_dir tmp;
  const auto file = cluster_file(tmp.path, 2);
  cluster_nodes c;
  c.logs = tmp.path;
  const int metrics_port[2] = {sluice::test::free_port(), sluice::test::free_port()};
  for (int node = 0; node < 2; ++node)
    c.args.push_back({SLUICE_BACKPRESSURE_NODE_BIN, "--cluster", file.string(), "--node",
                      std::to_string(node), "--records", std::to_string(records), "--payload",
                      std::to_string(payload), "--batch-size", std::to_string(batch),
                      "--remote-credits", std::to_string(remote_credits), "--threads", "2",
                      "--metrics-port", std::to_string(metrics_port[node])});
  // stdout of each node: its report line.
  for (int node = 0; node < 2; ++node)
    c.args[node].insert(c.args[node].begin(), {"/bin/sh", "-c",
                                               "exec \"$0\" \"$@\" > '" +
                                                 (tmp.path / ("report-" + std::to_string(node))).string() + "'"});
  c.start_all();
  std::uint64_t seen_rss[2] = {0, 0};
  // The channel from node 0's generator to node 1's sink instance, scraped: how often it
  // was seen, the most bytes in flight seen, and the peak and largest batch node 0 reports.
  int scrapes_with_channel[2] = {0, 0};
  double seen_inflight = 0, peak_bytes = 0, peak_batches = 0, largest = 0;
  std::string over; // a scrape that broke the bound, in words
  const auto deadline = std::chrono::steady_clock::now() + 120s;
  bool finished = false;
  while (!(finished = c.step()) && std::chrono::steady_clock::now() < deadline) {
    for (int node = 0; node < 2; ++node) {
      if (!c.pids[node])
        continue;
      seen_rss[node] = std::max(seen_rss[node], rss_kib(*c.pids[node]));
      const auto m = scrape(metrics_port[node]);
      if (!m || m->bytes.empty())
        continue;
      ++scrapes_with_channel[node];
      for (const auto& [labels, bytes] : m->bytes) {
        const double window = m->window.at(labels);
        const double batch_max = m->largest.at(labels);
        seen_inflight = std::max(seen_inflight, bytes);
        peak_bytes = std::max(peak_bytes, m->max_bytes.at(labels));
        peak_batches = std::max(peak_batches, m->max_batches.at(labels));
        largest = std::max(largest, batch_max);
        BOOST_TEST(window == static_cast<double>(remote_credits));
        if ((bytes > window * batch_max || m->max_bytes.at(labels) > window * batch_max ||
             m->batches.at(labels) > window) && over.empty())
          over = "node " + std::to_string(node) + " " + labels + ": " + std::to_string(bytes) +
                 " bytes (" + std::to_string(m->batches.at(labels)) + " batches, at most " +
                 std::to_string(m->max_bytes.at(labels)) + ") in flight, window " +
                 std::to_string(window) + " x largest batch " + std::to_string(batch_max);
      }
    }
    std::this_thread::sleep_for(20ms);
  }
  c.stop_all();
  BOOST_REQUIRE_MESSAGE(finished, "the cluster did not finish" << log_tails(tmp.path, 2));
  BOOST_TEST(c.restarts == 0);
  auto r0 = report(read_all(tmp.path / "report-0"));
  auto r1 = report(read_all(tmp.path / "report-1"));
  BOOST_TEST_MESSAGE("node 0: peak RSS " << r0["vmhwm_kib"] / 1024 << " MiB (sampled "
                                         << seen_rss[0] / 1024 << "), records in "
                                         << r0["sink_records"] << ", max in flight "
                                         << r0["max_in_flight"] << ", backpressure events "
                                         << r0["backpressure_events"]);
  BOOST_TEST_MESSAGE("node 1: peak RSS " << r1["vmhwm_kib"] / 1024 << " MiB (sampled "
                                         << seen_rss[1] / 1024 << "), records in "
                                         << r1["sink_records"] << ", max input queue "
                                         << r1["max_input_queue"]);
  BOOST_REQUIRE_MESSAGE(r0.count("vmhwm_kib") && r1.count("vmhwm_kib"),
                        "a node did not report" << log_tails(tmp.path, 2));
  // Every record arrived, split between the two sink instances; node 1's throttle reached
  // node 0's generator.
  BOOST_TEST(r0["sink_records"] + r1["sink_records"] == records);
  BOOST_TEST(r1["sink_records"] >= records / 3);
  BOOST_TEST(r0["backpressure_events"] > 0u);
  // The windows bound the batches in flight: the channel to node 1 at most remote_credits
  // (node 0's channel to its own sink instance has 4, the in-process default).
  BOOST_TEST(r0["max_in_flight"] <= remote_credits);
  BOOST_TEST(r1["max_input_queue"] <= remote_credits);
  // In flight in bytes: never over the credits times the largest batch (each scrape, and
  // the peak node 0 kept); a batch's encoding is about its records' payloads (16 records of
  // 16 KiB, a few bytes of framing each), so the bound is about 2 MiB here. Node 0 sends
  // the batches; node 1 only credits (its sink instance sends nothing on), so it has no
  // channel to show. The throttle filled the window at least once.
  BOOST_TEST_MESSAGE("node 0 -> node 1: " << scrapes_with_channel[0] << " scrapes, up to "
                                          << seen_inflight << " bytes in flight seen, peak "
                                          << peak_bytes << " bytes / " << peak_batches
                                          << " batches, largest batch " << largest << " bytes");
  BOOST_TEST(over == "");
  BOOST_TEST(scrapes_with_channel[0] > 0);
  BOOST_TEST(scrapes_with_channel[1] == 0);
  BOOST_TEST(largest >= static_cast<double>(batch * payload));
  BOOST_TEST(largest <= static_cast<double>(batch * (payload + 64) + 64));
  BOOST_TEST(peak_bytes <= static_cast<double>(remote_credits) * largest);
  BOOST_TEST(peak_batches == static_cast<double>(remote_credits));
  BOOST_TEST(seen_inflight > 0);
  // And the memory of both processes, at its peak, is bounded.
  for (int node = 0; node < 2; ++node) {
    const auto peak = (node == 0 ? r0 : r1)["vmhwm_kib"];
    BOOST_TEST_CONTEXT("node " << node) {
      BOOST_TEST(peak <= limit_mib * 1024);
      BOOST_TEST(seen_rss[node] <= limit_mib * 1024); // also while shutting down
    }
  }
}

BOOST_AUTO_TEST_SUITE_END()
