// Query 14, calculation (the nexmark project's, not in Beam's suite):
//   SELECT auction, bidder, 0.908 * price AS price,
//     CASE WHEN HOUR(dateTime) >= 8 AND HOUR(dateTime) <= 18 THEN 'dayTime'
//          WHEN HOUR(dateTime) <= 6 OR HOUR(dateTime) >= 20 THEN 'nightTime'
//          ELSE 'otherTime' END AS bidTimeType,
//     dateTime, extra, count_char(extra, 'c') AS c_counts
//   FROM bid WHERE 0.908 * price > 1000000 AND 0.908 * price < 50000000
// The WHERE compares the exact product (908 * price in thousandths of a cent, so no
// rounding moves a bid across a bound); the price column is rounded to cents as q1's. HOUR
// is the hour of the UTC time (docs/nexmark.md).
#include "sluice/samples/nexmark/queries.hpp"

#include <algorithm>

namespace sluice::nexmark {
namespace {

std::string_view bid_time_type(std::int64_t date_time_ms) {
  constexpr std::int64_t hour_ms = 3'600'000;
  const auto hour = ((date_time_ms / hour_ms) % 24 + 24) % 24;
  if (hour >= 8 && hour <= 18)
    return "dayTime";
  if (hour <= 6 || hour >= 20)
    return "nightTime";
  return "otherTime";
}

} // namespace

stream<row> q14(stream<event> events) {
  return bids_of(std::move(events))
    .filter([](const bid& b) {
      const auto thousandths = 908 * b.price;
      return thousandths > 1'000'000'000 && thousandths < 50'000'000'000;
    })
    .name("price-range")
    .map([](const bid& b) {
      const auto c_counts = static_cast<std::int64_t>(std::count(b.extra.begin(), b.extra.end(), 'c'));
      return csv::line(b.auction, b.bidder, (908 * b.price + 500) / 1000,
                       bid_time_type(b.date_time), b.date_time, b.extra, c_counts);
    })
    .name("q14");
}

} // namespace sluice::nexmark
