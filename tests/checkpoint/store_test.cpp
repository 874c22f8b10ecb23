// The checkpoint store: complete checkpoints come back verified; incomplete, corrupt and
// partial ones are skipped with a reason; retention keeps the newest and every savepoint.
#define BOOST_TEST_MODULE checkpoint
#include <boost/test/unit_test.hpp>

#include "checkpoint/store.hpp"
#include "tests/common/temp_dir.hpp"

#include <leveldb/db.h>

#include <memory>
#include <string>
#include <vector>

using namespace sluice;

namespace {

std::unique_ptr<checkpoint_store> open_store(const std::filesystem::path& dir, std::size_t retained = 3) {
  auto s = checkpoint_store::open(dir, {.retained = retained});
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

/// Overwrites a raw key of the store's database (the store must be closed).
void overwrite_raw(const std::filesystem::path& dir, const std::string& key, const std::string& value) {
  leveldb::DB* raw = nullptr;
  leveldb::Options o;
  BOOST_REQUIRE(leveldb::DB::Open(o, (dir / "checkpoints.ldb").string(), &raw).ok());
  std::unique_ptr<leveldb::DB> db{raw};
  BOOST_REQUIRE(db->Put(leveldb::WriteOptions{}, key, value).ok());
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

BOOST_AUTO_TEST_CASE(a_complete_checkpoint_comes_back_with_its_pieces) {
  test::temp_dir dir;
  auto store = open_store(dir.path);
  std::vector<std::string> skipped;
  auto none = store->latest(skipped);
  BOOST_REQUIRE(none);
  BOOST_TEST(!none->has_value());
  BOOST_TEST(*store->highest_id() == -1);

  write_checkpoint(*store, 1);
  auto latest = store->latest(skipped);
  BOOST_REQUIRE(latest && latest->has_value());
  const auto& m = **latest;
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
  std::vector<std::string> skipped;
  auto latest = store->latest(skipped);
  BOOST_REQUIRE(latest && latest->has_value());
  BOOST_TEST((*latest)->id == 1);
  BOOST_TEST(*store->highest_id() == 2); // a new run numbers after the unfinished one
  BOOST_TEST(!store->find(2));
}

BOOST_AUTO_TEST_CASE(a_corrupt_piece_falls_back_to_the_previous_checkpoint) {
  test::temp_dir dir;
  auto store = open_store(dir.path);
  write_checkpoint(*store, 1);
  write_checkpoint(*store, 2);
  BOOST_REQUIRE(store->put(2, "source/file/0", "flipped bits")); // damage after completion
  std::vector<std::string> skipped;
  auto latest = store->latest(skipped);
  BOOST_REQUIRE(latest && latest->has_value());
  BOOST_TEST((*latest)->id == 1);
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
  std::vector<std::string> skipped;
  auto latest = store->latest(skipped);
  BOOST_REQUIRE(latest && latest->has_value());
  BOOST_TEST((*latest)->id == 1);
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
  std::vector<std::string> skipped;
  auto latest = store->latest(skipped);
  BOOST_REQUIRE(latest && latest->has_value());
  BOOST_TEST((*latest)->id == 1);
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
