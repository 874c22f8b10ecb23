#pragma once
/// Nexmark's event generator, bit for bit Apache Beam's
/// (sdks/java/testing/nexmark/.../sources/generator): the same persons, auctions and bids,
/// with the same ids, strings, prices and timestamps, for the same configuration.
///
/// Every event is a pure function of its event number: Beam seeds a fresh
/// `java.util.Random` with the event's id, so `java_random` below ports that class exactly.
/// CAF-free and engine-free: samples, tests and benchmarks share it.
#include <cstdint>
#include <limits>
#include <string>
#include <variant>
#include <vector>

namespace sluice::nexmark {

/// A port of `java.util.Random` (a 48-bit linear congruential generator), as far as Beam
/// uses it: the same seed gives the same sequence as in Java.
class java_random {
public:
  /// `new Random(seed)`: the seed is scrambled with the multiplier.
  explicit java_random(std::int64_t seed) noexcept
    : seed_((static_cast<std::uint64_t>(seed) ^ multiplier) & mask) {}

  /// `nextInt()`: 32 random bits.
  std::int32_t next_int() noexcept { return next(32); }
  /// `nextInt(bound)`, `bound > 0`: uniform in [0, bound), with Java's power-of-two path
  /// and rejection loop (so the number of draws matches). Inline: most bounds are constants
  /// (13, 26, 10 000), and a constant `%` is a multiply where a variable one is a division.
  std::int32_t next_int(std::int32_t bound) noexcept {
    std::int32_t r = next(31);
    const std::int32_t m = bound - 1;
    if ((bound & m) == 0)
      return static_cast<std::int32_t>((static_cast<std::int64_t>(bound) * r) >> 31);
    // Java loops while `u - r + m` overflows int: draws that would bias the result.
    for (std::int32_t u = r;; u = next(31)) {
      r = u % bound;
      if (static_cast<std::int64_t>(u) - r + m <= std::numeric_limits<std::int32_t>::max())
        return r;
    }
  }
  /// `nextLong()`: two draws, the first shifted up, added with sign extension.
  std::int64_t next_long() noexcept;
  /// `nextDouble()`: 53 random bits in [0, 1).
  double next_double() noexcept;

private:
  static constexpr std::uint64_t multiplier = 0x5DEECE66DULL;
  static constexpr std::uint64_t mask = (std::uint64_t{1} << 48) - 1;

  std::int32_t next(int bits) noexcept {
    seed_ = (seed_ * multiplier + 0xBULL) & mask;
    return static_cast<std::int32_t>(static_cast<std::uint32_t>(seed_ >> (48 - bits)));
  }

  std::uint64_t seed_;
};

/// Java's `Math.round(double)`: the nearest integer, ties toward positive infinity.
std::int64_t java_round(double x) noexcept;

/// A new person (Flink's `person` view): event type 0. Times are epoch milliseconds.
struct person {
  std::int64_t id = 0;
  std::string name;
  std::string email_address;
  std::string credit_card;
  std::string city;
  std::string state;
  std::int64_t date_time = 0;
  std::string extra;

  friend bool operator==(const person&, const person&) = default;
};

/// A new auction: event type 1. Prices are cents.
struct auction {
  std::int64_t id = 0;
  std::string item_name;
  std::string description;
  std::int64_t initial_bid = 0;
  std::int64_t reserve = 0;
  std::int64_t date_time = 0;
  std::int64_t expires = 0;
  std::int64_t seller = 0;
  std::int64_t category = 0;
  std::string extra;

  friend bool operator==(const auction&, const auction&) = default;
};

/// A bid on an auction: event type 2. Beam's bid has no channel or url (nexmark/nexmark's
/// Flink generator adds them); the queries here do not read them.
struct bid {
  std::int64_t auction = 0;
  std::int64_t bidder = 0;
  std::int64_t price = 0;
  std::int64_t date_time = 0;
  std::string extra;

  friend bool operator==(const bid&, const bid&) = default;
};

template <class Inspector>
bool inspect(Inspector& f, person& x) {
  return f.object("person").fields(
    f.field("id", x.id), f.field("name", x.name), f.field("emailAddress", x.email_address),
    f.field("creditCard", x.credit_card), f.field("city", x.city), f.field("state", x.state),
    f.field("dateTime", x.date_time), f.field("extra", x.extra));
}
template <class Inspector>
bool inspect(Inspector& f, auction& x) {
  return f.object("auction").fields(
    f.field("id", x.id), f.field("itemName", x.item_name),
    f.field("description", x.description), f.field("initialBid", x.initial_bid),
    f.field("reserve", x.reserve), f.field("dateTime", x.date_time),
    f.field("expires", x.expires), f.field("seller", x.seller), f.field("category", x.category),
    f.field("extra", x.extra));
}
template <class Inspector>
bool inspect(Inspector& f, bid& x) {
  return f.object("bid").fields(f.field("auction", x.auction), f.field("bidder", x.bidder),
                                f.field("price", x.price), f.field("dateTime", x.date_time),
                                f.field("extra", x.extra));
}

/// One generated event: exactly one of a person, an auction or a bid.
struct event {
  std::variant<person, auction, bid> value;

  const person* as_person() const noexcept { return std::get_if<person>(&value); }
  const auction* as_auction() const noexcept { return std::get_if<auction>(&value); }
  const bid* as_bid() const noexcept { return std::get_if<bid>(&value); }
  /// The event's time (its dateTime), epoch milliseconds.
  std::int64_t date_time() const noexcept {
    return std::visit([](const auto& v) { return v.date_time; }, value);
  }

