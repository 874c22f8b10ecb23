// Query 13, bounded side input join (the nexmark project's, not in Beam's suite):
//   SELECT B.auction, B.bidder, B.price, B.dateTime, S.value
//   FROM (SELECT *, PROCTIME() AS p_time FROM bid) B
//   JOIN side_input FOR SYSTEM_TIME AS OF B.p_time AS S ON mod(B.auction, 10000) = S.key
// A lookup join against a table that does not change while the job runs (side_input.hpp):
// each bid looks up its key in the table every instance shares, and a bid whose key is not
// there gives no row (an inner join). MOD keeps the dividend's sign, as Java's % and C++'s.
#include "sluice/samples/nexmark/queries.hpp"
#include "sluice/samples/nexmark/side_input.hpp"

namespace sluice::nexmark {

stream<row> q13(stream<event> events, std::shared_ptr<const side_table> table) {
  return bids_of(std::move(events))
    .flat_map([table = std::move(table)](const bid& b, collector<row>& out) {
      if (auto it = table->find(b.auction % 10'000); it != table->end())
        out.collect(csv::line(b.auction, b.bidder, b.price, b.date_time, it->second));
    })
    .name("q13");
}

stream<row> q13(stream<event> events) { return q13(std::move(events), default_side_input()); }

} // namespace sluice::nexmark
