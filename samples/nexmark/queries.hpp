#pragma once
/// The Nexmark queries on the typed API, one file each under queries/. Every query takes the
/// stream of generated events (with event time and the source's watermarks) and gives its
/// result rows as CSV lines without the header; `query::header` names the columns.
///
/// Semantics are those of a bounded run (docs/nexmark.md): a query's output is its final
/// result as a relational query over all generated events. Windows fire at the end of
/// input, regular joins and aggregates emit final values once (not a changelog), money is
/// integer cents and averages truncate.
#include "sluice/api/job.hpp"
#include "sluice/core/codec/csv.hpp"
#include "sluice/samples/nexmark/generator.hpp"
#include "sluice/samples/nexmark/side_input.hpp"

#include <charconv>
#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace sluice::nexmark {

using row = std::string;

stream<row> q0(stream<event> events);  ///< pass-through of bids
stream<row> q1(stream<event> events);  ///< currency conversion
stream<row> q2(stream<event> events);  ///< selection: auction % 123 == 0
stream<row> q3(stream<event> events);  ///< local item suggestion: person-auction join
stream<row> q4(stream<event> events);  ///< average closing price per category
stream<row> q5(stream<event> events);  ///< hot items: most bids per sliding window
stream<row> q6(stream<event> events);  ///< average selling price per seller, last 10
stream<row> q7(stream<event> events);  ///< highest bid per tumbling window
stream<row> q8(stream<event> events);  ///< new persons who opened auctions in the same window
stream<row> q9(stream<event> events);  ///< winning bids: every auction with its winning bid
stream<row> q11(stream<event> events); ///< user sessions: bids per bidder session
stream<row> q12(stream<event> events); ///< bids per bidder per processing-time window
stream<row> q13(stream<event> events); ///< bounded side input join, the default table
stream<row> q14(stream<event> events); ///< calculation: bids in a price range, with derived columns
stream<row> q15(stream<event> events); ///< bidding statistics per day, with distinct counts
stream<row> q17(stream<event> events); ///< auction statistics per auction and day

/// q13 over another side input table (side_input.hpp).
stream<row> q13(stream<event> events, std::shared_ptr<const side_table> table);

struct query {
  int number;
  std::string_view header;  ///< the CSV header: the names of the SELECT list
  stream<row> (*build)(stream<event>);
  std::string_view summary;
};

/// Every query this sample runs, by number.
const std::vector<query>& all_queries();
/// The query `number`, or nullptr.
const query* find_query(int number);

namespace csv {
inline void append(std::string& out, std::int64_t v) {
  char digits[20];
  const auto end = std::to_chars(digits, digits + sizeof digits, v).ptr;
  // (pointer, length): the iterator-pair overload goes through replace(), 3% of q0's CPU.
  out.append(digits, static_cast<std::size_t>(end - digits));
}

/// RFC 4180: quoted only when the text holds a comma, a quote or a line break.
inline void append(std::string& out, std::string_view s) { codec::append_csv_cell(out, s); }
inline void append(std::string& out, const std::string& s) { append(out, std::string_view{s}); }

/// One CSV line of the fields, comma-separated. Built in a reused buffer and copied out at
/// its exact size: a row of about 100 bytes then takes a 112-byte heap block, which glibc
/// frees through its fast bins, where a `reserve(128)` took a 144-byte block freed through
/// the unsorted bin (malloc and free were a fifth of q0's CPU; BENCHMARKS.md).
template <class... Fields>
row line(const Fields&... fields) {
  thread_local std::string out;
  out.clear();
  bool first = true;
  ((first ? void() : out.push_back(','), first = false, append(out, fields)), ...);
  return row(out);
}
} // namespace csv

/// Microseconds of event time at epoch millisecond `ms`.
inline event_time at_ms(std::int64_t ms) noexcept { return event_time{std::chrono::milliseconds{ms}}; }
/// Epoch milliseconds of an event time.
inline std::int64_t to_ms(event_time t) noexcept {
  return std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
}

/// `a` divided by `b > 0`, rounded toward negative infinity (times before 1970 included).
inline std::int64_t floor_div(std::int64_t a, std::int64_t b) noexcept {
  return a / b - (a % b < 0 ? 1 : 0);
}

/// The UTC day of epoch millisecond `ms`, as days since 1970-01-01.
inline std::int64_t utc_day(std::int64_t ms) noexcept { return floor_div(ms, 86'400'000); }

/// `DATE_FORMAT(dateTime, 'yyyy-MM-dd')` of a day from `utc_day` (UTC, as HOUR in q14).
std::string day_text(std::int64_t day);

/// The price bands of q15 and q17 (cents, as the generator's): 0 below 10 000, 1 from
/// 10 000 below 1 000 000, 2 from 1 000 000.
inline int price_band(std::int64_t price) noexcept {
  return price < 10'000 ? 0 : price < 1'000'000 ? 1 : 2;
}

/// Bids per price band (price_band), as q15 and q17 count them.
struct band_counts {
  std::int64_t low = 0, middle = 0, high = 0;
  void add(std::int64_t price) noexcept {
    const int band = price_band(price);
    ++(band == 0 ? low : band == 1 ? middle : high);
  }
  std::int64_t total() const noexcept { return low + middle + high; }
};

template <class Inspector>
bool inspect(Inspector& f, band_counts& x) {
  return f.object("band_counts")
    .fields(f.field("low", x.low), f.field("middle", x.middle), f.field("high", x.high));
}

/// The bids of the event stream, with their dateTime as event time.
stream<bid> bids_of(stream<event> events);

} // namespace sluice::nexmark
