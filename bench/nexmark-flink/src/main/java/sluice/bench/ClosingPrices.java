// The winning bid per auction and the queries over it, q4, q6 and q9
// (samples/nexmark/winning_bids.cpp, queries/q4.cpp, queries/q6.cpp, queries/q9.cpp).
//
// Winning bid: the highest bid with dateTime in [auction dateTime, expires], the earliest of
// equal highest prices:
//   FROM auction A, bid B WHERE A.id = B.auction
//        AND B.dateTime BETWEEN A.dateTime AND A.expires GROUP BY A.id ...
// Auctions and bids connected and keyed by auction id; final once the watermark reaches the
// auction's expires (an event-time timer), when the auction's state is freed. A bid that
// comes before its auction waits in list state until the watermark passes the bid's own
// time; a bid for an auction closed less than 10 s ago is dropped. The same rules, state and
// timers as the Sluice version, so the rows are the same.
package sluice.bench;

import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import org.apache.flink.api.common.functions.OpenContext;
import org.apache.flink.api.common.state.ListState;
import org.apache.flink.api.common.state.ListStateDescriptor;
import org.apache.flink.api.common.state.ValueState;
import org.apache.flink.api.common.state.ValueStateDescriptor;
import org.apache.flink.api.common.typeinfo.Types;
import org.apache.flink.streaming.api.datastream.DataStream;
import org.apache.flink.streaming.api.functions.KeyedProcessFunction;
import org.apache.flink.streaming.api.functions.co.KeyedCoProcessFunction;
import org.apache.flink.util.Collector;
import sluice.bench.Generator.Auction;
import sluice.bench.Generator.Bid;
import sluice.bench.Generator.Event;

final class ClosingPrices {
  private ClosingPrices() {}

  /** How long after an auction closed its bids are still recognised as too late. */
  static final long CLOSED_MEMORY_MS = 10_000;

  public static class WinningBid {
    public long auction, seller, category, expires, price, dateTime;
    public WinningBid() {}
  }
  public static class OpenAuction {
    public long dateTime, expires, seller, category;
    public OpenAuction() {}
  }
  public static class Priced {
    public long price, dateTime;
    public Priced() {}
    Priced(long price, long dateTime) { this.price = price; this.dateTime = dateTime; }
  }

  /** The winning bids; each carries its auction's expires as timestamp (the timer's). */
  static DataStream<WinningBid> winningBids(DataStream<Event> events) {
    return byAuction(events, new PickWinner(), "winning-bids");
  }

  /** The auctions and bids of `events` connected, keyed by auction id, into `winner`. */
  static <R> DataStream<R> byAuction(DataStream<Event> events, Winner<?, ?, R> winner,
                                     String name) {
    DataStream<Auction> auctions = events.filter(e -> e.auction != null).name("auctions")
      .map(e -> e.auction).returns(Auction.class).name("as-auction");
    DataStream<Bid> bids = events.filter(e -> e.bid != null).name("bids")
      .map(e -> e.bid).returns(Bid.class).name("as-bid");
    return auctions.connect(bids)
      .keyBy(a -> a.id, b -> b.auction, Types.LONG)
      .process(winner)
      .name(name);
  }

  /**
   * The winner's rules over what it keeps of an auction (A) and of a bid (B), emitting R: the
   * numbers for q4 and q6, the whole rows for q9 (as the sample's winning_bids.cpp).
   */
  abstract static class Winner<A, B, R> extends KeyedCoProcessFunction<Long, Auction, Bid, R> {
    private final Class<A> auctionPart;
    private final Class<B> bidPart;
    private transient ValueState<A> info;
    private transient ValueState<B> best;
    private transient ListState<B> early;
    private transient ValueState<Long> closed;

    Winner(Class<A> auctionPart, Class<B> bidPart) {
      this.auctionPart = auctionPart;
      this.bidPart = bidPart;
    }

    /** Copies: with object reuse on, an input object may be overwritten after the call. */
    abstract A keep(Auction a);
    abstract B keep(Bid b);
    abstract long start(A a);
    abstract long expires(A a);
    abstract long price(B b);
    abstract long time(B b);
    /** Bids of equal price and time: whether b wins over `than`. */
    abstract boolean winsTie(B b, B than);
    abstract R make(long auction, A a, B b);

    @Override public void open(OpenContext ctx) {
      info = getRuntimeContext().getState(new ValueStateDescriptor<>("auction", auctionPart));
      best = getRuntimeContext().getState(new ValueStateDescriptor<>("best", bidPart));
      early = getRuntimeContext().getListState(new ListStateDescriptor<>("early-bids", bidPart));
      closed = getRuntimeContext().getState(new ValueStateDescriptor<>("closed", Types.LONG));
    }

