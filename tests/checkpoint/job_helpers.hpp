#pragma once
/// Shared pieces of the job-level checkpoint tests: records, the jobs they run, a gate that
/// stops a job at a known point, a log of the checkpoint protocol's sync points, and readers
/// of what the transactional file sink committed and of the raw checkpoint database.
///
/// As in tests/engine/test_helpers.hpp, code that runs inside a job only records (or waits
/// on a gate); the test thread asserts afterwards.
#include "../common/temp_dir.hpp"
#include "../engine/test_helpers.hpp"

#include "sluice/api/job.hpp"
#include "sluice/checkpoint/store.hpp"
#include "sluice/core/codec/json.hpp"
#include "sluice/operators/window/window_result.hpp"
#include "sluice/sinks/file.hpp"
#include "sluice/sinks/foreach_batch.hpp"
#include "sluice/sources/file.hpp"
#include "sluice/sources/generator.hpp"
#include "sluice/sources/watermarks.hpp"

#include <leveldb/db.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

namespace sluice::test::ckpt {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

// -- records ------------------------------------------------------------------------------

/// A keyed measurement at an event time.
struct reading {
  std::int64_t key = 0;
  std::int64_t value = 0;
  event_time ts{};
  friend bool operator==(const reading&, const reading&) = default;
  friend auto operator<=>(const reading&, const reading&) = default;
};
template <class Inspector>
bool inspect(Inspector& f, reading& x) {
  return f.object("reading").fields(f.field("key", x.key), f.field("value", x.value),
                                    f.field("ts", x.ts));
}
inline std::int64_t key_of(const reading& r) { return r.key; }
inline event_time ts_of(const reading& r) { return r.ts; }
/// The running sum: the newest record's time, the sum of the values.
inline reading sum_values(const reading& acc, const reading& next) {
  return {acc.key, acc.value + next.value, next.ts};
}

/// Event times are this many seconds after 1970 plus the record's offset.
inline constexpr std::int64_t base_s = 1'700'000'000;
inline event_time at_ms(std::int64_t ms) {
  return event_time{std::chrono::duration_cast<duration>(std::chrono::seconds{base_s} +
                                                         std::chrono::milliseconds{ms})};
}

inline constexpr std::int64_t key_count = 50;

/// Record n of the generator: a well-mixed key among 50 and value, 10 ms of event time apart
/// (in order, so no record is late).
inline reading make_reading(std::uint64_t n) {
  const auto h = splitmix64(n);
  return {static_cast<std::int64_t>(h % key_count), static_cast<std::int64_t>((h >> 20) % 1000),
          at_ms(static_cast<std::int64_t>(n) * 10)};
}

using window_count = window_result<std::int64_t, std::uint64_t>;

// -- sync points and gates ------------------------------------------------------------------

/// Records every call of `runtime_options::sync_point` (step, checkpoint id).
class sync_log {
public:
  std::function<void(const char*, std::int64_t)> callback() {
    return [s = state_](const char* step, std::int64_t id) {
      {
        std::lock_guard guard{s->mtx};
        s->calls.emplace_back(step, id);
      }
      s->cv.notify_all();
    };
  }
  /// How many times `step` was reached.
  std::size_t count(const std::string& step) const {
    std::lock_guard guard{state_->mtx};
    return static_cast<std::size_t>(std::count_if(
      state_->calls.begin(), state_->calls.end(), [&](auto& c) { return c.first == step; }));
  }
  /// The ids `step` was reached with, in order (repeats included).
  std::vector<std::int64_t> ids(const std::string& step) const {
    std::lock_guard guard{state_->mtx};
    std::vector<std::int64_t> out;
    for (auto& c : state_->calls)
      if (c.first == step)
        out.push_back(c.second);
    return out;
  }
  /// Waits until `step` was reached at least `n` times; false on timeout.
  bool wait_for(const std::string& step, std::size_t n = 1,
                std::chrono::nanoseconds timeout = safety_timeout) const {
    std::unique_lock lk{state_->mtx};
    return state_->cv.wait_for(lk, timeout, [&] {
      return static_cast<std::size_t>(std::count_if(state_->calls.begin(), state_->calls.end(),
                                                    [&](auto& c) { return c.first == step; })) >= n;
    });
  }

private:
  struct shared {
    mutable std::mutex mtx;
    std::condition_variable cv;
    std::vector<std::pair<std::string, std::int64_t>> calls;
  };
  std::shared_ptr<shared> state_ = std::make_shared<shared>();
};

/// Holds a job at a known point: the call of `pass()` that is the `at`-th (counted over every
/// parallel instance) blocks until `release()`; every other call passes. Put it downstream of
/// the source, so that the source stops for lack of credit but still handles `cancel`.
/// Never blocks longer than the safety timeout, so a broken engine fails instead of hanging.
class gate {
public:
  explicit gate(std::uint64_t at) : at_(at) {}

