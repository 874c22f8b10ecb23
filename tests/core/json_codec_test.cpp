// The JSON codec (core/codec/json.hpp): field order, round trips, errors that name the
// field.
#include <boost/test/unit_test.hpp>

#include "sluice/core/codec/csv.hpp" // event_time_forms checks CSV cells too
#include "sluice/core/codec/json.hpp"
#include "sluice/tests/core/codec_records.hpp"

#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <vector>

using namespace std::chrono_literals;
using namespace test_records;

BOOST_AUTO_TEST_SUITE(json)

using sluice::codec::from_json;
using sluice::codec::from_json_line;
using sluice::codec::to_json;
using sluice::codec::to_json_line;

BOOST_AUTO_TEST_CASE(writes_fields_in_declared_order) {
  BOOST_TEST(to_json_line(sample_txn())
             == R"({"account_id":42,"amount":12.5,"ts":"2026-01-01T12:07:00Z",)"
                R"("merchant":"acme, \"inc\"","tag":7})");
  auto t = sample_txn();
  t.tag.reset();
  BOOST_TEST(contains(to_json_line(t), R"("tag":null)"));
  const auto j = to_json(sample_txn());
  BOOST_TEST(j.at("account_id").get<std::int64_t>() == 42);
  BOOST_TEST(j.at("ts").get<std::string>() == "2026-01-01T12:07:00Z");
}

BOOST_AUTO_TEST_CASE(round_trip) {
  const txn in = sample_txn();
  auto out = from_json_line<txn>(to_json_line(in));
  BOOST_REQUIRE(out.has_value());
  BOOST_TEST((*out == in));

  txn none = in;
  none.tag.reset();
  none.ts = t0 + 123456us;
  auto out2 = from_json_line<txn>(to_json_line(none));
  BOOST_REQUIRE(out2.has_value());
  BOOST_TEST((*out2 == none));

  txn via_value;
  BOOST_REQUIRE(from_json(to_json(in), via_value).has_value());
  BOOST_TEST((via_value == in));
}

BOOST_AUTO_TEST_CASE(nested_optional_and_vectors_round_trip) {
  const shape in{.name = "tri",
                 .origin = {1, -2},
                 .vertices = {{0, 0}, {3, 0}, {0, 4}},
                 .labels = {"a", "", "c,d"},
                 .anchor = point{5, 6},
                 .flags = {true, false, true}};
  const auto line = to_json_line(in);
  BOOST_TEST(contains(line, R"("origin":{"x":1,"y":-2})"));
  BOOST_TEST(contains(line, R"("vertices":[{"x":0,"y":0},{"x":3,"y":0},{"x":0,"y":4}])"));
  auto out = from_json_line<shape>(line);
  BOOST_REQUIRE(out.has_value());
  BOOST_TEST((*out == in));

  shape empty{};
  auto out2 = from_json_line<shape>(to_json_line(empty));
  BOOST_REQUIRE(out2.has_value());
  BOOST_TEST((*out2 == empty));
  BOOST_TEST(!out2->anchor.has_value());
}

BOOST_AUTO_TEST_CASE(leaf_type_records) {
  BOOST_TEST(to_json_line(std::string{"a"}) == R"("a")");
  BOOST_TEST(to_json_line(std::int64_t{-5}) == "-5");
  BOOST_TEST(to_json_line(true) == "true");
  BOOST_TEST(to_json_line(t0) == R"("2026-01-01T12:07:00Z")");
  BOOST_TEST(to_json_line(std::vector<int>{1, 2}) == "[1,2]");
  BOOST_TEST(to_json_line(std::optional<int>{}) == "null");
  BOOST_TEST(to_json_line(0.1f) == "0.1");
  auto i = from_json_line<std::int64_t>("5");
  BOOST_REQUIRE(i.has_value());
  BOOST_TEST(*i == 5);
  auto s = from_json_line<std::string>(R"("x\"y")");
  BOOST_REQUIRE(s.has_value());
  BOOST_TEST(*s == "x\"y");
  auto bad = from_json_line<std::int64_t>(R"("5")");
  BOOST_REQUIRE(!bad.has_value());
  BOOST_TEST(bad.error().message == R"(expected an integer, got string "5")");
  auto f = from_json_line<float>("0.1");
  BOOST_REQUIRE(f.has_value());
  BOOST_TEST(*f == 0.1f);
}

