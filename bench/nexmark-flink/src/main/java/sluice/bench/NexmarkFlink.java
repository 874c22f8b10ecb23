// Nexmark q0-q9, q11-q15, q17 as Flink DataStream jobs, for the side-by-side of bench/nexmark.sh
// (docs/nexmark.md, BENCHMARKS.md "Nexmark (issue 26)").
//
// The events are those of samples/nexmark (Generator: Beam's rules with java.util.Random).
// Instance i of p generates the events i, i + p, ... (Interleaved, as the sample's --split
// interleaved); event time is the event's dateTime and the watermark the nexmark project's
// DDL, dateTime - 4 s (WatermarkStrategy.forBoundedOutOfOrderness, per source split). The
// queries (Stateless, Q3, ClosingPrices, Windowed, Q12) compute the sample's rows; Rows
// counts them and sums their XXH64 hashes as the sample does, so equal row counts and
// checksums prove equal answers (q12's rows depend on the wall clock: count only).
// Local mini-cluster, heap state, no checkpoints, object reuse on (as the nexmark project's
// Flink configuration); the rows are discarded after counting.
//
//   java -cp CLASSES:$(cat cp.txt) sluice.bench.NexmarkFlink QUERY EVENTS PARALLELISM
package sluice.bench;

import java.lang.management.ManagementFactory;
import java.time.Duration;
import org.apache.flink.api.common.JobExecutionResult;
import org.apache.flink.api.common.eventtime.WatermarkStrategy;
import org.apache.flink.api.common.functions.MapFunction;
import org.apache.flink.core.execution.JobClient;
import org.apache.flink.core.execution.JobListener;
import org.apache.flink.streaming.api.datastream.DataStream;
import org.apache.flink.streaming.api.environment.StreamExecutionEnvironment;
import org.apache.flink.streaming.api.functions.sink.v2.DiscardingSink;
import sluice.bench.Generator.Event;

public class NexmarkFlink {
  /** Number k of the source -> the event it stands for. */
  static final class Generate implements MapFunction<Long, Event> {
    private final Interleaved numbers;
    Generate(Interleaved numbers) { this.numbers = numbers; }
    @Override public Event map(Long k) { return Generator.event(numbers.number(k)); }
  }

  static DataStream<String> query(int q, DataStream<Event> events) {
    switch (q) {
      case 0: case 1: case 2: case 13: case 14: return Stateless.query(q, events);
      case 3: return Q3.query(events);
      case 4: return ClosingPrices.q4(events);
      case 5: return Windowed.q5(events);
      case 6: return ClosingPrices.q6(events);
      case 7: return Windowed.q7(events);
      case 8: return Windowed.q8(events);
      case 9: return ClosingPrices.q9(events);
      case 11: return Windowed.q11(events);
      case 12: return Q12.query(events);
      case 15: return Daily.q15(events);
      case 17: return Daily.q17(events);
      default: throw new IllegalArgumentException("unknown query " + q + ": 0-9, 11-15 or 17");
    }
  }

  static long parse(String what, String s, long min) {
    long v;
    try {
      v = Long.parseLong(s);
    } catch (NumberFormatException e) {
      throw new IllegalArgumentException(what + ": not a number: " + s);
    }
    if (v < min) throw new IllegalArgumentException(what + ": must be at least " + min + ", got " + v);
    return v;
  }

  public static void main(String[] args) throws Exception {
    if (args.length != 3) {
      System.err.println("usage: NexmarkFlink QUERY EVENTS PARALLELISM");
      System.exit(2);
    }
    int q;
    long n;
    int parallelism;
    try {
      q = (int) parse("QUERY", args[0], 0);
      n = parse("EVENTS", args[1], 1);
      parallelism = (int) parse("PARALLELISM", args[2], 1);
    } catch (IllegalArgumentException e) {
      System.err.println("NexmarkFlink: " + e.getMessage());
      System.exit(2);
      return;
    }
    StreamExecutionEnvironment env = StreamExecutionEnvironment.getExecutionEnvironment();
    env.setParallelism(parallelism);
    env.getConfig().enableObjectReuse();
    Interleaved numbers = new Interleaved(n, parallelism);
    WatermarkStrategy<Long> watermarks = WatermarkStrategy
      .<Long>forBoundedOutOfOrderness(Duration.ofSeconds(4))
      .withTimestampAssigner((k, previous) -> Generator.timestamp(numbers.number(k)));
    DataStream<Event> events = env.fromSource(numbers, watermarks, "nexmark")
      .map(new Generate(numbers)).name("events");
    DataStream<String> rows;
    try {
      rows = query(q, events);
    } catch (IllegalArgumentException e) {
      System.err.println("NexmarkFlink: " + e.getMessage());
      System.exit(2);
      return;
    }
    rows.flatMap(new Rows.Checksum()).name("results").sinkTo(new DiscardingSink<>());
    JobCpu cpu = new JobCpu();
    env.registerJobListener(cpu);
    JobExecutionResult r = env.execute("nexmark-q" + q);
    double jobCpu = cpu.seconds();
    double seconds = r.getNetRuntime() / 1000.0;
    long count = r.getAccumulatorResult(Rows.Checksum.ROWS);
    long checksum = r.getAccumulatorResult(Rows.Checksum.CHECKSUM);
    System.out.printf("flink q%d: %d events in %.3f s: %.0f events/s, %d result rows, checksum %016x, "
                      + "job CPU %.2f s%n", q, n, seconds, n / seconds, count, checksum, jobCpu);
  }

  /**
   * The JVM's CPU time from the job's submission to now: the job's own work with the JIT and
   * GC threads it keeps busy, without the JVM's start and the mini-cluster's (which the
   * process's CPU time, measured outside, includes).
   */
  static final class JobCpu implements JobListener {
    private volatile long atSubmit = -1;
    static long processCpuNanos() {
      return ((com.sun.management.OperatingSystemMXBean) ManagementFactory.getOperatingSystemMXBean())
        .getProcessCpuTime();
    }
    @Override public void onJobSubmitted(JobClient client, Throwable failure) { atSubmit = processCpuNanos(); }
    @Override public void onJobExecuted(JobExecutionResult result, Throwable failure) {}
    double seconds() { return atSubmit < 0 ? Double.NaN : (processCpuNanos() - atSubmit) / 1e9; }
  }
}
