// Query 1, currency conversion: SELECT auction, bidder, 0.908 * price AS price, dateTime,
// extra FROM bid. Money stays integer cents: (908 * price + 500) div 1000, rounded half up.
#include "sluice/samples/nexmark/queries.hpp"

namespace sluice::nexmark {

stream<row> q1(stream<event> events) {
  return bids_of(std::move(events))
    .map([](const bid& b) {
      return csv::line(b.auction, b.bidder, (908 * b.price + 500) / 1000, b.date_time, b.extra);
    })
    .name("q1");
}

} // namespace sluice::nexmark
