// Prints Nexmark events as Apache Beam's generator makes them, for tests/nexmark.
//
// Beam's artifact (org.apache.beam:beam-sdks-java-testing-nexmark) is not served by the
// package registry this project can reach, so this program re-implements Beam's generator
// rules (sdks/java/testing/nexmark/.../sources/generator/{Generator,GeneratorConfig}.java
// and model/{Person,Auction,Bid,Strings,Long,Price}Generator.java) with the JDK's real
// java.util.Random, in Beam's draw order, with Beam's defaults. What it checks in the C++
// port is the port of java.util.Random, Math.pow/Math.round and the draw order; it shares
// any misreading of Beam's source with the C++ port (see README.md).
//
// Usage: java NexmarkReference.java > events.tsv
// One line per event, tab-separated: the event number (count so far), then
//   P id name email creditCard city state dateTime extra
//   A id itemName description initialBid reserve dateTime expires seller category extra
//   B auction bidder price dateTime extra
import java.util.Random;

public class NexmarkReference {
  // Beam's defaults (NexmarkConfiguration, GeneratorConfig, NexmarkUtils).
  static final long BASE_TIME = 1436918400000L; // 2015-07-15T00:00:00Z
  static final long FIRST_EVENT_ID = 0;
  static final long FIRST_EVENT_NUMBER = 0;
  static final int EVENT_RATE = 10_000; // firstEventRate = nextEventRate, per second
  static final int NUM_EVENT_GENERATORS = 1;
  static final int OUT_OF_ORDER_GROUP_SIZE = 1;
  static final int NUM_IN_FLIGHT_AUCTIONS = 100;
  static final int NUM_ACTIVE_PEOPLE = 1000;
  static final int HOT_SELLERS_RATIO = 4, HOT_AUCTION_RATIO = 2, HOT_BIDDERS_RATIO = 4;
  static final int AVG_PERSON = 200, AVG_AUCTION = 500, AVG_BID = 100;

  static final long FIRST_ID = 1000; // persons and auctions
  static final long FIRST_CATEGORY = 10;
  static final int P = 1, A = 3, B = 46, T = P + A + B;

  static final String[] STATES = {"AZ", "CA", "ID", "OR", "WA", "WY"};
  static final String[] CITIES = {"Phoenix", "Los Angeles", "San Francisco", "Boise", "Portland",
                                  "Bend", "Redmond", "Seattle", "Kent", "Cheyenne"};
  static final String[] FIRST = {"Peter", "Paul", "Luke", "John", "Saul", "Vicky", "Kate",
                                 "Julie", "Sarah", "Deiter", "Walter"};
  static final String[] LAST = {"Shultz", "Abrams", "Spencer", "White", "Bartels", "Walton",
                                "Smith", "Jones", "Noris"};

  static long delayUs() {
    long perUnit = 1_000_000L;
    return ((perUnit + EVENT_RATE / 2) / EVENT_RATE) * NUM_EVENT_GENERATORS;
  }
  static long timestamp(long eventNumber) { return BASE_TIME + (eventNumber * delayUs()) / 1000L; }
  static long adjusted(long count) {
    long n = FIRST_EVENT_NUMBER + count, g = OUT_OF_ORDER_GROUP_SIZE;
    return (n / g) * g + (n * 953) % g;
  }

  static long boundedLong(Random r, long n) {
    return n < Integer.MAX_VALUE ? r.nextInt((int) n) : Math.abs(r.nextLong() % n);
  }
  static long price(Random r) { return Math.round(Math.pow(10.0, r.nextDouble() * 6.0) * 100.0); }
  static String string(Random r, int maxLength) {
    int len = 3 + r.nextInt(maxLength - 3);
    StringBuilder sb = new StringBuilder();
    for (int i = 0; i < len; ++i)
      sb.append(r.nextInt(13) == 0 ? ' ' : (char) ('a' + r.nextInt(26)));
    return sb.toString().trim();
  }
  static String exactString(Random r, int length) {
    StringBuilder sb = new StringBuilder();
    int rnd = 0, left = 0;
    for (int i = 0; i < length; ++i) {
      if (left == 0) { rnd = r.nextInt(); left = 6; }
      sb.append((char) ('a' + rnd % 26));
      rnd /= 26;
      --left;
    }
    return sb.toString();
  }
  static String extra(Random r, int current, int average) {
    if (current > average) return "";
    int want = average - current;
    int delta = (int) Math.round(want * 0.2);
    int size = want - delta + (delta == 0 ? 0 : r.nextInt(2 * delta));
    return exactString(r, size);
  }
  static long lastPerson(long id) {
    long epoch = id / T, offset = id % T;
    if (offset >= P) offset = P - 1;
    return epoch * P + offset;
  }
  static long lastAuction(long id) {
    long epoch = id / T, offset = id % T;
    if (offset < P) { epoch--; offset = A - 1; }
    else if (offset >= P + A) offset = A - 1;
    else offset -= P;
    return epoch * A + offset;
  }
  static long randomPerson(long id, Random r) {
    long people = lastPerson(id) + 1;
    long active = Math.min(people, NUM_ACTIVE_PEOPLE);
    return people - active + boundedLong(r, active + 10);
  }
  static long randomAuction(long id, Random r) {
    long hi = lastAuction(id);
    long lo = Math.max(hi - NUM_IN_FLIGHT_AUCTIONS, 0);
    return lo + boundedLong(r, hi - lo + 1 + 10);
  }

