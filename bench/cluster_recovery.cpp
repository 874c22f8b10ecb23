// Recovery time of a two-node run after a SIGKILL of node 1 (issue 24), median of --runs.
//
//   cluster_recovery [--runs 5] [--rate 20000] [--checkpoint-interval-ms 500]
//                    [--heartbeat-interval-ms 100] [--heartbeat-timeout-ms 1000]
//                    [--restart-delay-ms 1000] [--warmup-ms 3000] [--threads 1]
//
// This process is the supervisor, as scripts/cluster.sh is (and with its default restart
// delay of 1 s): it starts two node processes of a continuous job (`cluster_recovery node
// ...`: generator at --rate -> key_by -> running count -> sink, parallelism 2, checkpoints
// into one shared directory), lets it run --warmup-ms (checkpoints complete), kills node 1
// with SIGKILL and starts it again --restart-delay-ms later. The recovery time is from the
// kill to the first record a sink instance of the restored job receives, on either node
// (every node restarts its tasks from the last completed checkpoint). Both stamps are this
// machine's steady clock (CLOCK_MONOTONIC, one clock for every process). Node 0's log
// (info) is kept for each run so the phases can be read from it: the node's loss or its
// new hello, the restart strategy's delay, the join, the restore.
#include "sluice/api/job.hpp"
#include "sluice/bench/cluster_nodes.hpp"
#include "sluice/bench/workload.hpp"
#include "sluice/core/log.hpp"
#include "sluice/sinks/sink.hpp"
#include "sluice/tests/common/loopback.hpp" // loopback_cluster

#include <CLI/CLI.hpp>
#include <fmt/core.h>

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <optional>
#include <string>
#include <thread>
#include <vector>

using namespace sluice;
using namespace sluice::bench;
namespace fs = std::filesystem;
using steady = std::chrono::steady_clock;

