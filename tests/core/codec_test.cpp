#define BOOST_TEST_MODULE codec_test
// The record codecs (core/codec): the inspect helpers here; each codec in its own file
// (json_codec_test, csv_codec_test, binary_codec_test, time_format_test), one binary.
#include <boost/test/unit_test.hpp>

#include "sluice/core/codec/inspect.hpp"
#include "sluice/tests/core/codec_records.hpp"

#include <optional>
#include <string>
#include <vector>

using namespace test_records;

namespace test_records {

struct no_inspect {
  int x;
};

} // namespace test_records

BOOST_AUTO_TEST_SUITE(inspect_helpers)

BOOST_AUTO_TEST_CASE(concept_and_field_names) {
  static_assert(sluice::inspectable<txn>);
  static_assert(sluice::inspectable<shape>);
  static_assert(!sluice::inspectable<no_inspect>);
  static_assert(!sluice::inspectable<int>);
  static_assert(sluice::codec_leaf<std::string>);
  static_assert(sluice::codec_leaf<event_time>);
  static_assert(sluice::is_codec_value_v<std::vector<std::optional<point>>>);
  static_assert(!sluice::is_codec_value_v<no_inspect>);
  static_assert(!sluice::is_codec_value_v<std::vector<no_inspect>>);
  const std::vector<std::string> expected{"account_id", "amount", "ts", "merchant", "tag"};
  BOOST_TEST(sluice::field_names<txn>() == expected, boost::test_tools::per_element());
  BOOST_TEST(sluice::field_names<flat_shape>().size() == 3u);
}

BOOST_AUTO_TEST_SUITE_END()
