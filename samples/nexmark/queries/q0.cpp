// Query 0, pass-through: SELECT auction, bidder, price, dateTime, extra FROM bid.
// Measures the cost of the source, the bid filter and the sink.
#include "sluice/samples/nexmark/queries.hpp"

namespace sluice::nexmark {

stream<row> q0(stream<event> events) {
  return bids_of(std::move(events))
    .map([](const bid& b) { return csv::line(b.auction, b.bidder, b.price, b.date_time, b.extra); })
    .name("q0");
}

} // namespace sluice::nexmark
