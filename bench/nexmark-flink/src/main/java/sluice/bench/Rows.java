// The result rows of a query, as samples/nexmark makes and counts them: one CSV line per
// row (samples/nexmark/queries.hpp, csv::line: integers in decimal, text quoted only when
// it holds a comma, a quote or a line break), and at the end the number of rows and an
// order-independent checksum, the sum modulo 2^64 of every row's XXH64 (seed 0) over its
// bytes, exactly the sample's (samples/nexmark/main.cpp). Equal counts and checksums on both
// engines mean equal multisets of rows, up to a 64-bit hash collision.
package sluice.bench;

import java.nio.charset.StandardCharsets;
import net.jpountz.xxhash.XXHash64;
import net.jpountz.xxhash.XXHashFactory;
import org.apache.flink.api.common.accumulators.LongCounter;
import org.apache.flink.api.common.functions.OpenContext;
import org.apache.flink.api.common.functions.RichFlatMapFunction;
import org.apache.flink.util.Collector;

public final class Rows {
  private Rows() {}

  /** The CSV line of the fields, comma-separated. */
  public static String line(Object... fields) {
    StringBuilder sb = new StringBuilder();
    for (int i = 0; i < fields.length; ++i) {
      if (i > 0) sb.append(',');
      Object f = fields[i];
      if (f instanceof String) text(sb, (String) f);
      else sb.append(f);
    }
    return sb.toString();
  }

  static void text(StringBuilder sb, String s) {
    boolean quote = false;
    for (int i = 0; i < s.length() && !quote; ++i) {
      char c = s.charAt(i);
      quote = c == ',' || c == '"' || c == '\r' || c == '\n';
    }
    if (!quote) {
      sb.append(s);
      return;
    }
    sb.append('"');
    for (int i = 0; i < s.length(); ++i) {
      char c = s.charAt(i);
      if (c == '"') sb.append('"');
      sb.append(c);
    }
    sb.append('"');
  }

  /** Counts the rows and sums their hashes into the job's accumulators; emits nothing. */
  public static class Checksum extends RichFlatMapFunction<String, String> {
    public static final String ROWS = "rows", CHECKSUM = "checksum";
    private final LongCounter rows = new LongCounter();
    private final LongCounter checksum = new LongCounter(); // long addition wraps: mod 2^64
    private transient XXHash64 xxh64;

    @Override public void open(OpenContext ctx) {
      getRuntimeContext().addAccumulator(ROWS, rows);
      getRuntimeContext().addAccumulator(CHECKSUM, checksum);
      xxh64 = XXHashFactory.fastestJavaInstance().hash64();
    }

    @Override public void flatMap(String row, Collector<String> out) {
      byte[] bytes = row.getBytes(StandardCharsets.UTF_8);
      rows.add(1L);
      checksum.add(xxh64.hash(bytes, 0, bytes.length, 0L));
    }
  }
}
