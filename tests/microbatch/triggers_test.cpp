// Triggers that run on a clock: processing_time micro-batches over a watched directory,
// and continuous epochs cut by barriers while records flow. The clock is a manual_clock;
// the test sources (microbatch_helpers.hpp) make every step observable, so nothing here
// depends on how long anything takes.
#include <boost/test/unit_test.hpp>

#include "microbatch_helpers.hpp"

#include "sluice/api/job.hpp"
#include "sluice/operators/window/window_operator.hpp"
#include "sluice/sinks/callback.hpp"

#include <map>
#include <memory>
#include <string>
#include <vector>

using namespace sluice;
using namespace sluice::test;
using namespace sluice::test::mb;

// -- processing_time -----------------------------------------------------------------------

BOOST_AUTO_TEST_SUITE(processing_time)

BOOST_AUTO_TEST_CASE(epochs_run_for_new_files_and_for_a_moved_watermark_only) {
  temp_dir dir;
  // A file still being written (a dotfile): never read, so it never makes an epoch.
  dir.write(".002.jsonl.tmp", codec::to_json_line(w("hidden", 1)) + "\n");
  auto clk = std::make_shared<manual_clock>();
  batch_log<word_count> log;
  trigger_probe probe;
  job_options o;
  o.name = "watch";
  o.trigger = triggers::processing_time(10s);
  o.output_mode = output_mode::append;
  o.runtime.processing_clock = clk;
  job j{o};
  auto files = files_in(dir, std::nullopt);
  files.watch = true;
  files.poll_interval = 1ms;
  word_count_job(j, files, log.sink());
  // The probe counts the triggers: once it saw trigger n + 1, trigger n is decided.
  j.from(probe).name("probe").sink_to(sinks::for_each<int>([](int) {}));
  auto exec = require_ok(j.start());
  trigger_stepper triggers{*exec, *clk, probe, 10s}; // one trigger per step
  auto step = [&] { triggers.step(); };

  // t = 0, 10: nothing there, no epoch (the trigger at 20 shows both decided).
  step();
  step();
  BOOST_TEST(exec->recent_progress().empty(), "the first two triggers found no input");
  BOOST_TEST(log.size() == 0u);

  // A file appears; the trigger at 20 or the one at 30 reads it (whichever scans after the
  // rename). Max event time 16: the watermark becomes 11. The trigger after that finds no new
  // file, but the watermark moved (1970 -> 11): append needs a no-data epoch to emit [0,10).
  // Then nothing is new and the watermark stays: no epoch.
  drop_file(dir, "001.jsonl", std::vector<word_event>{w("a", 1), w("b", 2), w("a", 16)});
  for (int i = 0; i < 4; ++i)
    step(); // t = 60: the triggers up to 50 are decided
  auto ps = exec->recent_progress();
  BOOST_TEST(ids_of(ps) == (std::vector<std::int64_t>{0, 1}), boost::test_tools::per_element());
  BOOST_TEST(input_rows_of(ps) == (std::vector<std::uint64_t>{3, 0}),
             boost::test_tools::per_element());
  BOOST_REQUIRE_EQUAL(ps.size(), 2u);
  BOOST_TEST(ps[0].event_time.at("watermark") == "1970-01-01T00:00:00.000Z");
  BOOST_TEST(ps[1].event_time.at("watermark") == "2023-11-14T22:13:31.000Z"); // 11
  BOOST_TEST(log.batches(row_text) == (std::vector<strings>{{}, {"a[0,10)=1", "b[0,10)=1"}}),
             boost::test_tools::per_element());

  // A second file that does not move the watermark (max event time stays 16): exactly one
  // epoch with it, read by the trigger at 60 or 70. c@3 is late (window end 10 <= 11).
  drop_file(dir, "003.jsonl", std::vector<word_event>{w("a", 12), w("c", 3)});
  for (int i = 0; i < 3; ++i)
    step(); // t = 90: the triggers up to 80 are decided
  ps = exec->recent_progress();
  BOOST_TEST(ids_of(ps) == (std::vector<std::int64_t>{0, 1, 2}), boost::test_tools::per_element());
  BOOST_TEST(input_rows_of(ps) == (std::vector<std::uint64_t>{3, 0, 2}),
             boost::test_tools::per_element());
  BOOST_REQUIRE_EQUAL(ps.size(), 3u);
  BOOST_REQUIRE(!ps[2].state_operators.empty());
  BOOST_TEST(ps[2].state_operators[0].num_rows_dropped_by_watermark == 1u);
  BOOST_TEST(log.ids() == (std::vector<std::int64_t>{0, 1, 2}), boost::test_tools::per_element());

  exec->cancel();
  auto done = require_ok(exec->wait());
  BOOST_TEST(done.cancelled);
  BOOST_TEST(exec->recent_progress().size() == 3u, "cancel() runs no further epoch");
  // a[10,20) (a@12, a@16) was never passed by the watermark: append never emitted it.
  for (auto& e : log.entries())
    for (auto& r : e.rows)
      BOOST_TEST(row_text(r) != "a[10,20)=2");
}

