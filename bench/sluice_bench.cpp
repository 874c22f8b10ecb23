// The benchmark driver: runs a workload on the engine and as a hand-written loop in the
// same process, several times, and reports medians and their ratio.
//
//   sluice_bench w1 --records 10000000 --runs 5
//   sluice_bench w2 --records 10000000 --runs 5
//   sluice_bench w3 --rate 100000 --seconds 5
//   sluice_bench w4 --window 1s --parallelism 1 --runs 5   (also --window 10ms)
//   sluice_bench session --gap 2ms --parallelism 2 --runs 5   (--align 10ms: watermark alignment)
//   sluice_bench join --records 2000000 --bound-ms 1 --runs 5
#include "sluice/api/job.hpp"
#include "sluice/bench/checkpoint_bench.hpp"
#include "sluice/bench/workload.hpp"
#include "sluice/bench/window_bench.hpp"
#include "sluice/operators/harness.hpp"
#include "sluice/operators/keyed_process.hpp"
#include "sluice/sinks/sink.hpp"

#include <CLI/CLI.hpp>
#include <fmt/core.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <malloc.h>
#include <mutex>
#include <thread>
#include <unordered_map>
#include <vector>

using namespace sluice;
using namespace sluice::bench;
using steady = std::chrono::steady_clock;

namespace {

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.size() % 2 ? v[v.size() / 2] : (v[v.size() / 2 - 1] + v[v.size() / 2]) / 2;
}

/// Totals gathered by the counting sinks of all instances.
struct totals {
  std::atomic<std::uint64_t> count{0};
  std::atomic<std::uint64_t> sum{0};
};

/// Counts and sums `value` locally; publishes once at flush.
template <class T, class Value>
class counting_sink final : public sink<T> {
public:
  counting_sink(totals* t, Value v) : t_(t), value_(v) {}
  result<void> write(std::vector<T>& records) override {
    count_ += records.size();
    for (auto& r : records)
      sum_ += value_(r);
    return {};
  }
  result<void> flush() override {
    t_->count += count_;
    t_->sum += sum_;
    count_ = sum_ = 0;
    return {};
  }

private:
  totals* t_;
  Value value_;
  std::uint64_t count_ = 0;
  std::uint64_t sum_ = 0;
};

template <class T, class Value>
struct count_sum {
  using record_type = T;
  totals* t;
  Value value;
  std::unique_ptr<sink<T>> create(const sink_context&) const {
    return std::make_unique<counting_sink<T, Value>>(t, value);
  }
  std::string describe() const { return "count-sum"; }
};

struct run_result {
  double seconds;
  std::uint64_t count;
  std::uint64_t sum;
};

struct options {
  std::uint64_t records = 10'000'000;
  int runs = 5;
  std::size_t batch_size = 1024;
  int parallelism = 2;
  int threads = 2;
  std::string chaining = "on";
  double rate = 100'000;
  double seconds = 5;
  std::string scheduler = "stealing";
  bool metrics = true; ///< per-operator counters and busy/backpressure time
};

job_options engine_options(const options& o, int parallelism) {
  job_options jo;
  jo.parallelism = parallelism;
  jo.runtime.batch_size = o.batch_size;
  jo.runtime.threads = o.threads;
  jo.runtime.scheduler =
    o.scheduler == "sharing" ? scheduler_policy::sharing : scheduler_policy::stealing;
  jo.runtime.collect_metrics = o.metrics;
  return jo;
}

// -- W1: generator -> map -> filter -> count/sum sink ------------------------------------

run_result w1_loop(const options& o) {
  auto t0 = steady::now();
  std::uint64_t count = 0, sum = 0;
  for (std::uint64_t i = 0; i < o.records; ++i) {
    auto r = scale(make_record(i));
    if (is_even(r)) {
      ++count;
      sum += r.value;
    }
  }
  return {std::chrono::duration<double>(steady::now() - t0).count(), count, sum};
}

