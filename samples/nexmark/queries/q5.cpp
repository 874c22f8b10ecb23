// Query 5, hot items: the auctions with the most bids in each sliding window (HOP of 10 s
// every 2 s). Ties are kept: every auction whose count equals its window's maximum gives
// one row `auction,num` (the window is not in the SELECT list, so equal rows repeat).
// Two steps, as in the SQL: bids per (auction, window), then per window the maximum.
#include "sluice/samples/nexmark/queries.hpp"

#include <algorithm>

namespace sluice::nexmark {

stream<row> q5(stream<event> events) {
  using namespace std::chrono_literals;
  using counted = window_result<std::int64_t, std::uint64_t>;
  return bids_of(std::move(events))
    .key_by([](const bid& b) { return b.auction; }, "auction")
    .window(windows::sliding{.size = 10s, .slide = 2s})
    .count()
    .name("bids-per-auction-window")
    // A result's event time is its window's end - 1 µs; the 2 s tumbling window holding
    // it holds exactly the results of the windows ending at that end, all on one key.
    .key_by([](const counted& c) { return c.end.time_since_epoch().count(); }, "window-end")
    .window(windows::tumbling{.size = 2s})
    .process([](const window_context<std::int64_t>&, const std::vector<counted>& in,
                collector<row>& out) {
      std::uint64_t most = 0;
      for (const auto& c : in)
        most = std::max(most, c.value);
      for (const auto& c : in)
        if (c.value == most)
          out.collect(csv::line(c.key, static_cast<std::int64_t>(c.value)));
    })
    .name("q5");
}

} // namespace sluice::nexmark
