// Property test: one job run under random parallelism, batch size, linger and credits must
// give the result a single-threaded reference computes (WindFlow runs its graph tests so).
#include <boost/test/unit_test.hpp>

#include "sluice/api/job.hpp"
#include "sluice/tests/engine/test_helpers.hpp"
#include "sluice/sinks/memory.hpp"
#include "sluice/sources/generator.hpp"

#include <algorithm>
#include <cstdint>
#include <map>
#include <random>
#include <sstream>
#include <tuple>
#include <vector>

using namespace sluice;
using namespace sluice::test;

namespace {

struct rec {
  std::uint64_t seq = 0;
  std::uint32_t key = 0;
  std::int64_t value = 0;
  std::uint32_t count = 1; ///< records folded into this one by the reduce
  friend auto operator<=>(const rec&, const rec&) = default;
};

constexpr std::uint32_t keys = 61;

// The job's functions, shared with the reference so both compute the same thing.
rec make_record(std::uint64_t n) {
  const auto h = splitmix64(n);
  return rec{n, static_cast<std::uint32_t>(h % keys), static_cast<std::int64_t>(h >> 44) - 500000, 1};
}
rec transform(const rec& r) { return rec{r.seq, r.key, r.value * 3 + 1, r.count}; }
bool keep(const rec& r) { return r.value % 5 != 0; }
rec combine(const rec& acc, const rec& next) {
  return rec{std::max(acc.seq, next.seq), acc.key, acc.value + next.value, acc.count + next.count};
}

struct config {
  int source_p, map_p, filter_p, reduce_p, filtered_sink_p, result_sink_p;
  std::size_t batch_size;
  std::chrono::microseconds linger;
  int credits;
};
std::ostream& operator<<(std::ostream& os, const config& c) {
  return os << "parallelism source " << c.source_p << " map " << c.map_p << " filter "
            << c.filter_p << " reduce " << c.reduce_p << " sinks " << c.filtered_sink_p << "/"
            << c.result_sink_p << ", batch_size " << c.batch_size << ", linger "
            << c.linger.count() << "us, credits " << c.credits;
}

} // namespace

BOOST_AUTO_TEST_SUITE(property)

BOOST_AUTO_TEST_CASE(random_parallelism_and_batching_give_the_reference_result) {
  constexpr std::uint64_t n = 50000;

  // The single-threaded reference.
  std::vector<rec> ref_filtered;
  std::map<std::uint32_t, rec> ref_final; // key -> (sum, count)
  for (std::uint64_t i = 0; i < n; ++i) {
    auto r = transform(make_record(i));
    if (!keep(r))
      continue;
    ref_filtered.push_back(r);
    auto [it, fresh] = ref_final.try_emplace(r.key, r);
    if (!fresh)
      it->second = combine(it->second, r);
  }
  std::sort(ref_filtered.begin(), ref_filtered.end());
  // Each running reduction emits counts 1..n_k for key k, whatever order the records of a
  // key arrive in; the sums along the way do depend on that order.
  std::vector<std::pair<std::uint32_t, std::uint32_t>> ref_counts;
  for (auto& [k, r] : ref_final)
    for (std::uint32_t c = 1; c <= r.count; ++c)
      ref_counts.emplace_back(k, c);
  BOOST_REQUIRE(ref_filtered.size() > n / 2);
  BOOST_REQUIRE(ref_final.size() == keys);

  std::mt19937 rng{20240611u};
  auto pick = [&](int lo, int hi) { return std::uniform_int_distribution<int>{lo, hi}(rng); };
  const std::chrono::microseconds lingers[] = {0us, 50us, 1000us};

  for (int iteration = 0; iteration < 20; ++iteration) {
    config cfg{pick(1, 4),
               pick(1, 4),
               pick(1, 4),
               pick(1, 4),
               pick(1, 4),
               pick(1, 4),
               static_cast<std::size_t>(pick(1, 2000)),
               lingers[pick(0, 2)],
               pick(1, 8)};
    BOOST_TEST_CONTEXT("iteration " << iteration << ": " << cfg) {
      job j{{.name = "property",
             .runtime = {.batch_size = cfg.batch_size, .linger = cfg.linger, .credits = cfg.credits}}};
      auto filtered_out = sinks::collect<rec>{};
      auto result_out = sinks::collect<rec>{};
      auto rebalanced_out = sinks::collect<rec>{};
      auto filtered = j.from(sources::generator({.count = n}, make_record))
                        .parallelism(cfg.source_p)
                        .map(transform)
                        .parallelism(cfg.map_p)
                        .filter(keep)
                        .parallelism(cfg.filter_p);
      // Fan-out: the filtered stream feeds two sinks and the keyed reduce, so all three
      // routers receive the same (shared) batch; none may mutate or adopt it.
      filtered.sink_to(filtered_out).parallelism(cfg.filtered_sink_p);
      filtered.rebalance().sink_to(rebalanced_out).parallelism(cfg.result_sink_p);
      filtered.key_by([](const rec& r) { return r.key; })
        .reduce(combine)
        .parallelism(cfg.reduce_p)
        .sink_to(result_out)
        .parallelism(cfg.result_sink_p);

      auto done = require_ok(j.run());
      BOOST_TEST(!done.cancelled);

      auto got_filtered = filtered_out.records();
      std::sort(got_filtered.begin(), got_filtered.end());
      BOOST_TEST(got_filtered.size() == ref_filtered.size());
      BOOST_TEST((got_filtered == ref_filtered), "the multiset of filtered records");
      auto got_rebalanced = rebalanced_out.records();
      std::sort(got_rebalanced.begin(), got_rebalanced.end());
      BOOST_TEST((got_rebalanced == ref_filtered), "the same through the second fan-out edge");

      auto results = result_out.records();
      BOOST_TEST(results.size() == ref_filtered.size(), "the reduce emits one update per record");
      std::map<std::uint32_t, rec> final_of_key; // the update with the highest count
      std::vector<std::pair<std::uint32_t, std::uint32_t>> counts;
      for (auto& r : results) {
        counts.emplace_back(r.key, r.count);
        auto [it, fresh] = final_of_key.try_emplace(r.key, r);
        if (!fresh && r.count > it->second.count)
          it->second = r;
      }
      std::sort(counts.begin(), counts.end());
      BOOST_TEST((counts == ref_counts), "each key's running count goes 1..n exactly once");
      BOOST_TEST((final_of_key == ref_final), "the final value per key");
    }
  }
}

BOOST_AUTO_TEST_SUITE_END()
