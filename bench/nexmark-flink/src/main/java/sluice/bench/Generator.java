// The Nexmark events of samples/nexmark on the JVM: Beam's generator rules with the JDK's
// java.util.Random, Math.pow and Math.round, in Beam's draw order, with Beam's defaults.
// Event number c is a function of c alone, so every parallel instance can generate its share
// (EventNumbers) and all parallelisms see the same events with the same times.
//
// Two programs use this file: the Flink jobs of this module, and
// tests/nexmark/reference/NexmarkReference.java, which prints the events that the C++
// generator must match field by field (that folder's README.md says what this proves). So it
// imports nothing but java.util: the reference compiles it alone, without Flink's jars.
//
// Beam's artifact (org.apache.beam:beam-sdks-java-testing-nexmark) is not served by the
// package registry this project can reach, so these are Beam's rules re-implemented from its
// source (sdks/java/testing/nexmark/.../sources/generator/{Generator,GeneratorConfig}.java
// and model/{Person,Auction,Bid,Strings,Long,Price}Generator.java).
package sluice.bench;

import java.util.Random;

public final class Generator {
  private Generator() {}

  // Beam's defaults (NexmarkConfiguration, GeneratorConfig, NexmarkUtils). With the first
  // event id 0 and an out-of-order group of 1, an event's id is its number; with one event
  // generator at 10 000 events/s, consecutive events are 100 us apart. All are compile-time
  // constants, so the formulas below cost what literals would.
  static final long BASE_TIME = 1436918400000L; // 2015-07-15T00:00:00Z
  static final int EVENT_RATE = 10_000;         // firstEventRate = nextEventRate, per second
  static final int NUM_EVENT_GENERATORS = 1;
  static final long DELAY_US = ((1_000_000L + EVENT_RATE / 2) / EVENT_RATE) * NUM_EVENT_GENERATORS;
  static final int NUM_IN_FLIGHT_AUCTIONS = 100;
  static final int NUM_ACTIVE_PEOPLE = 1000;
  static final int HOT_SELLERS_RATIO = 4, HOT_AUCTION_RATIO = 2, HOT_BIDDERS_RATIO = 4;
  static final int AVG_PERSON = 200, AVG_AUCTION = 500, AVG_BID = 100;
  static final long FIRST_ID = 1000; // of persons and auctions
  static final int FIRST_CATEGORY = 10;
  static final int P = 1, A = 3, B = 46, T = P + A + B; // per 50 events: persons, auctions, bids
  /** Events in which NUM_IN_FLIGHT_AUCTIONS auctions start: an auction's expiry horizon. */
  static final long EVENTS_FOR_IN_FLIGHT_AUCTIONS = ((long) NUM_IN_FLIGHT_AUCTIONS * T) / A;

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
  static long timestamp(long n) { return BASE_TIME + (n * DELAY_US) / 1000L; }
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
  // Beam: epoch * P + min(offset, P - 1), which is the epoch when P == 1.
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
    long active = Math.min(people, NUM_ACTIVE_PEOPLE);
    return people - active + boundedLong(r, active + 10);
  }
  static long randomAuction(long id, Random r) {
    long hi = lastAuction(id), lo = Math.max(hi - NUM_IN_FLIGHT_AUCTIONS, 0);
    return lo + boundedLong(r, hi - lo + 1 + 10);
  }

  /** The event number `c`: a Person, an Auction or a Bid, as Beam makes it. */
  public static Event event(long c) {
    long ts = timestamp(c);
    Random r = new Random(c);
    long rem = c % T;
    Event e = new Event();
    if (rem < P) {
      Person p = new Person();
      p.id = lastPerson(c) + FIRST_ID;
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
                           + p.city.length() + p.state.length(), AVG_PERSON);
      p.dateTime = ts;
      e.person = p;
      return e;
    }
    if (rem < P + A) {
      Auction a = new Auction();
      a.id = lastAuction(c) + FIRST_ID;
      a.seller = (r.nextInt(HOT_SELLERS_RATIO) > 0 ? (lastPerson(c) / 100) * 100
                                                   : randomPerson(c, r)) + FIRST_ID;
      a.category = FIRST_CATEGORY + r.nextInt(5);
      a.initialBid = price(r);
      long horizon = timestamp(c + EVENTS_FOR_IN_FLIGHT_AUCTIONS) - ts;
      a.expires = ts + 1 + boundedLong(r, Math.max(horizon * 2, 1L));
      a.itemName = string(r, 20);
      a.description = string(r, 100);
      a.reserve = a.initialBid + price(r);
      a.extra = extra(r, 8 + a.itemName.length() + a.description.length() + 40, AVG_AUCTION);
      a.dateTime = ts;
      e.auction = a;
      return e;
    }
    Bid b = new Bid();
    b.auction = (r.nextInt(HOT_AUCTION_RATIO) > 0 ? (lastAuction(c) / 100) * 100
                                                  : randomAuction(c, r)) + FIRST_ID;
    b.bidder = (r.nextInt(HOT_BIDDERS_RATIO) > 0 ? (lastPerson(c) / 100) * 100 + 1
                                                 : randomPerson(c, r)) + FIRST_ID;
    b.price = price(r);
    b.extra = extra(r, 32, AVG_BID);
    b.dateTime = ts;
    e.bid = b;
    return e;
  }
}