run_result w1_engine(const options& o) {
  totals t;
  job j{engine_options(o, 1)};
  auto s = j.from(sources::generator({.count = o.records}, [](std::uint64_t i) {
               return make_record(i);
             })).name("generator");
  auto mapped = s.map([](const record& r) { return scale(r); }).name("map");
  if (o.chaining == "off")
    mapped.disable_chaining();
  auto kept = mapped.filter([](const record& r) { return is_even(r); }).name("filter");
  if (o.chaining == "off")
    kept.disable_chaining();
  auto snk = kept.sink_to(count_sum<record, std::uint64_t (*)(const record&)>{
    &t, [](const record& r) { return r.value; }});
  if (o.chaining == "off")
    snk.disable_chaining();
  auto t0 = steady::now();
  auto r = j.run();
  auto secs = std::chrono::duration<double>(steady::now() - t0).count();
  if (!r) {
    fmt::print(stderr, "w1 failed: {}\n", r.error().to_string());
    std::exit(1);
  }
  return {secs, t.count.load(), t.sum.load()};
}

// -- W2: generator -> key_by(key) -> running count and sum per key -> sink ---------------

struct key_total {
  std::uint64_t key;
  std::uint64_t count;
  std::uint64_t sum;
};

struct running_total {
  key_total create() const { return {0, 0, 0}; }
  void add(key_total& acc, const record& r) const {
    acc.key = r.key;
    ++acc.count;
    acc.sum += r.value;
  }
  key_total result(const key_total& acc) const { return acc; }
};

run_result w2_loop(const options& o) {
  auto t0 = steady::now();
  std::unordered_map<std::uint64_t, key_total> state;
  std::uint64_t count = 0, sum = 0;
  for (std::uint64_t i = 0; i < o.records; ++i) {
    auto r = make_record(i);
    auto& acc = state[r.key];
    acc.key = r.key;
    ++acc.count;
    acc.sum += r.value;
    ++count;      // the "sink" sees every update
    sum += acc.count;
  }
  return {std::chrono::duration<double>(steady::now() - t0).count(), count, sum};
}

run_result w2_engine(const options& o) {
  totals t;
  job j{engine_options(o, o.parallelism)};
  j.from(sources::generator({.count = o.records}, [](std::uint64_t i) { return make_record(i); }))
    .name("generator")
    .key_by([](const record& r) { return r.key; })
    .aggregate(running_total{})
    .name("running-total")
    .sink_to(count_sum<key_total, std::uint64_t (*)(const key_total&)>{
      &t, [](const key_total& k) { return k.count; }});
  auto t0 = steady::now();
  auto r = j.run();
  auto secs = std::chrono::duration<double>(steady::now() - t0).count();
  if (!r) {
    fmt::print(stderr, "w2 failed: {}\n", r.error().to_string());
    std::exit(1);
  }
  return {secs, t.count.load(), t.sum.load()};
}

template <class Loop, class Engine>
int throughput(const char* name, const options& o, Loop loop, Engine engine) {
  std::vector<double> loop_rates, engine_rates;
  run_result last_loop{}, last_engine{};
  for (int i = 0; i < o.runs; ++i) {
    last_loop = loop(o);
    loop_rates.push_back(static_cast<double>(o.records) / last_loop.seconds);
    last_engine = engine(o);
    engine_rates.push_back(static_cast<double>(o.records) / last_engine.seconds);
  }
  const auto l = median(loop_rates), e = median(engine_rates);
  fmt::print("{}: records={} runs={} batch_size={} parallelism={} chaining={}\n", name, o.records,
             o.runs, o.batch_size, o.parallelism, o.chaining);
  fmt::print("  loop:   {:8.1f} M records/s  (count={} sum={})\n", l / 1e6, last_loop.count,
             last_loop.sum);
  fmt::print("  engine: {:8.1f} M records/s  (count={} sum={})\n", e / 1e6, last_engine.count,
             last_engine.sum);
  fmt::print("  ratio engine/loop: {:.2f}\n", e / l);
  if (last_loop.count != last_engine.count || last_loop.sum != last_engine.sum) {
    fmt::print(stderr, "{}: engine result differs from the loop\n", name);
    return 1;
  }
  return 0;
}

/// The metrics' cost on the hot path: W1 with metrics off (the baseline) and on, runs
/// interleaved so that drift in the machine's speed hits both alike.
int metrics_cost(options o) {
  std::vector<double> off, on;
  run_result last_off{}, last_on{};
  for (int i = 0; i < o.runs; ++i) {
    o.metrics = false;
    last_off = w1_engine(o);
    off.push_back(static_cast<double>(o.records) / last_off.seconds);
    o.metrics = true;
    last_on = w1_engine(o);
    on.push_back(static_cast<double>(o.records) / last_on.seconds);
  }
  const auto b = median(off), m = median(on);
  fmt::print("metrics-cost (w1): records={} runs={} batch_size={}\n", o.records, o.runs,
             o.batch_size);
  fmt::print("  metrics off: {:8.1f} M records/s\n", b / 1e6);
  fmt::print("  metrics on:  {:8.1f} M records/s\n", m / 1e6);
  fmt::print("  ratio on/off: {:.3f} (loss {:.1f}%)\n", m / b, (1 - m / b) * 100);
  if (last_off.count != last_on.count || last_off.sum != last_on.sum) {
    fmt::print(stderr, "metrics-cost: results differ with metrics on and off\n");
    return 1;
  }
  return 0;
}

