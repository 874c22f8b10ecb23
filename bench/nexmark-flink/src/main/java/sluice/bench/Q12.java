// q12, processing-time windows (samples/nexmark/queries/q12.cpp): bids per bidder per 10 s
// tumbling window of the wall clock (PROCTIME()), aligned to the epoch.
//   SELECT bidder, count(*) AS bid_count, window_start AS starttime, window_end AS endtime
//   FROM TABLE(TUMBLE(TABLE B, DESCRIPTOR(p_time), INTERVAL '10' SECOND))
//   GROUP BY bidder, window_start, window_end
// As in the Sluice version, a keyed process function with processing-time timers, and an
// event-time timer at the maximal watermark that flushes the open windows at the end of
// input (Flink does not fire pending processing-time timers there), so every bid is counted
// exactly once. The rows depend on timing: only their number (and the bids they count) can
// be compared with another run, not the checksum.
package sluice.bench;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.apache.flink.api.common.functions.OpenContext;
import org.apache.flink.api.common.state.MapState;
import org.apache.flink.api.common.state.MapStateDescriptor;
import org.apache.flink.api.common.typeinfo.Types;
import org.apache.flink.streaming.api.TimeDomain;
import org.apache.flink.streaming.api.datastream.DataStream;
import org.apache.flink.streaming.api.functions.KeyedProcessFunction;
import org.apache.flink.util.Collector;
import sluice.bench.Generator.Bid;
import sluice.bench.Generator.Event;

final class Q12 {
  private Q12() {}

  static final long SIZE_MS = 10_000;

  static DataStream<String> query(DataStream<Event> events) {
    return Windowed.bids(events)
      .keyBy(b -> b.bidder, Types.LONG)
      .process(new ProcessingTimeWindows())
      .name("q12");
  }

  static final class ProcessingTimeWindows extends KeyedProcessFunction<Long, Bid, String> {
    private transient MapState<Long, Long> counts; // window start -> bids

    @Override public void open(OpenContext ctx) {
      counts = getRuntimeContext().getMapState(
        new MapStateDescriptor<>("counts", Types.LONG, Types.LONG));
    }

    @Override public void processElement(Bid b, Context ctx, Collector<String> out)
        throws Exception {
      long now = ctx.timerService().currentProcessingTime();
      long start = now - Math.floorMod(now, SIZE_MS);
      Long n = counts.get(start);
      counts.put(start, n == null ? 1 : n + 1);
      ctx.timerService().registerProcessingTimeTimer(start + SIZE_MS);
      ctx.timerService().registerEventTimeTimer(Long.MAX_VALUE); // the end of input
    }

    @Override public void onTimer(long t, OnTimerContext ctx, Collector<String> out)
        throws Exception {
      // A processing-time timer closes the windows that end by t; the end of input all.
      boolean all = ctx.timeDomain() == TimeDomain.EVENT_TIME;
      List<Long> done = new ArrayList<>();
      for (Map.Entry<Long, Long> e : counts.entries()) {
        long s = e.getKey();
        if (!all && s + SIZE_MS > t) continue;
        out.collect(Rows.line(ctx.getCurrentKey(), e.getValue(), s, s + SIZE_MS));
        done.add(s);
      }
      for (Long s : done) counts.remove(s);
    }
  }
}