  void pass() {
    if (seen_.fetch_add(1, std::memory_order_acq_rel) + 1 != at_)
      return;
    std::unique_lock lk{mtx_};
    reached_ = true;
    cv_.notify_all();
    cv_.wait_for(lk, safety_timeout, [&] { return open_; });
  }
  bool wait_reached(std::chrono::nanoseconds timeout = safety_timeout) {
    std::unique_lock lk{mtx_};
    return cv_.wait_for(lk, timeout, [&] { return reached_; });
  }
  void release() {
    {
      std::lock_guard guard{mtx_};
      open_ = true;
    }
    cv_.notify_all();
  }
  std::uint64_t seen() const { return seen_.load(std::memory_order_acquire); }

private:
  std::uint64_t at_;
  std::atomic<std::uint64_t> seen_{0};
  std::mutex mtx_;
  std::condition_variable cv_;
  bool reached_ = false;
  bool open_ = false;
};

/// Holds one step of the checkpoint protocol (RocksDB's SyncPoint): the first call of `step`
/// for checkpoint `from_id` or later blocks until `release`, so a test acts while that step
/// is in progress. Every call is also recorded in a `sync_log`.
class step_hold {
public:
  step_hold(std::string step, std::int64_t from_id) : step_(std::move(step)), from_(from_id) {}

