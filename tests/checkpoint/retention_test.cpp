// Retention: a job keeps its newest `retained` complete checkpoints and deletes the older
// ones with every piece they had, across runs too.
#include <boost/test/unit_test.hpp>

#include "sluice/tests/checkpoint/job_helpers.hpp"

#include <limits>
#include <optional>
#include <string>
#include <thread>
#include <vector>

using namespace sluice;
using namespace sluice::test;
using namespace sluice::test::ckpt;

namespace {

/// files (one per micro-batch) -> key_by -> reduce -> foreach_batch.
struct files_job {
  fs::path input;
  fs::path checkpoints;
  std::optional<std::size_t> retained = 2; ///< unset: the default

  job_result run(std::vector<std::int64_t>* batch_ids = nullptr) const {
    job_options o;
    o.name = "retention";
    o.trigger = triggers::available_now();
    o.checkpoints.dir = checkpoints;
    if (retained)
      o.checkpoints.retained = *retained;
    job j{o};
    sources::file_options files;
    files.path = input;
    files.max_files_per_trigger = 1;
    batch_log<reading> log;
    j.from(sources::file<reading>{files})
      .name("files")
      .key_by(key_of)
      .reduce(sum_values)
      .name("sums")
      .sink_to(log.sink())
      .name("batches");
    auto r = require_ok(j.run());
    if (batch_ids)
      *batch_ids = log.ids();
    return r;
  }
};

void write_file(const fs::path& dir, int f) {
  std::vector<reading> rows;
  for (std::int64_t k = 0; k < 8; ++k)
    rows.push_back({k, f * 10 + k, at_ms(f * 1000 + k)});
  char name[16];
  std::snprintf(name, sizeof name, "%03d.jsonl", f);
  drop_file(dir, name, rows);
}

using ids = std::vector<std::int64_t>;

} // namespace

BOOST_AUTO_TEST_SUITE(retention)