namespace {

/// Prints "first <steady ns> <attempt> <instance>" to stdout when its first batch arrives:
/// a sink instance exists once per attempt, so this is the attempt's first record here.
class first_record_sink final : public sink<record> {
public:
  explicit first_record_sink(const sink_context& c) : attempt_(c.attempt), instance_(c.instance) {}
  result<void> write(std::vector<record>& records) override {
    if (!seen_ && !records.empty()) {
      seen_ = true;
      std::printf("first %lld %d %d\n", static_cast<long long>(now_ns()), attempt_, instance_);
      std::fflush(stdout);
    }
    return {};
  }

private:
  int attempt_, instance_;
  bool seen_ = false;
};

struct first_record_sink_of {
  using record_type = record;
  std::unique_ptr<sink<record>> create(const sink_context& c) const {
    return std::make_unique<first_record_sink>(c);
  }
  std::string describe() const { return "first-record"; }
};

struct options {
  int runs = 5;
  double rate = 20'000;
  int checkpoint_interval_ms = 500;
  int heartbeat_interval_ms = 100;
  int heartbeat_timeout_ms = 1000;
  int restart_delay_ms = 1000;
  int warmup_ms = 3000;
  int threads = 1;
};

int run_node(const options& o, const std::vector<std::string>& cluster, int node, const std::string& dir) {
  if (auto ok = logging::to_stderr("info"); !ok)
    return 2;
  job_options jo;
  jo.parallelism = 2;
  jo.runtime.threads = o.threads;
  jo.runtime.cluster.nodes = cluster;
  jo.runtime.cluster.node = node;
  jo.runtime.cluster.heartbeat_interval = std::chrono::milliseconds{o.heartbeat_interval_ms};
  jo.runtime.cluster.heartbeat_timeout = std::chrono::milliseconds{o.heartbeat_timeout_ms};
  jo.checkpoints.dir = dir;
  jo.checkpoints.interval = std::chrono::milliseconds{o.checkpoint_interval_ms};
  jo.checkpoints.restart.max_restarts = 1000;
  job j{jo};
  j.from(sources::generator({.rate = o.rate}, [](std::uint64_t i) { return make_record(i); }))
    .name("generator")
    .key_by([](const record& r) { return r.key; })
    .reduce([](const record& a, const record& b) { return record{b.key, a.value + b.value, b.ts}; })
    .name("sums")
    .sink_to(first_record_sink_of{});
  auto r = j.run();
  if (!r) {
    fmt::print(stderr, "node {}: {}\n", node, r.error().to_string());
    return 1;
  }
  return 0;
}

pid_t spawn(const std::vector<std::string>& args, const fs::path& out, const fs::path& err) {
  auto pid = start_process(args, out.string(), err.string());
  if (!pid) {
    fmt::print(stderr, "cannot start {}\n", args[0]);
    std::exit(1);
  }
  return *pid;
}

/// The earliest "first" stamp after `after` in `file`, if any.
std::optional<std::int64_t> first_after(const fs::path& file, std::int64_t after) {
  std::ifstream in{file};
  std::string word;
  std::optional<std::int64_t> best;
  long long ns = 0;
  int attempt = 0, instance = 0;
  while (in >> word >> ns >> attempt >> instance)
    if (word == "first" && ns > after && (!best || ns < *best))
      best = ns;
  return best;
}

/// Milliseconds since local midnight, as the log's "HH:MM:SS.mmm" stamps count them.
double day_ms(std::chrono::system_clock::time_point t) {
  const auto secs = std::chrono::system_clock::to_time_t(t);
  std::tm tm{};
  localtime_r(&secs, &tm);
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count() % 1000;
  return ((tm.tm_hour * 60 + tm.tm_min) * 60 + tm.tm_sec) * 1000.0 + static_cast<double>(ms);
}

/// The log stamp of the first line after `after_ms` (day_ms) that contains `text`, as ms
/// after `after_ms`; -1 if none.
double log_after(const fs::path& log, double after_ms, const std::string& text) {
  std::ifstream in{log};
  std::string line;
  while (std::getline(in, line)) {
    // "2026-12-07T02:25:20.137 info ..."
    if (line.size() < 23 || line[10] != 'T' || line.find(text) == std::string::npos)
      continue;
    const double at = ((std::stoi(line.substr(11, 2)) * 60 + std::stoi(line.substr(14, 2))) * 60 +
                       std::stoi(line.substr(17, 2))) * 1000.0 + std::stoi(line.substr(20, 3));
    if (at >= after_ms)
      return at - after_ms;
  }
  return -1;
}

/// One run: returns the recovery time in ms (negative: the job did not recover in 60 s) and
/// prints when each phase ended, from the nodes' logs (ms resolution).
double one_run(const options& o, const fs::path& dir) {
  fs::create_directories(dir);
  const std::string cluster = cluster_flag(test::loopback_cluster(2));
  auto args = [&](int node) {
    auto a = node_placement{node, cluster}.command();
    a.insert(a.end(), {"--dir", (dir / "cp").string(), "--rate", std::to_string(o.rate),
                       "--checkpoint-interval-ms", std::to_string(o.checkpoint_interval_ms),
                       "--heartbeat-interval-ms", std::to_string(o.heartbeat_interval_ms),
                       "--heartbeat-timeout-ms", std::to_string(o.heartbeat_timeout_ms),
                       "--threads", std::to_string(o.threads)});
    return a;
  };
  auto out = [&](int node) { return dir / ("node-" + std::to_string(node) + ".out"); };
  auto err = [&](int node) { return dir / ("node-" + std::to_string(node) + ".log"); };
  pid_t pids[2] = {spawn(args(0), out(0), err(0)), spawn(args(1), out(1), err(1))};
  std::this_thread::sleep_for(std::chrono::milliseconds{o.warmup_ms});
  const auto killed = now_ns();
  const auto killed_wall = day_ms(std::chrono::system_clock::now());
  ::kill(pids[1], SIGKILL);
  ::waitpid(pids[1], nullptr, 0);
  std::this_thread::sleep_for(std::chrono::milliseconds{o.restart_delay_ms});
  pids[1] = spawn(args(1), out(1), err(1));
  std::optional<std::int64_t> first;
  const auto deadline = steady::now() + std::chrono::seconds{60};
  while (steady::now() < deadline) {
    auto a = first_after(out(0), killed), b = first_after(out(1), killed);
    if (a || b) {
      first = std::min(a.value_or(INT64_MAX), b.value_or(INT64_MAX));
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds{5});
  }
  if (first) // the nodes' logs of the restart, complete
    std::this_thread::sleep_for(std::chrono::milliseconds{300});
  for (auto pid : pids) {
    ::kill(pid, SIGKILL);
    ::waitpid(pid, nullptr, 0);
  }
  if (!first)
    return -1.0;
  const double total = static_cast<double>(*first - killed) / 1e6;
  // Node 0 fails the attempt ("restart N of M") on the heartbeat timeout or on node 1's new
  // hello, whichever comes first; node 1 is up again after the supervisor's delay and its
  // start; the new attempt starts after the restart strategy's delay; then the tasks restore
  // their state and the generator resumes.
  fmt::print("  failed at +{:.0f} ms, node 1 up at +{:.0f} ms, attempt started on node 1 at +{:.0f} ms, "
             "first record at +{:.0f} ms\n",
             log_after(err(0), killed_wall - 1, "; restart "),
             log_after(err(1), killed_wall - 1, "is up"),
             log_after(err(1), killed_wall - 1, "starts attempt"), total);
  return total;
}

} // namespace