  std::function<void(const char*, std::int64_t)> callback(sync_log& log) {
    return [this, logged = log.callback()](const char* step, std::int64_t id) {
      logged(step, id);
      std::unique_lock lk{mtx_};
      if (used_ || step_ != step || id < from_)
        return;
      used_ = true;
      held_id_ = id;
      cv_.notify_all();
      cv_.wait_for(lk, safety_timeout, [&] { return released_; });
    };
  }
  /// Waits until a call is held; the checkpoint id it holds, or nullopt on timeout.
  std::optional<std::int64_t> wait_held(std::chrono::nanoseconds timeout = safety_timeout) {
    std::unique_lock lk{mtx_};
    if (!cv_.wait_for(lk, timeout, [&] { return used_; }))
      return std::nullopt;
    return held_id_;
  }
  void release() {
    {
      std::lock_guard guard{mtx_};
      released_ = true;
    }
    cv_.notify_all();
  }
  ~step_hold() { release(); }

private:
  std::string step_;
  std::int64_t from_;
  std::mutex mtx_;
  std::condition_variable cv_;
  bool used_ = false, released_ = false;
  std::int64_t held_id_ = -1;
};

/// Opens the gate when the scope ends (a failed assertion must not leave a task blocked while
/// the job's handle waits for it). Declare it after the job's handle.
struct open_at_exit {
  std::shared_ptr<gate> g;
  ~open_at_exit() {
    if (g)
      g->release();
  }
};

// -- the transactional file sink's output --------------------------------------------------

/// A committed part file: `<prefix>-<instance>-<checkpoint>.jsonl`.
struct part_name {
  std::int64_t checkpoint = 0;
  int instance = 0;
  fs::path path;
};

/// The committed part files of sink prefix `prefix`, as the sink's manifest lists them (what
/// a reader sees: sinks::read_committed_files), in checkpoint order, then instance.
inline std::vector<part_name> committed_parts(const fs::path& dir, const std::string& prefix) {
  std::vector<part_name> out;
  if (!fs::exists(dir))
    return out;
  auto files = sinks::read_committed_files(dir);
  BOOST_REQUIRE_MESSAGE(files.has_value(), error_text(files));
  for (auto& f : *files) {
    BOOST_REQUIRE_MESSAGE(f.checkpoint >= 0, dir.string() + " has no manifest");
    if (f.prefix == prefix)
      out.push_back({f.checkpoint, f.instance, f.path});
  }
  return out;
}

/// Every committed record, in checkpoint order (then instance, then line).
template <class T>
std::vector<T> read_committed(const fs::path& dir, const std::string& prefix = "part") {
  std::vector<T> out;
  for (auto& p : committed_parts(dir, prefix)) {
    std::ifstream in{p.path};
    std::string line;
    while (std::getline(in, line)) {
      auto r = codec::from_json_line<T>(line);
      BOOST_REQUIRE_MESSAGE(r.has_value(), p.path.string() + ": " + error_text(r));
      out.push_back(std::move(*r));
    }
  }
  return out;
}

/// Names in `dir` starting with a dot: uncommitted output (in progress or pending).
inline std::vector<std::string> hidden_files(const fs::path& dir) {
  std::vector<std::string> out;
  if (!fs::exists(dir))
    return out;
  for (auto& e : fs::directory_iterator{dir})
    if (e.path().filename().string().starts_with("."))
      out.push_back(e.path().filename().string());
  std::sort(out.begin(), out.end());
  return out;
}

/// Every file under `dir` (the manifest's entries too) with its size: what a run that should
/// change nothing must leave.
inline std::map<std::string, std::uintmax_t> listing(const fs::path& dir) {
  std::map<std::string, std::uintmax_t> out;
  if (!fs::exists(dir))
    return out;
  for (auto& e : fs::recursive_directory_iterator{dir})
    if (e.is_regular_file())
      out[e.path().lexically_relative(dir).string()] = e.file_size();
  return out;
}

/// The running sums per key, in order: a key's whole history of outputs.
inline std::map<std::int64_t, std::vector<std::int64_t>> per_key(const std::vector<reading>& rows) {
  std::map<std::int64_t, std::vector<std::int64_t>> out;
  for (auto& r : rows)
    out[r.key].push_back(r.value);
  return out;
}
/// The last output per key: the final totals.
inline std::map<std::int64_t, std::int64_t> last_per_key(const std::vector<reading>& rows) {
  std::map<std::int64_t, std::int64_t> out;
  for (auto& r : rows)
    out[r.key] = r.value;
  return out;
}
/// The totals computed directly from the generator's records 0..n-1.
inline std::map<std::int64_t, std::int64_t> expected_totals(std::uint64_t n) {
  std::map<std::int64_t, std::int64_t> out;
  for (std::uint64_t i = 0; i < n; ++i) {
    auto r = make_reading(i);
    out[r.key] += r.value;
  }
  return out;
}

/// Each key's running sums over the generator's records 0..n-1, in order.
inline std::map<std::int64_t, std::vector<std::int64_t>> expected_sums(std::uint64_t n) {
  std::map<std::int64_t, std::vector<std::int64_t>> out;
  std::map<std::int64_t, std::int64_t> sum;
  for (std::uint64_t i = 0; i < n; ++i) {
    auto r = make_reading(i);
    out[r.key].push_back(sum[r.key] += r.value);
  }
  return out;
}

template <class T>
std::vector<T> sorted(std::vector<T> v) {
  std::sort(v.begin(), v.end());
  return v;
}

// -- the continuous job: generator -> key_by -> reduce | tumbling window count --------------

/// Where one run of the generator job writes, and how it runs.
struct generator_job {
  fs::path totals;  ///< the running sums (transactional file sink)
  fs::path windows; ///< the window counts (transactional file sink)
  std::uint64_t count = 20'000;
  /// Records per second of processing time (the job's clock, which a test may drive); none:
  /// as fast as possible.
  std::optional<double> rate{};
  int parallelism = 1; ///< of the keyed operators and sinks; the source always has 1
  fs::path checkpoints{};
  std::shared_ptr<gate> hold{}; ///< in the totals branch, after the reduce
  /// Set: the next record through the totals branch's `hold` map throws (once), and clears it.
  std::shared_ptr<std::atomic<bool>> fail_next{};
  /// Both file sinks' `roll_back_on_fallback`.
  bool roll_back_on_fallback = false;
  /// Continuous trigger and checkpoint intervals: long, so that only the last barrier of a
  /// source (at its end or at cancel) is an epoch and a checkpoint, unless the test wants
  /// more.
  std::chrono::milliseconds epoch = 1h;
  std::chrono::milliseconds checkpoint_interval = 1h;
  std::function<void(const char*, std::int64_t)> sync_point{};

