// Query 3, local item suggestion: who sells in category 10 and lives in OR, ID or CA.
//   SELECT P.name, P.city, P.state, A.id FROM auction A INNER JOIN person P
//   ON A.seller = P.id WHERE A.category = 10 AND P.state IN ('OR', 'ID', 'CA')
// A regular (unwindowed) inner join, keyed by person id: the person is kept forever, as
// in Flink, and an auction that comes before its seller waits for it. Person ids are
// unique, so each auction joins at most once and the output is the final join, no changelog.
#include "sluice/samples/nexmark/queries.hpp"

namespace sluice::nexmark {
namespace {

struct seller {
  std::string name;
  std::string city;
  std::string state;
};

template <class Inspector>
bool inspect(Inspector& f, seller& x) {
  return f.object("seller").fields(f.field("name", x.name), f.field("city", x.city),
                                   f.field("state", x.state));
}

struct join_sellers {
  void on_element(const event& e, keyed_process_context<std::int64_t>& ctx,
                  collector<row>& out) {
    auto known = ctx.value_state<seller>("person");
    auto waiting = ctx.list_state<std::int64_t>("auctions");
    if (const auto* p = e.as_person()) {
      const seller s{p->name, p->city, p->state};
      for (auto id : waiting.get())
        out.collect(csv::line(s.name, s.city, s.state, id));
      waiting.clear();
      known.update(s);
    } else if (const auto* a = e.as_auction()) {
      if (auto s = known.value())
        out.collect(csv::line(s->name, s->city, s->state, a->id));
      else
        waiting.add(a->id);
    }
  }
};

} // namespace

stream<row> q3(stream<event> events) {
  return events
    .filter([](const event& e) {
      if (const auto* p = e.as_person())
        return p->state == "OR" || p->state == "ID" || p->state == "CA";
      const auto* a = e.as_auction();
      return a != nullptr && a->category == 10;
    })
    .name("local-persons-and-category-10")
    .key_by([](const event& e) {
      return e.as_person() ? e.as_person()->id : e.as_auction()->seller;
    }, "seller")
    .process(join_sellers{})
    .name("q3");
}

} // namespace sluice::nexmark
