// Query 15, bidding statistics report (the nexmark project's, not in Beam's suite):
//   SELECT DATE_FORMAT(dateTime, 'yyyy-MM-dd') AS day,
//     count(*) AS total_bids,
//     count(*) filter (where price < 10000) AS rank1_bids,
//     count(*) filter (where price >= 10000 and price < 1000000) AS rank2_bids,
//     count(*) filter (where price >= 1000000) AS rank3_bids,
//     count(distinct bidder) AS total_bidders, ... the same three filters ...,
//     count(distinct auction) AS total_auctions, ... the same three filters ...
//   FROM bid GROUP BY DATE_FORMAT(dateTime, 'yyyy-MM-dd')
// A regular aggregate: a bounded run emits each day's final row once, at the end of input
// (an event-time timer at the maximal watermark, as q4). The day is UTC. Distinct counts
// keep, per day, every bidder and auction seen with the price bands it was seen in (three
// bits), so one entry answers the total and the three filtered counts.
#include "sluice/samples/nexmark/queries.hpp"

#include <array>

namespace sluice::nexmark {
namespace {

struct daily_statistics {
  state_descriptor<value_state<band_counts>> counts{"bids"};
  /// Bidder (auction) -> the price bands of its bids: bit b for band b.
  state_descriptor<map_state<std::int64_t, std::uint8_t>> bidders{"bidders"}, auctions{"auctions"};

  void on_element(const bid& b, keyed_process_context<std::int64_t>& ctx, collector<row>&) {
    auto c = ctx.state(counts);
    const bool first = !c.exists();
    auto v = c.value_or({});
    v.add(b.price);
    c.update(v);
    const int band = price_band(b.price);
    note(ctx.state(bidders), b.bidder, band);
    note(ctx.state(auctions), b.auction, band);
    if (first)
      ctx.timers().register_event_time(max_watermark); // the end of input
  }

  void on_timer(event_time, keyed_process_context<std::int64_t>& ctx, collector<row>& out) {
    const auto v = ctx.state(counts).value_or({});
    const auto b = distinct(ctx.state(bidders));
    const auto a = distinct(ctx.state(auctions));
    out.collect(csv::line(day_text(ctx.current_key()), v.total(), v.low, v.middle, v.high, b[0],
                          b[1], b[2], b[3], a[0], a[1], a[2], a[3]));
    ctx.state(counts).clear();
    ctx.state(bidders).clear();
    ctx.state(auctions).clear();
  }

  static void note(map_state<std::int64_t, std::uint8_t> seen, std::int64_t id, int band) {
    const auto bit = static_cast<std::uint8_t>(1u << band);
    const auto had = seen.get(id).value_or(0);
    if (!(had & bit))
      seen.put(id, static_cast<std::uint8_t>(had | bit));
  }

  /// The distinct ids in all, then per band.
  static std::array<std::int64_t, 4> distinct(map_state<std::int64_t, std::uint8_t> seen) {
    std::array<std::int64_t, 4> n{};
    for (const auto& [id, bands] : seen.entries()) {
      ++n[0];
      for (int band = 0; band < 3; ++band)
        n[static_cast<std::size_t>(band) + 1] += (bands >> band) & 1;
    }
    return n;
  }
};

} // namespace

stream<row> q15(stream<event> events) {
  return bids_of(std::move(events))
    .key_by([](const bid& b) { return utc_day(b.date_time); }, "day")
    .process(daily_statistics{})
    .name("q15");
}

} // namespace sluice::nexmark
