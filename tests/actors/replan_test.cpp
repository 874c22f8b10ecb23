// Re-planning a multi-node run onto the nodes left (actors/placement `leave_out`,
// actors/replan, the attempt's control message), driven directly: no actor system, no
// network. The whole path with real processes: tests/recovery/cluster_test.cpp
// (`a_node_that_never_returns_...`).
#include <boost/test/unit_test.hpp>

#include "sluice/actors/placement.hpp"
#include "sluice/actors/remote_control.hpp"
#include "sluice/actors/replan.hpp"
#include "sluice/actors/wiring.hpp"
#include "sluice/api/job.hpp"
#include "sluice/sinks/callback.hpp"
#include "sluice/sources/collection.hpp"
#include "sluice/tests/common/temp_dir.hpp"

#include <memory>
#include <string>
#include <vector>

using namespace sluice;

namespace {

/// numbers (3 instances: tasks 0-2) -> sums by key (3 instances: tasks 3-5) -> out (task 6).
struct three_by_three {
  graph g;
  physical_plan plan;
  std::vector<task_wiring> wiring;
  three_by_three() {
    job j{{.name = "replan", .parallelism = 3}};
    j.from(sources::collection<std::int64_t>{{1, 2, 3}})
      .name("numbers")
      .key_by([](std::int64_t x) { return x % 7; }, "mod")
      .reduce([](std::int64_t a, std::int64_t b) { return a + b; })
      .name("sums")
      .sink_to(sinks::for_each<std::int64_t>([](const std::int64_t&) {}))
      .name("out")
      .parallelism(1);
    auto p = j.plan();
    BOOST_REQUIRE(p);
    g = j.graph();
    plan = *p;
    wiring = wire(plan);
    BOOST_REQUIRE_EQUAL(wiring.size(), 7u);
  }
};

std::string message_of(const error& e) { return e.message; }

} // namespace

BOOST_AUTO_TEST_SUITE(placement_suite)

BOOST_AUTO_TEST_CASE(leaving_a_node_out_keeps_the_others_tasks_and_spreads_its_own) {
  three_by_three j;
  auto all = place(j.g, j.plan, j.wiring, 3);
  BOOST_REQUIRE(all);
  BOOST_TEST(all->node_of_task == (std::vector<int>{0, 1, 2, 0, 1, 2, 0}));
  auto left = leave_out(j.g, j.plan, j.wiring, *all, {0, 1});
  BOOST_REQUIRE_MESSAGE(left, (left ? "" : left.error().to_string()));
  // Tasks on nodes 0 and 1 stay (their pieces are in those nodes' stores). Node 2's source
  // instance goes to node 1 (one "numbers" each; node 1 has fewer tasks), its "sums"
  // instance then to node 0 (one "sums" each; three tasks each).
  BOOST_TEST(left->node_of_task == (std::vector<int>{0, 1, 1, 0, 1, 0, 0}));
  BOOST_TEST(left->live == (std::vector<int>{0, 1}));
  BOOST_TEST(left->runs_on(1));
  BOOST_TEST(!left->runs_on(2));
  // Channels that now stay within a node carry no codec; those that cross have one.
  for (std::size_t t = 0; t < j.wiring.size(); ++t)
    for (std::size_t i = 0; i < j.wiring[t].inputs.size(); ++i) {
      const auto from = j.wiring[t].inputs[i].from_task;
      const bool crosses = left->node_of_task[static_cast<std::size_t>(from)] != left->node_of_task[t];
      BOOST_TEST((left->codec_of_channel[left->channel(static_cast<int>(t), static_cast<int>(i))] !=
                  nullptr) == crosses);
    }
  // Leaving out node 1 as well puts everything on node 0.
  auto alone = leave_out(j.g, j.plan, j.wiring, *left, {0});
  BOOST_REQUIRE(alone);
  BOOST_TEST(alone->node_of_task == (std::vector<int>(7, 0)));
  BOOST_TEST(describe_placement(j.plan, j.wiring, *left).starts_with("Placement on nodes 0, 1 of 3:\n"));
}

