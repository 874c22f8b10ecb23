// Partitioning: routers on their own, then whole jobs checking which instance saw which
// record (key_by, rebalance, broadcast, forward, union, connect) and key-group ranges.
#include <boost/test/unit_test.hpp>

#include "sluice/api/job.hpp"
#include "sluice/tests/engine/test_helpers.hpp"
#include "sluice/operators/partition.hpp"
#include "sluice/sinks/memory.hpp"
#include "sluice/sources/collection.hpp"
#include "sluice/sources/generator.hpp"

#include <algorithm>
#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <vector>

using namespace sluice;
using namespace sluice::test;

namespace {

/// A `channel_writer` that records every batch sent, by target.
struct capture_writer final : channel_writer {
  std::vector<std::pair<int, batch_ptr>> sent;
  void send(int target, batch_ptr records) override { sent.emplace_back(target, std::move(records)); }
  template <class T>
  std::vector<T> records_for(int target) const {
    std::vector<T> out;
    for (auto& [t, b] : sent)
      if (t == target)
        for (auto& r : records_of<T>(*b))
          out.push_back(r);
    return out;
  }
};

struct keyed_rec {
  std::uint64_t seq = 0;
  int key = 0;
};

/// What a keyed process instance reports about one record.
struct seen {
  std::uint64_t seq = 0;
  int key = 0;
  int instance = 0;
  int parallelism = 0;
  int key_group = 0;
};

template <class K>
int expected_instance(const K& key, int parallelism, int max_key_groups = default_max_key_groups) {
  return instance_of_key_group(key_group_of(key_hash<K>{}(key), max_key_groups), max_key_groups,
                               parallelism);
}

/// A process function reporting `(value, instance)` for each record.
struct where {
  int value = 0;
  int instance = 0;
  friend auto operator<=>(const where&, const where&) = default;
};
std::ostream& operator<<(std::ostream& os, const where& w) {
  return os << w.value << "@" << w.instance;
}
constexpr auto report_instance = [](const int& v, context& ctx, collector<where>& out) {
  out.collect(where{v, ctx.instance()});
};

std::vector<int> iota_vec(int first, int n) {
  std::vector<int> v(static_cast<std::size_t>(n));
  for (int i = 0; i < n; ++i)
    v[static_cast<std::size_t>(i)] = first + i;
  return v;
}

} // namespace

BOOST_AUTO_TEST_SUITE(partitioning)

// -- routers -----------------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(hash_router_sends_every_record_to_the_owner_of_its_key_group) {
  auto key_fn = [](const keyed_rec& r) { return r.key; };
  for (int max_kg : {default_max_key_groups, 7}) {
    for (int p = 1; p <= 5 && p <= max_kg; ++p) {
      BOOST_TEST_CONTEXT("max_key_groups " << max_kg << ", parallelism " << p) {
        auto make = make_hash_router_factory<keyed_rec, int>(key_fn);
        auto router = make(router_config{p, 1 << 20, max_kg});
        std::vector<keyed_rec> input;
        for (int i = 0; i < 2000; ++i)
          input.push_back(keyed_rec{static_cast<std::uint64_t>(i), i * 7919 - 5000});
        capture_writer w;
        router->push(batch_of(input), w);
        BOOST_TEST(w.sent.empty(), "nothing is sent before a buffer fills or a flush");
        BOOST_TEST(router->buffered());
        router->flush(w);
        BOOST_TEST(!router->buffered());
        std::size_t total = 0;
        for (auto& [target, b] : w.sent) {
          for (auto& r : records_of<keyed_rec>(*b)) {
            ++total;
            BOOST_TEST(target == expected_instance(r.key, p, max_kg), "key " << r.key);
          }
        }
        BOOST_TEST(total == input.size());
      }
    }
  }
}

BOOST_AUTO_TEST_CASE(hash_router_rebatches_to_the_batch_size_and_keeps_order_per_target) {
  auto key_fn = [](const keyed_rec& r) { return r.key; };
  auto router = make_hash_router_factory<keyed_rec, int>(key_fn)(router_config{3, 7, 128});
  capture_writer w;
  for (int b = 0; b < 10; ++b) {
    std::vector<keyed_rec> input;
    for (int i = 0; i < 13; ++i)
      input.push_back(keyed_rec{static_cast<std::uint64_t>(b * 13 + i), b * 13 + i});
    router->push(batch_of(input), w);
  }
  for (auto& [t, b] : w.sent)
    BOOST_TEST(b->size() == 7u, "batches sent before the flush are full");
  router->flush(w);
  for (int t = 0; t < 3; ++t) {
    auto got = w.records_for<keyed_rec>(t);
    BOOST_TEST(std::is_sorted(got.begin(), got.end(),
                              [](auto& a, auto& b) { return a.seq < b.seq; }),
               "per-target order is the input order");
  }
  std::size_t total = 0;
  for (auto& [t, b] : w.sent) {
    BOOST_TEST(b->size() <= 7u);
    total += b->size();
  }
  BOOST_TEST(total == 130u);
}

