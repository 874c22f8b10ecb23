// Query 7, highest bid: per 10 s tumbling window the maximal price, and every bid of that
// price with dateTime BETWEEN window end - 10 s AND window end (closed):
//   SELECT B.auction, B.price, B.bidder, B.dateTime, B.extra FROM bid B
//   JOIN (SELECT MAX(price) AS maxprice, window_end AS dateTime FROM TUMBLE(bid, 10 s)
//         GROUP BY window_start, window_end) B1
//   ON B.price = B1.maxprice WHERE B.dateTime BETWEEN B1.dateTime - 10 s AND B1.dateTime
// A bid exactly at a window's end belongs to the next window but also meets the previous
// window's BETWEEN: it is offered to both. Keyed by window; each key keeps only the bids
// at the running maximum and fires when the watermark reaches the window's end.
#include "sluice/samples/nexmark/queries.hpp"

#include <algorithm>

namespace sluice::nexmark {
namespace {

constexpr std::int64_t window_ms = 10'000;

struct offered {
  std::int64_t window = 0; ///< window start / 10 s
  bool at_end = false;     ///< the bid lies exactly at this window's end
  bid b;
};

struct highest_bids {
  void on_element(const offered& o, keyed_process_context<std::int64_t>& ctx,
                  collector<row>&) {
    auto max = ctx.value_state<std::int64_t>("max");
    auto top = ctx.list_state<bid>("top");
    auto edge = ctx.list_state<bid>("at-end");
    const auto price = o.b.price;
    if (o.at_end) {
      // Does not count for this window's maximum; kept while it may equal it.
      if (auto m = max.value(); !m || price >= *m)
        edge.add(o.b);
    } else if (auto m = max.value(); !m || price > *m) {
      max.update(price);
      top.update({o.b});
      std::vector<bid> keep;
      for (const auto& b : edge.get())
        if (b.price >= price)
          keep.push_back(b);
      edge.update(std::move(keep));
    } else if (price == *m) {
      top.add(o.b);
    }
    ctx.timers().register_event_time(at_ms((ctx.current_key() + 1) * window_ms));
  }

  void on_timer(event_time, keyed_process_context<std::int64_t>& ctx, collector<row>& out) {
    auto max = ctx.value_state<std::int64_t>("max");
    auto top = ctx.list_state<bid>("top");
    auto edge = ctx.list_state<bid>("at-end");
    if (auto m = max.value()) {
      for (const auto& b : top.get())
        out.collect(csv::line(b.auction, b.price, b.bidder, b.date_time, b.extra));
      for (const auto& b : edge.get())
        if (b.price == *m)
          out.collect(csv::line(b.auction, b.price, b.bidder, b.date_time, b.extra));
    }
    max.clear();
    top.clear();
    edge.clear();
  }
};

} // namespace

stream<row> q7(stream<event> events) {
  return bids_of(std::move(events))
    .flat_map([](const bid& b, collector<offered>& out) {
      const auto w = floor_div(b.date_time, window_ms);
      out.collect({w, false, b});
      if (b.date_time == w * window_ms)
        out.collect({w - 1, true, b});
    })
    .name("bids-by-window")
    .with_timestamps([](const offered& o) { return at_ms(o.b.date_time); })
    .key_by([](const offered& o) { return o.window; }, "window")
    .process(highest_bids{})
    .name("q7");
}

} // namespace sluice::nexmark
