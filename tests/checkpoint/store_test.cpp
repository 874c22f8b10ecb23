// The checkpoint store: complete checkpoints come back verified; incomplete, corrupt and
// partial ones are skipped with a reason; retention keeps the newest and every savepoint.
#define BOOST_TEST_MODULE checkpoint
#include <boost/test/unit_test.hpp>

#include "sluice/checkpoint/store.hpp"
#include "sluice/tests/common/temp_dir.hpp"

#include <leveldb/db.h>
#include <xxhash.h>

#include <cstdio>
#include <fstream>
#include <iterator>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

using namespace sluice;

namespace {

std::unique_ptr<checkpoint_store> open_store(const std::filesystem::path& dir, std::size_t retained = 3,
                                             std::size_t file_threshold = 20 << 10) {
  auto s = checkpoint_store::open(dir, {.retained = retained, .file_threshold = file_threshold});
  BOOST_REQUIRE_MESSAGE(s, (s ? "" : s.error().to_string()));
  return std::move(*s);
}

/// Writes checkpoint `id` with two pieces whose bytes name the checkpoint.
checkpoint_meta write_checkpoint(checkpoint_store& store, std::int64_t id, bool savepoint = false) {
  checkpoint_meta m;
  m.id = id;
  m.savepoint = savepoint;
  m.job = "test";
  m.max_key_groups = 128;
  m.properties["epoch"] = std::to_string(id * 10);
  for (std::string name : {"state/window/7", "source/file/0"}) {
    auto p = store.put(id, name, name + "@" + std::to_string(id));
    BOOST_REQUIRE(p);
    m.pieces.push_back(*p);
  }
  BOOST_REQUIRE(store.complete(m));
  return m;
}

/// The piece files beside the database, by name.
std::set<std::string> piece_files(const std::filesystem::path& dir) {
  std::set<std::string> out;
  for (auto& e : std::filesystem::directory_iterator{dir / "pieces"})
    out.insert(e.path().filename().string());
  return out;
}

/// The one log file of the database in `dir`, and its bytes.
std::pair<std::filesystem::path, std::string> the_log(const std::filesystem::path& dir) {
  std::vector<std::filesystem::path> logs;
  for (auto& e : std::filesystem::directory_iterator{dir / "checkpoints.ldb"})
    if (e.path().extension() == ".log" && e.file_size() > 0)
      logs.push_back(e.path());
  BOOST_REQUIRE_EQUAL(logs.size(), 1u);
  std::ifstream in{logs[0], std::ios::binary};
  return {logs[0], std::string{std::istreambuf_iterator<char>{in}, std::istreambuf_iterator<char>{}}};
}

/// A piece that does not compress below `n` bytes (so it goes to a file at a threshold below).
std::string incompressible(std::size_t n, std::uint64_t seed) {
  std::string out;
  while (out.size() < n) {
    seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
    out.push_back(static_cast<char>(seed >> 56));
  }
  return out;
}

/// Overwrites a raw key of the store's database (the store must be closed).
void overwrite_raw(const std::filesystem::path& dir, const std::string& key, const std::string& value) {
  leveldb::DB* raw = nullptr;
  leveldb::Options o;
  BOOST_REQUIRE(leveldb::DB::Open(o, (dir / "checkpoints.ldb").string(), &raw).ok());
  std::unique_ptr<leveldb::DB> db{raw};
  BOOST_REQUIRE(db->Put(leveldb::WriteOptions{}, key, value).ok());
}

/// The newest complete checkpoint that verifies (which must exist) and the reports of the
/// checkpoints skipped on the way.
struct found {
  checkpoint_meta latest;
  std::vector<std::string> skipped;
};
found latest_of(checkpoint_store& store) {
  std::vector<std::string> skipped;
  auto latest = store.latest(skipped);
  BOOST_REQUIRE(latest && latest->has_value());
  return {**latest, std::move(skipped)};
}

std::string meta_key(std::int64_t id) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "m/%020lld", static_cast<long long>(id));
  return buf;
}

} // namespace

BOOST_AUTO_TEST_SUITE(store)

