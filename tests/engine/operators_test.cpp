// Operators and chains on their own, without an actor system: operator objects and
// `sluice::chain` are called directly and their output captured by fakes.
#include <boost/test/unit_test.hpp>

#include "sluice/tests/engine/test_helpers.hpp"
#include "sluice/operators/chain.hpp"
#include "sluice/operators/co_process.hpp"
#include "sluice/operators/filter.hpp"
#include "sluice/operators/flat_map.hpp"
#include "sluice/operators/map.hpp"
#include "sluice/operators/keyed_process.hpp"
#include "sluice/operators/process.hpp"
#include "sluice/operators/reduce.hpp"
#include "sluice/sinks/sink.hpp"

#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

using namespace sluice;
using namespace sluice::test;

namespace {

struct kv {
  int key = 0;
  int value = 0;
  friend bool operator==(const kv&, const kv&) = default;
};
std::ostream& operator<<(std::ostream& os, const kv& r) {
  return os << "{" << r.key << ", " << r.value << "}";
}

template <class In, class Out, class F>
auto make_map(F fn) {
  return std::make_unique<map_operator<In, Out, F>>(std::move(fn));
}

template <class T, class F>
auto make_filter(F fn) {
  return std::make_unique<filter_operator<T, F>>(std::move(fn));
}

operator_info info_for(std::string name, int instance = 0, int parallelism = 1,
                       std::shared_ptr<const sluice::clock> clk = default_clock()) {
  operator_info info;
  info.name = std::move(name);
  info.instance = instance;
  info.parallelism = parallelism;
  info.max_key_groups = default_max_key_groups;
  info.key_groups = key_groups_of_instance(instance, default_max_key_groups, parallelism);
  info.processing_clock = std::move(clk);
  return info;
}

int key_group(int key) { return key_group_of(key_hash<int>{}(key), default_max_key_groups); }

/// Emits the odd records on port `side` (a copy), then the whole batch on port 0.
class fork_op final : public operator_base {
public:
  explicit fork_op(int side) : side_(side) {}
  result<void> process(int, batch_ptr in, output& out) override {
    auto odd = make_batch<int>();
    for (int v : records_of<int>(*in))
      if (v % 2 != 0)
        odd->records.push_back(v);
    if (auto r = out.emit(side_, odd); !r)
      return r;
    return out.emit(0, std::move(in));
  }

private:
  int side_;
};

/// Records what happens to it in a shared log; optionally fails in `open`, `process` or
/// `close`, or holds its input back until `finish`.
class logging_op final : public operator_base {
public:
  logging_op(std::string tag, std::shared_ptr<std::vector<std::string>> log)
    : tag_(std::move(tag)), log_(std::move(log)) {}
  bool fail_open = false;
  bool fail_close = false;
  bool hold_until_finish = false;

  result<void> open(const operator_info& info) override {
    info_ = info;
    log_->push_back(tag_ + ".open");
    if (fail_open)
      return make_error(error_code::io_error, tag_ + " cannot open");
    return {};
  }
  result<void> process(int, batch_ptr in, output& out) override {
    for (int v : records_of<int>(*in))
      log_->push_back(tag_ + ".process " + std::to_string(v));
    if (hold_until_finish) {
      held_.push_back(std::move(in));
      return {};
    }
    return out.emit(0, std::move(in));
  }
  result<void> finish(output& out) override {
    log_->push_back(tag_ + ".finish");
    for (auto& b : held_)
      if (auto r = out.emit(0, std::move(b)); !r)
        return r;
    held_.clear();
    return {};
  }
  result<void> close() override {
    log_->push_back(tag_ + ".close");
    if (fail_close)
      return make_error(error_code::io_error, tag_ + " cannot close");
    return {};
  }

private:
  std::string tag_;
  std::shared_ptr<std::vector<std::string>> log_;
  std::vector<batch_ptr> held_;
};

std::vector<operator_info> infos(std::size_t n) {
  std::vector<operator_info> v;
  for (std::size_t i = 0; i < n; ++i)
    v.push_back(info_for("node" + std::to_string(i)));
  return v;
}

} // namespace

