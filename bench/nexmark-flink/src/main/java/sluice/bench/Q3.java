// q3, local item suggestion (samples/nexmark/queries/q3.cpp):
//   SELECT P.name, P.city, P.state, A.id FROM auction A INNER JOIN person P
//   ON A.seller = P.id WHERE A.category = 10 AND P.state IN ('OR', 'ID', 'CA')
// A regular inner join, keyed by person id: persons and category-10 auctions connected and
// keyed alike; the person stays in value state forever (as Flink SQL's regular join keeps
// it), an auction that comes before its seller waits in list state.
package sluice.bench;

import org.apache.flink.api.common.functions.OpenContext;
import org.apache.flink.api.common.state.ListState;
import org.apache.flink.api.common.state.ListStateDescriptor;
import org.apache.flink.api.common.state.ValueState;
import org.apache.flink.api.common.state.ValueStateDescriptor;
import org.apache.flink.api.common.typeinfo.Types;
import org.apache.flink.streaming.api.datastream.DataStream;
import org.apache.flink.streaming.api.functions.co.KeyedCoProcessFunction;
import org.apache.flink.util.Collector;
import sluice.bench.Generator.Auction;
import sluice.bench.Generator.Event;
import sluice.bench.Generator.Person;

final class Q3 {
  private Q3() {}

  /** The part of a person the result needs. */
  public static class Seller {
    public String name, city, state;
    public Seller() {}
  }

  static DataStream<String> query(DataStream<Event> events) {
    DataStream<Person> persons = events
      .filter(e -> e.person != null
                   && (e.person.state.equals("OR") || e.person.state.equals("ID")
                       || e.person.state.equals("CA")))
      .name("local-persons")
      .map(e -> e.person).returns(Person.class).name("as-person");
    DataStream<Auction> auctions = events
      .filter(e -> e.auction != null && e.auction.category == 10).name("category-10")
      .map(e -> e.auction).returns(Auction.class).name("as-auction");
    return persons.connect(auctions)
      .keyBy(p -> p.id, a -> a.seller, Types.LONG)
      .process(new JoinSellers())
      .name("q3");
  }

  static final class JoinSellers extends KeyedCoProcessFunction<Long, Person, Auction, String> {
    private transient ValueState<Seller> known;
    private transient ListState<Long> waiting;

    @Override public void open(OpenContext ctx) {
      known = getRuntimeContext().getState(new ValueStateDescriptor<>("person", Seller.class));
      waiting = getRuntimeContext().getListState(new ListStateDescriptor<>("auctions", Types.LONG));
    }

    @Override public void processElement1(Person p, Context ctx, Collector<String> out)
        throws Exception {
      Seller s = new Seller();
      s.name = p.name;
      s.city = p.city;
      s.state = p.state;
      for (Long id : waiting.get())
        out.collect(Rows.line(s.name, s.city, s.state, id));
      waiting.clear();
      known.update(s);
    }

    @Override public void processElement2(Auction a, Context ctx, Collector<String> out)
        throws Exception {
      Seller s = known.value();
      if (s != null)
        out.collect(Rows.line(s.name, s.city, s.state, a.id));
      else
        waiting.add(a.id);
    }
  }
}