  job_options options() const {
    job_options o;
    o.name = "readings";
    o.parallelism = parallelism;
    o.trigger = triggers::continuous(epoch);
    o.checkpoints.dir = checkpoints;
    o.checkpoints.interval = checkpoint_interval;
    o.runtime.batch_size = 256;
    o.runtime.threads = 4; // a gate blocks one worker
    o.runtime.sync_point = sync_point;
    return o;
  }

  void build(job& j) const {
    auto src = j.from(sources::generator({.count = count, .rate = rate}, make_reading),
                      watermarks::bounded_out_of_orderness<reading>(duration{0}, ts_of))
                 .name("readings")
                 .parallelism(1);
    auto g = hold;
    auto fail = fail_next;
    src.key_by(key_of)
      .reduce(sum_values)
      .name("totals")
      .map([g, fail](const reading& r) {
        if (g)
          g->pass();
        if (fail && fail->exchange(false))
          throw std::runtime_error("injected failure");
        return r;
      })
      .name("hold")
      .sink_to(sinks::file<reading>{
        {.path = totals, .transactional = true, .roll_back_on_fallback = roll_back_on_fallback}})
      .name("totals-out");
    src.key_by(key_of)
      .window(windows::tumbling{.size = 1s})
      .count()
      .name("counts")
      .sink_to(sinks::file<window_count>{
        {.path = windows, .transactional = true, .roll_back_on_fallback = roll_back_on_fallback}})
      .name("counts-out");
  }

  result<job_result> run() const {
    job j{options()};
    build(j);
    return j.run();
  }
};

/// Starts `j`, cancels it once its gate `hold` is reached, then lets the gate go; returns
/// the cancelled run's result. With `log` (the job's sync points) the gate opens only after
/// a task took the cancel's checkpoint: with a long epoch interval no other barrier exists,
/// so the run stops at a point that depends only on the gate and the credit window.
inline job_result cancel_at_gate(job& j, const std::shared_ptr<gate>& hold,
                                 const sync_log* log = nullptr) {
  BOOST_REQUIRE(hold);
  auto exec = require_ok(j.start());
  open_at_exit opener{hold};
  BOOST_REQUIRE_MESSAGE(hold->wait_reached(), "the job never reached the gate");
  const auto before = log ? log->count("snapshot") : 0;
  exec->cancel();
  if (log)
    BOOST_REQUIRE_MESSAGE(log->wait_for("snapshot", before + 1),
                          "no task snapshotted after cancel()");
  hold->release();
  return require_ok(exec->wait());
}

/// The window counts of `count` generator records in one uninterrupted run, sorted.
inline std::vector<window_count> uninterrupted_windows(std::uint64_t count) {
  temp_dir out;
  generator_job spec{out.path / "totals", out.path / "windows", count};
  auto r = require_ok(spec.run());
  BOOST_REQUIRE(!r.cancelled);
  return sorted(read_committed<window_count>(spec.windows));
}

/// Checks what `spec`'s runs committed to the totals sink: every record's running sum
/// exactly once, each key's in order, and nothing left uncommitted.
inline void expect_every_sum_once(const generator_job& spec) {
  const auto totals = read_committed<reading>(spec.totals);
  BOOST_TEST(totals.size() == spec.count, "every record's running sum exactly once");
  BOOST_TEST((per_key(totals) == expected_sums(spec.count)));
  BOOST_TEST(hidden_files(spec.totals).empty());
}

/// Checks that `spec`'s runs committed the window counts of one uninterrupted run.
inline void expect_uninterrupted_windows(const generator_job& spec) {
  BOOST_TEST((sorted(read_committed<window_count>(spec.windows)) ==
              uninterrupted_windows(spec.count)));
}

/// Runs `spec` with its gate and cancels it there once a task took the cancel's checkpoint
/// (`cancel_at_gate` with the log): far from the source's end.
inline job_result run_cancelled_at_gate(const generator_job& spec, sync_log& log) {
  job j{spec.options()};
  spec.build(j);
  return cancel_at_gate(j, spec.hold, &log);
}

/// The generator job paced by a manual clock: 20 records per second, an epoch and a
/// checkpoint each second, every piece stored in a file (so a broken piece directory fails
/// every task's write). Each checkpoint commits output of its own to both file sinks.
struct paced_job {
  temp_dir dir;
  sync_log log;
  std::shared_ptr<manual_clock> clk = std::make_shared<manual_clock>();
  generator_job spec{dir.path / "totals", dir.path / "windows", 200};