  friend bool operator==(const event&, const event&) = default;
};

/// Beam's `GeneratorConfig` at Beam's defaults (NexmarkConfiguration), with a constant
/// event rate (`firstEventRate == nextEventRate`, so Beam's rate shape plays no part).
struct generator_config {
  /// Time of event number 0, epoch ms: 2015-07-15T00:00:00Z (Beam's BASE_TIME).
  std::int64_t base_time_ms = 1'436'918'400'000;
  /// Added to every event's (adjusted) number to give its id, the seed of its values.
  std::int64_t first_event_id = 0;
  /// Events this generator yields; must be positive.
  std::int64_t max_events = 100'000;
  /// Number of this generator's first event on the timeline.
  std::int64_t first_event_number = 0;
  /// Events per second of event time (Beam's firstEventRate = nextEventRate, 10 000).
  std::int64_t events_per_second = 10'000;
  /// Generators sharing the rate, each on its own timeline (Beam's numEventGenerators):
  /// multiplies the inter-event delay. 1 keeps one timeline over all events.
  std::int64_t num_event_generators = 1;
  /// Events are shuffled within groups of this many (1: in order).
  std::int64_t out_of_order_group_size = 1;
  std::int64_t num_in_flight_auctions = 100;
  std::int64_t num_active_people = 1000;
  std::int64_t hot_sellers_ratio = 4;
  std::int64_t hot_auction_ratio = 2;
  std::int64_t hot_bidders_ratio = 4;
  std::int64_t avg_person_byte_size = 200;
  std::int64_t avg_auction_byte_size = 500;
  std::int64_t avg_bid_byte_size = 100;

  /// Microseconds of event time between two events of one generator (Beam's
  /// `rateToPeriodUs(rate) * numEventGenerators`, rounded as Beam rounds it).
  std::int64_t inter_event_delay_us() const noexcept {
    return (1'000'000 + events_per_second / 2) / events_per_second * num_event_generators;
  }
  /// Event time (epoch ms) of event number `n` on this timeline.
  std::int64_t timestamp_of(std::int64_t n) const noexcept {
    return base_time_ms + n * inter_event_delay_us() / 1000;
  }
  /// The number of the event a generator yields after `count` events, shuffled by
  /// `out_of_order_group_size` (Beam's nextAdjustedEventNumber).
  std::int64_t adjusted_event_number(std::int64_t count) const noexcept {
    const auto n = first_event_number + count;
    const auto g = out_of_order_group_size;
    return n / g * g + n * 953 % g;
  }
  /// The number whose time is a watermark after `count` events (Beam's
  /// nextEventNumberForWatermark).
  std::int64_t watermark_event_number(std::int64_t count) const noexcept {
    const auto n = first_event_number + count;
    return n / out_of_order_group_size * out_of_order_group_size;
  }

  /// Splits the events into `n` generators of consecutive ranges, sized as Beam's
  /// `GeneratorConfig.split` sizes them (`max_events / n` each, the last takes the rest),
  /// but on one serial timeline as Beam's `Generator.splitAtEventId` keeps them: each range
  /// starts at its own event number, so generator i yields exactly the events a single
  /// generator yields at those numbers, and any `n` gives the same events. (Beam's `split`
  /// itself restarts every range at the same event number on a parallel timeline, so its
  /// events depend on `n`.) Ranges may be empty when `n > max_events`.
  std::vector<generator_config> split(std::int64_t n) const;

  /// An error message for a configuration the generator cannot honour; empty when valid.
  std::string validate() const;
};

/// An event with its times, as Beam's `Generator.NextEvent` (without the wall-clock time).
struct next_event {
  std::int64_t event_timestamp = 0; ///< the event's dateTime, epoch ms
  std::int64_t watermark = 0;       ///< no later event of this generator is earlier, epoch ms
  event value;
};

/// Beam's `Generator`: yields `config.max_events` events, one at a time.
class generator {
public:
  /// Resumes after `events_so_far` events (0: from the start); `config` must be valid.
  explicit generator(generator_config config, std::int64_t events_so_far = 0) noexcept
    : config_(config), count_(events_so_far) {}

  bool has_next() const noexcept { return count_ < config_.max_events; }
  /// The next event; `has_next()` must hold.
  next_event next();
  /// Events yielded so far: with the configuration, the whole state of the generator.
  std::int64_t events_so_far() const noexcept { return count_; }
  /// The id of the next event.
  std::int64_t next_event_id() const noexcept {
    return config_.first_event_id + config_.adjusted_event_number(count_);
  }
  const generator_config& config() const noexcept { return config_; }

private:
  generator_config config_;
  std::int64_t count_ = 0;
};

/// The event a generator with `config` yields after `count` events.
event make_event(const generator_config& config, std::int64_t count);

/// Beam's id arithmetic, exposed for queries and tests. Proportions are 1 person, 3
/// auctions and 46 bids in every 50 events.
inline constexpr std::int64_t first_person_id = 1000;
inline constexpr std::int64_t first_auction_id = 1000;
inline constexpr std::int64_t first_category_id = 10;
/// The last person id (base 0) at event id `id`.
std::int64_t last_base0_person_id(std::int64_t id) noexcept;
/// The last auction id (base 0) at event id `id`.
std::int64_t last_base0_auction_id(std::int64_t id) noexcept;

} // namespace sluice::nexmark