BOOST_AUTO_TEST_CASE(wrong_type_names_field_and_value) {
  auto r = from_json_line<txn>(
    R"({"account_id":1,"amount":"abc","ts":"2026-01-01T12:07:00Z","merchant":"m"})");
  BOOST_REQUIRE(!r.has_value());
  BOOST_TEST((r.error().code == error_code::malformed_record));
  BOOST_TEST(r.error().message == R"(field 'amount': expected a number, got string "abc")");

  auto r2 = from_json_line<txn>(
    R"({"account_id":1,"amount":1,"ts":"2026-01-01T12:07:00Z","merchant":5})");
  BOOST_REQUIRE(!r2.has_value());
  BOOST_TEST(r2.error().message == "field 'merchant': expected a string, got number 5");

  auto r3 = from_json_line<txn>(R"([1,2])");
  BOOST_REQUIRE(!r3.has_value());
  BOOST_TEST(r3.error().message == "expected an object, got an array");

  auto r4 = from_json_line<txn>(
    R"({"account_id":true,"amount":1,"ts":"2026-01-01T12:07:00Z","merchant":"m"})");
  BOOST_REQUIRE(!r4.has_value());
  BOOST_TEST(r4.error().message == "field 'account_id': expected an integer, got boolean true");
}

BOOST_AUTO_TEST_CASE(missing_and_unknown_fields) {
  auto r = from_json_line<txn>(R"({"account_id":1,"amount":2.5,"merchant":"m"})");
  BOOST_REQUIRE(!r.has_value());
  BOOST_TEST((r.error().code == error_code::malformed_record));
  BOOST_TEST(r.error().message == "missing field 'ts'");

  // Unknown fields are ignored; a missing optional is nullopt; integers read as doubles.
  auto ok = from_json_line<txn>(
    R"({"extra":[1,{}],"account_id":1,"amount":2,"ts":"2026-01-01T12:07:00Z","merchant":"m"})");
  BOOST_REQUIRE(ok.has_value());
  BOOST_TEST(ok->amount == 2.0);
  BOOST_TEST(!ok->tag.has_value());

  // A present optional is reset by null.
  txn reused = sample_txn();
  BOOST_REQUIRE(from_json(nlohmann::json::parse(R"({"account_id":1,"amount":2,)"
                                                R"("ts":0,"merchant":"m","tag":null})"),
                          reused)
                  .has_value());
  BOOST_TEST(!reused.tag.has_value());
}

BOOST_AUTO_TEST_CASE(nested_error_paths) {
  auto r = from_json_line<shape>(R"({"name":"s","origin":{"x":1},"vertices":[],"labels":[],)"
                                 R"("flags":[]})");
  BOOST_REQUIRE(!r.has_value());
  BOOST_TEST(r.error().message == "missing field 'origin.y'");

  auto r2 = from_json_line<shape>(R"({"name":"s","origin":{"x":1,"y":2},)"
                                  R"("vertices":[{"x":0,"y":0},{"x":1,"y":"q"}],)"
                                  R"("labels":[],"flags":[]})");
  BOOST_REQUIRE(!r2.has_value());
  BOOST_TEST(r2.error().message == R"(field 'vertices[1].y': expected an integer, got string "q")");

  auto r3 = from_json_line<shape>(R"({"name":"s","origin":{"x":1,"y":2},"vertices":[],)"
                                  R"("labels":["a",null],"flags":[]})");
  BOOST_REQUIRE(!r3.has_value());
  BOOST_TEST(r3.error().message == "field 'labels[1]': expected a string, got null");

  auto r4 = from_json_line<shape>(R"({"name":"s","origin":{"x":1,"y":2},"vertices":{},)"
                                  R"("labels":[],"flags":[]})");
  BOOST_REQUIRE(!r4.has_value());
  BOOST_TEST(r4.error().message == "field 'vertices': expected an array, got an object");

  auto r5 = from_json_line<shape>(R"({"name":"s","origin":{"x":1,"y":2},"vertices":[],)"
                                  R"("labels":[],"flags":[],"anchor":{"x":1}})");
  BOOST_REQUIRE(!r5.has_value());
  BOOST_TEST(r5.error().message == "missing field 'anchor.y'");
}

