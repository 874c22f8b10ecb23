#pragma once
/// Checkpoint benchmarks (issue 5, BENCHMARKS.md):
///
///   sluice_bench checkpoint-overhead --workload w4|count --runs 5
///     the same job without and with checkpoints every second; medians and their ratio
///     (`--workload w4 --processes`: each side in a process of its own)
///   sluice_bench checkpoint-state --keys 1000000 [--operator aggregate|process]
///     1M keys of running-count state (an `aggregate`, or a keyed process function's
///     value_state): synchronous pause per task per checkpoint (p50, p99), checkpoint size
///     and duration, full and incremental, and the recovery time of a restarted job
///   sluice_bench checkpoint-backpressure --interval 1s
///     checkpoint duration while the sink takes a tenth of the source's rate
///   sluice_bench checkpoint-recovery --keys 1000000 --runs 5
///     from a process's start to its first row processed, restoring 1M keys, against the
///     same process starting with an empty checkpoint directory
#include "sluice/api/job.hpp"
#include "sluice/operators/keyed_process.hpp"
#include "sluice/bench/window_bench.hpp"
#include "sluice/bench/workload.hpp"
#include "sluice/sinks/sink.hpp"

#include <fmt/core.h>
#include <spawn.h>
#include <sys/resource.h>
#include <sys/wait.h>

#include <array>
#include <algorithm>
#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <limits>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace sluice::bench::checkpoints {

using clock_type = std::chrono::steady_clock;

/// A running count per key: the state the checkpoints copy.
struct key_count {
  std::uint64_t key = 0;
  std::uint64_t count = 0;
  template <class Inspector>
  friend bool inspect(Inspector& f, key_count& x) {
    return f.object("key_count").fields(f.field("key", x.key), f.field("count", x.count));
  }
};

struct count_agg {
  key_count create() const { return {}; }
  void add(key_count& acc, const record& r) const {
    acc.key = r.key;
    ++acc.count;
  }
  key_count result(const key_count& acc) const { return acc; }
};

/// The same running count in a keyed process function's value_state (the fraud rules'
/// kind of state), emitting each new count.
struct process_count {
  state_descriptor<value_state<std::uint64_t>> count{"count"};
  void on_element(const record& r, keyed_process_context<std::uint64_t>& ctx,
                  collector<key_count>& out) {
    auto c = ctx.state(count);
    const auto n = c.value_or(0) + 1;
    c.update(n);
    out.collect(key_count{r.key, n});
  }
};

/// Counts what it receives; remembers when the first and the last record came; optionally
/// throttled.
struct probe {
  std::atomic<std::uint64_t> rows{0};
  std::atomic<std::int64_t> first_ns{0};
  std::atomic<std::int64_t> last_ns{0};
  double max_rate = 0; ///< records per second, 0: unthrottled
};

class probe_sink final : public sink<key_count> {
public:
  explicit probe_sink(probe* p) : p_(p), start_(clock_type::now()) {}
  result<void> write(std::vector<key_count>& rows) override {
    std::int64_t zero = 0;
    const auto now = clock_type::now().time_since_epoch().count();
    p_->first_ns.compare_exchange_strong(zero, now);
    for (auto last = p_->last_ns.load(); last < now && !p_->last_ns.compare_exchange_weak(last, now);) {
    }
    seen_ += rows.size();
    p_->rows += rows.size();
    if (p_->max_rate > 0) { // a slow sink: hold the batch until the rate allows it
      const auto due = start_ + std::chrono::duration_cast<clock_type::duration>(
                                  std::chrono::duration<double>(static_cast<double>(seen_) / p_->max_rate));
      std::this_thread::sleep_until(due);
    }
    return {};
  }

private:
  probe* p_;
  clock_type::time_point start_;
  std::uint64_t seen_ = 0;
};

struct probe_desc {
  using record_type = key_count;
  probe* p;
  std::unique_ptr<sink<key_count>> create(const sink_context&) const {
    return std::make_unique<probe_sink>(p);
  }
  std::string describe() const { return "probe"; }
};

struct count_options {
  std::uint64_t records = 20'000'000;
  std::uint64_t keys = 1'000'000;
  std::uint64_t first = 0;
  /// Non-zero: the records use only keys [0, key_span) (the incremental case).
  std::uint64_t key_span = 0;
  int parallelism = 2;
  int threads = 2;
  double rate = 0;      ///< source records per second, 0: as fast as possible
  double sink_rate = 0; ///< sink records per second, 0: unthrottled
  std::string checkpoint_dir; ///< empty: no checkpoints
  std::chrono::milliseconds interval{1000};
  bool keyed_process = false; ///< the count in a keyed process function, not an aggregate
  /// Pieces at least this large go to files beside the database (the job's default if unset).
  std::optional<std::size_t> file_threshold;
  bool compression = true; ///< Snappy on the pieces (the job's default)
};