// -- W3: latency at a fixed rate -----------------------------------------------------------

struct stamped {
  std::uint64_t key;
  std::uint64_t value;
  std::int64_t emitted_ns; ///< steady clock at emission
};

std::int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(steady::now().time_since_epoch())
    .count();
}

struct latency_log {
  std::mutex mtx;
  std::vector<std::int64_t> samples;
};

class latency_sink final : public sink<stamped> {
public:
  explicit latency_sink(latency_log* log) : log_(log) {}
  result<void> write(std::vector<stamped>& records) override {
    auto now = now_ns();
    for (auto& r : records)
      local_.push_back(now - r.emitted_ns);
    return {};
  }
  result<void> flush() override {
    std::lock_guard g{log_->mtx};
    log_->samples.insert(log_->samples.end(), local_.begin(), local_.end());
    local_.clear();
    return {};
  }

private:
  latency_log* log_;
  std::vector<std::int64_t> local_;
};

struct latency_sink_desc {
  using record_type = stamped;
  latency_log* log;
  std::unique_ptr<sink<stamped>> create(const sink_context&) const {
    return std::make_unique<latency_sink>(log);
  }
  std::string describe() const { return "latency"; }
};

struct percentiles {
  double p50, p99, p999, max;
};

percentiles summarize(std::vector<std::int64_t> v) {
  std::sort(v.begin(), v.end());
  auto at = [&](double q) {
    return static_cast<double>(v[std::min(v.size() - 1, static_cast<std::size_t>(q * v.size()))]) / 1e3;
  };
  return {at(0.50), at(0.99), at(0.999), static_cast<double>(v.back()) / 1e3};
}

percentiles w3_engine(const options& o) {
  latency_log log;
  auto jo = engine_options(o, o.parallelism);
  jo.runtime.linger = std::chrono::microseconds{0};
  job j{jo};
  const auto count = static_cast<std::uint64_t>(o.rate * o.seconds);
  j.from(sources::generator({.count = count, .rate = o.rate},
                            [](std::uint64_t i) {
                              auto r = make_record(i);
                              return stamped{r.key, r.value, now_ns()};
                            }))
    .parallelism(1)
    .name("generator")
    .key_by([](const stamped& r) { return r.key; })
    .process([](const stamped& r, keyed_context<std::uint64_t>&, collector<stamped>& out) {
      out.collect(stamped{r.key, r.value * 908 / 1000, r.emitted_ns});
    })
    .name("process")
    .sink_to(latency_sink_desc{&log});
  auto r = j.run();
  if (!r) {
    fmt::print(stderr, "w3 failed: {}\n", r.error().to_string());
    std::exit(1);
  }
  return summarize(std::move(log.samples));
}

/// Baseline: the same rate handed from one thread to another through a mutex and a
/// condition variable: the cost of waking a thread on this machine.
percentiles w3_baseline(const options& o) {
  std::mutex mtx;
  std::condition_variable cv;
  std::deque<stamped> q;
  bool done = false;
  std::vector<std::int64_t> samples;
  std::thread consumer{[&] {
    std::unique_lock lock{mtx};
    for (;;) {
      cv.wait(lock, [&] { return done || !q.empty(); });
      while (!q.empty()) {
        samples.push_back(now_ns() - q.front().emitted_ns);
        q.pop_front();
      }
      if (done)
        return;
    }
  }};
  const auto count = static_cast<std::uint64_t>(o.rate * o.seconds);
  const auto start = steady::now();
  for (std::uint64_t i = 0; i < count; ++i) {
    auto due = start + std::chrono::nanoseconds(static_cast<std::int64_t>(i * 1e9 / o.rate));
    std::this_thread::sleep_until(due);
    {
      std::lock_guard g{mtx};
      q.push_back(stamped{i, i, now_ns()});
    }
    cv.notify_one();
  }
  {
    std::lock_guard g{mtx};
    done = true;
  }
  cv.notify_one();
  consumer.join();
  return summarize(std::move(samples));
}

