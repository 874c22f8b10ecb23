// The JSON codec's fast paths (issue 28): the simdjson On-Demand reader behind
// `from_json_line` and the direct writer behind `to_json_line`, against the nlohmann reader
// and writer they replace (`detail::from_json_line_reference`, `to_json_line_reference`).
//
// The reader's contract: whatever it accepts, nlohmann accepts with the same value; every
// line it turns down is decided by nlohmann. So the tests check that implication on edge
// cases and on thousands of single-byte mutations of valid lines, that the fast reader does
// accept ordinary records (it would be useless otherwise), and that `from_json_line` still
// gives nlohmann's answer and message. The writer's contract: the same bytes.
#include <boost/test/unit_test.hpp>

#include "sluice/core/codec/json.hpp"
#include "sluice/tests/core/codec_records.hpp"

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <optional>
#include <random>
#include <sstream>
#include <string>
#include <vector>

using namespace std::chrono_literals;
using namespace test_records;
namespace detail = sluice::codec::detail;
using sluice::codec::from_json_line;
using sluice::codec::to_json_line;

namespace {

/// What the fast reader alone makes of `line`: the record, or nothing when it declines.
template <class T>
std::optional<T> fast_only(std::string_view line) {
  T out{};
  if (detail::fast_parse_line(line, [&](detail::fast_value* v) { return detail::fast_read_value(*v, out); }))
    return out;
  return std::nullopt;
}

/// Empty when the fast reader keeps its contract on `line`, else what went wrong.
template <class T>
std::string contract_violation(std::string_view line) {
  const auto ref = detail::from_json_line_reference<T>(line);
  const auto got = from_json_line<T>(line);
  std::ostringstream os;
  if (const auto fast = fast_only<T>(line)) {
    if (!ref.has_value())
      os << "fast reader accepted what nlohmann rejects (" << ref.error().message << ")";
    // Encoded, so that -0.0 and 0.0 differ.
    else if (!(*fast == *ref) || detail::to_json_line_reference(*fast) != detail::to_json_line_reference(*ref))
      os << "fast reader read " << detail::to_json_line_reference(*fast) << ", nlohmann "
         << detail::to_json_line_reference(*ref);
  }
  if (got.has_value() != ref.has_value())
    os << "from_json_line " << (got.has_value() ? "accepted" : "rejected") << ", nlohmann did not";
  else if (got.has_value() && !(*got == *ref))
    os << "from_json_line read another value than nlohmann";
  else if (!got.has_value() && got.error().message != ref.error().message)
    os << "from_json_line said '" << got.error().message << "', nlohmann '"
       << ref.error().message << "'";
  return os.str();
}

template <class T>
void expect_contract(std::string_view line) {
  const auto v = contract_violation<T>(line);
  BOOST_TEST(v.empty(), "input " << line << ": " << v);
}

/// `line` read by the fast reader itself (not handed to nlohmann).
template <class T>
T fast_must(std::string_view line) {
  auto r = fast_only<T>(line);
  BOOST_TEST_REQUIRE(r.has_value(), "the fast reader declined " << line);
  expect_contract<T>(line);
  return *r;
}

/// The message `from_json_line<T>` gives for `line` (which must fail).
template <class T>
std::string error_of(std::string_view line) {
  expect_contract<T>(line);
  auto r = from_json_line<T>(line);
  BOOST_TEST_REQUIRE(!r.has_value(), "accepted: " << line);
  return r.error().message;
}

/// Every line one byte away from `line` (deleted, replaced or inserted), with bytes that
/// matter to JSON's grammar, numbers, literals, escapes and UTF-8.
std::vector<std::string> mutations(std::string_view line) {
  static const std::string bytes{"{}[]:,\"\\019-+.eEntfux/ \t\n\x7f\xc3\xff\x01" "\0", 30};
  std::vector<std::string> out;
  for (std::size_t i = 0; i <= line.size(); ++i) {
    if (i < line.size()) {
      std::string del{line};
      del.erase(i, 1);
      out.push_back(std::move(del));
    }
    for (const char b : bytes) {
      std::string ins{line};
      ins.insert(ins.begin() + static_cast<std::ptrdiff_t>(i), b);
      out.push_back(std::move(ins));
      if (i < line.size() && line[i] != b) {
        std::string rep{line};
        rep[i] = b;
        out.push_back(std::move(rep));
      }
    }
  }
  return out;
}

template <class T>
void check_mutations(std::string_view line) {
  fast_must<T>(line);
  std::size_t checked = 0;
  std::size_t fast_accepted = 0;
  std::vector<std::string> violations;
  for (const auto& m : mutations(line)) {
    ++checked;
    fast_accepted += fast_only<T>(m).has_value();
    if (auto v = contract_violation<T>(m); !v.empty() && violations.size() < 10)
      violations.push_back(m + " -> " + v);
  }
  BOOST_TEST_MESSAGE(line << ": " << checked << " mutations, " << fast_accepted
                          << " read by the fast reader");
  BOOST_TEST(violations.empty());
  for (const auto& v : violations)
    BOOST_TEST_MESSAGE(v);
  BOOST_TEST(fast_accepted > 0u);
}

struct with_doubles {
  double d = 0;
  float f = 0;
  std::optional<double> o;
  std::vector<double> v;
  friend bool operator==(const with_doubles&, const with_doubles&) = default;
};

template <class Inspector>
bool inspect(Inspector& f, with_doubles& x) {
  return f.object("with_doubles")
    .fields(f.field("d", x.d), f.field("f", x.f), f.field("o", x.o), f.field("v", x.v));
}

struct nested_times {
  std::vector<std::optional<event_time>> times;
  std::optional<std::vector<std::string>> names;
  friend bool operator==(const nested_times&, const nested_times&) = default;
};

template <class Inspector>
bool inspect(Inspector& f, nested_times& x) {
  return f.object("nested_times").fields(f.field("times", x.times), f.field("names", x.names));
}

const std::string txn_line = R"({"account_id":42,"amount":12.5,"ts":"2026-01-01T12:07:00Z",)"
                             R"("merchant":"a\"b\\\u00e9\n","tag":7,)"
                             R"("x":[1,-2.5e3,{"k":null,"t":true,"f":false}]})";
