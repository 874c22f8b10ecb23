// The logical graph and the planner: validation errors, chain fusion, explain output, and
// the lower-level node_spec/connect API running a custom operator.
#include <boost/test/unit_test.hpp>

#include "sluice/api/job.hpp"
#include "sluice/tests/engine/test_helpers.hpp"
#include "sluice/sinks/memory.hpp"
#include "sluice/sources/collection.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <map>
#include <string>
#include <vector>

using namespace sluice;
using namespace sluice::test;

namespace {

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

std::vector<int> iota_vec(int n) {
  std::vector<int> v(static_cast<std::size_t>(n));
  for (int i = 0; i < n; ++i)
    v[static_cast<std::size_t>(i)] = i;
  return v;
}

/// A hand-built operator node of `In -> Out` that forwards nothing (never run).
template <class In, class Out>
node_spec operator_spec(std::string name, int inputs = 1) {
  struct nothing final : operator_base {
    result<void> process(int, batch_ptr, output&) override { return {}; }
  };
  node_spec spec;
  spec.kind = node_kind::operator_node;
  spec.name = std::move(name);
  spec.kind_name = "custom";
  spec.inputs.assign(static_cast<std::size_t>(inputs), record_type_of<In>());
  spec.outputs = {port_spec::of<Out>()};
  spec.make_operator = [] { return std::make_unique<nothing>(); };
  return spec;
}

/// A hand-built sink node collecting into `into`.
template <class T>
node_spec sink_spec(std::string name, std::shared_ptr<sinks::collected<T>> into) {
  node_spec spec;
  spec.kind = node_kind::sink;
  spec.name = std::move(name);
  spec.kind_name = "sink";
  spec.inputs = {record_type_of<T>()};
  spec.make_operator = [into]() -> std::unique_ptr<operator_base> {
    return std::make_unique<sink_operator<T>>(std::make_unique<sinks::memory_sink<T>>(into));
  };
  return spec;
}

/// A hand-built source node of ints; `dead_letter_port` adds a must-connect port 1.
node_spec source_spec(std::string name, bool dead_letter_port) {
  node_spec spec;
  spec.kind = node_kind::source;
  spec.name = std::move(name);
  spec.kind_name = "source";
  spec.outputs = {port_spec::of<int>()};
  if (dead_letter_port)
    spec.outputs.push_back(port_spec::of<dead_letter>("dead-letters", true));
  spec.make_source = [](const source_context&) -> std::unique_ptr<source_base> {
    return std::make_unique<sources::collection_source<int>>(
      std::make_shared<const std::vector<int>>(std::vector<int>{1, 2, 3}));
  };
  return spec;
}

/// The chains of a plan as lists of node names.
std::vector<std::vector<std::string>> chains_of(const job& j) {
  auto p = require_ok(j.plan());
  std::vector<std::vector<std::string>> out;
  for (auto& c : p.chains) {
    out.emplace_back();
    for (auto n : c.nodes)
      out.back().push_back(j.graph().node(n).name);
  }
  return out;
}
using chains = std::vector<std::vector<std::string>>;

auto identity = [](const int& x) { return x; };
auto everything = [](const int&) { return true; };

/// A two-input operator written against the low-level API: input 0 carries numbers
/// (hash-partitioned), input 1 labels (broadcast). It tags each number with its instance
/// and the labels seen so far, and on finish reports how many numbers it saw.
class tagger final : public operator_base {
public:
  result<void> process(int input, batch_ptr records, output& out) override {
    auto produced = make_batch<std::string>();
    if (input == 0) {
      for (int v : records_of<int>(*records)) {
        ++numbers_;
        produced->records.push_back("n" + std::to_string(v) + "@" + std::to_string(info().instance));
      }
    } else {
      for (auto& s : records_of<std::string>(*records))
        produced->records.push_back("l" + s + "@" + std::to_string(info().instance));
    }
    return out.emit(0, std::move(produced));
  }
  result<void> finish(output& out) override {
    auto summary = make_batch<std::string>();
    summary->records.push_back("done@" + std::to_string(info().instance) + ":" +
                               std::to_string(numbers_) + "/" + std::to_string(info().parallelism));
    return out.emit(0, std::move(summary));
  }

private:
  int numbers_ = 0;
};

} // namespace

BOOST_AUTO_TEST_SUITE(graph)

// -- validation --------------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(a_job_without_a_sink_is_rejected) {
  job j;
  j.from(sources::collection<int>{{1, 2}}).map(identity);
  auto err = require_error(j.plan());
  BOOST_TEST(err.code == error_code::invalid_graph);
  BOOST_TEST(contains(err.message, "no sink"), err.message);
  BOOST_TEST(require_error(j.run()).code == error_code::invalid_graph, "run() checks too");
}

