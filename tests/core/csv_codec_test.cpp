// The CSV codec (core/codec/csv.hpp): headers, quoting, round trips, errors that name the
// field.
#include <boost/test/unit_test.hpp>

#include "sluice/core/codec/csv.hpp"
#include "sluice/tests/core/codec_records.hpp"

#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <vector>

using namespace std::chrono_literals;
using namespace test_records;

BOOST_AUTO_TEST_SUITE(csv)

using sluice::codec::csv_header;
using sluice::codec::csv_options;
using sluice::codec::from_csv_row;
using sluice::codec::join_csv_row;
using sluice::codec::split_csv_row;
using sluice::codec::to_cells;
using sluice::codec::to_csv_row;

BOOST_AUTO_TEST_CASE(header_flattens_nested_structs) {
  const std::vector<std::string> expected{"account_id", "amount", "ts", "merchant", "tag"};
  BOOST_TEST(csv_header<txn>() == expected, boost::test_tools::per_element());
  const std::vector<std::string> nested{"name", "origin.x", "origin.y", "weight"};
  BOOST_TEST(csv_header<flat_shape>() == nested, boost::test_tools::per_element());
  BOOST_TEST(csv_header<std::int64_t>() == std::vector<std::string>{"value"},
             boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(vector_fields_are_one_json_array_cell) {
  BOOST_TEST(csv_header<tagged>() == (std::vector<std::string>{"id", "tags", "path"}),
             boost::test_tools::per_element());
  const tagged t{.id = 7, .tags = {"a", "b,c"}, .path = {{1, 2}, {3, 4}}};
  const std::string row = to_csv_row(t);
  BOOST_TEST(row == R"(7,"[""a"",""b,c""]","[{""x"":1,""y"":2},{""x"":3,""y"":4}]")");
  auto back = from_csv_row<tagged>(row);
  BOOST_REQUIRE(back.has_value());
  BOOST_TEST((*back == t));
  auto bad = from_csv_row<tagged>("7,not-json,[]");
  BOOST_REQUIRE(!bad.has_value());
  BOOST_TEST(bad.error().message.find("tags") != std::string::npos, bad.error().message);
  BOOST_TEST(bad.error().message.find("JSON array") != std::string::npos, bad.error().message);
}

BOOST_AUTO_TEST_CASE(writes_and_round_trips) {
  BOOST_TEST(to_csv_row(sample_txn()) == R"(42,12.5,2026-01-01T12:07:00Z,"acme, ""inc""",7)");
  auto t = sample_txn();
  t.tag.reset();
  t.merchant = "plain";
  BOOST_TEST(to_csv_row(t) == "42,12.5,2026-01-01T12:07:00Z,plain,");
  for (const txn& in : {sample_txn(), t}) {
    auto out = from_csv_row<txn>(to_csv_row(in));
    BOOST_REQUIRE(out.has_value());
    BOOST_TEST((*out == in));
  }
  const flat_shape s{.name = "sq", .origin = {3, -4}, .weight = 0.1};
  BOOST_TEST(to_csv_row(s) == "sq,3,-4,0.1");
  auto back = from_csv_row<flat_shape>("sq,3,-4,0.1");
  BOOST_REQUIRE(back.has_value());
  BOOST_TEST((*back == s));
  ints x{.i8 = -128, .u8 = 255, .i16 = 1, .u16 = 2, .i32 = 3, .u32 = 4,
         .i64 = std::numeric_limits<std::int64_t>::min(),
         .u64 = std::numeric_limits<std::uint64_t>::max(), .b = true, .f = 0.1f};
  auto xb = from_csv_row<ints>(to_csv_row(x));
  BOOST_REQUIRE(xb.has_value());
  BOOST_TEST((*xb == x));
}

BOOST_AUTO_TEST_CASE(custom_delimiter) {
  const csv_options semi{.delimiter = ';'};
  auto t = sample_txn();
  t.merchant = "a;b,c";
  const auto row = to_csv_row(t, semi);
  BOOST_TEST(row == R"(42;12.5;2026-01-01T12:07:00Z;"a;b,c";7)");
  auto back = from_csv_row<txn>(row, semi);
  BOOST_REQUIRE(back.has_value());
  BOOST_TEST((*back == t));
  auto bad = split_csv_row("a", csv_options{.delimiter = '"'});
  BOOST_REQUIRE(!bad.has_value());
  BOOST_TEST((bad.error().code == error_code::invalid_option));
}

BOOST_AUTO_TEST_CASE(split_quoting_edge_cases) {
  auto split = [](std::string_view line) {
    auto r = split_csv_row(line, {});
    BOOST_TEST_INFO("input: " << line);
    BOOST_REQUIRE(r.has_value());
    return *r;
  };
  using v = std::vector<std::string>;
  BOOST_TEST(split("a,b,c") == (v{"a", "b", "c"}), boost::test_tools::per_element());
  BOOST_TEST(split("") == (v{""}), boost::test_tools::per_element());
  BOOST_TEST(split(",") == (v{"", ""}), boost::test_tools::per_element());
  BOOST_TEST(split("a,") == (v{"a", ""}), boost::test_tools::per_element());
  BOOST_TEST(split(R"("a,b",c)") == (v{"a,b", "c"}), boost::test_tools::per_element());
  BOOST_TEST(split(R"("say ""hi""",x)") == (v{R"(say "hi")", "x"}),
             boost::test_tools::per_element());
  BOOST_TEST(split(R"("")") == (v{""}), boost::test_tools::per_element());
  BOOST_TEST(split(R"("""")") == (v{"\""}), boost::test_tools::per_element());
  BOOST_TEST(split(R"(a,"",b)") == (v{"a", "", "b"}), boost::test_tools::per_element());
  BOOST_TEST(split(R"(ab"c,d)") == (v{R"(ab"c)", "d"}), boost::test_tools::per_element());
  BOOST_TEST(split("a,b\r") == (v{"a", "b"}), boost::test_tools::per_element());
  BOOST_TEST(split(" a , b ") == (v{" a ", " b "}), boost::test_tools::per_element());

  auto unterminated = split_csv_row(R"(a,"bc)", {});
  BOOST_REQUIRE(!unterminated.has_value());
  BOOST_TEST((unterminated.error().code == error_code::malformed_record));
  BOOST_TEST(unterminated.error().message == "unterminated quoted field 2");
  auto unterminated2 = split_csv_row(R"("a"")", {});
  BOOST_REQUIRE(!unterminated2.has_value());
  auto trailing = split_csv_row(R"("a"b,c)", {});
  BOOST_REQUIRE(!trailing.has_value());
  BOOST_TEST(contains(trailing.error().message, "after the closing quote of field 1"));
}

BOOST_AUTO_TEST_CASE(join_quotes_only_when_needed) {
  const std::vector<std::string> cells{"plain", "a,b", R"(q"t)", "", "line\nbreak", " sp "};
  const auto row = join_csv_row(cells);
  BOOST_TEST(row == "plain,\"a,b\",\"q\"\"t\",,\"line\nbreak\", sp ");
  const std::vector<std::string> simple{"x", R"("quoted")", "a,b", ""};
  auto back = split_csv_row(join_csv_row(simple), {});
  BOOST_REQUIRE(back.has_value());
  BOOST_TEST(*back == simple, boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(field_count_errors) {
  auto r = from_csv_row<txn>("1,2");
  BOOST_REQUIRE(!r.has_value());
  BOOST_TEST((r.error().code == error_code::malformed_record));
  BOOST_TEST(r.error().message == "expected 5 fields, found 2");
  auto r2 = from_csv_row<point>("1,2,3");
  BOOST_REQUIRE(!r2.has_value());
  BOOST_TEST(r2.error().message == "expected 2 fields, found 3");
  auto r3 = from_csv_row<txn>(R"(1,2,2026-01-01T00:00:00Z,"m,3)");
  BOOST_REQUIRE(!r3.has_value());
  BOOST_TEST(r3.error().message == "unterminated quoted field 4");
}

BOOST_AUTO_TEST_CASE(bad_values_name_the_field) {
  auto expect_error = [](std::string_view line, std::string_view message) {
    auto r = from_csv_row<txn>(line);
    BOOST_TEST_INFO("input: " << line);
    BOOST_REQUIRE(!r.has_value());
    BOOST_TEST((r.error().code == error_code::malformed_record));
    BOOST_TEST(r.error().message == message);
  };
  expect_error("1,x,2026-01-01T00:00:00Z,m,", R"(field 'amount': cannot parse "x" as a number)");
  expect_error("1,,2026-01-01T00:00:00Z,m,", R"(field 'amount': cannot parse "" as a number)");
  expect_error("1,1.5x,2026-01-01T00:00:00Z,m,",
               R"(field 'amount': cannot parse "1.5x" as a number)");
  expect_error("1.5,1,2026-01-01T00:00:00Z,m,",
               R"(field 'account_id': cannot parse "1.5" as an integer)");
  expect_error("1,1,2026-01-01T00:00:00Z,m,seven",
               R"(field 'tag': cannot parse "seven" as an integer)");
  expect_error("1,1,2026-01-01T00:00:00Z,m,3000000000",
               R"(field 'tag': "3000000000" is out of range for int32)");
  expect_error("99999999999999999999,1,2026-01-01T00:00:00Z,m,",
               R"(field 'account_id': "99999999999999999999" is out of range for int64)");
  auto bad_ts = from_csv_row<txn>("1,1,soon,m,");
  BOOST_REQUIRE(!bad_ts.has_value());
  BOOST_TEST(bad_ts.error().message.starts_with(R"(field 'ts': invalid timestamp "soon")"));

  auto nested = from_csv_row<flat_shape>("s,1,q,");
  BOOST_REQUIRE(!nested.has_value());
  BOOST_TEST(nested.error().message == R"(field 'origin.y': cannot parse "q" as an integer)");

  auto range = from_csv_row<small>("256,0");
  BOOST_REQUIRE(!range.has_value());
  BOOST_TEST(range.error().message == R"(field 'level': "256" is out of range for uint8)");
  auto neg = from_csv_row<small>("-1,0");
  BOOST_REQUIRE(!neg.has_value());
  BOOST_TEST(neg.error().message == R"(field 'level': "-1" is out of range for uint8)");
  auto neg16 = from_csv_row<small>("0,-32769");
  BOOST_REQUIRE(!neg16.has_value());
  BOOST_TEST(neg16.error().message == R"(field 'delta': "-32769" is out of range for int16)");
}

BOOST_AUTO_TEST_CASE(lenient_cell_forms) {
  // Padded numbers, '+' signs, epoch-millisecond times, blank optional cells.
  auto r = from_csv_row<txn>(" 7 ,+2.5,1767269220250,  m  ,   ");
  BOOST_REQUIRE(r.has_value());
  BOOST_TEST(r->account_id == 7);
  BOOST_TEST(r->amount == 2.5);
  BOOST_TEST(r->ts.time_since_epoch().count() == (t0 + 250ms).time_since_epoch().count());
  BOOST_TEST(r->merchant == "  m  ");
  BOOST_TEST(!r->tag.has_value());
  auto b = from_csv_row<ints>("0,0,0,0,0,0,0,-0,TRUE,1e-3");
  BOOST_REQUIRE(b.has_value());
  BOOST_TEST(b->b);
  BOOST_TEST(b->f == 0.001f);
  auto bad_bool = from_csv_row<ints>("0,0,0,0,0,0,0,0,yes,0");
  BOOST_REQUIRE(!bad_bool.has_value());
  BOOST_TEST(bad_bool.error().message == R"(field 'b': cannot parse "yes" as a boolean)");
}

BOOST_AUTO_TEST_CASE(leaf_type_rows) {
  BOOST_TEST(to_csv_row(std::string{"a,b"}) == R"("a,b")");
  BOOST_TEST(to_csv_row(std::int64_t{-3}) == "-3");
  auto i = from_csv_row<std::int64_t>("5");
  BOOST_REQUIRE(i.has_value());
  BOOST_TEST(*i == 5);
  auto s = from_csv_row<std::string>(R"("x,""y""")");
  BOOST_REQUIRE(s.has_value());
  BOOST_TEST(*s == R"(x,"y")");
  auto t = from_csv_row<event_time>("2026-01-01T12:07:00Z");
  BOOST_REQUIRE(t.has_value());
  BOOST_TEST(t->time_since_epoch().count() == t0.time_since_epoch().count());
  auto bad = from_csv_row<double>("abc");
  BOOST_REQUIRE(!bad.has_value());
  BOOST_TEST(bad.error().message == R"(cannot parse "abc" as a number)");
}

BOOST_AUTO_TEST_CASE(display_cells) {
  auto t = sample_txn();
  const std::vector<std::string> expected{"42", "12.5", "2026-01-01T12:07:00Z", R"(acme, "inc")",
                                          "7"};
  BOOST_TEST(to_cells(t) == expected, boost::test_tools::per_element());
  t.tag.reset();
  BOOST_TEST(to_cells(t).back() == "null");
  const flat_shape s{.name = "n", .origin = {1, 2}, .weight = std::nullopt};
  const std::vector<std::string> flat{"n", "1", "2", "null"};
  BOOST_TEST(to_cells(s) == flat, boost::test_tools::per_element());
  BOOST_TEST(to_cells(true) == std::vector<std::string>{"true"}, boost::test_tools::per_element());
}

BOOST_AUTO_TEST_SUITE_END()