const std::string shape_line = R"({"name":"tri","origin":{"x":1,"y":-2},)"
                               R"("vertices":[{"x":0,"y":0},{"x":3,"y":0}],)"
                               R"("labels":["a","","c,d"],"anchor":null,"flags":[true,false]})";
const std::string ints_line = R"({"i8":-128,"u8":255,"i16":-32768,"u16":65535,)"
                              R"("i32":-2147483648,"u32":4294967295,)"
                              R"("i64":-9223372036854775808,"u64":18446744073709551615,)"
                              R"("b":true,"f":1.25})";

} // namespace

BOOST_AUTO_TEST_SUITE(json_fast)

BOOST_AUTO_TEST_CASE(reads_ordinary_records_itself) {
  const auto t = fast_must<txn>(txn_line);
  BOOST_TEST(t.account_id == 42);
  BOOST_TEST(t.merchant == "a\"b\\\xc3\xa9\n");
  BOOST_TEST((t.tag == 7));
  const auto s = fast_must<shape>(shape_line);
  BOOST_TEST(s.vertices.size() == 2u);
  BOOST_TEST(!s.anchor.has_value());
  const auto i = fast_must<ints>(ints_line);
  BOOST_TEST(i.i64 == std::numeric_limits<std::int64_t>::min());
  BOOST_TEST(i.u64 == std::numeric_limits<std::uint64_t>::max());
  const auto n = fast_must<nested_times>(
    R"({"times":[null,"2026-01-01T12:07:00Z",1767269220000],"names":["a"]})");
  BOOST_TEST(n.times.size() == 3u);
  BOOST_TEST(!n.times[0].has_value());
  BOOST_TEST((n.times[1] == t0));
  BOOST_TEST((n.times[2] == t0));
  // A vector at the root is read by the fast reader too.
  BOOST_TEST(fast_must<std::vector<point>>(R"([{"x":1,"y":2}])").size() == 1u);
}