  static String event(long count) {
    long id = FIRST_EVENT_ID + adjusted(count);
    long ts = timestamp(adjusted(count));
    Random r = new Random(id);
    long rem = id % T;
    StringBuilder out = new StringBuilder();
    out.append(count).append('\t');
    if (rem < P) {
      long pid = lastPerson(id) + FIRST_ID;
      String name = FIRST[r.nextInt(FIRST.length)] + " " + LAST[r.nextInt(LAST.length)];
      String email = string(r, 7) + "@" + string(r, 5) + ".com";
      StringBuilder cc = new StringBuilder();
      for (int i = 0; i < 4; ++i) {
        if (i > 0) cc.append(' ');
        cc.append(String.format("%04d", r.nextInt(10000)));
      }
      String city = CITIES[r.nextInt(CITIES.length)];
      String state = STATES[r.nextInt(STATES.length)];
      int size = 8 + name.length() + email.length() + cc.length() + city.length() + state.length();
      String ex = extra(r, size, AVG_PERSON);
      out.append(String.join("\t", "P", Long.toString(pid), name, email, cc.toString(), city,
                             state, Long.toString(ts), ex));
    } else if (rem < P + A) {
      long aid = lastAuction(id) + FIRST_ID;
      long seller = r.nextInt(HOT_SELLERS_RATIO) > 0 ? (lastPerson(id) / 100) * 100
                                                     : randomPerson(id, r);
      seller += FIRST_ID;
      long category = FIRST_CATEGORY + r.nextInt(5);
      long initialBid = price(r);
      long eventsFor100 = ((long) NUM_IN_FLIGHT_AUCTIONS * T) / A;
      long horizon = timestamp(adjusted(count) + eventsFor100) - ts;
      long expires = ts + 1 + boundedLong(r, Math.max(horizon * 2, 1L));
      String item = string(r, 20);
      String desc = string(r, 100);
      long reserve = initialBid + price(r);
      String ex = extra(r, 8 + item.length() + desc.length() + 40, AVG_AUCTION);
      out.append(String.join("\t", "A", Long.toString(aid), item, desc, Long.toString(initialBid),
                             Long.toString(reserve), Long.toString(ts), Long.toString(expires),
                             Long.toString(seller), Long.toString(category), ex));
    } else {
      long auction = r.nextInt(HOT_AUCTION_RATIO) > 0 ? (lastAuction(id) / 100) * 100
                                                     : randomAuction(id, r);
      auction += FIRST_ID;
      long bidder = r.nextInt(HOT_BIDDERS_RATIO) > 0 ? (lastPerson(id) / 100) * 100 + 1
                                                    : randomPerson(id, r);
      bidder += FIRST_ID;
      long p = price(r);
      String ex = extra(r, 32, AVG_BID);
      out.append(String.join("\t", "B", Long.toString(auction), Long.toString(bidder),
                             Long.toString(p), Long.toString(ts), ex));
    }
    return out.toString();
  }

  public static void main(String[] args) {
    for (long c = 0; c < 200; ++c) System.out.println(event(c));
    long[] far = {1000, 1001, 1002, 1003, 1049, 1050, 123456, 123450, 123451, 9999999, 9999950,
                  9999951, 123456789L, 4000000000L, 4000000051L};
    for (long c : far) System.out.println(event(c));
  }
}
