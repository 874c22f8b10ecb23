// Multi-node runs against one process (issue 24), on this machine over loopback.
//
//   cluster_bench w2 --records 10000000 --runs 5 [--nodes 2] [--parallelism 2] [--threads 1]
//                    [--remote-credits 16] [--batch-size 1024] [--remote-batch-size 4096]
//                    [--nodes-only]
//   cluster_bench w3 --rate 100000 --seconds 5 [--nodes 2] [--threads 1]
//
// W2 (generator -> key_by(key) -> running count and sum -> counting sink) runs, run after
// run interleaved, (a) in one process and (b) as `--nodes` node processes: this process is
// node 0 and starts the others as children (`cluster_bench node ...`). Records hash to key
// groups, so about (nodes-1)/nodes of them cross to another node, encoded with the binary
// record codec. Both give the same count and sum (checked); the figure is the median rate
// and the ratio (b)/(a).
//
// W3 (generator at a fixed rate -> key_by(key) -> keyed reduce -> sink): the latency from a
// record's creation to its sink, in one process and on the nodes (about half the records
// cross to another node at the keyed hop). The nodes share this machine's steady clock, so
// the sink on either node measures against the generator's stamp. p50/p99/p99.9 over every
// record of the run.
#include "sluice/api/job.hpp"
#include "sluice/bench/cluster_nodes.hpp"
#include "sluice/bench/workload.hpp"
#include "sluice/sinks/sink.hpp"
#include "sluice/tests/common/loopback.hpp" // loopback_cluster

#include <CLI/CLI.hpp>
#include <fmt/core.h>

#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <fstream>
#include <mutex>
#include <string>
#include <vector>

using namespace sluice;
using namespace sluice::bench;
using steady = std::chrono::steady_clock;