BOOST_AUTO_TEST_CASE(a_job_without_a_source_is_rejected) {
  job j;
  auto store = std::make_shared<sinks::collected<int>>();
  auto spec = sink_spec<int>("lonely", store);
  spec.inputs.clear();
  j.graph().add(std::move(spec));
  auto err = require_error(j.plan());
  BOOST_TEST(err.code == error_code::invalid_graph);
  BOOST_TEST(contains(err.message, "no source"), err.message);
  job empty;
  BOOST_TEST(contains(require_error(empty.plan()).message, "no source"));
}

BOOST_AUTO_TEST_CASE(connect_rejects_a_type_mismatch_and_bad_ports) {
  job j;
  auto src = j.from(sources::collection<int>{{1}});
  auto id = j.graph().add(operator_spec<std::string, std::string>("strings"));
  auto err = require_error(j.graph().connect(src.ends()[0], in_port{id, 0}));
  BOOST_TEST(err.code == error_code::invalid_graph);
  BOOST_TEST(contains(err.message, "'collection' emits int but input 0 of 'strings' takes std::"),
             err.message);
  BOOST_TEST(contains(require_error(j.graph().connect(src.ends()[0], in_port{id, 1})).message,
                      "has no input 1"));
  BOOST_TEST(contains(require_error(j.graph().connect(out_port{src.ends()[0].node, 5}, in_port{id, 0}))
                        .message,
                      "has no output port 5"));
  BOOST_TEST(contains(require_error(j.graph().connect(out_port{99, 0}, in_port{id, 0})).message,
                      "unknown node id"));
  partitioning keyless;
  keyless.how = partitioning::mode::hash;
  auto ints = j.graph().add(operator_spec<int, int>("ints"));
  BOOST_TEST(contains(require_error(j.graph().connect(src.ends()[0], in_port{ints, 0}, keyless))
                        .message,
                      "hash partitioning without a key"));
  require_ok(j.graph().connect(src.ends()[0], in_port{ints, 0}));
}

BOOST_AUTO_TEST_CASE(an_unconnected_input_is_rejected) {
  job j;
  auto src = j.from(sources::collection<int>{{1}});
  auto id = j.graph().add(operator_spec<int, int>("joiner", 2));
  require_ok(j.graph().connect(src.ends()[0], in_port{id, 0}));
  auto store = std::make_shared<sinks::collected<int>>();
  auto sink = j.graph().add(sink_spec<int>("out", store));
  require_ok(j.graph().connect(out_port{id, 0}, in_port{sink, 0}));
  auto err = require_error(j.plan());
  BOOST_TEST(err.code == error_code::invalid_graph);
  BOOST_TEST(err.message == "input 1 of 'joiner' is not connected");
}

BOOST_AUTO_TEST_CASE(a_forward_edge_between_different_parallelism_is_rejected) {
  job j;
  j.from(sources::collection<int>{{1}})
    .parallelism(2)
    .forward()
    .map(identity)
    .name("narrow")
    .parallelism(3)
    .sink_to(sinks::collect<int>{});
  auto err = require_error(j.plan());
  BOOST_TEST(err.code == error_code::invalid_graph);
  BOOST_TEST(err.message ==
             "forward edge 'collection' -> 'narrow' connects different parallelism (2 vs 3); use "
             "rebalance()");
}

BOOST_AUTO_TEST_CASE(keyed_parallelism_above_the_key_groups_is_rejected) {
  job j{{.max_key_groups = 4}};
  j.from(sources::collection<int>{{1}})
    .key_by(identity)
    .reduce([](const int& a, const int& b) { return a + b; })
    .name("sum")
    .parallelism(8)
    .sink_to(sinks::collect<int>{});
  auto err = require_error(j.plan());
  BOOST_TEST(err.code == error_code::invalid_option);
  BOOST_TEST(err.message == "'sum': parallelism 8 exceeds the number of key groups (4)");
  j.options().max_key_groups = 8;
  require_ok(j.plan());
}

BOOST_AUTO_TEST_CASE(name_and_parallelism_on_a_union_are_rejected) {
  job j;
  auto a = j.from(sources::collection<int>{{1}});
  auto b = j.from(sources::collection<int>{{2}});
  auto u = a.union_with(b);
  u.name("merged");
  u.sink_to(sinks::collect<int>{});
  auto err = require_error(j.plan());
  BOOST_TEST(err.code == error_code::invalid_graph);
  BOOST_TEST(err.message == "name() on a union: set it on each input");

  job k;
  auto c = k.from(sources::collection<int>{{1}});
  c.union_with(k.from(sources::collection<int>{{2}})).parallelism(2).sink_to(sinks::collect<int>{});
  BOOST_TEST(require_error(k.plan()).message == "parallelism() on a union: set it on each input");
}

