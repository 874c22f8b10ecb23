// Corrupt checkpoints and jobs that cannot be checkpointed: a corrupt newest checkpoint is
// skipped (and named) in favour of the one before; when none is usable the job refuses to
// start, naming the directory, never starting fresh in silence; operators without snapshots
// (or with state types that have none) and duplicate node names are refused before anything
// runs.
#include <boost/test/unit_test.hpp>

#include "operators/keyed_process.hpp"
#include "sinks/memory.hpp"
#include "sources/collection.hpp"
#include "tests/checkpoint/job_helpers.hpp"

#include <string>
#include <vector>

using namespace sluice;
using namespace sluice::test;
using namespace sluice::test::ckpt;

namespace {

/// files (one per micro-batch) -> key_by -> reduce "sums" -> foreach_batch.
struct sums_job {
  fs::path input;
  fs::path checkpoints;

  job_options options() const {
    job_options o;
    o.name = "sums";
    o.trigger = triggers::available_now();
    o.checkpoints.dir = checkpoints;
    return o;
  }

  template <class Sink>
  void build(job& j, Sink sink) const {
    sources::file_options files;
    files.path = input;
    files.max_files_per_trigger = 1;
    j.from(sources::file<reading>{files})
      .name("files")
      .key_by(key_of)
      .reduce(sum_values)
      .name("sums")
      .sink_to(std::move(sink))
      .name("batches");
  }

  /// Runs to the end; returns the result and what each batch wrote.
  std::pair<job_result, std::map<std::int64_t, std::vector<reading>>> run() const {
    batch_log<reading> log;
    job j{options()};
    build(j, log.sink());
    auto r = require_ok(j.run());
    return {r, log.by_id()};
  }
};

void write_files(const fs::path& dir, int files) {
  for (int f = 0; f < files; ++f) {
    std::vector<reading> rows;
    for (std::int64_t k = 0; k < 40; ++k) // spread over many key groups
      for (std::int64_t i = 0; i <= k % 5; ++i)
        rows.push_back({k, 10 * f + i + 1, at_ms(f * 1000 + i)});
    drop_file(dir, "in-" + std::to_string(f) + ".jsonl", rows);
  }
}

/// Two complete checkpoints (0 and 1), one per file; returns what each batch wrote.
std::map<std::int64_t, std::vector<reading>> two_checkpoints(const sums_job& spec) {
  write_files(spec.input, 2);
  auto [r, batches] = spec.run();
  BOOST_REQUIRE_EQUAL(r.checkpoints_completed, 2);
  auto ids = open_store(spec.checkpoints)->complete_ids();
  BOOST_REQUIRE(ids.has_value());
  BOOST_REQUIRE((*ids == std::vector<std::int64_t>{0, 1}));
  BOOST_REQUIRE_EQUAL(batches.size(), 2u);
  return batches;
}

/// The name of a piece of checkpoint `id` that starts with `prefix`.
std::string piece_of(const fs::path& dir, std::int64_t id, const std::string& prefix) {
  auto store = open_store(dir);
  auto m = store->find(id);
  BOOST_REQUIRE_MESSAGE(m.has_value(), error_text(m));
  for (auto& p : m->pieces)
    if (p.name.starts_with(prefix))
      return p.name;
  BOOST_FAIL("checkpoint " << id << " has no piece named " << prefix << "...");
  return {};
}

} // namespace

BOOST_AUTO_TEST_SUITE(corrupt)

BOOST_AUTO_TEST_CASE(a_corrupt_state_piece_falls_back_to_the_previous_checkpoint) {
  temp_dir dir;
  sums_job spec{dir.path / "in", dir.path / "ckpt"};
  const auto first = two_checkpoints(spec);
  const auto piece = piece_of(spec.checkpoints, 1, "sums/kg/");
  overwrite_raw(spec.checkpoints, piece_key(1, piece), "flipped bits");

  auto [r, batches] = spec.run();
  BOOST_REQUIRE(r.restored_from.has_value());
  BOOST_TEST(*r.restored_from == 0);
  BOOST_REQUIRE_EQUAL(r.skipped_checkpoints.size(), 1u);
  BOOST_TEST(mentions(r.skipped_checkpoints[0], "checkpoint 1"), r.skipped_checkpoints[0]);
  BOOST_TEST(mentions(r.skipped_checkpoints[0], piece), r.skipped_checkpoints[0]);
  BOOST_TEST(mentions(r.skipped_checkpoints[0], "corrupt"), r.skipped_checkpoints[0]);
  // From checkpoint 0 the second file is read again, on top of the first file's sums.
  BOOST_REQUIRE_EQUAL(batches.size(), 1u);
  BOOST_REQUIRE(batches.count(1));
  BOOST_TEST((batches.at(1) == first.at(1)), "batch 1 again, with the same sums");
}

