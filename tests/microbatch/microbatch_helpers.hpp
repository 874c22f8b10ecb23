#pragma once
/// Shared pieces of the micro-batch tests: records, readable window rows, a foreach_batch
/// recorder, a progress recorder, and two test sources that make triggers observable and
/// input releasable step by step (RocksDB's SyncPoint idea: force the order, never hope).
///
/// As in tests/engine/test_helpers.hpp, code that runs inside a job only records; the test
/// thread asserts afterwards.
#include "../common/temp_dir.hpp"
#include "../engine/test_helpers.hpp"

#include "sluice/api/job.hpp"
#include "sluice/core/codec/json.hpp"
#include "sluice/core/progress.hpp"
#include "sluice/operators/window/window_result.hpp"
#include "sluice/sinks/foreach_batch.hpp"
#include "sluice/sources/descriptor.hpp"
#include "sluice/sources/file.hpp"
#include "sluice/sources/source.hpp"
#include "sluice/sources/watermarks.hpp"

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

// Boost.Test prints a batch (a list of row texts) in failed per-element comparisons of
// lists of batches; the documented customization point for a type of namespace std.
namespace boost::test_tools::tt_detail {
template <>
struct print_log_value<std::vector<std::string>> {
  void operator()(std::ostream& os, const std::vector<std::string>& rows) {
    os << "{";
    for (std::size_t i = 0; i < rows.size(); ++i)
      os << (i ? ", " : "") << rows[i];
    os << "}";
  }
};
} // namespace boost::test_tools::tt_detail

namespace sluice::test::mb {

using namespace std::chrono_literals;

/// Event times are seconds after this base (a multiple of every window size used), so
/// expected rows read as small numbers. Far from 1970, where Spark's watermark starts.
inline constexpr std::int64_t base_s = 1'700'000'000;

inline event_time at_s(std::int64_t s) {
  return event_time{std::chrono::duration_cast<duration>(std::chrono::seconds{base_s + s})};
}
inline std::int64_t rel_s(event_time t) {
  return std::chrono::duration_cast<std::chrono::seconds>(t.time_since_epoch()).count() - base_s;
}

/// One word at an event time (the windowed word count's input).
struct word_event {
  event_time ts{};
  std::string word;
  friend bool operator==(const word_event&, const word_event&) = default;
};
template <class Inspector>
bool inspect(Inspector& f, word_event& x) {
  return f.object("word_event").fields(f.field("ts", x.ts), f.field("word", x.word));
}
inline event_time ts_of(const word_event& e) { return e.ts; }
inline std::string word_of(const word_event& e) { return e.word; }

inline word_event w(std::string word, std::int64_t s) { return {at_s(s), std::move(word)}; }

using word_count = window_result<std::string, std::uint64_t>;

/// `word[start,end)=count`, times in seconds after `base_s`: readable in failure messages.
inline std::string row_text(const word_count& r) {
  return r.key + "[" + std::to_string(rel_s(r.start)) + "," + std::to_string(rel_s(r.end)) +
         ")=" + std::to_string(r.value);
}

/// A (key, value) pair for the running aggregates.
struct kv {
  std::string key;
  std::int64_t value = 0;
  friend bool operator==(const kv&, const kv&) = default;
  friend auto operator<=>(const kv&, const kv&) = default;
};
template <class Inspector>
bool inspect(Inspector& f, kv& x) {
  return f.object("kv").fields(f.field("key", x.key), f.field("value", x.value));
}
inline std::string kv_text(const kv& x) { return x.key + "=" + std::to_string(x.value); }
inline kv sum_kv(const kv& a, const kv& b) { return {a.key, a.value + b.value}; }
inline std::string key_of_kv(const kv& x) { return x.key; }

/// Ten rows; with two source instances, batch size 1 and a cap of 2 records per instance
/// and trigger, micro-batch N reads rows 4N .. 4N+3 (instance i takes rows i, i+2, ...).
/// Running sums per batch: {a=4 b=2 c=4}, {a=5 b=32 d=5}, {a=7 e=7}.
inline std::vector<kv> sales() {
  return {{"a", 1}, {"b", 2}, {"a", 3}, {"c", 4},   // batch 0
          {"b", 10}, {"b", 20}, {"d", 5}, {"a", 1}, // batch 1
          {"e", 7}, {"a", 2}};                      // batch 2
}

/// available_now over `sales()` in three micro-batches (see there).
inline job_options split_options(output_mode mode) {
  job_options o;
  o.name = "sales";
  o.parallelism = 2;
  o.trigger = triggers::available_now();
  o.output_mode = mode;
  o.runtime.batch_size = 1;
  o.runtime.max_records_per_trigger = 2;
  return o;
}

template <class T, class F>
std::vector<std::string> texts(const std::vector<T>& rows, F text) {
  std::vector<std::string> out;
  for (auto& r : rows)
    out.push_back(text(r));
  std::sort(out.begin(), out.end());
  return out;
}

using strings = std::vector<std::string>;

/// What a foreach_batch sink received: one entry per call, in call order.
template <class T>
class batch_log {
public:
  struct entry {
    std::int64_t batch_id;
    std::vector<T> rows;
  };

