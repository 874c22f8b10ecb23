// timestamp_fn: the type-erased event-time function streams carry. Its batch calls give
// what a call per record gives; it keeps std::function's value semantics (an empty
// function stays empty, a copy owns its own function object).
#define BOOST_TEST_MODULE timestamp_fn_test
#include <boost/test/unit_test.hpp>

#include "sluice/core/epoch.hpp"
#include "sluice/core/timestamp_fn.hpp"

#include <functional>
#include <limits>
#include <vector>

using namespace sluice;

namespace {

struct reading {
  std::int64_t at_us = 0;
};

event_time at(std::int64_t us) { return event_time{std::chrono::microseconds{us}}; }
event_time time_of(const reading& r) { return at(r.at_us); }

} // namespace

BOOST_AUTO_TEST_SUITE(timestamp_fn_suite)

BOOST_AUTO_TEST_CASE(batch_calls_equal_a_call_per_record) {
  const std::vector<reading> rs{{5}, {-3}, {42}, {7}};
  for (const timestamp_fn<reading>& fn :
       {timestamp_fn<reading>{[](const reading& r) { return at(r.at_us); }},
        timestamp_fn<reading>{&time_of},
        timestamp_fn<reading>{std::function<event_time(const reading&)>{&time_of}}}) {
    BOOST_REQUIRE(static_cast<bool>(fn));
    std::vector<event_time> times(rs.size());
    fn.fill(rs, times.data());
    for (std::size_t i = 0; i < rs.size(); ++i)
      BOOST_TEST((times[i] == fn(rs[i]) && times[i] == at(rs[i].at_us)));
    BOOST_TEST((fn.max_of(rs, at(0)) == at(42)));
    BOOST_TEST((fn.max_of(rs, at(100)) == at(100)), "the floor when no record is later");
    BOOST_TEST((fn.max_of({}, at(9)) == at(9)));
  }
}

BOOST_AUTO_TEST_CASE(empty_functions_stay_empty) {
  BOOST_TEST(!timestamp_fn<reading>{});
  BOOST_TEST(!timestamp_fn<reading>{std::function<event_time(const reading&)>{}});
  event_time (*none)(const reading&) = nullptr;
  BOOST_TEST(!timestamp_fn<reading>{none});
  timestamp_fn<reading> copy{timestamp_fn<reading>{}};
  BOOST_TEST(!copy);
}

BOOST_AUTO_TEST_CASE(a_copy_owns_its_function_object) {
  // A mutable lambda counting its calls: parallel operator instances each hold a copy, so
  // copies must not share the count (std::function copies its target the same way).
  timestamp_fn<reading> original{[calls = 0](const reading&) mutable { return at(++calls); }};
  timestamp_fn<reading> copy = original;
  const reading r{};
  BOOST_TEST((original(r) == at(1)));
  BOOST_TEST((original(r) == at(2)));
  BOOST_TEST((copy(r) == at(1)), "the copy counts from its own start");
  timestamp_fn<reading> assigned;
  assigned = copy;
  BOOST_TEST((assigned(r) == at(2)));
  BOOST_TEST((copy(r) == at(2)));
}

// The sources' event-time statistics (progress reports' eventTime) add a poll's times at
// once: the same count, min, max and mean as a call per record, on top of earlier ones.
BOOST_AUTO_TEST_CASE(event_time_stats_of_a_batch_equal_those_of_each_record) {
  const std::vector<event_time> first{at(5), at(-3), at(42)}, second{at(7), at(100), at(-9)};
  event_time_stats one, all;
  for (const auto& batch : {first, second}) {
    for (auto t : batch)
      one.add(t);
    all.add_all(batch);
  }
  all.add_all({}); // an empty poll changes nothing
  BOOST_TEST(all.count == 6u);
  BOOST_TEST(all.count == one.count);
  BOOST_TEST((all.min == one.min && all.min == at(-9)));
  BOOST_TEST((all.max == one.max && all.max == at(100)));
  BOOST_TEST(static_cast<double>(all.sum_us) == 142.0);
  BOOST_TEST(static_cast<double>(all.sum_us) == static_cast<double>(one.sum_us));
  // Times whose sum needs more than long double's 64-bit mantissa: summed exactly, rounded
  // once.
  constexpr auto big = std::numeric_limits<std::int64_t>::max();
  event_time_stats wide;
  wide.add_all(std::vector<event_time>(3, at(big)));
  BOOST_TEST((wide.sum_us == static_cast<long double>(static_cast<__int128>(big) * 3)));
}

BOOST_AUTO_TEST_SUITE_END()