struct count_outcome {
  double seconds = 0;
  double cpu_seconds = 0; ///< the process's CPU time (user and system) during the run
  double system_seconds = 0; ///< the kernel's part of it
  std::uint64_t rows = 0;
  double first_row_seconds = 0; ///< from start() to the first row at the sink
  clock_type::time_point started;   ///< just before run()
  clock_type::time_point first_row; ///< when the first row reached the sink (if any)
  /// From the first row at the sink to the last: the steady part of the run, without the
  /// start and the end (the end of a bounded job is a last checkpoint, which the run waits
  /// for).
  double flowing_seconds = 0;
  job_result result;
};

/// CPU time of the whole process so far: steadier than throughput on a shared machine,
/// since time the machine gives to others does not count.
inline double process_cpu_seconds(bool system_only = false) {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  auto secs = [](const timeval& t) { return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_usec) / 1e6; };
  return system_only ? secs(u.ru_stime) : secs(u.ru_utime) + secs(u.ru_stime);
}

/// Runs this benchmark binary again as a child process with `args` (its subcommand and
/// flags) and waits for it; returns when it was spawned. A child that fails is an error.
inline result<clock_type::time_point> run_self(std::vector<std::string> args) {
  const auto self = std::filesystem::read_symlink("/proc/self/exe").string();
  args.insert(args.begin(), self);
  std::vector<char*> argv;
  for (auto& a : args)
    argv.push_back(a.data());
  argv.push_back(nullptr);
  pid_t pid = 0;
  int status = 0;
  const auto spawned = clock_type::now();
  if (posix_spawn(&pid, self.c_str(), nullptr, nullptr, argv.data(), environ) != 0)
    return make_error(error_code::io_error, args[1] + ": cannot start " + self);
  if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
    return make_error(error_code::internal, args[1] + ": the child process failed");
  return spawned;
}

/// generator (keys spread over `keys`) -> key_by -> running count -> probe sink.
inline count_outcome run_count(const count_options& o) {
  probe p;
  p.max_rate = o.sink_rate / o.parallelism; // per instance: the sink as a whole takes sink_rate
  job_options jo;
  jo.name = "checkpoint-bench";
  jo.parallelism = o.parallelism;
  jo.runtime.threads = o.threads;
  if (!o.checkpoint_dir.empty()) {
    jo.checkpoints.dir = o.checkpoint_dir;
    jo.checkpoints.interval = o.interval;
    jo.checkpoints.retained = 2;
    if (o.file_threshold)
      jo.checkpoints.file_threshold = *o.file_threshold;
    jo.checkpoints.compression = o.compression;
  }
  job j{jo};
  const auto keys = o.key_span ? o.key_span : o.keys;
  sources::generator_options g{.count = o.records, .first = o.first};
  if (o.rate > 0)
    g.rate = o.rate;
  auto keyed = j.from(sources::generator(g, [keys](std::uint64_t i) {
                  auto r = make_record(i);
                  r.key = splitmix64(i) % keys;
                  return r;
                }))
                 .name("generator")
                 .parallelism(1)
                 .key_by([](const record& r) { return r.key; });
  if (o.keyed_process)
    keyed.process(process_count{}).name("count").sink_to(probe_desc{&p}).name("probe");
  else
    keyed.aggregate(count_agg{}).name("count").sink_to(probe_desc{&p}).name("probe");
  const auto t0 = clock_type::now();
  const auto cpu0 = process_cpu_seconds(), sys0 = process_cpu_seconds(true);
  auto run = j.run();
  const auto secs = std::chrono::duration<double>(clock_type::now() - t0).count();
  const auto cpu = process_cpu_seconds() - cpu0, sys = process_cpu_seconds(true) - sys0;
  if (!run) {
    fmt::print(stderr, "checkpoint benchmark failed: {}\n", run.error().to_string());
    std::exit(1);
  }
  count_outcome out{secs, cpu, sys, p.rows.load(), 0, t0, {}, 0, std::move(*run)};
  if (p.first_ns.load() > 0) {
    out.first_row = clock_type::time_point{clock_type::duration{p.first_ns.load()}};
    out.first_row_seconds =
      std::chrono::duration<double>(clock_type::time_point{clock_type::duration{p.first_ns.load()}} - t0).count();
    out.flowing_seconds =
      std::chrono::duration<double>(clock_type::duration{p.last_ns.load() - p.first_ns.load()}).count();
  }
  return out;
}

inline double median_of(std::vector<double> v) {
  if (v.empty())
    return 0;
  std::sort(v.begin(), v.end());
  return v.size() % 2 ? v[v.size() / 2] : (v[v.size() / 2 - 1] + v[v.size() / 2]) / 2;
}

