#include "sluice/samples/nexmark/winning_bids.hpp"

#include <algorithm>

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

struct pick_winner {
  void on_element(const event& e, keyed_process_context<std::int64_t>& ctx,
                  collector<winning_bid>&) {
    auto info = ctx.value_state<open_auction>("auction");
    auto best = ctx.value_state<priced>("best");
    auto early = ctx.list_state<priced>("early-bids");
    if (const auto* a = e.as_auction()) {
      const open_auction o{a->date_time, a->expires, a->seller, a->category};
      info.update(o);
      ctx.timers().register_event_time(at_ms(o.expires));
      const auto waiting = early.get(); // a copy: the reference dies at the next state access
      for (const auto& b : waiting)
        offer(o, b, best);
      early.clear();
      return;
    }
    const auto& b = *e.as_bid();
    if (auto o = info.value()) {
      offer(*o, {b.price, b.date_time}, best);
    } else if (!ctx.value_state<std::int64_t>("closed").exists()) {
      // The auction may still come, out of order; any auction that could take this bid has
      // dateTime <= the bid's, so it has arrived once the watermark passes the bid's time.
      early.add({b.price, b.date_time});
      ctx.timers().register_event_time(at_ms(b.date_time));
    }
    // Otherwise the auction closed: the watermark passed its expires, so the bid is later.
  }

  void on_timer(event_time t, keyed_process_context<std::int64_t>& ctx,
                collector<winning_bid>& out) {
    auto info = ctx.value_state<open_auction>("auction");
    auto closed = ctx.value_state<std::int64_t>("closed");
    if (auto o = info.value(); o && at_ms(o->expires) <= t) {
      auto best = ctx.value_state<priced>("best");
      if (auto w = best.value())
        out.collect({ctx.current_key(), o->seller, o->category, o->expires, w->price,
                     w->date_time});
      best.clear();
      info.clear();
      closed.update(o->expires);
      ctx.timers().register_event_time(at_ms(o->expires) + closed_memory);
    }
    if (auto c = closed.value(); c && at_ms(*c) + closed_memory <= t)
      closed.clear();
    auto early = ctx.list_state<priced>("early-bids");
    if (!info.exists() && !early.get().empty()) {
      std::vector<priced> keep;
      for (const auto& b : early.get())
        if (at_ms(b.date_time) > t)
          keep.push_back(b);
      if (keep.empty())
        early.clear();
      else
        early.update(std::move(keep));
    }
  }

  static void offer(const open_auction& o, const priced& b, value_state<priced>& best) {
    if (b.date_time < o.date_time || b.date_time > o.expires)
      return;
    auto cur = best.value();
    if (!cur || b.price > cur->price || (b.price == cur->price && b.date_time < cur->date_time))
      best.update(b);
  }
};

} // namespace

stream<winning_bid> winning_bids(stream<event> events) {
  return events
    .filter([](const event& e) { return e.as_bid() != nullptr || e.as_auction() != nullptr; })
    .name("auctions-and-bids")
    .key_by([](const event& e) {
      return e.as_bid() ? e.as_bid()->auction : e.as_auction()->id;
    }, "auction")
    .process(pick_winner{})
    .name("winning-bids")
    .with_timestamps([](const winning_bid& w) { return at_ms(w.expires); });
}

} // namespace sluice::nexmark