BOOST_AUTO_TEST_CASE(targets_on_another_node_get_larger_batches_of_flat_records) {
  // Channels between nodes carry larger batches of flat records (their encoded size is
  // their memory's), capped in bytes; records of other types keep the batch size, since
  // their encoded size is unknown until they are encoded.
  router_config cfg{2, 4, 128};
  cfg.remote_targets = {false, true};
  cfg.remote_batch_size = 10;
  auto key_fn = [](const keyed_rec& r) { return r.key; };
  auto flat = make_hash_router_factory<keyed_rec, int>(key_fn)(cfg);
  auto str_key = [](const std::string& s) { return s; };
  auto strings = make_hash_router_factory<std::string, std::string>(str_key)(cfg);
  auto rotating = make_router_factory<int>(partition_kind::rebalance)(cfg);
  capture_writer wf, ws, wr;
  std::vector<keyed_rec> recs;
  std::vector<std::string> words;
  for (int i = 0; i < 200; ++i) {
    recs.push_back(keyed_rec{static_cast<std::uint64_t>(i), i});
    words.push_back("w" + std::to_string(i));
  }
  flat->push(batch_of(recs), wf);
  strings->push(batch_of(words), ws);
  for (int b = 0; b < 4; ++b)
    rotating->push(batch_of(std::vector<int>(3, b)), wr); // 3 records to each target in turn
  std::map<int, std::size_t> flat_to, strings_to;
  for (auto& [t, b] : wf.sent) {
    BOOST_TEST(b->size() == (t == 0 ? 4u : 10u), "flat, target " << t << ": full batches only");
    ++flat_to[t];
  }
  for (auto& [t, b] : ws.sent) {
    BOOST_TEST(b->size() == 4u, "strings, target " << t << ": the batch size");
    ++strings_to[t];
  }
  BOOST_TEST(flat_to.size() == 2u);
  BOOST_TEST(strings_to.size() == 2u);
  // Round robin: target 0 sends at 4 (after 6 records), target 1 still holds its 6 (< 10).
  BOOST_REQUIRE(wr.sent.size() == 1u);
  BOOST_TEST(wr.sent[0].first == 0);
  BOOST_TEST(wr.sent[0].second->size() == 6u);
  BOOST_TEST(rotating->buffered());
  // The byte cap: 10 records of 400 bytes would be 4000; a cap of 2000 allows 5, and a cap
  // below the batch size never makes a remote batch smaller than a local one.
  struct wide {
    char bytes[400];
  };
  cfg.remote_batch_bytes = 2000;
  BOOST_TEST(cfg.batch_size_of<wide>(1) == 5u);
  cfg.remote_batch_bytes = 100;
  BOOST_TEST(cfg.batch_size_of<wide>(1) == 4u);
  BOOST_TEST(cfg.batch_size_of<wide>(0) == 4u);
}

BOOST_AUTO_TEST_CASE(hash_router_does_not_move_out_of_a_shared_batch) {
  auto key_fn = [](const std::string& s) { return s; };
  auto router = make_hash_router_factory<std::string, std::string>(key_fn)(router_config{2, 100, 128});
  const std::vector<std::string> words{"alpha", "beta", "gamma", "delta", "epsilon"};
  auto in = batch_of(words);
  auto keep = in;
  capture_writer w;
  router->push(in, w);
  router->flush(w);
  BOOST_TEST(records_of<std::string>(*keep) == words, boost::test_tools::per_element());
  std::multiset<std::string> got;
  for (int t = 0; t < 2; ++t)
    for (auto& s : w.records_for<std::string>(t)) {
      got.insert(s);
      BOOST_TEST(t == expected_instance(s, 2));
    }
  BOOST_TEST(got == std::multiset<std::string>(words.begin(), words.end()));
}

