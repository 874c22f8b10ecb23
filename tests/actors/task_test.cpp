#define BOOST_TEST_MODULE task_test
// The task actor's CAF-free parts, driven directly: a micro-batch source's trigger
// (actors/source_trigger: planning, exact replay, when polls stop), snapshotting a chain
// into a real checkpoint store (actors/task_snapshot) and restoring it (actors/task_restore).
// No actor system runs here; the engine, checkpoint and microbatch tests run the same code
// inside tasks.
#include <boost/test/unit_test.hpp>

#include "sluice/actors/source_trigger.hpp"
#include "sluice/actors/task_restore.hpp"
#include "sluice/actors/task_snapshot.hpp"
#include "sluice/tests/common/temp_dir.hpp"

#include <algorithm>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

using namespace sluice;

namespace {

using lines = std::vector<std::string>;

/// "what a b c" for `what` and the parts {a, b, c}.
std::string joined(std::string what, const std::vector<std::string>& parts) {
  for (auto& p : parts)
    what += " " + p;
  return what;
}

/// A source that records what the runtime asks of it.
struct recording_source final : source_base {
  bool all_instances = false; ///< restores_from_all_instances
  std::string plans_end;      ///< what plan_trigger says the trigger's end is
  lines calls;

  result<void> open(const source_context&) override { return {}; }
  result<poll_result> poll_batches(std::size_t, batch_ptr&, batch_ptr&) override {
    return poll_result::more();
  }
  result<trigger_plan> plan_trigger(bool unlimited, std::uint64_t max_records) override {
    calls.push_back("plan " + std::string{unlimited ? "unlimited" : "capped"} + " " +
                    std::to_string(max_records));
    return trigger_plan{true, plans_end};
  }
  result<void> replay_trigger(std::string_view end) override {
    return record("replay " + std::string{end});
  }
  result<void> replay_trigger_all(const std::vector<std::string>& ends) override {
    return record(joined("replay all", ends));
  }
  bool restores_from_all_instances() const noexcept override { return all_instances; }
  result<void> seek(std::string_view position) override {
    return record("seek " + std::string{position});
  }
  result<void> seek_all(const std::vector<std::string>& positions) override {
    return record(joined("seek all", positions));
  }

private:
  result<void> record(std::string call) {
    calls.push_back(std::move(call));
    return {};
  }
};

source_trigger::request plan_request(std::uint64_t cap, bool unlimited = false) {
  return {unlimited, trigger_plans::step::plan, {}, cap, 1};
}

} // namespace

BOOST_AUTO_TEST_SUITE(source_trigger_suite)

BOOST_AUTO_TEST_CASE(a_fresh_plan_stops_at_the_record_cap_unless_the_source_fixed_its_end) {
  recording_source src;
  source_trigger t;
  auto plan = t.prepare(src, plan_request(100), false);
  BOOST_REQUIRE(plan);
  BOOST_TEST(plan->available);
  BOOST_TEST(plan->end.empty());
  BOOST_TEST(src.calls == (lines{"plan capped 100"}), boost::test_tools::per_element());
  t.begin(7);
  t.count(60);
  BOOST_TEST(t.reads_on(poll_result::status::more, 100));
  t.count(40);
  BOOST_TEST(!t.reads_on(poll_result::status::more, 100)); // the cap
  BOOST_TEST(!t.reads_on(poll_result::status::idle, 100)); // ran dry
  BOOST_TEST(!t.exhausted());

  // A source that planned where the trigger ends reads to it, whatever the cap.
  src.plans_end = "[\"offsets\"]";
  plan = t.prepare(src, plan_request(100), false);
  BOOST_REQUIRE(plan);
  BOOST_TEST(plan->end == "[\"offsets\"]");
  t.begin(8);
  t.count(500);
  BOOST_TEST(t.reads_on(poll_result::status::more, 100));

  // Trigger.Once ignores the cap too.
  src.plans_end.clear();
  plan = t.prepare(src, plan_request(100, true), false);
  BOOST_REQUIRE(plan);
  BOOST_TEST(src.calls.back() == "plan unlimited 100");
  t.begin(9);
  t.count(500);
  BOOST_TEST(t.reads_on(poll_result::status::more, 100));
}