BOOST_AUTO_TEST_CASE(a_corrupt_source_position_falls_back_to_the_previous_checkpoint) {
  temp_dir dir;
  sums_job spec{dir.path / "in", dir.path / "ckpt"};
  const auto first = two_checkpoints(spec);
  overwrite_raw(spec.checkpoints, piece_key(1, "source/files/0"), "{\"done\": []}");

  auto [r, batches] = spec.run();
  BOOST_REQUIRE(r.restored_from.has_value());
  BOOST_TEST(*r.restored_from == 0);
  BOOST_REQUIRE_EQUAL(r.skipped_checkpoints.size(), 1u);
  BOOST_TEST(mentions(r.skipped_checkpoints[0], "source/files/0"), r.skipped_checkpoints[0]);
  BOOST_REQUIRE_EQUAL(batches.size(), 1u);
  BOOST_TEST((batches.at(1) == first.at(1)));
}

BOOST_AUTO_TEST_CASE(corrupt_metadata_falls_back_and_is_named) {
  temp_dir dir;
  sums_job spec{dir.path / "in", dir.path / "ckpt"};
  const auto first = two_checkpoints(spec);
  overwrite_raw(spec.checkpoints, meta_key(1), "{\"id\": 1}\n0000000000000000");

  auto [r, batches] = spec.run();
  BOOST_REQUIRE(r.restored_from.has_value());
  BOOST_TEST(*r.restored_from == 0);
  BOOST_REQUIRE_EQUAL(r.skipped_checkpoints.size(), 1u);
  BOOST_TEST(mentions(r.skipped_checkpoints[0], "checkpoint 1"), r.skipped_checkpoints[0]);
  BOOST_TEST(mentions(r.skipped_checkpoints[0], "metadata"), r.skipped_checkpoints[0]);
  BOOST_REQUIRE_EQUAL(batches.size(), 1u);
  BOOST_TEST((batches.at(1) == first.at(1)));

  // The run wrote a good checkpoint 1 over the corrupt one: the next start uses it.
  auto [again, none] = spec.run();
  BOOST_REQUIRE(again.restored_from.has_value());
  BOOST_TEST(*again.restored_from == 1);
  BOOST_TEST(again.skipped_checkpoints.empty());
  BOOST_TEST(none.empty());
}

BOOST_AUTO_TEST_CASE(when_every_checkpoint_is_corrupt_the_job_refuses_to_start) {
  temp_dir dir;
  sums_job spec{dir.path / "in", dir.path / "ckpt"};
  two_checkpoints(spec);
  overwrite_raw(spec.checkpoints, meta_key(1), "garbage");
  overwrite_raw(spec.checkpoints, piece_key(0, piece_of(spec.checkpoints, 0, "sums/kg/")), "garbage");

  for (int attempt = 0; attempt < 2; ++attempt) { // and it stays that way: nothing overwritten
    batch_log<reading> log;
    job j{spec.options()};
    spec.build(j, log.sink());
    auto e = require_error(j.run());
    BOOST_TEST(mentions(e.message, spec.checkpoints.string()), e.message);
    BOOST_TEST(mentions(e.message, "checkpoint 0"), e.message);
    BOOST_TEST(mentions(e.message, "checkpoint 1"), e.message);
    BOOST_TEST(log.ids().empty(), "nothing ran");
  }
  auto ids = open_store(spec.checkpoints)->complete_ids();
  BOOST_REQUIRE(ids.has_value());
  BOOST_TEST((*ids == std::vector<std::int64_t>{0, 1}));
}

