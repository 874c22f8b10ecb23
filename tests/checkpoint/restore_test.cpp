// Restore: a job stopped midway and started again with the same checkpoint directory
// produces what one uninterrupted run produces; a finished job started again changes
// nothing; micro-batch ids continue across runs.
#include <boost/test/unit_test.hpp>

#include "sluice/api/join.hpp"
#include "sluice/sources/collection.hpp"
#include "sluice/tests/checkpoint/job_helpers.hpp"

#include <algorithm>
#include <mutex>
#include <set>
#include <optional>
#include <string>
#include <thread>
#include <vector>

using namespace sluice;
using namespace sluice::test;
using namespace sluice::test::ckpt;

namespace {

/// The reference: the same job in one run, without checkpoints.
struct reference {
  std::vector<reading> totals;
  std::vector<window_count> windows;
};

reference uninterrupted(std::uint64_t count) {
  temp_dir out;
  generator_job spec{out.path / "totals", out.path / "windows", count};
  auto r = require_ok(spec.run());
  BOOST_REQUIRE(!r.cancelled);
  return {read_committed<reading>(spec.totals), sorted(read_committed<window_count>(spec.windows))};
}

/// `key[start,end)=count`, times in seconds after `base_s`: readable in failure messages.
std::string texts(const std::vector<window_count>& rows) {
  std::string out;
  for (auto& r : rows) {
    auto s = [](event_time t) {
      return std::to_string(
        std::chrono::duration_cast<std::chrono::seconds>(t.time_since_epoch()).count() - base_s);
    };
    out += (out.empty() ? "" : " ") + std::to_string(r.key) + "[" + s(r.start) + "," + s(r.end) +
           ")=" + std::to_string(r.value);
  }
  return "{" + out + "}";
}

// -- the micro-batch job: files -> tumbling window count (append) -> foreach_batch ----------

/// Six files; file f holds, per key k of 0..4, k + 2 rows in [10f, 10f + 10) s and (from the
/// second file on) one row at 10f - 2 s, which belongs to the previous file's window. With
/// 10 s windows and a 5 s delay, batch n (one file each) emits the windows that end at
/// 10(n - 1) s or before, so every window's count spans two files and two batches.
void write_reading_files(const fs::path& dir, int files = 6) {
  for (int f = 0; f < files; ++f) {
    std::vector<reading> rows;
    for (std::int64_t k = 0; k < 5; ++k) {
      for (std::int64_t i = 0; i < k + 2; ++i)
        rows.push_back({k, i, at_ms(f * 10'000 + i * 1'000 + k * 100)});
      if (f > 0)
        rows.push_back({k, 100, at_ms(f * 10'000 - 2'000)});
    }
    char name[16];
    std::snprintf(name, sizeof name, "%03d.jsonl", f);
    drop_file(dir, name, rows);
  }
}

struct file_job {
  fs::path input;
  fs::path checkpoints{};
  std::function<void(const query_progress&)> on_progress{};
  int window_parallelism = 1;

  job_options options() const {
    job_options o;
    o.name = "file-counts";
    o.trigger = triggers::available_now();
    o.output_mode = output_mode::append;
    o.checkpoints.dir = checkpoints;
    o.on_progress = on_progress;
    o.runtime.threads = 4; // a gate blocks one worker
    return o;
  }

  template <class Sink>
  void build(job& j, Sink sink) const {
    sources::file_options files;
    files.path = input;
    files.max_files_per_trigger = 1;
    j.from(sources::file<reading>{files},
           watermarks::bounded_out_of_orderness<reading>(5s, ts_of))
      .name("files")
      .key_by(key_of)
      .window(windows::tumbling{.size = 10s})
      .count()
      .name("counts")
      .parallelism(window_parallelism)
      .sink_to(std::move(sink))
      .name("batches");
  }
};

/// The query ids and run ids of the progress reports seen.
struct id_log {
  std::mutex mtx;
  std::set<std::string> query_ids;
  std::set<std::string> run_ids;
  std::function<void(const query_progress&)> callback() {
    return [this](const query_progress& p) {
      std::lock_guard guard{mtx};
      query_ids.insert(p.id);
      run_ids.insert(p.run_id);
    };
  }
};

} // namespace

