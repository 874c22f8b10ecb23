// W2 and W4 of sluice_bench (bench/workload.hpp, bench/sluice_bench.cpp,
// bench/window_bench.hpp) as Flink DataStream jobs, for bench/keyed_flink.sh (issue 28's
// "Sluice >= 10x Flink").
//
// Record i = {key, value, ts}: h = splitmix64(i), key = (h >>> 32) % 1000,
// value = h & 0xFFFFF, ts = i (µs in Sluice). Instance i of p generates records i, i + p, ...
// as Sluice's generator source does (Interleaved).
//   w2: keyBy(key) -> running count and sum per key (value state, every update emitted) ->
//       a sink that counts the updates and sums their running counts (sluice_bench's
//       count/sum: 10M records give count 10 000 000, sum 50 010 229 422).
//   w4: monotonous watermarks (max ts - 1) -> keyBy(key) -> tumbling event-time windows ->
//       count -> a sink that counts the windows and sums their counts. Flink's time unit is
//       the millisecond; ts stays i and the window sizes are given in the same unit, so
//       "1s" is a window of 1 000 000 and "10ms" of 10 000: the windows, and so the results,
//       are Sluice's.
// Parallelism 2 by default, object reuse on, heap state, no checkpoints, a local
// mini-cluster per run; records/s = records / the job's net runtime.
//
//   java -cp CLASSES:$(cat cp.txt) sluice.bench.KeyedFlink w2|w4 [--records N]
//       [--parallelism P] [--window 1s|10ms|500us] [--runs R]
// With --runs R the job runs R times in this JVM (the first ones warm the JIT); every run
// prints a line, the last one is the result line "flink wN: ... records/s ...".
package sluice.bench;

import java.time.Duration;
import org.apache.flink.api.common.JobExecutionResult;
import org.apache.flink.api.common.accumulators.LongCounter;
import org.apache.flink.api.common.eventtime.WatermarkStrategy;
import org.apache.flink.api.common.functions.AggregateFunction;
import org.apache.flink.api.common.functions.MapFunction;
import org.apache.flink.api.common.functions.OpenContext;
import org.apache.flink.api.common.functions.RichFlatMapFunction;
import org.apache.flink.api.common.state.ValueState;
import org.apache.flink.api.common.state.ValueStateDescriptor;
import org.apache.flink.api.common.typeinfo.Types;
import org.apache.flink.streaming.api.datastream.DataStream;
import org.apache.flink.streaming.api.environment.StreamExecutionEnvironment;
import org.apache.flink.streaming.api.functions.KeyedProcessFunction;
import org.apache.flink.streaming.api.functions.sink.v2.DiscardingSink;
import org.apache.flink.streaming.api.functions.windowing.ProcessWindowFunction;
import org.apache.flink.streaming.api.windowing.assigners.TumblingEventTimeWindows;
import org.apache.flink.streaming.api.windowing.windows.TimeWindow;
import org.apache.flink.util.Collector;

public class KeyedFlink {
  public static class Record {
    public long key, value, ts;
    public Record() {}
  }
  public static class KeyTotal {
    public long key, count, sum;
    public KeyTotal() {}
  }
  public static class WindowCount {
    public long key, start, end, count;
    public WindowCount() {}
  }

  static long splitmix64(long x) {
    x += 0x9e3779b97f4a7c15L;
    x = (x ^ (x >>> 30)) * 0xbf58476d1ce4e5b9L;
    x = (x ^ (x >>> 27)) * 0x94d049bb133111ebL;
    return x ^ (x >>> 31);
  }

  /** Number k of the source -> record number(k), as bench/workload.hpp's make_record. */
  static final class MakeRecord implements MapFunction<Long, Record> {
    private final Interleaved numbers;
    MakeRecord(Interleaved numbers) { this.numbers = numbers; }
    @Override public Record map(Long k) {
      long i = numbers.number(k);
      long h = splitmix64(i);
      Record r = new Record();
      r.key = (h >>> 32) % 1000;
      r.value = h & 0xFFFFF;
      r.ts = i;
      return r;
    }
  }

  /** W2's operator: running count and sum of the key's values, every update emitted. */
  static final class RunningTotal extends KeyedProcessFunction<Long, Record, KeyTotal> {
    private transient ValueState<KeyTotal> total;
    @Override public void open(OpenContext ctx) {
      total = getRuntimeContext().getState(new ValueStateDescriptor<>("total", KeyTotal.class));
    }
    @Override public void processElement(Record r, Context ctx, Collector<KeyTotal> out)
        throws Exception {
      KeyTotal t = total.value();
      if (t == null) {
        t = new KeyTotal();
        t.key = r.key;
      }
      t.count += 1;
      t.sum += r.value;
      total.update(t);
      out.collect(t);
    }
  }

  static final class CountRecords implements AggregateFunction<Record, Long, Long> {
    @Override public Long createAccumulator() { return 0L; }
    @Override public Long add(Record r, Long acc) { return acc + 1; }
    @Override public Long getResult(Long acc) { return acc; }
    @Override public Long merge(Long a, Long b) { return a + b; }
  }