BOOST_AUTO_TEST_CASE(round_robin_router_rotates_whole_batches) {
  auto router = make_router_factory<int>(partition_kind::rebalance)(router_config{3, 4, 128});
  capture_writer w;
  for (int b = 0; b < 6; ++b)
    router->push(batch_of(iota_vec(b * 4, 4)), w); // full batches go out at once
  BOOST_REQUIRE_EQUAL(w.sent.size(), 6u);
  for (int b = 0; b < 6; ++b) {
    BOOST_TEST(w.sent[static_cast<std::size_t>(b)].first == b % 3);
    BOOST_TEST(records_of<int>(*w.sent[static_cast<std::size_t>(b)].second) == iota_vec(b * 4, 4),
               boost::test_tools::per_element());
  }
}

BOOST_AUTO_TEST_CASE(broadcast_router_gives_every_target_its_own_copy) {
  auto router = make_router_factory<int>(partition_kind::broadcast)(router_config{3, 100, 128});
  capture_writer w;
  router->push(batch_of<int>({1, 2, 3}), w);
  router->push(batch_of<int>({4}), w);
  router->flush(w);
  std::set<const batch_base*> distinct;
  for (auto& [t, b] : w.sent)
    distinct.insert(b.get());
  BOOST_TEST(distinct.size() == w.sent.size(), "no two targets share a batch");
  for (int t = 0; t < 3; ++t)
    BOOST_TEST(w.records_for<int>(t) == (std::vector<int>{1, 2, 3, 4}),
               boost::test_tools::per_element());
}

// -- key groups --------------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(key_group_ranges_partition_all_key_groups_exactly) {
  for (int m : {1, 7, 100, default_max_key_groups, 1000}) {
    for (int p = 1; p <= std::min(m, 128); ++p) {
      BOOST_TEST_CONTEXT("max_key_groups " << m << ", parallelism " << p) {
        int next = 0;
        bool ok = true;
        for (int i = 0; i < p; ++i) {
          auto r = key_groups_of_instance(i, m, p);
          ok = ok && r.first == next && r.size() >= 1;
          for (int kg = r.first; kg < r.last; ++kg)
            ok = ok && instance_of_key_group(kg, m, p) == i;
          next = r.last;
        }
        BOOST_TEST(ok, "ranges are contiguous, non-empty and agree with instance_of_key_group");
        BOOST_TEST(next == m, "the ranges end at max_key_groups");
      }
    }
  }
}

// -- end to end --------------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(key_by_sends_each_key_to_exactly_its_instance) {
  constexpr std::uint64_t n = 5000;
  for (int p = 1; p <= 4; ++p) {
    BOOST_TEST_CONTEXT("keyed parallelism " << p) {
      job j;
      auto out = sinks::collect<seen>{};
      j.from(sources::generator(
                {.count = n}, [](std::uint64_t s) { return keyed_rec{s, static_cast<int>(s % 97) - 40}; }))
        .parallelism(2)
        .key_by([](const keyed_rec& r) { return r.key; })
        .process([](const keyed_rec& r, keyed_context<int>& ctx, collector<seen>& c) {
          c.collect(seen{r.seq, ctx.current_key(), ctx.instance(), ctx.parallelism(),
                         ctx.current_key_group()});
        })
        .parallelism(p)
        .sink_to(out);
      require_ok(j.run());
      auto got = out.records();
      BOOST_REQUIRE_EQUAL(got.size(), n);
      std::map<int, std::set<int>> instances_of_key;
      std::set<std::uint64_t> seqs;
      int wrong = 0;
      for (auto& s : got) {
        seqs.insert(s.seq);
        instances_of_key[s.key].insert(s.instance);
        const auto kg = key_group_of(key_hash<int>{}(s.key), default_max_key_groups);
        if (s.key != static_cast<int>(s.seq % 97) - 40 || s.parallelism != p ||
            s.key_group != kg || s.instance != expected_instance(s.key, p) ||
            !key_groups_of_instance(s.instance, default_max_key_groups, p).contains(kg))
          ++wrong;
      }
      BOOST_TEST(wrong == 0);
      BOOST_TEST(seqs.size() == n, "every record processed once");
      BOOST_TEST(instances_of_key.size() == 97u);
      for (auto& [key, inst] : instances_of_key)
        BOOST_TEST(inst.size() == 1u, "key " << key << " seen on one instance only");
    }
  }
}

