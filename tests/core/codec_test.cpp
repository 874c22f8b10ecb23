#define BOOST_TEST_MODULE codec_test
#include <boost/test/unit_test.hpp>

#include "core/codec/binary.hpp"
#include "core/codec/csv.hpp"
#include "core/codec/inspect.hpp"
#include "core/codec/json.hpp"
#include "core/codec/time_format.hpp"

#include <bit>
#include <cstdint>
#include <initializer_list>
#include <limits>
#include <optional>
#include <string>
#include <vector>

using namespace std::chrono_literals;
using sluice::error_code;
using sluice::event_time;

namespace test_records {

struct txn {
  std::int64_t account_id = 0;
  double amount = 0;
  event_time ts{};
  std::string merchant;
  std::optional<int> tag;

  friend bool operator==(const txn&, const txn&) = default;
};

template <class Inspector>
bool inspect(Inspector& f, txn& x) {
  return f.object("txn").fields(f.field("account_id", x.account_id), f.field("amount", x.amount),
                                f.field("ts", x.ts), f.field("merchant", x.merchant),
                                f.field("tag", x.tag));
}

struct point {
  std::int32_t x = 0;
  std::int32_t y = 0;
  friend bool operator==(const point&, const point&) = default;
};

template <class Inspector>
bool inspect(Inspector& f, point& p) {
  return f.object("point").fields(f.field("x", p.x), f.field("y", p.y));
}

struct flat_shape {
  std::string name;
  point origin;
  std::optional<double> weight;
  friend bool operator==(const flat_shape&, const flat_shape&) = default;
};

template <class Inspector>
bool inspect(Inspector& f, flat_shape& s) {
  return f.object("flat_shape").fields(f.field("name", s.name), f.field("origin", s.origin),
                                       f.field("weight", s.weight));
}

struct shape {
  std::string name;
  point origin;
  std::vector<point> vertices;
  std::vector<std::string> labels;
  std::optional<point> anchor;
  std::vector<bool> flags;
  friend bool operator==(const shape&, const shape&) = default;
};

template <class Inspector>
bool inspect(Inspector& f, shape& s) {
  return f.object("shape").fields(f.field("name", s.name), f.field("origin", s.origin),
                                  f.field("vertices", s.vertices), f.field("labels", s.labels),
                                  f.field("anchor", s.anchor), f.field("flags", s.flags));
}

struct tagged {
  std::int64_t id = 0;
  std::vector<std::string> tags;
  std::vector<point> path;
  friend bool operator==(const tagged&, const tagged&) = default;
};

template <class Inspector>
bool inspect(Inspector& f, tagged& x) {
  return f.object("tagged").fields(f.field("id", x.id), f.field("tags", x.tags),
                                   f.field("path", x.path));
}

struct ints {
  std::int8_t i8 = 0;
  std::uint8_t u8 = 0;
  std::int16_t i16 = 0;
  std::uint16_t u16 = 0;
  std::int32_t i32 = 0;
  std::uint32_t u32 = 0;
  std::int64_t i64 = 0;
  std::uint64_t u64 = 0;
  bool b = false;
  float f = 0;
  friend bool operator==(const ints&, const ints&) = default;
};

template <class Inspector>
bool inspect(Inspector& f, ints& x) {
  return f.object("ints").fields(f.field("i8", x.i8), f.field("u8", x.u8), f.field("i16", x.i16),
                                 f.field("u16", x.u16), f.field("i32", x.i32),
                                 f.field("u32", x.u32), f.field("i64", x.i64),
                                 f.field("u64", x.u64), f.field("b", x.b), f.field("f", x.f));
}

struct small {
  std::uint8_t level = 0;
  std::int16_t delta = 0;
  friend bool operator==(const small&, const small&) = default;
};

template <class Inspector>
bool inspect(Inspector& f, small& x) {
  return f.object("small").fields(f.field("level", x.level), f.field("delta", x.delta));
}

struct no_inspect {
  int x;
};

/// Records for the one-copy path: `flat_pair` is its fields' bytes; the others are not.
struct flat_pair {
  std::uint64_t key = 0;
  point at;
  double value = 0;
};
template <class Inspector>
bool inspect(Inspector& f, flat_pair& x) {
  return f.object("flat_pair").fields(f.field("key", x.key), f.field("at", x.at),
                                      f.field("value", x.value));
}
struct padded {
  std::int32_t a = 0;
  std::int64_t b = 0; // 4 bytes of padding before it
};
template <class Inspector>
bool inspect(Inspector& f, padded& x) {
  return f.object("padded").fields(f.field("a", x.a), f.field("b", x.b));
}
struct reordered {
  std::int32_t a = 0;
  std::int32_t b = 0;
};
template <class Inspector>
bool inspect(Inspector& f, reordered& x) {
  return f.object("reordered").fields(f.field("b", x.b), f.field("a", x.a));
}
/// Names its members when `unit` is 0, else a scaled copy of `a`: not flat.
struct conditional {
  std::int32_t a = 0;
  std::int32_t unit = 0;
};
template <class Inspector>
bool inspect(Inspector& f, conditional& x) {
  if (x.unit == 0)
    return f.object("conditional").fields(f.field("a", x.a), f.field("unit", x.unit));
  auto scaled = x.a * x.unit; // writing only: this test never reads one back
  return f.object("conditional").fields(f.field("a", scaled), f.field("unit", x.unit));
}
struct partial {
  std::int32_t a = 0;
  std::int32_t unlisted = 0;
};
template <class Inspector>
bool inspect(Inspector& f, partial& x) {
  return f.object("partial").fields(f.field("a", x.a));
}

} // namespace test_records