int latency(const options& o) {
  std::vector<double> e50, e99, e999, b50, b99, b999;
  for (int i = 0; i < o.runs; ++i) {
    auto b = w3_baseline(o);
    b50.push_back(b.p50);
    b99.push_back(b.p99);
    b999.push_back(b.p999);
    auto e = w3_engine(o);
    e50.push_back(e.p50);
    e99.push_back(e.p99);
    e999.push_back(e.p999);
  }
  fmt::print("w3: rate={}/s seconds={} runs={} parallelism={} scheduler={} linger=0\n", o.rate,
             o.seconds, o.runs, o.parallelism, o.scheduler);
  fmt::print("  engine   latency us: p50 {:7.1f}  p99 {:7.1f}  p99.9 {:7.1f}\n", median(e50),
             median(e99), median(e999));
  fmt::print("  baseline latency us: p50 {:7.1f}  p99 {:7.1f}  p99.9 {:7.1f}  (mutex+condvar handoff)\n",
             median(b50), median(b99), median(b999));
  fmt::print("  ratio engine/baseline p99: {:.2f}\n", median(e99) / median(b99));
  return 0;
}

// -- state-memory: heap bytes per key of a keyed value_state<int64> count --------------------

/// Bytes the heap has handed out (small chunks and mmapped ones).
std::size_t heap_in_use() {
  const auto mi = mallinfo2();
  return mi.uordblks + mi.hblkhd;
}

/// Counts records per key in a `value_state<std::int64_t>`, optionally with a TTL.
struct state_counter {
  state_descriptor<value_state<std::int64_t>> count;
  void on_element(const std::uint64_t&, keyed_process_context<std::uint64_t>& ctx,
                  collector<std::uint64_t>&) {
    auto c = ctx.state(count);
    c.update(c.value_or(0) + 1);
  }
};

/// Feeds `keys` distinct keys (twice each) through one keyed process operator in the operator
/// harness and reports the growth of the heap per key.
double state_bytes_per_key(std::uint64_t keys, std::optional<state_ttl> ttl) {
  auto key_fn = [](const std::uint64_t& k) { return k; };
  using op = keyed_process_function_operator<std::uint64_t, std::uint64_t, std::uint64_t,
                                             decltype(key_fn), state_counter>;
  auto owned = std::make_unique<op>(key_fn, state_counter{{"count", ttl}});
  auto* counter = owned.get();
  operator_harness h{std::move(owned)};
  if (!h.open())
    return -1;
  const auto before = heap_in_use();
  constexpr std::uint64_t chunk = 4096;
  for (int pass = 0; pass < 2; ++pass)
    for (std::uint64_t first = 0; first < keys; first += chunk) {
      std::vector<std::uint64_t> batch;
      for (auto k = first; k < std::min(keys, first + chunk); ++k)
        batch.push_back(splitmix64(k));
      if (!h.push(std::move(batch)))
        return -1;
    }
  const auto after = heap_in_use();
  if (counter->state_size("count") != keys)
    return -1;
  return static_cast<double>(after - before) / static_cast<double>(keys);
}

int state_memory(std::uint64_t keys) {
  fmt::print("state-memory: {} keys, value_state<int64_t> count per key\n", keys);
  const auto plain = state_bytes_per_key(keys, std::nullopt);
  const auto with_ttl = state_bytes_per_key(keys, state_ttl::processing(std::chrono::hours{1}));
  if (plain < 0 || with_ttl < 0) {
    fmt::print("state-memory: the operator failed or lost keys\n");
    return 1;
  }
  fmt::print("  without TTL: {:.1f} bytes/key\n", plain);
  fmt::print("  with TTL:    {:.1f} bytes/key\n", with_ttl);
  return 0;
}

// -- join: interval join of two generated streams -------------------------------------------
//
// Left record i = make_record(i); right record i = make_record(i + 2^40) with its ts set to
// i: both streams advance 1 µs per record over the same 1000 keys, so a key sees one record
// per side about every 1 ms. Pairs join when l.ts - bound <= r.ts <= l.ts + bound. Both sides
// are in event-time order, so no record is late and the pair count is exact.

struct join_options {
  double bound_ms = 1.0;
};

