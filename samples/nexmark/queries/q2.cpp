// Query 2, selection: SELECT auction, price FROM bid WHERE MOD(auction, 123) = 0.
#include "sluice/samples/nexmark/queries.hpp"

namespace sluice::nexmark {

stream<row> q2(stream<event> events) {
  return bids_of(std::move(events))
    .filter([](const bid& b) { return b.auction % 123 == 0; })
    .name("auction-mod-123")
    .map([](const bid& b) { return csv::line(b.auction, b.price); })
    .name("q2");
}

} // namespace sluice::nexmark
