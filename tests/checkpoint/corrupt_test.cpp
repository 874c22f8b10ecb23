// Corrupt checkpoints and jobs that cannot be checkpointed: a corrupt newest checkpoint is
// skipped (and named) in favour of the one before; when none is usable the job refuses to
// start, naming the directory, never starting fresh in silence; operators without snapshots
// (or with state types that have none) and duplicate node names are refused before anything
// runs.
#include <boost/test/unit_test.hpp>

#include "sluice/operators/keyed_process.hpp"
#include "sluice/sinks/memory.hpp"
#include "sluice/sources/collection.hpp"
#include "sluice/tests/checkpoint/job_helpers.hpp"

#include <algorithm>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

using namespace sluice;
using namespace sluice::test;
using namespace sluice::test::ckpt;

namespace {

using batch_rows = std::map<std::int64_t, std::vector<reading>>;

/// Input file `f`: 40 keys, spread over many key groups.
void write_file(const fs::path& dir, int f) {
  std::vector<reading> rows;
  for (std::int64_t k = 0; k < 40; ++k)
    for (std::int64_t i = 0; i <= k % 5; ++i)
      rows.push_back({k, 10 * f + i + 1, at_ms(f * 1000 + i)});
  drop_file(dir, "in-" + std::to_string(f) + ".jsonl", rows);
}

void write_files(const fs::path& dir, int files) {
  for (int f = 0; f < files; ++f)
    write_file(dir, f);
}

/// Every file under `dir` that holds data (recursively, by relative path) with its size:
/// what a refused start must leave as it was. LevelDB's bookkeeping is left out (LOCK, its
/// info logs, CURRENT, MANIFEST, an empty log): an opening that gets as far as reading the
/// tables writes a new MANIFEST and log, without changing the data.
std::map<std::string, std::uintmax_t> data_files(const fs::path& dir) {
  std::map<std::string, std::uintmax_t> out;
  if (!fs::exists(dir))
    return out;
  for (auto& e : fs::recursive_directory_iterator{dir}) {
    const auto name = e.path().filename().string();
    if (!e.is_regular_file() || name == "LOCK" || name == "LOG" || name == "LOG.old" ||
        name == "CURRENT" || name.starts_with("MANIFEST-") ||
        (e.path().extension() == ".log" && e.file_size() == 0))
      continue;
    out[fs::relative(e.path(), dir).string()] = e.file_size();
  }
  return out;
}

/// The files of the database whose names end with `ext` (".ldb", ".log", ...), by name.
std::vector<fs::path> db_files(const fs::path& checkpoints, const std::string& ext) {
  std::vector<fs::path> out;
  for (auto& e : fs::directory_iterator{checkpoints / "checkpoints.ldb"})
    if (e.path().extension() == ext)
      out.push_back(e.path());
  std::sort(out.begin(), out.end());
  return out;
}

std::string read_all(const fs::path& p) {
  std::ifstream in{p, std::ios::binary};
  return {std::istreambuf_iterator<char>{in}, std::istreambuf_iterator<char>{}};
}

/// Flips the bits of `mask` in the byte at `at` of file `p`.
void flip_byte(const fs::path& p, std::size_t at, char mask) {
  auto bytes = read_all(p);
  BOOST_REQUIRE_LT(at, bytes.size());
  bytes[at] ^= mask;
  std::ofstream{p, std::ios::binary | std::ios::trunc} << bytes;
}

/// Two complete checkpoints (0 and 1), one per file, by one run: everything it wrote is
/// still in the database's log (nothing opened the store since).
batch_rows two_checkpoints_in_the_log(const sums_job& spec) {
  write_files(spec.input, 2);
  auto [r, batches] = spec.run();
  BOOST_REQUIRE_EQUAL(r.checkpoints_completed, 2);
  BOOST_REQUIRE_EQUAL(batches.size(), 2u);
  return batches;
}

/// Checkpoint 0 by a first run, checkpoint 1 by a second: each in a table file of its own
/// (an opening moves the log into a table), in the order of their numbers. Returns what each
/// batch wrote.
batch_rows two_checkpoints_in_two_tables(const sums_job& spec) {
  batch_rows out;
  write_files(spec.input, 1);
  auto [r0, b0] = spec.run();
  BOOST_REQUIRE_EQUAL(r0.checkpoints_completed, 1);
  write_file(spec.input, 1);
  auto [r1, b1] = spec.run();
  BOOST_REQUIRE_EQUAL(r1.checkpoints_completed, 1);
  BOOST_REQUIRE(r1.restored_from == std::optional<std::int64_t>{0});
  out.insert(b0.begin(), b0.end());
  out.insert(b1.begin(), b1.end());
  BOOST_REQUIRE_EQUAL(out.size(), 2u);
  auto ids = open_store(spec.checkpoints)->complete_ids();
  BOOST_REQUIRE(ids.has_value());
  BOOST_REQUIRE((*ids == std::vector<std::int64_t>{0, 1}));
  BOOST_REQUIRE_EQUAL(db_files(spec.checkpoints, ".ldb").size(), 2u);
  return out;
}

/// Two complete checkpoints (0 and 1), one per file; returns what each batch wrote. The
/// store is opened once after the run, which moves the log into a table file.
batch_rows two_checkpoints(const sums_job& spec) {
  write_files(spec.input, 2);
  auto [r, batches] = spec.run();
  BOOST_REQUIRE_EQUAL(r.checkpoints_completed, 2);
  auto ids = open_store(spec.checkpoints)->complete_ids();
  BOOST_REQUIRE(ids.has_value());
  BOOST_REQUIRE((*ids == std::vector<std::int64_t>{0, 1}));
  BOOST_REQUIRE_EQUAL(batches.size(), 2u);
  return batches;
}

/// `two_checkpoints` with every piece in a file under pieces/ (`spec` keeps that setting).
batch_rows two_checkpoints_with_piece_files(sums_job& spec) {
  spec.file_threshold = 1;
  return two_checkpoints(spec);
}

/// The piece files of checkpoint `id` under pieces/.
std::vector<fs::path> piece_files_of(const sums_job& spec, std::int64_t id) {
  std::vector<fs::path> out;
  for (auto& e : fs::directory_iterator{spec.checkpoints / "pieces"})
    if (e.path().filename().string().starts_with(id_text(id)))
      out.push_back(e.path());
  std::sort(out.begin(), out.end());
  BOOST_REQUIRE(!out.empty());
  return out;
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

/// Checks that `text` names every one of `words`.
void names_all(const std::string& text, std::initializer_list<std::string> words) {
  for (auto& w : words)
    BOOST_TEST(mentions(text, w), "'" << w << "' in: " << text);
}

/// Runs `spec` expecting a refusal that names the checkpoint directory and every one of
/// `words`, and that leaves every data file of the directory as it was.
void refused_naming(const sums_job& spec, std::initializer_list<std::string> words) {
  const auto before = data_files(spec.checkpoints);
  auto e = spec.refused();
  names_all(e.message, {spec.checkpoints.string()});
  names_all(e.message, words);
  BOOST_TEST((data_files(spec.checkpoints) == before), "every file is left as it was");
}

/// Runs `spec` expecting it to restore checkpoint 0 (checkpoint 1 being unusable) and to
/// write batch 1 again exactly as the first runs did (`first`). Returns what it reports
/// in `job_result::skipped_checkpoints`.
std::vector<std::string> falls_back_to_checkpoint_0(const sums_job& spec, const batch_rows& first) {
  auto [r, batches] = spec.run();
  BOOST_REQUIRE(r.restored_from.has_value());
  BOOST_TEST(*r.restored_from == 0);
  BOOST_REQUIRE_EQUAL(batches.size(), 1u);
  BOOST_REQUIRE(batches.count(1));
  BOOST_TEST((batches.at(1) == first.at(1)), "batch 1 again, with the same sums");
  return r.skipped_checkpoints;
}

/// Checks that `skipped` is one report, naming every one of `words`.
void one_report_naming(const std::vector<std::string>& skipped,
                       std::initializer_list<std::string> words) {
  BOOST_REQUIRE_EQUAL(skipped.size(), 1u);
  names_all(skipped[0], words);
}

/// Checks that one of the reports in `skipped` names every one of `words`.
void some_report_naming(const std::vector<std::string>& skipped,
                        std::initializer_list<std::string> words) {
  BOOST_TEST(std::any_of(skipped.begin(), skipped.end(),
                         [&](auto& s) {
                           return std::all_of(words.begin(), words.end(),
                                              [&](auto& w) { return mentions(s, w); });
                         }),
             skipped.size() << " reports, none naming all of the words");
}

/// The repair of a database whose newest table is damaged: it restores checkpoint 0 and
/// reports checkpoint 1 (with `words`).
void repair_falls_back_to_checkpoint_0(sums_job& spec, const batch_rows& first,
                                       std::initializer_list<std::string> words) {
  spec.on_unreadable = unreadable_checkpoints::repair;
  some_report_naming(falls_back_to_checkpoint_0(spec, first), words);
}

} // namespace

BOOST_FIXTURE_TEST_SUITE(corrupt, sums_fixture)

// -- a damaged directory: never a silent fresh start, never silently deleted files ---------

BOOST_AUTO_TEST_CASE(a_deleted_current_file_is_refused_and_nothing_is_deleted) {
  two_checkpoints_with_piece_files(spec);
  fs::remove(spec.checkpoints / "checkpoints.ldb" / "CURRENT");
  const auto files = data_files(spec.checkpoints);
  BOOST_REQUIRE(std::any_of(files.begin(), files.end(),
                            [](auto& f) { return f.first.starts_with("pieces/"); }));

  for (int attempt = 0; attempt < 2; ++attempt)
    refused_naming(spec, {"CURRENT"});
}

BOOST_AUTO_TEST_CASE(a_missing_database_beside_piece_files_is_refused_and_they_stay) {
  two_checkpoints_with_piece_files(spec);
  fs::remove_all(spec.checkpoints / "checkpoints.ldb");
  BOOST_REQUIRE(!data_files(spec.checkpoints).empty());

  refused_naming(spec, {"checkpoints.ldb", "pieces"});
}

BOOST_AUTO_TEST_CASE(a_deleted_manifest_is_refused_naming_it_and_the_way_out) {
  two_checkpoints(spec);
  auto manifests = db_files(spec.checkpoints, "");
  std::erase_if(manifests, [](auto& p) { return !p.filename().string().starts_with("MANIFEST-"); });
  BOOST_REQUIRE(!manifests.empty());
  for (auto& m : manifests)
    fs::remove(m);

  refused_naming(spec, {"MANIFEST", "on_unreadable"}); // repair or start fresh

  // The tables are all there: a repair rebuilds the MANIFEST and loses nothing.
  spec.on_unreadable = unreadable_checkpoints::repair;
  auto [r, batches] = spec.run();
  BOOST_TEST((r.restored_from == std::optional<std::int64_t>{1}));
  one_report_naming(r.skipped_checkpoints, {"RepairDB"});
  BOOST_TEST(batches.empty());
}

BOOST_AUTO_TEST_CASE(a_torn_log_that_lost_the_newest_metadata_is_reported_not_silent) {
  const auto first = two_checkpoints_in_the_log(spec);
  // Cut the log in the middle of checkpoint 1's metadata record, synced long before: LevelDB
  // takes a torn last record for a write a crash interrupted and drops it without a word.
  const auto logs = db_files(spec.checkpoints, ".log");
  BOOST_REQUIRE_EQUAL(logs.size(), 1u);
  const auto bytes = read_all(logs[0]);
  const auto at = bytes.find(meta_key(1));
  BOOST_REQUIRE(at != std::string::npos);
  fs::resize_file(logs[0], at + 8);

  one_report_naming(falls_back_to_checkpoint_0(spec, first),
                    {"checkpoint 1", "torn", logs[0].filename().string()});
}

BOOST_AUTO_TEST_CASE(newest_metadata_lost_from_the_database_is_reported_not_silent) {
  const auto first = two_checkpoints(spec);
  delete_raw(spec.checkpoints, meta_key(1)); // whatever way the database lost it

  one_report_naming(falls_back_to_checkpoint_0(spec, first), {"checkpoint 1", "lost"});
}

BOOST_AUTO_TEST_CASE(repair_rebuilds_a_database_without_current_and_restores_the_newest) {
  two_checkpoints_with_piece_files(spec);
  fs::remove(spec.checkpoints / "checkpoints.ldb" / "CURRENT");
  spec.on_unreadable = unreadable_checkpoints::repair;

  auto [r, batches] = spec.run();
  BOOST_REQUIRE(r.restored_from.has_value());
  BOOST_TEST(*r.restored_from == 1); // nothing was lost: every checkpoint verifies
  one_report_naming(r.skipped_checkpoints, {"RepairDB", "CURRENT"});
  BOOST_TEST(batches.empty());
  // The repaired store is a store like any other: the next start says nothing.
  spec.on_unreadable = unreadable_checkpoints::refuse;
  auto [again, none] = spec.run();
  BOOST_TEST((again.restored_from == std::optional<std::int64_t>{1}));
  BOOST_TEST(again.skipped_checkpoints.empty());
}

BOOST_AUTO_TEST_CASE(start_fresh_deletes_an_unreadable_store_says_so_and_runs_from_scratch) {
  const auto first = two_checkpoints_with_piece_files(spec);
  fs::remove(spec.checkpoints / "checkpoints.ldb" / "CURRENT");
  const auto old_files = data_files(spec.checkpoints);
  spec.on_unreadable = unreadable_checkpoints::start_fresh;

  auto [r, batches] = spec.run();
  BOOST_TEST(!r.restored_from.has_value());
  one_report_naming(r.skipped_checkpoints, {"start_fresh", "deleted", "CURRENT"});
  BOOST_TEST((batches == first), "every file is read again from scratch");
  for (auto& [name, size] : old_files)
    if (name.starts_with("pieces/"))
      BOOST_TEST(!fs::exists(spec.checkpoints / name), name << " was deleted");
}

BOOST_AUTO_TEST_CASE(repair_that_recovers_no_checkpoint_refuses_to_start_fresh) {
  two_checkpoints_with_piece_files(spec);
  fs::remove_all(spec.checkpoints / "checkpoints.ldb"); // only piece files are left
  const auto pieces = data_files(spec.checkpoints / "pieces");
  spec.on_unreadable = unreadable_checkpoints::repair;

  // Not refused_naming: the repair rebuilds a database beside the piece files.
  auto e = spec.refused();
  names_all(e.message, {spec.checkpoints.string(), "checkpoint 1", "lost"});
  BOOST_TEST((data_files(spec.checkpoints / "pieces") == pieces), "piece files are kept");
}

// -- the newest table damaged: refused naming it; a repair falls back to checkpoint 0 ------

BOOST_AUTO_TEST_CASE(a_deleted_table_of_the_newest_checkpoint_is_refused_and_repair_falls_back) {
  const auto first = two_checkpoints_in_two_tables(spec);
  const auto newest = db_files(spec.checkpoints, ".ldb").back();
  fs::remove(newest);

  refused_naming(spec, {newest.filename().string(), "on_unreadable"});
  repair_falls_back_to_checkpoint_0(spec, first, {"checkpoint 1", "lost"});
}

BOOST_AUTO_TEST_CASE(a_truncated_table_is_refused_naming_it_and_repair_falls_back) {
  const auto first = two_checkpoints_in_two_tables(spec);
  const auto newest = db_files(spec.checkpoints, ".ldb").back();
  fs::resize_file(newest, fs::file_size(newest) / 2);

  refused_naming(spec, {newest.filename().string(), "on_unreadable"});
  repair_falls_back_to_checkpoint_0(spec, first, {"checkpoint 1"});
}

BOOST_AUTO_TEST_CASE(flipped_bytes_in_a_table_are_refused_and_repair_falls_back) {
  const auto first = two_checkpoints_in_two_tables(spec);
  const auto newest = db_files(spec.checkpoints, ".ldb").back();
  // In a data block (the index and footer are at the end).
  flip_byte(newest, fs::file_size(newest) / 3, 0x5a);

  refused_naming(spec, {"on_unreadable"});
  repair_falls_back_to_checkpoint_0(spec, first, {"checkpoint 1"});
}

// -- checkpoint 1 damaged in a readable database: the start falls back to checkpoint 0 -----

BOOST_AUTO_TEST_CASE(flipped_bytes_in_a_piece_file_fall_back_and_name_it) {
  const auto first = two_checkpoints_with_piece_files(spec);
  const auto file = piece_files_of(spec, 1).front();
  flip_byte(file, fs::file_size(file) / 2, 0x01);

  one_report_naming(falls_back_to_checkpoint_0(spec, first), {"checkpoint 1", "corrupt"});
}

BOOST_AUTO_TEST_CASE(deleted_piece_files_of_the_newest_checkpoint_fall_back_and_name_them) {
  const auto first = two_checkpoints_with_piece_files(spec);
  for (auto& f : piece_files_of(spec, 1))
    fs::remove(f);

  one_report_naming(falls_back_to_checkpoint_0(spec, first), {"checkpoint 1", ".pieces"});
}

BOOST_AUTO_TEST_CASE(a_corrupt_state_piece_falls_back_to_the_previous_checkpoint) {
  const auto first = two_checkpoints(spec);
  const auto piece = piece_of(spec.checkpoints, 1, "sums/kg/");
  overwrite_raw(spec.checkpoints, piece_key(1, piece), "flipped bits");

  // From checkpoint 0 the second file is read again, on top of the first file's sums.
  one_report_naming(falls_back_to_checkpoint_0(spec, first), {"checkpoint 1", piece, "corrupt"});
}

BOOST_AUTO_TEST_CASE(a_corrupt_source_position_falls_back_to_the_previous_checkpoint) {
  const auto first = two_checkpoints(spec);
  overwrite_raw(spec.checkpoints, piece_key(1, "source/files/0"), "{\"done\": []}");

  one_report_naming(falls_back_to_checkpoint_0(spec, first), {"source/files/0"});
}

BOOST_AUTO_TEST_CASE(corrupt_metadata_falls_back_and_is_named) {
  const auto first = two_checkpoints(spec);
  overwrite_raw(spec.checkpoints, meta_key(1), "{\"id\": 1}\n0000000000000000");

  one_report_naming(falls_back_to_checkpoint_0(spec, first), {"checkpoint 1", "metadata"});

  // The run wrote a good checkpoint 1 over the corrupt one: the next start uses it.
  auto [again, none] = spec.run();
  BOOST_REQUIRE(again.restored_from.has_value());
  BOOST_TEST(*again.restored_from == 1);
  BOOST_TEST(again.skipped_checkpoints.empty());
  BOOST_TEST(none.empty());
}

BOOST_AUTO_TEST_CASE(when_every_checkpoint_is_corrupt_the_job_refuses_to_start) {
  two_checkpoints(spec);
  overwrite_raw(spec.checkpoints, meta_key(1), "garbage");
  overwrite_raw(spec.checkpoints, piece_key(0, piece_of(spec.checkpoints, 0, "sums/kg/")), "garbage");

  // Not refused_naming: opening the database moves overwrite_raw's log into a table file.
  for (int attempt = 0; attempt < 2; ++attempt) { // and it stays that way: nothing overwritten
    auto e = spec.refused();
    names_all(e.message, {spec.checkpoints.string(), "checkpoint 0", "checkpoint 1"});
  }
  auto ids = open_store(spec.checkpoints)->complete_ids();
  BOOST_REQUIRE(ids.has_value());
  BOOST_TEST((*ids == std::vector<std::int64_t>{0, 1}));
}

BOOST_AUTO_TEST_CASE(operators_without_snapshots_are_refused_by_name) {
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
