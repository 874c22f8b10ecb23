// The Nexmark events of samples/nexmark on the JVM: Beam's generator rules with the JDK's
// java.util.Random (the same code as tests/nexmark/reference/NexmarkReference.java, which
// the C++ generator matches field by field). Event number c is a function of c alone, so
// every parallel instance can generate its share (EventNumbers) and all parallelisms see the
// same events with the same times.
package sluice.bench;

import java.util.Random;

public final class Generator {
  private Generator() {}

  static final long BASE_TIME = 1436918400000L; // 2015-07-15T00:00:00Z
  static final int P = 1, A = 3, T = 50;        // per 50 events: 1 person, 3 auctions, 46 bids
  static final String[] STATES = {"AZ", "CA", "ID", "OR", "WA", "WY"};
  static final String[] CITIES = {"Phoenix", "Los Angeles", "San Francisco", "Boise", "Portland",
                                  "Bend", "Redmond", "Seattle", "Kent", "Cheyenne"};
  static final String[] FIRST = {"Peter", "Paul", "Luke", "John", "Saul", "Vicky", "Kate",
                                 "Julie", "Sarah", "Deiter", "Walter"};
  static final String[] LAST = {"Shultz", "Abrams", "Spencer", "White", "Bartels", "Walton",
                                "Smith", "Jones", "Noris"};

  // Flink POJOs (public fields, no-argument constructors): serialized by Flink's
  // PojoSerializer across keyBy, as the nexmark project's own event classes are.
  public static class Bid {
    public long auction, bidder, price, dateTime;
    public String extra;
    public Bid() {}
  }
  public static class Person {
    public long id, dateTime;
    public String name, email, creditCard, city, state, extra;
    public Person() {}
  }
  public static class Auction {
    public long id, initialBid, reserve, dateTime, expires, seller, category;
    public String itemName, description, extra;
    public Auction() {}
  }
  /** One event: exactly one of the three is set. */
  public static class Event {
    public Person person;
    public Auction auction;
    public Bid bid;
    public Event() {}
  }

  /** Event time of event number n: Beam's default timeline, 10 000 events/s. */
  static long timestamp(long n) { return BASE_TIME + (n * 100L) / 1000L; }
  static long boundedLong(Random r, long n) {
    return n < Integer.MAX_VALUE ? r.nextInt((int) n) : Math.abs(r.nextLong() % n);
  }
  static long price(Random r) { return Math.round(Math.pow(10.0, r.nextDouble() * 6.0) * 100.0); }
  static String string(Random r, int max) {
    int len = 3 + r.nextInt(max - 3);
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
    return exactString(r, want - delta + (delta == 0 ? 0 : r.nextInt(2 * delta)));
  }
  static long lastPerson(long id) { return id / T; }
  static long lastAuction(long id) {
    long epoch = id / T, offset = id % T;
    if (offset < P) { epoch--; offset = A - 1; }
    else if (offset >= P + A) offset = A - 1;
    else offset -= P;
    return epoch * A + offset;
  }
  static long randomPerson(long id, Random r) {
    long people = lastPerson(id) + 1;
    long active = Math.min(people, 1000);
    return people - active + boundedLong(r, active + 10);
  }
  static long randomAuction(long id, Random r) {
    long hi = lastAuction(id), lo = Math.max(hi - 100, 0);
    return lo + boundedLong(r, hi - lo + 1 + 10);
  }

  /** The event number `c`: a Person, an Auction or a Bid, as Beam makes it. */
  static Event event(long c) {
    long ts = timestamp(c);
    Random r = new Random(c);
    long rem = c % T;
    Event e = new Event();
    if (rem < P) {
      Person p = new Person();
      p.id = lastPerson(c) + 1000;
      p.name = FIRST[r.nextInt(FIRST.length)] + " " + LAST[r.nextInt(LAST.length)];
      p.email = string(r, 7) + "@" + string(r, 5) + ".com";
      StringBuilder cc = new StringBuilder();
      for (int i = 0; i < 4; ++i) {
        if (i > 0) cc.append(' ');
        cc.append(String.format("%04d", r.nextInt(10000)));
      }
      p.creditCard = cc.toString();
      p.city = CITIES[r.nextInt(CITIES.length)];
      p.state = STATES[r.nextInt(STATES.length)];
      p.extra = extra(r, 8 + p.name.length() + p.email.length() + p.creditCard.length()
                           + p.city.length() + p.state.length(), 200);
      p.dateTime = ts;
      e.person = p;
      return e;
    }
    if (rem < P + A) {
      Auction a = new Auction();
      a.id = lastAuction(c) + 1000;
      a.seller = (r.nextInt(4) > 0 ? (lastPerson(c) / 100) * 100 : randomPerson(c, r)) + 1000;
      a.category = 10 + r.nextInt(5);
      a.initialBid = price(r);
      long horizon = timestamp(c + 1666) - ts;
      a.expires = ts + 1 + boundedLong(r, Math.max(horizon * 2, 1L));
      a.itemName = string(r, 20);
      a.description = string(r, 100);
      a.reserve = a.initialBid + price(r);
      a.extra = extra(r, 8 + a.itemName.length() + a.description.length() + 40, 500);
      a.dateTime = ts;
      e.auction = a;
      return e;
    }
    Bid b = new Bid();
    b.auction = (r.nextInt(2) > 0 ? (lastAuction(c) / 100) * 100 : randomAuction(c, r)) + 1000;
    b.bidder = (r.nextInt(4) > 0 ? (lastPerson(c) / 100) * 100 + 1 : randomPerson(c, r)) + 1000;
    b.price = price(r);
    b.extra = extra(r, 32, 100);
    b.dateTime = ts;
    e.bid = b;
    return e;
  }
}
