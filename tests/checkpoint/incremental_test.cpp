// Incremental checkpoints of keyed tables (operators/state/snapshot_codec.hpp): a checkpoint
// writes only the changed keys of a key group as a delta and refers to the rest; the state
// it writes is the state at the barrier even when the task changes it before the writer
// thread encodes it (frozen groups are encoded once, then changed in place); chains are
// compacted; the store keeps the pieces a retained checkpoint refers to; and a job restores
// base plus deltas at another parallelism.
#include <boost/test/unit_test.hpp>

#include "sluice/checkpoint/store.hpp"
#include "sluice/operators/harness.hpp"
#include "sluice/operators/join/interval_join.hpp"
#include "sluice/operators/state/snapshot_codec.hpp"
#include "sluice/operators/window/session_operator.hpp"
#include "sluice/operators/window/window_operator.hpp"
#include "sluice/sources/file.hpp"
#include "sluice/tests/checkpoint/job_helpers.hpp"
#include "sluice/tests/checkpoint/memory_checkpoints.hpp"

#include <algorithm>
#include <atomic>
#include <map>
#include <random>
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

bool all_deltas(const std::set<std::string>& names) {
  for (auto& n : names)
    if (n.find("/d") == std::string::npos)
      return false;
  return true;
}


// -- window operators driven through the recording writer ---------------------------------

inline std::int64_t value_of(const reading& r) { return r.value; }
using key_fn_t = std::int64_t (*)(const reading&);
using ts_fn_t = event_time (*)(const reading&);
using sum_fn = aggregate_window_function<
  std::int64_t, reading, window_aggregates::sum<reading, std::int64_t (*)(const reading&)>>;
using sum_result = window_result<std::int64_t, std::int64_t>;
template <class Assigner>
using windows_op = window_operator<std::int64_t, reading, key_fn_t, ts_fn_t, Assigner, sum_fn>;
using sessions_op =
  session_window_operator<std::int64_t, reading, key_fn_t, ts_fn_t, windows::session, sum_fn>;

template <class Assigner>
std::unique_ptr<operator_base> make_windows(Assigner a, window_options o = {}) {
  if constexpr (is_merging_assigner<Assigner>)
    return std::make_unique<sessions_op>(key_of, ts_of, a, sum_fn{{value_of}}, o);
  else
    return std::make_unique<windows_op<Assigner>>(key_of, ts_of, a, sum_fn{{value_of}}, o);
}

/// A harness for instance `instance` of `parallelism`, opened.
template <class Assigner>
std::unique_ptr<operator_harness> window_harness(Assigner a, window_options o = {},
                                                 int instance = 0, int parallelism = 1,
                                                 std::optional<output_mode> mode = {}) {
  auto h = std::make_unique<operator_harness>(make_windows(a, o),
                                              harness_options{.name = "windows",
                                                              .instance = instance,
                                                              .parallelism = parallelism,
                                                              .mode = mode});
  BOOST_REQUIRE(h->open());
  return h;
}

int window_group_of(std::int64_t key) { return key_group_of(key_hash<std::int64_t>{}(key), 128); }

/// One checkpoint of an operator: its snapshot, then the writer thread's part.
void checkpoint(operator_harness& h, memory_checkpoints& w) {
  w.begin();
  auto ok = h.op().snapshot(1, w);
  BOOST_REQUIRE_MESSAGE(ok, (ok ? "" : ok.error().to_string()));
  w.finish();
}

/// Every result still to come from `h`: the max watermark fires (or frees) everything.
std::vector<sum_result> fire_all(operator_harness& h) {
  BOOST_REQUIRE(h.watermark(max_watermark));
  auto out = h.take<sum_result>();
  std::sort(out.begin(), out.end());
  return out;
}

/// What `finish(harness)` returns from each instance of `parallelism` restored from `w`,
/// merged.
template <class Assigner, class Finish>
std::vector<sum_result> restore_each(memory_checkpoints& w, Assigner a, window_options o,
                                     int parallelism, std::optional<output_mode> mode,
                                     Finish finish) {
  std::vector<sum_result> all;
  for (int i = 0; i < parallelism; ++i) {
    auto h = window_harness(a, o, i, parallelism, mode);
    auto ok = h->op().restore(w);
    BOOST_REQUIRE_MESSAGE(ok, (ok ? "" : ok.error().to_string()));
    auto part = finish(*h);
    all.insert(all.end(), part.begin(), part.end());
  }
  std::sort(all.begin(), all.end());
  return all;
}

/// `fire_all` over the instances of `parallelism` restored from `w`, merged.
template <class Assigner>
std::vector<sum_result> restore_and_fire(memory_checkpoints& w, Assigner a, window_options o,
                                         int parallelism) {
  return restore_each(w, a, o, parallelism, std::nullopt, fire_all);
}

/// The key group pieces among `names` (not the per-instance pieces).
std::set<std::string> group_pieces(const std::set<std::string>& names) {
  std::set<std::string> out;
  for (auto& n : names)
    if (n.starts_with("kg/"))
      out.insert(n);
  return out;
}

/// The number of entries a delta piece lists (its leading count, without the flag of a
/// delta that lists changes).
std::uint64_t delta_entries(const std::string& bytes) {
  detail::state_decoder dec{bytes};
  std::uint64_t n = 0;
  BOOST_REQUIRE(dec.get(n));
  return n & ~detail::changes_flag;
}

reading rec(std::int64_t key, std::int64_t value, std::int64_t ms) {
  return {key, value, at_ms(ms)};
}

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

