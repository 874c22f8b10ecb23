#pragma once
/// Helpers every decoding source shares for reporting malformed input the same way.
#include "sluice/core/error.hpp"

#include <cstddef>
#include <string>
#include <string_view>

namespace sluice::sources::detail {

/// The most bytes of an offending line a dead letter keeps.
inline constexpr std::size_t max_dead_letter_raw = 1024;

/// `raw` cut to at most `limit` bytes, never in the middle of a UTF-8 sequence.
std::string truncate_raw(std::string_view raw, std::size_t limit = max_dead_letter_raw);

/// The cause prefixed with where it happened, keeping the cause's code, so that
/// `to_string()` reads `malformed_record: data/in.csv:3: expected 3 fields, found 2`.
error located_error(std::string_view location, const error& cause);

/// The most characters of an offending line an error message shows.
inline constexpr std::size_t max_error_raw_chars = 200;

/// As above, followed by the offending input cut to `max_error_raw_chars` characters:
/// `malformed_record: data/in.csv:3: expected 3 fields, found 2; line: 1,2`.
error located_error(std::string_view location, const error& cause, std::string_view raw);

} // namespace sluice::sources::detail