namespace {

struct key_total {
  std::uint64_t key = 0, count = 0, sum = 0;
};

struct running_total {
  key_total create() const { return {}; }
  void add(key_total& acc, const record& r) const {
    acc.key = r.key;
    ++acc.count;
    acc.sum += r.value;
  }
  key_total result(const key_total& acc) const { return acc; }
};

struct totals {
  std::atomic<std::uint64_t> count{0}, sum{0};
};

/// Counts the updates and sums their counts, published at flush.
class counting_sink final : public sink<key_total> {
public:
  explicit counting_sink(totals* t) : t_(t) {}
  result<void> write(std::vector<key_total>& records) override {
    count_ += records.size();
    for (auto& r : records)
      sum_ += r.count;
    return {};
  }
  result<void> flush() override {
    t_->count += std::exchange(count_, 0);
    t_->sum += std::exchange(sum_, 0);
    return {};
  }

private:
  totals* t_;
  std::uint64_t count_ = 0, sum_ = 0;
};

struct count_sink {
  using record_type = key_total;
  totals* t;
  std::unique_ptr<sink<key_total>> create(const sink_context&) const {
    return std::make_unique<counting_sink>(t);
  }
  std::string describe() const { return "count-sum"; }
};

/// Latencies seen by the sinks of this process, in ns.
struct latencies {
  std::mutex mtx;
  std::vector<std::int64_t> ns;
};

class latency_sink final : public sink<record> {
public:
  explicit latency_sink(latencies* l) : l_(l) {}
  result<void> write(std::vector<record>& records) override {
    const auto now = now_ns();
    for (auto& r : records)
      mine_.push_back(now - r.ts);
    return {};
  }
  result<void> flush() override {
    std::lock_guard guard{l_->mtx};
    l_->ns.insert(l_->ns.end(), mine_.begin(), mine_.end());
    mine_.clear();
    return {};
  }

private:
  latencies* l_;
  std::vector<std::int64_t> mine_;
};

struct latency_sink_of {
  using record_type = record;
  latencies* l;
  std::unique_ptr<sink<record>> create(const sink_context&) const {
    return std::make_unique<latency_sink>(l);
  }
  std::string describe() const { return "latency"; }
};

struct options {
  std::string workload = "w2";
  double rate = 100'000;
  double seconds = 5;
  std::uint64_t records = 10'000'000;
  int runs = 5;
  int nodes = 2;
  int parallelism = 2;
  int threads = 2;
  int remote_credits = runtime_options{}.remote_credits; ///< per channel between nodes
  std::size_t batch_size = runtime_options{}.batch_size; ///< records per batch
  std::size_t remote_batch_size = runtime_options{}.remote_batch_size; ///< between nodes
  bool nodes_only = false; ///< W2: only the cluster runs (to profile them)
};

/// W2 on this process, as node `node` of `cluster` (empty: alone). Returns count and sum
/// of this process's sink instances.
std::pair<std::uint64_t, std::uint64_t> run_w2(const options& o, const std::vector<std::string>& cluster,
                                               int node) {
  job_options jo;
  jo.parallelism = o.parallelism;
  jo.runtime.threads = o.threads;
  jo.runtime.remote_credits = o.remote_credits;
  jo.runtime.batch_size = o.batch_size;
  jo.runtime.remote_batch_size = o.remote_batch_size;
  jo.runtime.cluster.nodes = cluster;
  jo.runtime.cluster.node = node;
  totals t;
  job j{jo};
  j.from(sources::generator({.count = o.records}, [](std::uint64_t i) { return make_record(i); }))
    .name("generator")
    .key_by([](const record& r) { return r.key; })
    .aggregate(running_total{})
    .name("running-total")
    .sink_to(count_sink{&t});
  auto r = j.run();
  if (!r) {
    fmt::print(stderr, "node {}: {}\n", node, r.error().to_string());
    std::exit(1);
  }
  return {t.count.load(), t.sum.load()};
}

/// W3 on this process, as node `node` of `cluster` (empty: alone): the latencies its sinks
/// saw, in ns.
std::vector<std::int64_t> run_w3(const options& o, const std::vector<std::string>& cluster,
                                 int node) {
  job_options jo;
  jo.parallelism = o.parallelism;
  jo.runtime.threads = o.threads;
  jo.runtime.remote_credits = o.remote_credits;
  jo.runtime.batch_size = o.batch_size;
  jo.runtime.remote_batch_size = o.remote_batch_size;
  jo.runtime.cluster.nodes = cluster;
  jo.runtime.cluster.node = node;
  latencies l;
  job j{jo};
  const auto count = static_cast<std::uint64_t>(o.rate * o.seconds);
  j.from(sources::generator({.count = count, .rate = o.rate}, [](std::uint64_t i) {
     auto r = make_record(i);
     r.ts = now_ns();
     return r;
   }))
    .name("generator")
    .key_by([](const record& r) { return r.key; })
    .reduce([](const record&, const record& next) { return next; })
    .name("latest")
    .sink_to(latency_sink_of{&l});
  if (auto r = j.run(); !r) {
    fmt::print(stderr, "node {}: {}\n", node, r.error().to_string());
    std::exit(1);
  }
  return std::move(l.ns);
}


/// What this process produces as a node (or alone): W2's count and sum, W3's latencies.
std::vector<std::int64_t> run_node(const options& o, const std::vector<std::string>& cluster,
                                   int node) {
  if (o.workload == "w3")
    return run_w3(o, cluster, node);
  auto [count, sum] = run_w2(o, cluster, node);
  return {static_cast<std::int64_t>(count), static_cast<std::int64_t>(sum)};
}

/// CPU seconds (user + system) this process and its reaped children have used so far.
double cpu_seconds() {
  auto secs = [](const rusage& u) {
    return static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
           static_cast<double>(u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
  };
  rusage self{}, children{};
  ::getrusage(RUSAGE_SELF, &self);
  ::getrusage(RUSAGE_CHILDREN, &children);
  return secs(self) + secs(children);
}

/// One cluster run: children for nodes 1.., this process node 0, each running `o.workload`.
/// Returns the seconds and what every node produced (node 0's first): W2's count and sum,
/// W3's latencies.
std::pair<double, std::vector<std::int64_t>> cluster_run(const options& o) {
  const auto cluster = test::loopback_cluster(o.nodes);
  const auto joined = cluster_flag(cluster);
  const auto t0 = steady::now();
  std::vector<pid_t> children;
  std::vector<std::string> outs;
  for (int n = 1; n < o.nodes; ++n) {
    outs.push_back("/tmp/cluster_bench." + std::to_string(::getpid()) + "." + std::to_string(n));
    auto args = node_placement{n, joined}.command();
    args.insert(args.end(), {"--workload",          o.workload,
                             "--rate",              std::to_string(o.rate),
                             "--seconds",           std::to_string(o.seconds),
                             "--records",           std::to_string(o.records),
                             "--parallelism",       std::to_string(o.parallelism),
                             "--threads",           std::to_string(o.threads),
                             "--remote-credits",    std::to_string(o.remote_credits),
                             "--batch-size",        std::to_string(o.batch_size),
                             "--remote-batch-size", std::to_string(o.remote_batch_size),
                             "--out",               outs.back()});
    auto pid = start_process(args);
    if (!pid) {
      fmt::print(stderr, "cannot start node {}\n", n);
      std::exit(1);
    }
    children.push_back(*pid);
  }
  auto produced = run_node(o, cluster, 0);
  for (std::size_t i = 0; i < children.size(); ++i) {
    int status = 0;
    ::waitpid(children[i], &status, 0);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
      fmt::print(stderr, "node {} failed\n", i + 1);
      std::exit(1);
    }
    std::ifstream in{outs[i]};
    for (std::int64_t v; in >> v;)
      produced.push_back(v);
    std::remove(outs[i].c_str());
  }
  return {std::chrono::duration<double>(steady::now() - t0).count(), std::move(produced)};
}

} // namespace