BOOST_AUTO_TEST_CASE(cancel_while_waiting_for_the_next_trigger_ends_the_job) {
  temp_dir dir;
  auto clk = std::make_shared<manual_clock>();
  trigger_probe probe;
  batch_log<word_count> log;
  job_options o;
  o.name = "idle";
  o.trigger = triggers::processing_time(1s);
  o.output_mode = output_mode::update;
  o.runtime.processing_clock = clk;
  job j{o};
  auto files = files_in(dir, std::nullopt);
  files.watch = true;
  word_count_job(j, files, log.sink());
  j.from(probe).sink_to(sinks::for_each<int>([](int) {}));
  auto exec = require_ok(j.start());
  BOOST_REQUIRE(wait_until(*exec, [&] { return probe.triggers() >= 1; }));
  exec->cancel();
  BOOST_REQUIRE(exec->wait_for(safety_timeout));
  auto done = require_ok(exec->wait());
  BOOST_TEST(done.cancelled);
  BOOST_TEST(exec->recent_progress().empty());
  BOOST_TEST(log.size() == 0u);
}

BOOST_AUTO_TEST_SUITE_END()

// -- continuous ----------------------------------------------------------------------------

BOOST_AUTO_TEST_SUITE(continuous)

namespace {

std::vector<kv> numbered(const std::string& prefix, int n) {
  std::vector<kv> out;
  for (int i = 0; i < n; ++i)
    out.push_back({prefix, i});
  return out;
}

/// The rows `from` .. `to - 1` of both inputs as texts, sorted.
strings rows_between(int from, int to) {
  strings out;
  for (const char* p : {"A", "B"})
    for (int i = from; i < to; ++i)
      out.push_back(kv_text(kv{p, i}));
  std::sort(out.begin(), out.end());
  return out;
}

} // namespace

BOOST_AUTO_TEST_CASE(two_unioned_sources_every_record_in_exactly_one_batch) {
  auto clk = std::make_shared<manual_clock>();
  gate<kv> ga{numbered("A", 40)};
  gate<kv> gb{numbered("B", 40)};
  batch_log<kv> log;
  progress_log progress;
  job_options o;
  o.name = "continuous";
  o.parallelism = 2;
  o.trigger = triggers::continuous(1s);
  o.progress_interval = 0s; // a report per epoch, to check each epoch's rows
  o.on_progress = progress.callback();
  o.runtime.processing_clock = clk;
  o.runtime.batch_size = 4;
  job j{o};
  j.from(ga)
    .name("a")
    .union_with(j.from(gb).name("b"))
    .map([](const kv& x) { return x; })
    .name("relay")
    .sink_to(log.sink());
  auto exec = require_ok(j.start());
  // Everything released is in the job (ahead of the next barrier) once it is emitted.
  auto emitted = [&](std::size_t n) {
    return wait_until(*exec, [&] { return ga.emitted() >= n && gb.emitted() >= n; });
  };
  auto batches_reach = [&](std::size_t n) {
    return wait_until(*exec, [&] { return log.size() >= n; });
  };

  ga.release(20);
  gb.release(20);
  BOOST_REQUIRE(emitted(20));
  clk->advance(1s); // epoch 0 ends
  BOOST_REQUIRE(batches_reach(1));
  ga.release(30);
  gb.release(30);
  BOOST_REQUIRE(emitted(30));
  clk->advance(1s); // epoch 1 ends
  BOOST_REQUIRE(batches_reach(2));
  ga.release(40);
  gb.release(40);
  BOOST_REQUIRE(emitted(40));
  ga.finish(); // the end of input ends a last epoch
  gb.finish();
  auto done = require_ok(exec->wait());
  BOOST_TEST(!done.cancelled);

  auto entries = log.entries();
  auto batches = log.batches(kv_text);
  BOOST_REQUIRE_GE(batches.size(), 3u);
  BOOST_TEST(batches[0] == rows_between(0, 20), boost::test_tools::per_element());
  BOOST_TEST(batches[1] == rows_between(20, 30), boost::test_tools::per_element());
  BOOST_TEST(batches[2] == rows_between(30, 40), boost::test_tools::per_element());
  // The four source tasks end one by one, each with a last barrier after its last record:
  // one that ends after another's last barrier reached it ends one more (empty) epoch, so
  // up to four epochs may follow epoch 1. Only the first of them has rows.
  BOOST_TEST(batches.size() <= 6u);
  for (std::size_t b = 3; b < batches.size(); ++b)
    BOOST_TEST(batches[b].empty(), "batch " << b);
  std::vector<std::int64_t> want_ids;
  for (std::size_t b = 0; b < batches.size(); ++b)
    want_ids.push_back(static_cast<std::int64_t>(b));
  BOOST_TEST(log.ids() == want_ids, boost::test_tools::per_element());

  // Every record in exactly one batch.
  std::map<std::string, int> seen;
  for (auto& b : batches)
    for (auto& r : b)
      ++seen[r];
  BOOST_TEST(seen.size() == 80u);
  for (auto& [row, n] : seen)
    BOOST_TEST(n == 1, row << " seen " << n << " times");

  // Progress: one report per epoch, input rows per epoch, 80 in all.
  auto ps = progress.reports();
  BOOST_TEST(ids_of(ps) == want_ids, boost::test_tools::per_element());
  std::uint64_t total = 0;
  for (auto& p : ps) {
    total += p.num_input_rows;
    std::uint64_t per_source = 0;
    for (auto& s : p.sources)
      per_source += s.num_input_rows;
    BOOST_TEST(per_source == p.num_input_rows, "batch " << p.batch_id);
    BOOST_TEST(p.sink.num_output_rows == entries[static_cast<std::size_t>(p.batch_id)].rows.size(),
               "batch " << p.batch_id);
  }
  BOOST_TEST(total == 80u);
  BOOST_REQUIRE_GE(ps.size(), 3u);
  BOOST_TEST(input_rows_of(ps)[0] == 40u);
  BOOST_TEST(input_rows_of(ps)[1] == 20u);
  BOOST_TEST(input_rows_of(ps)[2] == 20u);
}

