// Checkpoints of keyed process functions in whole jobs: a job stopped at a checkpoint
// (cancelled, or failed and restarted) resumes with state and timers and emits exactly the
// output of one uninterrupted run, also when the restarted job has another parallelism;
// state types that changed or cannot be encoded fail naming operator and state.
//
// Processing time comes from a manual clock that stands still while records flow, so a
// processing-time timer fires only when the test moves the clock, once every record has
// been processed: what it emits does not depend on thread timing.
#include <boost/test/unit_test.hpp>

#include "sluice/operators/keyed_process.hpp"
#include "sluice/sinks/memory.hpp"
#include "sluice/sources/collection.hpp"
#include "sluice/tests/checkpoint/job_helpers.hpp"
#include "sluice/tests/checkpoint/keyed_process_tally.hpp"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

using namespace sluice;
using namespace sluice::test;
using namespace sluice::test::ckpt;

namespace {

/// Records `make_tick(0..n-1)` stamped with the incarnation, replayable. It pauses before
/// `pause_at` until `progress->resume`, and after the last record it waits for
/// `progress->end`: so the test moves the clock only once every record was processed.
class tick_source final : public source<tick> {
public:
  tick_source(std::uint64_t n, std::uint64_t pause_at, std::shared_ptr<run_progress> p)
    : n_(n), pause_at_(pause_at), p_(std::move(p)) {}
  result<void> open(const source_context&) override {
    p_->update([&] {
      gen_ = ++p_->gen;
      p_->start = p_->seen = p_->fired = 0;
    });
    return {};
  }
  result<poll_result> poll(source_output<tick>& out, std::size_t max) override {
    bool resume = false, end = false;
    {
      std::lock_guard guard{p_->mtx};
      resume = p_->resume;
      end = p_->end;
    }
    const auto limit = resume ? n_ : std::min(pause_at_, n_);
    std::size_t k = 0;
    for (; k < max && next_ < limit; ++k, ++next_)
      out.records.push_back(make_tick(next_, gen_));
    if (k > 0)
      return poll_result::more();
    if (next_ >= n_ && end)
      return poll_result::end();
    return poll_result::idle(std::chrono::milliseconds{1});
  }
  std::optional<std::string> position() const override { return std::to_string(next_); }
  result<void> seek(std::string_view pos) override {
    next_ = std::stoull(std::string{pos});
    p_->update([&] { p_->start = next_; });
    return {};
  }

private:
  std::uint64_t n_;
  std::uint64_t pause_at_;
  std::shared_ptr<run_progress> p_;
  std::uint64_t next_ = 0;
  std::int64_t gen_ = 0;
};

struct ticks {
  using record_type = tick;
  std::uint64_t n;
  std::uint64_t pause_at;
  std::shared_ptr<run_progress> progress;
  std::unique_ptr<source<tick>> create(const source_context&) const {
    return std::make_unique<tick_source>(n, pause_at, progress);
  }
  std::string describe() const { return "ticks"; }
  int max_parallelism() const { return 1; }
};

constexpr std::uint64_t job_records = 4'000;

/// ticks -> check (may hold or throw) -> key_by -> tally -> transactional file sink.
struct tally_job {
  fs::path out;
  fs::path checkpoints{};
  int parallelism = 1; ///< of tally and the sink
  std::shared_ptr<manual_clock> clock = std::make_shared<manual_clock>();
  std::shared_ptr<run_progress> progress = std::make_shared<run_progress>();
  std::uint64_t pause_at = job_records;
  std::shared_ptr<gate> hold{};
  std::uint64_t fail_at = job_records; ///< none
  std::shared_ptr<std::atomic<bool>> failed = std::make_shared<std::atomic<bool>>(false);
  sluice::trigger trigger = triggers::continuous(std::chrono::hours{1});
  restart_strategy restart = restart_strategy::none();
  std::function<void(const char*, std::int64_t)> sync_point{};

  job_options options() const {
    job_options o;
    o.name = "tallies";
    o.parallelism = parallelism;
    o.trigger = trigger;
    o.checkpoints.dir = checkpoints;
    o.checkpoints.interval = std::chrono::milliseconds{0};
    o.checkpoints.restart = restart;
    o.runtime.batch_size = 128;
    o.runtime.threads = 4; // a gate blocks one worker
    o.runtime.sync_point = sync_point;
    o.runtime.processing_clock = clock;
    return o;
  }