BOOST_AUTO_TEST_CASE(an_unconnected_dead_letter_port_is_rejected) {
  job j;
  auto src = j.graph().add(source_spec("csv-in", true));
  auto store = std::make_shared<sinks::collected<int>>();
  auto sink = j.graph().add(sink_spec<int>("out", store));
  require_ok(j.graph().connect(out_port{src, 0}, in_port{sink, 0}));
  auto err = require_error(j.plan());
  BOOST_TEST(err.code == error_code::invalid_graph);
  BOOST_TEST(err.message ==
             "output 'dead-letters' of 'csv-in' must be connected (records would be lost otherwise)");

  // Connected, the same graph is valid and runs.
  auto dead = std::make_shared<sinks::collected<dead_letter>>();
  auto dl_sink = j.graph().add(sink_spec<dead_letter>("dead", dead));
  require_ok(j.graph().connect(out_port{src, 1}, in_port{dl_sink, 0}));
  require_ok(j.run());
  BOOST_TEST(store->records() == (std::vector<int>{1, 2, 3}), boost::test_tools::per_element());
  BOOST_TEST(dead->size() == 0u);
}

BOOST_AUTO_TEST_CASE(dead_letters_of_a_non_source_are_rejected) {
  job j;
  auto m = j.from(sources::collection<int>{{1}}).map(identity).name("m");
  m.dead_letters().sink_to(sinks::collect<dead_letter>{});
  m.sink_to(sinks::collect<int>{});
  BOOST_TEST(require_error(j.plan()).message ==
             "dead_letters(): 'm' is not a source with a dead-letter output");
}

BOOST_AUTO_TEST_CASE(a_cycle_and_bad_parallelism_are_rejected) {
  job j;
  auto src = j.from(sources::collection<int>{{1}});
  auto a = j.graph().add(operator_spec<int, int>("a"));
  auto b = j.graph().add(operator_spec<int, int>("b"));
  require_ok(j.graph().connect(src.ends()[0], in_port{a, 0}));
  require_ok(j.graph().connect(out_port{a, 0}, in_port{b, 0}));
  require_ok(j.graph().connect(out_port{b, 0}, in_port{a, 0}));
  auto store = std::make_shared<sinks::collected<int>>();
  auto sink = j.graph().add(sink_spec<int>("out", store));
  require_ok(j.graph().connect(out_port{b, 0}, in_port{sink, 0}));
  BOOST_TEST(require_error(j.plan()).message == "the job graph has a cycle");

  job k;
  auto one = k.graph().add(source_spec("single", false));
  k.graph().node(one).max_parallelism = 1;
  k.graph().node(one).parallelism = 2;
  auto ksink = k.graph().add(sink_spec<int>("out", store));
  require_ok(k.graph().connect(out_port{one, 0}, in_port{ksink, 0}));
  auto err = require_error(k.plan());
  BOOST_TEST(err.code == error_code::invalid_option);
  BOOST_TEST(err.message == "'single': parallelism 2 exceeds the maximum of 1 for source");
  k.graph().node(one).parallelism = -1;
  BOOST_TEST(require_error(k.plan()).message == "'single': parallelism must be at least 1");
  k.graph().node(one).parallelism = 1;
  require_ok(k.plan());
  k.options().parallelism = 0;
  BOOST_TEST(require_error(k.plan()).code == error_code::invalid_option);
}

// -- chain fusion ------------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(forward_edges_of_equal_parallelism_fuse_into_one_chain) {
  job j{{.parallelism = 2}};
  j.from(sources::collection<int>{{1}}).map(identity).filter(everything).sink_to(sinks::collect<int>{});
  BOOST_TEST(chains_of(j) == (chains{{"collection", "map", "filter", "memory"}}));
  auto p = require_ok(j.plan());
  BOOST_TEST(p.edges.empty());
  BOOST_TEST(p.chains[0].parallelism == 2);
  BOOST_TEST(p.chains[0].is_source);
  BOOST_TEST(p.chains[0].name == "collection -> map -> filter -> memory");
}