BOOST_AUTO_TEST_SUITE(operators)

// -- map ---------------------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(map_works_in_place_on_an_unshared_batch) {
  auto op = make_map<int, int>([](const int& x) { return x * 2; });
  require_ok(op->open(info_for("m")));
  auto in = batch_of<int>({1, 2, 3});
  auto* original = in.get();
  capture_output out;
  require_ok(op->process(0, std::move(in), out));
  BOOST_REQUIRE_EQUAL(out.items.size(), 1u);
  BOOST_TEST(out.items[0].port == 0);
  BOOST_TEST(out.items[0].records.get() == original, "an unshared batch is reused, not copied");
  BOOST_TEST(out.records<int>() == (std::vector<int>{2, 4, 6}), boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(map_never_mutates_a_shared_batch) {
  auto op = make_map<int, int>([](const int& x) { return x + 100; });
  auto in = batch_of<int>({1, 2, 3});
  auto keep = in; // a second holder: the batch is shared
  capture_output out;
  require_ok(op->process(0, in, out));
  BOOST_REQUIRE_EQUAL(out.items.size(), 1u);
  BOOST_TEST(out.items[0].records.get() != keep.get());
  BOOST_TEST(records_of<int>(*keep) == (std::vector<int>{1, 2, 3}), boost::test_tools::per_element());
  BOOST_TEST(out.records<int>() == (std::vector<int>{101, 102, 103}),
             boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(map_to_another_type_builds_a_new_batch) {
  auto op = make_map<int, std::string>([](const int& x) { return std::to_string(x) + "!"; });
  capture_output out;
  require_ok(op->process(0, batch_of<int>({7, 8}), out));
  BOOST_REQUIRE_EQUAL(out.items.size(), 1u);
  BOOST_TEST((out.items[0].records->type() == std::type_index(typeid(std::string))));
  BOOST_TEST(out.records<std::string>() == (std::vector<std::string>{"7!", "8!"}),
             boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(map_by_rvalue_takes_over_the_records_of_an_unshared_batch) {
  // The strings are longer than the small-string buffer: a move hands over the heap buffer.
  const std::string long_a(64, 'a'), long_b(64, 'b');
  auto in = batch_of<std::string>({long_a, long_b});
  const char* buffer_a = records_of<std::string>(*in)[0].data();
  std::vector<const char*> buffers_taken;
  auto op = make_map<std::string, kv>([&](std::string&& s) {
    const std::string taken = std::move(s);
    buffers_taken.push_back(taken.data());
    return kv{static_cast<int>(taken.size()), taken[0]};
  });
  capture_output out;
  require_ok(op->process(0, std::move(in), out));
  BOOST_REQUIRE_EQUAL(buffers_taken.size(), 2u);
  BOOST_TEST(buffers_taken[0] == buffer_a, "the record's buffer moved, it was not copied");
  BOOST_TEST(out.records<kv>() == (std::vector<kv>{{64, 'a'}, {64, 'b'}}),
             boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(map_by_rvalue_copies_the_records_of_a_shared_batch) {
  const std::string long_a(64, 'a');
  auto op = make_map<std::string, kv>([](std::string&& s) {
    const std::string taken = std::move(s);
    return kv{static_cast<int>(taken.size()), taken[0]};
  });
  auto in = batch_of<std::string>({long_a});
  auto keep = in; // a second holder: its records must stay intact
  capture_output out;
  require_ok(op->process(0, in, out));
  BOOST_TEST(out.records<kv>() == (std::vector<kv>{{64, 'a'}}), boost::test_tools::per_element());
  BOOST_TEST(records_of<std::string>(*keep)[0] == long_a);
}

// -- filter ------------------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(filter_compacts_an_unshared_batch_in_place_keeping_order) {
  auto op = make_filter<int>([](const int& x) { return x % 3 != 0; });
  auto in = batch_of<int>({0, 1, 2, 3, 4, 5, 6, 7, 8, 9});
  auto* original = in.get();
  capture_output out;
  require_ok(op->process(0, std::move(in), out));
  BOOST_REQUIRE_EQUAL(out.items.size(), 1u);
  BOOST_TEST(out.items[0].records.get() == original);
  BOOST_TEST(out.records<int>() == (std::vector<int>{1, 2, 4, 5, 7, 8}),
             boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(filter_compacts_non_trivial_records) {
  auto op = make_filter<std::string>([](const std::string& s) { return s.size() > 1; });
  auto in = batch_of<std::string>({"a", "bb", "c", "dd", "eee", "f"});
  auto* original = in.get();
  capture_output out;
  require_ok(op->process(0, std::move(in), out));
  BOOST_REQUIRE_EQUAL(out.items.size(), 1u);
  BOOST_TEST(out.items[0].records.get() == original);
  BOOST_TEST(out.records<std::string>() == (std::vector<std::string>{"bb", "dd", "eee"}),
             boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(filter_never_mutates_a_shared_batch) {
  auto op = make_filter<int>([](const int& x) { return x > 2; });
  auto in = batch_of<int>({5, 1, 4, 2, 3});
  auto keep = in;
  capture_output out;
  require_ok(op->process(0, in, out));
  BOOST_TEST(records_of<int>(*keep) == (std::vector<int>{5, 1, 4, 2, 3}),
             boost::test_tools::per_element());
  BOOST_REQUIRE_EQUAL(out.items.size(), 1u);
  BOOST_TEST(out.items[0].records.get() != keep.get());
  BOOST_TEST(out.records<int>() == (std::vector<int>{5, 4, 3}), boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(filter_emits_nothing_when_everything_is_dropped) {
  auto op = make_filter<int>([](const int&) { return false; });
  capture_output out;
  require_ok(op->process(0, batch_of<int>({1, 2, 3}), out));
  auto shared = batch_of<int>({1, 2, 3});
  auto keep = shared;
  require_ok(op->process(0, shared, out));
  BOOST_TEST(out.items.empty());
}

// -- flat_map ----------------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(flat_map_emits_zero_or_more_records_per_record_in_order) {
  auto fn = [](const int& n, collector<std::string>& out) {
    for (int i = 0; i < n; ++i)
      out.collect(std::to_string(n) + "." + std::to_string(i));
  };
  flat_map_operator<int, std::string, decltype(fn)> op{fn};
  capture_output out;
  require_ok(op.process(0, batch_of<int>({2, 0, 1, 3}), out));
  BOOST_TEST(out.records<std::string>() ==
               (std::vector<std::string>{"2.0", "2.1", "1.0", "3.0", "3.1", "3.2"}),
             boost::test_tools::per_element());
  out.items.clear();
  require_ok(op.process(0, batch_of<int>({0, 0}), out));
  BOOST_TEST(out.items.empty(), "no records: no batch");
}

// -- process -----------------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(process_sees_its_context_and_the_injected_clock) {
  auto clk = std::make_shared<manual_clock>();
  auto fn = [](const int& x, context& ctx, collector<std::string>& out) {
    out.collect(ctx.operator_name() + "/" + std::to_string(ctx.instance()) + "/" +
                std::to_string(ctx.parallelism()) + "/" +
                std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(
                                 ctx.processing_time().time_since_epoch())
                                 .count()) +
                "/" + std::to_string(x));
  };
  process_operator<int, std::string, decltype(fn)> op{fn};
  require_ok(op.open(info_for("proc", 2, 3, clk)));
  capture_output out;
  require_ok(op.process(0, batch_of<int>({1}), out));
  clk->advance(1500ms);
  require_ok(op.process(0, batch_of<int>({2}), out));
  BOOST_TEST(out.records<std::string>() ==
               (std::vector<std::string>{"proc/2/3/0/1", "proc/2/3/1500/2"}),
             boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(process_accepts_an_object_with_on_element) {
  struct doubler {
    int calls = 0;
    void on_element(const int& x, context&, collector<int>& out) {
      ++calls;
      out.collect(x);
      out.emplace(x * calls);
    }
  };
  process_operator<int, int, doubler> op{doubler{}};
  capture_output out;
  require_ok(op.process(0, batch_of<int>({5, 5}), out));
  BOOST_TEST(out.records<int>() == (std::vector<int>{5, 5, 5, 10}), boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(keyed_process_context_carries_the_key_and_its_key_group) {
  auto key_fn = [](const kv& r) { return r.key; };
  auto fn = [](const kv& r, keyed_context<int>& ctx, collector<kv>& out) {
    out.collect(kv{ctx.current_key(), ctx.current_key_group()});
    (void)r;
  };
  keyed_process_function_operator<int, kv, kv, decltype(key_fn), decltype(fn)> op{key_fn, fn};
  require_ok(op.open(info_for("kp")));
  capture_output out;
  require_ok(op.process(0, batch_of<kv>({{1, 0}, {42, 0}, {1000, 0}}), out));
  BOOST_TEST(out.records<kv>() ==
               (std::vector<kv>{{1, key_group(1)}, {42, key_group(42)}, {1000, key_group(1000)}}),
             boost::test_tools::per_element());
}

// -- keyed state -------------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(reduce_keeps_a_running_value_per_key_in_its_key_group) {
  // Instance 1 of 4 owns key groups [32, 64): feed it only keys from that range, as the
  // hash router would.
  const auto range = key_groups_of_instance(1, default_max_key_groups, 4);
  BOOST_REQUIRE_EQUAL(range.first, 32);
  BOOST_REQUIRE_EQUAL(range.last, 64);
  std::vector<int> keys;
  for (int k = 0; keys.size() < 3; ++k)
    if (range.contains(key_group(k)))
      keys.push_back(k);

  auto key_fn = [](const kv& r) { return r.key; };
  auto sum = [](const kv& acc, const kv& next) { return kv{acc.key, acc.value + next.value}; };
  reduce_operator<int, kv, decltype(key_fn), decltype(sum)> op{key_fn, sum};
  require_ok(op.open(info_for("reduce", 1, 4)));
  BOOST_TEST(op.state().range().first == 32);
  BOOST_TEST(op.state().range().last == 64);

  const int a = keys[0], b = keys[1], c = keys[2];
  capture_output out;
  require_ok(op.process(0, batch_of<kv>({{a, 1}, {b, 10}, {a, 2}}), out));
  require_ok(op.process(0, batch_of<kv>({{c, 100}, {a, 3}, {b, 20}}), out));
  BOOST_TEST(out.records<kv>() ==
               (std::vector<kv>{{a, 1}, {b, 10}, {a, 3}, {c, 100}, {a, 6}, {b, 30}}),
             boost::test_tools::per_element());

  BOOST_TEST(op.state().size() == 3u);
  for (auto [key, total] : {std::pair{a, 6}, std::pair{b, 30}, std::pair{c, 100}}) {
    const auto& group = op.state().group(key_group(key));
    BOOST_REQUIRE_MESSAGE(group.count(key) == 1, "key " << key << " in its key group");
    BOOST_TEST(group.at(key).value == total);
  }
  // Every other key group stays empty.
  std::size_t held = 0;
  for (int kg = range.first; kg < range.last; ++kg)
    held += op.state().group(kg).size();
  BOOST_TEST(held == 3u);
}

BOOST_AUTO_TEST_CASE(aggregate_keeps_an_accumulator_per_key) {
  struct acc {
    int count = 0;
    int sum = 0;
  };
  struct with_key {
    acc create() const { return {}; }
    void add(acc& a, const kv& r) const {
      ++a.count;
      a.sum += r.value;
    }
    std::string result(const int& key, const acc& a) const {
      return std::to_string(key) + ":" + std::to_string(a.sum) + "/" + std::to_string(a.count);
    }
  };
  struct without_key {
    acc create() const { return {}; }
    void add(acc& a, const kv& r) const { a.sum += r.value; }
    int result(const acc& a) const { return a.sum; }
  };
  auto key_fn = [](const kv& r) { return r.key; };
  const std::vector<kv> input{{1, 5}, {2, 7}, {1, 1}, {1, 4}, {2, 3}};

  aggregate_operator<int, kv, acc, std::string, decltype(key_fn), with_key> op1{key_fn, {}};
  require_ok(op1.open(info_for("agg")));
  capture_output out1;
  require_ok(op1.process(0, batch_of<kv>(input), out1));
  BOOST_TEST(out1.records<std::string>() ==
               (std::vector<std::string>{"1:5/1", "2:7/1", "1:6/2", "1:10/3", "2:10/2"}),
             boost::test_tools::per_element());

  aggregate_operator<int, kv, acc, int, decltype(key_fn), without_key> op2{key_fn, {}};
  require_ok(op2.open(info_for("agg2")));
  capture_output out2;
  require_ok(op2.process(0, batch_of<kv>(input), out2));
  BOOST_TEST(out2.records<int>() == (std::vector<int>{5, 7, 6, 10, 10}),
             boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(aggregate_takes_a_move_only_accumulator) {
  // Copy-on-write state copies a key group only when a checkpoint shares it; a move-only
  // accumulator (never shared: snapshotted in the pause) must still compile and run.
  struct acc {
    std::unique_ptr<int> sum = std::make_unique<int>(0);
  };
  struct summing {
    acc create() const { return {}; }
    void add(acc& a, const kv& r) const { *a.sum += r.value; }
    int result(const acc& a) const { return *a.sum; }
  };
  auto key_fn = [](const kv& r) { return r.key; };
  aggregate_operator<int, kv, acc, int, decltype(key_fn), summing> op{key_fn, {}};
  require_ok(op.open(info_for("agg")));
  capture_output out;
  require_ok(op.process(0, batch_of<kv>({{1, 5}, {2, 7}, {1, 1}}), out));
  BOOST_TEST(out.records<int>() == (std::vector<int>{5, 7, 6}), boost::test_tools::per_element());
}

// -- two inputs and sinks ----------------------------------------------------------------

BOOST_AUTO_TEST_CASE(co_process_dispatches_by_input) {
  struct tagger {
    void process_element1(const int& x, context& ctx, collector<std::string>& out) {
      out.collect("a" + std::to_string(x) + "@" + std::to_string(ctx.instance()));
    }
    void process_element2(const std::string& s, context&, collector<std::string>& out) {
      out.collect("b" + s);
    }
  };
  co_process_operator<int, std::string, std::string, tagger> op{tagger{}};
  require_ok(op.open(info_for("co", 1, 2)));
  capture_output out;
  require_ok(op.process(0, batch_of<int>({1, 2}), out));
  require_ok(op.process(1, batch_of<std::string>({"x"}), out));
  BOOST_TEST(out.records<std::string>() == (std::vector<std::string>{"a1@1", "a2@1", "bx"}),
             boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(sink_operator_writes_flushes_on_finish_and_closes) {
  struct recording_sink final : sink<int> {
    std::shared_ptr<std::vector<std::string>> log;
    result<void> open(const sink_context& ctx) override {
      log->push_back("open " + ctx.name + " " + std::to_string(ctx.instance) + "/" +
                     std::to_string(ctx.parallelism));
      return {};
    }
    result<void> write(std::vector<int>& records) override {
      log->push_back("write " + std::to_string(records.size()));
      return {};
    }
    result<void> flush() override {
      log->push_back("flush");
      return {};
    }
    result<void> close() override {
      log->push_back("close");
      return {};
    }
  };
  auto log = std::make_shared<std::vector<std::string>>();
  auto s = std::make_unique<recording_sink>();
  s->log = log;
  sink_operator<int> op{std::move(s)};
  require_ok(op.open(info_for("out", 1, 2)));
  capture_output out;
  require_ok(op.process(0, batch_of<int>({1, 2, 3}), out));
  require_ok(op.finish(out));
  require_ok(op.close());
  BOOST_TEST(*log == (std::vector<std::string>{"open out 1/2", "write 3", "flush", "close"}),
             boost::test_tools::per_element());
  BOOST_TEST(out.items.empty(), "a sink emits nothing");
}

// -- chains ------------------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(chain_routes_port_0_downstream_and_side_ports_out_with_the_node_index) {
  std::vector<std::unique_ptr<operator_base>> ops;
  ops.push_back(std::make_unique<fork_op>(1));
  ops.push_back(std::make_unique<fork_op>(2));
  ops.push_back(make_map<int, int>([](const int& x) { return x * 10; }));
  capture_external ext;
  chain c{std::move(ops), ext};
  require_ok(c.open(infos(3)));
  require_ok(c.push(0, batch_of<int>({1, 2, 3})));
  BOOST_REQUIRE_EQUAL(ext.items.size(), 3u);
  BOOST_TEST(ext.items[0].node == 0);
  BOOST_TEST(ext.items[0].port == 1);
  BOOST_TEST(records_of<int>(*ext.items[0].records) == (std::vector<int>{1, 3}),
             boost::test_tools::per_element());
  BOOST_TEST(ext.items[1].node == 1);
  BOOST_TEST(ext.items[1].port == 2);
  BOOST_TEST(records_of<int>(*ext.items[1].records) == (std::vector<int>{1, 3}),
             boost::test_tools::per_element());
  // The last node's main output leaves the chain too.
  BOOST_TEST(ext.items[2].node == 2);
  BOOST_TEST(ext.items[2].port == 0);
  BOOST_TEST(records_of<int>(*ext.items[2].records) == (std::vector<int>{10, 20, 30}),
             boost::test_tools::per_element());
  require_ok(c.close());
}

BOOST_AUTO_TEST_CASE(chain_with_a_source_head_routes_deliveries) {
  std::vector<std::unique_ptr<operator_base>> ops;
  ops.push_back(nullptr); // the source: no operator object
  ops.push_back(make_map<int, int>([](const int& x) { return -x; }));
  capture_external ext;
  chain c{std::move(ops), ext};
  require_ok(c.open(infos(2)));
  require_ok(c.deliver(0, 0, batch_of<int>({4, 5})));
  require_ok(c.deliver(0, 1, batch_of<int>({99}))); // the dead-letter port: straight out
  BOOST_REQUIRE_EQUAL(ext.items.size(), 2u);
  BOOST_TEST(ext.items[0].node == 1);
  BOOST_TEST(ext.items[0].port == 0);
  BOOST_TEST(records_of<int>(*ext.items[0].records) == (std::vector<int>{-4, -5}),
             boost::test_tools::per_element());
  BOOST_TEST(ext.items[1].node == 0);
  BOOST_TEST(ext.items[1].port == 1);
  require_ok(c.finish()); // skips the null head
  require_ok(c.close());
}

BOOST_AUTO_TEST_CASE(chain_finish_flows_through_downstream_before_it_finishes) {
  auto log = std::make_shared<std::vector<std::string>>();
  std::vector<std::unique_ptr<operator_base>> ops;
  auto holder = std::make_unique<logging_op>("a", log);
  holder->hold_until_finish = true;
  ops.push_back(std::move(holder));
  ops.push_back(std::make_unique<logging_op>("b", log));
  capture_external ext;
  chain c{std::move(ops), ext};
  require_ok(c.open(infos(2)));
  require_ok(c.push(0, batch_of<int>({7})));
  require_ok(c.finish());
  require_ok(c.close());
  BOOST_TEST(*log == (std::vector<std::string>{"a.open", "b.open", "a.process 7", "a.finish",
                                               "b.process 7", "b.finish", "a.close", "b.close"}),
             boost::test_tools::per_element());
  BOOST_REQUIRE_EQUAL(ext.items.size(), 1u);
  BOOST_TEST(ext.items[0].node == 1);
}

BOOST_AUTO_TEST_CASE(chain_current_node_names_the_node_that_threw) {
  std::vector<std::unique_ptr<operator_base>> ops;
  ops.push_back(make_map<int, int>([](const int& x) { return x + 1; }));
  ops.push_back(make_map<int, int>([](const int& x) {
    if (x == 3)
      throw std::runtime_error("boom");
    return x;
  }));
  ops.push_back(make_map<int, int>([](const int& x) { return x; }));
  capture_external ext;
  chain c{std::move(ops), ext};
  require_ok(c.open(infos(3)));
  require_ok(c.push(0, batch_of<int>({0})));
  BOOST_TEST(c.current_node() == 0, "after a successful push: the head");
  // The map's exception comes out naming its record (operators/record_loop.hpp).
  BOOST_CHECK_THROW(c.push(0, batch_of<int>({1, 2})), record_failure);
  BOOST_TEST(c.current_node() == 1);
  require_ok(c.push(0, batch_of<int>({5})));
  BOOST_TEST(c.current_node() == 0);
  require_ok(c.close());
}

BOOST_AUTO_TEST_CASE(chain_current_node_names_the_node_that_returned_an_error) {
  struct failing final : operator_base {
    result<void> process(int, batch_ptr, output&) override {
      return make_error(error_code::connector_failed, "nope");
    }
  };
  std::vector<std::unique_ptr<operator_base>> ops;
  ops.push_back(make_map<int, int>([](const int& x) { return x; }));
  ops.push_back(make_map<int, int>([](const int& x) { return x; }));
  ops.push_back(std::make_unique<failing>());
  capture_external ext;
  chain c{std::move(ops), ext};
  require_ok(c.open(infos(3)));
  auto err = require_error(c.push(0, batch_of<int>({1})));
  BOOST_TEST(err.code == error_code::connector_failed);
  BOOST_TEST(err.message == "nope");
  BOOST_TEST(c.current_node() == 2);
}

BOOST_AUTO_TEST_CASE(chain_open_failure_closes_only_what_was_opened) {
  auto log = std::make_shared<std::vector<std::string>>();
  std::vector<std::unique_ptr<operator_base>> ops;
  ops.push_back(std::make_unique<logging_op>("a", log));
  auto bad = std::make_unique<logging_op>("b", log);
  bad->fail_open = true;
  ops.push_back(std::move(bad));
  ops.push_back(std::make_unique<logging_op>("c", log));
  capture_external ext;
  chain c{std::move(ops), ext};
  auto err = require_error(c.open(infos(3)));
  BOOST_TEST(err.message == "b cannot open");
  BOOST_TEST(c.current_node() == 1);
  require_ok(c.close());
  require_ok(c.close()); // idempotent
  BOOST_TEST(*log == (std::vector<std::string>{"a.open", "b.open", "a.close"}),
             boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(chain_close_reports_the_first_error_and_its_node) {
  auto log = std::make_shared<std::vector<std::string>>();
  std::vector<std::unique_ptr<operator_base>> ops;
  ops.push_back(std::make_unique<logging_op>("a", log));
  auto bad = std::make_unique<logging_op>("b", log);
  bad->fail_close = true;
  ops.push_back(std::move(bad));
  ops.push_back(std::make_unique<logging_op>("c", log));
  capture_external ext;
  chain c{std::move(ops), ext};
  require_ok(c.open(infos(3)));
  require_ok(c.finish());
  auto err = require_error(c.close());
  BOOST_TEST(err.message == "b cannot close");
  BOOST_TEST(c.current_node() == 1, "the task names this node in the failure");
  BOOST_TEST(log->back() == "c.close", "a failed close does not skip the others");
}

BOOST_AUTO_TEST_SUITE_END()