  paced_job() {
    spec.checkpoints = dir.path / "ckpt";
    spec.rate = 20;
    spec.epoch = 1s;
    spec.checkpoint_interval = 1s;
  }
  job_options options(int tolerable) const {
    auto o = spec.options();
    o.runtime.processing_clock = clk;
    o.checkpoints.tolerable_failures = tolerable;
    o.checkpoints.file_threshold = 0;
    return o;
  }
  /// Waits until the source read its first record: the job has started, and the first
  /// epoch ends one second of the clock after its start.
  bool running(job_execution& exec) const {
    return wait_until(exec, [&] { return stats_of(exec.snapshot().tasks, "readings").records_in > 0; });
  }
  /// Builds and starts the job with options `o` (kept here) and waits until it runs.
  std::unique_ptr<job_execution> start(const job_options& o) {
    j.emplace(o);
    spec.build(*j);
    auto exec = require_ok(j->start());
    BOOST_REQUIRE(running(*exec));
    return exec;
  }
  std::optional<job> j;
  /// The rest of the input, unpaced and without sync points: a run after this one.
  generator_job unpaced() const {
    generator_job rest = spec;
    rest.rate.reset();
    rest.sync_point = nullptr;
    return rest;
  }
  /// Checkpoints that ended so far, completed or failed.
  std::size_t ended(job_execution& exec) const {
    return log.count("completed") + static_cast<std::size_t>(exec.snapshot().checkpoint_failures);
  }
  /// Moves the clock a second on and waits until the checkpoint that starts ends.
  bool next_checkpoint(job_execution& exec) const {
    const auto before = ended(exec);
    clk->advance(1s);
    return wait_until(exec, [&] { return ended(exec) > before; });
  }
};

// -- files for the file source ---------------------------------------------------------------

/// Writes `rows` as JSON lines into `dir/name` the way a producer should (a dotfile renamed
/// into place).
template <class T>
void drop_file(const fs::path& dir, const std::string& name, const std::vector<T>& rows) {
  fs::create_directories(dir);
  std::string text;
  for (auto& r : rows)
    text += codec::to_json_line(r) + "\n";
  const auto tmp = dir / ("." + name + ".tmp");
  std::ofstream{tmp, std::ios::binary} << text;
  fs::rename(tmp, dir / name);
}

/// What a foreach_batch sink received: one entry per call, in call order. An optional gate
/// holds the call for batch `hold_at` until released.
template <class T>
class batch_log {
public:
  struct entry {
    std::int64_t batch_id;
    std::vector<T> rows;
  };

  auto sink(std::shared_ptr<gate> hold = nullptr, std::int64_t hold_at = -1) {
    return sinks::foreach_batch<T>(
      [state = state_, hold, hold_at](std::int64_t id, std::vector<T>& rows) {
        {
          std::lock_guard guard{state->mtx};
          state->entries.push_back({id, rows});
        }
        if (hold && id == hold_at)
          hold->pass();
      });
  }
  std::vector<entry> entries() const {
    std::lock_guard guard{state_->mtx};
    return state_->entries;
  }
  std::vector<std::int64_t> ids() const {
    std::vector<std::int64_t> out;
    for (auto& e : entries())
      out.push_back(e.batch_id);
    return out;
  }
  /// batch id -> its rows, sorted.
  std::map<std::int64_t, std::vector<T>> by_id() const {
    std::map<std::int64_t, std::vector<T>> out;
    for (auto& e : entries()) {
      auto& rows = out[e.batch_id];
      rows.insert(rows.end(), e.rows.begin(), e.rows.end());
      std::sort(rows.begin(), rows.end());
    }
    return out;
  }

private:
  struct shared {
    std::mutex mtx;
    std::vector<entry> entries;
  };
  std::shared_ptr<shared> state_ = std::make_shared<shared>();
};

// -- the micro-batch sums job: files -> key_by -> OPERATOR "sums" -> foreach_batch ----------

/// A micro-batch job over the files of `input`, one file per batch (available-now), with its
/// checkpoints in `checkpoints`; the tests that damage a checkpoint directory (corrupt_test)
/// or change the job between runs (identity_test) run it. The defaults make
/// files -> key_by -> reduce "sums" -> foreach_batch "batches"; every other field is a
/// version of it or a checkpoint option, at job_options' default unless set.
struct sums_job {
  enum class op { reduce, aggregate, map };