inline double percentile(std::vector<double> v, double p) {
  if (v.empty())
    return 0;
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<std::size_t>(p * static_cast<double>(v.size())))];
}

inline std::string temp_dir(const char* what) {
  auto d = std::filesystem::temp_directory_path() / (std::string{"sluice-bench-"} + what);
  std::filesystem::remove_all(d);
  return d.string();
}

/// Throughput with checkpoints every `interval` against none, same job, same run.
inline int overhead(const std::string& workload, int runs, std::uint64_t records,
                    std::chrono::milliseconds interval, bool compression = true) {
  std::vector<double> plain, with, plain_flowing, with_flowing, plain_cpu, with_cpu;
  std::int64_t checkpoints = 0;
  for (int i = 0; i < runs; ++i) {
    if (workload == "w4") {
      windows_bench::options plain_o;
      plain_o.records = records;
      auto o = plain_o;
      o.checkpoint_dir = temp_dir("w4");
      o.checkpoint_interval = interval;
      const windows::tumbling w4{.size = std::chrono::seconds{1}};
      // ABBA, as for the count: the second run of a pair pays for what the first left.
      windows_bench::outcome a, b;
      double a_cpu = 0, b_cpu = 0;
      auto timed = [&](const windows_bench::options& opts, double& cpu) {
        const auto cpu0 = process_cpu_seconds();
        auto out = windows_bench::engine_run(opts, w4);
        cpu = process_cpu_seconds() - cpu0;
        return out;
      };
      if (i % 2 == 0) {
        a = timed(plain_o, a_cpu);
        b = timed(o, b_cpu);
      } else {
        b = timed(o, b_cpu);
        a = timed(plain_o, a_cpu);
      }
      plain_cpu.push_back(a_cpu * 1e9 / static_cast<double>(records));
      with_cpu.push_back(b_cpu * 1e9 / static_cast<double>(records));
      if (a.results != b.results || a.sum != b.sum) {
        fmt::print(stderr, "w4 results differ with checkpoints\n");
        return 1;
      }
      plain.push_back(static_cast<double>(records) / a.seconds);
      with.push_back(static_cast<double>(records) / b.seconds);
      std::vector<double> durations, alignments, pauses;
      for (auto& c : b.checkpoints) {
        durations.push_back(static_cast<double>(c.duration.count()) / 1000);
        alignments.push_back(static_cast<double>(c.alignment.count()) / 1000);
        for (auto p : c.pauses)
          pauses.push_back(static_cast<double>(p.count()) / 1000);
      }
      fmt::print("  run {} ({} first): {:.2f} vs {:.2f} M records/s, ratio {:.3f}; CPU {:.0f} vs {:.0f} "
                 "ns/record; {} checkpoints, duration median {:.1f} ms, alignment median {:.1f} max "
                 "{:.1f} ms, pause max {:.1f} ms\n",
                 i + 1, i % 2 == 0 ? "plain" : "checkpoints", plain.back() / 1e6, with.back() / 1e6,
                 with.back() / plain.back(), plain_cpu.back(), with_cpu.back(), b.checkpoints.size(), median_of(durations),
                 median_of(alignments), percentile(alignments, 1.0), percentile(pauses, 1.0));
      std::filesystem::remove_all(o.checkpoint_dir);
    } else {
      count_options plain_o;
      plain_o.records = records;
      count_options o = plain_o;
      o.checkpoint_dir = temp_dir("count");
      o.interval = interval;
      o.compression = compression;
      // Alternate which goes first (ABBA), so that whatever a run leaves behind for the
      // next one (freed memory, dirty pages) falls on both sides alike.
      count_outcome a, b;
      if (i % 2 == 0) {
        a = run_count(plain_o);
        b = run_count(o);
      } else {
        b = run_count(o);
        a = run_count(plain_o);
      }
      if (a.rows != b.rows) {
        fmt::print(stderr, "count results differ with checkpoints\n");
        return 1;
      }
      checkpoints += b.result.checkpoints_completed;
      plain.push_back(static_cast<double>(records) / a.seconds);
      with.push_back(static_cast<double>(records) / b.seconds);
      plain_cpu.push_back(a.cpu_seconds * 1e9 / static_cast<double>(records));
      with_cpu.push_back(b.cpu_seconds * 1e9 / static_cast<double>(records));
      plain_flowing.push_back(static_cast<double>(a.rows) / a.flowing_seconds);
      with_flowing.push_back(static_cast<double>(b.rows) / b.flowing_seconds);
      fmt::print("  run {}: {:.2f} vs {:.2f} M records/s, while flowing {:.2f} vs {:.2f}, CPU {:.0f} vs "
                 "{:.0f} ns/record (kernel {:.0f} vs {:.0f}; {} checkpoints)\n",
                 i + 1, plain.back() / 1e6, with.back() / 1e6, plain_flowing.back() / 1e6,
                 with_flowing.back() / 1e6, plain_cpu.back(), with_cpu.back(),
                 a.system_seconds * 1e9 / static_cast<double>(records),
                 b.system_seconds * 1e9 / static_cast<double>(records), b.result.checkpoints_completed);
      std::filesystem::remove_all(o.checkpoint_dir);
    }
  }
  const auto p = median_of(plain), w = median_of(with);
  fmt::print("checkpoint-overhead {}: records={} runs={} interval={}ms\n", workload, records, runs,
             interval.count());
  fmt::print("  no checkpoints:   {:8.2f} M records/s\n", p / 1e6);
  fmt::print("  with checkpoints: {:8.2f} M records/s\n", w / 1e6);
  if (workload != "w4")
    fmt::print("  checkpoints completed per run: {:.1f}\n", static_cast<double>(checkpoints) / runs);
  fmt::print("  ratio with/without: {:.3f}  (throughput loss {:.1f}%)\n", w / p, 100 * (1 - w / p));
  if (plain_flowing.empty()) {
    std::vector<double> paired;
    for (std::size_t k = 0; k < plain.size(); ++k)
      paired.push_back(with[k] / plain[k]);
    fmt::print("  median of the runs' own ratios: {:.3f}\n", median_of(paired));
    const auto pc = median_of(plain_cpu), wc = median_of(with_cpu);
    fmt::print("  CPU per record: {:.0f} vs {:.0f} ns, ratio {:.3f}\n", pc, wc, wc / pc);
  }
  if (!plain_flowing.empty()) {
    // Without the start and the end: a bounded run also waits for its last checkpoint.
    const auto pf = median_of(plain_flowing), wf = median_of(with_flowing);
    fmt::print("  while flowing (first to last row at the sink): {:.2f} vs {:.2f} M rows/s, "
               "ratio {:.3f}  (loss {:.1f}%)\n",
               pf / 1e6, wf / 1e6, wf / pf, 100 * (1 - wf / pf));
    // Each run's two sides ran back to back: the median of their ratios follows the
    // machine's drifts in speed better than the ratio of the medians.
    std::vector<double> paired, paired_flowing;
    for (std::size_t k = 0; k < plain.size(); ++k) {
      paired.push_back(with[k] / plain[k]);
      paired_flowing.push_back(with_flowing[k] / plain_flowing[k]);
    }
    fmt::print("  median of the runs' own ratios: whole {:.3f}, while flowing {:.3f}\n",
               median_of(paired), median_of(paired_flowing));
    // CPU per record counts what checkpoints cost the machine, whatever else it runs.
    const auto pc = median_of(plain_cpu), wc = median_of(with_cpu);
    fmt::print("  CPU per record: {:.0f} vs {:.0f} ns, ratio {:.3f}  (checkpoints cost {:.1f}% more CPU)\n",
               pc, wc, wc / pc, 100 * (wc / pc - 1));
  }
  return 0;
}