BOOST_AUTO_TEST_CASE(keys_in_any_order_unknown_keys_and_escaped_keys) {
  const auto t = fast_must<txn>(
    R"({"tag":null,"merchant":"m","zz":{"a":[[[]]],"b":"\ud83d\ude00"},"ts":0,)"
    R"("amount":-1.5e-3,"\u0061ccount_id":7})");
  BOOST_TEST(t.account_id == 7);
  BOOST_TEST(t.amount == -1.5e-3);
  BOOST_TEST(!t.tag.has_value());
}

BOOST_AUTO_TEST_CASE(duplicate_keys_the_last_wins) {
  // As nlohmann's object: the last of a repeated key is the value.
  const auto t = fast_must<txn>(
    R"({"account_id":1,"amount":1,"ts":0,"merchant":"m","account_id":2,"tag":5,"tag":null})");
  BOOST_TEST(t.account_id == 2);
  BOOST_TEST(!t.tag.has_value());
  // A bad first value that a later one replaces is no error (nlohmann never sees it).
  auto r = from_json_line<txn>(
    R"({"account_id":"x","amount":1,"ts":0,"merchant":"m","account_id":3})");
  BOOST_REQUIRE(r.has_value());
  BOOST_TEST(r->account_id == 3);
  expect_contract<txn>(R"({"account_id":"x","amount":1,"ts":0,"merchant":"m","account_id":3})");
  // ...but a bad last one is.
  BOOST_TEST(error_of<txn>(R"({"account_id":3,"amount":1,"ts":0,"merchant":"m","account_id":"x"})")
             == R"(field 'account_id': expected an integer, got string "x")");
  // A nested object given twice is the second one, whole.
  BOOST_TEST(error_of<shape>(R"({"name":"s","origin":{"x":1,"y":2},"origin":{"x":1},)"
                             R"("vertices":[],"labels":[],"flags":[]})")
             == "missing field 'origin.y'");
}

BOOST_AUTO_TEST_CASE(errors_are_reported_in_declared_order) {
  // The fast reader meets 'ts' first; nlohmann's message names 'amount', the first declared.
  BOOST_TEST(error_of<txn>(R"({"ts":"yesterday","merchant":"m","amount":"abc","account_id":1})")
             == R"(field 'amount': expected a number, got string "abc")");
  BOOST_TEST(error_of<txn>(R"({"merchant":5,"amount":1,"account_id":1})") == "missing field 'ts'");
}

BOOST_AUTO_TEST_CASE(numbers_for_integer_fields) {
  // 1e3 and 1.0 are whole: integers, as before. 1.5 is not.
  auto s = fast_must<small>(R"({"level":1e2,"delta":-1.0})");
  BOOST_TEST(s.level == 100);
  BOOST_TEST(s.delta == -1);
  BOOST_TEST(fast_must<small>(R"({"level":2.5e1,"delta":1E3})").delta == 1000);
  BOOST_TEST(error_of<small>(R"({"level":1.5,"delta":0})")
             == "field 'level': expected an integer, got number 1.5");
  // -0 is the integer 0 for signed fields...
  BOOST_TEST(fast_must<small>(R"({"level":0,"delta":-0})").delta == 0);
  // ...and for unsigned ones nlohmann's negative integer: rejected, as before (-0.0 is not).
  BOOST_TEST(error_of<small>(R"({"level":-0,"delta":0})")
             == "field 'level': number 0 is out of range for uint8");
  BOOST_TEST(fast_must<small>(R"({"level":-0.0,"delta":0})").level == 0);
  // Integers beyond 64 bits are doubles to nlohmann: out of range, or whole and in range.
  BOOST_TEST(contains(error_of<std::vector<std::uint64_t>>("[18446744073709551616]"),
                      "out of range for uint64"));
  const auto min = from_json_line<std::vector<std::int64_t>>("[-9223372036854775809]");
  BOOST_REQUIRE(min.has_value());
  BOOST_TEST(min->at(0) == std::numeric_limits<std::int64_t>::min());
  expect_contract<std::vector<std::int64_t>>("[-9223372036854775809]");
  BOOST_TEST(contains(error_of<std::vector<std::int64_t>>("[9223372036854775808]"),
                      "out of range for int64"));
  // Leading zeros and bare fractions are not JSON.
  BOOST_TEST(error_of<small>(R"({"level":01,"delta":0})").starts_with("invalid JSON: "));
  BOOST_TEST(error_of<small>(R"({"level":1.,"delta":0})").starts_with("invalid JSON: "));
}