    @Override public void processElement1(Auction a, Context ctx, Collector<R> out)
        throws Exception {
      A o = keep(a);
      info.update(o);
      ctx.timerService().registerEventTimeTimer(expires(o));
      for (B b : early.get())
        offer(o, b);
      early.clear();
    }

    @Override public void processElement2(Bid b, Context ctx, Collector<R> out) throws Exception {
      A o = info.value();
      if (o != null) {
        offer(o, keep(b));
      } else if (closed.value() == null) {
        // The auction may still come: any auction that could take this bid has dateTime <=
        // the bid's, so it has arrived once the watermark passes the bid's time.
        early.add(keep(b));
        ctx.timerService().registerEventTimeTimer(b.dateTime);
      }
      // Otherwise the auction closed: the watermark passed its expires, so the bid is later.
    }

    @Override public void onTimer(long t, OnTimerContext ctx, Collector<R> out) throws Exception {
      A o = info.value();
      if (o != null && expires(o) <= t) {
        B w = best.value();
        if (w != null)
          out.collect(make(ctx.getCurrentKey(), o, w));
        best.clear();
        info.clear();
        closed.update(expires(o));
        ctx.timerService().registerEventTimeTimer(expires(o) + CLOSED_MEMORY_MS);
      }
      Long c = closed.value();
      if (c != null && c + CLOSED_MEMORY_MS <= t)
        closed.clear();
      if (info.value() == null) {
        List<B> keep = new ArrayList<>();
        boolean any = false;
        for (B b : early.get()) {
          any = true;
          if (time(b) > t) keep.add(b);
        }
        if (any) {
          if (keep.isEmpty()) early.clear();
          else early.update(keep);
        }
      }
    }

    private void offer(A o, B b) throws Exception {
      if (time(b) < start(o) || time(b) > expires(o)) return;
      B cur = best.value();
      if (cur == null || price(b) > price(cur)
          || (price(b) == price(cur)
              && (time(b) < time(cur) || (time(b) == time(cur) && winsTie(b, cur)))))
        best.update(b);
    }
  }

  /** q4 and q6: a few numbers of each. */
  static final class PickWinner extends Winner<OpenAuction, Priced, WinningBid> {
    PickWinner() { super(OpenAuction.class, Priced.class); }
    @Override OpenAuction keep(Auction a) {
      OpenAuction o = new OpenAuction();
      o.dateTime = a.dateTime;
      o.expires = a.expires;
      o.seller = a.seller;
      o.category = a.category;
      return o;
    }
    @Override Priced keep(Bid b) { return new Priced(b.price, b.dateTime); }
    @Override long start(OpenAuction a) { return a.dateTime; }
    @Override long expires(OpenAuction a) { return a.expires; }
    @Override long price(Priced b) { return b.price; }
    @Override long time(Priced b) { return b.dateTime; }
    @Override boolean winsTie(Priced b, Priced than) { return false; }
    @Override WinningBid make(long auction, OpenAuction o, Priced w) {
      WinningBid r = new WinningBid();
      r.auction = auction;
      r.seller = o.seller;
      r.category = o.category;
      r.expires = o.expires;
      r.price = w.price;
      r.dateTime = w.dateTime;
      return r;
    }
  }

  // -- q9: winning bids, both rows whole ---------------------------------------------------
  //   SELECT A.*, B.auction, B.bidder, B.price, B.dateTime, B.extra FROM (... ROW_NUMBER()
  //     OVER (PARTITION BY A.id ORDER BY B.price DESC, B.dateTime ASC) ...) WHERE rownum <= 1
  // A tie of price and time goes to the smaller (bidder, extra), as in the sample.

  static DataStream<String> q9(DataStream<Event> events) {
    return byAuction(events, new PickWinnerWhole(), "q9");
  }