/// One side of the count overhead alone (for a profiler: `perf record` over it and over the
/// other side shows where the checkpoints' extra CPU goes).
inline int one_side(const std::string& workload, bool with_checkpoints, int runs,
                    std::uint64_t records, std::chrono::milliseconds interval,
                    const std::string& report = {}) {
  for (int i = 0; i < runs; ++i) {
    if (workload == "w4") {
      windows_bench::options o;
      o.records = records;
      if (with_checkpoints) {
        o.checkpoint_dir = temp_dir("w4-side");
        o.checkpoint_interval = interval;
      }
      const auto cpu0 = process_cpu_seconds();
      auto r = windows_bench::engine_run(o, windows::tumbling{.size = std::chrono::seconds{1}});
      const auto cpu = process_cpu_seconds() - cpu0;
      fmt::print("  run {}: {:.2f} M records/s, CPU {:.0f} ns/record, {} checkpoints\n", i + 1,
                 static_cast<double>(records) / r.seconds / 1e6,
                 cpu * 1e9 / static_cast<double>(records), r.checkpoints.size());
      if (!report.empty()) // for `processes`: records per second and CPU ns per record
        std::ofstream{report} << static_cast<double>(records) / r.seconds << ' '
                              << cpu * 1e9 / static_cast<double>(records) << '\n';
      if (with_checkpoints)
        std::filesystem::remove_all(o.checkpoint_dir);
      continue;
    }
    count_options o;
    o.records = records;
    if (with_checkpoints) {
      o.checkpoint_dir = temp_dir("count-side");
      o.interval = interval;
    }
    auto r = run_count(o);
    fmt::print("  run {}: {:.2f} M records/s, CPU {:.0f} ns/record (kernel {:.0f}), {} checkpoints\n",
               i + 1, static_cast<double>(records) / r.seconds / 1e6,
               r.cpu_seconds * 1e9 / static_cast<double>(records),
               r.system_seconds * 1e9 / static_cast<double>(records), r.result.checkpoints_completed);
    if (with_checkpoints)
      std::filesystem::remove_all(o.checkpoint_dir);
  }
  return 0;
}