  /// The sink descriptor; every copy records into this log.
  auto sink() {
    return sinks::foreach_batch<T>(
      [state = state_](std::int64_t id, std::vector<T>& rows) {
        std::lock_guard guard{state->mtx};
        state->entries.push_back({id, rows});
      });
  }
  std::vector<entry> entries() const {
    std::lock_guard guard{state_->mtx};
    return state_->entries;
  }
  std::size_t size() const {
    std::lock_guard guard{state_->mtx};
    return state_->entries.size();
  }
  /// Each batch's rows as sorted texts, in call order.
  template <class F>
  std::vector<strings> batches(F text) const {
    std::vector<strings> out;
    for (auto& e : entries())
      out.push_back(texts(e.rows, text));
    return out;
  }
  std::vector<std::int64_t> ids() const {
    std::vector<std::int64_t> out;
    for (auto& e : entries())
      out.push_back(e.batch_id);
    return out;
  }

private:
  struct shared {
    std::mutex mtx;
    std::vector<entry> entries;
  };
  std::shared_ptr<shared> state_ = std::make_shared<shared>();
};

/// Collects every progress report (for `job_options::on_progress`), with its JSON.
class progress_log {
public:
  std::function<void(const query_progress&)> callback() {
    return [state = state_](const query_progress& p) {
      std::lock_guard guard{state->mtx};
      state->reports.push_back(p);
      state->json.push_back(p.to_json());
    };
  }
  std::vector<query_progress> reports() const {
    std::lock_guard guard{state_->mtx};
    return state_->reports;
  }
  std::vector<std::string> json() const {
    std::lock_guard guard{state_->mtx};
    return state_->json;
  }

private:
  struct shared {
    std::mutex mtx;
    std::vector<query_progress> reports;
    std::vector<std::string> json;
  };
  std::shared_ptr<shared> state_ = std::make_shared<shared>();
};

inline std::vector<std::int64_t> ids_of(const std::vector<query_progress>& ps) {
  std::vector<std::int64_t> out;
  for (auto& p : ps)
    out.push_back(p.batch_id);
  return out;
}
inline std::vector<std::uint64_t> input_rows_of(const std::vector<query_progress>& ps) {
  std::vector<std::uint64_t> out;
  for (auto& p : ps)
    out.push_back(p.num_input_rows);
  return out;
}

/// Writes `rows` as a JSON-lines file `name` in `dir` the way a producer should: into a
/// dotfile (which the file source skips), then renamed into place in one step.
template <class T>
void drop_file(const temp_dir& dir, const std::string& name, const std::vector<T>& rows) {
  std::string text;
  for (auto& r : rows)
    text += codec::to_json_line(r) + "\n";
  auto tmp = dir.write("." + name + ".tmp", text);
  std::filesystem::rename(tmp, dir.path / name);
}

/// available_now in append mode, checkpoints in `ckpt` and no restart: a batch that fails
/// ends the run, and the next run with the same directory replays it.
inline job_options replay_options(std::string name, const std::filesystem::path& ckpt) {
  job_options o;
  o.name = std::move(name);
  o.trigger = triggers::available_now();
  o.output_mode = output_mode::append;
  o.checkpoints.dir = ckpt;
  o.checkpoints.restart = restart_strategy::none();
  return o;
}

/// What a run that ended by itself left: its result and its recent progress reports.
struct ended_run {
  job_result result;
  std::vector<query_progress> progress;
};

/// Starts `j`, whose trigger ends it by itself (available_now, once): no cancel, the safety
/// timeout only as a net. Returns its result and progress.
inline ended_run run_until_it_ends(job& j) {
  auto exec = require_ok(j.start());
  BOOST_REQUIRE_MESSAGE(exec->wait_for(safety_timeout), "the job did not end by itself");
  auto done = require_ok(exec->wait());
  return {std::move(done), exec->recent_progress()};
}

// -- the windowed word count over four files ----------------------------------------------

/// Four files, one micro-batch each with `max_files_per_trigger = 1`. Tumbling windows of
/// 10 s, watermark delay 5 s (Spark: watermark(N) = max event time of batches < N - 5 s).
///
/// | batch | rows               | watermark | notes                                              |
/// |-------|--------------------|-----------|----------------------------------------------------|
/// | 0     | a@1 b@2 a@4        | 1970      |                                                    |
/// | 1     | a@12 c@13 b@8      | -1        |                                                    |
/// | 2     | a@25 a@15          | 8         |                                                    |
/// | 3     | b@5 x@-2 a@36      | 20        | b@5: end 10 > previous watermark 8, <= own 20;     |
/// |       |                    |           | x@-2: end 0 <= 8, late under both rules;           |
/// |       |                    |           | frees [0,10) and [10,20)                           |
/// | 4     | (no data)          | 31        | append/update only (the watermark moved): frees    |
/// |       |                    |           | [20,30)                                            |
inline std::vector<std::vector<word_event>> word_files() {
  return {{w("a", 1), w("b", 2), w("a", 4)},
          {w("a", 12), w("c", 13), w("b", 8)},
          {w("a", 25), w("a", 15)},
          {w("b", 5), w("x", -2), w("a", 36)}};
}
inline constexpr std::uint64_t word_rows = 11;

inline void write_word_files(const temp_dir& dir) {
  auto files = word_files();
  for (std::size_t i = 0; i < files.size(); ++i)
    drop_file(dir, "00" + std::to_string(i + 1) + ".jsonl", files[i]);
}

/// file source (5 s bounded out-of-orderness) -> key_by(word) -> tumbling 10 s -> count.
template <class Sink>
void word_count_job(job& j, sources::file_options files, Sink sink) {
  j.from(sources::file<word_event>{std::move(files)},
         watermarks::bounded_out_of_orderness<word_event>(5s, ts_of))
    .name("words")
    .key_by(word_of, "word")
    .window(windows::tumbling{.size = 10s})
    .count()
    .name("counts")
    .sink_to(std::move(sink));
}

inline sources::file_options files_in(const temp_dir& dir,
                                      std::optional<std::size_t> max_files = 1) {
  sources::file_options o;
  o.path = dir.path;
  o.max_files_per_trigger = max_files;
  return o;
}

// -- a source that makes triggers observable ----------------------------------------------

/// Counts the triggers the coordinator starts (`begin_trigger` calls) and never has data.
/// A job that adds it next to its real source gives the test a sync point: once the count
/// reached n + 1, trigger n has been decided (and its progress published, if it ran).
struct probe_state {
  std::atomic<int> triggers{0};
};

class probe_source final : public source<int> {
public:
  explicit probe_source(std::shared_ptr<probe_state> st) : st_(std::move(st)) {}
  result<void> open(const source_context&) override { return {}; }
  result<poll_result> poll(source_output<int>&, std::size_t) override {
    return poll_result::idle(1ms);
  }
  result<bool> begin_trigger(bool) override {
    st_->triggers.fetch_add(1, std::memory_order_acq_rel);
    return false;
  }

private:
  std::shared_ptr<probe_state> st_;
};

struct trigger_probe {
  using record_type = int;
  std::shared_ptr<probe_state> state = std::make_shared<probe_state>();
  std::unique_ptr<source<int>> create(const source_context&) const {
    return std::make_unique<probe_source>(state);
  }
  std::string describe() const { return "probe"; }
  int max_parallelism() const { return 1; }
  int triggers() const { return state->triggers.load(std::memory_order_acquire); }
};

/// Moves a processing-time job through its triggers one at a time by its manual clock. The
/// job has `probe` as a source. The clock moves one interval only after the trigger of the
/// last step began, so no two intervals ever merge into one (late) trigger; once trigger
/// n + 1 began, trigger n is decided and its epoch, if any, reported.
class trigger_stepper {
public:
  /// Waits for the first trigger, which fires at the start.
  trigger_stepper(job_execution& exec, manual_clock& clk, const trigger_probe& probe,
                  std::chrono::nanoseconds interval)
      : exec_(exec), clk_(clk), probe_(probe), interval_(interval) {
    BOOST_REQUIRE(wait_until(exec_, [&] { return probe_.triggers() >= 1; }));
  }
  /// Moves the clock one interval on and waits until the next trigger began.
  void step() {
    clk_.advance(interval_);
    ++triggers_;
    BOOST_REQUIRE_MESSAGE(wait_until(exec_, [&] { return probe_.triggers() >= triggers_; }),
                          "trigger " << triggers_ << " did not begin");
  }

private:
  job_execution& exec_;
  manual_clock& clk_;
  const trigger_probe& probe_;
  std::chrono::nanoseconds interval_;
  int triggers_ = 1;
};

// -- a source whose input the test releases -----------------------------------------------

/// Items 0..n-1 of a vector; instance i of p emits items i, i+p, ... but only those with an
/// index below `released`, and ends only after `finish` once it emitted all of its items.
/// `emitted` counts what every instance handed to the runtime, so the test knows when the
/// released items are in the job (ahead of any later barrier).
template <class T>
struct gate_state {
  std::vector<T> items;
  std::atomic<std::size_t> released{0};
  std::atomic<std::size_t> emitted{0};
  std::atomic<bool> finish{false};
};

template <class T>
class gate_source final : public source<T> {
public:
  explicit gate_source(std::shared_ptr<gate_state<T>> st) : st_(std::move(st)) {}
  result<void> open(const source_context& ctx) override {
    next_ = static_cast<std::size_t>(ctx.instance);
    step_ = static_cast<std::size_t>(ctx.parallelism);
    return {};
  }
  result<poll_result> poll(source_output<T>& out, std::size_t max) override {
    const auto limit = std::min(st_->released.load(std::memory_order_acquire), st_->items.size());
    std::size_t n = 0;
    for (; n < max && next_ < limit; ++n, next_ += step_)
      out.records.push_back(st_->items[next_]);
    st_->emitted.fetch_add(n, std::memory_order_acq_rel);
    if (next_ >= st_->items.size() && st_->finish.load(std::memory_order_acquire))
      return poll_result::end();
    return n > 0 ? poll_result::more() : poll_result::idle(200us);
  }

private:
  std::shared_ptr<gate_state<T>> st_;
  std::size_t next_ = 0;
  std::size_t step_ = 1;
};

template <class T>
struct gate {
  using record_type = T;
  std::shared_ptr<gate_state<T>> state;

  explicit gate(std::vector<T> items) : state(std::make_shared<gate_state<T>>()) {
    state->items = std::move(items);
  }
  std::unique_ptr<source<T>> create(const source_context&) const {
    return std::make_unique<gate_source<T>>(state);
  }
  std::string describe() const { return "gate(" + std::to_string(state->items.size()) + ")"; }

  void release(std::size_t upto) { state->released.store(upto, std::memory_order_release); }
  void finish() { state->finish.store(true, std::memory_order_release); }
  std::size_t emitted() const { return state->emitted.load(std::memory_order_acquire); }
};

} // namespace sluice::test::mb