BOOST_AUTO_TEST_CASE(pieces_are_stored_compressed_when_it_pays_and_read_back_exactly) {
  test::temp_dir dir;
  auto store = open_store(dir.path);
  std::string repetitive;
  for (int i = 0; i < 2000; ++i)
    repetitive += "key-" + std::to_string(i % 10) + std::string(8, '\0');
  std::string noise;
  std::uint64_t x = 42;
  for (int i = 0; i < 300; ++i) {
    x = x * 6364136223846793005ULL + 1442695040888963407ULL;
    noise.push_back(static_cast<char>(x >> 56));
  }
  checkpoint_meta m;
  m.id = 1;
  m.job = "test";
  m.max_key_groups = 128;
  auto pieces = store->put_all(1, {{"op/kg/0", repetitive}, {"op/kg/1", noise}, {"op/kg/2", ""}});
  BOOST_REQUIRE(pieces);
  m.pieces = *pieces;
  BOOST_REQUIRE(store->complete(m));
  BOOST_TEST((*pieces)[0].size < repetitive.size() / 4, (*pieces)[0].size << " bytes stored");
  BOOST_TEST((*pieces)[1].size == noise.size() + 1, "kept as it is, behind a tag byte");
  auto found = store->find(1);
  BOOST_REQUIRE(found);
  BOOST_TEST(*store->get(*found, "op/kg/0") == repetitive);
  BOOST_TEST(*store->get(*found, "op/kg/1") == noise);
  BOOST_TEST(store->get(*found, "op/kg/2")->empty());
}

BOOST_AUTO_TEST_CASE(without_compression_pieces_are_stored_as_given) {
  test::temp_dir dir;
  auto opened = checkpoint_store::open(dir.path, {.compress = false});
  BOOST_REQUIRE(opened);
  auto& store = **opened;
  const std::string repetitive(5000, 'a');
  auto pieces = store.put_all(1, {{"op/kg/0", repetitive}});
  BOOST_REQUIRE(pieces);
  BOOST_TEST((*pieces)[0].size == repetitive.size() + 1, "a tag byte and the bytes");
  checkpoint_meta m;
  m.id = 1;
  m.job = "test";
  m.pieces = *pieces;
  BOOST_REQUIRE(store.complete(m));
  BOOST_TEST(*store.get(*store.find(1), "op/kg/0") == repetitive);
}

BOOST_AUTO_TEST_CASE(a_complete_checkpoint_comes_back_with_its_pieces) {
  test::temp_dir dir;
  auto store = open_store(dir.path);
  std::vector<std::string> skipped;
  auto none = store->latest(skipped);
  BOOST_REQUIRE(none);
  BOOST_TEST(!none->has_value());
  BOOST_TEST(*store->highest_id() == -1);

  write_checkpoint(*store, 1);
  const auto m = latest_of(*store).latest;
  BOOST_TEST(m.id == 1);
  BOOST_TEST(m.job == "test");
  BOOST_TEST(m.max_key_groups == 128);
  BOOST_TEST(m.properties.at("epoch") == "10");
  BOOST_TEST(*store->get(m, "state/window/7") == "state/window/7@1");
  BOOST_TEST(*store->get(m, "source/file/0") == "source/file/0@1");
  BOOST_TEST(!store->get(m, "nope"));
  BOOST_TEST(skipped.empty());
}

BOOST_AUTO_TEST_CASE(pieces_without_metadata_are_not_a_checkpoint) {
  test::temp_dir dir;
  auto store = open_store(dir.path);
  write_checkpoint(*store, 1);
  BOOST_REQUIRE(store->put(2, "state/window/7", "half written"));
  auto [latest, skipped] = latest_of(*store);
  BOOST_TEST(latest.id == 1);
  BOOST_TEST(*store->highest_id() == 2); // a new run numbers after the unfinished one
  BOOST_TEST(!store->find(2));
}

