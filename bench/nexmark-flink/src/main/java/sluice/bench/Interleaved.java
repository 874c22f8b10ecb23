// A bounded source of the numbers 0 .. n-1 where parallel instance i of p gets i, i + p,
// i + 2p, ...: the share Sluice's sources::generator and samples/nexmark --split interleaved
// give instance i, so all instances advance together in event time and the comparison runs
// the same shares on both engines.
//
// Flink's NumberSequenceSource (env.fromSequence) splits into consecutive ranges and yields
// each range's numbers in order; this source keeps it and only chooses the splits: split i
// is the range [i*m, i*m + count_i) with m = ceil(n / p) and count_i the numbers below n
// that are i modulo p; `number(k)` turns a sequence value k of it into (k mod m)*p + i.
// Timestamps, watermarks (per split, as FLIP-27 sources generate them) and the records come
// from number(k), never from k.
package sluice.bench;

import java.util.ArrayList;
import java.util.List;
import org.apache.flink.api.connector.source.lib.NumberSequenceSource;

public class Interleaved extends NumberSequenceSource {
  private final long n;
  private final int p;
  private final long m;

  public Interleaved(long n, int p) {
    super(0, Math.max(1, stride(n, p) * p) - 1);
    if (n <= 0) throw new IllegalArgumentException("Interleaved: the count must be positive, got " + n);
    if (p <= 0) throw new IllegalArgumentException("Interleaved: the parallelism must be positive, got " + p);
    this.n = n;
    this.p = p;
    this.m = stride(n, p);
  }

  private static long stride(long n, int p) { return p <= 0 ? 1 : (n + p - 1) / p; }

  /** The number a value of this source stands for. */
  public long number(long k) { return (k % m) * p + k / m; }

  @Override
  protected List<NumberSequenceSplit> splitNumberRange(long from, long to, int splits) {
    if (splits != p)
      throw new IllegalStateException("Interleaved: made for " + p
                                      + " parallel instances, but the source runs with " + splits);
    List<NumberSequenceSplit> out = new ArrayList<>();
    for (int i = 0; i < p; ++i) {
      long count = n > i ? (n - i + p - 1) / p : 0;
      if (count > 0)
        out.add(new NumberSequenceSplit(String.valueOf(i + 1), i * m, i * m + count - 1));
    }
    return out;
  }
}
