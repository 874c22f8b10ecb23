#pragma once
/// ISO-8601 timestamps and short duration strings ("250ms", "1h30m").
///
/// Hand-written on purpose: no locale, no `strptime`, no time-zone database, so the result
/// is the same on every machine.
#include "sluice/core/error.hpp"
#include "sluice/core/time.hpp"

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

namespace sluice::codec {

/// The epoch milliseconds the codecs accept for an `event_time`: `min_input_event_time` to
/// `max_input_event_time` (years 0000 to 9999), named so in "out of range" errors.
inline constexpr std::int64_t input_epoch_millis_min = -62'167'219'200'000;
inline constexpr std::int64_t input_epoch_millis_max = 253'402'300'799'999;
inline constexpr std::string_view input_epoch_millis_name = "epoch milliseconds (years 0000 to 9999)";

/// Formats `t` as ISO-8601 UTC: `2026-01-01T12:07:00Z`.
///
/// A fraction appears only when the sub-second part is non-zero: three digits when it is a
/// whole number of milliseconds (`.250Z`), six otherwise (`.123456Z`). Years outside
/// 0000..9999 are written with as many digits as needed (and a leading `-` before year 0);
/// `parse_iso8601` reads back only four-digit years.
std::string format_iso8601(event_time t);

/// Parses an ISO-8601 / RFC 3339 timestamp.
///
/// Accepted: `YYYY-MM-DD`, then optionally `T`, `t` or a space and `hh:mm:ss`, an optional
/// fraction of 1 to 9 digits after `.` or `,` (truncated to microseconds), and a zone of `Z`,
/// `z`, `+hh:mm`, `-hh:mm`, `+hhmm` or `-hhmm`. A missing zone means UTC; a bare date means
/// midnight UTC. Fails with `malformed_record` naming the input and the problem.
[[nodiscard]] result<event_time> parse_iso8601(std::string_view text);

/// Parses a duration such as `"10m"`, `"5s"`, `"250ms"`, `"1h"`, `"100us"`, `"2d"`, or a
/// sum of them without separators (`"1h30m"`). Units: `d`, `h`, `m`, `s`, `ms`, `us`.
/// A leading `-` negates; a bare `"0"` is zero. Fails with `invalid_option` on anything
/// else, including overflow.
[[nodiscard]] result<std::chrono::microseconds> parse_duration(std::string_view text);

/// Formats `d` so that `parse_duration` reads it back: `"1h30m"`, `"1s500ms"`, `"0s"`.
std::string format_duration(std::chrono::microseconds d);

} // namespace sluice::codec
