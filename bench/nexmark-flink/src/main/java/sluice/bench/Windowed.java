// The event-time window queries q5, q7, q8, q11 (samples/nexmark/queries/q5.cpp, q7.cpp,
// q8.cpp, q11.cpp) with Flink's window assigners, or, for q7, the same keyed process function
// as the Sluice version. Windows are aligned to the epoch and half-open; a bounded source
// ends with the maximal watermark, which fires every window still open.
package sluice.bench;

import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import org.apache.flink.api.common.functions.AggregateFunction;
import org.apache.flink.api.common.functions.FlatMapFunction;
import org.apache.flink.api.common.functions.OpenContext;
import org.apache.flink.api.common.state.ListState;
import org.apache.flink.api.common.state.ListStateDescriptor;
import org.apache.flink.api.common.state.ValueState;
import org.apache.flink.api.common.state.ValueStateDescriptor;
import org.apache.flink.api.common.typeinfo.Types;
import org.apache.flink.streaming.api.datastream.DataStream;
import org.apache.flink.streaming.api.functions.KeyedProcessFunction;
import org.apache.flink.streaming.api.functions.windowing.ProcessWindowFunction;
import org.apache.flink.streaming.api.windowing.assigners.EventTimeSessionWindows;
import org.apache.flink.streaming.api.windowing.assigners.SlidingEventTimeWindows;
import org.apache.flink.streaming.api.windowing.assigners.TumblingEventTimeWindows;
import org.apache.flink.streaming.api.windowing.windows.TimeWindow;
import org.apache.flink.util.Collector;
import sluice.bench.Generator.Bid;
import sluice.bench.Generator.Event;

final class Windowed {
  private Windowed() {}

  static DataStream<Bid> bids(DataStream<Event> events) {
    return events.filter(e -> e.bid != null).name("bids")
      .map(e -> e.bid).returns(Bid.class).name("as-bid");
  }

  /** COUNT(*) of bids as an incremental aggregate. */
  static final class CountBids implements AggregateFunction<Bid, Long, Long> {
    @Override public Long createAccumulator() { return 0L; }
    @Override public Long add(Bid value, Long acc) { return acc + 1; }
    @Override public Long getResult(Long acc) { return acc; }
    @Override public Long merge(Long a, Long b) { return a + b; }
  }

  // -- q5: hot items ------------------------------------------------------------------------
  // The auctions with the most bids in each sliding window (HOP 10 s every 2 s); ties kept:
  // every auction at its window's maximum gives a row `auction,num`. Two steps as in the SQL:
  // bids per (auction, window), then, keyed by window end, the maximum. A count's timestamp
  // is its window's end - 1 ms, so the 2 s tumbling window holding it holds exactly the
  // counts of the windows ending there.

  public static class AuctionCount {
    public long auction, count, end;
    public AuctionCount() {}
  }

  static DataStream<String> q5(DataStream<Event> events) {
    return bids(events)
      .keyBy(b -> b.auction, Types.LONG)
      .window(SlidingEventTimeWindows.of(Duration.ofSeconds(10), Duration.ofSeconds(2)))
      .aggregate(new CountBids(), new ProcessWindowFunction<Long, AuctionCount, Long, TimeWindow>() {
        @Override public void process(Long auction, Context ctx, Iterable<Long> counts,
                                      Collector<AuctionCount> out) {
          AuctionCount c = new AuctionCount();
          c.auction = auction;
          c.count = counts.iterator().next();
          c.end = ctx.window().getEnd();
          out.collect(c);
        }
      })
      .name("bids-per-auction-window")
      .keyBy(c -> c.end, Types.LONG)
      .window(TumblingEventTimeWindows.of(Duration.ofSeconds(2)))
      .process(new ProcessWindowFunction<AuctionCount, String, Long, TimeWindow>() {
        @Override public void process(Long end, Context ctx, Iterable<AuctionCount> in,
                                      Collector<String> out) {
          long most = 0;
          for (AuctionCount c : in) most = Math.max(most, c.count);
          for (AuctionCount c : in)
            if (c.count == most) out.collect(Rows.line(c.auction, c.count));
        }
      })
      .name("q5");
  }

  // -- q7: highest bid ----------------------------------------------------------------------
  // Per 10 s tumbling window the maximal price, and every bid of that price with dateTime
  // BETWEEN window end - 10 s AND window end (closed): a bid exactly at a window's end belongs
  // to the next window but is also offered to the previous one. Keyed by window; each key
  // keeps the bids at the running maximum and fires when the watermark reaches the window's
  // end. The Sluice version's keyed process function, line for line.

  static final long Q7_WINDOW_MS = 10_000;

  public static class Offered {
    public long window;     // window start / 10 s
    public boolean atEnd;   // the bid lies exactly at this window's end
    public Bid bid;
    public Offered() {}
    Offered(long window, boolean atEnd, Bid bid) { this.window = window; this.atEnd = atEnd; this.bid = bid; }
  }