record join_right_record(std::uint64_t i) noexcept {
  auto r = make_record(i + (std::uint64_t{1} << 40));
  r.ts = static_cast<std::int64_t>(i);
  return r;
}

struct joined_pair {
  std::uint64_t left_value;
  std::uint64_t right_value;
};

/// The checksum of one pair; summed over all pairs it must agree between engine and loop.
std::uint64_t pair_checksum(std::uint64_t left_value, std::uint64_t right_value) noexcept {
  return left_value * 1'048'583 + right_value;
}

run_result join_loop(const options& o, const join_options& jo) {
  const auto bound = static_cast<std::int64_t>(jo.bound_ms * 1000);
  auto t0 = steady::now();
  struct row {
    std::int64_t ts;
    std::uint64_t value;
  };
  struct sides {
    std::deque<row> left, right;
  };
  std::unordered_map<std::uint64_t, sides> state;
  std::uint64_t count = 0, sum = 0;
  for (std::uint64_t i = 0; i < o.records; ++i) {
    // In ts order: left i, then right i. Everything before ts i is final ("watermark" i-1).
    const auto l = make_record(i);
    auto& ls = state[l.key];
    while (!ls.right.empty() && ls.right.front().ts + bound <= l.ts - 1)
      ls.right.pop_front(); // expired: r.ts - lower <= wm
    for (auto& r : ls.right)
      if (r.ts >= l.ts - bound && r.ts <= l.ts + bound) {
        ++count;
        sum += pair_checksum(l.value, r.value);
      }
    ls.left.push_back({l.ts, l.value});
    const auto r = join_right_record(i);
    auto& rs = state[r.key];
    while (!rs.left.empty() && rs.left.front().ts + bound <= r.ts - 1)
      rs.left.pop_front(); // expired: l.ts + upper <= wm
    for (auto& lr : rs.left)
      if (r.ts >= lr.ts - bound && r.ts <= lr.ts + bound) {
        ++count;
        sum += pair_checksum(lr.value, r.value);
      }
    rs.right.push_back({r.ts, r.value});
  }
  return {std::chrono::duration<double>(steady::now() - t0).count(), count, sum};
}

run_result join_engine(const options& o, const join_options& jo) {
  totals t;
  job j{engine_options(o, o.parallelism)};
  auto ts = [](const record& r) { return event_time{duration{r.ts}}; };
  auto left = j.from(sources::generator({.count = o.records}, [](std::uint64_t i) {
                       return make_record(i);
                     }),
                     watermarks::monotonous<record>(ts))
                .name("left")
                .parallelism(1);
  auto right = j.from(sources::generator({.count = o.records}, join_right_record),
                      watermarks::monotonous<record>(ts))
                 .name("right")
                 .parallelism(1);
  const auto bound = std::chrono::duration_cast<duration>(
    std::chrono::duration<double, std::milli>{jo.bound_ms});
  auto by_key = [](const record& r) { return r.key; };
  left.key_by(by_key)
    .interval_join(right.key_by(by_key))
    .between(-bound, bound)
    .apply([](const record& l, const record& r) { return joined_pair{l.value, r.value}; })
    .name("interval-join")
    .sink_to(count_sum<joined_pair, std::uint64_t (*)(const joined_pair&)>{
      &t, [](const joined_pair& p) { return pair_checksum(p.left_value, p.right_value); }});
  auto t0 = steady::now();
  auto r = j.run();
  auto secs = std::chrono::duration<double>(steady::now() - t0).count();
  if (!r) {
    fmt::print(stderr, "join failed: {}\n", r.error().to_string());
    std::exit(1);
  }
  return {secs, t.count.load(), t.sum.load()};
}

int join_bench(const options& o, const join_options& jo) {
  std::vector<double> loop_rates, engine_rates;
  run_result last_loop{}, last_engine{};
  const auto inputs = static_cast<double>(2 * o.records);
  for (int i = 0; i < o.runs; ++i) {
    last_loop = join_loop(o, jo);
    loop_rates.push_back(inputs / last_loop.seconds);
    last_engine = join_engine(o, jo);
    engine_rates.push_back(inputs / last_engine.seconds);
  }
  const auto l = median(loop_rates), e = median(engine_rates);
  fmt::print("join: records={} per side, keys=1000, between(-{}ms, +{}ms), runs={} batch_size={} "
             "parallelism={}\n",
             o.records, jo.bound_ms, jo.bound_ms, o.runs, o.batch_size, o.parallelism);
  fmt::print("  loop:   {:8.2f} M input records/s  (pairs={} checksum={})\n", l / 1e6,
             last_loop.count, last_loop.sum);
  fmt::print("  engine: {:8.2f} M input records/s  (pairs={} checksum={})\n", e / 1e6,
             last_engine.count, last_engine.sum);
  fmt::print("  ratio engine/loop: {:.2f}\n", e / l);
  if (last_loop.count != last_engine.count || last_loop.sum != last_engine.sum) {
    fmt::print(stderr, "join: engine result differs from the loop\n");
    return 1;
  }
  return 0;
}

} // namespace