/// W4's overhead with each side in a process of its own (this binary, `--only`), the sides
/// alternating ABBA: nothing one run leaves in the process (heap, threads) reaches the next.
inline int overhead_in_processes(int runs, std::uint64_t records, std::chrono::milliseconds interval) {
  const auto report = temp_dir("w4-process.report");
  std::vector<double> plain, with, plain_cpu, with_cpu, paired;
  for (int i = 0; i < runs; ++i) {
    for (bool checkpointed : i % 2 == 0 ? std::array{false, true} : std::array{true, false}) {
      auto ran = run_self({"checkpoint-overhead", "--workload", "w4", "--only",
                           checkpointed ? "checkpoints" : "plain", "--runs", "1", "--records",
                           std::to_string(records), "--interval",
                           std::to_string(interval.count()) + "ms", "--report", report});
      if (!ran) {
        fmt::print(stderr, "{}\n", ran.error().to_string());
        return 1;
      }
      double rate = 0, cpu = 0;
      if (!(std::ifstream{report} >> rate >> cpu)) {
        fmt::print(stderr, "checkpoint-overhead: no report from the child\n");
        return 1;
      }
      (checkpointed ? with : plain).push_back(rate);
      (checkpointed ? with_cpu : plain_cpu).push_back(cpu);
    }
    paired.push_back(with.back() / plain.back());
    fmt::print("  pair {} ({} first): {:.2f} vs {:.2f} M records/s, ratio {:.3f}; CPU {:.0f} vs {:.0f} ns/record\n",
               i + 1, i % 2 == 0 ? "plain" : "checkpoints", plain.back() / 1e6, with.back() / 1e6,
               paired.back(), plain_cpu.back(), with_cpu.back());
  }
  std::filesystem::remove(report);
  fmt::print("checkpoint-overhead w4, each side in its own process: records={} pairs={} interval={}ms\n",
             records, runs, interval.count());
  fmt::print("  ratio with/without: {:.3f} (medians), {:.3f} (median of the pairs' ratios); CPU per "
             "record {:.3f}\n",
             median_of(with) / median_of(plain), median_of(paired),
             median_of(with_cpu) / median_of(plain_cpu));
  return 0;
}

/// The count workload's overhead with and without Snappy on the pieces, against no
/// checkpoints, the three configurations alternating in each run (so that a change in the
/// machine's speed hits all three alike).
inline int compression_overhead(int runs, std::uint64_t records, std::chrono::milliseconds interval) {
  struct side {
    const char* name;
    std::vector<double> whole, flowing, cpu;
  };
  side none{"no checkpoints", {}, {}, {}}, snappy{"Snappy", {}, {}, {}},
    raw{"no compression", {}, {}, {}};
  for (int i = 0; i < runs; ++i) {
    // Rotate the order in each run, so that no configuration always follows another.
    std::array<side*, 3> order{&none, &snappy, &raw};
    std::rotate(order.begin(), order.begin() + i % 3, order.end());
    for (auto* s : order) {
      count_options o;
      o.records = records;
      if (s != &none) {
        o.checkpoint_dir = temp_dir("count-compression");
        o.interval = interval;
        o.compression = s == &snappy;
      }
      auto r = run_count(o);
      if (r.rows != records) {
        fmt::print(stderr, "count: {} rows of {}\n", r.rows, records);
        return 1;
      }
      s->whole.push_back(static_cast<double>(records) / r.seconds);
      s->flowing.push_back(static_cast<double>(r.rows) / r.flowing_seconds);
      s->cpu.push_back(r.cpu_seconds * 1e9 / static_cast<double>(records));
      if (!o.checkpoint_dir.empty())
        std::filesystem::remove_all(o.checkpoint_dir);
    }
    fmt::print("  run {}: {:.2f} / {:.2f} / {:.2f} M records/s (none / Snappy / uncompressed)\n",
               i + 1, none.whole.back() / 1e6, snappy.whole.back() / 1e6, raw.whole.back() / 1e6);
  }
  fmt::print("checkpoint-overhead count, compression compared: records={} runs={} interval={}ms\n",
             records, runs, interval.count());
  for (auto* s : {&snappy, &raw})
    fmt::print("  {:15} ratio to none: whole {:.3f}, while flowing {:.3f}, CPU per record {:.3f}\n",
               s->name, median_of(s->whole) / median_of(none.whole),
               median_of(s->flowing) / median_of(none.flowing),
               median_of(s->cpu) / median_of(none.cpu));
  return 0;
}

