// The benchmark driver: runs a workload on the engine and as a hand-written loop in the
// same process, several times, and reports medians and their ratio.
//
//   sluice_bench w1 --records 10000000 --runs 5
//   sluice_bench w2 --records 10000000 --runs 5
//   sluice_bench w3 --rate 100000 --seconds 5
#include "api/job.hpp"
#include "bench/workload.hpp"
#include "sinks/sink.hpp"

#include <CLI/CLI.hpp>
#include <fmt/core.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
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
};

job_options engine_options(const options& o, int parallelism) {
  job_options jo;
  jo.parallelism = parallelism;
  jo.runtime.batch_size = o.batch_size;
  jo.runtime.threads = o.threads;
  jo.runtime.scheduler =
    o.scheduler == "sharing" ? scheduler_policy::sharing : scheduler_policy::stealing;
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

} // namespace

int main(int argc, char** argv) {
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
  common(w1);
  auto* w2 = app.add_subcommand("w2", "keyed running aggregation");
  w2->add_option("--records", o.records);
  common(w2);
  auto* w3 = app.add_subcommand("w3", "end-to-end latency at a fixed rate");
  w3->add_option("--rate", o.rate, "records per second");
  w3->add_option("--seconds", o.seconds, "duration of each run");
  common(w3);
  CLI11_PARSE(app, argc, argv);
  if (*w1)
    return throughput("w1", o, w1_loop, w1_engine);
  if (*w2)
    return throughput("w2", o, w2_loop, w2_engine);
  return latency(o);
}