BOOST_AUTO_TEST_CASE(begin_restarts_the_count_and_end_gives_the_epoch_once) {
  recording_source src;
  source_trigger t;
  BOOST_TEST(!t.end().has_value()); // nothing read yet
  BOOST_REQUIRE(t.prepare(src, plan_request(10), false));
  t.begin(3);
  t.count(10);
  BOOST_TEST(!t.reads_on(poll_result::status::more, 10));
  t.begin(4);
  BOOST_TEST(t.reads_on(poll_result::status::more, 10)); // a new trigger's count
  auto epoch = t.end();
  BOOST_REQUIRE(epoch.has_value());
  BOOST_TEST(*epoch == 4);
  BOOST_TEST(!t.end().has_value());
}

BOOST_AUTO_TEST_CASE(a_logged_plan_is_replayed_to_its_end_past_the_cap) {
  recording_source src;
  source_trigger t;
  auto plan = t.prepare(src, {false, trigger_plans::step::replay, "[\"logged\"]", 5, 1}, false);
  BOOST_REQUIRE(plan);
  BOOST_TEST(plan->available);
  BOOST_TEST(plan->end == "[\"logged\"]");
  BOOST_TEST(src.calls == (lines{"replay [\"logged\"]"}), boost::test_tools::per_element());
  t.begin(2);
  t.count(50);
  BOOST_TEST(t.reads_on(poll_result::status::more, 5));
}

BOOST_AUTO_TEST_CASE(a_merged_plan_is_split_anew_or_refused_naming_the_source) {
  const trigger_plans::merged_plan merged{3, "files", 2, {"[\"a\"]", "[\"b\"]"}, "/ckpt/offsets/3"};
  const source_trigger::request r{false, trigger_plans::step::replay_merged, merged.encode(), 5, 3};

  recording_source splits;
  splits.all_instances = true;
  source_trigger t;
  auto plan = t.prepare(splits, r, false);
  BOOST_REQUIRE(plan);
  BOOST_TEST(plan->available);
  BOOST_TEST(plan->end == r.end); // marked as planned: polls stop at the merged ends
  BOOST_TEST(splits.calls == (lines{"replay all [\"a\"] [\"b\"]"}), boost::test_tools::per_element());

  recording_source per_instance;
  source_trigger u;
  auto refused = u.prepare(per_instance, r, false);
  BOOST_REQUIRE(!refused);
  const auto& text = refused.error().message;
  BOOST_TEST(text == merged.cannot_replay_at(3).message);
  BOOST_TEST(text.find("source 'files' at parallelism 2") != std::string::npos, text);
  BOOST_TEST(per_instance.calls.empty());

  auto garbled = u.prepare(per_instance, {false, trigger_plans::step::replay_merged, "{", 5, 3}, false);
  BOOST_TEST(!garbled);
}

BOOST_AUTO_TEST_CASE(a_used_up_or_finishing_source_plans_nothing) {
  recording_source src;
  source_trigger t;
  auto plan = t.prepare(src, plan_request(10), /*finishing=*/true);
  BOOST_REQUIRE(plan);
  BOOST_TEST(!plan->available);
  BOOST_TEST(src.calls.empty());

  BOOST_REQUIRE(t.prepare(src, plan_request(10), false));
  t.begin(1);
  BOOST_TEST(!t.reads_on(poll_result::status::end, 10));
  BOOST_TEST(t.exhausted());
  src.calls.clear();
  plan = t.prepare(src, plan_request(10), false);
  BOOST_REQUIRE(plan);
  BOOST_TEST(!plan->available);
  BOOST_TEST(plan->end.empty());
  BOOST_TEST(src.calls.empty());
}

BOOST_AUTO_TEST_SUITE_END()