/// What `measure_state` saw, in milliseconds and megabytes.
struct state_figures {
  std::size_t checkpoints = 0, incremental_checkpoints = 0;
  double run_seconds = 0;
  std::vector<double> pauses, durations, sizes;                   // every key changing
  std::vector<double> inc_pauses, inc_durations, written, full;    // ~1% changing
  std::vector<double> recovery;
};

/// Pause, size and duration with every key changing, then with ~1% changing, then the
/// recovery time, of the count job `o` (with a checkpoint directory).
inline result<state_figures> measure_state(const count_options& o, std::chrono::milliseconds interval) {
  state_figures f;
  std::filesystem::remove_all(o.checkpoint_dir);
  auto a = run_count(o);
  f.checkpoints = a.result.checkpoints.size();
  f.run_seconds = a.seconds;
  for (auto& c : a.result.checkpoints) {
    for (auto p : c.pauses)
      f.pauses.push_back(static_cast<double>(p.count()) / 1000);
    f.durations.push_back(static_cast<double>(c.duration.count()) / 1000);
    f.sizes.push_back(static_cast<double>(c.bytes) / 1e6);
  }
  // Incremental: restart on the same directory (the first checkpoint after a restore is
  // full), then change about 1% of the keys per interval: 3 x keys/100 records per second
  // over keys/100 keys touch ~95% of them.
  auto inc = o;
  inc.first = o.records;
  inc.key_span = o.keys / 100;
  inc.rate = 3.0 * static_cast<double>(inc.key_span) * 1000.0 / static_cast<double>(interval.count());
  inc.records = static_cast<std::uint64_t>(inc.rate * 10.0 * static_cast<double>(interval.count()) / 1000.0);
  auto b = run_count(inc);
  for (std::size_t i = 1; i < b.result.checkpoints.size(); ++i) { // [0]: full after the restore
    auto& c = b.result.checkpoints[i];
    for (auto p : c.pauses)
      f.inc_pauses.push_back(static_cast<double>(p.count()) / 1000);
    f.inc_durations.push_back(static_cast<double>(c.duration.count()) / 1000);
    f.written.push_back(static_cast<double>(c.bytes) / 1e6);
    f.full.push_back(static_cast<double>(c.full_bytes) / 1e6);
  }
  f.incremental_checkpoints = f.written.size();
  // Recovery: the same job restarted on its checkpoint directory, with more input; the
  // time from start() to the first row at the sink includes restoring every key.
  for (int i = 0; i < 3; ++i) {
    auto r = o;
    r.first = o.records * 2 + static_cast<std::uint64_t>(i) * 1000;
    r.records = 1000;
    auto c = run_count(r);
    if (!c.result.restored_from)
      return make_error(error_code::internal, "checkpoint-state: the restart did not restore");
    f.recovery.push_back(c.first_row_seconds * 1000);
  }
  std::filesystem::remove_all(o.checkpoint_dir);
  return f;
}

inline void print_state(const state_figures& f) {
  fmt::print("  checkpoints: {}  (run {:.2f} s)\n", f.checkpoints, f.run_seconds);
  fmt::print("  pause per task per checkpoint: p50 {:.1f} ms, p99 {:.1f} ms, max {:.1f} ms\n",
             percentile(f.pauses, 0.5), percentile(f.pauses, 0.99), percentile(f.pauses, 1.0));
  fmt::print("  checkpoint duration: median {:.1f} ms, max {:.1f} ms\n", median_of(f.durations),
             percentile(f.durations, 1.0));
  fmt::print("  checkpoint size (written, every key changes): median {:.1f} MB, last {:.1f} MB\n",
             median_of(f.sizes), f.sizes.empty() ? 0.0 : f.sizes.back());
  fmt::print("  incremental, ~1% of keys changed per interval: {} checkpoints\n", f.incremental_checkpoints);
  fmt::print("    written per checkpoint: median {:.2f} MB of {:.1f} MB full ({:.1f}%)\n",
             median_of(f.written), median_of(f.full),
             100 * median_of(f.written) / std::max(1e-9, median_of(f.full)));
  fmt::print("    pause p50 {:.2f} ms, p99 {:.2f} ms; duration median {:.1f} ms\n",
             percentile(f.inc_pauses, 0.5), percentile(f.inc_pauses, 0.99), median_of(f.inc_durations));
  fmt::print("  recovery (start to first row, keys restored): median {:.0f} ms\n", median_of(f.recovery));
}

