#include "sluice/samples/nexmark/generator.hpp"

#include <algorithm>
#include <array>
#include <cassert>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <string_view>

namespace sluice::nexmark {

std::int64_t java_random::next_long() noexcept {
  const auto hi = static_cast<std::uint64_t>(static_cast<std::int64_t>(next(32))) << 32;
  const auto lo = static_cast<std::uint64_t>(static_cast<std::int64_t>(next(32)));
  return static_cast<std::int64_t>(hi + lo);
}

double java_random::next_double() noexcept {
  const auto hi = static_cast<std::int64_t>(next(26)) << 27;
  return static_cast<double>(hi + next(27)) * 0x1.0p-53;
}

std::int64_t java_round(double x) noexcept {
  // x - floor(x) is exact, so the tie test is too (floor(x + 0.5) would round first).
  const double f = std::floor(x);
  return static_cast<std::int64_t>(x - f >= 0.5 ? f + 1 : f);
}

namespace {

constexpr std::int64_t person_proportion = 1;
constexpr std::int64_t auction_proportion = 3;
constexpr std::int64_t proportion_denominator = 50;
constexpr std::int64_t person_id_lead = 10;
constexpr std::int64_t auction_id_lead = 10;
constexpr std::int64_t hot_ratio = 100; // hot sellers, bidders and auctions: 1 in 100 ids
constexpr std::int64_t num_categories = 5;

constexpr std::array<std::string_view, 6> us_states{"AZ", "CA", "ID", "OR", "WA", "WY"};
constexpr std::array<std::string_view, 10> us_cities{
  "Phoenix", "Los Angeles", "San Francisco", "Boise",   "Portland",
  "Bend",    "Redmond",     "Seattle",       "Kent",    "Cheyenne"};
constexpr std::array<std::string_view, 11> first_names{
  "Peter", "Paul", "Luke", "John", "Saul", "Vicky", "Kate", "Julie", "Sarah", "Deiter", "Walter"};
constexpr std::array<std::string_view, 9> last_names{
  "Shultz", "Abrams", "Spencer", "White", "Bartels", "Walton", "Smith", "Jones", "Noris"};

/// Beam's LongGenerator.nextLong: [0, n), skewed above 2^31 as Beam's is.
std::int64_t bounded_long(java_random& r, std::int64_t n) {
  if (n < std::numeric_limits<std::int32_t>::max())
    return r.next_int(static_cast<std::int32_t>(n));
  return std::llabs(r.next_long() % n);
}

/// Cents, log-uniform between $1 and $1M.
std::int64_t next_price(java_random& r) {
  return java_round(std::pow(10.0, r.next_double() * 6.0) * 100.0);
}

/// 3 to `max_length - 1` letters with about 1 in 13 spaces, trimmed; `max_length` is at
/// most 100 (Beam's longest, a description). Built in a stack buffer: one allocation for
/// the result instead of a push_back per letter.
std::string next_string(java_random& r, std::int32_t max_length) {
  char buf[100];
  const auto len = 3 + r.next_int(max_length - 3);
  assert(len <= static_cast<std::int32_t>(sizeof buf));
  for (std::int32_t i = 0; i < len; ++i)
    buf[i] = r.next_int(13) == 0 ? ' ' : static_cast<char>('a' + r.next_int(26));
  std::int32_t first = 0, last = len;
  while (first < last && buf[first] == ' ')
    ++first;
  while (last > first && buf[last - 1] == ' ')
    --last;
  return std::string(buf + first, static_cast<std::size_t>(last - first));
}

/// The two characters Beam's loop makes of a draw's remainder r by 26 * 26 (-675..675,
/// negative for a negative draw): 'a' + r % 26, then 'a' + r / 26.
constexpr auto letter_pairs = [] {
  std::array<std::array<char, 2>, 2 * 675 + 1> t{};
  for (int r = -675; r <= 675; ++r)
    t[static_cast<std::size_t>(r + 675)] = {static_cast<char>('a' + r % 26),
                                            static_cast<char>('a' + r / 26)};
  return t;
}();

/// Exactly `length` characters, six from each draw. A negative draw gives characters below
/// 'a' ('H' to '`'): C++'s % keeps the sign as Java's does, so the quirk is Beam's too.
std::string next_exact_string(java_random& r, std::int32_t length) {
  std::string s(static_cast<std::size_t>(std::max(length, 0)), '\0');
  char* out = s.data();
  char* const end = out + s.size();
  // Whole draws first, then the rest of the last draw. Beam divides a draw by 26 six times,
  // one character per step; truncating divisions compose, so characters 2k and 2k + 1 come
  // from (rnd / 676^k) % 676 through the table, and the three quotients do not wait for
  // each other.
  const auto put_pair = [](char* at, std::int32_t rem) {
    std::memcpy(at, letter_pairs[static_cast<std::size_t>(rem + 675)].data(), 2);
  };
  for (; end - out >= 6; out += 6) {
    const std::int32_t q0 = r.next_int();
    const std::int32_t q2 = q0 / 676, q4 = q0 / 456'976, q6 = q0 / 308'915'776;
    put_pair(out, q0 - 676 * q2);
    put_pair(out + 2, q2 - 676 * q4);
    put_pair(out + 4, q4 - 676 * q6);
  }
  if (out < end)
    for (std::int32_t rnd = r.next_int(); out < end; ++out, rnd /= 26)
      *out = static_cast<char>('a' + rnd % 26);
  return s;
}

/// Padding that makes records `average` bytes long on average.
std::string next_extra(java_random& r, std::int64_t current, std::int64_t average) {
  if (current > average)
    return {};
  const auto want = static_cast<std::int32_t>(average - current);
  const auto delta = static_cast<std::int32_t>(java_round(want * 0.2));
  const auto size = want - delta + (delta == 0 ? 0 : r.next_int(2 * delta));
  return next_exact_string(r, size);
}

std::int64_t next_base0_person_id(std::int64_t id, java_random& r,
                                  const generator_config& c) {
  const auto people = last_base0_person_id(id) + 1;
  const auto active = std::min(people, c.num_active_people);
  return people - active + bounded_long(r, active + person_id_lead);
}

std::int64_t next_base0_auction_id(std::int64_t id, java_random& r,
                                   const generator_config& c) {
  const auto hi = last_base0_auction_id(id);
  const auto lo = std::max<std::int64_t>(hi - c.num_in_flight_auctions, 0);
  return lo + bounded_long(r, hi - lo + 1 + auction_id_lead);
}

std::int32_t as_bound(std::int64_t ratio) { return static_cast<std::int32_t>(ratio); }

person next_person(std::int64_t id, java_random& r, std::int64_t ts, const generator_config& c) {
  person p;
  p.id = last_base0_person_id(id) + first_person_id;
  p.name = std::string{first_names[static_cast<std::size_t>(r.next_int(first_names.size()))]};
  p.name += ' ';
  p.name += last_names[static_cast<std::size_t>(r.next_int(last_names.size()))];
  // Separate statements: the operands of + are evaluated in no fixed order in C++.
  p.email_address = next_string(r, 7);
  p.email_address += '@';
  p.email_address += next_string(r, 5);
  p.email_address += ".com";
  // Four groups of four digits ("%04d" each), space-separated.
  p.credit_card.assign(19, ' ');
  for (std::size_t group = 0; group < 4; ++group) {
    auto v = r.next_int(10000);
    for (std::size_t k = 4; k-- > 0; v /= 10)
      p.credit_card[group * 5 + k] = static_cast<char>('0' + v % 10);
  }
  p.city = us_cities[static_cast<std::size_t>(r.next_int(us_cities.size()))];
  p.state = us_states[static_cast<std::size_t>(r.next_int(us_states.size()))];
  const auto size = 8 + p.name.size() + p.email_address.size() + p.credit_card.size() +
                    p.city.size() + p.state.size();
  p.extra = next_extra(r, static_cast<std::int64_t>(size), c.avg_person_byte_size);
  p.date_time = ts;
  return p;
}

auction next_auction(std::int64_t count, std::int64_t id, java_random& r, std::int64_t ts,
                     const generator_config& c) {
  auction a;
  a.id = last_base0_auction_id(id) + first_auction_id;
  a.seller = r.next_int(as_bound(c.hot_sellers_ratio)) > 0
               ? last_base0_person_id(id) / hot_ratio * hot_ratio
               : next_base0_person_id(id, r, c);
  a.seller += first_person_id;
  a.category = first_category_id + r.next_int(num_categories);
  a.initial_bid = next_price(r);
  // Auctions last on average as long as it takes to generate num_in_flight_auctions more.
  const auto now = c.adjusted_event_number(count);
  const auto ahead = c.num_in_flight_auctions * proportion_denominator / auction_proportion;
  const auto horizon_ms = c.timestamp_of(now + ahead) - ts;
  a.expires = ts + 1 + bounded_long(r, std::max<std::int64_t>(horizon_ms * 2, 1));
  a.item_name = next_string(r, 20);
  a.description = next_string(r, 100);
  a.reserve = a.initial_bid + next_price(r);
  const auto size = 8 + a.item_name.size() + a.description.size() + 40;
  a.extra = next_extra(r, static_cast<std::int64_t>(size), c.avg_auction_byte_size);
  a.date_time = ts;
  return a;
}

bid next_bid(std::int64_t id, java_random& r, std::int64_t ts, const generator_config& c) {
  bid b;
  b.auction = r.next_int(as_bound(c.hot_auction_ratio)) > 0
                ? last_base0_auction_id(id) / hot_ratio * hot_ratio
                : next_base0_auction_id(id, r, c);
  b.auction += first_auction_id;
  // Hot bidders are the second person of a batch, so they are not the hot sellers.
  b.bidder = r.next_int(as_bound(c.hot_bidders_ratio)) > 0
               ? last_base0_person_id(id) / hot_ratio * hot_ratio + 1
               : next_base0_person_id(id, r, c);
  b.bidder += first_person_id;
  b.price = next_price(r);
  b.extra = next_extra(r, 32, c.avg_bid_byte_size);
  b.date_time = ts;
  return b;
}

} // namespace

std::int64_t last_base0_person_id(std::int64_t id) noexcept {
  const auto epoch = id / proportion_denominator;
  auto offset = id % proportion_denominator;
  if (offset >= person_proportion)
    offset = person_proportion - 1;
  return epoch * person_proportion + offset;
}

std::int64_t last_base0_auction_id(std::int64_t id) noexcept {
  auto epoch = id / proportion_denominator;
  auto offset = id % proportion_denominator;
  if (offset < person_proportion) {
    --epoch; // a person's slot: the last auction of the previous epoch
    offset = auction_proportion - 1;
  } else if (offset >= person_proportion + auction_proportion) {
    offset = auction_proportion - 1; // a bid's slot: the last auction of this epoch
  } else {
    offset -= person_proportion;
  }
  return epoch * auction_proportion + offset;
}

std::vector<generator_config> generator_config::split(std::int64_t n) const {
  std::vector<generator_config> out;
  if (n <= 1) {
    out.push_back(*this);
    return out;
  }
  auto size = max_events / n;
  auto first = first_event_number;
  for (std::int64_t i = 0; i < n; ++i) {
    if (i == n - 1)
      size = max_events - size * (n - 1); // the last takes what rounding down left
    auto c = *this;
    c.first_event_number = first;
    c.max_events = size;
    out.push_back(c);
    first += size;
  }
  return out;
}

std::string generator_config::validate() const {
  if (max_events < 0)
    return "events must not be negative, got " + std::to_string(max_events);
  if (events_per_second <= 0 || events_per_second > 1'000'000)
    return "the event rate must be between 1 and 1000000 events/s (the delay between events "
           "is whole microseconds), got " + std::to_string(events_per_second);
  if (num_event_generators <= 0 || out_of_order_group_size <= 0)
    return "numEventGenerators and outOfOrderGroupSize must be positive";
  if (first_event_id < 0 || first_event_number < 0)
    return "the first event id and number must not be negative";
  // Event ids and timestamps stay far from overflow: ids below 2^53, times within 64 bits.
  const auto last = first_event_number + max_events;
  if (last > (std::int64_t{1} << 53) ||
      last > (std::numeric_limits<std::int64_t>::max() - base_time_ms) / 2 /
               std::max<std::int64_t>(inter_event_delay_us(), 1))
    return "too many events: " + std::to_string(max_events);
  return {};
}

event make_event(const generator_config& c, std::int64_t count) {
  const auto id = c.first_event_id + c.adjusted_event_number(count);
  const auto ts = c.timestamp_of(c.adjusted_event_number(count));
  java_random r{id};
  const auto rem = id % proportion_denominator;
  if (rem < person_proportion)
    return event{next_person(id, r, ts, c)};
  if (rem < person_proportion + auction_proportion)
    return event{next_auction(count, id, r, ts, c)};
  return event{next_bid(id, r, ts, c)};
}

next_event generator::next() {
  next_event e;
  e.event_timestamp = config_.timestamp_of(config_.adjusted_event_number(count_));
  e.watermark = config_.timestamp_of(config_.watermark_event_number(count_));
  e.value = make_event(config_, count_);
  ++count_;
  return e;
}

} // namespace sluice::nexmark