BOOST_AUTO_TEST_CASE(node_0_cannot_be_left_out) {
  three_by_three j;
  auto all = place(j.g, j.plan, j.wiring, 3);
  BOOST_REQUIRE(all);
  auto no = leave_out(j.g, j.plan, j.wiring, *all, {1, 2});
  BOOST_REQUIRE(!no);
  BOOST_TEST(message_of(no.error()).find("node 0") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(a_placement_received_is_checked_against_the_job_and_the_cluster) {
  three_by_three j;
  auto ok = place_as(j.g, j.plan, j.wiring, 3, {0, 1}, {0, 1, 1, 0, 1, 0, 0});
  BOOST_TEST(ok.has_value());
  auto off = place_as(j.g, j.plan, j.wiring, 3, {0, 1}, {0, 1, 2, 0, 1, 0, 0});
  BOOST_REQUIRE(!off);
  BOOST_TEST(message_of(off.error()) == "placement: task 2 on node 2, which is not one of the nodes [0, 1]");
  auto few = place_as(j.g, j.plan, j.wiring, 3, {0, 1}, {0, 1});
  BOOST_REQUIRE(!few);
  BOOST_TEST(message_of(few.error()) == "placement: 2 tasks placed, the job has 7");
  for (const auto& live : {std::vector<int>{1, 2}, std::vector<int>{0, 2, 1}, std::vector<int>{0, 3},
                           std::vector<int>{0, 0}, std::vector<int>{}}) {
    auto bad = place_as(j.g, j.plan, j.wiring, 3, live, std::vector<int>(7, 0));
    BOOST_REQUIRE(!bad);
    BOOST_TEST(message_of(bad.error()).find("not ascending node numbers of a cluster of 3") !=
               std::string::npos);
  }
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(replanning)

BOOST_AUTO_TEST_CASE(a_placement_is_recorded_only_when_it_leaves_nodes_out_and_read_back) {
  three_by_three j;
  auto all = place(j.g, j.plan, j.wiring, 3);
  BOOST_REQUIRE(all);
  checkpoint_meta meta;
  meta.id = 4;
  record_placement(*all, meta.properties);
  BOOST_TEST(meta.properties.empty());
  auto none = recorded_placement_of(meta);
  BOOST_REQUIRE(none);
  BOOST_TEST(!none->has_value());

  auto left = leave_out(j.g, j.plan, j.wiring, *all, {0, 1});
  BOOST_REQUIRE(left);
  record_placement(*left, meta.properties);
  BOOST_TEST(meta.properties.at("cluster_live") == "0,1");
  BOOST_TEST(meta.properties.at("cluster_task_nodes") == "0,1,1,0,1,0,0");
  auto back = recorded_placement_of(meta);
  BOOST_REQUIRE(back);
  BOOST_REQUIRE(back->has_value());
  BOOST_TEST((*back)->live == left->live);
  BOOST_TEST((*back)->node_of_task == left->node_of_task);

  for (const std::string bad : {"", "0,,1", "0,x", "0,-1", "0,1,"}) {
    auto m = meta;
    m.properties["cluster_task_nodes"] = bad;
    auto r = recorded_placement_of(m);
    BOOST_REQUIRE_MESSAGE(!r, bad);
    BOOST_TEST((r.error().code == error_code::restore_conflict));
    BOOST_TEST(message_of(r.error()) ==
               "checkpoint 4: its placement (cluster_task_nodes) is not a list of node numbers: '" +
                 bad + "'");
  }
  auto half = meta;
  half.properties.erase("cluster_live");
  auto r = recorded_placement_of(half);
  BOOST_REQUIRE(!r);
  BOOST_TEST(message_of(r.error()) ==
             "checkpoint 4: its placement (cluster_live) is not a list of node numbers: 'missing'");
}

BOOST_AUTO_TEST_CASE(a_re_planned_placement_is_kept_in_a_file_at_once_and_read_back) {
  three_by_three j;
  test::temp_dir tmp;
  auto none = read_placement_file(tmp.path);
  BOOST_REQUIRE(none);
  BOOST_TEST(!none->has_value());
  auto all = place(j.g, j.plan, j.wiring, 3);
  BOOST_REQUIRE(all);
  auto left = leave_out(j.g, j.plan, j.wiring, *all, {0, 1});
  BOOST_REQUIRE(left);
  BOOST_REQUIRE(write_placement_file(tmp.path, *left));
  auto back = read_placement_file(tmp.path);
  BOOST_REQUIRE(back);
  BOOST_REQUIRE(back->has_value());
  BOOST_TEST((*back)->live == left->live);
  BOOST_TEST((*back)->node_of_task == left->node_of_task);
  tmp.write("cluster-placement", "live=0,1\n");
  auto bad = read_placement_file(tmp.path);
  BOOST_REQUIRE(!bad);
  BOOST_TEST(message_of(bad.error()).find("cannot read the re-planned placement in " +
                                          (tmp.path / "cluster-placement").string()) == 0u);
}

/// A checkpoint 5 whose "sums/kg-1" piece node 2 wrote into its store under `dir`, listed
/// in node 0's metadata, with node 0's own piece beside it.
struct two_stores {
  test::temp_dir tmp;
  std::unique_ptr<checkpoint_store> own; // node 0's
  checkpoint_meta meta;
  const std::string bytes = std::string(30000, 'k') + "state of key group 1";

  two_stores() {
    auto o = checkpoint_store::open(tmp.path, {.node = 0});
    BOOST_REQUIRE(o);
    own = std::move(*o);
    {
      auto n2 = checkpoint_store::open(node_store_dir(tmp.path, 2), {.node = 2});
      BOOST_REQUIRE(n2);
      auto piece = (*n2)->put(5, "sums/kg-1", bytes);
      BOOST_REQUIRE(piece);
      BOOST_TEST(piece->node == 2);
      checkpoint_meta theirs;
      theirs.id = 5;
      theirs.pieces = {*piece};
      BOOST_REQUIRE((*n2)->complete(theirs));
      meta.pieces.push_back(*piece);
    } // node 2 stops: its store is closed
    auto mine = own->put(5, "sums/kg-0", "state of key group 0");
    BOOST_REQUIRE(mine);
    meta.id = 5;
    meta.pieces.push_back(*mine);
    BOOST_REQUIRE(own->complete(meta));
  }
};

BOOST_AUTO_TEST_CASE(node_0_takes_over_the_pieces_of_a_node_left_out) {
  two_stores s;
  auto meta = s.meta;
  auto taken = adopt_pieces(*s.own, meta, {0, 1}, s.tmp.path, {});
  BOOST_REQUIRE_MESSAGE(taken, (taken ? "" : taken.error().to_string()));
  BOOST_REQUIRE_EQUAL(taken->size(), 1u);
  BOOST_TEST((*taken)[0].name == "sums/kg-1");
  BOOST_TEST((*taken)[0].stored_in == 5);
  BOOST_TEST((*taken)[0].bytes == s.bytes);
  // The metadata now names node 0 as the holder, and node 0's store serves the piece.
  for (const auto& p : meta.pieces)
    BOOST_TEST(p.node == 0);
  auto got = s.own->get(meta, "sums/kg-1");
  BOOST_REQUIRE(got);
  BOOST_TEST(*got == s.bytes);
  // Pieces of the nodes left are not touched: nothing to take with every node there.
  auto same = s.meta;
  auto nothing = adopt_pieces(*s.own, same, {0, 1, 2}, s.tmp.path, {});
  BOOST_REQUIRE(nothing);
  BOOST_TEST(nothing->empty());
  BOOST_TEST(same.pieces == s.meta.pieces);
}

BOOST_AUTO_TEST_CASE(a_store_not_shared_or_still_held_by_its_node_refuses_the_re_plan) {
  two_stores s;
  {
    // A directory per machine: node 0 does not see node 2's store.
    auto meta = s.meta;
    std::filesystem::rename(node_store_dir(s.tmp.path, 2), s.tmp.path / "elsewhere");
    auto no = adopt_pieces(*s.own, meta, {0, 1}, s.tmp.path, {});
    BOOST_REQUIRE(!no);
    BOOST_TEST((no.error().code == error_code::restore_conflict));
    BOOST_TEST(message_of(no.error()).starts_with("re-planning checkpoint 5 without node 2: its "
                                                  "checkpoint store " +
                                                  node_store_dir(s.tmp.path, 2).string() +
                                                  " is not there"));
    std::filesystem::rename(s.tmp.path / "elsewhere", node_store_dir(s.tmp.path, 2));
  }
  {
    // Node 2 cut off by the network but running: its store is open, so no second writer.
    auto held = checkpoint_store::open(node_store_dir(s.tmp.path, 2), {.node = 2});
    BOOST_REQUIRE(held);
    auto meta = s.meta;
    auto no = adopt_pieces(*s.own, meta, {0, 1}, s.tmp.path, {});
    BOOST_REQUIRE(!no);
    BOOST_TEST(message_of(no.error()).starts_with("re-planning checkpoint 5 without node 2: cannot "
                                                  "open its checkpoint store"));
    BOOST_TEST(message_of(no.error()).find("one cut off by the network still holds its store") !=
               std::string::npos);
    BOOST_TEST(meta.pieces == s.meta.pieces); // nothing relabelled
  }
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(remote_control_suite)

BOOST_AUTO_TEST_CASE(an_attempt_carries_its_nodes_and_placement_and_a_removed_node_hears_why) {
  control_message m{control_message::kind::attempt};
  m.task = -1;
  m.epoch = 3;
  m.nodes = {0, 1};
  m.task_nodes = {0, 1, 1, 0, 1, 0, 0};
  m.pieces = {{"sums/kg-1", 5, std::string("\0\1\2", 3)}};
  auto back = decode_control(encode_control(m));
  BOOST_REQUIRE(back);
  BOOST_TEST(back->nodes == m.nodes);
  BOOST_TEST(back->task_nodes == m.task_nodes);
  BOOST_REQUIRE_EQUAL(back->pieces.size(), 1u);
  BOOST_TEST(back->pieces[0].bytes == m.pieces[0].bytes);

  control_message r{control_message::kind::removed};
  r.task = -1;
  r.text = "the job was re-planned onto nodes 0, 1 without node 2";
  auto removed = decode_control(encode_control(r));
  BOOST_REQUIRE(removed);
  BOOST_TEST(to_string(removed->what) == "removed");
  BOOST_TEST(removed->text == r.text);
}

// Watermark alignment across nodes: a remote source task's report reaches node 0's
// coordinator, and its allowance the task, as control messages; a report naming no
// alignment state is refused, not taken as some state.
BOOST_AUTO_TEST_CASE(alignment_reports_and_allowances_cross_nodes_and_bad_states_are_refused) {
  control_message r{control_message::kind::wm_report};
  r.task = 4;
  r.code = 1; // active
  r.watermark_us = 1'234'567;
  auto report = decode_control(encode_control(r));
  BOOST_REQUIRE(report);
  BOOST_TEST(to_string(report->what) == "wmreport");
  BOOST_TEST(report->task == 4);
  BOOST_TEST(report->code == 1);
  BOOST_TEST(report->watermark_us == 1'234'567);

  control_message a{control_message::kind::wm_allow};
  a.task = 4;
  a.watermark_us = -5;
  auto allow = decode_control(encode_control(a));
  BOOST_REQUIRE(allow);
  BOOST_TEST(to_string(allow->what) == "wmallow");
  BOOST_TEST(allow->watermark_us == -5);

  r.code = 7;
  auto bad = decode_control(encode_control(r));
  BOOST_REQUIRE(!bad);
  BOOST_TEST((bad.error().code == error_code::malformed_frame));
  BOOST_TEST(bad.error().message.find("no alignment state 7") != std::string::npos);
}

BOOST_AUTO_TEST_SUITE_END()
