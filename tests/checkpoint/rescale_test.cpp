// Rescaling: keyed state is stored per key group, so a restore may run the keyed operators
// (and the transactional sinks) with another parallelism. Runs cancelled midway at 1, 2 and
// 3 instances (or 3, then 1) end with what one uninterrupted run at parallelism 1 produces.
#include <boost/test/unit_test.hpp>

#include "sluice/tests/checkpoint/job_helpers.hpp"

#include <string>
#include <vector>

using namespace sluice;
using namespace sluice::test;
using namespace sluice::test::ckpt;

namespace {

constexpr std::uint64_t records = 20'000;

struct reference {
  std::vector<reading> totals;
  std::vector<window_count> windows;
};

reference uninterrupted() {
  temp_dir out;
  generator_job spec{out.path / "totals", out.path / "windows", records};
  require_ok(spec.run());
  return {read_committed<reading>(spec.totals), sorted(read_committed<window_count>(spec.windows))};
}

/// Runs the job at each parallelism in turn on one checkpoint directory: every run but the
/// last is held after `hold_after` running sums of its own and cancelled there.
void run_sequence(const std::vector<int>& parallelisms, std::uint64_t hold_after) {
  const auto ref = uninterrupted();
  BOOST_REQUIRE_EQUAL(ref.totals.size(), records);

  temp_dir dir;
  sync_log log;
  generator_job spec{dir.path / "totals", dir.path / "windows", records};
  spec.checkpoints = dir.path / "ckpt";
  spec.sync_point = log.callback();
  std::size_t committed = 0;
  std::optional<std::int64_t> previous;
  for (std::size_t i = 0; i < parallelisms.size(); ++i) {
    BOOST_TEST_CONTEXT("run " << i + 1 << " at parallelism " << parallelisms[i]) {
      spec.parallelism = parallelisms[i];
      const bool last = i + 1 == parallelisms.size();
      spec.hold = last ? nullptr : std::make_shared<gate>(hold_after);
      const auto r = last ? require_ok(spec.run()) : run_cancelled_at_gate(spec, log);
      BOOST_TEST(r.cancelled == !last);
      BOOST_TEST((r.restored_from == previous), "restored from the previous run's last checkpoint");
      BOOST_TEST(r.skipped_checkpoints.empty());
      const auto completed = log.ids("completed");
      BOOST_REQUIRE(!completed.empty());
      previous = completed.back();
      // Every run (but the last) stopped midway and added at least its gate's worth.
      const auto now = read_committed<reading>(spec.totals).size();
      if (!last) {
        BOOST_TEST(now >= committed + hold_after);
        BOOST_TEST(now < records);
      }
      committed = now;
      BOOST_TEST(hidden_files(spec.totals).empty());
      BOOST_TEST(hidden_files(spec.windows).empty());
    }
  }
  const auto totals = read_committed<reading>(spec.totals);
  BOOST_TEST(totals.size() == records, "every record's running sum exactly once");
  BOOST_TEST((per_key(totals) == per_key(ref.totals)), "each key's sums, in order");
  BOOST_TEST((last_per_key(totals) == expected_totals(records)));
  const auto windows = sorted(read_committed<window_count>(spec.windows));
  BOOST_TEST(windows.size() == ref.windows.size());
  BOOST_TEST((windows == ref.windows), "the window counts equal the uninterrupted run's");
}

} // namespace

BOOST_AUTO_TEST_SUITE(rescale)

BOOST_AUTO_TEST_CASE(scaling_out_from_1_to_2_to_3_matches_one_uninterrupted_run) {
  run_sequence({1, 2, 3}, 4'000);
}

BOOST_AUTO_TEST_CASE(scaling_in_from_3_to_1_matches_one_uninterrupted_run) {
  run_sequence({3, 1}, 6'000);
}

BOOST_AUTO_TEST_CASE(the_number_of_key_groups_cannot_change) {
  temp_dir dir;
  generator_job spec{dir.path / "totals", dir.path / "windows", 1'000};
  spec.checkpoints = dir.path / "ckpt";
  require_ok(spec.run());
  const auto files = listing(spec.totals);

  job_options o = spec.options();
  o.max_key_groups = 64;
  job j{o};
  spec.build(j);
  auto e = require_error(j.run());
  BOOST_TEST(mentions(e.message, "key groups"), e.message);
  BOOST_TEST(mentions(e.message, "64"), e.message);
  BOOST_TEST((listing(spec.totals) == files), "nothing ran");
}

BOOST_AUTO_TEST_CASE(a_source_with_one_position_per_instance_refuses_another_parallelism) {
  // The generator's instance i reads the numbers i, i + p, ...: positions of p instances
  // cannot be split among q. The restore is refused, naming the source and both numbers,
  // and not retried by the restart strategy.
  temp_dir dir;
  auto run_at = [&](int p, std::uint64_t count) {
    job_options o;
    o.name = "numbers";
    o.checkpoints.dir = dir.path / "checkpoints";
    o.checkpoints.restart = restart_strategy::fixed(3, 1ms);
    job j{o};
    j.from(sources::generator({.count = count}, make_reading))
      .name("gen")
      .parallelism(p)
      .key_by(key_of)
      .reduce(sum_values)
      .name("totals")
      .sink_to(sinks::file<reading>{{.path = dir.path / "out", .transactional = true}})
      .name("out");
    return j.run();
  };
  require_ok(run_at(2, 1'000));
  auto refused = run_at(1, 2'000);
  BOOST_REQUIRE(!refused.has_value());
  const auto& text = refused.error().message;
  BOOST_TEST(text.find("source 'gen' restores one position per instance") != std::string::npos, text);
  BOOST_TEST(text.find("taken at parallelism 2, this run has 1") != std::string::npos, text);
  BOOST_TEST(text.find("restarts") == std::string::npos, text); // not retried
}

BOOST_AUTO_TEST_SUITE_END()
