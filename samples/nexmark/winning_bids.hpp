#pragma once
/// The winning bid of every auction, for q4, q6 and q9: the highest bid whose dateTime lies in
/// [the auction's dateTime, its expires], the earliest of equal highest prices
///   FROM auction A, bid B WHERE A.id = B.auction
///        AND B.dateTime BETWEEN A.dateTime AND A.expires GROUP BY A.id ...
/// Keyed by auction id. A result is final once the watermark reaches the auction's
/// expires: every bid at or before it has arrived (the watermark's promise). Auctions
/// without such a bid give nothing (an inner join).
#include "sluice/samples/nexmark/queries.hpp"

namespace sluice::nexmark {

/// An auction's winning bid.
struct winning_bid {
  std::int64_t auction = 0;
  std::int64_t seller = 0;
  std::int64_t category = 0;
  std::int64_t expires = 0;  ///< epoch ms: the result's event time
  std::int64_t price = 0;    ///< cents
  std::int64_t date_time = 0; ///< of the winning bid, epoch ms
};

/// An auction and its winning bid, whole (q9).
struct auction_and_bid {
  nexmark::auction auction;
  nexmark::bid bid;
};

/// The winning bids, with the auction's expires as event time.
stream<winning_bid> winning_bids(stream<event> events);
/// The same, with the auction and the bid whole (q9 selects every column of both); the state
/// then holds each open auction's strings and those of its best bid.
stream<auction_and_bid> winning_bids_whole(stream<event> events);

} // namespace sluice::nexmark