BOOST_AUTO_TEST_CASE(invalid_json) {
  for (std::string_view bad : {"", "{", R"({"a":})", "nope", R"({"a":1} x)"}) {
    auto r = from_json_line<txn>(bad);
    BOOST_TEST_INFO("input: " << bad);
    BOOST_REQUIRE(!r.has_value());
    BOOST_TEST((r.error().code == error_code::malformed_record));
    BOOST_TEST(r.error().message.starts_with("invalid JSON: "));
    BOOST_TEST(!contains(r.error().message, "[json.exception"));
  }
}

BOOST_AUTO_TEST_CASE(integer_range_checks) {
  auto read_small = [](std::string_view line) { return from_json_line<small>(line); };
  auto ok = read_small(R"({"level":255,"delta":-32768})");
  BOOST_REQUIRE(ok.has_value());
  BOOST_TEST(ok->level == 255);
  BOOST_TEST(ok->delta == -32768);

  auto expect_error = [&](std::string_view line, std::string_view message) {
    auto r = read_small(line);
    BOOST_TEST_INFO("input: " << line);
    BOOST_REQUIRE(!r.has_value());
    BOOST_TEST((r.error().code == error_code::malformed_record));
    BOOST_TEST(r.error().message == message);
  };
  expect_error(R"({"level":256,"delta":0})", "field 'level': number 256 is out of range for uint8");
  expect_error(R"({"level":-1,"delta":0})", "field 'level': number -1 is out of range for uint8");
  expect_error(R"({"level":0,"delta":32768})",
               "field 'delta': number 32768 is out of range for int16");
  expect_error(R"({"level":1.5,"delta":0})", "field 'level': expected an integer, got number 1.5");
  expect_error(R"({"level":3e2,"delta":0})",
               "field 'level': number 300.0 is out of range for uint8");

  // A float without a fraction is an integer.
  auto whole = read_small(R"({"level":2.0,"delta":-1e2})");
  BOOST_REQUIRE(whole.has_value());
  BOOST_TEST(whole->level == 2);
  BOOST_TEST(whole->delta == -100);

  // 64-bit extremes.
  ints x{.i8 = -128, .u8 = 255, .i16 = -32768, .u16 = 65535,
         .i32 = std::numeric_limits<std::int32_t>::min(), .u32 = 4'294'967'295u,
         .i64 = std::numeric_limits<std::int64_t>::min(),
         .u64 = std::numeric_limits<std::uint64_t>::max(), .b = true, .f = 1.25f};
  auto back = from_json_line<ints>(to_json_line(x));
  BOOST_REQUIRE(back.has_value());
  BOOST_TEST((*back == x));
  auto over = from_json_line<std::int64_t>("9223372036854775808");
  BOOST_REQUIRE(!over.has_value());
  BOOST_TEST(contains(over.error().message, "out of range for int64"));
  auto over_f = from_json_line<std::int64_t>("9.3e18");
  BOOST_REQUIRE(!over_f.has_value());
  BOOST_TEST(contains(over_f.error().message, "out of range for int64"));
  auto neg_u = from_json_line<std::uint64_t>("-1");
  BOOST_REQUIRE(!neg_u.has_value());
  BOOST_TEST(contains(neg_u.error().message, "out of range for uint64"));
  auto f_over = from_json_line<float>("1e39");
  BOOST_REQUIRE(!f_over.has_value());
  BOOST_TEST(contains(f_over.error().message, "out of range for float"));
}