BOOST_AUTO_TEST_CASE(numbers_for_double_fields) {
  auto d = fast_must<with_doubles>(R"({"d":-0.0,"f":0.1,"v":[1e-400,123456789012345678901234567890,5]})");
  BOOST_TEST(std::signbit(d.d));
  BOOST_TEST(d.f == 0.1f);
  BOOST_TEST(d.v.at(0) == 0.0);
  BOOST_TEST(d.v.at(1) == 1.2345678901234568e29);
  // "-0" is the integer 0 to nlohmann, so +0.0.
  BOOST_TEST(!std::signbit(fast_must<with_doubles>(R"({"d":-0,"f":0,"v":[]})").d));
  BOOST_TEST(contains(error_of<with_doubles>(R"({"d":1,"f":1e39,"v":[]})"), "out of range for float"));
  BOOST_TEST(error_of<with_doubles>(R"({"d":1e400,"f":0,"v":[]})").starts_with("invalid JSON: "));
  BOOST_TEST(error_of<with_doubles>(R"({"d":NaN,"f":0,"v":[]})").starts_with("invalid JSON: "));
}

BOOST_AUTO_TEST_CASE(invalid_utf8_and_bad_strings) {
  for (std::string_view bad : {"{\"name\":\"a\xff\",\"origin\":{\"x\":1,\"y\":2}}",
                               "{\"name\":\"\xc3\",\"origin\":{\"x\":1,\"y\":2}}",
                               "{\"name\":\"\xed\xa0\x80\",\"origin\":{\"x\":1,\"y\":2}}",
                               "{\"name\":\"a\x01\",\"origin\":{\"x\":1,\"y\":2}}",
                               R"({"name":"\ud800","origin":{"x":1,"y":2}})",
                               R"({"name":"\udc00","origin":{"x":1,"y":2}})",
                               R"({"name":"\x","origin":{"x":1,"y":2}})",
                               "{\"zz\":\"\xff\",\"name\":\"a\",\"origin\":{\"x\":1,\"y\":2}}"}) {
    BOOST_TEST_CONTEXT(bad) {
      BOOST_TEST(error_of<flat_shape>(bad).starts_with("invalid JSON: "));
    }
  }
  // Valid multi-byte UTF-8 and escapes (a surrogate pair) are read.
  BOOST_TEST(fast_must<flat_shape>(R"({"name":"\u00e9\ud83d\ude00€","origin":{"x":1,"y":2}})").name
             == "\xc3\xa9\xf0\x9f\x98\x80\xe2\x82\xac");
}

BOOST_AUTO_TEST_CASE(deep_nesting) {
  // Within an unknown key: read as before however deep (nlohmann has no depth limit; the
  // fast reader leaves anything deeper than 128 levels to it).
  for (int depth : {10, 127, 200, 3000}) {
    BOOST_TEST_CONTEXT(depth) {
      std::string deep = R"({"name":"n","origin":{"x":1,"y":2},"deep":)";
      deep += std::string(static_cast<std::size_t>(depth), '[') + "1" +
              std::string(static_cast<std::size_t>(depth), ']') + "}";
      expect_contract<flat_shape>(deep);
      BOOST_TEST(from_json_line<flat_shape>(deep).has_value());
      deep.pop_back(); // unbalanced: invalid at any depth
      BOOST_TEST(error_of<flat_shape>(deep).starts_with("invalid JSON: "));
    }
  }
}

