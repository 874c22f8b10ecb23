// Query 11, user sessions: bids per bidder session, a session closing after 10 s without
// a bid (session windows merge when they overlap or touch, as Flink's do).
//   SELECT bidder, count(*) AS bid_count, SESSION_START(dateTime, 10 s) AS starttime,
//          SESSION_END(dateTime, 10 s) AS endtime FROM bid
//   GROUP BY bidder, SESSION(dateTime, INTERVAL '10' SECOND)
#include "sluice/samples/nexmark/queries.hpp"

namespace sluice::nexmark {

stream<row> q11(stream<event> events) {
  using namespace std::chrono_literals;
  return bids_of(std::move(events))
    .key_by([](const bid& b) { return b.bidder; }, "bidder")
    .window(windows::session{.gap = 10s})
    .count()
    .name("bids-per-session")
    .map([](const window_result<std::int64_t, std::uint64_t>& r) {
      return csv::line(r.key, static_cast<std::int64_t>(r.value), to_ms(r.start), to_ms(r.end));
    })
    .name("q11");
}

} // namespace sluice::nexmark
