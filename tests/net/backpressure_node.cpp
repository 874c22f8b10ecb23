// cluster_backpressure_node: one node of a two-node job for the backpressure process test
// (tests/net/backpressure_process_test.cpp). A generator on node 0 (parallelism 1) makes
// `--records` records of `--payload` bytes each; a rebalance spreads them over two
// instances of a sink, one per node; on node 1 the sink sleeps `--sink-pause` every
// `--pause-every` records, so node 1 holds the whole job back. Each node prints one line
// to stdout at the end: its peak RSS (VmHWM, read from /proc/self/status) and its tasks'
// sink's records and its tasks' in-flight, queue and backpressure counters.
#include "sluice/api/job.hpp"
#include "sluice/samples/common/cli.hpp"
#include "sluice/samples/common/run.hpp"
#include "sluice/sinks/callback.hpp"
#include "sluice/sources/generator.hpp"

#include <fmt/core.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <fstream>
#include <iostream>
#include <memory>
#include <string>
#include <thread>

using namespace sluice;

namespace {

struct blob {
  std::int64_t seq = 0;
  std::string payload;
};

template <class Inspector>
bool inspect(Inspector& f, blob& x) {
  return f.object("blob").fields(f.field("seq", x.seq), f.field("payload", x.payload));
}

/// A field of /proc/self/status in KiB ("VmHWM"), 0 when absent.
std::uint64_t status_kib(const std::string& field) {
  std::ifstream in{"/proc/self/status"};
  std::string line;
  while (std::getline(in, line))
    if (line.rfind(field + ":", 0) == 0)
      return std::stoull(line.substr(field.size() + 1));
  return 0;
}

} // namespace

int main(int argc, char** argv) {
  CLI::App app{"one node of the cluster backpressure test"};
  samples::common_flags common;
  samples::add_common_flags(app, common);
  std::uint64_t records = 20'000;
  std::size_t payload = 4096;
  int remote_credits = 16;
  std::uint64_t pause_every = 16;
  int pause_us = 1000;
  app.add_option("--records", records, "records the generator makes")->check(CLI::Range(1, 100'000'000));
  app.add_option("--payload", payload, "bytes of each record's payload")->check(CLI::Range(0, 1 << 20));
  app.add_option("--remote-credits", remote_credits, "batches in flight per channel between nodes")
    ->check(CLI::Range(1, 1024));
  app.add_option("--pause-every", pause_every, "node 1's sink pauses after this many records")
    ->check(CLI::Range(1, 1'000'000));
  app.add_option("--sink-pause", pause_us, "microseconds of each pause of node 1's sink")
    ->check(CLI::Range(0, 1'000'000));
  CLI11_PARSE(app, argc, argv);

  job_options opts{.name = "cluster-backpressure"};
  auto duration = samples::apply_common_flags(common, opts);
  if (!duration) {
    std::cerr << "cluster_backpressure_node: " << duration.error().to_string() << "\n";
    return 2;
  }
  opts.runtime.remote_credits = remote_credits;
  const bool slow = common.node.value_or(0) == 1;
  job j{opts};
  j.from(sources::generator({.count = records}, [payload](std::uint64_t i) {
     return blob{static_cast<std::int64_t>(i), std::string(payload, static_cast<char>('a' + i % 26))};
   }))
    .name("blobs")
    .parallelism(1)
    .rebalance()
    .sink_to(sinks::for_each<blob>([slow, pause_every, pause_us,
                                    seen = std::make_shared<std::atomic<std::uint64_t>>(0)](const blob&) {
      // A throttled sink: it makes node 1 slow; nothing waits on the pause.
      if (slow && ++*seen % pause_every == 0)
        std::this_thread::sleep_for(std::chrono::microseconds{pause_us});
    }))
    .name("out")
    .parallelism(2);
  auto done = samples::explain_or_run(j, common, *duration, {.program = "cluster_backpressure_node"});
  if (!done)
    return done.exit_code();
  std::uint64_t records_in = 0, max_in_flight = 0, max_input_queue = 0, backpressure_events = 0;
  for (auto& t : done->tasks) {
    if (t.chain == "out") // what this node's sink instance took
      records_in += t.records_in;
    max_in_flight = std::max(max_in_flight, t.max_in_flight);
    max_input_queue = std::max(max_input_queue, t.max_input_queue);
    backpressure_events += t.backpressure_events;
  }
  std::cout << fmt::format("vmhwm_kib={} sink_records={} max_in_flight={} max_input_queue={} "
                           "backpressure_events={}\n",
                           status_kib("VmHWM"), records_in, max_in_flight, max_input_queue,
                           backpressure_events)
            << std::flush;
  return 0;
}
