#pragma once
/// W4 and the session benchmark: event-time windows on the engine against hand-written loops.
/// Included by sluice_bench.cpp only.
///
///   sluice_bench w4 --window 1s --parallelism 1 --runs 5
///   sluice_bench w4 --window 10ms --parallelism 2 --runs 5
///   sluice_bench session --gap 2ms --parallelism 2 --runs 5
///   sluice_bench session --gap 2ms --parallelism 2 --runs 5 --align 10ms
///
/// Workload: bench/workload.hpp (10M records, 1000 keys, ts = i µs), event time from a
/// monotonous watermark strategy (watermark = max timestamp - 1µs, after each polled batch).
#include "sluice/api/job.hpp"
#include "sluice/bench/workload.hpp"
#include "sluice/core/codec/time_format.hpp"
#include "sluice/sinks/sink.hpp"
#include "sluice/sources/watermarks.hpp"

#include <fmt/core.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <queue>
#include <string>
#include <unordered_map>
#include <vector>

namespace sluice::bench::windows_bench {

struct options {
  std::uint64_t records = 10'000'000;
  int runs = 5;
  std::size_t batch_size = 1024;
  int parallelism = 2;
  int threads = 2;
  std::string window = "1s"; ///< w4: tumbling window size
  std::string gap = "2ms";   ///< session: inactivity gap
  /// Checkpoint into this directory (emptied first) every `checkpoint_interval`.
  std::string checkpoint_dir;
  std::chrono::milliseconds checkpoint_interval{1000};
  /// Watermark alignment of the generator's instances (`with_watermark_alignment`): the
  /// max drift ("10ms"); empty: not aligned.
  std::string align;
  /// Its update interval. The workload's event time runs about ten times faster than real
  /// time, so Flink's default of 1 s would let the fast instance wait up to 1 s for every
  /// `align` of event time; 1 ms keeps the reports cheap (a message per instance per ms).
  std::string align_interval = "1ms";
};

/// "1s", "10ms", "250us" -> positive microseconds (codec::parse_duration); nothing otherwise.
inline std::optional<std::int64_t> parse_micros(const std::string& s) {
  auto d = codec::parse_duration(s);
  if (!d || d->count() <= 0)
    return std::nullopt;
  return d->count();
}

struct outcome {
  double seconds = 0;
  std::uint64_t results = 0; ///< windows emitted
  std::uint64_t sum = 0;     ///< sum of their counts (= records when nothing is late)
  std::vector<checkpoint_stats> checkpoints; ///< what the run's checkpoints measured
};

/// A lambda, as a user writes it: the engine's batch loops inline it, where a function
/// pointer stays an indirect call per record.
inline constexpr auto ts_of = [](const record& r) { return event_time{duration{r.ts}}; };

/// Counts window results and sums their values; publishes once at flush.
struct totals {
  std::atomic<std::uint64_t> results{0};
  std::atomic<std::uint64_t> sum{0};
};
class result_sink final : public sink<window_result<std::uint64_t, std::uint64_t>> {
public:
  explicit result_sink(totals* t) : t_(t) {}
  result<void> write(std::vector<window_result<std::uint64_t, std::uint64_t>>& rs) override {
    results_ += rs.size();
    for (auto& r : rs)
      sum_ += r.value;
    return {};
  }
  result<void> flush() override {
    t_->results += results_;
    t_->sum += sum_;
    results_ = sum_ = 0;
    return {};
  }

private:
  totals* t_;
  std::uint64_t results_ = 0, sum_ = 0;
};
struct result_sink_desc {
  using record_type = window_result<std::uint64_t, std::uint64_t>;
  totals* t;
  std::unique_ptr<sink<record_type>> create(const sink_context&) const {
    return std::make_unique<result_sink>(t);
  }
  std::string describe() const { return "window-totals"; }
};

inline job_options engine_options(const options& o) {
  job_options jo;
  jo.parallelism = o.parallelism;
  jo.runtime.batch_size = o.batch_size;
  jo.runtime.threads = o.threads;
  if (!o.checkpoint_dir.empty()) {
    std::filesystem::remove_all(o.checkpoint_dir);
    jo.checkpoints.dir = o.checkpoint_dir;
    jo.checkpoints.interval = o.checkpoint_interval;
  }
  return jo;
}

/// The generator's strategy: monotonous, aligned with `--align`.
inline watermark_strategy<record> strategy_of(const options& o) {
  auto s = watermarks::monotonous<record>(ts_of);
  if (o.align.empty())
    return s;
  const auto drift = parse_micros(o.align);
  const auto interval = parse_micros(o.align_interval);
  if (!drift || !interval) {
    fmt::print(stderr, "--align and --align-interval must look like 1s, 10ms or 500us\n");
    std::exit(2);
  }
  return s.with_watermark_alignment("generator", duration{*drift},
                                    std::chrono::microseconds{*interval});
}

template <class Assigner>
outcome engine_run(const options& o, Assigner assigner) {
  totals t;
  job j{engine_options(o)};
  j.from(sources::generator({.count = o.records}, [](std::uint64_t i) { return make_record(i); }),
         strategy_of(o))
    .name("generator")
    .key_by([](const record& r) { return r.key; })
    .window(assigner)
    .count()
    .name("window")
    .sink_to(result_sink_desc{&t});
  const auto t0 = std::chrono::steady_clock::now();
  auto r = j.run();
  const auto secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  if (!r) {
    fmt::print(stderr, "window benchmark failed: {}\n", r.error().to_string());
    std::exit(1);
  }
  return {secs, t.results.load(), t.sum.load(), std::move(r->checkpoints)};
}

/// The hand-written tumbling window: a hash map (key, window start) -> count, and a
/// min-heap of (window end, key) fired as the watermark (max ts - 1µs) passes end - 1µs.
inline outcome tumbling_loop(const options& o, std::int64_t size) {
  struct slot {
    std::uint64_t key;
    std::int64_t start;
    bool operator==(const slot&) const = default;
  };
  struct slot_hash {
    std::size_t operator()(const slot& s) const noexcept {
      return mix64(s.key ^ (static_cast<std::uint64_t>(s.start) * 0x9E3779B97F4A7C15ULL));
    }
  };
  using timer = std::pair<std::int64_t, std::uint64_t>; // (end, key)
  const auto t0 = std::chrono::steady_clock::now();
  std::unordered_map<slot, std::uint64_t, slot_hash> counts;
  std::priority_queue<timer, std::vector<timer>, std::greater<>> timers;
  outcome out;
  auto fire = [&](const timer& t) {
    auto it = counts.find(slot{t.second, t.first - size});
    ++out.results;
    out.sum += it->second;
    counts.erase(it);
  };
  for (std::uint64_t i = 0; i < o.records; ++i) {
    const auto r = make_record(i);
    auto rem = r.ts % size;
    if (rem < 0)
      rem += size;
    const std::int64_t start = r.ts - rem;
    auto [it, fresh] = counts.try_emplace(slot{r.key, start}, 0);
    ++it->second;
    if (fresh)
      timers.emplace(start + size, r.key);
    const std::int64_t wm = r.ts - 1;
    while (!timers.empty() && timers.top().first - 1 <= wm) {
      fire(timers.top());
      timers.pop();
    }
  }
  while (!timers.empty()) {
    fire(timers.top());
    timers.pop();
  }
  out.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return out;
}

/// The hand-written session window for in-order input: per key the open session; a record
/// more than `gap` after the session's end closes it (and is emitted) and opens the next.
inline outcome session_loop(const options& o, std::int64_t gap) {
  struct open_session {
    std::int64_t end;
    std::uint64_t count;
  };
  const auto t0 = std::chrono::steady_clock::now();
  std::unordered_map<std::uint64_t, open_session> open;
  outcome out;
  for (std::uint64_t i = 0; i < o.records; ++i) {
    const auto r = make_record(i);
    auto [it, fresh] = open.try_emplace(r.key, open_session{r.ts + gap, 1});
    if (fresh)
      continue;
    auto& s = it->second;
    if (r.ts > s.end) { // a record at exactly `end` touches the session and extends it
      ++out.results;
      out.sum += s.count;
      s = open_session{r.ts + gap, 1};
    } else {
      s.end = std::max(s.end, r.ts + gap);
      ++s.count;
    }
  }
  for (auto& [k, s] : open) {
    ++out.results;
    out.sum += s.count;
  }
  out.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return out;
}

inline double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.size() % 2 ? v[v.size() / 2] : (v[v.size() / 2 - 1] + v[v.size() / 2]) / 2;
}

