// Query 9, winning bids (the nexmark project's, not in Beam's suite):
//   SELECT id, itemName, description, initialBid, reserve, dateTime, expires, seller,
//          category, extra, auction, bidder, price, bid_dateTime, bid_extra
//   FROM (SELECT A.*, B.auction, B.bidder, B.price, B.dateTime AS bid_dateTime,
//                B.extra AS bid_extra,
//                ROW_NUMBER() OVER (PARTITION BY A.id ORDER BY B.price DESC, B.dateTime ASC)
//                  AS rownum
//         FROM auction A, bid B
//         WHERE A.id = B.auction AND B.dateTime BETWEEN A.dateTime AND A.expires)
//   WHERE rownum <= 1
// The same winner as q4's and q6's (winning_bids.hpp), with both rows whole; one row per
// auction with a bid in range, final when the watermark passes the auction's expires.
#include "sluice/samples/nexmark/winning_bids.hpp"

namespace sluice::nexmark {

stream<row> q9(stream<event> events) {
  return winning_bids_whole(std::move(events))
    .map([](const auction_and_bid& w) {
      const auto& a = w.auction;
      const auto& b = w.bid;
      return csv::line(a.id, a.item_name, a.description, a.initial_bid, a.reserve, a.date_time,
                       a.expires, a.seller, a.category, a.extra, b.auction, b.bidder, b.price,
                       b.date_time, b.extra);
    })
    .name("q9");
}

} // namespace sluice::nexmark