  fs::path input;
  fs::path checkpoints;
  std::string name = "sums";
  /// The operator after the source: a keyed reduce (`sum_values`), a keyed aggregate with
  /// a number as its state (`summing`), or a stateless map.
  op kind = op::reduce;
  std::string op_name = "sums";
  /// Adds a keyed reduce "maxes" (the largest value per key) after the operator.
  bool with_maxes = false;
  int parallelism = 1;
  /// checkpoint_options' fields of the same names; 1 puts every piece in a file under
  /// pieces/ (the default keeps these small ones inline).
  std::size_t file_threshold = checkpoint_options{}.file_threshold;
  unreadable_checkpoints on_unreadable = checkpoint_options{}.on_unreadable;
  bool allow_non_restored_state = false;
  std::optional<std::int64_t> restore_from{};

  /// A running total per key as an aggregate: the same output as `sum_values`, but its
  /// state is a number, not a `reading`.
  struct summing {
    std::int64_t create() const { return 0; }
    void add(std::int64_t& acc, const reading& r) const { acc += r.value; }
    reading result(const std::int64_t& key, const std::int64_t& acc) const { return {key, acc, {}}; }
  };
  static reading largest(const reading& a, const reading& b) { return a.value >= b.value ? a : b; }

  job_options options() const {
    job_options o;
    o.name = name;
    o.parallelism = parallelism;
    o.trigger = triggers::available_now();
    o.checkpoints.dir = checkpoints;
    o.checkpoints.file_threshold = file_threshold;
    o.checkpoints.on_unreadable = on_unreadable;
    o.checkpoints.allow_non_restored_state = allow_non_restored_state;
    o.checkpoints.restore_from = restore_from;
    return o;
  }

  template <class Sink>
  void build(job& j, Sink sink) const {
    auto src = j.from(sources::file<reading>{{.path = input, .max_files_per_trigger = 1}})
                 .name("files");
    stream<reading> out = [&]() -> stream<reading> {
      switch (kind) {
        case op::reduce: return src.key_by(key_of).reduce(sum_values).name(op_name);
        case op::aggregate: return src.key_by(key_of).aggregate(summing{}).name(op_name);
        case op::map: return src.map([](const reading& r) { return r; }).name(op_name);
      }
      throw std::logic_error("unknown op");
    }();
    if (with_maxes)
      out = out.key_by(key_of).reduce(largest).name("maxes");
    out.sink_to(std::move(sink)).name("batches");
  }

  /// Runs to the end; returns the result and what each batch wrote (batch id -> sorted rows).
  std::pair<job_result, std::map<std::int64_t, std::vector<reading>>> run() const {
    batch_log<reading> log;
    job j{options()};
    build(j, log.sink());
    auto r = require_ok(j.run());
    for (auto& s : r.skipped_checkpoints)
      BOOST_TEST_MESSAGE("skipped: " << s);
    return {r, log.by_id()};
  }

  /// Runs expecting a refusal before anything runs; returns the error.
  error refused() const {
    batch_log<reading> log;
    job j{options()};
    build(j, log.sink());
    auto e = require_error(j.run());
    BOOST_TEST_MESSAGE("refused: " << e.message);
    BOOST_TEST(log.ids().empty(), "nothing ran");
    return e;
  }
};

/// A fresh directory with a `sums_job` reading `in/` and checkpointing into `ckpt/` there.
struct sums_fixture {
  temp_dir dir;
  sums_job spec{dir.path / "in", dir.path / "ckpt"};
};

// -- split runs: a job cancelled midway, then restored at another parallelism -----------------

/// How `expect_split_run_matches` runs the job: micro-batch options (one trigger per file,
/// available-now), the output mode, and where the first run is held and cancelled.
struct split_run {
  output_mode mode = output_mode::append;
  /// The first run's sink holds this batch; the second run restores its checkpoint.
  std::int64_t hold_at = 2;
  /// Called with the checkpoint directory between the two runs.
  std::function<void(const fs::path&)> between{};