BOOST_AUTO_TEST_SUITE(restore)

BOOST_AUTO_TEST_CASE(a_job_cancelled_midway_resumes_and_matches_an_uninterrupted_run) {
  constexpr std::uint64_t n = 20'000;
  const auto ref = uninterrupted(n);
  BOOST_REQUIRE_EQUAL(ref.totals.size(), n); // one running sum per record
  BOOST_TEST((last_per_key(ref.totals) == expected_totals(n)));
  BOOST_REQUIRE(!ref.windows.empty());

  temp_dir dir;
  sync_log log;
  generator_job spec{dir.path / "totals", dir.path / "windows", n};
  spec.checkpoints = dir.path / "ckpt";
  spec.sync_point = log.callback();

  // Run 1: held after 5000 running sums, cancelled there.
  spec.hold = std::make_shared<gate>(5'000);
  const auto first = run_cancelled_at_gate(spec, log);
  BOOST_TEST(first.cancelled);
  BOOST_TEST(!first.restored_from.has_value());
  BOOST_TEST(first.checkpoints_completed == 1); // the cancel's last barrier
  const auto completed = log.ids("completed");
  BOOST_REQUIRE_EQUAL(completed.size(), 1u);
  const auto after_first = read_committed<reading>(spec.totals);
  // The source stopped for lack of credit soon after the gate: midway, whatever the timing.
  BOOST_TEST(after_first.size() >= 5'000u);
  BOOST_TEST(after_first.size() < n);
  BOOST_TEST(hidden_files(spec.totals).empty());

  // Run 2: same directory, runs to the end.
  spec.hold = nullptr;
  auto second = require_ok(spec.run());
  BOOST_TEST(!second.cancelled);
  BOOST_REQUIRE(second.restored_from.has_value());
  BOOST_TEST(*second.restored_from == completed.front());
  BOOST_TEST(second.skipped_checkpoints.empty());
  BOOST_TEST(second.checkpoints_completed >= 1);

  const auto totals = read_committed<reading>(spec.totals);
  BOOST_TEST(totals.size() == n, "every record's running sum exactly once");
  BOOST_TEST((per_key(totals) == per_key(ref.totals)), "each key's sums, in order");
  BOOST_TEST((last_per_key(totals) == expected_totals(n)));
  const auto windows = sorted(read_committed<window_count>(spec.windows));
  BOOST_TEST(windows.size() == ref.windows.size());
  BOOST_TEST((windows == ref.windows), "the window counts equal the uninterrupted run's");
  BOOST_TEST(hidden_files(spec.totals).empty());
  BOOST_TEST(hidden_files(spec.windows).empty());

  // Run 3, after the end: restores the last checkpoint and adds nothing.
  const auto totals_files = listing(spec.totals);
  const auto windows_files = listing(spec.windows);
  const auto last = log.ids("completed").back();
  auto third = require_ok(spec.run());
  BOOST_REQUIRE(third.restored_from.has_value());
  BOOST_TEST(*third.restored_from == last);
  BOOST_TEST((listing(spec.totals) == totals_files), "no new or changed output file");
  BOOST_TEST((listing(spec.windows) == windows_files), "no new or changed output file");
}

BOOST_AUTO_TEST_CASE(periodic_checkpoints_before_the_cancel_change_nothing_in_the_result) {
  // Epochs every 5 ms and a checkpoint on each (interval 0): the run commits many
  // checkpoints before the gate; the cancel still resumes exactly.
  constexpr std::uint64_t n = 20'000;
  const auto ref = uninterrupted(n);
  temp_dir dir;
  sync_log log;
  generator_job spec{dir.path / "totals", dir.path / "windows", n};
  spec.checkpoints = dir.path / "ckpt";
  spec.sync_point = log.callback();
  spec.epoch = 5ms;
  spec.checkpoint_interval = 0ms;
  spec.hold = std::make_shared<gate>(8'000);
  {
    job j{spec.options()};
    spec.build(j);
    auto exec = require_ok(j.start());
    open_at_exit opener{spec.hold};
    BOOST_REQUIRE(spec.hold->wait_reached());
    exec->cancel();
    // Whenever the source takes the cancel, the result must not depend on it.
    spec.hold->release();
    auto first = require_ok(exec->wait());
    BOOST_TEST(first.cancelled);
    BOOST_TEST(first.checkpoints_completed >= 1);
  }
  const auto completed = log.ids("completed");
  BOOST_REQUIRE(!completed.empty());
  spec.hold = nullptr;
  spec.epoch = 1h;
  auto second = require_ok(spec.run());
  BOOST_REQUIRE(second.restored_from.has_value());
  BOOST_TEST(*second.restored_from == completed.back(), "the latest checkpoint");
  const auto totals = read_committed<reading>(spec.totals);
  BOOST_TEST(totals.size() == n);
  BOOST_TEST((per_key(totals) == per_key(ref.totals)));
  BOOST_TEST((sorted(read_committed<window_count>(spec.windows)) == ref.windows));
  BOOST_TEST(hidden_files(spec.totals).empty());
}

BOOST_AUTO_TEST_CASE(every_protocol_step_held_while_the_job_is_cancelled_or_fails_stays_exactly_once) {
  // Each step of the checkpoint protocol is held (a task about to snapshot, a task whose
  // snapshot is written, the coordinator between the durable metadata and the sinks'
  // commit, a sink about to commit) while the rest of the job goes on, and meanwhile the
  // job is cancelled (then started again) or a task fails (a restart within the run). The
  // committed output must be the uninterrupted run's: every record's running sum once, the
  // same window counts.
  constexpr std::uint64_t n = 60'000;
  const auto ref = uninterrupted(n);
  for (const std::string step : {"snapshot", "snapshotted", "completed", "commit"})
    for (const bool cancel : {true, false}) {
      BOOST_TEST_CONTEXT("step " << step << (cancel ? ", cancelled" : ", a task fails")) {
        temp_dir dir;
        sync_log log;
        generator_job spec{dir.path / "totals", dir.path / "windows", n};
        spec.checkpoints = dir.path / "ckpt";
        spec.epoch = 5ms;
        spec.checkpoint_interval = 0ms; // a checkpoint on every epoch
        // Paced, so records still flow after the held step (about 10 ms in) and one of them
        // takes the injected failure: unpaced, the whole input could pass before the hold on
        // a loaded machine, and the failure would never happen.
        spec.rate = 100'000.0;
        spec.fail_next = std::make_shared<std::atomic<bool>>(false);
        auto hold = std::make_shared<step_hold>(step, 1);
        spec.sync_point = hold->callback(log);
        job_result first;
        {
          job j{spec.options()};
          spec.build(j);
          auto exec = require_ok(j.start());
          const auto held = hold->wait_held();
          BOOST_REQUIRE_MESSAGE(held, "the job never reached the step");
          if (cancel)
            exec->cancel();
          else
            spec.fail_next->store(true);
          hold->release();
          first = require_ok(exec->wait());
        }
        if (cancel) {
          BOOST_TEST(first.cancelled);
          spec.sync_point = log.callback();
          auto second = require_ok(spec.run());
          BOOST_TEST(second.restored_from.has_value());
        } else {
          BOOST_TEST(!first.cancelled);
          BOOST_TEST(!spec.fail_next->load(), "a record after the held step took the failure");
          BOOST_TEST(first.restarts == 1, "the injected failure restarted the job once");
        }
        const auto totals = read_committed<reading>(spec.totals);
        BOOST_TEST(totals.size() == n, "every record's running sum exactly once");
        BOOST_TEST((per_key(totals) == per_key(ref.totals)));
        BOOST_TEST((sorted(read_committed<window_count>(spec.windows)) == ref.windows));
        BOOST_TEST(hidden_files(spec.totals).empty());
        BOOST_TEST(hidden_files(spec.windows).empty());
      }
    }
}

BOOST_AUTO_TEST_CASE(stop_with_savepoint_then_resume_matches_an_uninterrupted_run) {
  constexpr std::uint64_t n = 20'000;
  const auto ref = uninterrupted(n);
  temp_dir dir;
  sync_log log;
  generator_job spec{dir.path / "totals", dir.path / "windows", n};
  spec.checkpoints = dir.path / "ckpt";
  spec.sync_point = log.callback();
  spec.hold = std::make_shared<gate>(5'000);
  std::int64_t savepoint = -1;
  {
    job j{spec.options()};
    spec.build(j);
    auto exec = require_ok(j.start());
    open_at_exit opener{spec.hold};
    BOOST_REQUIRE(spec.hold->wait_reached());
    std::optional<result<std::int64_t>> taken;
    std::thread t{[&] { taken.emplace(exec->savepoint(true)); }};
    const bool snapshotted = log.wait_for("snapshot"); // the request was taken
    spec.hold->release();
    t.join();
    BOOST_REQUIRE(snapshotted);
    BOOST_REQUIRE(taken.has_value());
    savepoint = require_ok(std::move(*taken));
    auto r = require_ok(exec->wait());
    BOOST_TEST(r.cancelled, "stopped by the savepoint");
  }
  // At least what passed the gate before the savepoint's barrier; the sources stop only once
  // the savepoint completed, so how much more depends on timing.
  BOOST_TEST(read_committed<reading>(spec.totals).size() >= 5'000u);
  const auto completed = log.ids("completed"); // the savepoint, then the sources' last barrier
  BOOST_REQUIRE(!completed.empty());
  BOOST_TEST(completed.front() == savepoint);

  spec.hold = nullptr;
  auto second = require_ok(spec.run());
  BOOST_REQUIRE(second.restored_from.has_value());
  BOOST_TEST(*second.restored_from == completed.back());
  const auto totals = read_committed<reading>(spec.totals);
  BOOST_TEST(totals.size() == n, "every record's running sum exactly once");
  BOOST_TEST((per_key(totals) == per_key(ref.totals)));
  BOOST_TEST((sorted(read_committed<window_count>(spec.windows)) == ref.windows));
}

BOOST_AUTO_TEST_CASE(micro_batch_ids_continue_after_a_cancel) {
  temp_dir input;
  write_reading_files(input.path);

  // The reference: one run without checkpoints.
  batch_log<window_count> ref;
  {
    file_job spec{input.path};
    job j{spec.options()};
    spec.build(j, ref.sink());
    require_ok(j.run());
  }
  const auto ref_ids = ref.ids();
  BOOST_TEST(ref_ids == (std::vector<std::int64_t>{0, 1, 2, 3, 4, 5, 6}),
             boost::test_tools::per_element()); // six files, then the watermark's epoch
  const auto ref_rows = ref.by_id();
  BOOST_REQUIRE(!ref_rows.at(3).empty());

  temp_dir dir;
  id_log ids;
  file_job spec{input.path, dir.path / "ckpt", ids.callback()};

  // Run 1: the sink holds batch 2; cancel() then lets it finish, and no later batch runs.
  batch_log<window_count> one;
  {
    auto hold = std::make_shared<gate>(1);
    job j{spec.options()};
    spec.build(j, one.sink(hold, 2));
    auto r = cancel_at_gate(j, hold);
    BOOST_TEST(r.cancelled);
    BOOST_TEST(r.checkpoints_completed == 3);
  }
  BOOST_TEST(one.ids() == (std::vector<std::int64_t>{0, 1, 2}), boost::test_tools::per_element());

  // Run 2 continues with batch 3.
  batch_log<window_count> two;
  {
    job j{spec.options()};
    spec.build(j, two.sink());
    auto r = require_ok(j.run());
    BOOST_TEST(!r.cancelled);
    BOOST_REQUIRE(r.restored_from.has_value());
    BOOST_TEST(*r.restored_from == 2);
    BOOST_TEST(r.checkpoints_completed == 4);
  }
  BOOST_TEST(two.ids() == (std::vector<std::int64_t>{3, 4, 5, 6}), boost::test_tools::per_element());

  auto rows = one.by_id();
  for (auto& [id, r] : two.by_id())
    BOOST_TEST(rows.emplace(id, r).second, "batch " << id << " in both runs");
  BOOST_TEST(rows.size() == ref_rows.size());
  for (auto& [id, r] : ref_rows)
    BOOST_TEST((rows[id] == r), "batch " << id << " rows equal the uninterrupted run's: got "
                                         << texts(rows[id]) << ", expected " << texts(r));
  {
    std::lock_guard guard{ids.mtx};
    BOOST_TEST(ids.query_ids.size() == 1u, "the query id survives the restart");
    BOOST_TEST(ids.run_ids.size() == 2u, "each run has its own run id");
  }

  // Run 3, after the end: nothing to do, no batch.
  batch_log<window_count> three;
  {
    job j{spec.options()};
    spec.build(j, three.sink());
    auto r = require_ok(j.run());
    BOOST_REQUIRE(r.restored_from.has_value());
    BOOST_TEST(*r.restored_from == 6);
    BOOST_TEST(r.checkpoints_completed == 0);
  }
  BOOST_TEST(three.ids().empty());
}

BOOST_AUTO_TEST_CASE(late_rows_stay_late_after_a_restore_in_every_instance) {
  // Two window instances; every row up to the checkpoint has key 1000, so one instance has
  // no window state at all when batch 1's checkpoint is taken. Batch 2 brings rows at 50 s
  // for keys 0-19: their window [50,60) ended before the previous watermark (95 s), so
  // Spark's rule drops them in every instance, restored or not.
  temp_dir input;
  drop_file<reading>(input.path, "000.jsonl", {{1000, 1, at_ms(0)}, {1000, 1, at_ms(100'000)}});
  drop_file<reading>(input.path, "001.jsonl", {{1000, 1, at_ms(101'000)}});
  std::vector<reading> late{{1000, 1, at_ms(102'000)}};
  for (std::int64_t k = 0; k < 20; ++k)
    late.push_back({k, 1, at_ms(50'000)});
  drop_file(input.path, "002.jsonl", late);

  batch_log<window_count> ref;
  {
    file_job spec{input.path};
    spec.window_parallelism = 2;
    job j{spec.options()};
    spec.build(j, ref.sink());
    require_ok(j.run());
  }
  const auto ref_rows = ref.by_id();
  BOOST_REQUIRE_EQUAL(ref_rows.size(), 4u); // three files, then the watermark's epoch
  BOOST_REQUIRE_EQUAL(ref_rows.at(1).size(), 1u); // 1000[0,10)=1
  BOOST_REQUIRE(ref_rows.at(2).empty());          // the late rows were dropped

  temp_dir dir;
  file_job spec{input.path, dir.path / "ckpt"};
  spec.window_parallelism = 2;
  batch_log<window_count> one;
  {
    auto hold = std::make_shared<gate>(1);
    job j{spec.options()};
    spec.build(j, one.sink(hold, 1));
    BOOST_TEST(cancel_at_gate(j, hold).cancelled);
  }
  batch_log<window_count> two;
  {
    job j{spec.options()};
    spec.build(j, two.sink());
    auto r = require_ok(j.run());
    BOOST_REQUIRE(r.restored_from.has_value());
    BOOST_TEST(*r.restored_from == 1);
  }
  auto rows = one.by_id();
  for (auto& [id, r] : two.by_id())
    rows[id] = r;
  BOOST_TEST(rows.size() == ref_rows.size());
  for (auto& [id, r] : ref_rows)
    BOOST_TEST((rows[id] == r), "batch " << id << ": got " << texts(rows[id]) << ", expected "
                                         << texts(r));
}

BOOST_AUTO_TEST_CASE(a_finished_micro_batch_job_runs_no_batch_when_started_again) {
  // available_now over a bounded generator or collection: 5 batches of 100. Started again
  // on the same directory, the source is restored at its end: nothing to read, no batch.
  std::vector<reading> items;
  for (std::uint64_t n = 0; n < 500; ++n)
    items.push_back(make_reading(n));
  for (const bool generator : {true, false}) {
    BOOST_TEST_CONTEXT((generator ? "generator" : "collection")) {
      temp_dir dir;
      auto run = [&](batch_log<reading>& log) {
        job_options o;
        o.name = "generated";
        o.trigger = triggers::available_now();
        o.checkpoints.dir = dir.path / "ckpt";
        o.runtime.batch_size = 100;
        o.runtime.max_records_per_trigger = 100;
        job j{o};
        auto keyed = [&](auto s) {
          s.name("readings")
            .key_by(key_of)
            .reduce(sum_values)
            .name("totals")
            .sink_to(log.sink())
            .name("batches");
        };
        if (generator)
          keyed(j.from(sources::generator({.count = 500}, make_reading)));
        else
          keyed(j.from(sources::collection<reading>{items}));
        return require_ok(j.run());
      };
      batch_log<reading> first;
      run(first);
      BOOST_TEST(first.ids() == (std::vector<std::int64_t>{0, 1, 2, 3, 4}),
                 boost::test_tools::per_element());
      batch_log<reading> again;
      auto r = run(again);
      BOOST_REQUIRE(r.restored_from.has_value());
      BOOST_TEST(*r.restored_from == 4);
      BOOST_TEST(again.ids().empty(), again.ids().size() << " batches");
      BOOST_TEST(r.checkpoints_completed == 0);
    }
  }
}

BOOST_AUTO_TEST_CASE(deduplication_state_survives_a_restore_at_another_parallelism) {
  temp_dir input;
  write_reading_files(input.path);
  // Every file repeats each (key, value) of the first: within the 30 s reach of the
  // watermark they are duplicates (dropped after the restore only if the state came back),
  // later they pass again.
  auto build = [&](job& j, int parallelism, auto sink) {
    sources::file_options files;
    files.path = input.path;
    files.max_files_per_trigger = 1;
    j.from(sources::file<reading>{files}, watermarks::bounded_out_of_orderness<reading>(5s, ts_of))
      .name("files")
      .drop_duplicates_within_watermark([](const reading& r) { return r.key * 1000 + r.value; },
                                        30s)
      .name("dedup")
      .parallelism(parallelism)
      .sink_to(std::move(sink))
      .name("batches");
  };
  const auto ref = expect_split_run_matches<reading>(build, 2, 1, 3);
  std::size_t passed = 0;
  for (auto& [id, rows] : ref)
    passed += rows.size();
  BOOST_TEST(passed < 145u, "of 145 rows some are duplicates"); // 20 + 5 files of 25
}

BOOST_AUTO_TEST_CASE(session_windows_survive_a_restore_at_another_parallelism) {
  temp_dir input;
  write_reading_files(input.path);
  // A gap of 3 s: each key's rows of one file form a session, and the row 2 s before the
  // next file's start extends the previous file's session, across batches.
  auto build = [&](job& j, int parallelism, auto sink) {
    sources::file_options files;
    files.path = input.path;
    files.max_files_per_trigger = 1;
    j.from(sources::file<reading>{files}, watermarks::bounded_out_of_orderness<reading>(5s, ts_of))
      .name("files")
      .key_by(key_of)
      .window(windows::session{.gap = 3s})
      .count()
      .name("sessions")
      .parallelism(parallelism)
      .sink_to(std::move(sink))
      .name("batches");
  };
  const auto ref = expect_split_run_matches<window_count>(build, 2, 1, 3);
  std::size_t merged = 0;
  for (auto& [id, rows] : ref)
    for (auto& w : rows)
      merged += w.value > static_cast<std::uint64_t>(w.key) + 2 ? 1 : 0;
  BOOST_TEST(merged > 0u, "some sessions span two files");
}

BOOST_AUTO_TEST_CASE(interval_join_buffers_survive_a_restore_at_another_parallelism) {
  // Left file f: keys 0..4 at f*10 s; right file f: the same keys 8 s later than left file
  // f-1's rows, so every match joins rows of two different batches through the buffers.
  temp_dir left, right;
  for (int f = 0; f < 5; ++f) {
    std::vector<reading> l, r;
    for (std::int64_t k = 0; k < 5; ++k) {
      l.push_back({k, f, at_ms(f * 10'000 + k * 100)});
      if (f > 0)
        r.push_back({k, 100 + f, at_ms((f - 1) * 10'000 + 2'000 + k * 100)});
    }
    char name[16];
    std::snprintf(name, sizeof name, "%03d.jsonl", f);
    drop_file(left.path, name, l);
    drop_file(right.path, name, r);
  }
  std::atomic<int> matches{0};
  auto build = [&](job& j, int parallelism, auto sink) {
    auto files = [](const fs::path& dir) {
      sources::file_options o;
      o.path = dir;
      o.max_files_per_trigger = 1;
      return sources::file<reading>{o};
    };
    auto l = j.from(files(left.path), watermarks::bounded_out_of_orderness<reading>(20s, ts_of))
               .name("left");
    auto r = j.from(files(right.path), watermarks::bounded_out_of_orderness<reading>(20s, ts_of))
               .name("right");
    l.key_by(key_of)
      .interval_join(r.key_by(key_of))
      .between(-5s, 5s)
      .apply([&matches](const reading& a, const reading& b) {
        ++matches;
        return std::to_string(a.key) + ":" + std::to_string(a.value) + "+" + std::to_string(b.value);
      })
      .name("join")
      .parallelism(parallelism)
      .sink_to(std::move(sink))
      .name("batches");
  };
  expect_split_run_matches<std::string>(build, 1, 1, 3);
  // Each right row meets the left row of its key 8 s earlier: 20 matches in the reference,
  // 20 more over the two split runs.
  BOOST_TEST(matches.load() == 40);
}

BOOST_AUTO_TEST_CASE(restore_from_picks_an_older_checkpoint) {
  temp_dir input;
  write_reading_files(input.path, 3);
  temp_dir dir;
  file_job spec{input.path, dir.path / "ckpt"};
  batch_log<window_count> one;
  {
    job j{spec.options()};
    spec.build(j, one.sink());
    auto r = require_ok(j.run());
    BOOST_TEST(r.checkpoints_completed == 4); // three files and the watermark's epoch
  }
  const auto first = one.by_id();

  // From checkpoint 1: batches 2 and 3 run again, with the same rows.
  batch_log<window_count> two;
  {
    auto o = spec.options();
    o.checkpoints.restore_from = 1;
    job j{o};
    spec.build(j, two.sink());
    auto r = require_ok(j.run());
    BOOST_REQUIRE(r.restored_from.has_value());
    BOOST_TEST(*r.restored_from == 1);
  }
  BOOST_TEST(two.ids() == (std::vector<std::int64_t>{2, 3}), boost::test_tools::per_element());
  for (auto& [id, rows] : two.by_id())
    BOOST_TEST((rows == first.at(id)),
               "batch " << id << ": got " << texts(rows) << ", expected " << texts(first.at(id)));

  // The newer checkpoints of the abandoned history are gone: a run that fails before it
  // completes anything new, then restarts, resumes from 1 again, never from the old 3.
  {
    auto o = spec.options();
    o.checkpoints.restore_from = 1;
    o.checkpoints.restart = restart_strategy::none();
    job j{o};
    spec.build(j, sinks::foreach_batch<window_count>([](std::int64_t id, std::vector<window_count>&) {
      if (id == 2)
        throw std::runtime_error("sink down");
    }));
    auto e = require_error(j.run());
    BOOST_TEST(mentions(e.message, "sink down"), e.message);
  }
  batch_log<window_count> three;
  {
    job j{spec.options()};
    spec.build(j, three.sink());
    auto r = require_ok(j.run());
    BOOST_REQUIRE(r.restored_from.has_value());
    BOOST_TEST(*r.restored_from == 1);
  }
  BOOST_TEST(three.ids() == (std::vector<std::int64_t>{2, 3}), boost::test_tools::per_element());
  for (auto& [id, rows] : three.by_id())
    BOOST_TEST((rows == first.at(id)), "batch " << id);

  // A checkpoint that does not exist is an error naming it.
  auto o = spec.options();
  o.checkpoints.restore_from = 42;
  job j{o};
  batch_log<window_count> none;
  spec.build(j, none.sink());
  auto e = require_error(j.run());
  BOOST_TEST(mentions(e.message, "42"), e.message);
  BOOST_TEST(none.ids().empty());
}

BOOST_AUTO_TEST_SUITE_END()
