// Incremental checkpoints of keyed tables (operators/state/snapshot_codec.hpp): a checkpoint
// writes only the changed keys of a key group as a delta and refers to the rest; the state
// it writes is the state at the barrier even when the task changes it before the writer
// thread encodes it (frozen groups are encoded once, then changed in place); chains are
// compacted; the store keeps the pieces a retained checkpoint refers to; and a job restores
// base plus deltas at another parallelism. The window operators' and the interval join's
// key groups as bases and deltas: incremental_window_test.cpp, incremental_join_test.cpp.
#include <boost/test/unit_test.hpp>

#include "sluice/checkpoint/store.hpp"
#include "sluice/operators/state/snapshot_codec.hpp"
#include "sluice/sources/file.hpp"
#include "sluice/tests/checkpoint/incremental_pieces.hpp"
#include "sluice/tests/checkpoint/job_helpers.hpp"
#include "sluice/tests/checkpoint/memory_checkpoints.hpp"

#include <atomic>
#include <map>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

using namespace sluice;
using namespace sluice::test;
using namespace sluice::test::ckpt;

namespace {

using table = keyed_state_table<std::uint64_t, std::int64_t>;

int group_of(std::uint64_t key) { return key_group_of(key_hash<std::uint64_t>{}(key), 128); }

void set(table& t, std::uint64_t key, std::int64_t value) {
  const int g = group_of(key);
  if (g < t.range().first || g >= t.range().last)
    return;
  t.group(g).insert_or_assign(key, value);
  t.note_change(g, key);
}
void erase(table& t, std::uint64_t key) {
  const int g = group_of(key);
  t.group(g).erase(key);
  t.note_change(g, key);
}

std::map<std::uint64_t, std::int64_t> contents(const table& t) {
  std::map<std::uint64_t, std::int64_t> out;
  for (int g = t.range().first; g < t.range().last; ++g)
    for (auto& [k, v] : t.view(g))
      out.emplace(k, v);
  return out;
}

/// One checkpoint: snapshot, then the writer thread's part.
void checkpoint(detail::table_checkpoints<table>& cp, table& t,
                memory_checkpoints& w) {
  w.begin();
  BOOST_REQUIRE(cp.snapshot(t, w));
  w.finish();
}

table restored(memory_checkpoints& w, key_group_range range = {0, 128}) {
  table t{range};
  detail::table_checkpoints<table> cp;
  auto ok = cp.restore(t, w, "counts");
  BOOST_REQUIRE_MESSAGE(ok, (ok ? "" : ok.error().to_string()));
  return t;
}

/// A table holding keys 0..n-1, each set to `value`, with its checkpoints and an in-memory
/// writer (use as `auto& [t, cp, w] = f;`).
struct filled_table {
  table t;
  detail::table_checkpoints<table> cp;
  memory_checkpoints w;
  filled_table(std::uint64_t n, std::int64_t value) {
    for (std::uint64_t k = 0; k < n; ++k)
      set(t, k, value);
  }
};

} // namespace

BOOST_AUTO_TEST_SUITE(incremental)