int main(int argc, char** argv) {
  CLI::App app{"multi-node runs against one process (W2, W3)"};
  options o;
  node_placement placement;
  std::string out;
  auto common = [&](CLI::App* sub) {
    sub->add_option("--records", o.records)->check(CLI::Range(std::uint64_t{1}, std::uint64_t{1} << 40));
    sub->add_option("--parallelism", o.parallelism)->check(CLI::Range(1, 64));
    sub->add_option("--threads", o.threads)->check(CLI::Range(1, 64));
    sub->add_option("--remote-credits", o.remote_credits, "batches in flight per channel between nodes")
      ->check(CLI::Range(1, 1024));
    sub->add_option("--batch-size", o.batch_size, "records per batch within a process")
      ->check(CLI::Range(std::size_t{1}, std::size_t{1} << 20));
    sub->add_option("--remote-batch-size", o.remote_batch_size,
                    "records per batch (frame) between nodes")
      ->check(CLI::Range(std::size_t{1}, std::size_t{1} << 20));
  };
  auto* w2 = app.add_subcommand("w2", "keyed running aggregation: nodes vs one process");
  common(w2);
  w2->add_option("--runs", o.runs)->check(CLI::Range(1, 100));
  w2->add_option("--nodes", o.nodes)->check(CLI::Range(2, 8));
  w2->add_flag("--nodes-only", o.nodes_only, "skip the one-process runs (for a profile of the nodes)");
  auto* w3 = app.add_subcommand("w3", "latency at a fixed rate, keyed hop across nodes");
  common(w3);
  w3->add_option("--rate", o.rate, "records per second")->check(CLI::Range(1.0, 1e8));
  w3->add_option("--seconds", o.seconds)->check(CLI::Range(0.1, 3600.0));
  w3->add_option("--nodes", o.nodes)->check(CLI::Range(2, 8));
  auto* node = app.add_subcommand("node", "internal: one node of a cluster run");
  common(node);
  node->add_option("--workload", o.workload)->check(CLI::IsMember({"w2", "w3"}));
  node->add_option("--rate", o.rate);
  node->add_option("--seconds", o.seconds);
  placement.add_flags(*node);
  node->add_option("--out", out)->required();
  app.require_subcommand(1);
  CLI11_PARSE(app, argc, argv);

  if (*node) {
    std::ofstream file{out};
    for (auto v : run_node(o, placement.nodes(), placement.index))
      file << v << '\n';
    return 0;
  }

  if (*w3) {
    o.workload = "w3";
    auto alone = run_w3(o, {}, 0);
    auto [secs, together] = cluster_run(o);
    auto pct = [](std::vector<std::int64_t>& v, double q) {
      std::sort(v.begin(), v.end());
      return v.empty() ? 0.0
                       : static_cast<double>(v[std::min(v.size() - 1,
                                                        static_cast<std::size_t>(q * v.size()))]) /
                           1e3;
    };
    const auto expected = static_cast<std::size_t>(o.rate * o.seconds);
    fmt::print("w3 on {} nodes: rate={} seconds={} parallelism={} threads={} per process\n",
               o.nodes, o.rate, o.seconds, o.parallelism, o.threads);
    fmt::print("  one process: p50 {:8.1f} us  p99 {:8.1f} us  p99.9 {:8.1f} us  ({} records)\n",
               pct(alone, 0.5), pct(alone, 0.99), pct(alone, 0.999), alone.size());
    fmt::print("  {} nodes:     p50 {:8.1f} us  p99 {:8.1f} us  p99.9 {:8.1f} us  ({} records)\n",
               o.nodes, pct(together, 0.5), pct(together, 0.99), pct(together, 0.999),
               together.size());
    if (alone.size() != expected || together.size() != expected) {
      fmt::print(stderr, "w3: {} records expected\n", expected);
      return 1;
    }
    return 0;
  }

  std::vector<double> alone_rates, cluster_rates, alone_cpu, cluster_cpu; // cpu: ns per record
  std::uint64_t alone_count = 0, alone_sum = 0, cluster_count = 0, cluster_sum = 0;
  for (int i = 0; i < o.runs; ++i) {
    if (!o.nodes_only) {
      const auto t0 = steady::now();
      const auto c0 = cpu_seconds();
      std::tie(alone_count, alone_sum) = run_w2(o, {}, 0);
      alone_rates.push_back(static_cast<double>(o.records) /
                            std::chrono::duration<double>(steady::now() - t0).count());
      alone_cpu.push_back((cpu_seconds() - c0) * 1e9 / static_cast<double>(o.records));
    }
    const auto c0 = cpu_seconds();
    auto [secs, produced] = cluster_run(o);
    cluster_rates.push_back(static_cast<double>(o.records) / secs);
    cluster_cpu.push_back((cpu_seconds() - c0) * 1e9 / static_cast<double>(o.records));
    cluster_count = cluster_sum = 0;
    for (std::size_t k = 0; k + 1 < produced.size(); k += 2) {
      cluster_count += static_cast<std::uint64_t>(produced[k]);
      cluster_sum += static_cast<std::uint64_t>(produced[k + 1]);
    }
  }
  const auto c = median(cluster_rates);
  if (o.nodes_only) {
    fmt::print("w2 on {} nodes: {:.2f} M records/s (count={} sum={})\n", o.nodes, c / 1e6,
               cluster_count, cluster_sum);
    return 0;
  }
  const auto a = median(alone_rates);
  fmt::print("w2 on {} nodes: records={} runs={} parallelism={} threads={} per process\n",
             o.nodes, o.records, o.runs, o.parallelism, o.threads);
  fmt::print("  one process: {:8.2f} M records/s  (count={} sum={})\n", a / 1e6, alone_count,
             alone_sum);
  fmt::print("  {} nodes:     {:8.2f} M records/s  (count={} sum={})\n", o.nodes, c / 1e6,
             cluster_count, cluster_sum);
  fmt::print("  ratio nodes/one process: {:.2f}\n", c / a);
  // Less sensitive to other load on the machine than the rates: what each record cost.
  fmt::print("  CPU per record (user+sys, every process): one process {:.0f} ns, {} nodes {:.0f} ns, "
             "ratio {:.2f}\n",
             median(alone_cpu), o.nodes, median(cluster_cpu), median(alone_cpu) / median(cluster_cpu));
  if (alone_count != cluster_count || alone_sum != cluster_sum) {
    fmt::print(stderr, "w2: the cluster's result differs from one process's\n");
    return 1;
  }
  return 0;
}
