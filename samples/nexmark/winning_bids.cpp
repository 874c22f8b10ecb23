#include "sluice/samples/nexmark/winning_bids.hpp"

#include <algorithm>
#include <tuple>

namespace sluice::nexmark {
namespace {

struct open_auction {
  std::int64_t date_time = 0;
  std::int64_t expires = 0;
  std::int64_t seller = 0;
  std::int64_t category = 0;
};

struct priced {
  std::int64_t price = 0;
  std::int64_t date_time = 0;
};

template <class Inspector>
bool inspect(Inspector& f, open_auction& x) {
  return f.object("open_auction")
    .fields(f.field("date_time", x.date_time), f.field("expires", x.expires),
            f.field("seller", x.seller), f.field("category", x.category));
}
template <class Inspector>
bool inspect(Inspector& f, priced& x) {
  return f.object("priced").fields(f.field("price", x.price), f.field("date_time", x.date_time));
}

/// How long after an auction closed its bids are still recognised as too late and dropped
/// at once; after that a stray bid waits (below) until the watermark passes its own time.
constexpr auto closed_memory = std::chrono::seconds{10};

/// What q4 and q6 keep of an auction and its bids: a few numbers.
struct kept_numbers {
  using auction_part = open_auction;
  using bid_part = priced;
  using result = winning_bid;
  static open_auction keep(const auction& a) { return {a.date_time, a.expires, a.seller, a.category}; }
  static priced keep(const bid& b) { return {b.price, b.date_time}; }
  static winning_bid make(std::int64_t id, const open_auction& a, const priced& b) {
    return {id, a.seller, a.category, a.expires, b.price, b.date_time};
  }
  /// Bids of equal price and time are the same to q4 and q6.
  static bool wins_tie(const priced&, const priced&) { return false; }
};

/// What q9 keeps: the auction and the bid whole.
struct kept_whole {
  using auction_part = auction;
  using bid_part = bid;
  using result = auction_and_bid;
  static const auction& keep(const auction& a) { return a; }
  static const bid& keep(const bid& b) { return b; }
  static auction_and_bid make(std::int64_t, const auction& a, const bid& b) { return {a, b}; }
  /// The SQL leaves bids of equal price and time in any order; the smaller (bidder, extra)
  /// wins here, so every run and parallelism gives the same rows.
  static bool wins_tie(const bid& b, const bid& than) {
    return std::tie(b.bidder, b.extra) < std::tie(than.bidder, than.extra);
  }
};

template <class Kept>
struct pick_winner {
  using auction_part = typename Kept::auction_part;
  using bid_part = typename Kept::bid_part;
  using result = typename Kept::result;

  void on_element(const event& e, keyed_process_context<std::int64_t>& ctx, collector<result>&) {
    auto info = ctx.value_state<auction_part>("auction");
    auto best = ctx.value_state<bid_part>("best");
    auto early = ctx.list_state<bid_part>("early-bids");
    if (const auto* a = e.as_auction()) {
      info.update(Kept::keep(*a));
      const auto* o = info.get(); // no copy: `offer` touches only `best`
      ctx.timers().register_event_time(at_ms(o->expires));
      for (const auto& b : early.get()) // valid while only `best` is touched
        offer(*o, b, best);
      early.clear();
      return;
    }
    const auto& b = *e.as_bid();
    if (const auto* o = info.get()) {
      offer(*o, Kept::keep(b), best);
    } else if (!ctx.value_state<std::int64_t>("closed").exists()) {
      // The auction may still come, out of order; any auction that could take this bid has
      // dateTime <= the bid's, so it has arrived once the watermark passes the bid's time.
      early.add(Kept::keep(b));
      ctx.timers().register_event_time(at_ms(b.date_time));
    }
    // Otherwise the auction closed: the watermark passed its expires, so the bid is later.
  }

  void on_timer(event_time t, keyed_process_context<std::int64_t>& ctx, collector<result>& out) {
    auto info = ctx.value_state<auction_part>("auction");
    auto closed = ctx.value_state<std::int64_t>("closed");
    if (const auto* o = info.get(); o && at_ms(o->expires) <= t) {
      auto best = ctx.value_state<bid_part>("best");
      if (const auto* w = best.get())
        out.collect(Kept::make(ctx.current_key(), *o, *w));
      best.clear();
      const auto expires = o->expires;
      info.clear(); // `o` dangles from here
      closed.update(expires);
      ctx.timers().register_event_time(at_ms(expires) + closed_memory);
    }
    if (auto c = closed.value(); c && at_ms(*c) + closed_memory <= t)
      closed.clear();
    auto early = ctx.list_state<bid_part>("early-bids");
    if (!info.exists() && !early.get().empty()) {
      std::vector<bid_part> keep;
      for (const auto& b : early.get())
        if (at_ms(b.date_time) > t)
          keep.push_back(b);
      if (keep.empty())
        early.clear();
      else
        early.update(std::move(keep));
    }
  }

  static void offer(const auction_part& o, const bid_part& b, value_state<bid_part>& best) {
    if (b.date_time < o.date_time || b.date_time > o.expires)
      return;
    const auto* cur = best.get(); // used before the update only
    if (!cur || b.price > cur->price ||
        (b.price == cur->price && (b.date_time < cur->date_time ||
                                   (b.date_time == cur->date_time && Kept::wins_tie(b, *cur)))))
      best.update(b);
  }
};

/// The auctions and bids of `events`, keyed by auction id.
auto by_auction(stream<event> events) {
  return events
    .filter([](const event& e) { return e.as_bid() != nullptr || e.as_auction() != nullptr; })
    .name("auctions-and-bids")
    .key_by([](const event& e) {
      return e.as_bid() ? e.as_bid()->auction : e.as_auction()->id;
    }, "auction");
}

} // namespace

stream<winning_bid> winning_bids(stream<event> events) {
  return by_auction(std::move(events))
    .process(pick_winner<kept_numbers>{})
    .name("winning-bids")
    .with_timestamps([](const winning_bid& w) { return at_ms(w.expires); });
}

stream<auction_and_bid> winning_bids_whole(stream<event> events) {
  return by_auction(std::move(events))
    .process(pick_winner<kept_whole>{})
    .name("winning-bids")
    .with_timestamps([](const auction_and_bid& w) { return at_ms(w.auction.expires); });
}

} // namespace sluice::nexmark