BOOST_AUTO_TEST_CASE(a_corrupt_piece_falls_back_to_the_previous_checkpoint) {
  test::temp_dir dir;
  auto store = open_store(dir.path);
  write_checkpoint(*store, 1);
  write_checkpoint(*store, 2);
  BOOST_REQUIRE(store->put(2, "source/file/0", "flipped bits")); // damage after completion
  auto [latest, skipped] = latest_of(*store);
  BOOST_TEST(latest.id == 1);
  BOOST_REQUIRE_EQUAL(skipped.size(), 1u);
  BOOST_TEST(skipped[0].find("checkpoint 2") != std::string::npos);
  BOOST_TEST(skipped[0].find("corrupt") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(corrupt_metadata_falls_back_and_says_why) {
  test::temp_dir dir;
  {
    auto store = open_store(dir.path);
    write_checkpoint(*store, 1);
    write_checkpoint(*store, 2);
  }
  overwrite_raw(dir.path, meta_key(2), "{\"id\": 2}\n0000000000000000");
  auto store = open_store(dir.path);
  auto [latest, skipped] = latest_of(*store);
  BOOST_TEST(latest.id == 1);
  BOOST_REQUIRE_EQUAL(skipped.size(), 1u);
  BOOST_TEST(skipped[0].find("metadata checksum mismatch") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(a_missing_piece_makes_a_checkpoint_partial) {
  test::temp_dir dir;
  auto store = open_store(dir.path);
  auto m = write_checkpoint(*store, 1);
  m.id = 2;
  m.pieces.push_back({"state/other/3", 5, 42}); // listed, never written
  BOOST_REQUIRE(store->put(2, "state/window/7", "state/window/7@1"));
  BOOST_REQUIRE(store->put(2, "source/file/0", "source/file/0@1"));
  BOOST_REQUIRE(store->complete(m));
  auto [latest, skipped] = latest_of(*store);
  BOOST_TEST(latest.id == 1);
  BOOST_REQUIRE_EQUAL(skipped.size(), 1u);
  BOOST_TEST(skipped[0].find("missing") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(retention_keeps_the_newest_and_every_savepoint) {
  test::temp_dir dir;
  auto store = open_store(dir.path, 2);
  write_checkpoint(*store, 1);
  write_checkpoint(*store, 2, /*savepoint=*/true);
  BOOST_REQUIRE(store->put(3, "state/window/7", "never completed"));
  for (std::int64_t id = 4; id <= 6; ++id)
    write_checkpoint(*store, id);
  auto ids = store->complete_ids();
  BOOST_REQUIRE(ids);
  BOOST_TEST(*ids == (std::vector<std::int64_t>{2, 5, 6}), boost::test_tools::per_element());
  BOOST_TEST(*store->highest_id() == 6); // checkpoint 3's leftovers are gone too
  auto sp = store->find(2);
  BOOST_REQUIRE(sp);
  BOOST_TEST(sp->savepoint);
}

BOOST_AUTO_TEST_CASE(a_savepoint_copies_the_pieces_it_shares_and_stands_alone) {
  test::temp_dir dir;
  auto store = open_store(dir.path, 1);
  auto first = write_checkpoint(*store, 1);
  // Checkpoint 2 (incremental) refers to both pieces of checkpoint 1; it becomes a savepoint.
  checkpoint_meta sp = first;
  sp.id = 2;
  BOOST_REQUIRE(store->complete(sp));
  sp.savepoint = true;
  BOOST_REQUIRE(store->complete(sp));
  auto found = store->find(2);
  BOOST_REQUIRE_MESSAGE(found, (found ? "" : found.error().to_string()));
  for (auto& p : found->pieces)
    BOOST_TEST(p.stored_in == 2, p.name << " is stored in checkpoint " << p.stored_in);
  BOOST_TEST(*store->get(*found, "state/window/7") == "state/window/7@1");
  // Retention (1 kept) now deletes checkpoint 1 whole: nothing refers to it.
  write_checkpoint(*store, 3);
  BOOST_TEST((*store->complete_ids() == std::vector<std::int64_t>{2, 3}));
  store.reset();
  leveldb::DB* raw = nullptr;
  BOOST_REQUIRE(leveldb::DB::Open(leveldb::Options{}, (dir.path / "checkpoints.ldb").string(), &raw).ok());
  std::unique_ptr<leveldb::DB> db{raw};
  std::unique_ptr<leveldb::Iterator> it{db->NewIterator(leveldb::ReadOptions{})};
  int of_checkpoint_1 = 0;
  for (it->SeekToFirst(); it->Valid(); it->Next())
    if (it->key().ToString().find("00000000000000000001") != std::string::npos)
      ++of_checkpoint_1;
  BOOST_TEST(of_checkpoint_1 == 0, "keys of checkpoint 1 left: " << of_checkpoint_1);
}

BOOST_AUTO_TEST_CASE(another_nodes_pieces_of_a_savepoint_read_through_node_0s_metadata) {
  // A two-node run, as the coordinator (node 0) and the node agent (node 1) drive their
  // stores: checkpoints 2 and 3, then savepoint 4, incremental, whose key group 113 of node
  // 1 is still the one checkpoint 2 wrote; then 5, which rewrites it, and 6. Retention (2
  // kept) deletes checkpoints 2 and 3 on both nodes, and with them every copy of node 1's
  // key group 113 but the savepoint's own. A restore of the savepoint hands node 0's
  // metadata to node 1, whose tasks read their pieces through it: node 0 copied only its
  // own pieces into the savepoint, so node 1's still name checkpoint 2 there.
  test::temp_dir dir;
  auto open_node = [&](int node) {
    auto s = checkpoint_store::open(dir.path / ("node-" + std::to_string(node)),
                                    {.retained = 2, .node = node});
    BOOST_REQUIRE_MESSAGE(s, (s ? "" : s.error().to_string()));
    return std::move(*s);
  };
  auto node0 = open_node(0);
  auto node1 = open_node(1);
  std::map<std::string, checkpoint_piece> latest; // the newest write of each piece
  auto write = [&](checkpoint_store& store, std::int64_t id, const std::string& name) {
    auto p = store.put(id, name, name + "@" + std::to_string(id));
    BOOST_REQUIRE_MESSAGE(p, (p ? "" : p.error().to_string()));
    latest[name] = *p;
  };
  auto complete = [&](std::int64_t id, bool savepoint) {
    checkpoint_meta all; // node 0's: every node's pieces, as the tasks reported them
    all.id = id;
    all.job = "test";
    all.max_key_groups = 128;
    for (auto& [name, p] : latest)
      all.pieces.push_back(p);
    BOOST_REQUIRE(node0->complete(all));
    if (savepoint) {
      all.savepoint = true; // rewritten with the flag (checkpoint_coordinator)
      BOOST_REQUIRE(node0->complete(all));
    }
    auto own = all; // node 1's: the pieces its tasks reported
    std::erase_if(own.pieces, [](const checkpoint_piece& p) { return p.node != 1; });
    BOOST_REQUIRE(node1->complete(own));
  };
  for (std::int64_t id = 2; id <= 6; ++id) {
    write(*node0, id, "sums/kg/1");
    write(*node1, id, "sums/kg/7");
    if (id == 2 || id == 5) { // unchanged in 3 and 4, which refer to checkpoint 2's
      write(*node0, id, "sums/kg/64");
      write(*node1, id, "sums/kg/113");
    }
    complete(id, id == 4);
  }
  BOOST_TEST((*node1->complete_ids() == std::vector<std::int64_t>{4, 5, 6}));
  auto sp = node0->find(4);
  BOOST_REQUIRE_MESSAGE(sp, (sp ? "" : sp.error().to_string()));
  BOOST_REQUIRE(sp->savepoint);
  std::erase_if(sp->pieces, [](const checkpoint_piece& p) { return p.node != 1; });
  for (auto [name, bytes] : {std::pair{"sums/kg/113", "sums/kg/113@2"},
                             std::pair{"sums/kg/7", "sums/kg/7@4"}}) {
    auto got = node1->get(*sp, name);
    BOOST_TEST_REQUIRE(got.has_value(), name << ": " << (got ? "" : got.error().to_string()));
    BOOST_TEST(*got == bytes);
  }
}

BOOST_AUTO_TEST_CASE(large_pieces_live_in_files_that_retention_deletes) {
  test::temp_dir dir;
  auto store = open_store(dir.path, 1, /*file_threshold=*/1000);
  auto write = [&](std::int64_t id, bool savepoint = false) {
    checkpoint_meta m;
    m.id = id;
    m.savepoint = savepoint;
    m.job = "test";
    m.max_key_groups = 128;
    auto ps = store->put_all(id, {{"kg/1", incompressible(5000, id)},
                                  {"kg/2", incompressible(3000, id + 100)},
                                  {"source/0", "small"}});
    BOOST_REQUIRE_MESSAGE(ps, (ps ? "" : ps.error().to_string()));
    m.pieces = *ps;
    BOOST_REQUIRE(store->complete(m));
    return m;
  };
  auto first = write(1);
  const auto first_files = piece_files(dir.path);
  BOOST_TEST(first_files.size() == 1u); // both large pieces in one file
  BOOST_TEST(*store->get(first, "kg/1") == incompressible(5000, 1));
  BOOST_TEST(*store->get(first, "kg/2") == incompressible(3000, 101));
  BOOST_TEST(*store->get(first, "source/0") == "small");
  auto sp = write(2);
  // Checkpoint 1 is dropped, but its file stays until the deletion of its records is synced.
  BOOST_TEST(piece_files(dir.path).size() == 2u);
  // An incremental checkpoint 3 that reuses checkpoint 2's pieces, made a savepoint: its own
  // copies go to a file of its own, and checkpoint 2's file goes with checkpoint 2.
  sp.id = 3;
  sp.savepoint = true;
  BOOST_REQUIRE(store->complete(sp));
  auto files = piece_files(dir.path);
  BOOST_TEST(files.size() == 2u);
  BOOST_TEST(!files.count(*first_files.begin()), "checkpoint 1's file is deleted");
  write(4);
  store.reset();
  store = open_store(dir.path, 1, 1000);
  BOOST_TEST((*store->complete_ids() == std::vector<std::int64_t>{3, 4}));
  BOOST_TEST(piece_files(dir.path).size() == 2u);
  auto found = store->find(3);
  BOOST_REQUIRE_MESSAGE(found, (found ? "" : found.error().to_string()));
  BOOST_TEST(*store->get(*found, "kg/1") == incompressible(5000, 2));
}

BOOST_AUTO_TEST_CASE(a_savepoint_copies_in_bounded_batches_and_a_failed_copy_leaves_no_file) {
  // Four large pieces of 4000 bytes, copied in batches of at least 6000: two files.
  auto open_batched = [](const std::filesystem::path& dir) {
    auto s = checkpoint_store::open(
      dir, {.retained = 3, .file_threshold = 1000, .savepoint_copy_batch = 6000});
    BOOST_REQUIRE_MESSAGE(s, (s ? "" : s.error().to_string()));
    return std::move(*s);
  };
  auto first = [](checkpoint_store& store) {
    checkpoint_meta m;
    m.id = 1;
    m.job = "test";
    std::vector<std::pair<std::string, std::string>> pieces;
    for (int i = 0; i < 4; ++i)
      pieces.emplace_back("kg/" + std::to_string(i), incompressible(4000, 10 + i));
    pieces.emplace_back("source/0", "small");
    auto ps = store.put_all(1, pieces);
    BOOST_REQUIRE(ps);
    m.pieces = *ps;
    BOOST_REQUIRE(store.complete(m));
    m.id = 2; // an incremental checkpoint 2 refers to all of them, made a savepoint
    m.savepoint = true;
    return m;
  };
  {
    test::temp_dir dir;
    auto store = open_batched(dir.path);
    auto sp = first(*store);
    BOOST_TEST(piece_files(dir.path).size() == 1u);
    auto ok = store->complete(sp);
    BOOST_REQUIRE_MESSAGE(ok, (ok ? "" : ok.error().to_string()));
    BOOST_TEST(piece_files(dir.path).size() == 3u, "checkpoint 1's file and two batches");
    store.reset();
    store = open_batched(dir.path);
    auto found = store->find(2);
    BOOST_REQUIRE_MESSAGE(found, (found ? "" : found.error().to_string()));
    for (int i = 0; i < 4; ++i)
      BOOST_TEST(*store->get(*found, "kg/" + std::to_string(i)) == incompressible(4000, 10 + i));
    BOOST_TEST(*store->get(*found, "source/0") == "small");
    BOOST_TEST(piece_files(dir.path).size() == 3u);
  }
  {
    // The third piece is damaged: the first batch was written, and is deleted again.
    test::temp_dir dir;
    auto store = open_batched(dir.path);
    auto sp = first(*store);
    const auto file = dir.path / "pieces" / *piece_files(dir.path).begin();
    {
      std::fstream f{file, std::ios::in | std::ios::out | std::ios::binary};
      f.seekp(2 * 4000 + 10);
      f.put('\x5a');
    }
    auto ok = store->complete(sp);
    BOOST_REQUIRE(!ok);
    const auto& m = ok.error().message;
    BOOST_TEST(m.find("savepoint 2: piece 'kg/2' of checkpoint 1") != std::string::npos, m);
    BOOST_TEST(piece_files(dir.path).size() == 1u, "only checkpoint 1's file is left");
    BOOST_TEST((*store->complete_ids() == std::vector<std::int64_t>{1}));
  }
}

BOOST_AUTO_TEST_CASE(a_damaged_or_missing_piece_file_falls_back_and_names_the_file) {
  // Writes checkpoints 1 and 2, damages checkpoint 2's file, and says what `latest` returned.
  auto latest_after = [](auto damage) {
    test::temp_dir dir;
    auto store = open_store(dir.path, 3, 1000);
    for (std::int64_t id : {1, 2}) {
      checkpoint_meta m;
      m.id = id;
      m.job = "test";
      auto ps = store->put_all(id, {{"kg/1", incompressible(4000, id)}});
      BOOST_REQUIRE(ps);
      m.pieces = *ps;
      BOOST_REQUIRE(store->complete(m));
    }
    damage(dir.path / "pieces" / *piece_files(dir.path).rbegin());
    auto [latest, skipped] = latest_of(*store);
    BOOST_REQUIRE_EQUAL(skipped.size(), 1u);
    return std::pair{latest.id, skipped[0]};
  };
  auto [id, why] = latest_after([](const std::filesystem::path& f) {
    std::filesystem::resize_file(f, 100);
  });
  BOOST_TEST(id == 1);
  BOOST_TEST(why.find("truncated") != std::string::npos, why);
  BOOST_TEST(why.find(".pieces") != std::string::npos, why);
  std::tie(id, why) = latest_after([](const std::filesystem::path& f) {
    std::fstream out{f, std::ios::in | std::ios::out | std::ios::binary};
    out.seekp(10);
    out.put('\x55');
  });
  BOOST_TEST(id == 1);
  BOOST_TEST(why.find("corrupt") != std::string::npos, why);
  std::tie(id, why) = latest_after([](const std::filesystem::path& f) { std::filesystem::remove(f); });
  BOOST_TEST(id == 1);
  BOOST_TEST(why.find("cannot open checkpoint file") != std::string::npos, why);
}

BOOST_AUTO_TEST_CASE(a_piece_file_no_record_refers_to_is_deleted_at_open) {
  test::temp_dir dir;
  {
    auto store = open_store(dir.path, 3, 1000);
    BOOST_REQUIRE(store->put_all(1, {{"kg/1", incompressible(4000, 1)}}));
  }
  std::ofstream{dir.path / "pieces" / "00000000000000000002-0.pieces"} << "a crash left me";
  auto store = open_store(dir.path, 3, 1000);
  const auto files = piece_files(dir.path);
  BOOST_REQUIRE_EQUAL(files.size(), 1u);
  BOOST_TEST(files.begin()->starts_with("00000000000000000001-"), *files.begin());
}

BOOST_AUTO_TEST_CASE(a_run_that_rewrites_the_id_an_earlier_run_crashed_in_keeps_its_files) {
  test::temp_dir dir;
  auto write = [&](checkpoint_store& store, std::int64_t id, bool complete) {
    auto ps = store.put_all(id, {{"kg/1", incompressible(4000, id)}});
    BOOST_REQUIRE_MESSAGE(ps, (ps ? "" : ps.error().to_string()));
    checkpoint_meta m;
    m.id = id;
    m.job = "test";
    m.pieces = *ps;
    if (complete)
      BOOST_REQUIRE(store.complete(m));
  };
  write(*open_store(dir.path, 1, 1000), 1, true);
  write(*open_store(dir.path, 1, 1000), 2, false); // crashed before checkpoint 2 completed
  {
    auto store = open_store(dir.path, 1, 1000); // resumes from 1 and writes 2 again
    write(*store, 2, true);
  }
  auto store = open_store(dir.path, 1, 1000);
  auto [latest, skipped] = latest_of(*store);
  BOOST_TEST(latest.id == 2);
  BOOST_TEST(skipped.empty(), (skipped.empty() ? "" : skipped[0]));
  BOOST_TEST(*store->get(latest, "kg/1") == incompressible(4000, 2));
}

BOOST_AUTO_TEST_CASE(a_torn_log_tail_that_lost_only_unsynced_pieces_is_no_loss) {
  test::temp_dir dir;
  {
    auto store = open_store(dir.path);
    write_checkpoint(*store, 1);
    BOOST_REQUIRE(store->put(2, "state/window/7", "pieces of a checkpoint a crash interrupted"));
  }
  // A crash in the middle of the unsynced write of checkpoint 2's piece.
  auto [log, bytes] = the_log(dir.path);
  const auto at = bytes.rfind("pieces of a checkpoint");
  BOOST_REQUIRE(at != std::string::npos);
  std::filesystem::resize_file(log, at + 4);

  auto store = open_store(dir.path);
  auto [latest, skipped] = latest_of(*store);
  BOOST_TEST(latest.id == 1);
  BOOST_TEST(skipped.empty(), (skipped.empty() ? "" : skipped[0]));
  BOOST_TEST(store->opening_notes().empty(),
             (store->opening_notes().empty() ? "" : store->opening_notes()[0]));
}

BOOST_AUTO_TEST_CASE(a_torn_log_tail_in_a_store_without_the_marker_is_reported) {
  test::temp_dir dir;
  {
    auto store = open_store(dir.path);
    write_checkpoint(*store, 1);
    write_checkpoint(*store, 2);
  }
  std::filesystem::remove(dir.path / "last-completed-checkpoint"); // written before it existed
  auto [log, bytes] = the_log(dir.path);
  const auto at = bytes.rfind("m/00000000000000000002");
  BOOST_REQUIRE(at != std::string::npos);
  std::filesystem::resize_file(log, at + 4);

  auto store = open_store(dir.path);
  BOOST_REQUIRE_EQUAL(store->opening_notes().size(), 1u);
  const auto& note = store->opening_notes()[0];
  BOOST_TEST(note.find("torn") != std::string::npos, note);
  BOOST_TEST(note.find(log.filename().string()) != std::string::npos, note);
  BOOST_TEST(note.find("may be missing") != std::string::npos, note);
  auto [latest, skipped] = latest_of(*store);
  BOOST_TEST(latest.id == 1);
}

BOOST_AUTO_TEST_CASE(a_discarded_history_is_not_reported_as_lost) {
  test::temp_dir dir;
  {
    auto store = open_store(dir.path);
    for (std::int64_t id = 1; id <= 3; ++id)
      write_checkpoint(*store, id);
    auto gone = store->discard_after(1);
    BOOST_REQUIRE(gone);
    BOOST_TEST((*gone == std::vector<std::int64_t>{2, 3}));
  }
  auto store = open_store(dir.path);
  auto [latest, skipped] = latest_of(*store);
  BOOST_TEST(latest.id == 1);
  BOOST_TEST(skipped.empty(), (skipped.empty() ? "" : skipped[0]));
}

BOOST_AUTO_TEST_CASE(the_record_that_the_job_ended_survives_a_reopening_until_cleared) {
  test::temp_dir dir;
  {
    auto store = open_store(dir.path);
    auto none = store->job_end();
    BOOST_REQUIRE(none);
    BOOST_TEST(!none->has_value());
    write_checkpoint(*store, 4);
    write_checkpoint(*store, 5);
    BOOST_REQUIRE(store->record_job_end()); // after checkpoint 5, the newest
  }
  {
    auto store = open_store(dir.path);
    auto ended = store->job_end();
    BOOST_REQUIRE(ended);
    BOOST_REQUIRE(ended->has_value());
    BOOST_TEST(**ended == 5);
    // Beside the checkpoints, not among them.
    BOOST_TEST((*store->complete_ids() == std::vector<std::int64_t>{4, 5}));
    BOOST_TEST(*store->highest_id() == 5);
    auto [latest, skipped] = latest_of(*store);
    BOOST_TEST(latest.id == 5);
    BOOST_TEST(skipped.empty());
    BOOST_REQUIRE(store->clear_job_end());
  }
  auto store = open_store(dir.path);
  BOOST_TEST(!store->job_end()->has_value());
  BOOST_REQUIRE(store->clear_job_end()); // none left: nothing to write, no error
  test::temp_dir empty;
  auto fresh = open_store(empty.path);
  BOOST_REQUIRE(fresh->record_job_end()); // ended before any checkpoint
  BOOST_TEST(**fresh->job_end() == -1);
}

BOOST_AUTO_TEST_CASE(a_record_that_the_job_ended_that_does_not_read_is_an_error_naming_it) {
  test::temp_dir dir;
  open_store(dir.path);
  {
    leveldb::DB* raw = nullptr;
    BOOST_REQUIRE(leveldb::DB::Open(leveldb::Options{}, (dir.path / "checkpoints.ldb").string(), &raw).ok());
    std::unique_ptr<leveldb::DB> db{raw};
    BOOST_REQUIRE(db->Put(leveldb::WriteOptions{}, "r/job-end", "seven").ok());
  }
  auto ended = open_store(dir.path)->job_end();
  BOOST_REQUIRE(!ended);
  BOOST_TEST(ended.error().message.find("'seven', not a checkpoint id") != std::string::npos,
             ended.error().message);
}

BOOST_AUTO_TEST_CASE(metadata_carries_the_graph_and_old_metadata_still_reads) {
  test::temp_dir dir;
  auto s = checkpoint_store::open(dir.path, {.graph = R"({"format":1,"nodes":[]})"});
  BOOST_REQUIRE(s);
  auto& store = **s;
  write_checkpoint(store, 1);
  auto m = store.find(1);
  BOOST_REQUIRE(m);
  BOOST_TEST(m->graph == R"({"format":1,"nodes":[]})");
  // Format 1, as written before fingerprints: no "format", no "graph".
  std::string text = R"({"id":2,"savepoint":false,"job":"old","max_key_groups":128,)"
                     R"("created":"2024-01-01T00:00:00.000Z","pieces":[],"properties":{}})";
  char hash[20];
  std::snprintf(hash, sizeof hash, "%016llx",
                static_cast<unsigned long long>(XXH64(text.data(), text.size(), 0)));
  s->reset(); // close the database to write to it directly
  {
    leveldb::DB* raw = nullptr;
    BOOST_REQUIRE(leveldb::DB::Open(leveldb::Options{}, (dir.path / "checkpoints.ldb").string(), &raw).ok());
    std::unique_ptr<leveldb::DB> db{raw};
    BOOST_REQUIRE(db->Put(leveldb::WriteOptions{}, "m/00000000000000000002", text + "\n" + hash).ok());
  }
  auto reopened = open_store(dir.path);
  auto old = reopened->find(2);
  BOOST_REQUIRE_MESSAGE(old, (old ? "" : old.error().message));
  BOOST_TEST(old->job == "old");
  BOOST_TEST(old->graph.empty());
}

BOOST_AUTO_TEST_CASE(a_database_whose_creation_a_crash_interrupted_is_created_again) {
  test::temp_dir dir;
  // LevelDB writes a new database's MANIFEST, then its CURRENT: a kill in between leaves a
  // MANIFEST alone, which lists no table. Nothing is lost by creating the store again.
  std::filesystem::create_directories(dir.path / "checkpoints.ldb");
  std::ofstream{dir.path / "checkpoints.ldb" / "MANIFEST-000001"} << "an empty database";
  auto store = open_store(dir.path);
  write_checkpoint(*store, 1);
  auto [latest, skipped] = latest_of(*store);
  BOOST_TEST(latest.id == 1);
}

BOOST_AUTO_TEST_CASE(a_directory_in_use_is_refused_clearly) {
  test::temp_dir dir;
  auto store = open_store(dir.path);
  auto second = checkpoint_store::open(dir.path);
  BOOST_REQUIRE(!second);
  BOOST_TEST((second.error().code == error_code::io_error));
  BOOST_TEST(second.error().message.find("another job") != std::string::npos);
  BOOST_TEST(!checkpoint_store::open(dir.path, {.retained = 0}));
}

BOOST_AUTO_TEST_SUITE_END()
