// Whose checkpoint is it: a checkpoint directory written by another job is refused, naming
// both jobs; a changed job is checked operator by operator against the fingerprint in the
// checkpoint, with Flink's rules (state of a removed operator is refused unless
// allow_non_restored_state, a changed state type is refused, a new stateful operator starts
// empty); and the fingerprint itself (graph/fingerprint.hpp) is stable, hashes the whole
// job, and says what differs.
#include <boost/test/unit_test.hpp>

#include "sluice/graph/fingerprint.hpp"
#include "sluice/tests/checkpoint/job_helpers.hpp"

#include <algorithm>
#include <string>
#include <vector>

using namespace sluice;
using namespace sluice::test;
using namespace sluice::test::ckpt;

namespace {

/// The fingerprint of the plan of `spec`.
job_fingerprint fingerprint(const sums_job& spec) {
  batch_log<reading> log;
  job j{spec.options()};
  spec.build(j, log.sink());
  auto plan = require_ok(j.plan());
  return fingerprint_of(j.graph(), plan);
}

void write_file(const fs::path& dir, int f) {
  std::vector<reading> rows;
  for (std::int64_t k = 0; k < 20; ++k)
    rows.push_back({k, 10 * f + k + 1, at_ms(f * 1000 + k)});
  drop_file(dir, "in-" + std::to_string(f) + ".jsonl", rows);
}

/// Runs `first` on file 0 (checkpoint 0), then adds file 1 for the next run.
void first_run(const sums_job& first) {
  write_file(first.input, 0);
  auto [r, batches] = first.run();
  BOOST_REQUIRE_EQUAL(r.checkpoints_completed, 1);
  BOOST_REQUIRE_EQUAL(batches.size(), 1u);
  write_file(first.input, 1);
}

} // namespace

BOOST_FIXTURE_TEST_SUITE(job_identity, sums_fixture)

// -- the fingerprint -------------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(the_fingerprint_is_stable_and_hashes_the_whole_job) {
  const auto f = fingerprint(spec);
  BOOST_TEST(f.hash == fingerprint(spec).hash, "the same job, the same hash");
  BOOST_TEST(f.hash_text().size() == 16u);
  BOOST_TEST(differences(f, fingerprint(spec)).empty());

  const auto* sums = f.find("sums");
  BOOST_REQUIRE(sums != nullptr);
  BOOST_TEST(sums->kind_name == "reduce");
  BOOST_TEST(mentions(sums->state, "keyed reduce<"), sums->state);
  BOOST_TEST(mentions(sums->state, "reading"), sums->state);
  BOOST_TEST(mentions(f.find("files")->state, "source position (file)"), f.find("files")->state);
  BOOST_TEST(f.find("batches") != nullptr);
  BOOST_TEST(f.edges.size() == 2u);

  // JSON and back: the same fingerprint; a changed byte is caught by the hash.
  auto back = require_ok(job_fingerprint::from_json(f.to_json()));
  BOOST_TEST(back.hash == f.hash);
  BOOST_TEST((back.nodes == f.nodes));
  auto text = f.to_json();
  text.replace(text.find("\"sums\""), 6, "\"suns\"");
  auto bad = job_fingerprint::from_json(text);
  BOOST_REQUIRE(!bad.has_value());
  BOOST_TEST(mentions(bad.error().message, "does not match"), bad.error().message);

  // Parallelism is part of the whole job's hash (nodes of a multi-node job must agree),
  // and the difference is named.
  auto b = spec;
  b.parallelism = 2;
  const auto g = fingerprint(b);
  BOOST_TEST(g.hash != f.hash);
  const auto diff = differences(f, g);
  BOOST_REQUIRE(!diff.empty());
  BOOST_TEST(std::any_of(diff.begin(), diff.end(),
                         [](auto& d) { return mentions(d, "'sums'") && mentions(d, "parallelism 1 -> 2"); }),
             diff.front());
  // ... but no state changed.
  for (auto& d : compare(f, g))
    BOOST_TEST(!d.state_changed(), d.text());
}

BOOST_AUTO_TEST_CASE(the_per_operator_comparison_names_what_changed) {
  auto b = spec;
  b.kind = sums_job::op::aggregate;
  b.with_maxes = true;
  const auto d = compare(fingerprint(spec), fingerprint(b));
  BOOST_REQUIRE_EQUAL(d.size(), 2u); // "batches" is the same node, fed by another edge
  BOOST_TEST(d[0].name == "sums");
  BOOST_TEST(d[0].state_changed());
  BOOST_TEST(mentions(d[0].text(), "keyed reduce<"), d[0].text());
  BOOST_TEST(mentions(d[0].text(), "keyed aggregate<"), d[0].text());
  BOOST_TEST(d[1].name == "maxes");
  BOOST_TEST(!d[1].before.has_value());
  BOOST_TEST(mentions(d[1].text(), "is new"), d[1].text());
  const auto lines = differences(fingerprint(spec), fingerprint(b));
  BOOST_TEST(std::any_of(lines.begin(), lines.end(), [](auto& l) { return mentions(l, "edge"); }));
}

