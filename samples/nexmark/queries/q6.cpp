// Query 6, average selling price per seller (not runnable on Flink, FLINK-19059):
//   SELECT Q.seller, AVG(Q.price) OVER (PARTITION BY Q.seller ORDER BY Q.dateTime
//     ROWS BETWEEN 10 PRECEDING AND CURRENT ROW) FROM (winning bid per auction) Q
// Per seller, the winning bids ordered by (winning bid's dateTime, auction id); each gets
// the average (SUM div COUNT) of its price and up to 10 preceding ones: one row per
// auction with a winning bid. Closing prices arrive in expiry order, not in that order, so
// a bounded run sorts each seller's list at the end of input.
#include "sluice/samples/nexmark/winning_bids.hpp"

#include <algorithm>
#include <tuple>

namespace sluice::nexmark {
namespace {

struct closing {
  std::int64_t date_time = 0;
  std::int64_t auction = 0;
  std::int64_t price = 0;
};

template <class Inspector>
bool inspect(Inspector& f, closing& x) {
  return f.object("closing").fields(f.field("date_time", x.date_time),
                                    f.field("auction", x.auction), f.field("price", x.price));
}

struct average_per_seller {
  void on_element(const winning_bid& w, keyed_process_context<std::int64_t>& ctx,
                  collector<row>&) {
    ctx.list_state<closing>("closings").add({w.date_time, w.auction, w.price});
    ctx.timers().register_event_time(max_watermark);
  }
  void on_timer(event_time, keyed_process_context<std::int64_t>& ctx, collector<row>& out) {
    auto state = ctx.list_state<closing>("closings");
    auto all = state.get();
    state.clear();
    std::sort(all.begin(), all.end(), [](const closing& a, const closing& b) {
      return std::tie(a.date_time, a.auction) < std::tie(b.date_time, b.auction);
    });
    std::int64_t sum = 0;
    for (std::size_t i = 0; i < all.size(); ++i) {
      sum += all[i].price;
      if (i > 10)
        sum -= all[i - 11].price;
      const auto n = static_cast<std::int64_t>(std::min<std::size_t>(i + 1, 11));
      out.collect(csv::line(ctx.current_key(), sum / n));
    }
  }
};

} // namespace

stream<row> q6(stream<event> events) {
  return winning_bids(std::move(events))
    .key_by([](const winning_bid& w) { return w.seller; }, "seller")
    .process(average_per_seller{})
    .name("q6");
}

} // namespace sluice::nexmark