namespace {

/// An operator that takes back one piece, "kg/0", and keeps what it found.
struct remembering_operator : operator_base {
  std::string found = "not restored";
  result<void> process(int, batch_ptr, output&) override { return {}; }
  result<void> restore(snapshot_reader& r) override {
    auto piece = r.get(key_group_piece(0));
    if (!piece)
      return std::move(piece).error();
    found = *piece ? **piece : "nothing";
    return {};
  }
};

struct discard_output final : external_output {
  result<void> emit(int, int, batch_ptr) override { return {}; }
};

/// The chain "src" (a source head) -> "counts", with a `Counts` at "counts": the restore and
/// the snapshot tests run the same chain.
template <class Counts>
struct counts_chain {
  discard_output out;
  Counts* counts = nullptr;
  std::unique_ptr<chain> ops;

  counts_chain() {
    std::vector<std::unique_ptr<operator_base>> nodes;
    nodes.push_back(nullptr);
    auto op = std::make_unique<Counts>();
    counts = op.get();
    nodes.push_back(std::move(op));
    ops = std::make_unique<chain>(std::move(nodes), out);
  }
  /// Instance `instance` of `parallelism`, with `src` at its head.
  chain_view target(source_base& src, int instance, int parallelism) {
    return chain_view{ops.get(), &src, {"src", "counts"}, instance, parallelism};
  }
};

/// A checkpoint of a chain "src" -> "counts" written at parallelism 2.
struct written_checkpoint {
  test::temp_dir dir;
  std::unique_ptr<checkpoint_store> store;
  checkpoint_meta meta;

  written_checkpoint() {
    auto opened = checkpoint_store::open(dir.path);
    BOOST_REQUIRE(opened);
    store = std::move(*opened);
    auto pieces = store->put_all(4, {{"counts/kg/0", "state of kg 0"},
                                     {"source/src/0", "position 0"},
                                     {"source/src/1", "position 1"}});
    BOOST_REQUIRE(pieces);
    meta.id = 4;
    meta.job = "restore-test";
    meta.pieces = *pieces;
  }
};

using source_chain = counts_chain<remembering_operator>;

} // namespace

BOOST_AUTO_TEST_SUITE(task_restore)

BOOST_AUTO_TEST_CASE(operators_take_their_pieces_and_the_source_its_instances_position) {
  written_checkpoint cp;
  source_chain c;
  recording_source src;
  auto positioned = restore_chain(*cp.store, &cp.meta, c.target(src, 1, 2));
  BOOST_REQUIRE(positioned);
  BOOST_TEST(*positioned);
  BOOST_TEST(src.calls == (lines{"seek position 1"}), boost::test_tools::per_element());
  BOOST_TEST(c.counts->found == "state of kg 0");
}