BOOST_AUTO_TEST_CASE(different_parallelism_breaks_the_chain) {
  job j;
  j.from(sources::collection<int>{{1}})
    .map(identity)
    .parallelism(2)
    .filter(everything)
    .parallelism(2)
    .sink_to(sinks::collect<int>{});
  BOOST_TEST(chains_of(j) == (chains{{"collection"}, {"map", "filter"}, {"memory"}}));
  auto p = require_ok(j.plan());
  BOOST_REQUIRE_EQUAL(p.edges.size(), 2u);
  BOOST_TEST(p.edges[0].kind == partition_kind::rebalance, "automatic across parallelism");
  BOOST_TEST(p.edges[1].kind == partition_kind::rebalance);
  BOOST_TEST(p.edges[1].from_node_index == 1, "sent by the chain's second node");
}

BOOST_AUTO_TEST_CASE(rebalance_key_by_and_broadcast_break_the_chain) {
  job j;
  j.from(sources::collection<int>{{1}})
    .map(identity)
    .rebalance()
    .filter(everything)
    .key_by(identity, "self")
    .reduce([](const int& a, const int& b) { return a + b; })
    .broadcast()
    .sink_to(sinks::collect<int>{});
  BOOST_TEST(chains_of(j) ==
             (chains{{"collection", "map"}, {"filter"}, {"reduce"}, {"memory"}}));
  auto p = require_ok(j.plan());
  BOOST_REQUIRE_EQUAL(p.edges.size(), 3u);
  BOOST_TEST(p.edges[0].kind == partition_kind::rebalance);
  BOOST_TEST(p.edges[1].kind == partition_kind::hash);
  BOOST_TEST(p.edges[1].key_name == "self");
  BOOST_TEST(p.edges[2].kind == partition_kind::broadcast);
}

BOOST_AUTO_TEST_CASE(disable_chaining_and_fan_out_break_the_chain) {
  job j;
  auto s = j.from(sources::collection<int>{{1}}).map(identity);
  s.filter(everything).disable_chaining().sink_to(sinks::collect<int>{}).disable_chaining();
  BOOST_TEST(chains_of(j) == (chains{{"collection", "map"}, {"filter"}, {"memory"}}));
  auto p = require_ok(j.plan());
  for (auto& e : p.edges)
    BOOST_TEST(e.kind == partition_kind::forward, "still forward, just not fused");

  job k;
  auto t = k.from(sources::collection<int>{{1}}).map(identity);
  t.sink_to(sinks::collect<int>{});
  t.sink_to(sinks::collect<int>{});
  BOOST_TEST(chains_of(k) == (chains{{"collection", "map"}, {"memory"}, {"memory-2"}}));
}

// -- explain -----------------------------------------------------------------------------

namespace {
void build_clicks_job(job& j) {
  struct click {
    int user;
  };
  j.from(sources::collection<click>{{{1}, {2}}})
    .name("clicks")
    .key_by([](const click& c) { return c.user; }, "user")
    .process([](const click& c, keyed_context<int>&, collector<int>& out) { out.collect(c.user); })
    .name("per-user")
    .parallelism(2)
    .sink_to(sinks::collect<int>{})
    .name("totals")
    .parallelism(2);
}
} // namespace

BOOST_AUTO_TEST_CASE(explain_text_names_nodes_partitioning_and_chains) {
  job j;
  build_clicks_job(j);
  auto text = require_ok(j.explain());
  BOOST_TEST_MESSAGE(text);
  for (auto part : {"== Logical plan ==", "clicks (source: collection(2))", "per-user (process)",
                    "totals (sink: memory)", "clicks -> per-user  hash(user)",
                    "== Physical plan (128 key groups) ==", "chain 0 x1: clicks",
                    "chain 1 x2: per-user -> totals", "chain 0 -> chain 1  hash(user)"})
    BOOST_TEST(contains(text, part), "missing: " << part);
}

BOOST_AUTO_TEST_CASE(explain_dot_has_a_cluster_per_chain) {
  job j;
  build_clicks_job(j);
  auto dot = require_ok(j.explain(explain_format::dot));
  for (auto part : {"digraph job {", "subgraph cluster_0", "subgraph cluster_1",
                    "label=\"chain 1 x2\"", "[label=\"clicks\\nsource\"]",
                    "[label=\"per-user\\nprocess\"]", "n0 -> n1 [label=\"hash(user)\"]",
                    "n1 -> n2 [label=\"forward\"]"})
    BOOST_TEST(contains(dot, part), "missing: " << part);
}

