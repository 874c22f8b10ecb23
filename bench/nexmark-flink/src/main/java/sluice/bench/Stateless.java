// q0-q2: filters and maps of the bids, no state (samples/nexmark/queries/q0.cpp - q2.cpp).
package sluice.bench;

import org.apache.flink.api.common.functions.FlatMapFunction;
import org.apache.flink.streaming.api.datastream.DataStream;
import org.apache.flink.util.Collector;
import sluice.bench.Generator.Bid;
import sluice.bench.Generator.Event;

final class Stateless {
  private Stateless() {}

  /** q0 pass-through, q1 price in another currency, q2 auctions whose id is a multiple of 123. */
  static DataStream<String> query(int q, DataStream<Event> events) {
    return events.flatMap(new Bids(q)).name("q" + q);
  }

  static final class Bids implements FlatMapFunction<Event, String> {
    private final int q;
    Bids(int q) { this.q = q; }

    @Override public void flatMap(Event e, Collector<String> out) {
      Bid b = e.bid;
      if (b == null) return;
      if (q == 2) {
        if (b.auction % 123 == 0) out.collect(b.auction + "," + b.price);
        return;
      }
      // SELECT auction, bidder, price (q1: 0.908 * price in cents, rounded half up), ...
      long price = q == 0 ? b.price : (908 * b.price + 500) / 1000;
      StringBuilder sb = new StringBuilder(160);
      sb.append(b.auction).append(',').append(b.bidder).append(',').append(price).append(',')
        .append(b.dateTime).append(',');
      Rows.text(sb, b.extra);
      out.collect(sb.toString());
    }
  }
}