  void build(job& j) const {
    auto g = hold;
    auto fail = fail_at;
    auto once = failed;
    j.from(ticks{job_records, pause_at, progress},
           watermarks::bounded_out_of_orderness<tick>(duration{0}, tick_ts))
      .name("ticks")
      .parallelism(1)
      .map([g, fail, once](const tick& t) {
        if (g)
          g->pass();
        if (t.seq == fail && !once->exchange(true))
          throw std::runtime_error("poison record " + std::to_string(fail));
        return t;
      })
      .name("check")
      .parallelism(1)
      .disable_chaining() // a map that waits must not hold up the source's task
      .key_by(tick_key)
      .process(tally{progress})
      .name("tally")
      .sink_to(sinks::file<fired>{{.path = out, .transactional = true}})
      .name("out");
  }

  /// Waits until the current incarnation (`gen`) processed every record, moves the clock
  /// past the processing-time timers, waits until one fired per key, lets the source end.
  result<job_result> finish(job_execution& exec, std::int64_t gen) const {
    const bool all_seen = progress->wait([&] {
      return progress->gen == gen && progress->seen == job_records - progress->start;
    });
    BOOST_REQUIRE_MESSAGE(all_seen, "the job never processed every record");
    clock->advance(std::chrono::hours{1});
    const bool all_fired = progress->wait([&] {
      return progress->fired == static_cast<std::uint64_t>(tick_keys);
    });
    BOOST_REQUIRE_MESSAGE(all_fired, "the processing-time timers never fired");
    progress->update([&] { progress->end = true; });
    return exec.wait();
  }

  /// A run to the end.
  job_result run_to_end(std::int64_t gen = 1) const {
    progress->update([&] { progress->resume = true; });
    job j{options()};
    build(j);
    auto exec = require_ok(j.start());
    return require_ok(finish(*exec, gen));
  }

  /// A run held by `hold`, cancelled there (the cancel's barrier is its checkpoint).
  job_result run_cancelled(sync_log& log) const {
    progress->update([&] { progress->resume = true; });
    job j{options()};
    build(j);
    return cancel_at_gate(j, hold, &log);
  }
};

/// What the function must emit: per key and bucket the bucket's sum, and per key one
/// processing-time row with the total and the sum of the last three values.
std::vector<fired> expected_rows() {
  std::map<std::pair<std::int64_t, std::int64_t>, std::int64_t> buckets;
  std::map<std::int64_t, std::vector<std::int64_t>> values;
  for (std::uint64_t i = 0; i < job_records; ++i) {
    const auto t = make_tick(i);
    buckets[{t.key, ms_after_base(t.ts) / 1000 * 1000}] += t.value;
    values[t.key].push_back(t.value);
  }
  std::vector<fired> out;
  for (auto& [kb, sum] : buckets)
    out.push_back({kb.first, 0, kb.second, sum, 0});
  for (auto& [key, vs] : values) {
    std::int64_t total = 0, last = 0;
    for (auto v : vs)
      total += v;
    for (std::size_t i = vs.size() >= 3 ? vs.size() - 3 : 0; i < vs.size(); ++i)
      last += vs[i];
    out.push_back({key, 1, clock_ms(job_timer_at), total, last});
  }
  return sorted(out);
}

/// The uninterrupted run, without checkpoints, once per test binary.
const std::vector<fired>& reference_rows() {
  static const std::vector<fired> rows = [] {
    temp_dir dir;
    tally_job spec{dir.path / "out"};
    spec.run_to_end();
    return sorted(read_committed<fired>(spec.out));
  }();
  return rows;
}

/// Runs the job at each parallelism in turn on one checkpoint directory, cancelling every
/// run but the last at its gate; returns the committed rows.
std::vector<fired> run_sequence(const std::vector<int>& parallelisms, std::uint64_t hold_at) {
  temp_dir dir;
  sync_log log;
  tally_job spec{dir.path / "out", dir.path / "ckpt"};
  spec.sync_point = log.callback();
  std::optional<std::int64_t> previous;
  for (std::size_t i = 0; i < parallelisms.size(); ++i) {
    BOOST_TEST_CONTEXT("run " << i + 1 << " at parallelism " << parallelisms[i]) {
      spec.parallelism = parallelisms[i];
      spec.progress = std::make_shared<run_progress>(); // the clock carries on
      const bool last = i + 1 == parallelisms.size();
      spec.hold = last ? nullptr : std::make_shared<gate>(hold_at);
      const auto r = last ? spec.run_to_end() : spec.run_cancelled(log);
      BOOST_TEST(r.cancelled == !last);
      BOOST_TEST((r.restored_from == previous), "restored from the previous run's checkpoint");
      BOOST_TEST(r.skipped_checkpoints.empty());
      const auto completed = log.ids("completed");
      BOOST_REQUIRE(!completed.empty());
      previous = completed.back();
      if (!last) {
        const auto seen = spec.progress->seen;
        BOOST_TEST(seen < job_records, "stopped midway: " << seen << " records");
      }
      BOOST_TEST(hidden_files(spec.out).empty());
    }
  }
  return sorted(read_committed<fired>(spec.out));
}

} // namespace