/// Pause, size and duration with `keys` keys in state; then the recovery time. With
/// `compare_inline`, the same measured again with every piece inside LevelDB (the layout
/// before large pieces moved to files), alternating `rounds` times, with the ratios.
inline int state(std::uint64_t keys, std::chrono::milliseconds interval, bool keyed_process,
                 bool compare_inline = false, int rounds = 3) {
  count_options o;
  o.keyed_process = keyed_process;
  o.keys = keys;
  o.records = keys * 20;
  o.checkpoint_dir = temp_dir("state");
  o.interval = interval;
  fmt::print("checkpoint-state: keys={} records={} interval={}ms parallelism={} operator={}\n",
             keys, o.records, interval.count(), o.parallelism,
             keyed_process ? "process" : "aggregate");
  if (!compare_inline) {
    auto f = measure_state(o, interval);
    if (!f) {
      fmt::print(stderr, "{}\n", f.error().to_string());
      return 1;
    }
    print_state(*f);
    return 0;
  }
  state_figures files, inline_;
  auto append = [](state_figures& to, const state_figures& f) {
    for (auto [a, b] : {std::pair{&to.durations, &f.durations}, {&to.inc_durations, &f.inc_durations},
                        {&to.recovery, &f.recovery}, {&to.pauses, &f.pauses},
                        {&to.inc_pauses, &f.inc_pauses}, {&to.sizes, &f.sizes},
                        {&to.written, &f.written}, {&to.full, &f.full}})
      a->insert(a->end(), b->begin(), b->end());
    to.checkpoints += f.checkpoints;
    to.incremental_checkpoints += f.incremental_checkpoints;
    to.run_seconds += f.run_seconds;
  };
  for (int i = 0; i < rounds; ++i)
    for (bool in_db : {false, true}) {
      auto run = o;
      if (in_db)
        run.file_threshold = std::numeric_limits<std::size_t>::max();
      auto f = measure_state(run, interval);
      if (!f) {
        fmt::print(stderr, "{}\n", f.error().to_string());
        return 1;
      }
      append(in_db ? inline_ : files, *f);
    }
  fmt::print("large pieces in files (the default), {} rounds:\n", rounds);
  print_state(files);
  fmt::print("every piece inside LevelDB, same rounds:\n");
  print_state(inline_);
  auto ratio = [](const std::vector<double>& a, const std::vector<double>& b) {
    return median_of(a) / std::max(1e-9, median_of(b));
  };
  fmt::print("files / LevelDB (medians): full duration {:.2f}, incremental duration {:.2f}, "
             "recovery {:.2f}\n",
             ratio(files.durations, inline_.durations), ratio(files.inc_durations, inline_.inc_durations),
             ratio(files.recovery, inline_.recovery));
  return 0;
}

/// Checkpoint duration while the sink takes a tenth of the source's rate.
inline int backpressure(std::chrono::milliseconds interval, double rate, double seconds) {
  count_options o;
  o.keys = 10'000;
  o.rate = rate;
  o.sink_rate = rate / 10;
  o.records = static_cast<std::uint64_t>(rate * seconds / 10); // what the sink can take
  o.checkpoint_dir = temp_dir("backpressure");
  o.interval = interval;
  auto a = run_count(o);
  std::vector<double> durations;
  for (auto& c : a.result.checkpoints)
    durations.push_back(static_cast<double>(c.duration.count()) / 1000);
  fmt::print("checkpoint-backpressure: source {:.0f}/s, sink {:.0f}/s, interval {}ms, run {:.1f} s\n",
             rate, o.sink_rate, interval.count(), a.seconds);
  fmt::print("  checkpoints: {}, duration median {:.1f} ms, max {:.1f} ms ({:.2f}x the interval)\n",
             durations.size(), median_of(durations), percentile(durations, 1.0),
             percentile(durations, 1.0) / static_cast<double>(interval.count()));
  std::filesystem::remove_all(o.checkpoint_dir);
  return 0;
}

/// The child side of `recovery`: runs the count job on `dir` over `records` new records and
/// writes to `report` when, on the steady clock (one clock for every process on Linux), its
/// main() began, the job started, and the first row reached the sink.
inline int recovery_child(const std::string& dir, std::uint64_t keys, std::uint64_t first,
                          std::uint64_t records, const std::string& report,
                          clock_type::time_point main_began) {
  count_options o;
  o.keys = keys;
  o.first = first;
  o.records = records;
  o.checkpoint_dir = dir;
  o.interval = std::chrono::milliseconds{1000};
  auto c = run_count(o);
  if (c.rows != records) {
    fmt::print(stderr, "checkpoint-recovery child: {} rows of {}\n", c.rows, records);
    return 1;
  }
  std::ofstream out{report};
  auto ns = [](clock_type::time_point t) { return t.time_since_epoch().count(); };
  out << ns(main_began) << ' ' << ns(c.started) << ' ' << ns(c.first_row) << ' '
      << (c.result.restored_from ? *c.result.restored_from : -1) << '\n';
  return out ? 0 : 1;
}