int main(int argc, char** argv) {
  CLI::App app{"recovery time of a two-node run after a SIGKILL of node 1"};
  options o;
  node_placement placement;
  std::string dir;
  std::string keep;
  auto common = [&](CLI::App* a) {
    a->add_option("--rate", o.rate, "records per second")->check(CLI::Range(1.0, 1e8));
    a->add_option("--checkpoint-interval-ms", o.checkpoint_interval_ms)->check(CLI::Range(10, 600'000));
    a->add_option("--heartbeat-interval-ms", o.heartbeat_interval_ms)->check(CLI::Range(1, 600'000));
    a->add_option("--heartbeat-timeout-ms", o.heartbeat_timeout_ms)->check(CLI::Range(2, 600'000));
    a->add_option("--threads", o.threads)->check(CLI::Range(1, 64));
  };
  common(&app);
  app.add_option("--runs", o.runs)->check(CLI::Range(1, 100));
  app.add_option("--restart-delay-ms", o.restart_delay_ms, "the supervisor's delay (cluster.sh: 1000)")
    ->check(CLI::Range(0, 600'000));
  app.add_option("--warmup-ms", o.warmup_ms, "run time before the kill")->check(CLI::Range(100, 600'000));
  app.add_option("--keep", keep, "keep each run's logs in this directory");
  auto* node = app.add_subcommand("node", "internal: one node");
  common(node);
  placement.add_flags(*node);
  node->add_option("--dir", dir)->required();
  CLI11_PARSE(app, argc, argv);

  if (*node)
    return run_node(o, placement.nodes(), placement.index, dir);

  const fs::path base = keep.empty() ? fs::temp_directory_path() /
                                         ("cluster_recovery." + std::to_string(::getpid()))
                                     : fs::path{keep};
  std::vector<double> ms;
  fmt::print("cluster_recovery: 2 nodes, rate {} rec/s, checkpoints every {} ms, heartbeat {}/{} ms, "
             "restart delay {} ms\n",
             o.rate, o.checkpoint_interval_ms, o.heartbeat_interval_ms, o.heartbeat_timeout_ms,
             o.restart_delay_ms);
  for (int i = 0; i < o.runs; ++i) {
    const auto t = one_run(o, base / ("run-" + std::to_string(i)));
    fmt::print("  run {}: {}\n", i, t < 0 ? std::string{"did not recover within 60 s"} : fmt::format("{:.0f} ms", t));
    std::fflush(stdout);
    if (t < 0)
      return 1;
    ms.push_back(t);
  }
  fmt::print("  median {:.0f} ms (min {:.0f}, max {:.0f})\n", median(ms),
             *std::min_element(ms.begin(), ms.end()), *std::max_element(ms.begin(), ms.end()));
  if (keep.empty())
    fs::remove_all(base);
  return 0;
}