BOOST_AUTO_TEST_CASE(a_keyed_update_over_two_inputs_sees_whole_epochs) {
  // Two sources of two instances each into a keyed reduce of two instances: every reduce
  // instance aligns the barrier over four channels. Under the update mode it emits, per
  // epoch, the keys changed in it: a record of the next epoch processed too early would
  // show in the counts.
  auto clk = std::make_shared<manual_clock>();
  auto ones = [] {
    std::vector<kv> v;
    for (int i = 0; i < 40; ++i)
      v.push_back({"k" + std::to_string(i % 4), 1});
    return v;
  };
  gate<kv> ga{ones()};
  gate<kv> gb{ones()};
  batch_log<kv> log;
  job_options o;
  o.name = "keyed";
  o.parallelism = 2;
  o.trigger = triggers::continuous(1s);
  o.output_mode = output_mode::update;
  o.runtime.processing_clock = clk;
  o.runtime.batch_size = 3;
  job j{o};
  j.from(ga)
    .union_with(j.from(gb))
    .key_by([](const kv& x) { return x.key; })
    .reduce([](const kv& a, const kv& b) { return kv{a.key, a.value + b.value}; })
    .name("counts")
    .sink_to(log.sink());
  auto exec = require_ok(j.start());
  auto emitted = [&](std::size_t n) {
    return wait_until(*exec, [&] { return ga.emitted() >= n && gb.emitted() >= n; });
  };
  ga.release(20);
  gb.release(20);
  BOOST_REQUIRE(emitted(20));
  clk->advance(1s);
  BOOST_REQUIRE(wait_until(*exec, [&] { return log.size() >= 1; }));
  ga.release(30);
  gb.release(30);
  BOOST_REQUIRE(emitted(30));
  clk->advance(1s);
  BOOST_REQUIRE(wait_until(*exec, [&] { return log.size() >= 2; }));
  ga.release(40);
  gb.release(40);
  BOOST_REQUIRE(emitted(40));
  ga.finish();
  gb.finish();
  require_ok(exec->wait());
  auto batches = log.batches(kv_text);
  BOOST_REQUIRE_GE(batches.size(), 3u);
  // Rows 0..19 of both: 10 of each key. Rows 20..29: k0, k1 three times per input, k2, k3
  // twice. Rows 30..39: the rest, 20 of each.
  BOOST_TEST(batches[0] == (strings{"k0=10", "k1=10", "k2=10", "k3=10"}),
             boost::test_tools::per_element());
  BOOST_TEST(batches[1] == (strings{"k0=16", "k1=16", "k2=14", "k3=14"}),
             boost::test_tools::per_element());
  BOOST_TEST(batches[2] == (strings{"k0=20", "k1=20", "k2=20", "k3=20"}),
             boost::test_tools::per_element());
  for (std::size_t b = 3; b < batches.size(); ++b)
    BOOST_TEST(batches[b].empty(), "batch " << b);
}

BOOST_AUTO_TEST_SUITE_END()