BOOST_AUTO_TEST_CASE(key_by_string_keys_into_a_keyed_sink) {
  // keyed_stream::sink_to: the sink itself is hash-partitioned.
  struct rec_sink_store {
    std::mutex m;
    std::vector<std::pair<std::string, int>> got; // (word, sink instance)
  };
  struct instance_sink final : sink<std::string> {
    std::shared_ptr<rec_sink_store> store;
    int instance = -1;
    result<void> open(const sink_context& ctx) override {
      instance = ctx.instance;
      return {};
    }
    result<void> write(std::vector<std::string>& records) override {
      std::lock_guard lk{store->m};
      for (auto& r : records)
        store->got.emplace_back(r, instance);
      return {};
    }
  };
  struct instance_sink_desc {
    using record_type = std::string;
    std::shared_ptr<rec_sink_store> store = std::make_shared<rec_sink_store>();
    std::unique_ptr<sink<std::string>> create(const sink_context&) const {
      auto s = std::make_unique<instance_sink>();
      s->store = store;
      return s;
    }
    std::string describe() const { return "instances"; }
  };
  std::vector<std::string> words;
  for (int i = 0; i < 300; ++i)
    words.push_back("w" + std::to_string(i % 37));
  job j;
  instance_sink_desc out;
  j.from(sources::collection<std::string>{words})
    .key_by([](const std::string& w) { return w; }, "word")
    .sink_to(out)
    .parallelism(3);
  require_ok(j.run());
  BOOST_REQUIRE_EQUAL(out.store->got.size(), words.size());
  int wrong = 0;
  for (auto& [w, inst] : out.store->got)
    wrong += inst != expected_instance(w, 3) ? 1 : 0;
  BOOST_TEST(wrong == 0);
}

BOOST_AUTO_TEST_CASE(signed_zero_keys_are_one_key) {
  // 0.0 == -0.0, so a running count keyed by them counts one key, on every parallelism:
  // hashing the bytes put them in two key groups (two states, two counts of 2).
  struct reading {
    double key = 0;
    int n = 1;
  };
  for (int p : {1, 3}) {
    BOOST_TEST_CONTEXT("parallelism " << p) {
      job j{{.name = "zeros", .parallelism = p}};
      auto out = sinks::collect<reading>{};
      j.from(sources::collection<reading>{{{0.0, 1}, {-0.0, 1}, {0.0, 1}, {-0.0, 1}}})
        .parallelism(1)
        .key_by([](const reading& r) { return r.key; })
        .reduce([](const reading& a, const reading& b) { return reading{a.key, a.n + b.n}; })
        .sink_to(out);
      require_ok(j.run());
      int most = 0;
      for (const auto& r : out.records())
        most = std::max(most, r.n);
      BOOST_TEST(most == 4);
    }
  }
}

BOOST_AUTO_TEST_CASE(rebalance_spreads_whole_batches_over_all_instances) {
  // One source instance, batches of 16: the router rotates over the 4 targets one full
  // batch at a time, so each instance gets exactly a quarter.
  job j{{.runtime = {.batch_size = 16}}};
  auto out = sinks::collect<where>{};
  j.from(sources::collection<int>{iota_vec(0, 1024)})
    .rebalance()
    .process(report_instance)
    .parallelism(4)
    .sink_to(out);
  require_ok(j.run());
  auto got = out.records();
  BOOST_REQUIRE_EQUAL(got.size(), 1024u);
  std::map<int, int> per_instance;
  std::set<int> values;
  for (auto& w : got) {
    ++per_instance[w.instance];
    values.insert(w.value);
  }
  BOOST_TEST(values.size() == 1024u);
  BOOST_REQUIRE_EQUAL(per_instance.size(), 4u);
  for (auto& [inst, count] : per_instance)
    BOOST_TEST(count == 256, "instance " << inst);
}

