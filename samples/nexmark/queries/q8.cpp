// Query 8, monitor new users: persons who opened an auction in the same 10 s tumbling
// window as they registered.
//   SELECT P.id, P.name, P.starttime FROM (persons per TUMBLE 10 s) P
//   JOIN (sellers per TUMBLE 10 s) A ON P.id = A.seller AND P.starttime = A.starttime ...
// Persons and auctions keyed by person id (seller) into one tumbling window: a window that
// holds the person and at least one of their auctions gives one row.
#include "sluice/samples/nexmark/queries.hpp"

#include <algorithm>

namespace sluice::nexmark {
namespace {

struct arrival {
  std::int64_t id = 0; ///< the person's id, or the auction's seller
  std::int64_t date_time = 0;
  bool is_person = false;
  std::string name; ///< persons only
};

template <class Inspector>
bool inspect(Inspector& f, arrival& x) {
  return f.object("arrival").fields(f.field("id", x.id), f.field("date_time", x.date_time),
                                    f.field("is_person", x.is_person), f.field("name", x.name));
}

} // namespace

stream<row> q8(stream<event> events) {
  using namespace std::chrono_literals;
  return events.filter([](const event& e) { return e.as_bid() == nullptr; })
    .name("persons-and-auctions")
    .map([](const event& e) {
      if (const auto* p = e.as_person())
        return arrival{p->id, p->date_time, true, p->name};
      const auto& a = *e.as_auction();
      return arrival{a.seller, a.date_time, false, {}};
    })
    .name("as-arrival")
    .with_timestamps([](const arrival& a) { return at_ms(a.date_time); })
    .key_by([](const arrival& a) { return a.id; }, "person")
    .window(windows::tumbling{.size = 10s})
    .process([](const window_context<std::int64_t>& w, const std::vector<arrival>& in,
                collector<row>& out) {
      const bool sold = std::any_of(in.begin(), in.end(), [](const arrival& a) { return !a.is_person; });
      if (!sold)
        return;
      // GROUP BY id, name, window: one row per distinct person (ids are unique anyway).
      std::vector<std::string> seen;
      for (const auto& a : in)
        if (a.is_person && std::find(seen.begin(), seen.end(), a.name) == seen.end()) {
          seen.push_back(a.name);
          out.collect(csv::line(a.id, a.name, to_ms(w.start())));
        }
    })
    .name("q8");
}

} // namespace sluice::nexmark