  job_options options(const fs::path& ckpt) const {
    job_options o;
    o.trigger = triggers::available_now();
    o.output_mode = mode;
    o.checkpoints.dir = ckpt;
    o.runtime.threads = 4; // a gate blocks one worker
    return o;
  }
};

/// A reference run (no checkpoints, parallelism `reference`), then the same job in two runs:
/// the first, at parallelism `first`, cancelled while its sink holds batch `hold_at`; the
/// second restores that batch's checkpoint at parallelism `second` and runs to the end.
/// Every batch of the two runs must equal the reference's. `build(job, parallelism, sink)`
/// builds the job. Returns the reference's batches.
template <class T, class Build>
std::map<std::int64_t, std::vector<T>> expect_split_run_matches(const Build& build, int reference,
                                                                 int first, int second,
                                                                 const split_run& how = {}) {
  batch_log<T> ref;
  {
    job j{how.options({})};
    build(j, reference, ref.sink());
    require_ok(j.run());
  }
  temp_dir dir;
  batch_log<T> one;
  {
    auto hold = std::make_shared<gate>(1);
    job j{how.options(dir.path / "ckpt")};
    build(j, first, one.sink(hold, how.hold_at));
    BOOST_TEST(cancel_at_gate(j, hold).cancelled);
  }
  std::vector<std::int64_t> first_ids;
  for (std::int64_t id = 0; id <= how.hold_at; ++id)
    first_ids.push_back(id);
  BOOST_TEST(one.ids() == first_ids, boost::test_tools::per_element());
  if (how.between)
    how.between(dir.path / "ckpt");
  batch_log<T> two;
  {
    job j{how.options(dir.path / "ckpt")};
    build(j, second, two.sink());
    auto r = require_ok(j.run());
    BOOST_REQUIRE(r.restored_from.has_value());
    BOOST_TEST(*r.restored_from == how.hold_at);
  }
  auto rows = one.by_id();
  for (auto& [id, r] : two.by_id())
    BOOST_TEST(rows.emplace(id, r).second, "batch " << id << " in both runs");
  const auto ref_rows = ref.by_id();
  BOOST_TEST(rows.size() == ref_rows.size());
  for (auto& [id, r] : ref_rows)
    BOOST_TEST((rows[id] == r), "batch " << id << ": " << rows[id].size() << " rows, expected "
                                         << r.size());
  return ref_rows;
}

// -- the raw checkpoint database ------------------------------------------------------------

inline std::string id_text(std::int64_t id) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%020lld", static_cast<long long>(id));
  return buf;
}
inline std::string meta_key(std::int64_t id) { return "m/" + id_text(id); }
inline std::string piece_key(std::int64_t id, const std::string& name) {
  return "p/" + id_text(id) + "/" + name;
}

/// Opens the store's database itself, below the store (no job may be using it).
inline std::unique_ptr<leveldb::DB> open_raw(const fs::path& dir) {
  leveldb::DB* raw = nullptr;
  auto s = leveldb::DB::Open(leveldb::Options{}, (dir / "checkpoints.ldb").string(), &raw);
  BOOST_REQUIRE_MESSAGE(s.ok(), s.ToString());
  return std::unique_ptr<leveldb::DB>{raw};
}

/// Overwrites a raw key of the store's database (no job may be using it).
inline void overwrite_raw(const fs::path& dir, const std::string& key, const std::string& value) {
  BOOST_REQUIRE(open_raw(dir)->Put(leveldb::WriteOptions{}, key, value).ok());
}

/// Deletes a raw key of the store's database, synced (no job may be using it).
inline void delete_raw(const fs::path& dir, const std::string& key) {
  leveldb::WriteOptions sync;
  sync.sync = true;
  BOOST_REQUIRE(open_raw(dir)->Delete(sync, key).ok());
}

/// The ids of every raw key with `prefix` ("m/" or "p/").
inline std::vector<std::int64_t> raw_ids(const fs::path& dir, const std::string& prefix) {
  auto db = open_raw(dir);
  std::vector<std::int64_t> ids;
  std::unique_ptr<leveldb::Iterator> it{db->NewIterator(leveldb::ReadOptions{})};
  for (it->Seek(prefix); it->Valid() && it->key().starts_with(prefix); it->Next()) {
    const auto id = std::stoll(it->key().ToString().substr(prefix.size(), 20));
    if (ids.empty() || ids.back() != id)
      ids.push_back(id);
  }
  return ids;
}

/// Opens the store of a directory no job is using.
inline std::unique_ptr<checkpoint_store> open_store(const fs::path& dir, std::size_t retained = 3) {
  auto s = checkpoint_store::open(dir, {.retained = retained});
  BOOST_REQUIRE_MESSAGE(s.has_value(), error_text(s));
  return std::move(*s);
}

inline bool mentions(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

} // namespace sluice::test::ckpt
