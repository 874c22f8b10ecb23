// q0-q2, q13 and q14: filters and maps of the bids, no state (samples/nexmark/queries/q0.cpp -
// q2.cpp, q13.cpp, q14.cpp). q13's side input is the sample's default table (keys 0-9999, each
// with its decimal text), built in every instance's open(), as the sample builds it once.
package sluice.bench;

import java.util.HashMap;
import org.apache.flink.api.common.functions.OpenContext;
import org.apache.flink.api.common.functions.RichFlatMapFunction;
import org.apache.flink.streaming.api.datastream.DataStream;
import org.apache.flink.util.Collector;
import sluice.bench.Generator.Bid;
import sluice.bench.Generator.Event;

final class Stateless {
  private Stateless() {}

  /**
   * q0 pass-through, q1 price in another currency, q2 auctions whose id is a multiple of 123,
   * q13 bids joined with a side input table, q14 bids in a price range with the time of day and the c's in extra.
   */
  static DataStream<String> query(int q, DataStream<Event> events) {
    return events.flatMap(new Bids(q)).name("q" + q);
  }

  static final class Bids extends RichFlatMapFunction<Event, String> {
    private final int q;
    private transient HashMap<Long, String> side;
    Bids(int q) { this.q = q; }

    @Override public void open(OpenContext ctx) {
      if (q != 13) return;
      side = new HashMap<>(16_384);
      for (long k = 0; k < 10_000; ++k) side.put(k, Long.toString(k));
    }

    @Override public void flatMap(Event e, Collector<String> out) {
      Bid b = e.bid;
      if (b == null) return;
      if (q == 14) {
        // WHERE 0.908 * price > 1000000 AND 0.908 * price < 50000000, exactly, in thousandths.
        long thousandths = 908 * b.price;
        if (thousandths <= 1_000_000_000L || thousandths >= 50_000_000_000L) return;
        long hour = Math.floorMod(Math.floorDiv(b.dateTime, 3_600_000L), 24L); // UTC
        String type = hour >= 8 && hour <= 18 ? "dayTime"
                    : hour <= 6 || hour >= 20 ? "nightTime" : "otherTime";
        long cs = 0;
        for (int i = 0; i < b.extra.length(); ++i)
          if (b.extra.charAt(i) == 'c') ++cs;
        StringBuilder sb = new StringBuilder(160);
        sb.append(b.auction).append(',').append(b.bidder).append(',')
          .append((908 * b.price + 500) / 1000).append(',').append(type).append(',')
          .append(b.dateTime).append(',');
        Rows.text(sb, b.extra);
        sb.append(',').append(cs);
        out.collect(sb.toString());
        return;
      }
      if (q == 13) { // JOIN side_input ON mod(B.auction, 10000) = S.key
        String v = side.get(b.auction % 10_000);
        if (v == null) return;
        StringBuilder sb = new StringBuilder(64);
        sb.append(b.auction).append(',').append(b.bidder).append(',').append(b.price).append(',')
          .append(b.dateTime).append(',');
        Rows.text(sb, v);
        out.collect(sb.toString());
        return;
      }
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