int main(int argc, char** argv) {
  const auto main_began = std::chrono::steady_clock::now(); // checkpoint-recovery's child reports it
  CLI::App app{"Sluice benchmarks (see BENCHMARKS.md)"};
  app.require_subcommand(1);
  options o;
  auto common = [&](CLI::App* sub) {
    sub->add_option("--runs", o.runs, "repetitions; medians are reported");
    sub->add_option("--batch-size", o.batch_size, "records per batch");
    sub->add_option("--parallelism", o.parallelism, "parallelism of keyed operators");
    sub->add_option("--threads", o.threads, "actor scheduler threads");
    sub->add_option("--scheduler", o.scheduler, "stealing or sharing");
  };
  auto* w1 = app.add_subcommand("w1", "stateless: generator -> map -> filter -> sink");
  w1->add_option("--records", o.records);
  w1->add_option("--chaining", o.chaining, "on: fused chain; off: one task per operator");
  w1->add_option("--metrics", o.metrics, "per-operator metrics on (true) or off (false)");
  common(w1);
  auto* mc = app.add_subcommand("metrics-cost", "W1 with metrics off and on, interleaved");
  mc->add_option("--records", o.records);
  common(mc);
  auto* w2 = app.add_subcommand("w2", "keyed running aggregation");
  w2->add_option("--records", o.records);
  common(w2);
  auto* w3 = app.add_subcommand("w3", "end-to-end latency at a fixed rate");
  w3->add_option("--rate", o.rate, "records per second");
  w3->add_option("--seconds", o.seconds, "duration of each run");
  common(w3);
  std::uint64_t state_keys = 1'000'000;
  auto* sm = app.add_subcommand("state-memory", "heap bytes per key of keyed value state");
  sm->add_option("--keys", state_keys, "distinct keys");
  join_options join_opts;
  auto* jn = app.add_subcommand("join", "interval join of two generated streams vs a loop");
  jn->add_option("--records", o.records, "records per side");
  jn->add_option("--bound-ms", join_opts.bound_ms, "join bounds: between(-bound, +bound)");
  common(jn);
  windows_bench::options wo;
  auto window_common = [&](CLI::App* sub) {
    sub->add_option("--records", wo.records);
    sub->add_option("--runs", wo.runs, "repetitions; medians are reported");
    sub->add_option("--batch-size", wo.batch_size, "records per batch");
    sub->add_option("--parallelism", wo.parallelism, "parallelism of source and windows");
    sub->add_option("--threads", wo.threads, "actor scheduler threads");
    sub->add_option("--align", wo.align,
                    "watermark alignment of the generator's instances: max drift (10ms)");
    sub->add_option("--align-interval", wo.align_interval,
                    "with --align: how often instances report their watermark");
  };
  auto* w4 = app.add_subcommand("w4", "keyed tumbling event-time window count vs a loop");
  w4->add_option("--window", wo.window, "window size: 1s, 10ms, 500us");
  window_common(w4);
  auto* sw = app.add_subcommand("session", "keyed session window count vs a loop");
  sw->add_option("--gap", wo.gap, "session gap: 1s, 10ms, 500us");
  window_common(sw);
  std::string ck_workload = "count";
  std::uint64_t ck_records = 20'000'000;
  int ck_runs = 5;
  std::string ck_interval = "1s";
  double bp_rate = 1'000'000, bp_seconds = 5;
  auto* cko = app.add_subcommand("checkpoint-overhead", "throughput with checkpoints vs none");
  cko->add_option("--workload", ck_workload, "w4 or count (1M keys)");
  cko->add_option("--records", ck_records);
  cko->add_option("--runs", ck_runs);
  cko->add_option("--interval", ck_interval);
  bool ck_no_compression = false;
  cko->add_flag("--no-compression", ck_no_compression, "count workload: pieces stored without Snappy");
  bool ck_compare_compression = false;
  cko->add_flag("--compare-compression", ck_compare_compression,
                "count workload: none, Snappy and uncompressed, alternating in each run");
  bool ck_processes = false;
  cko->add_flag("--processes", ck_processes,
                "w4: each side in a process of its own, alternating (--runs pairs)");
  std::string ck_report;
  cko->add_option("--report", ck_report)->group(""); // the child's figures, for --processes
  std::string ck_only;
  cko->add_option("--only", ck_only, "run one side alone, for a profiler")
    ->check(CLI::IsMember({"plain", "checkpoints"}));
  auto* cks = app.add_subcommand("checkpoint-state", "pause, size, duration, recovery with 1M keys");
  cks->add_option("--keys", state_keys);
  std::string ck_operator = "aggregate";
  cks->add_option("--operator", ck_operator, "aggregate or process (a keyed process function)")
    ->check(CLI::IsMember({"aggregate", "process"}));
  cks->add_option("--interval", ck_interval);
  bool ck_compare_inline = false;
  int ck_rounds = 3;
  cks->add_flag("--compare-inline", ck_compare_inline,
                "measure again with every piece inside LevelDB, alternating, and print the ratios");
  cks->add_option("--rounds", ck_rounds, "rounds of --compare-inline")->check(CLI::PositiveNumber);
  auto* ckb = app.add_subcommand("checkpoint-backpressure", "checkpoints behind a slow sink");
  ckb->add_option("--interval", ck_interval);
  ckb->add_option("--rate", bp_rate, "source records per second");
  ckb->add_option("--seconds", bp_seconds);
  auto* ckr = app.add_subcommand("checkpoint-recovery",
                                 "process start to first row, restoring 1M keys vs an empty start");
  ckr->add_option("--keys", state_keys);
  ckr->add_option("--runs", ck_runs, "pairs of child processes (restoring, empty), alternating");
  bool ckr_child = false;
  std::string ckr_dir, ckr_report;
  std::uint64_t ckr_first = 0, ckr_records = 1000;
  ckr->add_flag("--child", ckr_child, "internal: be the measured child process")->group("");
  ckr->add_option("--dir", ckr_dir)->group("");
  ckr->add_option("--first", ckr_first)->group("");
  ckr->add_option("--records", ckr_records)->group("");
  ckr->add_option("--report", ckr_report)->group("");
  CLI11_PARSE(app, argc, argv);
  if (*ckr && ckr_child)
    return checkpoints::recovery_child(ckr_dir, state_keys, ckr_first, ckr_records, ckr_report,
                                       main_began);
  if (*ckr)
    return checkpoints::recovery(state_keys, ck_runs);
  if (*cko || *cks || *ckb) {
    auto every = codec::parse_duration(ck_interval);
    if (!every || every->count() <= 0) {
      fmt::print(stderr, "--interval: a positive duration, e.g. 1s\n");
      return 2;
    }
    const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(*every);
    if (*cko && !ck_only.empty())
      return checkpoints::one_side(ck_workload, ck_only == "checkpoints", ck_runs, ck_records, ms,
                                   ck_report);
    if (*cko && ck_processes) {
      if (ck_workload != "w4") {
        fmt::print(stderr, "--processes: only for --workload w4\n");
        return 2;
      }
      return checkpoints::overhead_in_processes(ck_runs, ck_records, ms);
    }
    if (*cko && ck_compare_compression)
      return checkpoints::compression_overhead(ck_runs, ck_records, ms);
    if (*cko)
      return checkpoints::overhead(ck_workload, ck_runs, ck_records, ms, !ck_no_compression);
    if (*cks)
      return checkpoints::state(state_keys, ms, ck_operator == "process", ck_compare_inline, ck_rounds);
    return checkpoints::backpressure(ms, bp_rate, bp_seconds);
  }
  if (*w4)
    return windows_bench::w4(wo);
  if (*sw)
    return windows_bench::session(wo);
  if (*jn)
    return join_bench(o, join_opts);
  if (*sm)
    return state_memory(state_keys);
  if (*w1)
    return throughput("w1", o, w1_loop, w1_engine);
  if (*mc)
    return metrics_cost(o);
  if (*w2)
    return throughput("w2", o, w2_loop, w2_engine);
  return latency(o);
}
