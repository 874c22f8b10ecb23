#define BOOST_TEST_MODULE engine_test
#include <boost/test/unit_test.hpp>

#include "sluice/api/job.hpp"
#include "sluice/sinks/memory.hpp"
#include "sluice/sources/collection.hpp"

using namespace sluice;

BOOST_AUTO_TEST_SUITE(smoke)

BOOST_AUTO_TEST_CASE(map_filter_collect) {
  job j;
  auto out = sinks::collect<int>{};
  j.from(sources::collection<int>{{1, 2, 3, 4, 5}})
    .map([](const int& x) { return x * 10; })
    .filter([](const int& x) { return x != 30; })
    .sink_to(out);
  auto r = j.run();
  BOOST_REQUIRE_MESSAGE(r, (r ? "" : r.error().to_string()));
  BOOST_TEST(out.records() == (std::vector<int>{10, 20, 40, 50}), boost::test_tools::per_element());
}

BOOST_AUTO_TEST_SUITE_END()
