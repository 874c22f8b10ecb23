// Query 4, average closing price per category:
//   SELECT Q.category, AVG(Q.final) FROM (SELECT MAX(B.price) AS final, A.category
//     FROM auction A, bid B WHERE A.id = B.auction
//     AND B.dateTime BETWEEN A.dateTime AND A.expires GROUP BY A.id, A.category) Q
//   GROUP BY Q.category
// The closing prices come from winning_bids; the average (SUM div COUNT, truncated as AVG
// over BIGINT) is a regular aggregate, so a bounded run emits its final value once per
// category, at the end of input (an event-time timer at the maximal watermark).
#include "sluice/samples/nexmark/winning_bids.hpp"

namespace sluice::nexmark {
namespace {

struct sum_count {
  std::int64_t sum = 0;
  std::int64_t count = 0;
};

template <class Inspector>
bool inspect(Inspector& f, sum_count& x) {
  return f.object("sum_count").fields(f.field("sum", x.sum), f.field("count", x.count));
}

struct average_per_category {
  void on_element(const winning_bid& w, keyed_process_context<std::int64_t>& ctx,
                  collector<row>&) {
    auto acc = ctx.value_state<sum_count>("closing-prices");
    auto a = acc.value_or({});
    a.sum += w.price;
    a.count += 1;
    acc.update(a);
    ctx.timers().register_event_time(max_watermark);
  }
  void on_timer(event_time, keyed_process_context<std::int64_t>& ctx, collector<row>& out) {
    auto acc = ctx.value_state<sum_count>("closing-prices");
    if (auto a = acc.value(); a && a->count > 0)
      out.collect(csv::line(ctx.current_key(), a->sum / a->count));
    acc.clear();
  }
};

} // namespace

stream<row> q4(stream<event> events) {
  return winning_bids(std::move(events))
    .key_by([](const winning_bid& w) { return w.category; }, "category")
    .process(average_per_category{})
    .name("q4");
}

} // namespace sluice::nexmark