using namespace test_records;

namespace {

event_time at(std::int64_t micros) {
  return event_time{std::chrono::microseconds{micros}};
}

// 2026-01-01T12:07:00Z
const event_time t0 = at(1'767'269'220'000'000);

txn sample_txn() {
  return txn{.account_id = 42, .amount = 12.5, .ts = t0, .merchant = "acme, \"inc\"", .tag = 7};
}

bool contains(const std::string& haystack, std::string_view needle) {
  return haystack.find(needle) != std::string::npos;
}

} // namespace

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

BOOST_AUTO_TEST_SUITE(time_format)

using sluice::codec::format_duration;
using sluice::codec::format_iso8601;
using sluice::codec::parse_duration;
using sluice::codec::parse_iso8601;

BOOST_AUTO_TEST_CASE(format_whole_and_fractional_seconds) {
  BOOST_TEST(format_iso8601(t0) == "2026-01-01T12:07:00Z");
  BOOST_TEST(format_iso8601(at(0)) == "1970-01-01T00:00:00Z");
  BOOST_TEST(format_iso8601(t0 + 250ms) == "2026-01-01T12:07:00.250Z");
  BOOST_TEST(format_iso8601(t0 + 123456us) == "2026-01-01T12:07:00.123456Z");
  BOOST_TEST(format_iso8601(t0 + 1us) == "2026-01-01T12:07:00.000001Z");
  BOOST_TEST(format_iso8601(at(-1)) == "1969-12-31T23:59:59.999999Z");
  BOOST_TEST(format_iso8601(at(951'782'400'000'000)) == "2000-02-29T00:00:00Z");
}

BOOST_AUTO_TEST_CASE(format_extremes_do_not_crash) {
  const auto lo = format_iso8601(event_time::min());
  const auto hi = format_iso8601(event_time::max());
  BOOST_TEST(lo.front() == '-');
  BOOST_TEST(hi.back() == 'Z');
}

BOOST_AUTO_TEST_CASE(parse_round_trips) {
  for (const auto t : {t0, at(0), t0 + 250ms, t0 + 123456us, at(-1), at(253'402'300'799'000'000)}) {
    auto parsed = parse_iso8601(format_iso8601(t));
    BOOST_REQUIRE(parsed.has_value());
    BOOST_TEST(parsed->time_since_epoch().count() == t.time_since_epoch().count());
  }
}

BOOST_AUTO_TEST_CASE(parse_offsets_fractions_and_separators) {
  auto same = [](std::string_view text, event_time expected) {
    auto r = parse_iso8601(text);
    BOOST_TEST_INFO("input: " << text);
    BOOST_REQUIRE(r.has_value());
    BOOST_TEST(r->time_since_epoch().count() == expected.time_since_epoch().count());
  };
  same("2026-01-01T12:07:00Z", t0);
  same("2026-01-01 12:07:00Z", t0);
  same("2026-01-01t12:07:00z", t0);
  same("2026-01-01T12:07:00", t0);
  same("2026-01-01T13:07:00+01:00", t0);
  same("2026-01-01T13:37:00+0130", t0);
  same("2026-01-01T07:07:00-05:00", t0);
  same("2025-12-31T23:07:00-13:00", t0);
  same("2026-01-01T12:07:00.5Z", t0 + 500ms);
  same("2026-01-01T12:07:00,25Z", t0 + 250ms);
  same("2026-01-01T12:07:00.123456789Z", t0 + 123456us);
  same("2026-01-01T13:07:00.000001+01:00", t0 + 1us);
  same("2026-01-01", t0 - 12h - 7min);
  same("2024-02-29T00:00:00Z", at(1'709'164'800'000'000));
}

BOOST_AUTO_TEST_CASE(parse_rejects_bad_input) {
  for (std::string_view bad :
       {"", "2026", "2026-1-01T00:00:00Z", "2026-13-01T00:00:00Z", "2026-02-29T00:00:00Z",
        "2026-04-31T00:00:00Z", "2026-01-01T24:00:00Z", "2026-01-01T12:60:00Z",
        "2026-01-01T12:00:60Z", "2026-01-01T12:00Z", "2026-01-01X12:00:00Z",
        "2026-01-01T12:00:00.Z", "2026-01-01T12:00:00.1234567890Z", "2026-01-01T12:00:00+1",
        "2026-01-01T12:00:00+25:00", "2026-01-01T12:00:00Zjunk", "2026-01-01T12:00:00 ",
        "abc"}) {
    auto r = parse_iso8601(bad);
    BOOST_TEST_INFO("input: " << bad);
    BOOST_REQUIRE(!r.has_value());
    BOOST_TEST((r.error().code == error_code::malformed_record));
    BOOST_TEST(contains(r.error().message, "invalid timestamp"));
  }
}

BOOST_AUTO_TEST_CASE(durations) {
  auto d = [](std::string_view text) {
    auto r = parse_duration(text);
    BOOST_TEST_INFO("input: " << text);
    BOOST_REQUIRE(r.has_value());
    return r->count();
  };
  BOOST_TEST(d("10m") == 600'000'000);
  BOOST_TEST(d("5s") == 5'000'000);
  BOOST_TEST(d("250ms") == 250'000);
  BOOST_TEST(d("1h") == 3'600'000'000);
  BOOST_TEST(d("100us") == 100);
  BOOST_TEST(d("2d") == 172'800'000'000);
  BOOST_TEST(d("1h30m") == 5'400'000'000);
  BOOST_TEST(d("0") == 0);
  BOOST_TEST(d("-5s") == -5'000'000);
  for (std::string_view bad : {"", "10", "5x", "ms", "1.5s", "5 s", "s5", "-", "99999999999999d",
                               "9223372036854775807s"}) {
    auto r = parse_duration(bad);
    BOOST_TEST_INFO("input: " << bad);
    BOOST_REQUIRE(!r.has_value());
    BOOST_TEST((r.error().code == error_code::invalid_option));
    BOOST_TEST(contains(r.error().message, "invalid duration"));
  }
}

BOOST_AUTO_TEST_CASE(format_durations_round_trip) {
  BOOST_TEST(format_duration(0us) == "0s");
  BOOST_TEST(format_duration(250ms) == "250ms");
  BOOST_TEST(format_duration(90s) == "1m30s");
  BOOST_TEST(format_duration(1500ms) == "1s500ms");
  BOOST_TEST(format_duration(std::chrono::hours{49}) == "2d1h");
  BOOST_TEST(format_duration(-5s) == "-5s");
  for (const std::chrono::microseconds v : {std::chrono::microseconds{1}, 
                                            std::chrono::microseconds{93'784'005'006},
                                            std::chrono::microseconds{-7}}) {
    auto r = parse_duration(format_duration(v));
    BOOST_REQUIRE(r.has_value());
    BOOST_TEST(r->count() == v.count());
  }
}

BOOST_AUTO_TEST_SUITE_END()

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

BOOST_AUTO_TEST_SUITE(binary)

using sluice::codec::from_binary;
using sluice::codec::to_binary;

template <class T>
T round_trip(const T& in) {
  std::vector<std::byte> buf;
  to_binary(in, buf);
  std::span<const std::byte> view{buf};
  T out{};
  auto ok = from_binary(view, out);
  BOOST_TEST(ok.has_value());
  BOOST_TEST(view.empty());
  return out;
}

BOOST_AUTO_TEST_CASE(layout_is_little_endian_and_compact) {
  std::vector<std::byte> buf;
  to_binary(std::uint32_t{0x01020304}, buf);
  BOOST_REQUIRE(buf.size() == 4u);
  BOOST_TEST(std::to_integer<int>(buf[0]) == 4);
  BOOST_TEST(std::to_integer<int>(buf[3]) == 1);

  buf.clear();
  to_binary(std::string(300, 'x'), buf);
  BOOST_REQUIRE(buf.size() == 302u); // two-byte varint length
  BOOST_TEST(std::to_integer<int>(buf[0]) == 0xac);
  BOOST_TEST(std::to_integer<int>(buf[1]) == 0x02);

  buf.clear();
  to_binary(point{1, -1}, buf);
  BOOST_TEST(buf.size() == 8u);
  BOOST_TEST(std::to_integer<int>(buf[4]) == 0xff);

  // Appends rather than overwrites.
  to_binary(true, buf);
  BOOST_TEST(buf.size() == 9u);
}

/// Little-endian bytes of `v`, `n` of them: what the format says a number encodes to.
std::vector<std::byte> le(std::uint64_t v, std::size_t n) {
  std::vector<std::byte> out;
  for (std::size_t i = 0; i < n; ++i)
    out.push_back(static_cast<std::byte>((v >> (8 * i)) & 0xff));
  return out;
}
std::vector<std::byte> cat(std::initializer_list<std::vector<std::byte>> parts) {
  std::vector<std::byte> out;
  for (auto& p : parts)
    out.insert(out.end(), p.begin(), p.end());
  return out;
}

BOOST_AUTO_TEST_CASE(records_that_are_their_bytes_encode_the_same_in_one_copy) {
  using sluice::codec::detail::flat_layout;
  BOOST_TEST(flat_layout<point>());
  BOOST_TEST(flat_layout<flat_pair>());
  BOOST_TEST(!flat_layout<padded>());    // padding
  BOOST_TEST(!flat_layout<reordered>()); // fields out of memory order
  BOOST_TEST(!flat_layout<partial>());   // a member inspect() does not name
  BOOST_TEST(!flat_layout<conditional>()); // a copy, for values other than zero
  BOOST_TEST(!flat_layout<ints>());      // a bool, checked when read
  BOOST_TEST(!flat_layout<txn>());       // a string

  // Whichever path writes them, the bytes are the format's: fields in declared order.
  const flat_pair fp{0x0102030405060708, point{-2, 3}, 1.5};
  std::vector<std::byte> buf;
  to_binary(fp, buf);
  const auto fp_bytes = cat({le(0x0102030405060708, 8), le(0xfffffffe, 4), le(3, 4),
                             le(std::bit_cast<std::uint64_t>(1.5), 8)});
  BOOST_TEST((buf == fp_bytes));
  buf.clear();
  to_binary(reordered{1, 2}, buf);
  BOOST_TEST((buf == cat({le(2, 4), le(1, 4)})));
  buf.clear();
  to_binary(padded{-1, 7}, buf);
  BOOST_TEST((buf == cat({le(0xffffffff, 4), le(7, 8)})));
  buf.clear();
  to_binary(partial{5, 9}, buf);
  BOOST_TEST((buf == le(5, 4)));
  buf.clear();
  to_binary(conditional{3, 2}, buf);
  BOOST_TEST((buf == cat({le(6, 4), le(2, 4)})));

  // Vectors of numbers and of flat records: a count, then the elements' bytes.
  buf.clear();
  to_binary(std::vector<flat_pair>{fp, fp}, buf);
  BOOST_TEST((buf == cat({le(2, 1), fp_bytes, fp_bytes})));
  buf.clear();
  to_binary(std::vector<std::int16_t>{-1, 2}, buf);
  BOOST_TEST((buf == cat({le(2, 1), le(0xffff, 2), le(2, 2)})));
  const std::vector<flat_pair> many{fp, flat_pair{}, fp};
  auto back = round_trip(many);
  BOOST_REQUIRE(back.size() == 3u);
  BOOST_TEST(back[0].key == fp.key);
  BOOST_TEST((back[0].at == fp.at));
  BOOST_TEST(back[2].value == 1.5);
  BOOST_TEST((round_trip(std::vector<double>{0.25, -3}) == std::vector<double>{0.25, -3}));
}

BOOST_AUTO_TEST_CASE(round_trips) {
  BOOST_TEST((round_trip(sample_txn()) == sample_txn()));
  txn no_tag = sample_txn();
  no_tag.tag.reset();
  no_tag.ts = at(-123);
  BOOST_TEST((round_trip(no_tag) == no_tag));
  const shape s{.name = "tri",
                .origin = {1, -2},
                .vertices = {{0, 0}, {3, 0}, {0, 4}},
                .labels = {"a", "", std::string(200, 'z')},
                .anchor = point{5, 6},
                .flags = {true, false, true}};
  BOOST_TEST((round_trip(s) == s));
  ints x{.i8 = -128, .u8 = 255, .i16 = -32768, .u16 = 65535,
         .i32 = std::numeric_limits<std::int32_t>::min(), .u32 = 4'294'967'295u,
         .i64 = std::numeric_limits<std::int64_t>::min(),
         .u64 = std::numeric_limits<std::uint64_t>::max(), .b = true, .f = -0.1f};
  BOOST_TEST((round_trip(x) == x));
  BOOST_TEST(round_trip(std::string{"leaf"}) == "leaf");
  BOOST_TEST(round_trip(2.5) == 2.5);
}

BOOST_AUTO_TEST_CASE(consumes_records_one_after_another) {
  std::vector<std::byte> buf;
  to_binary(sample_txn(), buf);
  txn second = sample_txn();
  second.account_id = 99;
  to_binary(second, buf);
  std::span<const std::byte> view{buf};
  txn a;
  txn b;
  BOOST_REQUIRE(from_binary(view, a).has_value());
  BOOST_REQUIRE(from_binary(view, b).has_value());
  BOOST_TEST(view.empty());
  BOOST_TEST(a.account_id == 42);
  BOOST_TEST(b.account_id == 99);
}

BOOST_AUTO_TEST_CASE(truncated_input_at_every_length) {
  std::vector<std::byte> buf;
  to_binary(sample_txn(), buf);
  for (std::size_t n = 0; n < buf.size(); ++n) {
    std::span<const std::byte> view{buf.data(), n};
    txn out;
    auto r = from_binary(view, out);
    BOOST_TEST_INFO("length " << n);
    BOOST_REQUIRE(!r.has_value());
    BOOST_TEST((r.error().code == error_code::malformed_record));
    BOOST_TEST(contains(r.error().message, "truncated input"));
    BOOST_TEST(r.error().message.starts_with("field '"));
    BOOST_TEST(view.size() == n); // unchanged on failure
  }
  std::span<const std::byte> first8{buf.data(), 10};
  txn out;
  auto r = from_binary(first8, out);
  BOOST_REQUIRE(!r.has_value());
  BOOST_TEST(r.error().message == "field 'amount': truncated input: needed 8 bytes, 2 left");
}

BOOST_AUTO_TEST_CASE(corrupt_input) {
  std::vector<std::byte> buf;
  to_binary(small{}, buf);
  to_binary(true, buf);
  std::vector<std::byte> bad_bool{std::byte{7}};
  std::span<const std::byte> v1{bad_bool};
  bool b = false;
  auto r1 = from_binary(v1, b);
  BOOST_REQUIRE(!r1.has_value());
  BOOST_TEST(r1.error().message == "invalid bool byte 7");

  std::vector<std::byte> bad_tag;
  to_binary(std::int64_t{1}, bad_tag);
  to_binary(1.0, bad_tag);
  to_binary(t0, bad_tag);
  to_binary(std::string{"m"}, bad_tag);
  bad_tag.push_back(std::byte{2});
  std::span<const std::byte> v2{bad_tag};
  txn t;
  auto r2 = from_binary(v2, t);
  BOOST_REQUIRE(!r2.has_value());
  BOOST_TEST(r2.error().message == "field 'tag': invalid optional tag byte 2");

  std::vector<std::byte> long_varint(11, std::byte{0xff});
  std::span<const std::byte> v3{long_varint};
  std::string s;
  auto r3 = from_binary(v3, s);
  BOOST_REQUIRE(!r3.has_value());
  BOOST_TEST(contains(r3.error().message, "varint"));

  // A huge element count must fail cleanly, not allocate.
  std::vector<std::byte> huge;
  sluice::codec::detail::put_varint(huge, std::numeric_limits<std::uint64_t>::max());
  std::span<const std::byte> v4{huge};
  std::vector<std::int64_t> vec;
  auto r4 = from_binary(v4, vec);
  BOOST_REQUIRE(!r4.has_value());
  BOOST_TEST(r4.error().message == "field '[0]': truncated input: needed 8 bytes, 0 left");

  std::vector<std::byte> nested;
  to_binary(std::string{"s"}, nested);
  to_binary(point{1, 2}, nested);
  sluice::codec::detail::put_varint(nested, 2);
  to_binary(point{1, 2}, nested);
  nested.push_back(std::byte{1});
  std::span<const std::byte> v5{nested};
  shape sh;
  auto r5 = from_binary(v5, sh);
  BOOST_REQUIRE(!r5.has_value());
  BOOST_TEST(r5.error().message == "field 'vertices[1].x': truncated input: needed 4 bytes, 1 left");
}

BOOST_AUTO_TEST_SUITE_END()