BOOST_AUTO_TEST_CASE(document_edges) {
  // A byte-order mark is skipped by nlohmann (the fast reader declines it); whitespace around
  // the value is fine; anything after it is not.
  BOOST_TEST(from_json_line<point>("\xEF\xBB\xBF{\"x\":1,\"y\":2}").has_value());
  expect_contract<point>("\xEF\xBB\xBF{\"x\":1,\"y\":2}");
  BOOST_TEST(fast_must<point>(" \t\r\n{\"x\":1,\"y\":2} \n").y == 2);
  for (std::string_view bad : {R"({"x":1,"y":2} x)", R"({"x":1,"y":2}{})", R"({"x":1,"y":2},)",
                               R"({"x":1,"y":2,})", R"({"x":1 "y":2})", R"({"x" 1,"y":2})",
                               R"({"x":1,"y":2)", R"({"x":1,"y":[2})", R"({x:1,"y":2})",
                               R"({"x":1,"y":2,"z":tru})", R"({"x":1,"y":2,"z":[1,]})",
                               R"({"x":1,"y":2,"z":nul})", R"({"x":1,"y":2,"z":-})", "",
                               " ", "{"}) {
    BOOST_TEST_CONTEXT(bad) {
      BOOST_TEST(error_of<point>(bad).starts_with("invalid JSON: "));
    }
  }
  BOOST_TEST(error_of<point>("[]") == "expected an object, got an array");
  BOOST_TEST(error_of<point>("5") == "expected an object, got number 5");
  // nlohmann ends its input at a NUL byte after the value, so such a line is read (as before;
  // the fast reader leaves it to nlohmann).
  const std::string nul{"{\"x\":1,\"y\":2}\0junk", 18};
  expect_contract<point>(nul);
  BOOST_TEST(!fast_only<point>(nul).has_value());
  BOOST_TEST(from_json_line<point>(nul).has_value());
}

BOOST_AUTO_TEST_CASE(event_time_forms) {
  const auto n = fast_must<nested_times>(R"({"times":["2026-01-01T13:07:00+01:00",1767269220000.0]})");
  BOOST_TEST((n.times.at(0) == t0));
  BOOST_TEST((n.times.at(1) == t0));
  BOOST_TEST(!n.names.has_value());
  BOOST_TEST(error_of<nested_times>(R"({"times":[1.5]})")
             == "field 'times[0]': expected an integer, got number 1.5");
  BOOST_TEST(error_of<nested_times>(R"({"times":[true]})")
             == "field 'times[0]': expected an ISO-8601 string or epoch milliseconds, got boolean true");
  BOOST_TEST(error_of<nested_times>(R"({"times":["2026-13-01T00:00:00Z"]})").starts_with(
    "field 'times[0]': invalid timestamp"));
}

BOOST_AUTO_TEST_CASE(padding_is_not_read) {
  // Kafka payloads are not padded: the reader copies them. A record cut from a larger buffer
  // must not see the bytes after it.
  const std::string buffer = R"({"x":1,"y":2}, "y":3})";
  const auto p = from_json_line<point>(std::string_view{buffer}.substr(0, 13));
  BOOST_REQUIRE(p.has_value());
  BOOST_TEST(p->y == 2);
  // A large line gets a parser of its own, with the same result.
  std::string big = R"({"x":1,"y":2,"pad":")" + std::string(3u << 20, 'p') + "\"}";
  BOOST_TEST(fast_must<point>(big).y == 2);
}

BOOST_AUTO_TEST_CASE(mutations_of_valid_lines) {
  check_mutations<txn>(txn_line);
  check_mutations<shape>(shape_line);
  check_mutations<ints>(ints_line);
  check_mutations<with_doubles>(R"({"d":-1.5e-7,"f":3.25,"o":null,"v":[0,-0.0,1E+2]})");
  check_mutations<nested_times>(R"({"times":[null,"2026-01-01T12:07:00Z",1767269220000]})");
}

// ---- the writer ----

