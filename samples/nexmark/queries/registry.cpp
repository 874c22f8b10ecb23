#include "sluice/samples/nexmark/queries.hpp"

#include <fmt/format.h>

namespace sluice::nexmark {

const std::vector<query>& all_queries() {
  static const std::vector<query> queries{
    {0, "auction,bidder,price,dateTime,extra", &q0, "pass-through of bids"},
    {1, "auction,bidder,price,dateTime,extra", &q1, "bid prices in another currency"},
    {2, "auction,price", &q2, "bids on auctions whose id is a multiple of 123"},
    {3, "name,city,state,id", &q3, "sellers in OR, ID, CA of category-10 auctions"},
    {4, "category,final", &q4, "average closing price per category"},
    {5, "auction,num", &q5, "auctions with the most bids per sliding window"},
    {6, "seller,avg_price", &q6, "average of a seller's last 10 closing prices"},
    {7, "auction,price,bidder,dateTime,extra", &q7, "highest bids per tumbling window"},
    {8, "id,name,starttime", &q8, "new persons who opened an auction in the same window"},
    {9,
     "id,itemName,description,initialBid,reserve,dateTime,expires,seller,category,extra,"
     "auction,bidder,price,bid_dateTime,bid_extra",
     &q9, "every auction with its winning bid, both whole"},
    {11, "bidder,bid_count,starttime,endtime", &q11, "bids per bidder session (gap 10 s)"},
    {12, "bidder,bid_count,starttime,endtime", &q12,
     "bids per bidder per 10 s processing-time window"},
    {13, "auction,bidder,price,dateTime,value", &q13,
     "bids with the value of mod(auction, 10000) in a side input table"},
    {14, "auction,bidder,price,bidTimeType,dateTime,extra,c_counts", &q14,
     "bids priced 10k-500k after conversion, with the time of day and the c's in extra"},
    {15,
     "day,total_bids,rank1_bids,rank2_bids,rank3_bids,total_bidders,rank1_bidders,"
     "rank2_bidders,rank3_bidders,total_auctions,rank1_auctions,rank2_auctions,rank3_auctions",
     &q15, "bids, bidders and auctions per day, in all and per price band"},
    {17,
     "auction,day,total_bids,rank1_bids,rank2_bids,rank3_bids,min_price,max_price,avg_price,"
     "sum_price",
     &q17, "bid counts and price statistics per auction and day"},
  };
  return queries;
}

const query* find_query(int number) {
  for (const auto& q : all_queries())
    if (q.number == number)
      return &q;
  return nullptr;
}

std::string day_text(std::int64_t day) {
  const std::chrono::year_month_day d{std::chrono::sys_days{std::chrono::days{day}}};
  return fmt::format("{:04}-{:02}-{:02}", static_cast<int>(d.year()),
                     static_cast<unsigned>(d.month()), static_cast<unsigned>(d.day()));
}

stream<bid> bids_of(stream<event> events) {
  return events.filter([](const event& e) { return e.as_bid() != nullptr; })
    .name("bids")
    .map([](event&& e) { return std::get<bid>(std::move(e.value)); })
    .name("as-bid")
    .with_timestamps([](const bid& b) { return at_ms(b.date_time); });
}

} // namespace sluice::nexmark