template <class Loop, class Engine>
int compare(const std::string& title, const options& o, Loop loop, Engine engine) {
  std::vector<double> loop_rates, engine_rates;
  outcome l{}, e{};
  for (int i = 0; i < o.runs; ++i) {
    l = loop();
    loop_rates.push_back(static_cast<double>(o.records) / l.seconds);
    e = engine();
    engine_rates.push_back(static_cast<double>(o.records) / e.seconds);
  }
  const auto lr = median(loop_rates), er = median(engine_rates);
  fmt::print("{}: records={} runs={} batch_size={} parallelism={} align={}\n", title, o.records,
             o.runs, o.batch_size, o.parallelism,
             o.align.empty() ? std::string{"off"} : o.align + " every " + o.align_interval);
  fmt::print("  loop:   {:8.1f} M records/s  (results={} sum={})\n", lr / 1e6, l.results, l.sum);
  fmt::print("  engine: {:8.1f} M records/s  (results={} sum={})\n", er / 1e6, e.results, e.sum);
  fmt::print("  ratio engine/loop: {:.2f}\n", er / lr);
  if (l.results != e.results || l.sum != e.sum) {
    fmt::print(stderr, "{}: engine result differs from the loop\n", title);
    return 1;
  }
  return 0;
}

/// W4: keyed tumbling event-time window count.
inline int w4(const options& o) {
  const auto size = parse_micros(o.window);
  if (!size) {
    fmt::print(stderr, "w4: --window must look like 1s, 10ms or 500us\n");
    return 2;
  }
  return compare(
    "w4 tumbling count window=" + o.window, o, [&] { return tumbling_loop(o, *size); },
    [&] { return engine_run(o, sluice::windows::tumbling{.size = duration{*size}}); });
}

/// Session windows: keyed session count with a static gap.
inline int session(const options& o) {
  const auto gap = parse_micros(o.gap);
  if (!gap) {
    fmt::print(stderr, "session: --gap must look like 1s, 10ms or 500us\n");
    return 2;
  }
  return compare(
    "session count gap=" + o.gap, o, [&] { return session_loop(o, *gap); },
    [&] { return engine_run(o, sluice::windows::session{.gap = duration{*gap}}); });
}

} // namespace sluice::bench::windows_bench
