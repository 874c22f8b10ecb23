// The timer table driven directly against a plain model (an ordered set per domain): the
// hash index that answers "already registered?" must agree with the ordered timers under
// every mix of registrations, deletions and firings.
#include <boost/test/unit_test.hpp>

#include "sluice/operators/state/timers.hpp"

#include <cstdint>
#include <random>
#include <set>
#include <tuple>
#include <vector>

using namespace sluice;

BOOST_AUTO_TEST_SUITE(timer_table_model)

BOOST_AUTO_TEST_CASE(registrations_deletions_and_firings_agree_with_an_ordered_set) {
  constexpr int groups = 8;
  for (const unsigned seed : {1u, 2u, 3u, 4u}) {
    BOOST_TEST_CONTEXT("seed " << seed) {
      timer_table<std::int64_t> table({0, groups});
      // (time, key group, key) per domain: the order `due` promises.
      std::set<std::tuple<std::int64_t, int, std::int64_t>> model[2];
      std::mt19937_64 rng(seed);
      const auto domain_of = [](int d) {
        return d == 0 ? time_domain::event_time : time_domain::processing_time;
      };
      for (int step = 0; step < 20'000; ++step) {
        const int d = static_cast<int>(rng() % 2);
        const auto key = static_cast<std::int64_t>(rng() % 50);
        const int kg = static_cast<int>(key % groups);
        // Few distinct times, so most registrations repeat one that exists.
        const auto time = static_cast<std::int64_t>(rng() % 40);
        switch (rng() % 4) {
        case 0:
        case 1:
          BOOST_TEST(table.add(domain_of(d), kg, time, key) ==
                     model[d].insert({time, kg, key}).second);
          break;
        case 2:
          BOOST_TEST(table.remove(domain_of(d), kg, time, key) ==
                     (model[d].erase({time, kg, key}) == 1));
          break;
        default: { // fire everything due up to a time, taking each timer as the operator does
          const auto up_to = static_cast<std::int64_t>(rng() % 40);
          std::vector<std::tuple<std::int64_t, int, std::int64_t>> want(
            model[d].begin(), model[d].upper_bound({up_to, groups, INT64_MAX}));
          const auto due = table.due(domain_of(d), up_to);
          BOOST_REQUIRE(due.size() == want.size());
          for (std::size_t i = 0; i < due.size(); ++i) {
            BOOST_TEST((std::tuple{due[i].time, due[i].key_group, due[i].key} == want[i]));
            BOOST_TEST(table.take(domain_of(d), due[i]));
            model[d].erase(want[i]);
          }
        }
        }
        BOOST_TEST(table.size(domain_of(d)) == model[d].size());
        const auto earliest = table.earliest(domain_of(d));
        BOOST_TEST(earliest.has_value() == !model[d].empty());
        if (earliest && !model[d].empty())
          BOOST_TEST(*earliest == std::get<0>(*model[d].begin()));
      }
    }
  }
}

BOOST_AUTO_TEST_SUITE_END()