BOOST_AUTO_TEST_CASE(broadcast_delivers_every_record_to_every_instance) {
  job j;
  auto out = sinks::collect<where>{};
  j.from(sources::collection<int>{iota_vec(0, 100)})
    .parallelism(2)
    .broadcast()
    .process(report_instance)
    .parallelism(3)
    .sink_to(out);
  require_ok(j.run());
  auto got = out.records();
  std::sort(got.begin(), got.end());
  std::vector<where> expected;
  for (int v = 0; v < 100; ++v)
    for (int i = 0; i < 3; ++i)
      expected.push_back(where{v, i});
  std::sort(expected.begin(), expected.end());
  BOOST_TEST(got == expected, boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(forward_keeps_instance_i_on_instance_i) {
  // The collection source's instance i of 3 emits the elements i, i+3, ...
  for (bool chained : {false, true}) {
    BOOST_TEST_CONTEXT((chained ? "fused" : "separate tasks")) {
      job j{{.parallelism = 3}};
      auto out = sinks::collect<where>{};
      auto processed = j.from(sources::collection<int>{iota_vec(0, 300)})
                         .forward()
                         .process(report_instance);
      if (!chained)
        processed.disable_chaining();
      processed.sink_to(out);
      auto plan = require_ok(j.plan());
      BOOST_TEST(plan.chains.size() == (chained ? 1u : 2u));
      if (!chained) {
        BOOST_REQUIRE_EQUAL(plan.edges.size(), 1u);
        BOOST_TEST(plan.edges[0].kind == partition_kind::forward);
      }
      require_ok(j.run());
      auto got = out.records();
      BOOST_REQUIRE_EQUAL(got.size(), 300u);
      int wrong = 0;
      for (auto& w : got)
        wrong += w.instance != w.value % 3 ? 1 : 0;
      BOOST_TEST(wrong == 0);
    }
  }
}

BOOST_AUTO_TEST_CASE(union_merges_streams_of_the_same_type) {
  job j;
  auto out = sinks::collect<int>{};
  auto a = j.from(sources::collection<int>{iota_vec(0, 100)}).parallelism(2);
  auto b = j.from(sources::collection<int>{iota_vec(1000, 50)});
  auto c = j.from(sources::generator({.count = 30, .first = 5000},
                                          [](std::uint64_t n) { return static_cast<int>(n); }));
  a.union_with(b, c).map([](const int& x) { return x + 1; }).parallelism(2).sink_to(out);
  require_ok(j.run());
  auto got = out.records();
  std::sort(got.begin(), got.end());
  std::vector<int> expected;
  for (int v : iota_vec(0, 100))
    expected.push_back(v + 1);
  for (int v : iota_vec(1000, 50))
    expected.push_back(v + 1);
  for (int v : iota_vec(5000, 30))
    expected.push_back(v + 1);
  BOOST_TEST(got == expected, boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(connect_feeds_both_inputs_of_a_co_process) {
  struct tag {
    void process_element1(const int& x, context&, collector<std::string>& out) {
      out.collect("n" + std::to_string(x));
    }
    void process_element2(const std::string& s, context&, collector<std::string>& out) {
      out.collect("s" + s);
    }
  };
  job j;
  auto out = sinks::collect<std::string>{};
  auto nums = j.from(sources::collection<int>{iota_vec(0, 50)});
  auto words = j.from(sources::collection<std::string>{std::vector<std::string>{"x", "y", "z"}}).parallelism(2);
  nums.connect(words).process(tag{}).parallelism(2).sink_to(out);
  require_ok(j.run());
  auto got = out.records();
  std::sort(got.begin(), got.end());
  std::vector<std::string> expected{"sx", "sy", "sz"};
  for (int v : iota_vec(0, 50))
    expected.push_back("n" + std::to_string(v));
  std::sort(expected.begin(), expected.end());
  BOOST_TEST(got == expected, boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(keyed_connect_puts_both_sides_of_a_key_on_one_instance) {
  struct side_a {
    int key;
  };
  struct side_b {
    int key;
  };
  struct joined {
    int key;
    int input;
    int instance;
    int context_key;
  };
  struct co {
    void process_element1(const side_a& a, keyed_context<int>& ctx, collector<joined>& out) {
      out.collect(joined{a.key, 1, ctx.instance(), ctx.current_key()});
    }
    void process_element2(const side_b& b, keyed_context<int>& ctx, collector<joined>& out) {
      out.collect(joined{b.key, 2, ctx.instance(), ctx.current_key()});
    }
  };
  job j;
  auto out = sinks::collect<joined>{};
  auto a = j.from(sources::generator({.count = 400}, [](std::uint64_t n) {
                   return side_a{static_cast<int>(n % 50)};
                 }))
             .key_by([](const side_a& r) { return r.key; });
  auto b = j.from(sources::generator({.count = 200}, [](std::uint64_t n) {
                   return side_b{static_cast<int>(n % 50)};
                 }))
             .parallelism(2)
             .key_by([](const side_b& r) { return r.key; });
  a.connect_process(b, co{}).parallelism(3).sink_to(out);
  require_ok(j.run());
  auto got = out.records();
  BOOST_REQUIRE_EQUAL(got.size(), 600u);
  int from_a = 0, from_b = 0, wrong = 0;
  for (auto& r : got) {
    (r.input == 1 ? from_a : from_b)++;
    wrong += r.instance != expected_instance(r.key, 3) || r.context_key != r.key ? 1 : 0;
  }
  BOOST_TEST(from_a == 400);
  BOOST_TEST(from_b == 200);
  BOOST_TEST(wrong == 0);
}

BOOST_AUTO_TEST_SUITE_END()
