// Prints Nexmark events as Apache Beam's generator makes them, for tests/nexmark.
//
// The events come from bench/nexmark-flink's Generator, the one JVM implementation of Beam's
// generator rules (the Flink side of bench/nexmark.sh runs the same code), so the C++
// generator, the reference and the Flink benchmark cannot drift apart. What this checks in
// the C++ port, and what it cannot, is in README.md.
//
// Usage (README.md): compile Generator.java alone, then run this file with it on the class path.
// One line per event, tab-separated: the event number (count so far), then
//   P id name email creditCard city state dateTime extra
//   A id itemName description initialBid reserve dateTime expires seller category extra
//   B auction bidder price dateTime extra
import sluice.bench.Generator;

public class NexmarkReference {
  static String event(long count) {
    Generator.Event e = Generator.event(count);
    String fields;
    if (e.person != null) {
      Generator.Person p = e.person;
      fields = String.join("\t", "P", Long.toString(p.id), p.name, p.email, p.creditCard, p.city,
                           p.state, Long.toString(p.dateTime), p.extra);
    } else if (e.auction != null) {
      Generator.Auction a = e.auction;
      fields = String.join("\t", "A", Long.toString(a.id), a.itemName, a.description,
                           Long.toString(a.initialBid), Long.toString(a.reserve),
                           Long.toString(a.dateTime), Long.toString(a.expires),
                           Long.toString(a.seller), Long.toString(a.category), a.extra);
    } else {
      Generator.Bid b = e.bid;
      fields = String.join("\t", "B", Long.toString(b.auction), Long.toString(b.bidder),
                           Long.toString(b.price), Long.toString(b.dateTime), b.extra);
    }
    return count + "\t" + fields;
  }

  public static void main(String[] args) {
    for (long c = 0; c < 200; ++c) System.out.println(event(c));
    long[] far = {1000, 1001, 1002, 1003, 1049, 1050, 123456, 123450, 123451, 9999999, 9999950,
                  9999951, 123456789L, 4000000000L, 4000000051L};
    for (long c : far) System.out.println(event(c));
  }
}
