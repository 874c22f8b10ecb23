// ISO-8601 times and durations (core/codec/time_format.hpp).
#include <boost/test/unit_test.hpp>

#include "sluice/core/codec/time_format.hpp"
#include "sluice/tests/core/codec_records.hpp"

#include <cstdint>
#include <string>

using namespace std::chrono_literals;
using namespace test_records;

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
