// Query 17, auction statistics report (the nexmark project's, not in Beam's suite):
//   SELECT auction, DATE_FORMAT(dateTime, 'yyyy-MM-dd') AS day,
//     count(*) AS total_bids,
//     count(*) filter (where price < 10000) AS rank1_bids,
//     count(*) filter (where price >= 10000 and price < 1000000) AS rank2_bids,
//     count(*) filter (where price >= 1000000) AS rank3_bids,
//     min(price) AS min_price, max(price) AS max_price, avg(price) AS avg_price,
//     sum(price) AS sum_price
//   FROM bid GROUP BY auction, DATE_FORMAT(dateTime, 'yyyy-MM-dd')
// A regular aggregate: a bounded run emits each (auction, day)'s final row once, at the end
// of input (an event-time timer at the maximal watermark, as q4); AVG over BIGINT truncates
// (SUM div COUNT). The day is UTC.
#include "sluice/samples/nexmark/queries.hpp"

#include <algorithm>
#include <limits>

namespace sluice::nexmark {

/// The grouping key: an auction on a UTC day (utc_day). No padding: hashed by its bytes.
struct auction_day {
  std::int64_t auction = 0;
  std::int64_t day = 0;
  friend bool operator==(const auction_day&, const auction_day&) = default;
};

template <class Inspector>
bool inspect(Inspector& f, auction_day& x) {
  return f.object("auction_day").fields(f.field("auction", x.auction), f.field("day", x.day));
}

namespace {

struct price_statistics {
  band_counts bids;
  std::int64_t min = std::numeric_limits<std::int64_t>::max();
  std::int64_t max = std::numeric_limits<std::int64_t>::min();
  std::int64_t sum = 0;

  void add(std::int64_t price) noexcept {
    bids.add(price);
    min = std::min(min, price);
    max = std::max(max, price);
    sum += price;
  }
};

template <class Inspector>
bool inspect(Inspector& f, price_statistics& x) {
  return f.object("price_statistics")
    .fields(f.field("bids", x.bids), f.field("min", x.min), f.field("max", x.max),
            f.field("sum", x.sum));
}

struct per_auction_day {
  state_descriptor<value_state<price_statistics>> stats{"prices"};

  void on_element(const bid& b, keyed_process_context<auction_day>& ctx, collector<row>&) {
    auto s = ctx.state(stats);
    const bool first = !s.exists();
    auto v = s.value_or({});
    v.add(b.price);
    s.update(v);
    if (first)
      ctx.timers().register_event_time(max_watermark); // the end of input
  }

  void on_timer(event_time, keyed_process_context<auction_day>& ctx, collector<row>& out) {
    auto s = ctx.state(stats);
    if (const auto* v = s.get(); v && v->bids.total() > 0) {
      const auto& k = ctx.current_key();
      const auto n = v->bids.total();
      out.collect(csv::line(k.auction, day_text(k.day), n, v->bids.low, v->bids.middle,
                            v->bids.high, v->min, v->max, v->sum / n, v->sum));
    }
    s.clear();
  }
};

} // namespace

stream<row> q17(stream<event> events) {
  return bids_of(std::move(events))
    .key_by([](const bid& b) { return auction_day{b.auction, utc_day(b.date_time)}; },
            "auction-day")
    .process(per_auction_day{})
    .name("q17");
}

} // namespace sluice::nexmark