BOOST_AUTO_TEST_CASE(only_the_newest_checkpoints_are_kept_with_their_pieces) {
  temp_dir dir;
  files_job spec{dir.path / "in", dir.path / "ckpt"};
  for (int f = 0; f < 6; ++f)
    write_file(spec.input, f);
  ids batches;
  auto r = spec.run(&batches);
  BOOST_TEST(batches == (ids{0, 1, 2, 3, 4, 5}), boost::test_tools::per_element());
  BOOST_TEST(r.checkpoints_completed == 6);

  {
    auto store = open_store(spec.checkpoints);
    auto complete = store->complete_ids();
    BOOST_REQUIRE(complete.has_value());
    BOOST_TEST(*complete == (ids{4, 5}), boost::test_tools::per_element());
    std::vector<std::string> skipped;
    auto latest = store->latest(skipped);
    BOOST_REQUIRE(latest.has_value() && latest->has_value());
    BOOST_TEST((*latest)->id == 5);
    BOOST_TEST(skipped.empty());
  }
  // Nothing of checkpoints 0-3 is left in the database.
  BOOST_TEST(raw_ids(spec.checkpoints, "m/") == (ids{4, 5}), boost::test_tools::per_element());
  BOOST_TEST(raw_ids(spec.checkpoints, "p/") == (ids{4, 5}), boost::test_tools::per_element());

  // A later run with two new files continues the numbering and keeps its own newest two.
  write_file(spec.input, 6);
  write_file(spec.input, 7);
  auto again = spec.run(&batches);
  BOOST_REQUIRE(again.restored_from.has_value());
  BOOST_TEST(*again.restored_from == 5);
  BOOST_TEST(batches == (ids{6, 7}), boost::test_tools::per_element());
  BOOST_TEST(open_store(spec.checkpoints)->complete_ids().value() == (ids{6, 7}),
             boost::test_tools::per_element());
  BOOST_TEST(raw_ids(spec.checkpoints, "p/") == (ids{6, 7}), boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(the_default_keeps_three) {
  temp_dir dir;
  files_job spec{dir.path / "in", dir.path / "ckpt", std::nullopt};
  for (int f = 0; f < 5; ++f)
    write_file(spec.input, f);
  auto r = spec.run();
  BOOST_TEST(r.checkpoints_completed == 5);
  BOOST_TEST(open_store(spec.checkpoints)->complete_ids().value() == (ids{2, 3, 4}),
             boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(a_savepoint_outlives_retention) {
  // retained = 1: only the newest checkpoint and every savepoint stay. The generator job is
  // held at its gate; the savepoint's barrier reaching the source (its snapshot) says the
  // request was taken; then the gate opens and the job runs to its end (one more checkpoint).
  temp_dir dir;
  sync_log log;
  generator_job spec{dir.path / "totals", dir.path / "windows", 20'000};
  spec.checkpoints = dir.path / "ckpt";
  spec.sync_point = log.callback();
  spec.hold = std::make_shared<gate>(5'000);
  auto o = spec.options();
  o.checkpoints.retained = 1;
  std::int64_t savepoint = -1;
  {
    job j{o};
    spec.build(j);
    auto exec = require_ok(j.start());
    open_at_exit opener{spec.hold};
    BOOST_REQUIRE(spec.hold->wait_reached());
    std::optional<result<std::int64_t>> taken;
    std::thread t{[&] { taken.emplace(exec->savepoint(false)); }};
    const bool snapshotted = log.wait_for("snapshot");
    spec.hold->release();
    t.join();
    BOOST_REQUIRE(snapshotted);
    BOOST_REQUIRE(taken.has_value());
    savepoint = require_ok(std::move(*taken));
    auto r = require_ok(exec->wait());
    BOOST_TEST(!r.cancelled);
    BOOST_TEST(r.checkpoints_completed == 2); // the savepoint and the end of input
  }
  const auto completed = log.ids("completed");
  BOOST_REQUIRE(!completed.empty());
  auto store = open_store(spec.checkpoints);
  BOOST_TEST(store->complete_ids().value() == (ids{savepoint, completed.back()}),
             boost::test_tools::per_element());
  auto sp = store->find(savepoint);
  BOOST_REQUIRE_MESSAGE(sp.has_value(), error_text(sp));
  BOOST_TEST(sp->savepoint);
  store.reset();

  // Started from the savepoint, not from the newer checkpoint: a new history, so the newer
  // checkpoint is deleted and the savepoint stays. The source resumes at the savepoint's
  // position: records from there on are read again.
  auto from = spec;
  from.hold = std::make_shared<gate>(std::numeric_limits<std::uint64_t>::max()); // counts
  auto o2 = from.options();
  o2.checkpoints.retained = 1;
  o2.checkpoints.restore_from = savepoint;
  job j{o2};
  from.build(j);
  auto r = require_ok(j.run());
  BOOST_REQUIRE(r.restored_from.has_value());
  BOOST_TEST(*r.restored_from == savepoint);
  BOOST_TEST(from.hold->seen() > 0u, "records after the savepoint are processed again");
  BOOST_TEST(from.hold->seen() < 20'000u, "records before it are not");
  const auto ids_now = open_store(spec.checkpoints)->complete_ids().value();
  BOOST_REQUIRE_EQUAL(ids_now.size(), 2u);
  BOOST_TEST(ids_now.front() == savepoint, "the savepoint stays");
  BOOST_TEST(ids_now.back() > savepoint);
}

BOOST_AUTO_TEST_CASE(retained_zero_is_refused) {
  temp_dir dir;
  files_job spec{dir.path / "in", dir.path / "ckpt"};
  write_file(spec.input, 0);
  job_options o;
  o.trigger = triggers::available_now();
  o.checkpoints.dir = spec.checkpoints;
  o.checkpoints.retained = 0;
  job j{o};
  sources::file_options files;
  files.path = spec.input;
  batch_log<reading> log;
  j.from(sources::file<reading>{files}).sink_to(log.sink());
  auto e = require_error(j.run());
  BOOST_TEST(mentions(e.message, "retained"), e.message);
  BOOST_TEST(log.ids().empty());
}

BOOST_AUTO_TEST_SUITE_END()