  static DataStream<String> q7(DataStream<Event> events) {
    return bids(events)
      .flatMap((FlatMapFunction<Bid, Offered>) (b, out) -> {
        long w = Math.floorDiv(b.dateTime, Q7_WINDOW_MS);
        out.collect(new Offered(w, false, b));
        if (b.dateTime == w * Q7_WINDOW_MS) out.collect(new Offered(w - 1, true, b));
      })
      .returns(Offered.class)
      .name("bids-by-window")
      .keyBy(o -> o.window, Types.LONG)
      .process(new HighestBids())
      .name("q7");
  }

  static final class HighestBids extends KeyedProcessFunction<Long, Offered, String> {
    private transient ValueState<Long> max;
    private transient ListState<Bid> top, edge;

    @Override public void open(OpenContext ctx) {
      max = getRuntimeContext().getState(new ValueStateDescriptor<>("max", Types.LONG));
      top = getRuntimeContext().getListState(new ListStateDescriptor<>("top", Bid.class));
      edge = getRuntimeContext().getListState(new ListStateDescriptor<>("at-end", Bid.class));
    }

    @Override public void processElement(Offered o, Context ctx, Collector<String> out)
        throws Exception {
      long price = o.bid.price;
      Long m = max.value();
      if (o.atEnd) {
        // Does not count for this window's maximum; kept while it may equal it.
        if (m == null || price >= m) edge.add(o.bid);
      } else if (m == null || price > m) {
        max.update(price);
        List<Bid> one = new ArrayList<>();
        one.add(o.bid);
        top.update(one);
        List<Bid> keep = new ArrayList<>();
        for (Bid b : edge.get())
          if (b.price >= price) keep.add(b);
        edge.update(keep);
      } else if (price == m) {
        top.add(o.bid);
      }
      ctx.timerService().registerEventTimeTimer((ctx.getCurrentKey() + 1) * Q7_WINDOW_MS);
    }

    @Override public void onTimer(long t, OnTimerContext ctx, Collector<String> out)
        throws Exception {
      Long m = max.value();
      if (m != null) {
        for (Bid b : top.get()) out.collect(row(b));
        for (Bid b : edge.get())
          if (b.price == m) out.collect(row(b));
      }
      max.clear();
      top.clear();
      edge.clear();
    }

    private static String row(Bid b) { return Rows.line(b.auction, b.price, b.bidder, b.dateTime, b.extra); }
  }

  // -- q8: monitor new users ------------------------------------------------------------------
  // Persons who opened an auction in the same 10 s tumbling window as they registered:
  // persons and auctions keyed by person id (seller) into one tumbling window; a window that
  // holds the person and at least one of their auctions gives one row `id,name,starttime`.

  public static class Arrival {
    public long id, dateTime;   // the person's id, or the auction's seller
    public boolean isPerson;
    public String name;         // persons only
    public Arrival() {}
  }

  static DataStream<String> q8(DataStream<Event> events) {
    return events.filter(e -> e.bid == null).name("persons-and-auctions")
      .map(e -> {
        Arrival a = new Arrival();
        if (e.person != null) {
          a.id = e.person.id;
          a.dateTime = e.person.dateTime;
          a.isPerson = true;
          a.name = e.person.name;
        } else {
          a.id = e.auction.seller;
          a.dateTime = e.auction.dateTime;
        }
        return a;
      })
      .returns(Arrival.class).name("as-arrival")
      .keyBy(a -> a.id, Types.LONG)
      .window(TumblingEventTimeWindows.of(Duration.ofSeconds(10)))
      .process(new ProcessWindowFunction<Arrival, String, Long, TimeWindow>() {
        @Override public void process(Long id, Context ctx, Iterable<Arrival> in,
                                      Collector<String> out) {
          boolean sold = false;
          for (Arrival a : in) sold |= !a.isPerson;
          if (!sold) return;
          // GROUP BY id, name, window: one row per distinct person (ids are unique anyway).
          List<String> seen = new ArrayList<>();
          for (Arrival a : in)
            if (a.isPerson && !seen.contains(a.name)) {
              seen.add(a.name);
              out.collect(Rows.line(a.id, a.name, ctx.window().getStart()));
            }
        }
      })
      .name("q8");
  }

  // -- q11: user sessions ---------------------------------------------------------------------
  // Bids per bidder session, a session closing after 10 s without a bid; Flink's session
  // windows merge when they overlap or touch; end = last bid + 10 s.

  static DataStream<String> q11(DataStream<Event> events) {
    return bids(events)
      .keyBy(b -> b.bidder, Types.LONG)
      .window(EventTimeSessionWindows.withGap(Duration.ofSeconds(10)))
      .aggregate(new CountBids(), new ProcessWindowFunction<Long, String, Long, TimeWindow>() {
        @Override public void process(Long bidder, Context ctx, Iterable<Long> counts,
                                      Collector<String> out) {
          out.collect(Rows.line(bidder, counts.iterator().next(), ctx.window().getStart(),
                                ctx.window().getEnd()));
        }
      })
      .name("q11");
  }
}