BOOST_AUTO_TEST_CASE(a_source_restoring_from_all_instances_gets_every_position) {
  written_checkpoint cp;
  source_chain c;
  recording_source src;
  src.all_instances = true;
  auto positioned = restore_chain(*cp.store, &cp.meta, c.target(src, 0, 3));
  BOOST_REQUIRE(positioned);
  BOOST_TEST(*positioned);
  BOOST_TEST(src.calls == (lines{"seek all position 0 position 1"}), boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(a_per_instance_source_refuses_a_checkpoint_of_another_parallelism) {
  written_checkpoint cp;
  source_chain c;
  recording_source src;
  auto refused = restore_chain(*cp.store, &cp.meta, c.target(src, 0, 3));
  BOOST_REQUIRE(!refused);
  BOOST_TEST((refused.error().code == error_code::restore_conflict));
  const auto& text = refused.error().message;
  BOOST_TEST(text.find("source 'src' restores one position per instance: checkpoint 4 was taken "
                       "at parallelism 2, this run has 3; restart it at parallelism 2") !=
               std::string::npos,
             text);
  BOOST_TEST(src.calls.empty());
}

BOOST_AUTO_TEST_CASE(without_a_checkpoint_operators_restore_from_nothing) {
  written_checkpoint cp;
  source_chain c;
  recording_source src;
  auto positioned = restore_chain(*cp.store, nullptr, c.target(src, 0, 2));
  BOOST_REQUIRE(positioned);
  BOOST_TEST(!*positioned);
  BOOST_TEST(src.calls.empty());
  BOOST_TEST(c.counts->found == "nothing"); // restore ran: a two-phase sink settles here
}

BOOST_AUTO_TEST_CASE(a_source_with_no_position_in_the_checkpoint_stays_where_it_opened) {
  written_checkpoint cp;
  cp.meta.pieces.erase(std::remove_if(cp.meta.pieces.begin(), cp.meta.pieces.end(),
                                      [](const checkpoint_piece& p) {
                                        return p.name.starts_with("source/");
                                      }),
                       cp.meta.pieces.end());
  source_chain c;
  recording_source src;
  auto positioned = restore_chain(*cp.store, &cp.meta, c.target(src, 0, 3));
  BOOST_REQUIRE(positioned);
  BOOST_TEST(!*positioned);
  BOOST_TEST(src.calls.empty());
  BOOST_TEST(c.counts->found == "state of kg 0");
}

BOOST_AUTO_TEST_SUITE_END()

namespace {

/// An operator whose snapshot is one piece "kg/0" holding `state`: written at once,
/// deferred to the writer thread, or referred to in the previous snapshot. It restores as
/// `remembering_operator` does, so a restart shows what the snapshot stored.
struct snapshotting_operator final : remembering_operator {
  enum class how { now, later, reuse, failing_later };
  how mode = how::now;
  std::string state = "counts v1";

  result<void> snapshot(std::int64_t, snapshot_writer& w) override {
    switch (mode) {
      case how::now:
        return w.put(key_group_piece(0), state);
      case how::later:
        return w.put_later(key_group_piece(0), [s = state]() -> result<std::string> { return s; });
      case how::reuse:
        return w.reuse(key_group_piece(0));
      case how::failing_later:
        return w.put_later(key_group_piece(0), []() -> result<std::string> {
          return make_error(error_code::io_error, "state too large");
        });
    }
    return {};
  }
};

/// A source whose position is "at <n>".
struct positioned_source final : source_base {
  std::string at = "at 0";
  std::string sought;
  result<void> open(const source_context&) override { return {}; }
  result<poll_result> poll_batches(std::size_t, batch_ptr&, batch_ptr&) override {
    return poll_result::more();
  }
  std::optional<std::string> position() const override { return at; }
  result<void> seek(std::string_view p) override {
    sought = std::string{p};
    return {};
  }
};

/// The chain "src" -> "counts" (instance `instance` of `parallelism`), and an empty store.
struct snapshot_fixture {
  test::temp_dir dir;
  std::unique_ptr<checkpoint_store> store;
  counts_chain<snapshotting_operator> c;
  snapshotting_operator* counts = c.counts;
  positioned_source src;
  std::unordered_map<std::string, checkpoint_piece> previous;
  int instance = 0;
  int parallelism = 1;

  snapshot_fixture() {
    auto opened = checkpoint_store::open(dir.path);
    BOOST_REQUIRE(opened);
    store = std::move(*opened);
  }
  chain_view view() { return c.target(src, instance, parallelism); }

  /// Snapshot `id` through both parts, as the task and the writer thread do.
  result<std::vector<checkpoint_piece>> take(std::int64_t id, bool has_previous) {
    std::vector<pending_piece> pending;
    if (auto r = snapshot_chain(id, view(), has_previous, pending); !r)
      return std::move(r).error();
    return store_pieces(*store, id, pending, previous);
  }
  checkpoint_meta complete(std::int64_t id, std::vector<checkpoint_piece> pieces) {
    checkpoint_meta meta;
    meta.id = id;
    meta.job = "snapshot-test";
    meta.pieces = std::move(pieces);
    BOOST_REQUIRE(store->complete(meta));
    return meta;
  }
};

std::vector<std::string> names_of(const std::vector<checkpoint_piece>& pieces) {
  std::vector<std::string> out;
  for (const auto& p : pieces)
    out.push_back(p.name);
  std::sort(out.begin(), out.end());
  return out;
}

} // namespace

BOOST_AUTO_TEST_SUITE(task_snapshot)

BOOST_AUTO_TEST_CASE(a_snapshot_names_operator_pieces_by_node_and_the_position_by_instance) {
  snapshot_fixture f;
  f.instance = 1;
  f.parallelism = 2;
  auto named = f.take(2, false);
  BOOST_REQUIRE(named);
  BOOST_TEST(names_of(*named) == (lines{"counts/kg/0", "source/src/1"}),
             boost::test_tools::per_element());
  f.instance = 0;
  f.parallelism = 1;
  f.src.at = "at 42";
  f.counts->mode = snapshotting_operator::how::later; // made on the writer thread
  auto pieces = f.take(3, false);
  BOOST_REQUIRE(pieces);
  const auto meta = f.complete(3, *pieces);
  // What was stored is what a restart of the same chain takes back.
  snapshot_fixture again;
  again.store = std::move(f.store);
  auto positioned = restore_chain(*again.store, &meta, again.view());
  BOOST_REQUIRE_MESSAGE(positioned, (positioned ? "" : positioned.error().message));
  BOOST_TEST(*positioned);
  BOOST_TEST(again.src.sought == "at 42");
  BOOST_TEST(again.counts->found == "counts v1");
}

BOOST_AUTO_TEST_CASE(an_unchanged_piece_refers_to_the_previous_snapshot_of_the_run) {
  snapshot_fixture f;
  auto first = f.take(1, false);
  BOOST_REQUIRE(first);
  f.complete(1, *first);
  f.counts->mode = snapshotting_operator::how::reuse;
  f.src.at = "at 7";
  auto second = f.take(2, true);
  BOOST_REQUIRE(second);
  const auto is_counts = [](const checkpoint_piece& p) { return p.name == "counts/kg/0"; };
  const auto reused = std::find_if(second->begin(), second->end(), is_counts);
  BOOST_REQUIRE((reused != second->end()));
  const auto original = std::find_if(first->begin(), first->end(), is_counts);
  BOOST_TEST((*reused == *original)); // the same stored bytes, not a copy
  const auto meta = f.complete(2, *second);
  auto state = f.store->get(meta, "counts/kg/0");
  BOOST_REQUIRE(state);
  BOOST_TEST(*state == "counts v1");
}

BOOST_AUTO_TEST_CASE(the_first_snapshot_of_a_run_cannot_refer_to_an_earlier_one) {
  snapshot_fixture f;
  f.counts->mode = snapshotting_operator::how::reuse;
  std::vector<pending_piece> pending;
  auto refused = snapshot_chain(1, f.view(), false, pending);
  BOOST_REQUIRE(!refused);
  BOOST_TEST(refused.error().message.find("'kg/0'") != std::string::npos, refused.error().message);
  // A writer that lost its record of the previous snapshot refuses the reference too.
  f.previous.clear();
  pending.clear();
  BOOST_REQUIRE(snapshot_chain(2, f.view(), true, pending));
  auto lost = store_pieces(*f.store, 2, pending, f.previous);
  BOOST_REQUIRE(!lost);
  BOOST_TEST(lost.error().message ==
             "piece 'counts/kg/0' refers to a previous snapshot without it");
}

BOOST_AUTO_TEST_CASE(a_deferred_piece_that_fails_is_named_and_nothing_is_stored) {
  snapshot_fixture f;
  f.counts->mode = snapshotting_operator::how::failing_later;
  auto failed = f.take(5, false);
  BOOST_REQUIRE(!failed);
  BOOST_TEST((failed.error().code == error_code::io_error));
  BOOST_TEST(failed.error().message == "piece 'counts/kg/0': state too large");
  auto highest = f.store->highest_id();
  BOOST_REQUIRE(highest);
  BOOST_TEST(*highest == -1);
}

BOOST_AUTO_TEST_SUITE_END()