  static final class PickWinnerWhole extends Winner<Auction, Bid, String> {
    PickWinnerWhole() { super(Auction.class, Bid.class); }
    @Override Auction keep(Auction a) {
      Auction c = new Auction();
      c.id = a.id;
      c.itemName = a.itemName;
      c.description = a.description;
      c.initialBid = a.initialBid;
      c.reserve = a.reserve;
      c.dateTime = a.dateTime;
      c.expires = a.expires;
      c.seller = a.seller;
      c.category = a.category;
      c.extra = a.extra;
      return c;
    }
    @Override Bid keep(Bid b) {
      Bid c = new Bid();
      c.auction = b.auction;
      c.bidder = b.bidder;
      c.price = b.price;
      c.dateTime = b.dateTime;
      c.extra = b.extra;
      return c;
    }
    @Override long start(Auction a) { return a.dateTime; }
    @Override long expires(Auction a) { return a.expires; }
    @Override long price(Bid b) { return b.price; }
    @Override long time(Bid b) { return b.dateTime; }
    @Override boolean winsTie(Bid b, Bid than) {
      return b.bidder < than.bidder || (b.bidder == than.bidder && b.extra.compareTo(than.extra) < 0);
    }
    @Override String make(long auction, Auction a, Bid b) {
      return Rows.line(a.id, a.itemName, a.description, a.initialBid, a.reserve, a.dateTime,
                       a.expires, a.seller, a.category, a.extra, b.auction, b.bidder, b.price,
                       b.dateTime, b.extra);
    }
  }

  // -- q4: average closing price per category -------------------------------------------
  //   SELECT Q.category, AVG(Q.final) FROM (winning bid per auction) Q GROUP BY Q.category
  // A regular aggregate: a bounded run emits its final value once per category, at the end
  // of input (a timer at the maximal watermark); AVG over BIGINT truncates.

  public static class SumCount {
    public long sum, count;
    public SumCount() {}
  }

  static DataStream<String> q4(DataStream<Event> events) {
    return winningBids(events).keyBy(w -> w.category, Types.LONG)
      .process(new AveragePerCategory()).name("q4");
  }

  static final class AveragePerCategory extends KeyedProcessFunction<Long, WinningBid, String> {
    private transient ValueState<SumCount> acc;

    @Override public void open(OpenContext ctx) {
      acc = getRuntimeContext().getState(new ValueStateDescriptor<>("closing-prices", SumCount.class));
    }

    @Override public void processElement(WinningBid w, Context ctx, Collector<String> out)
        throws Exception {
      SumCount a = acc.value();
      if (a == null) a = new SumCount();
      a.sum += w.price;
      a.count += 1;
      acc.update(a);
      ctx.timerService().registerEventTimeTimer(Long.MAX_VALUE);
    }

    @Override public void onTimer(long t, OnTimerContext ctx, Collector<String> out)
        throws Exception {
      SumCount a = acc.value();
      if (a != null && a.count > 0)
        out.collect(Rows.line(ctx.getCurrentKey(), a.sum / a.count));
      acc.clear();
    }
  }

  // -- q6: average selling price per seller, last 10 --------------------------------------
  //   SELECT Q.seller, AVG(Q.price) OVER (PARTITION BY Q.seller ORDER BY Q.dateTime
  //     ROWS BETWEEN 10 PRECEDING AND CURRENT ROW) FROM (winning bid per auction) Q
  // (Flink SQL cannot run it, FLINK-19059.) Per seller, the winning bids ordered by (winning
  // bid's dateTime, auction id), each with the average of its price and up to 10 preceding;
  // closing prices come in expiry order, so the list is sorted at the end of input.

  public static class Closing {
    public long dateTime, auction, price;
    public Closing() {}
  }

  static DataStream<String> q6(DataStream<Event> events) {
    return winningBids(events).keyBy(w -> w.seller, Types.LONG)
      .process(new AveragePerSeller()).name("q6");
  }

  static final class AveragePerSeller extends KeyedProcessFunction<Long, WinningBid, String> {
    private transient ListState<Closing> closings;

    @Override public void open(OpenContext ctx) {
      closings = getRuntimeContext().getListState(new ListStateDescriptor<>("closings", Closing.class));
    }

    @Override public void processElement(WinningBid w, Context ctx, Collector<String> out)
        throws Exception {
      Closing c = new Closing();
      c.dateTime = w.dateTime;
      c.auction = w.auction;
      c.price = w.price;
      closings.add(c);
      ctx.timerService().registerEventTimeTimer(Long.MAX_VALUE);
    }

    @Override public void onTimer(long t, OnTimerContext ctx, Collector<String> out)
        throws Exception {
      List<Closing> all = new ArrayList<>();
      for (Closing c : closings.get()) all.add(c);
      closings.clear();
      all.sort(Comparator.<Closing>comparingLong(c -> c.dateTime).thenComparingLong(c -> c.auction));
      long sum = 0;
      for (int i = 0; i < all.size(); ++i) {
        sum += all.get(i).price;
        if (i > 10) sum -= all.get(i - 11).price;
        long n = Math.min(i + 1, 11);
        out.collect(Rows.line(ctx.getCurrentKey(), sum / n));
      }
    }
  }
}