/// Where the time from a process's start to its first row went, in milliseconds.
struct process_start {
  double to_main = 0;      ///< spawn to main(): exec, loading the binary and its libraries
  double to_start = 0;     ///< main() to the job's start: building the job
  double to_first_row = 0; ///< the job's start to the first row: actor system, restore, flow
  double total() const { return to_main + to_start + to_first_row; }
  std::int64_t restored_from = -1;
};

/// Spawns this very binary as a recovery child on `dir` and reads what it reports.
inline result<process_start> spawn_child(const std::string& dir, std::uint64_t keys,
                                         std::uint64_t first, std::uint64_t records) {
  const auto report = dir + ".report";
  std::filesystem::remove(report);
  auto spawned = run_self({"checkpoint-recovery", "--child", "--dir", dir, "--keys",
                           std::to_string(keys), "--first", std::to_string(first), "--records",
                           std::to_string(records), "--report", report});
  if (!spawned)
    return std::move(spawned).error();
  std::ifstream in{report};
  std::int64_t main_ns = 0, start_ns = 0, first_ns = 0;
  process_start p;
  if (!(in >> main_ns >> start_ns >> first_ns >> p.restored_from))
    return make_error(error_code::internal, "checkpoint-recovery: no report from the child");
  std::filesystem::remove(report);
  auto ms = [](std::int64_t a, std::int64_t b) { return static_cast<double>(b - a) / 1e6; };
  p.to_main = ms(spawned->time_since_epoch().count(), main_ns);
  p.to_start = ms(main_ns, start_ns);
  p.to_first_row = ms(start_ns, first_ns);
  return p;
}

/// Recovery time from a process's start: a child process restores `keys` keys of count state
/// and processes new records; the baseline is the same child starting on an empty checkpoint
/// directory, run alternately (ABBA) in the same invocation.
inline int recovery(std::uint64_t keys, int runs) {
  count_options o;
  o.keys = keys;
  o.records = keys * 20; // every key counted, as in checkpoint-state
  o.checkpoint_dir = temp_dir("recovery");
  auto built = run_count(o);
  if (built.result.checkpoints_completed == 0) {
    fmt::print(stderr, "checkpoint-recovery: the first run completed no checkpoint\n");
    return 1;
  }
  const std::uint64_t records = 1000;
  std::vector<process_start> restored, empty;
  for (int i = 0; i < runs; ++i) {
    for (bool restore : i % 2 == 0 ? std::array{false, true} : std::array{true, false}) {
      const auto first = o.records + static_cast<std::uint64_t>(i) * records;
      const auto dir = restore ? o.checkpoint_dir : temp_dir("recovery-empty");
      auto p = spawn_child(dir, keys, first, records);
      if (!restore)
        std::filesystem::remove_all(dir);
      if (!p) {
        fmt::print(stderr, "{}\n", p.error().to_string());
        return 1;
      }
      if ((p->restored_from >= 0) != restore) {
        fmt::print(stderr, "checkpoint-recovery: the child {} restore\n", restore ? "did not" : "did");
        return 1;
      }
      (restore ? restored : empty).push_back(*p);
    }
    fmt::print("  run {}: restoring {:.0f} ms, empty {:.0f} ms (process start to first row)\n", i + 1,
               restored.back().total(), empty.back().total());
  }
  std::filesystem::remove_all(o.checkpoint_dir);
  auto med = [](const std::vector<process_start>& v, auto part) {
    std::vector<double> x;
    for (auto& p : v)
      x.push_back(part(p));
    return median_of(x);
  };
  auto total = [](const process_start& p) { return p.total(); };
  auto to_main = [](const process_start& p) { return p.to_main; };
  auto to_start = [](const process_start& p) { return p.to_start; };
  auto to_row = [](const process_start& p) { return p.to_first_row; };
  fmt::print("checkpoint-recovery: keys={} runs={} (checkpoint of {:.1f} MB)\n", keys, runs,
             built.result.checkpoints.empty() ? 0.0
                                              : static_cast<double>(built.result.checkpoints.back().full_bytes) / 1e6);
  for (auto [name, v] : {std::pair{"restoring", &restored}, {"empty directory", &empty}})
    fmt::print("  {:16} median {:6.0f} ms: spawn to main {:.1f}, main to start {:.1f}, start to "
               "first row {:.1f}\n",
               name, med(*v, total), med(*v, to_main), med(*v, to_start), med(*v, to_row));
  fmt::print("  ratio restoring / empty: {:.2f}\n", med(restored, total) / med(empty, total));
  return 0;
}

} // namespace sluice::bench::checkpoints