BOOST_AUTO_TEST_CASE(writer_bytes_match_nlohmann_for_strings) {
  std::vector<std::string> texts;
  for (int b = 0; b < 256; ++b)
    texts.emplace_back(std::string{"a"} + static_cast<char>(b) + "z");
  for (const char* s : {"", "plain", "q\"b\\s/", "\xc3\xa9", "\xe2\x82\xac", "\xf0\x9f\x98\x80",
                        "\xc3", "\xe2\x82", "\xf0\x9f\x98", "\xed\xa0\x80", "\xc0\xaf",
                        "\xf5\x80\x80\x80", "a\xff\xfe" "b", "\x80\x80", "\x7f\x1f\x01",
                        "\xef\xbf\xbd", "\xf4\x8f\xbf\xbf", "\xf4\x90\x80\x80"})
    texts.emplace_back(s);
  texts.emplace_back(std::string{"nul\0inside", 10});
  for (const auto& t : texts) {
    BOOST_TEST(to_json_line(t) == detail::to_json_line_reference(t), "bytes of " << t);
    flat_shape s{.name = t, .origin = {1, 2}, .weight = std::nullopt};
    BOOST_TEST(to_json_line(s) == detail::to_json_line_reference(s));
  }
}

BOOST_AUTO_TEST_CASE(writer_bytes_match_nlohmann_for_numbers) {
  std::vector<double> values{0.0, -0.0, 1.0, -1.0, 0.1, 1e15, 1e16, 1e17, 123456789012345678.0,
                             1e-4, 1e-5, 1.5e-7, 5e-324, 2.2250738585072014e-308,
                             std::numeric_limits<double>::max(), -std::numeric_limits<double>::max(),
                             std::numeric_limits<double>::quiet_NaN(),
                             std::numeric_limits<double>::infinity(),
                             -std::numeric_limits<double>::infinity(), 9007199254740993.0};
  std::mt19937_64 rng{28};
  for (int i = 0; i < 20000; ++i) {
    const std::uint64_t bits = rng();
    double d = 0;
    std::memcpy(&d, &bits, sizeof d);
    values.push_back(d);
    values.push_back(static_cast<double>(static_cast<std::int64_t>(rng() % 2000001) - 1000000) / 100.0);
  }
  std::size_t mismatches = 0;
  for (const double d : values) {
    const bool same = to_json_line(d) == detail::to_json_line_reference(d)
                      && to_json_line(static_cast<float>(d))
                           == detail::to_json_line_reference(static_cast<float>(d));
    if (!same && ++mismatches < 5)
      BOOST_TEST(same, "double " << to_json_line(d) << " vs " << detail::to_json_line_reference(d));
  }
  BOOST_TEST(mismatches == 0u);
  const ints x{.i8 = -128, .u8 = 255, .i16 = -32768, .u16 = 65535,
               .i32 = std::numeric_limits<std::int32_t>::min(), .u32 = 4'294'967'295u,
               .i64 = std::numeric_limits<std::int64_t>::min(),
               .u64 = std::numeric_limits<std::uint64_t>::max(), .b = true, .f = 0.1f};
  BOOST_TEST(to_json_line(x) == detail::to_json_line_reference(x));
}

BOOST_AUTO_TEST_CASE(writer_bytes_match_nlohmann_for_records) {
  const shape s{.name = "tri\n",
                .origin = {1, -2},
                .vertices = {{0, 0}, {3, 0}, {0, 4}},
                .labels = {"a", "", "c,d\""},
                .anchor = point{5, 6},
                .flags = {true, false, true}};
  BOOST_TEST(to_json_line(s) == detail::to_json_line_reference(s));
  BOOST_TEST(to_json_line(shape{}) == detail::to_json_line_reference(shape{}));
  const nested_times n{.times = {std::nullopt, t0, t0 + 123456us}, .names = std::vector<std::string>{"x"}};
  BOOST_TEST(to_json_line(n) == detail::to_json_line_reference(n));
  BOOST_TEST(to_json_line(nested_times{}) == detail::to_json_line_reference(nested_times{}));
  const with_doubles w{.d = 1e300, .f = -0.0f, .o = 2.5, .v = {0.1, 0.2, 0.30000000000000004}};
  BOOST_TEST(to_json_line(w) == detail::to_json_line_reference(w));
  BOOST_TEST(to_json_line(std::vector<std::optional<int>>{1, std::nullopt})
             == detail::to_json_line_reference(std::vector<std::optional<int>>{1, std::nullopt}));
}

BOOST_AUTO_TEST_SUITE_END()