BOOST_AUTO_TEST_CASE(explain_json_parses_and_describes_the_plan) {
  job j;
  build_clicks_job(j);
  auto text = require_ok(j.explain(explain_format::json));
  auto doc = nlohmann::json::parse(text);
  BOOST_TEST(doc.at("max_key_groups").get<int>() == 128);
  auto& nodes = doc.at("nodes");
  BOOST_REQUIRE_EQUAL(nodes.size(), 3u);
  std::vector<std::string> names;
  for (auto& n : nodes)
    names.push_back(n.at("name").get<std::string>());
  BOOST_TEST(names == (std::vector<std::string>{"clicks", "per-user", "totals"}),
             boost::test_tools::per_element());
  BOOST_TEST(nodes[0].at("kind").get<std::string>() == "source");
  BOOST_TEST(nodes[1].at("kind").get<std::string>() == "operator");
  BOOST_TEST(nodes[1].at("operator").get<std::string>() == "process");
  BOOST_TEST(nodes[2].at("kind").get<std::string>() == "sink");
  BOOST_TEST(nodes[0].at("parallelism").get<int>() == 1);
  BOOST_TEST(nodes[1].at("parallelism").get<int>() == 2);
  BOOST_TEST(nodes[1].at("chain").get<int>() == nodes[2].at("chain").get<int>());
  BOOST_TEST(nodes[0].at("chain").get<int>() != nodes[1].at("chain").get<int>());
  BOOST_REQUIRE_EQUAL(doc.at("edges").size(), 2u);
  BOOST_TEST(doc.at("edges")[0].at("from").get<int>() == 0);
  BOOST_TEST(doc.at("edges")[0].at("to").get<int>() == 1);
  BOOST_REQUIRE_EQUAL(doc.at("chains").size(), 2u);
  BOOST_TEST(doc.at("chains")[1].at("name").get<std::string>() == "per-user -> totals");
  BOOST_TEST(doc.at("chains")[1].at("nodes") == nlohmann::json::array({1, 2}));
  BOOST_REQUIRE_EQUAL(doc.at("channels").size(), 1u);
  auto& ch = doc.at("channels")[0];
  BOOST_TEST(ch.at("partitioning").get<std::string>() == "hash");
  BOOST_TEST(ch.at("key").get<std::string>() == "user");
  BOOST_TEST(ch.at("from_chain").get<int>() == 0);
  BOOST_TEST(ch.at("to_chain").get<int>() == 1);
}

// -- the low-level API -------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(a_custom_two_input_operator_runs_through_the_low_level_api) {
  constexpr int parallelism = 3;
  job j;
  auto numbers = j.from(sources::collection<int>{iota_vec(60)}).name("numbers").parallelism(2);
  auto labels = j.from(sources::collection<std::string>{std::vector<std::string>{"x", "y"}}).name("labels");
  auto& g = j.graph();

  node_spec spec;
  spec.kind = node_kind::operator_node;
  spec.name = "tagger";
  spec.kind_name = "tagger";
  spec.parallelism = parallelism;
  spec.inputs = {record_type_of<int>(), record_type_of<std::string>()};
  spec.outputs = {port_spec::of<std::string>()};
  spec.make_operator = [] { return std::make_unique<tagger>(); };
  const auto id = g.add(std::move(spec));
  require_ok(g.connect(numbers.ends()[0], in_port{id, 0},
                       partition::hash<int>([](const int& v) { return v; }, "value")));
  require_ok(g.connect(labels.ends()[0], in_port{id, 1}, partition::broadcast()));
  auto store = std::make_shared<sinks::collected<std::string>>();
  const auto sink = g.add(sink_spec<std::string>("tags", store));
  require_ok(g.connect(out_port{id, 0}, in_port{sink, 0}, partition::rebalance()));

  auto text = require_ok(j.explain());
  BOOST_TEST(contains(text, "numbers -> tagger[0]  hash(value)"), text);
  BOOST_TEST(contains(text, "labels -> tagger[1]  broadcast"), text);

  auto done = require_ok(j.run());
  BOOST_TEST(!done.cancelled);
  auto got = store->records();
  std::sort(got.begin(), got.end());
  std::vector<std::string> expected;
  std::map<int, int> per_instance;
  for (int v = 0; v < 60; ++v) {
    const auto inst = instance_of_key_group(key_group_of(key_hash<int>{}(v), default_max_key_groups),
                                            default_max_key_groups, parallelism);
    ++per_instance[inst];
    expected.push_back("n" + std::to_string(v) + "@" + std::to_string(inst));
  }
  for (int i = 0; i < parallelism; ++i) {
    expected.push_back("lx@" + std::to_string(i));
    expected.push_back("ly@" + std::to_string(i));
    expected.push_back("done@" + std::to_string(i) + ":" + std::to_string(per_instance[i]) + "/" +
                       std::to_string(parallelism));
  }
  std::sort(expected.begin(), expected.end());
  BOOST_TEST(got == expected, boost::test_tools::per_element());
}

BOOST_AUTO_TEST_SUITE_END()
