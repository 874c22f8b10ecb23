#define BOOST_TEST_MODULE task_test
// The task actor's CAF-free parts, driven directly: a micro-batch source's trigger
// (actors/source_trigger: planning, exact replay, when polls stop) and restoring a chain
// from a real checkpoint store (actors/task_restore). No actor system runs here; the
// engine, checkpoint and microbatch tests run the same code inside tasks.
#include <boost/test/unit_test.hpp>

#include "sluice/actors/source_trigger.hpp"
#include "sluice/actors/task_restore.hpp"
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
struct remembering_operator final : operator_base {
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

/// The chain "src" (a source head) -> "counts".
struct source_chain {
  discard_output out;
  remembering_operator* counts = nullptr;
  std::unique_ptr<chain> ops;

  source_chain() {
    std::vector<std::unique_ptr<operator_base>> nodes;
    nodes.push_back(nullptr);
    auto op = std::make_unique<remembering_operator>();
    counts = op.get();
    nodes.push_back(std::move(op));
    ops = std::make_unique<chain>(std::move(nodes), out);
  }
  restore_target target(source_base& src, int instance, int parallelism) {
    return restore_target{ops.get(), &src, {"src", "counts"}, instance, parallelism};
  }
};

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