namespace {

/// The delta pieces a checkpoint of `changed` keys must write: the next link of each one's
/// key group chain (`chains` counts the deltas written so far per key group).
std::set<std::string> next_deltas(const std::vector<std::int64_t>& changed,
                                  std::map<int, int>& chains) {
  std::set<int> groups;
  for (auto k : changed)
    groups.insert(window_group_of(k));
  std::set<std::string> out;
  for (int g : groups)
    out.insert(detail::delta_piece(g, ++chains[g]));
  return out;
}

std::uint64_t entries_written(memory_checkpoints& w) {
  std::uint64_t n = 0;
  for (auto& name : group_pieces(w.written))
    n += delta_entries(w.current.at(name));
  return n;
}

std::string names(const std::set<std::string>& s) {
  std::string out;
  for (auto& n : s)
    out += n + " ";
  return out;
}

} // namespace

BOOST_AUTO_TEST_CASE(a_window_checkpoint_writes_deltas_of_the_changed_windows_and_reuses_the_rest) {
  const windows::tumbling tumbling{.size = 10s};
  const window_options lateness{.allowed_lateness = 5s};
  auto h = window_harness(tumbling, lateness);
  auto& op = static_cast<windows_op<windows::tumbling>&>(h->op());
  memory_checkpoints w;
  std::vector<reading> first;
  for (std::int64_t k = 0; k < 10'000; ++k)
    first.push_back(rec(k, 1, 12'000 + k % 1000)); // window [10 s, 20 s)
  for (std::int64_t k = 0; k < 5; ++k)
    first.push_back(rec(k, 10, 3'000)); // window [0, 10 s)
  BOOST_REQUIRE(h->push(first));
  checkpoint(*h, w);
  const auto bases = group_pieces(w.written);
  BOOST_TEST(bases.size() == 128u);
  BOOST_TEST(w.written.count("instance/0") == 1u);

  // Three windows grow and the watermark fires the five windows of [0, 10 s), which stay
  // for the allowed lateness: eight windows changed, in their key groups only.
  std::map<int, int> chains;
  BOOST_REQUIRE(
    h->push(std::vector{rec(100, 5, 13'000), rec(200, 5, 14'000), rec(300, 5, 15'000)}));
  BOOST_REQUIRE(h->watermark(at_ms(10'000)));
  BOOST_TEST(h->take<sum_result>().size() == 5u);
  checkpoint(*h, w);
  auto expected = next_deltas({0, 1, 2, 3, 4, 100, 200, 300}, chains);
  BOOST_TEST(group_pieces(w.written) == expected, names(group_pieces(w.written)));
  BOOST_TEST(entries_written(w) == 8u, "one entry per changed window");
  BOOST_TEST(group_pieces(w.reused) == bases, "every base is referred to");
  BOOST_TEST(w.written.count("instance/0") == 1u);
  {
    // The fired windows come back as fired (their cleanup pending, nothing to fire again).
    const auto back = restore_and_fire(w, tumbling, lateness, 1);
    BOOST_TEST(back.size() == 10'000u);
    BOOST_TEST(std::none_of(back.begin(), back.end(),
                            [](const sum_result& r) { return r.start == at_ms(0); }));
    BOOST_TEST(std::count(back.begin(), back.end(),
                          sum_result{100, at_ms(10'000), at_ms(20'000), 6, false, 0}) == 1);
  }

  // A late record updates one fired window; the watermark then frees all five (their
  // lateness is over); one more window grows. Erasures go into the deltas too.
  BOOST_REQUIRE(h->push(std::vector{rec(2, 1, 4'000)}));
  BOOST_TEST(h->take<sum_result>().size() == 1u, "the late record re-fires its window");
  BOOST_REQUIRE(h->watermark(at_ms(15'000)));
  BOOST_REQUIRE(h->push(std::vector{rec(7, 2, 16'000)}));
  BOOST_TEST(op.window_count() == 10'000u);
  checkpoint(*h, w);
  expected = next_deltas({0, 1, 2, 3, 4, 7}, chains);
  BOOST_TEST(group_pieces(w.written) == expected, names(group_pieces(w.written)));
  BOOST_TEST(entries_written(w) == 6u);

  // Base plus deltas, at any parallelism, hold the same windows and fire the same results.
  {
    auto back = window_harness(tumbling, lateness);
    BOOST_REQUIRE(back->op().restore(w));
    auto& restored = static_cast<windows_op<windows::tumbling>&>(back->op());
    BOOST_TEST(restored.window_count() == op.window_count());
    BOOST_TEST(restored.timer_count() == op.timer_count());
  }
  const auto one = restore_and_fire(w, tumbling, lateness, 1);
  const auto two = restore_and_fire(w, tumbling, lateness, 2);
  const auto three = restore_and_fire(w, tumbling, lateness, 3);
  const auto original = fire_all(*h);
  BOOST_TEST(original.size() == 10'000u);
  BOOST_TEST((one == original));
  BOOST_TEST((two == original));
  BOOST_TEST((three == original));
}

BOOST_AUTO_TEST_CASE(a_window_checkpoint_is_the_state_at_the_barrier_even_when_changed_before_encoding) {
  const windows::sliding sliding{.size = 10s, .slide = 5s};
  const window_options lateness{.allowed_lateness = 5s};
  auto step0 = [](operator_harness& h) { // three windows per key
    std::vector<reading> rows;
    for (std::int64_t k = 0; k < 2000; ++k) {
      rows.push_back(rec(k, 1, 2'000));
      rows.push_back(rec(k, 2, 6'000));
    }
    BOOST_REQUIRE(h.push(rows));
  };
  auto step1 = [](operator_harness& h) { // changes every window: new values, firings, keys
    std::vector<reading> rows;
    for (std::int64_t k = 0; k < 2000; k += 2)
      rows.push_back(rec(k, 100, 7'000));
    for (std::int64_t k = 5000; k < 5100; ++k)
      rows.push_back(rec(k, 1, 3'000));
    BOOST_REQUIRE(h.push(rows));
    BOOST_REQUIRE(h.watermark(at_ms(5'000))); // fires [-5 s, 5 s) of every key
  };
  auto step2 = [](operator_harness& h) { // a few windows change: deltas
    BOOST_REQUIRE(h.push(std::vector{rec(0, 1000, 8'000), rec(1, 1000, 8'500)}));
  };
  auto step3 = [](operator_harness& h) { // the same windows again, a firing, erasures
    BOOST_REQUIRE(h.push(std::vector{rec(0, 7, 9'000), rec(1, 7, 4'000)}));
    BOOST_REQUIRE(h.watermark(at_ms(10'001)));
  };
  auto twin = [&](int steps) {
    auto t = window_harness(sliding, lateness);
    step0(*t);
    if (steps > 1)
      step1(*t);
    if (steps > 2)
      step2(*t);
    t->take<sum_result>(); // fired before the barrier: not state
    return fire_all(*t);
  };

  auto h = window_harness(sliding, lateness);
  memory_checkpoints w;
  step0(*h);
  w.begin();
  BOOST_REQUIRE(h->op().snapshot(1, w)); // full: every group shared, encoded later
  step1(*h);
  w.finish();
  BOOST_TEST(w.reused.empty());
  const auto at_first_barrier = twin(1);
  BOOST_TEST(at_first_barrier.size() == 6000u);
  BOOST_TEST((restore_and_fire(w, sliding, lateness, 1) == at_first_barrier));
  BOOST_TEST((at_first_barrier != twin(2)), "the changes after the barrier change results");

  checkpoint(*h, w); // full again: step 1 changed every window
  step2(*h);
  w.begin();
  BOOST_REQUIRE(h->op().snapshot(2, w));
  step3(*h);
  w.finish();
  BOOST_TEST(!group_pieces(w.written).empty());
  BOOST_TEST(all_deltas(group_pieces(w.written)), names(group_pieces(w.written)));
  const auto at_second_barrier = twin(3);
  BOOST_TEST((restore_and_fire(w, sliding, lateness, 2) == at_second_barrier));
}

BOOST_AUTO_TEST_CASE(a_session_checkpoint_writes_deltas_of_the_changed_keys_and_holds_the_barrier_state) {
  const windows::session gap{.gap = 1s};
  const window_options lateness{.allowed_lateness = 2s};
  std::vector<reading> first;
  for (std::int64_t k = 0; k < 10'000; ++k)
    first.push_back(rec(k, 1, 20'000)); // [20 s, 21 s)
  for (std::int64_t k = 0; k < 5; ++k)
    first.push_back(rec(k, 10, 1'000)); // [1 s, 2 s)
  first.push_back(rec(3, 1, 21'500));   // [21.5 s, 22.5 s)
  // A session grows, a record bridges two sessions, a key opens a second one, and the
  // watermark fires five sessions (kept for the allowed lateness): seven keys change.
  auto round2 = [](operator_harness& h) {
    BOOST_REQUIRE(h.push(std::vector{rec(100, 5, 20'500), rec(3, 1, 20'800), rec(200, 1, 30'000)}));
    BOOST_REQUIRE(h.watermark(at_ms(2'500)));
    BOOST_TEST(h.take<sum_result>().size() == 5u);
  };
  // The lateness of the five is over (erased) and one session grows: six keys change.
  auto round3 = [](operator_harness& h) {
    BOOST_REQUIRE(h.watermark(at_ms(4'500)));
    BOOST_REQUIRE(h.push(std::vector{rec(7, 2, 21'000)}));
  };

  auto h = window_harness(gap, lateness);
  memory_checkpoints w;
  BOOST_REQUIRE(h->push(first));
  checkpoint(*h, w);
  const auto bases = group_pieces(w.written);
  BOOST_TEST(bases.size() == 128u);

  std::map<int, int> chains;
  round2(*h);
  checkpoint(*h, w);
  auto expected = next_deltas({0, 1, 2, 3, 4, 100, 200}, chains);
  BOOST_TEST(group_pieces(w.written) == expected, names(group_pieces(w.written)));
  BOOST_TEST(entries_written(w) == 7u, "one entry per changed key");
  BOOST_TEST(group_pieces(w.reused) == bases);
  {
    const auto back = restore_and_fire(w, gap, lateness, 3);
    BOOST_TEST(back.size() == 10'001u, "the fired sessions do not fire again");
    BOOST_TEST(std::count(back.begin(), back.end(),
                          sum_result{3, at_ms(20'000), at_ms(22'500), 3, false, 0}) == 1);
    BOOST_TEST(std::count(back.begin(), back.end(),
                          sum_result{100, at_ms(20'000), at_ms(21'500), 6, false, 0}) == 1);
  }

  // The snapshot is taken at the barrier and encoded after more changes: merges, a new
  // key, and a watermark that fires most sessions. It holds the sessions at the barrier.
  round3(*h);
  w.begin();
  BOOST_REQUIRE(h->op().snapshot(3, w));
  BOOST_REQUIRE(h->push(std::vector{rec(7, 50, 21'500), rec(8, 50, 20'900), rec(9, 1, 40'000)}));
  BOOST_REQUIRE(h->watermark(at_ms(21'200)));
  BOOST_TEST(h->take<sum_result>().size() > 9000u);
  w.finish();
  expected = next_deltas({0, 1, 2, 3, 4, 7}, chains);
  BOOST_TEST(group_pieces(w.written) == expected, names(group_pieces(w.written)));
  BOOST_TEST(entries_written(w) == 6u);
  auto twin = window_harness(gap, lateness);
  BOOST_REQUIRE(twin->push(first));
  round2(*twin);
  round3(*twin);
  const auto at_barrier = fire_all(*twin);
  BOOST_TEST(at_barrier.size() == 10'001u);
  BOOST_TEST(std::count(at_barrier.begin(), at_barrier.end(),
                        sum_result{7, at_ms(20'000), at_ms(22'000), 3, false, 0}) == 1);
  BOOST_TEST((restore_and_fire(w, gap, lateness, 1) == at_barrier));
  BOOST_TEST((restore_and_fire(w, gap, lateness, 2) == at_barrier));

  // A full checkpoint shares the groups with the writer thread; changes before it
  // encodes copy them.
  auto g = window_harness(gap, lateness);
  BOOST_REQUIRE(g->push(first));
  memory_checkpoints full;
  full.begin();
  BOOST_REQUIRE(g->op().snapshot(1, full));
  round2(*g);
  BOOST_REQUIRE(g->watermark(at_ms(20'000))); // the five fired sessions are erased
  full.finish();
  auto fresh = window_harness(gap, lateness);
  BOOST_REQUIRE(fresh->push(first));
  const auto at_full_barrier = fire_all(*fresh);
  BOOST_TEST(at_full_barrier.size() == 10'006u);
  BOOST_TEST((restore_and_fire(full, gap, lateness, 2) == at_full_barrier));
}

// -- complete mode: every window fires at every epoch's end, yet a checkpoint writes only
// the windows records changed ------------------------------------------------------------

namespace {

/// Ends epoch `epoch` and returns its rows, sorted.
std::vector<sum_result> end_epoch(operator_harness& h, std::int64_t epoch) {
  BOOST_REQUIRE(h.end_epoch(epoch));
  auto rows = h.take<sum_result>();
  std::sort(rows.begin(), rows.end());
  return rows;
}

/// The rows of epoch `epoch` from the instances of `parallelism` restored from `w`, merged.
template <class Assigner>
std::vector<sum_result> restore_and_end_epoch(memory_checkpoints& w, Assigner a, int parallelism,
                                              std::int64_t epoch) {
  return restore_each(w, a, {}, parallelism, output_mode::complete,
                      [epoch](operator_harness& h) { return end_epoch(h, epoch); });
}

std::uint32_t max_firing(const std::vector<sum_result>& rows) {
  std::uint32_t n = 0;
  for (auto& r : rows)
    n = std::max(n, r.firing);
  return n;
}

} // namespace

BOOST_AUTO_TEST_CASE(complete_mode_windows_fire_every_epoch_and_checkpoints_write_only_the_changed) {
  const windows::tumbling tumbling{.size = 10s};
  auto h = window_harness(tumbling, {}, 0, 1, output_mode::complete);
  memory_checkpoints w;
  std::vector<reading> first;
  for (std::int64_t k = 0; k < 10'000; ++k)
    first.push_back(rec(k, 1, 1'000));
  BOOST_REQUIRE(h->push(first));
  auto rows = end_epoch(*h, 0);
  BOOST_TEST(rows.size() == 10'000u);
  BOOST_TEST(max_firing(rows) == 0u);
  checkpoint(*h, w);
  const auto bases = group_pieces(w.written);
  BOOST_TEST(bases.size() == 128u);

  // Three windows change (one new); every window fires again, and only the three are written.
  std::map<int, int> chains;
  BOOST_REQUIRE(
    h->push(std::vector{rec(100, 5, 2'000), rec(200, 5, 3'000), rec(300, 5, 15'000)}));
  rows = end_epoch(*h, 1);
  BOOST_TEST(rows.size() == 10'001u);
  BOOST_TEST(std::count(rows.begin(), rows.end(),
                        sum_result{100, at_ms(0), at_ms(10'000), 6, true, 1}) == 1);
  BOOST_TEST(std::count(rows.begin(), rows.end(),
                        sum_result{300, at_ms(10'000), at_ms(20'000), 5, false, 0}) == 1);
  checkpoint(*h, w);
  BOOST_TEST(group_pieces(w.written) == next_deltas({100, 200, 300}, chains),
             names(group_pieces(w.written)));
  BOOST_TEST(entries_written(w) == 3u, "one entry per window a record changed");
  BOOST_TEST(group_pieces(w.reused) == bases);

  // An epoch without records changes no window: the checkpoint writes no key group.
  rows = end_epoch(*h, 2);
  BOOST_TEST(rows.size() == 10'001u);
  BOOST_TEST(max_firing(rows) == 2u);
  checkpoint(*h, w);
  BOOST_TEST(group_pieces(w.written).empty(), names(group_pieces(w.written)));
  BOOST_TEST(w.written.count("instance/0") == 1u);

  // Restored at any parallelism, the next epoch's rows, firing numbers included, are the
  // uninterrupted run's.
  const auto one = restore_and_end_epoch(w, tumbling, 1, 3);
  const auto two = restore_and_end_epoch(w, tumbling, 2, 3);
  const auto three = restore_and_end_epoch(w, tumbling, 3, 3);
  const auto original = end_epoch(*h, 3);
  BOOST_TEST(original.size() == 10'001u);
  BOOST_TEST(std::count(original.begin(), original.end(),
                        sum_result{300, at_ms(10'000), at_ms(20'000), 5, true, 2}) == 1);
  BOOST_TEST(std::count(original.begin(), original.end(),
                        sum_result{7, at_ms(0), at_ms(10'000), 1, true, 3}) == 1);
  BOOST_TEST((one == original));
  BOOST_TEST((two == original));
  BOOST_TEST((three == original));
}

// A session that grows in place is noted in the change log once per checkpoint, not once
// per record: its growth after each checkpoint must still reach the next delta.
BOOST_AUTO_TEST_CASE(a_session_growing_in_place_reaches_every_later_delta) {
  const windows::session gap{.gap = 1s};
  auto h = window_harness(gap, window_options{});
  memory_checkpoints w;
  std::vector<reading> first;
  for (std::int64_t k = 0; k < 10'000; ++k)
    first.push_back(rec(k, 1, 10'000));
  BOOST_REQUIRE(h->push(first));
  checkpoint(*h, w);
  BOOST_TEST(group_pieces(w.written).size() == 128u);
  std::map<int, int> chains;
  // Key 5 grows twice between two checkpoints, then once before each of the next two.
  BOOST_REQUIRE(h->push(std::vector{rec(5, 10, 10'500), rec(5, 100, 10'900)}));
  checkpoint(*h, w);
  BOOST_TEST(group_pieces(w.written) == next_deltas({5}, chains), names(group_pieces(w.written)));
  BOOST_TEST(entries_written(w) == 1u);
  BOOST_REQUIRE(h->push(std::vector{rec(5, 1'000, 11'500)}));
  checkpoint(*h, w);
  BOOST_TEST(group_pieces(w.written) == next_deltas({5}, chains), names(group_pieces(w.written)));
  BOOST_TEST(entries_written(w) == 1u);
  BOOST_REQUIRE(h->push(std::vector{rec(5, 10'000, 12'000)}));
  checkpoint(*h, w);
  BOOST_TEST(group_pieces(w.written) == next_deltas({5}, chains), names(group_pieces(w.written)));
  for (int parallelism : {1, 2}) {
    const auto back = restore_and_fire(w, gap, window_options{}, parallelism);
    BOOST_TEST(back.size() == 10'000u);
    BOOST_TEST(std::count(back.begin(), back.end(),
                          sum_result{5, at_ms(10'000), at_ms(13'000), 11'111, false, 0}) == 1,
               "parallelism " << parallelism);
  }
}

BOOST_AUTO_TEST_CASE(complete_mode_sessions_keep_firing_numbers_across_merges_and_restores) {
  const windows::session gap{.gap = 1s};
  auto h = window_harness(gap, {}, 0, 1, output_mode::complete);
  memory_checkpoints w;
  std::vector<reading> first;
  for (std::int64_t k = 0; k < 2'000; ++k)
    first.push_back(rec(k, 1, 1'000)); // [1 s, 2 s)
  BOOST_REQUIRE(h->push(first));
  BOOST_TEST(end_epoch(*h, 0).size() == 2'000u);
  checkpoint(*h, w);

  // Key 5 opens a second session, fired once, then a record bridges the two: the merged
  // session has fired as often as the older one.
  std::map<int, int> chains;
  BOOST_REQUIRE(h->push(std::vector{rec(5, 10, 2'500)})); // [2.5 s, 3.5 s)
  auto rows = end_epoch(*h, 1);
  BOOST_TEST(std::count(rows.begin(), rows.end(),
                        sum_result{5, at_ms(2'500), at_ms(3'500), 10, false, 0}) == 1);
  checkpoint(*h, w);
  BOOST_TEST(group_pieces(w.written) == next_deltas({5}, chains), names(group_pieces(w.written)));
  BOOST_REQUIRE(h->push(std::vector{rec(5, 100, 1'800)})); // [1.8 s, 2.8 s) bridges them
  rows = end_epoch(*h, 2);
  BOOST_TEST(rows.size() == 2'000u);
  BOOST_TEST(std::count(rows.begin(), rows.end(),
                        sum_result{5, at_ms(1'000), at_ms(3'500), 111, true, 2}) == 1);
  checkpoint(*h, w);
  BOOST_TEST(group_pieces(w.written) == next_deltas({5}, chains), names(group_pieces(w.written)));
  BOOST_TEST(entries_written(w) == 1u);

  const auto original = end_epoch(*h, 3);
  BOOST_TEST(max_firing(original) == 3u);
  BOOST_TEST((restore_and_end_epoch(w, gap, 1, 3) == original));
  BOOST_TEST((restore_and_end_epoch(w, gap, 2, 3) == original));
}

namespace {

/// A window as an earlier version checkpointed it under complete mode: its firings so far.
struct counted_window {
  std::int64_t acc = 0;
  std::uint32_t firings = 0;
  template <class Inspector>
  friend bool inspect(Inspector& f, counted_window& x) {
    return f.object("window_state").fields(f.field("acc", x.acc), f.field("firings", x.firings));
  }
};

} // namespace

BOOST_AUTO_TEST_CASE(complete_mode_windows_restore_the_firing_counts_an_earlier_version_wrote) {
  // Key 1's window fired twice, key 2's once; the instance piece has only the watermark.
  const windows::tumbling tumbling{.size = 10s};
  memory_checkpoints w;
  std::map<int, std::unordered_map<detail::window_slot<std::int64_t>, counted_window,
                                   detail::window_slot_hash<std::int64_t>>>
    groups;
  groups[window_group_of(1)].emplace(detail::window_slot<std::int64_t>{1, {at_ms(0), at_ms(10'000)}},
                                     counted_window{4, 2});
  groups[window_group_of(2)].emplace(detail::window_slot<std::int64_t>{2, {at_ms(0), at_ms(10'000)}},
                                     counted_window{6, 1});
  for (auto& [g, map] : groups)
    w.current[key_group_piece(g)] = detail::encode_group(map);
  detail::state_encoder enc;
  enc.put(min_watermark);
  w.current[instance_piece(0)] = enc.take();

  auto h = window_harness(tumbling, {}, 0, 1, output_mode::complete);
  BOOST_REQUIRE(h->op().restore(w));
  BOOST_REQUIRE(h->push(std::vector{rec(3, 1, 1'000)}));
  BOOST_TEST((end_epoch(*h, 5) == std::vector<sum_result>{{1, at_ms(0), at_ms(10'000), 4, true, 2},
                                                          {2, at_ms(0), at_ms(10'000), 6, true, 1},
                                                          {3, at_ms(0), at_ms(10'000), 1, false, 0}}));
  // Checkpointed now, the counts restore as counts.
  checkpoint(*h, w);
  BOOST_TEST((restore_and_end_epoch(w, tumbling, 2, 6) == end_epoch(*h, 6)));
}

// -- the interval join: each key's buffers as bases and deltas -----------------------------

namespace {

std::string joined(const reading& l, const reading* r) {
  return std::to_string(l.key) + ":" + std::to_string(l.value) + "+" +
         (r ? std::to_string(r->value) : std::string{"none"});
}

auto make_join() {
  return make_interval_join_operator<std::int64_t, reading, reading>(
    interval_join_spec{-1s, 1s, join_type::left_outer}, key_of, key_of,
    std::function<event_time(const reading&)>{ts_of},
    std::function<event_time(const reading&)>{ts_of}, joined);
}
using join_op = std::remove_reference_t<decltype(*make_join())>;

/// The instances of one join at one parallelism; records go to the instance that owns
/// their key group.
struct join_instances {
  std::vector<std::unique_ptr<operator_harness>> hs;
  std::vector<join_op*> ops;

  explicit join_instances(int parallelism) {
    for (int i = 0; i < parallelism; ++i) {
      auto op = make_join();
      ops.push_back(op.get());
      hs.push_back(std::make_unique<operator_harness>(
        std::move(op), harness_options{.name = "join", .instance = i, .parallelism = parallelism}));
      BOOST_REQUIRE(hs.back()->open());
    }
  }
  void restore(memory_checkpoints& w) {
    for (auto& h : hs) {
      auto ok = h->op().restore(w);
      BOOST_REQUIRE_MESSAGE(ok, (ok ? "" : ok.error().to_string()));
    }
  }
  void push(int input, const std::vector<reading>& rows) {
    const auto p = static_cast<int>(hs.size());
    std::vector<std::vector<reading>> parts(hs.size());
    for (auto& r : rows)
      parts[static_cast<std::size_t>(instance_of_key_group(window_group_of(r.key), 128, p))]
        .push_back(r);
    for (std::size_t i = 0; i < hs.size(); ++i)
      if (!parts[i].empty())
        BOOST_REQUIRE(hs[i]->push(input, parts[i]));
  }
  void watermark(event_time wm) {
    for (auto& h : hs)
      BOOST_REQUIRE(h->watermark(wm));
  }
  std::vector<std::string> take() {
    std::vector<std::string> out;
    for (auto& h : hs)
      for (auto& s : h->take<std::string>())
        out.push_back(s);
    std::sort(out.begin(), out.end());
    return out;
  }
  std::size_t buffered() const {
    std::size_t n = 0;
    for (auto* op : ops)
      n += op->buffered_left() + op->buffered_right();
    return n;
  }
  /// What is still to come: matches with `later` right rows, then every expiry.
  std::vector<std::string> finish(const std::vector<reading>& later) {
    take();
    push(1, later);
    watermark(max_watermark);
    return take();
  }
};

} // namespace

BOOST_AUTO_TEST_CASE(an_interval_join_checkpoint_writes_deltas_of_the_changed_keys) {
  std::vector<reading> left, right, later;
  for (std::int64_t k = 0; k < 10'000; ++k) {
    left.push_back(rec(k, k, 10'000));
    if (k % 2 == 0)
      right.push_back(rec(k, -k, 20'000)); // matches no left row yet
    else
      later.push_back(rec(k, -k, 10'500)); // matches the left row at 10 s
  }
  for (std::int64_t k = 0; k < 5; ++k)
    left.push_back(rec(k, 100 + k, 1'000)); // expires at 2 s
  auto step0 = [&](join_instances& j) {
    j.push(0, left);
    j.push(1, right);
  };
  // A new left row matches a buffered right row, a right row marks a left row matched,
  // and the watermark expires five left rows (unmatched: emitted): six keys change.
  auto step1 = [](join_instances& j) {
    j.push(0, {rec(4, 44, 20'500)});
    j.push(1, {rec(7, 77, 10'200)});
    j.watermark(at_ms(2'000));
    BOOST_TEST(j.take().size() == 7u);
  };

  join_instances j{1};
  memory_checkpoints w;
  step0(j);
  w.begin();
  BOOST_REQUIRE(j.hs[0]->op().snapshot(1, w)); // full: shared, encoded later
  step1(j);
  w.finish();
  const auto bases = group_pieces(w.written);
  BOOST_TEST(bases.size() == 128u);
  {
    join_instances twin{1}, back{2};
    step0(twin);
    back.restore(w);
    BOOST_TEST(back.buffered() == twin.buffered(), "the buffers at the barrier");
    BOOST_TEST((back.finish(later) == twin.finish(later)));
  }

  checkpoint(*j.hs[0], w);
  std::map<int, int> chains;
  const auto expected = next_deltas({0, 1, 2, 3, 4, 7}, chains);
  BOOST_TEST(group_pieces(w.written) == expected, names(group_pieces(w.written)));
  BOOST_TEST(entries_written(w) == 6u, "one entry per changed key");
  BOOST_TEST(group_pieces(w.reused) == bases);

  join_instances one{1}, two{2}, three{3};
  one.restore(w);
  two.restore(w);
  three.restore(w);
  BOOST_TEST(one.buffered() == j.buffered());
  BOOST_TEST(three.buffered() == j.buffered());
  const auto original = j.finish(later);
  BOOST_TEST(original.size() == 10'000u);
  BOOST_TEST((one.finish(later) == original));
  BOOST_TEST((two.finish(later) == original));
  BOOST_TEST((three.finish(later) == original));
}

BOOST_AUTO_TEST_CASE(an_interval_join_delta_holds_the_rows_that_changed_not_a_hot_keys_whole_buffer) {
  // One key buffers 5000 left rows; then three arrive, one right row marks recent rows
  // matched, and the watermark expires the oldest 101.
  auto step0 = [](join_instances& j) {
    std::vector<reading> rows;
    for (std::int64_t i = 0; i < 5'000; ++i)
      rows.push_back(rec(1, i, 10'000 + i));
    j.push(0, rows);
  };
  auto step1 = [](join_instances& j) {
    j.push(0, {rec(1, -1, 15'500), rec(1, -2, 14'990), rec(1, -3, 16'000)});
    j.push(1, {rec(1, 7, 15'995)});
    j.watermark(at_ms(11'100));
  };
  const std::vector<reading> later{rec(1, 9, 12'000), rec(1, 8, 15'999)};

  join_instances j{1};
  memory_checkpoints w;
  step0(j);
  checkpoint(*j.hs[0], w);
  const auto g = window_group_of(1);
  const auto base = w.current.at(key_group_piece(g)).size();
  step1(j);
  checkpoint(*j.hs[0], w);
  BOOST_TEST((group_pieces(w.written) == std::set<std::string>{detail::delta_piece(g, 1)}));
  const auto delta = w.current.at(detail::delta_piece(g, 1));
  BOOST_TEST(delta_entries(delta) == 1u);
  BOOST_TEST(delta.size() * 50 < base, "delta " << delta.size() << " B, base " << base << " B");

  join_instances twin{1}, one{1}, two{2};
  step0(twin);
  step1(twin);
  one.restore(w);
  two.restore(w);
  BOOST_TEST(one.buffered() == twin.buffered());
  BOOST_TEST(j.buffered() == 4'903u, "5003 left rows, 101 expired, one right row");
  const auto expected = twin.finish(later);
  // 2001 + 3 matches with the later rows, then the 2894 left rows never matched.
  BOOST_TEST(expected.size() == 4'898u);
  BOOST_TEST((one.finish(later) == expected));
  BOOST_TEST((two.finish(later) == expected));
}

BOOST_AUTO_TEST_CASE(interval_join_deltas_of_changes_restore_every_round_of_a_random_run) {
  // Rows of a few hot keys arrive out of order, match old rows and expire; some keys empty
  // and come back. After every round a checkpoint (deltas, and bases when chains compact)
  // restores at parallelism 1 and 2 to the state of a run that never stopped.
  auto round = [](join_instances& j, int r) {
    std::mt19937 rng(static_cast<std::uint32_t>(1000 + r));
    // Mostly in order (the newest 400 ms), one row in 40 anywhere ahead of the watermark.
    std::uniform_int_distribution<int> key(0, 5), recent(2'600, 3'000), ahead(1, 3'000),
      side(0, 2), order(0, 39);
    const std::int64_t wm = r * 400;
    std::vector<reading> left, right;
    for (int i = 0; i < 40; ++i) {
      const auto row = rec(key(rng), r * 100 + i, wm + (order(rng) == 0 ? ahead(rng) : recent(rng)));
      (side(rng) == 0 ? right : left).push_back(row);
    }
    j.push(0, left);
    j.push(1, right);
    j.watermark(at_ms(wm + 400));
  };
  // Right rows of every key just ahead of round r's watermark (the harness does not restore
  // an operator's watermark: a job's sources bring it back).
  auto later = [](int r) {
    std::vector<reading> rows;
    for (std::int64_t k = 0; k < 6; ++k)
      rows.push_back(rec(k, 1'000 + k, (r + 1) * 400 + 500));
    return rows;
  };
  const int rounds = 24; // the buffers fill in 10 (4 s of rows, 400 ms per round)
  join_instances j{1};
  memory_checkpoints w;
  int deltas = 0;
  for (int r = 0; r < rounds; ++r) {
    round(j, r);
    checkpoint(*j.hs[0], w);
    for (auto& n : group_pieces(w.written))
      deltas += n.find("/d") != std::string::npos;
    join_instances twin{1}, one{1}, two{2};
    for (int t = 0; t <= r; ++t)
      round(twin, t);
    one.restore(w);
    two.restore(w);
    BOOST_TEST(one.buffered() == twin.buffered(), "round " << r);
    BOOST_TEST(two.buffered() == twin.buffered(), "round " << r);
    const auto expected = twin.finish(later(r));
    BOOST_TEST((one.finish(later(r)) == expected), "round " << r);
    BOOST_TEST((two.finish(later(r)) == expected), "round " << r);
  }
  BOOST_TEST(deltas > rounds, "the rounds wrote deltas, not only bases: " << deltas);
  BOOST_TEST(j.buffered() > 0u);
}

BOOST_AUTO_TEST_CASE(an_interval_join_delta_that_keeps_rows_the_base_lacks_is_refused_by_name) {
  join_instances j{1};
  memory_checkpoints w;
  std::vector<reading> rows;
  for (std::int64_t i = 0; i < 20; ++i)
    rows.push_back(rec(1, i, 10'000 + i));
  j.push(0, rows);
  checkpoint(*j.hs[0], w);
  j.push(0, {rec(1, 20, 10'020)});
  checkpoint(*j.hs[0], w);
  const auto g = window_group_of(1);
  auto& delta = w.current.at(detail::delta_piece(g, 1));
  // Rewrite the left side's `keep` (after the count, the key, the flag and `skip`): 20 -> 50.
  const std::size_t keep_at = 8 + 8 + 1 + 8;
  BOOST_REQUIRE(delta.size() > keep_at + 8);
  BOOST_REQUIRE(delta[keep_at] == 20);
  delta[keep_at] = 50;
  join_instances back{1};
  auto ok = back.hs[0]->op().restore(w);
  BOOST_REQUIRE(!ok);
  const auto& m = ok.error().message;
  BOOST_TEST(m.find("operator 'join', key group " + std::to_string(g)) != std::string::npos, m);
  BOOST_TEST(m.find("left rows: a delta keeps rows 0 to 50 of 20") != std::string::npos, m);
}

namespace {

/// A right-side record of its own type, so this test's join is its own instantiation.
struct probe {
  std::int64_t key = 0;
  event_time ts{};
};
template <class Inspector>
bool inspect(Inspector& f, probe& x) {
  return f.object("probe").fields(f.field("key", x.key), f.field("ts", x.ts));
}

} // namespace

BOOST_AUTO_TEST_CASE(an_interval_join_piece_with_rows_out_of_time_order_is_refused_by_name) {
  using rows = interval_join_buffers<reading, probe>;
  const std::int64_t key = 42;
  const int g = window_group_of(key);
  detail::state_encoder enc;
  enc.put(std::uint64_t{1}); // one key
  enc.put(key);
  enc.put(std::vector<rows::left_row>{{at_ms(2'000), false, rec(key, 1, 2'000)},
                                      {at_ms(1'000), false, rec(key, 2, 1'000)}});
  enc.put(std::vector<rows::right_row>{});
  memory_checkpoints w;
  w.current[key_group_piece(g)] = enc.take();
  operator_harness h{make_interval_join_operator<std::int64_t, reading, probe>(
                       interval_join_spec{-1s, 1s, join_type::inner}, key_of,
                       [](const probe& p) { return p.key; },
                       std::function<event_time(const reading&)>{ts_of},
                       std::function<event_time(const probe&)>{[](const probe& p) { return p.ts; }},
                       [](const reading& l, const probe&) { return l.value; }),
                     harness_options{.name = "join"}};
  BOOST_REQUIRE(h.open());
  auto ok = h.op().restore(w);
  BOOST_REQUIRE(!ok);
  const auto& m = ok.error().message;
  BOOST_TEST(m.find("operator 'join', key group " + std::to_string(g)) != std::string::npos, m);
  BOOST_TEST(m.find("field 'left': inspect() rejected the value") != std::string::npos, m);
}

BOOST_AUTO_TEST_CASE(the_late_row_watermark_restores_as_the_highest_of_every_instance) {
  // Deduplication and the interval join keep it per instance; a rescaled instance takes
  // the highest of all (the watermark was the job's when they were written).
  memory_checkpoints m;
  const event_time t5{std::chrono::seconds{5}}, t7{std::chrono::seconds{7}};
  BOOST_REQUIRE(detail::put_late_watermark(m, 0, t5));
  BOOST_REQUIRE(detail::put_late_watermark(m, 1, t7));
  event_time late = min_watermark;
  BOOST_REQUIRE(detail::restore_late_watermark(m, "deduplication 'd'", late));
  BOOST_TEST((late == t7));
  // Damaged: a piece with bytes after the watermark is named, not guessed.
  m.current["instance/1"] += "x";
  auto bad = detail::restore_late_watermark(m, "deduplication 'd'", late);
  BOOST_REQUIRE(!bad);
  BOOST_TEST(bad.error().message ==
             "deduplication 'd', instance 1: unreadable state: bytes after the late-row watermark");
  // A checkpoint written before the operator kept it: nothing to read, nothing changes.
  memory_checkpoints none;
  event_time kept = t5;
  BOOST_REQUIRE(detail::restore_late_watermark(none, "interval join 'j'", kept));
  BOOST_TEST((kept == t5));
}

BOOST_AUTO_TEST_SUITE_END()