// -- restores --------------------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(a_checkpoint_directory_of_another_job_is_refused_naming_both_jobs) {
  first_run(spec);
  auto other = spec; // reads the same files, and would skip the ones `spec` read
  other.name = "counts";
  other.kind = sums_job::op::aggregate;
  other.op_name = "counts";

  for (int attempt = 0; attempt < 2; ++attempt) {
    auto e = other.refused();
    BOOST_TEST(mentions(e.message, "'sums'"), e.message);
    BOOST_TEST(mentions(e.message, "'counts'"), e.message);
    BOOST_TEST(mentions(e.message, spec.checkpoints.string()), e.message);
  }
  // The directory is untouched: its own job goes on from it.
  auto [r, batches] = spec.run();
  BOOST_TEST((r.restored_from == std::optional<std::int64_t>{0}));
  BOOST_TEST(batches.size() == 1u);
}

BOOST_AUTO_TEST_CASE(state_of_a_removed_operator_is_refused_unless_allowed) {
  first_run(spec);
  auto b = spec;
  b.kind = sums_job::op::map;
  b.op_name = "copy"; // "sums" is gone, and its state with it

  auto e = b.refused();
  BOOST_TEST(mentions(e.message, "'sums'"), e.message);
  BOOST_TEST(mentions(e.message, "keyed reduce<"), e.message);
  BOOST_TEST(mentions(e.message, "allow_non_restored_state"), e.message);

  b.allow_non_restored_state = true;
  auto [r, batches] = b.run();
  BOOST_TEST((r.restored_from == std::optional<std::int64_t>{0}));
  BOOST_REQUIRE_EQUAL(batches.size(), 1u); // file 1 only: the source's position was restored
  BOOST_TEST(batches.count(1));
}

BOOST_AUTO_TEST_CASE(an_operator_that_now_keeps_no_state_under_the_same_name_is_refused) {
  first_run(spec);
  auto b = spec;
  b.kind = sums_job::op::map; // still named "sums"

  auto e = b.refused();
  BOOST_TEST(mentions(e.message, "'sums'"), e.message);
  BOOST_TEST(mentions(e.message, "map"), e.message);
  BOOST_TEST(mentions(e.message, "allow_non_restored_state"), e.message);
}

BOOST_AUTO_TEST_CASE(a_changed_state_type_is_refused_naming_old_and_new) {
  first_run(spec);
  auto b = spec;
  b.kind = sums_job::op::aggregate; // same name, its state is a number now

  auto e = b.refused();
  BOOST_TEST(mentions(e.message, "'sums'"), e.message);
  BOOST_TEST(mentions(e.message, "keyed reduce<"), e.message);
  BOOST_TEST(mentions(e.message, "keyed aggregate<"), e.message);
  // Not even on request: the state cannot be read.
  b.allow_non_restored_state = true;
  e = b.refused();
  BOOST_TEST(mentions(e.message, "keyed aggregate<"), e.message);
}

BOOST_AUTO_TEST_CASE(a_new_stateful_operator_starts_empty_and_a_rescale_is_no_change) {
  first_run(spec);
  auto b = spec;
  b.with_maxes = true;
  b.parallelism = 2;
  auto [r, batches] = b.run();
  BOOST_TEST((r.restored_from == std::optional<std::int64_t>{0}));
  BOOST_REQUIRE_EQUAL(batches.size(), 1u);
  // File 1 on top of file 0's sums (restored); maxes saw only file 1's sums.
  std::vector<reading> expected;
  for (std::int64_t k = 0; k < 20; ++k)
    expected.push_back({k, (k + 1) + (10 + k + 1), at_ms(1000 + k)});
  std::sort(expected.begin(), expected.end());
  BOOST_TEST((batches.at(1) == expected));
}

BOOST_AUTO_TEST_CASE(another_jobs_checkpoint_named_with_restore_from_is_checked_by_operator) {
  first_run(spec);
  auto b = spec;
  b.name = "sums-v2"; // a new version of the job, started from the old one's checkpoint
  b.restore_from = 0;
  auto [r, batches] = b.run();
  BOOST_TEST((r.restored_from == std::optional<std::int64_t>{0}));
  BOOST_TEST(batches.size() == 1u);

  auto c = spec;
  c.name = "other";
  c.restore_from = 0;
  c.kind = sums_job::op::aggregate;
  auto e = c.refused();
  BOOST_TEST(mentions(e.message, "keyed aggregate<"), e.message);
}

BOOST_AUTO_TEST_CASE(a_checkpoint_without_a_fingerprint_is_restored_and_checked_by_name) {
  first_run(spec);
  {
    // Checkpoint 0 as written before fingerprints: no `graph` in its metadata.
    auto store = open_store(spec.checkpoints);
    auto meta = require_ok(store->find(0));
    BOOST_REQUIRE(!meta.graph.empty());
    meta.graph.clear();
    require_ok(store->complete(meta));
    BOOST_REQUIRE(require_ok(store->find(0)).graph.empty());
  }
  auto b = spec;
  b.kind = sums_job::op::map;
  b.op_name = "copy";
  auto e = b.refused(); // the state of "sums" is still found by its pieces' names
  BOOST_TEST(mentions(e.message, "'sums'"), e.message);

  auto [r, batches] = spec.run();
  BOOST_TEST((r.restored_from == std::optional<std::int64_t>{0}));
  BOOST_TEST(batches.size() == 1u);
}

BOOST_AUTO_TEST_SUITE_END()