  static final class WindowResult extends ProcessWindowFunction<Long, WindowCount, Long, TimeWindow> {
    @Override public void process(Long key, Context ctx, Iterable<Long> counts,
                                  Collector<WindowCount> out) {
      WindowCount w = new WindowCount();
      w.key = key;
      w.start = ctx.window().getStart();
      w.end = ctx.window().getEnd();
      w.count = counts.iterator().next();
      out.collect(w);
    }
  }

  /** The counting sink's part: how many results, and the sum of one field of theirs. */
  static final class Totals<T> extends RichFlatMapFunction<T, T> {
    private final LongCounter count = new LongCounter();
    private final LongCounter sum = new LongCounter();
    private final boolean windows;
    Totals(boolean windows) { this.windows = windows; }
    @Override public void open(OpenContext ctx) {
      getRuntimeContext().addAccumulator("count", count);
      getRuntimeContext().addAccumulator("sum", sum);
    }
    @Override public void flatMap(T t, Collector<T> out) {
      count.add(1L);
      sum.add(windows ? ((WindowCount) t).count : ((KeyTotal) t).count);
    }
  }

  /** "1s", "10ms", "500us" -> microseconds, or -1. */
  static long micros(String s) {
    long unit;
    String digits;
    if (s.endsWith("us")) { unit = 1; digits = s.substring(0, s.length() - 2); }
    else if (s.endsWith("ms")) { unit = 1000; digits = s.substring(0, s.length() - 2); }
    else if (s.endsWith("s")) { unit = 1_000_000; digits = s.substring(0, s.length() - 1); }
    else return -1;
    try {
      long v = Long.parseLong(digits);
      return v > 0 ? v * unit : -1;
    } catch (NumberFormatException e) {
      return -1;
    }
  }

  static void usage(String problem) {
    System.err.println("KeyedFlink: " + problem + "\nusage: KeyedFlink w2|w4 [--records N] "
                       + "[--parallelism P] [--window 1s|10ms|500us] [--runs R]");
    System.exit(2);
  }

  public static void main(String[] args) throws Exception {
    if (args.length < 1 || !(args[0].equals("w2") || args[0].equals("w4"))) usage("the workload: w2 or w4");
    String workload = args[0];
    long records = 10_000_000;
    int parallelism = 2, runs = 1;
    String window = "1s";
    for (int i = 1; i < args.length; i += 2) {
      if (i + 1 >= args.length) usage(args[i] + " needs a value");
      try {
        switch (args[i]) {
          case "--records": records = Long.parseLong(args[i + 1]); break;
          case "--parallelism": parallelism = Integer.parseInt(args[i + 1]); break;
          case "--runs": runs = Integer.parseInt(args[i + 1]); break;
          case "--window": window = args[i + 1]; break;
          default: usage("unknown argument " + args[i]);
        }
      } catch (NumberFormatException e) {
        usage(args[i] + ": not a number: " + args[i + 1]);
      }
    }
    if (records <= 0) usage("--records: must be positive, got " + records);
    if (parallelism <= 0) usage("--parallelism: must be positive, got " + parallelism);
    if (runs <= 0) usage("--runs: must be positive, got " + runs);
    long size = micros(window);
    if (workload.equals("w4") && size <= 0) usage("--window must look like 1s, 10ms or 500us, got " + window);

    String title = workload.equals("w2") ? "w2" : "w4 window=" + window;
    for (int run = 1; run <= runs; ++run) {
      StreamExecutionEnvironment env = StreamExecutionEnvironment.getExecutionEnvironment();
      env.setParallelism(parallelism);
      env.getConfig().enableObjectReuse();
      Interleaved numbers = new Interleaved(records, parallelism);
      if (workload.equals("w2")) {
        env.fromSource(numbers, WatermarkStrategy.noWatermarks(), "generator")
          .map(new MakeRecord(numbers)).name("records")
          .keyBy(r -> r.key, Types.LONG)
          .process(new RunningTotal()).name("running-total")
          .flatMap(new Totals<KeyTotal>(false)).name("count-sum")
          .sinkTo(new DiscardingSink<>());
      } else {
        WatermarkStrategy<Long> monotonous = WatermarkStrategy.<Long>forMonotonousTimestamps()
          .withTimestampAssigner((k, previous) -> numbers.number(k));
        env.fromSource(numbers, monotonous, "generator")
          .map(new MakeRecord(numbers)).name("records")
          .keyBy(r -> r.key, Types.LONG)
          .window(TumblingEventTimeWindows.of(Duration.ofMillis(size))) // µs as Flink's unit
          .aggregate(new CountRecords(), new WindowResult()).name("window")
          .flatMap(new Totals<WindowCount>(true)).name("window-totals")
          .sinkTo(new DiscardingSink<>());
      }
      JobExecutionResult r = env.execute("keyed-" + workload);
      double seconds = r.getNetRuntime() / 1000.0;
      long count = r.getAccumulatorResult("count");
      long sum = r.getAccumulatorResult("sum");
      String what = workload.equals("w2") ? "count" : "results";
      System.out.printf("%s %s: records=%d parallelism=%d run %d of %d: %.3f s, %.0f records/s (%s=%d sum=%d)%n",
                        run == runs ? "flink" : "warm-up", title, records, parallelism, run, runs,
                        seconds, records / seconds, what, count, sum);
    }
  }
}