BOOST_AUTO_TEST_CASE(operators_without_snapshots_are_refused_by_name) {
  temp_dir dir;
  std::vector<reading> rows{{1, 1, at_ms(0)}, {1, 2, at_ms(10)}, {2, 3, at_ms(20)}};
  auto strategy = watermarks::bounded_out_of_orderness<reading>(duration{0}, ts_of);

  // Session windows are checkpointed now (restore_test): they run here without checkpoints
  // only.
  auto sessions = [&](job& j, sinks::collect<window_count>& out) {
    j.from(sources::collection<reading>{rows}, strategy)
      .key_by(key_of)
      .window(windows::session{.gap = 1s})
      .count()
      .name("visits")
      .sink_to(out);
  };
  // Keyed process functions are checkpointed, but their keys go into the checkpoint: a key
  // type without inspect() cannot be.
  struct raw_key {
    std::int64_t id = 0;
    auto operator<=>(const raw_key&) const = default;
  };
  auto process = [&](job& j, sinks::collect<std::int64_t>& out) {
    j.from(sources::collection<reading>{rows})
      .key_by([](const reading& r) { return raw_key{r.key}; })
      .process([](const reading& r, keyed_context<raw_key>&, collector<std::int64_t>& c) {
        c.collect(r.value);
      })
      .name("custom")
      .sink_to(out);
  };
  // Deduplication is checkpointed too, with the same rule for its keys.
  auto dedup = [&](job& j, sinks::collect<reading>& out) {
    j.from(sources::collection<reading>{rows}, strategy)
      .key_by([](const reading& r) { return raw_key{r.key}; })
      .drop_duplicates_within_watermark(1s)
      .name("once")
      .sink_to(out);
  };

  // Without a checkpoint directory each job runs.
  {
    job a, b, c;
    sinks::collect<window_count> s1;
    sinks::collect<std::int64_t> s2;
    sinks::collect<reading> s3;
    sessions(a, s1);
    process(b, s2);
    dedup(c, s3);
    require_ok(a.run());
    require_ok(b.run());
    require_ok(c.run());
    BOOST_TEST(s1.size() == 2u);
    BOOST_TEST(s2.size() == 3u);
    BOOST_TEST(s3.size() == 2u);
  }
  // With one, each refuses before anything runs, naming the operator.
  job_options o;
  o.checkpoints.dir = dir.path / "ckpt";
  {
    job j{o};
    sinks::collect<std::int64_t> out;
    process(j, out);
    auto e = require_error(j.run());
    BOOST_TEST(mentions(e.message, "'custom'"), e.message);
    BOOST_TEST(mentions(e.message, "cannot be checkpointed"), e.message);
    BOOST_TEST(out.size() == 0u);
  }
  {
    job j{o};
    sinks::collect<reading> out;
    dedup(j, out);
    auto e = require_error(j.run());
    BOOST_TEST(mentions(e.message, "'once'"), e.message);
    BOOST_TEST(out.size() == 0u);
  }
}

BOOST_AUTO_TEST_CASE(two_nodes_with_the_same_name_are_refused) {
  temp_dir dir;
  auto build = [](job& j, sinks::collect<reading>& out) {
    j.from(sources::collection<reading>{{{1, 1, at_ms(0)}, {2, 2, at_ms(1)}}})
      .map([](const reading& r) { return r; })
      .name("parse")
      .map([](const reading& r) { return reading{r.key, r.value * 2, r.ts}; })
      .name("parse")
      .sink_to(out);
  };
  {
    job j;
    sinks::collect<reading> out;
    build(j, out);
    require_ok(j.run()); // fine without checkpoints
    BOOST_TEST(out.size() == 2u);
  }
  job_options o;
  o.checkpoints.dir = dir.path / "ckpt";
  job j{o};
  sinks::collect<reading> out;
  build(j, out);
  auto e = require_error(j.run());
  BOOST_TEST(mentions(e.message, "'parse'"), e.message);
  BOOST_TEST(mentions(e.message, "two nodes"), e.message);
  BOOST_TEST(out.size() == 0u);
}

BOOST_AUTO_TEST_SUITE_END()