BOOST_AUTO_TEST_CASE(event_time_forms) {
  auto r = from_json_line<txn>(R"({"account_id":1,"amount":1,"ts":1767269220250,"merchant":"m"})");
  BOOST_REQUIRE(r.has_value());
  BOOST_TEST(r->ts.time_since_epoch().count() == (t0 + 250ms).time_since_epoch().count());

  auto off = from_json_line<txn>(
    R"({"account_id":1,"amount":1,"ts":"2026-01-01T13:07:00+01:00","merchant":"m"})");
  BOOST_REQUIRE(off.has_value());
  BOOST_TEST(off->ts.time_since_epoch().count() == t0.time_since_epoch().count());

  auto bad = from_json_line<txn>(
    R"({"account_id":1,"amount":1,"ts":"yesterday","merchant":"m"})");
  BOOST_REQUIRE(!bad.has_value());
  BOOST_TEST(bad.error().message.starts_with("field 'ts': invalid timestamp \"yesterday\""));

  auto frac = from_json_line<txn>(R"({"account_id":1,"amount":1,"ts":1.5,"merchant":"m"})");
  BOOST_REQUIRE(!frac.has_value());
  BOOST_TEST(frac.error().message == "field 'ts': expected an integer, got number 1.5");

  auto huge = from_json_line<event_time>("9223372036854775807");
  BOOST_REQUIRE(!huge.has_value());
  BOOST_TEST(contains(huge.error().message, "out of range for epoch milliseconds"));

  // Event times are read only within years 0000 to 9999 (what ISO-8601 writes): epoch
  // milliseconds near INT64_MAX / 1000 converted to microseconds without overflow, but every
  // window around them overflowed. They are malformed records now.
  for (const char* far : {"9223372036854775", "-9223372036854775", "253402300800000",
                          "-62167219200001"}) {
    BOOST_TEST_CONTEXT(far) {
      auto t = from_json_line<event_time>(far);
      BOOST_REQUIRE(!t.has_value());
      BOOST_TEST((t.error().code == error_code::malformed_record));
      BOOST_TEST(t.error().message == "number " + std::string{far} +
                                        " is out of range for epoch milliseconds (years 0000 to "
                                        "9999)",
                 t.error().message);
      auto c = sluice::codec::from_csv_row<event_time>(far);
      BOOST_REQUIRE(!c.has_value());
      BOOST_TEST((c.error().code == error_code::malformed_record));
      BOOST_TEST(contains(c.error().message, "out of range for epoch milliseconds (years 0000 to 9999)"),
                 c.error().message);
    }
  }
  for (std::int64_t edge : {std::int64_t{253'402'300'799'999}, std::int64_t{-62'167'219'200'000}}) {
    auto t = from_json_line<event_time>(std::to_string(edge));
    BOOST_REQUIRE(t.has_value());
    BOOST_TEST(t->time_since_epoch().count() == edge * 1000);
    const auto text = sluice::codec::format_iso8601(*t);
    BOOST_TEST(text == (edge > 0 ? "9999-12-31T23:59:59.999Z" : "0000-01-01T00:00:00Z"), text);
  }

  auto obj = from_json_line<event_time>("{}");
  BOOST_REQUIRE(!obj.has_value());
  BOOST_TEST(obj.error().message ==
             "expected an ISO-8601 string or epoch milliseconds, got an object");
}

BOOST_AUTO_TEST_CASE(invalid_utf8_does_not_throw) {
  const std::string bad_utf8{"a\xff" "b"};
  std::string line;
  BOOST_CHECK_NO_THROW(line = to_json_line(bad_utf8));
  BOOST_TEST(line.size() > 2u);
}

BOOST_AUTO_TEST_SUITE_END()