BOOST_AUTO_TEST_CASE(a_checkpoint_after_few_changes_writes_only_their_deltas) {
  filled_table f{10'000, 1};
  auto& [t, cp, w] = f;
  checkpoint(cp, t, w);
  BOOST_TEST(w.written.size() == 128u, "the first checkpoint is full: every group");
  BOOST_TEST(w.reused.empty());

  for (std::uint64_t k = 0; k < 20; ++k)
    set(t, k * 97, 7);
  for (std::uint64_t k = 5000; k < 5005; ++k)
    erase(t, k);
  set(t, 20'000, 3); // a new key
  checkpoint(cp, t, w);
  BOOST_TEST(!w.written.empty());
  BOOST_TEST(w.written.size() <= 26u, w.written.size() << " pieces written");
  BOOST_TEST(all_deltas(w.written));
  BOOST_TEST(w.reused.size() == 128u, "every base is referred to");
  BOOST_TEST((contents(restored(w)) == contents(t)));

  // A second round of changes chains a second delta onto the first.
  set(t, 0, 100);
  set(t, 5000, 5); // erased, then back
  checkpoint(cp, t, w);
  BOOST_TEST(all_deltas(w.written));
  BOOST_TEST(w.reused.count("kg/" + std::to_string(group_of(0)) + "/d1") == 1u);
  BOOST_TEST(w.written.count("kg/" + std::to_string(group_of(0)) + "/d2") == 1u);
  BOOST_TEST((contents(restored(w)) == contents(t)));

  // Nothing changed: nothing is written, everything is referred to.
  checkpoint(cp, t, w);
  BOOST_TEST(w.written.empty());
  BOOST_TEST((contents(restored(w)) == contents(t)));
}

BOOST_AUTO_TEST_CASE(deltas_restore_at_another_parallelism) {
  table t;
  detail::table_checkpoints<table> cp;
  memory_checkpoints w;
  for (std::uint64_t k = 0; k < 3000; ++k)
    set(t, k, static_cast<std::int64_t>(k));
  checkpoint(cp, t, w);
  for (int round = 0; round < 5; ++round) {
    for (std::uint64_t k = 0; k < 30; ++k)
      set(t, k * 31 + static_cast<std::uint64_t>(round), round);
    erase(t, 2000 + static_cast<std::uint64_t>(round));
    checkpoint(cp, t, w);
    BOOST_TEST(all_deltas(w.written));
  }
  auto a = contents(restored(w, {0, 50}));
  auto b = contents(restored(w, {50, 90}));
  auto c = contents(restored(w, {90, 128}));
  a.insert(b.begin(), b.end());
  a.insert(c.begin(), c.end());
  BOOST_TEST((a == contents(t)));
}

BOOST_AUTO_TEST_CASE(the_snapshot_is_the_state_at_the_barrier_even_when_changed_before_encoding) {
  filled_table f{50'000, 1};
  auto& [t, cp, w] = f;
  const auto at_barrier = contents(t);
  w.begin();
  BOOST_REQUIRE(cp.snapshot(t, w)); // full: every group shared, encoded later
  // The task goes on before the writer thread encodes: changes, erasures, new keys.
  for (std::uint64_t k = 0; k < 50'000; k += 100)
    set(t, k, 2);
  for (std::uint64_t k = 1; k < 100; k += 2)
    erase(t, k);
  set(t, 99'999, 9);
  w.finish();
  BOOST_TEST((contents(restored(w)) == at_barrier));
  BOOST_TEST((contents(t) != at_barrier));
  checkpoint(cp, t, w);
  BOOST_TEST((contents(restored(w)) == contents(t)));

  // The same for a delta: its entries are the values at the barrier.
  set(t, 0, 50);
  const auto second_barrier = contents(t);
  w.begin();
  BOOST_REQUIRE(cp.snapshot(t, w));
  set(t, 0, 60);
  w.finish();
  BOOST_TEST(all_deltas(w.written));
  BOOST_TEST((contents(restored(w)) == second_barrier));
}

BOOST_AUTO_TEST_CASE(a_frozen_group_is_encoded_before_its_first_change_and_changed_in_place) {
  filled_table f{2'000, 1};
  auto& [t, cp, w] = f;
  const int g = group_of(7);
  const auto* map_before = &t.view(g);
  const auto at_barrier = contents(t);
  w.begin();
  BOOST_REQUIRE(cp.snapshot(t, w));
  set(t, 7, 2); // the task changes one group before the writer runs
  // No copy: the task encoded the group as it was and then changed the same map.
  BOOST_TEST(&t.view(g) == map_before);
  BOOST_TEST(t.view(g).at(7) == 2);
  w.finish();
  BOOST_TEST((contents(restored(w)) == at_barrier));
}

BOOST_AUTO_TEST_CASE(a_writer_thread_encoding_while_the_task_changes_groups_writes_the_barrier_state) {
  filled_table f{20'000, 0};
  auto& [t, cp, w] = f;
  w.reuse_ok = false; // every checkpoint writes every group in full: all of them frozen
  for (int round = 1; round <= 20; ++round) {
    const auto at_barrier = contents(t);
    w.begin();
    BOOST_REQUIRE(cp.snapshot(t, w));
    auto deferred = std::exchange(w.deferred, {});
    std::vector<std::pair<std::string, result<std::string>>> made;
    // The writer takes the groups in order while the task changes them in another order:
    // each group is encoded by whichever gets to it first.
    std::thread writer{[&] {
      for (auto& [name, encode] : deferred)
        made.emplace_back(name, encode());
    }};
    for (std::uint64_t k = 20'000; k-- > 0;)
      if (k % 3 == static_cast<std::uint64_t>(round % 3))
        set(t, k, round);
    writer.join();
    for (auto& [name, bytes] : made) {
      BOOST_REQUIRE_MESSAGE(bytes, name);
      w.current[name] = *bytes;
    }
    BOOST_TEST((contents(restored(w)) == at_barrier), "round " << round);
  }
}

BOOST_AUTO_TEST_CASE(a_group_frozen_twice_before_its_first_write_gives_both_checkpoints_its_bytes) {
  table t;
  for (std::uint64_t k = 0; k < 1'000; ++k)
    set(t, k, 3);
  const int g = group_of(5);
  const auto expected = detail::encode_group(t.view(g));
  auto encode = [](const table::map_type& m) { return result<std::string>{detail::encode_group(m)}; };
  auto first = t.freeze<result<std::string>>(g, encode);
  // The next barrier comes before the writer took the first checkpoint's bytes.
  auto second = t.freeze<result<std::string>>(g, encode);
  BOOST_TEST(!first->settled()); // the pause made no bytes
  t.group(g).insert_or_assign(5, 4); // the change settles both first
  BOOST_TEST(first->settled());
  BOOST_TEST(second->settled());
  auto a = first->take();
  auto b = second->take();
  BOOST_REQUIRE(a);
  BOOST_REQUIRE(b);
  BOOST_TEST(*a == expected);
  BOOST_TEST(*b == expected);
}

BOOST_AUTO_TEST_CASE(a_failing_encoding_reaches_the_writer_not_the_task) {
  table t;
  set(t, 1, 1);
  const int g = group_of(1);
  auto frozen = t.freeze<result<std::string>>(g, [](const table::map_type&) -> result<std::string> {
    throw std::length_error("state too large to encode");
  });
  BOOST_CHECK_NO_THROW(t.group(g).insert_or_assign(1, 2)); // the task settles, and goes on
  auto bytes = frozen->take();
  BOOST_REQUIRE(!bytes);
  BOOST_TEST(bytes.error().message.find("state too large to encode") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(a_task_changing_a_group_the_writer_is_encoding_waits_for_its_bytes) {
  table t;
  for (std::uint64_t k = 0; k < 1'000; ++k)
    set(t, k, 1);
  const int g = group_of(1);
  std::atomic<bool> encoding{false}, task_arrived{false}, encoded{false};
  auto frozen = t.freeze<result<std::string>>(g, [&](const table::map_type& m) {
    encoding = true;
    // Hold the writer inside its encoding until the task is about to change the group,
    // then give a task that would not wait every chance to change it under the writer.
    while (!task_arrived)
      std::this_thread::yield();
    for (int i = 0; i < 1'000; ++i)
      std::this_thread::yield();
    auto bytes = detail::encode_group(m);
    encoded = true;
    return result<std::string>{std::move(bytes)};
  });
  result<std::string> made = make_error(error_code::internal, "not taken");
  std::thread writer{[&] { made = frozen->take(); }};
  while (!encoding)
    std::this_thread::yield();
  task_arrived = true;
  t.group(g).insert_or_assign(1, 2);
  const bool waited = encoded.load();
  writer.join();
  BOOST_TEST(waited);
  BOOST_REQUIRE(made);
  table::map_type decoded;
  detail::state_decoder dec{*made};
  std::uint64_t n = 0;
  BOOST_REQUIRE(dec.get(n));
  for (std::uint64_t i = 0; i < n; ++i) {
    std::uint64_t k = 0;
    std::int64_t v = 0;
    BOOST_REQUIRE(dec.get(k));
    BOOST_REQUIRE(dec.get(v));
    decoded.emplace(k, v);
  }
  BOOST_TEST(decoded.at(1) == 1); // the value at the barrier
}

BOOST_AUTO_TEST_CASE(bytes_taken_twice_or_abandoned_are_errors_and_never_made_for_nothing) {
  table t;
  set(t, 1, 1);
  const int g = group_of(1);
  int encodes = 0;
  auto encode = [&](const table::map_type& m) {
    ++encodes;
    return result<std::string>{detail::encode_group(m)};
  };
  auto frozen = t.freeze<result<std::string>>(g, encode);
  BOOST_REQUIRE(frozen->take());
  auto again = frozen->take();
  BOOST_REQUIRE(!again);
  BOOST_TEST(again.error().message.find("taken twice") != std::string::npos);
  BOOST_TEST(encodes == 1);

  {
    // The writer drops its end uncalled (its checkpoint failed): the task makes nothing.
    auto dropped = detail::take_later(t.freeze<result<std::string>>(g, encode));
  }
  t.group(g).insert_or_assign(1, 2);
  BOOST_TEST(encodes == 1);
}

BOOST_AUTO_TEST_CASE(long_chains_and_busy_groups_are_written_in_full) {
  table t;
  detail::table_checkpoints<table> cp;
  memory_checkpoints w;
  for (std::uint64_t k = 0; k < 128 * 200; ++k)
    set(t, k, 0);
  checkpoint(cp, t, w);
  const auto g = group_of(1);
  const auto base = "kg/" + std::to_string(g);
  // One key changes per checkpoint: the chain grows to max_chain deltas, then compacts.
  for (int i = 1; i <= detail::table_checkpoints<table>::max_chain; ++i) {
    set(t, 1, i);
    checkpoint(cp, t, w);
    BOOST_TEST(w.written.count(base + "/d" + std::to_string(i)) == 1u);
  }
  set(t, 1, -1);
  checkpoint(cp, t, w);
  BOOST_TEST(w.written.count(base) == 1u, "compacted into a new base");
  BOOST_TEST(w.written.size() == 1u);
  BOOST_TEST((contents(restored(w)) == contents(t)));
  BOOST_TEST(w.current.count(base + "/d1") == 0u, "the new checkpoint lists no old deltas");

  // More changes in a group than its change log holds: the group is written in full.
  std::vector<std::uint64_t> same_group;
  for (std::uint64_t k = 0; same_group.size() < 200; ++k)
    if (group_of(k) == g)
      same_group.push_back(k);
  for (auto k : same_group)
    set(t, k, 3);
  checkpoint(cp, t, w);
  BOOST_TEST(w.written.count(base) == 1u);
  BOOST_TEST((contents(restored(w)) == contents(t)));
}

BOOST_AUTO_TEST_CASE(a_few_hot_keys_written_far_more_often_than_the_log_holds_stay_a_delta) {
  filled_table f{128 * 200, 0};
  auto& [t, cp, w] = f;
  checkpoint(cp, t, w);
  const auto g = group_of(1);
  std::vector<std::uint64_t> hot;
  for (std::uint64_t k = 0; hot.size() < 5; ++k)
    if (group_of(k) == g)
      hot.push_back(k);
  // Thousands of writes of five keys: the log drops the repeats each time it fills.
  const auto limit = table::change_log_limit(t.view(g).size());
  for (std::size_t i = 0; i < 50 * limit; ++i)
    set(t, hot[i % hot.size()], static_cast<std::int64_t>(i));
  auto log = t.take_changes(g);
  BOOST_TEST(!log.overflowed);
  BOOST_TEST(log.keys.size() < limit);
  std::set<std::uint64_t> distinct(log.keys.begin(), log.keys.end());
  BOOST_TEST((distinct == std::set<std::uint64_t>(hot.begin(), hot.end())));
  for (std::size_t i = 0; i < 50 * limit; ++i) // again, now through a checkpoint
    set(t, hot[i % hot.size()], static_cast<std::int64_t>(i) + 1);
  checkpoint(cp, t, w);
  BOOST_TEST(w.written.size() == 1u);
  BOOST_TEST(all_deltas(w.written));
  BOOST_TEST((contents(restored(w)) == contents(t)));
}

BOOST_AUTO_TEST_CASE(a_writer_that_cannot_refer_back_gets_full_checkpoints) {
  filled_table f{10'000, 1};
  auto& [t, cp, w] = f;
  w.reuse_ok = false;
  checkpoint(cp, t, w);
  set(t, 3, 4);
  checkpoint(cp, t, w);
  BOOST_TEST(w.written.size() == 128u);
  BOOST_TEST(w.reused.empty());
  BOOST_TEST((contents(restored(w)) == contents(t)));
}

BOOST_AUTO_TEST_CASE(an_unreadable_delta_is_named) {
  filled_table f{1000, 1};
  auto& [t, cp, w] = f;
  checkpoint(cp, t, w);
  set(t, 3, 4);
  checkpoint(cp, t, w);
  const auto delta = "kg/" + std::to_string(group_of(3)) + "/d1";
  BOOST_REQUIRE(w.current.count(delta) == 1u);
  w.current[delta] += '\x01'; // a byte after the last change
  table back;
  detail::table_checkpoints<table> cp2;
  auto ok = cp2.restore(back, w, "counts");
  BOOST_REQUIRE(!ok);
  BOOST_TEST(ok.error().message.find("operator 'counts'") != std::string::npos, ok.error().message);
  BOOST_TEST(ok.error().message.find(delta) != std::string::npos, ok.error().message);
  BOOST_TEST(ok.error().message.find("after the last entry") != std::string::npos,
             ok.error().message);
}

// -- the store: references to earlier checkpoints' pieces -----------------------------------

BOOST_AUTO_TEST_CASE(the_store_keeps_pieces_a_retained_checkpoint_refers_to) {
  temp_dir dir;
  auto opened = checkpoint_store::open(dir.path, {.retained = 1});
  BOOST_REQUIRE(opened);
  auto& store = **opened;
  auto complete = [&](std::int64_t id, std::vector<checkpoint_piece> pieces) {
    checkpoint_meta m;
    m.id = id;
    m.job = "test";
    m.max_key_groups = 128;
    m.pieces = std::move(pieces);
    auto ok = store.complete(m);
    BOOST_REQUIRE_MESSAGE(ok, (ok ? "" : ok.error().to_string()));
    return m;
  };
  auto base = store.put(1, "op/kg/0", "base@1");
  auto other = store.put(1, "op/kg/1", "other@1");
  BOOST_REQUIRE(base && other);
  BOOST_TEST(base->stored_in == 1);
  complete(1, {*base, *other});
  auto delta = store.put(2, "op/kg/0/d1", "delta@2");
  auto other2 = store.put(2, "op/kg/1", "other@2");
  BOOST_REQUIRE(delta && other2);
  auto m2 = complete(2, {*base, *delta, *other2}); // refers to checkpoint 1's base
  // Retention (1 kept) dropped checkpoint 1, but not the base checkpoint 2 refers to.
  BOOST_TEST((*store.complete_ids() == std::vector<std::int64_t>{2}));
  auto found = store.find(2);
  BOOST_REQUIRE_MESSAGE(found, (found ? "" : found.error().to_string()));
  BOOST_TEST((found->pieces == m2.pieces), "references survive the metadata's round trip");
  BOOST_TEST(*store.get(*found, "op/kg/0") == "base@1");
  BOOST_TEST(*store.get(*found, "op/kg/0/d1") == "delta@2");
  BOOST_TEST(*store.get(*found, "op/kg/1") == "other@2");

  // A full checkpoint 3: now nothing refers to checkpoint 1's base, and it is deleted.
  auto full = store.put(3, "op/kg/0", "base@3");
  BOOST_REQUIRE(full);
  complete(3, {*full});
  auto stale = complete(4, {*base}); // a (bad) reference to the deleted piece
  auto broken = store.find(4);
  BOOST_REQUIRE(!broken);
  BOOST_TEST(broken.error().message.find("written by checkpoint 1, since deleted") !=
               std::string::npos,
             broken.error().message);
  std::vector<std::string> skipped;
  auto latest = store.latest(skipped);
  BOOST_REQUIRE(latest);
  BOOST_TEST(!latest->has_value(), "4 is broken and 3 was dropped by retention");
  BOOST_TEST(skipped.size() == 1u);
}

// -- a job: base plus deltas restored at another parallelism --------------------------------

BOOST_AUTO_TEST_CASE(a_running_sum_restores_base_and_deltas_at_another_parallelism) {
  temp_dir input;
  // File 0 sets 2000 keys; each later file changes ten of them: incremental checkpoints.
  for (int f = 0; f < 6; ++f) {
    std::vector<reading> rows;
    if (f == 0)
      for (std::int64_t k = 0; k < 2000; ++k)
        rows.push_back({k, 1, at_ms(k)});
    else
      for (std::int64_t i = 0; i < 10; ++i)
        rows.push_back({(i * 193) % 2000, f, at_ms(f * 10'000 + i)}); // the same ten keys
    char name[16];
    std::snprintf(name, sizeof name, "%03d.jsonl", f);
    drop_file(input.path, name, rows);
  }
  auto build = [&](job& j, int parallelism, auto sink) {
    sources::file_options files;
    files.path = input.path;
    files.max_files_per_trigger = 1;
    j.from(sources::file<reading>{files})
      .name("files")
      .key_by(key_of)
      .reduce(sum_values)
      .name("totals")
      .parallelism(parallelism)
      .sink_to(std::move(sink))
      .name("batches");
  };
  split_run how;
  how.mode = output_mode::update;
  how.hold_at = 3;
  how.between = [](const fs::path& ckpt) {
    // The checkpoint to restore is incremental: deltas, and bases an earlier one wrote.
    auto store = checkpoint_store::open(ckpt);
    BOOST_REQUIRE(store);
    std::vector<std::string> skipped;
    auto latest = (*store)->latest(skipped);
    BOOST_REQUIRE(latest && latest->has_value());
    const auto& meta = **latest;
    int deltas = 0, referenced = 0;
    for (auto& p : meta.pieces) {
      if (p.name.starts_with("totals/kg/") && p.name.find("/d") != std::string::npos)
        ++deltas;
      if (p.stored_in < meta.id)
        ++referenced;
    }
    BOOST_TEST(deltas > 0);
    BOOST_TEST(referenced >= 100, referenced << " pieces referred to");
  };
  expect_split_run_matches<reading>(build, 2, 2, 3, how);
}

// -- window operators: their windows as bases and deltas -----------------------------------

BOOST_AUTO_TEST_SUITE_END()