BOOST_AUTO_TEST_SUITE(keyed_process_checkpoint_jobs)

BOOST_AUTO_TEST_CASE(the_uninterrupted_run_emits_every_bucket_and_timer_once) {
  const auto& ref = reference_rows();
  BOOST_TEST(ref == expected_rows(), boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(a_job_cancelled_at_a_checkpoint_resumes_with_state_and_timers) {
  const auto got = run_sequence({1, 1}, 1'500);
  BOOST_TEST(got == reference_rows(), boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(rescaling_from_1_to_2_and_from_2_to_1_matches_one_uninterrupted_run) {
  BOOST_TEST_CONTEXT("1 -> 2") {
    const auto got = run_sequence({1, 2}, 1'500);
    BOOST_TEST(got == reference_rows(), boost::test_tools::per_element());
  }
  BOOST_TEST_CONTEXT("2 -> 1") {
    const auto got = run_sequence({2, 1}, 2'000);
    BOOST_TEST(got == reference_rows(), boost::test_tools::per_element());
  }
}

BOOST_AUTO_TEST_CASE(a_failure_after_a_checkpoint_restarts_from_it_with_state_and_timers) {
  // The source stops after half the records; the clock moves in 1 s steps until an epoch's
  // checkpoint completed; then the source goes on and the first record of the second half
  // throws. The restart restores state and timers from that checkpoint.
  temp_dir dir;
  sync_log log;
  tally_job spec{dir.path / "out", dir.path / "ckpt"};
  spec.sync_point = log.callback();
  spec.pause_at = job_records / 2;
  spec.fail_at = job_records / 2;
  spec.trigger = triggers::continuous(std::chrono::seconds{1});
  spec.restart = restart_strategy::fixed(3, std::chrono::milliseconds{10});
  job j{spec.options()};
  spec.build(j);
  auto exec = require_ok(j.start());
  BOOST_REQUIRE(spec.progress->wait([&] { return spec.progress->seen == job_records / 2; }));
  for (int i = 0; i < 300 && !log.wait_for("completed", 1, std::chrono::milliseconds{100}); ++i)
    spec.clock->advance(std::chrono::seconds{1}); // stays far before the timers' 10 min
  BOOST_REQUIRE_MESSAGE(log.count("completed") >= 1, "no checkpoint completed");
  spec.progress->update([&] { spec.progress->resume = true; });
  auto r = require_ok(spec.finish(*exec, 2));
  BOOST_TEST(spec.failed->load());
  BOOST_TEST(r.restarts == 1);
  BOOST_TEST(spec.progress->start > 0u, "the restart resumed from a checkpoint, not from scratch");
  const auto got = sorted(read_committed<fired>(spec.out));
  BOOST_TEST(got == reference_rows(), boost::test_tools::per_element());
  BOOST_TEST(hidden_files(spec.out).empty());
}

// The micro-batch file job of the error cases: files -> key_by -> process "tally" ->
// foreach_batch.
template <class F>
result<job_result> run_files(const fs::path& input, const fs::path& ckpt, F fn,
                             std::optional<std::int64_t> restore_from = std::nullopt) {
  job_options o;
  o.name = "files";
  o.trigger = triggers::available_now();
  o.checkpoints.dir = ckpt;
  o.checkpoints.restore_from = restore_from;
  o.checkpoints.restart = restart_strategy::none();
  job j{o};
  batch_log<fired> log;
  sources::file_options files;
  files.path = input;
  files.max_files_per_trigger = 1;
  j.from(sources::file<reading>{files})
    .name("files")
    .key_by(key_of)
    .process(std::move(fn))
    .name("tally")
    .sink_to(log.sink())
    .name("batches");
  return j.run();
}

BOOST_AUTO_TEST_CASE(a_state_whose_type_changed_since_the_checkpoint_fails_by_name) {
  using ctx_t = keyed_process_context<std::int64_t>;
  struct counts {
    state_descriptor<value_state<std::int64_t>> total{"total"};
    void on_element(const reading& r, ctx_t& ctx, collector<fired>&) {
      ctx.state(total).update(ctx.state(total).value_or(0) + r.value);
    }
  };
  struct counts_as_text {
    state_descriptor<value_state<std::string>> total{"total"};
    void on_element(const reading& r, ctx_t& ctx, collector<fired>&) {
      ctx.state(total).update(std::to_string(r.value));
    }
  };
  temp_dir dir;
  drop_file<reading>(dir.path / "in", "0.jsonl", {{1, 1, at_ms(0)}, {2, 2, at_ms(1)}});
  drop_file<reading>(dir.path / "in", "1.jsonl", {{1, 3, at_ms(2)}});
  const auto first = require_ok(run_files(dir.path / "in", dir.path / "ckpt", counts{}));
  BOOST_TEST(first.checkpoints_completed == 2);
  // From checkpoint 0 the second file runs again, with the state read as text.
  auto e = require_error(run_files(dir.path / "in", dir.path / "ckpt", counts_as_text{}, 0));
  BOOST_TEST(mentions(e.message, "operator 'tally'"), e.message);
  BOOST_TEST(mentions(e.message, "key group"), e.message);
  BOOST_TEST(mentions(e.message, "state 'total'"), e.message);
  BOOST_TEST(mentions(e.message, "checkpoint 0"), e.message);
}

BOOST_AUTO_TEST_CASE(a_state_type_without_inspect_fails_at_first_use_with_checkpoints) {
  struct opaque {
    std::int64_t n = 0;
  };
  struct keeps_opaque {
    void on_element(const reading& r, keyed_process_context<std::int64_t>& ctx, collector<fired>&) {
      ctx.value_state<opaque>("blob").update(opaque{r.value});
    }
  };
  temp_dir dir;
  drop_file<reading>(dir.path / "in", "0.jsonl", {{1, 1, at_ms(0)}});
  auto e = require_error(run_files(dir.path / "in", dir.path / "ckpt", keeps_opaque{}));
  BOOST_TEST((e.code == error_code::invalid_option));
  BOOST_TEST(mentions(e.message, "'tally'"), e.message);
  BOOST_TEST(mentions(e.message, "state 'blob'"), e.message);
  BOOST_TEST(mentions(e.message, "inspect()"), e.message);
}

BOOST_AUTO_TEST_CASE(a_keyed_co_process_has_no_keyed_state_and_runs_with_checkpoints) {
  // keyed.connect_process gives its function a keyed_context only (no state, no timers):
  // there is nothing to snapshot, so a job with checkpoints takes it.
  struct co {
    void process_element1(const reading& a, keyed_context<std::int64_t>& ctx,
                          collector<reading>& out) {
      out.collect({ctx.current_key(), a.value, a.ts});
    }
    void process_element2(const reading& b, keyed_context<std::int64_t>& ctx,
                          collector<reading>& out) {
      out.collect({ctx.current_key(), -b.value, b.ts});
    }
  };
  temp_dir dir;
  job_options o;
  o.checkpoints.dir = dir.path / "ckpt";
  job j{o};
  sinks::collect<reading> out;
  auto a = j.from(sources::collection<reading>{{{1, 1, at_ms(0)}, {2, 2, at_ms(1)}}})
             .name("a")
             .key_by(key_of);
  auto b = j.from(sources::collection<reading>{{{1, 5, at_ms(2)}}}).name("b").key_by(key_of);
  a.connect_process(b, co{}).name("both").parallelism(2).sink_to(out).name("out");
  auto r = require_ok(j.run());
  BOOST_TEST(r.checkpoints_completed >= 1);
  BOOST_TEST(out.size() == 3u);
}

BOOST_AUTO_TEST_SUITE_END()
