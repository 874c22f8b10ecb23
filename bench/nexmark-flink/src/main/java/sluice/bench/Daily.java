// q15 and q17: statistics of the bids per UTC day (samples/nexmark/queries/q15.cpp, q17.cpp).
//
// Both are regular aggregates (GROUP BY DATE_FORMAT(dateTime, 'yyyy-MM-dd'), q17 with the
// auction too): a bounded run emits each group's final row once, at the end of input (an
// event-time timer at Long.MAX_VALUE, as q4). Price bands: below 10 000 cents, from 10 000
// below 1 000 000, from 1 000 000. The same state as the Sluice version: q15 keeps, per day,
// the bids per band and, per bidder and per auction, the bands it was seen in (three bits);
// q17 one record of counts, min, max and sum per (auction, day).
package sluice.bench;

import java.time.LocalDate;
import java.util.Map;
import org.apache.flink.api.common.functions.OpenContext;
import org.apache.flink.api.common.state.MapState;
import org.apache.flink.api.common.state.MapStateDescriptor;
import org.apache.flink.api.common.state.ValueState;
import org.apache.flink.api.common.state.ValueStateDescriptor;
import org.apache.flink.api.common.typeinfo.TypeHint;
import org.apache.flink.api.common.typeinfo.TypeInformation;
import org.apache.flink.api.common.typeinfo.Types;
import org.apache.flink.api.java.tuple.Tuple2;
import org.apache.flink.streaming.api.datastream.DataStream;
import org.apache.flink.streaming.api.functions.KeyedProcessFunction;
import org.apache.flink.util.Collector;
import sluice.bench.Generator.Bid;
import sluice.bench.Generator.Event;

final class Daily {
  private Daily() {}

  static long day(long ms) { return Math.floorDiv(ms, 86_400_000L); }
  /** DATE_FORMAT(dateTime, 'yyyy-MM-dd'), UTC. */
  static String dayText(long day) { return LocalDate.ofEpochDay(day).toString(); }
  static int band(long price) { return price < 10_000 ? 0 : price < 1_000_000 ? 1 : 2; }

  // -- q15: bids, bidders and auctions per day, in all and per band ------------------------

  /** Bids per price band, as q15 and q17 count them. */
  public static class BandCounts {
    public long low, middle, high;
    public BandCounts() {}
    void add(long price) {
      int band = band(price);
      if (band == 0) ++low; else if (band == 1) ++middle; else ++high;
    }
    long total() { return low + middle + high; }
  }

  static DataStream<String> q15(DataStream<Event> events) {
    return Windowed.bids(events).keyBy(b -> day(b.dateTime), Types.LONG)
      .process(new DailyStatistics()).name("q15");
  }

  static final class DailyStatistics extends KeyedProcessFunction<Long, Bid, String> {
    private transient ValueState<BandCounts> counts;
    private transient MapState<Long, Byte> bidders, auctions;

    @Override public void open(OpenContext ctx) {
      counts = getRuntimeContext().getState(new ValueStateDescriptor<>("bids", BandCounts.class));
      bidders = getRuntimeContext().getMapState(
        new MapStateDescriptor<>("bidders", Types.LONG, Types.BYTE));
      auctions = getRuntimeContext().getMapState(
        new MapStateDescriptor<>("auctions", Types.LONG, Types.BYTE));
    }

    @Override public void processElement(Bid b, Context ctx, Collector<String> out) throws Exception {
      BandCounts c = counts.value();
      boolean first = c == null;
      if (first) c = new BandCounts();
      c.add(b.price);
      counts.update(c);
      int band = band(b.price);
      note(bidders, b.bidder, band);
      note(auctions, b.auction, band);
      if (first) ctx.timerService().registerEventTimeTimer(Long.MAX_VALUE);
    }

    static void note(MapState<Long, Byte> seen, long id, int band) throws Exception {
      byte bit = (byte) (1 << band);
      Byte had = seen.get(id);
      byte h = had == null ? 0 : had;
      if ((h & bit) == 0) seen.put(id, (byte) (h | bit));
    }

    static long[] distinct(MapState<Long, Byte> seen) throws Exception {
      long[] n = new long[4];
      for (Map.Entry<Long, Byte> e : seen.entries()) {
        ++n[0];
        for (int band = 0; band < 3; ++band) n[band + 1] += (e.getValue() >> band) & 1;
      }
      return n;
    }

    @Override public void onTimer(long t, OnTimerContext ctx, Collector<String> out) throws Exception {
      BandCounts c = counts.value();
      long[] b = distinct(bidders), a = distinct(auctions);
      out.collect(Rows.line(dayText(ctx.getCurrentKey()), c.total(), c.low,
                            c.middle, c.high, b[0], b[1], b[2], b[3], a[0], a[1], a[2], a[3]));
      counts.clear();
      bidders.clear();
      auctions.clear();
    }
  }

  // -- q17: counts and price statistics per (auction, day) ---------------------------------

  public static class PriceStatistics {
    public BandCounts bids = new BandCounts();
    public long sum;
    public long min = Long.MAX_VALUE, max = Long.MIN_VALUE;
    public PriceStatistics() {}
  }

  static DataStream<String> q17(DataStream<Event> events) {
    TypeInformation<Tuple2<Long, Long>> key = new TypeHint<Tuple2<Long, Long>>() {}.getTypeInfo();
    return Windowed.bids(events).keyBy(b -> Tuple2.of(b.auction, day(b.dateTime)), key)
      .process(new PerAuctionDay()).name("q17");
  }

  static final class PerAuctionDay extends KeyedProcessFunction<Tuple2<Long, Long>, Bid, String> {
    private transient ValueState<PriceStatistics> stats;

    @Override public void open(OpenContext ctx) {
      stats = getRuntimeContext().getState(new ValueStateDescriptor<>("prices", PriceStatistics.class));
    }

    @Override public void processElement(Bid b, Context ctx, Collector<String> out) throws Exception {
      PriceStatistics s = stats.value();
      boolean first = s == null;
      if (first) s = new PriceStatistics();
      s.bids.add(b.price);
      s.min = Math.min(s.min, b.price);
      s.max = Math.max(s.max, b.price);
      s.sum += b.price;
      stats.update(s);
      if (first) ctx.timerService().registerEventTimeTimer(Long.MAX_VALUE);
    }

    @Override public void onTimer(long t, OnTimerContext ctx, Collector<String> out) throws Exception {
      PriceStatistics s = stats.value();
      long n = s.bids.total();
      Tuple2<Long, Long> k = ctx.getCurrentKey();
      out.collect(Rows.line(k.f0, dayText(k.f1), n, s.bids.low, s.bids.middle, s.bids.high,
                            s.min, s.max, s.sum / n, s.sum));
      stats.clear();
    }
  }
}
