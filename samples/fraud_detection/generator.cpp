#include "sluice/samples/fraud_detection/generator.hpp"

#include "sluice/sources/generator.hpp" // splitmix64

#include <fmt/core.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <numeric>
#include <numbers>
#include <string_view>

namespace sluice::fraud {

namespace {

struct city {
  std::string_view country;
  double lat, lon;
};

// Homes of the accounts. Every city has another one more than 5,000 km away.
constexpr std::array<city, 16> cities{{
  {"DE", 52.52, 13.405},   // Berlin
  {"FR", 48.857, 2.352},   // Paris
  {"GB", 51.507, -0.128},  // London
  {"ES", 40.417, -3.704},  // Madrid
  {"PL", 52.230, 21.012},  // Warsaw
  {"SE", 59.329, 18.069},  // Stockholm
  {"US", 40.713, -74.006}, // New York
  {"US", 37.775, -122.419},// San Francisco
  {"CA", 43.653, -79.383}, // Toronto
  {"MX", 19.433, -99.133}, // Mexico City
  {"BR", -23.551, -46.633},// Sao Paulo
  {"JP", 35.676, 139.650}, // Tokyo
  {"SG", 1.352, 103.820},  // Singapore
  {"AU", -33.869, 151.209},// Sydney
  {"IN", 19.076, 72.878},  // Mumbai
  {"ZA", -26.204, 28.047}, // Johannesburg
}};

constexpr std::array<std::string_view, 12> merchants{
  "grocer", "coffee-bar", "fuel-station", "bookshop", "pharmacy", "electronics",
  "airline", "hotel", "restaurant", "online-shop", "cinema", "hardware"};

/// Rule-1 large amounts lie in (large_above, large_above * this].
constexpr double large_headroom = 1.04;
/// Fresh cards of episodes: `fresh_card_base + block`.
constexpr std::uint64_t fresh_card_base = 1'000'000'000'000ULL;
/// A background card circles its account's home: radius and period.
constexpr double orbit_km = 2.0;
constexpr double orbit_hours = 1.0;
constexpr double km_per_degree = 6371.0088 * std::numbers::pi / 180.0;

/// Relative weights of the episode kinds (indexed by `episode_kind`).
constexpr std::array<int, episode_kinds> weights{3, 1, 1, 1, 1, 2, 1, 2, 1, 3};

std::uint64_t mix(std::uint64_t seed, std::uint64_t salt, std::uint64_t n) {
  return splitmix64(seed ^ splitmix64(salt * 0x9e3779b97f4a7c15ULL + n));
}

/// A uniform double in [0, 1) from 53 bits of `h`.
double unit(std::uint64_t h) { return static_cast<double>(h >> 11) * 0x1.0p-53; }

/// Cents in [lo, hi] (both in cents) from `h`.
double amount_in(std::uint64_t h, std::int64_t lo, std::int64_t hi) {
  return static_cast<double>(lo + static_cast<std::int64_t>(h % static_cast<std::uint64_t>(hi - lo + 1))) / 100.0;
}

std::int64_t cents_ceil(double v) { return static_cast<std::int64_t>(std::ceil(v * 100.0 - 1e-6)); }
std::int64_t cents_floor(double v) { return static_cast<std::int64_t>(std::floor(v * 100.0 + 1e-6)); }

/// The point `km` away from (lat, lon) on bearing `bearing` (radians).
std::pair<double, double> destination(double lat, double lon, double km, double bearing) {
  constexpr double rad = std::numbers::pi / 180.0;
  const double d = km / 6371.0088;
  const double p1 = lat * rad, l1 = lon * rad;
  const double p2 = std::asin(std::sin(p1) * std::cos(d) + std::cos(p1) * std::sin(d) * std::cos(bearing));
  const double l2 = l1 + std::atan2(std::sin(bearing) * std::sin(d) * std::cos(p1),
                                    std::cos(d) - std::sin(p1) * std::sin(p2));
  double lon2 = l2 / rad;
  while (lon2 > 180) lon2 -= 360;
  while (lon2 < -180) lon2 += 360;
  return {p2 / rad, lon2};
}

struct home {
  std::size_t city;
  double lat, lon;
};

home home_of(std::uint64_t seed, std::uint64_t account) {
  const auto h = mix(seed, 1, account);
  const auto c = static_cast<std::size_t>(h % cities.size());
  const double jlat = (unit(mix(seed, 2, account)) - 0.5) * 0.4;
  const double jlon = (unit(mix(seed, 3, account)) - 0.5) * 0.4;
  return {c, cities[c].lat + jlat, cities[c].lon + jlon};
}

/// Hours of event time from the generator's start.
double hours_since(sluice::event_time start, sluice::event_time t) {
  return std::chrono::duration<double, std::ratio<3600>>(t - start).count();
}

/// The km a teleport must cover to be at least 1.5 times the speed limit over `interval`,
/// plus room for the homes' jitter.
double teleport_km(const generator_rules& r, std::chrono::microseconds interval) {
  const double h = std::chrono::duration<double, std::ratio<3600>>(interval).count();
  return 1.5 * r.impossible_travel.max_speed_kmh * h + 100.0;
}

} // namespace

result<transaction_generator> transaction_generator::make(generator_options o, generator_rules r) {
  transaction_generator g{o, r};
  if (auto ok = g.derive(); !ok)
    return std::move(ok).error();
  return g;
}

transaction_generator::transaction_generator(generator_options o, generator_rules r)
  : o_(o), r_(r) {}

result<void> transaction_generator::derive() {
  auto bad = [](std::string what) {
    return make_error(error_code::invalid_option, "generator: " + std::move(what));
  };
  const auto& stl = r_.small_then_large;
  const auto& vel = r_.velocity;
  const auto& spike = r_.spend_spike;
  if (o_.accounts < 1)
    return bad("accounts must be at least 1");
  if (o_.cards_per_account < 1 || o_.cards_per_account > 9)
    return bad("cards_per_account must be 1 to 9");
  if (!(o_.fraud_share > 0 && o_.fraud_share <= 0.05))
    return bad("fraud_share must be in (0, 0.05]");
  if (o_.interval.count() <= 0)
    return bad("the interval must be positive");
  if (!(stl.small_below >= 0.02) || !(stl.large_above > stl.small_below))
    return bad("small-then-large needs 0.02 <= small_below < large_above");
  if (vel.max_transactions < 2)
    return bad("velocity: max_transactions must be at least 2");
  if (spike.min_history < 3 || !(spike.factor > 1))
    return bad("spend-spike: min_history must be at least 3 and factor above 1");

  cards_ = std::uint64_t{o_.accounts} * o_.cards_per_account;
  double total_weight = 0, total_len = 0;
  for (int k = 0; k < episode_kinds; ++k) {
    total_weight += weights[static_cast<std::size_t>(k)];
    total_len += weights[static_cast<std::size_t>(k)] * length_of(static_cast<episode_kind>(k));
  }
  const double avg_len = total_len / total_weight;
  gap_ = std::max<std::uint64_t>(
    16, static_cast<std::uint64_t>(std::llround(avg_len * (1 - o_.fraud_share) / o_.fraud_share)));

  // Card order and victim order: affine permutations with strides coprime to the size.
  auto coprime_stride = [&](std::uint64_t n, std::uint64_t salt) {
    if (n <= 2)
      return std::uint64_t{1};
    auto s = mix(o_.seed, salt, 0) % n;
    while (s == 0 || std::gcd(s, n) != 1)
      s = (s + 1) % n;
    return s;
  };
  stride_ = coprime_stride(cards_, 10);
  shift_ = mix(o_.seed, 11, 0) % cards_;
  victim_stride_ = coprime_stride(o_.accounts, 12);
  victim_shift_ = mix(o_.seed, 13, 0) % o_.accounts;

  // Velocity: a background card pays once per `cards_` background slots; with one spike
  // added it must stay at or under the limit in any window.
  const auto window_us = std::chrono::duration_cast<std::chrono::microseconds>(vel.window).count();
  const auto card_period_us = static_cast<double>(cards_) * static_cast<double>(o_.interval.count());
  const auto per_window = static_cast<std::uint64_t>(std::ceil(static_cast<double>(window_us) / card_period_us));
  if (per_window + 1 > vel.max_transactions)
    return bad(fmt::format(
      "{} background cards ({} accounts x {} cards) pay every {:.1f} s of event time, up to {} "
      "times per velocity window: more accounts or a longer interval are needed to stay under "
      "the velocity limit of {}",
      cards_, o_.accounts, o_.cards_per_account, card_period_us / 1e6, per_window + 1,
      vel.max_transactions));
  if (static_cast<double>(vel.max_transactions) * static_cast<double>(o_.interval.count()) >=
      static_cast<double>(window_us))
    return bad("a burst of velocity max_transactions + 1 transactions, one interval apart, must "
               "fit in the velocity window: shorten the interval");
  if (r_.small_then_large.time == time_mode::event &&
      o_.interval >= std::chrono::duration_cast<std::chrono::microseconds>(stl.within))
    return bad("small-then-large in event time: the interval must be shorter than `within`");
  // Impossible travel: every home city needs a destination far enough for a teleport.
  const double need_km = teleport_km(r_, o_.interval);
  for (const auto& from : cities) {
    bool found = false;
    for (const auto& to : cities)
      found = found || distance_km(from.lat, from.lon, to.lat, to.lon) >= need_km;
    if (!found)
      return bad(fmt::format("the interval is too long to inject impossible travel at {} km/h",
                             r_.impossible_travel.max_speed_kmh));
  }
  // Spend spike: see the file comment of generator.hpp.
  large_high_ = cents_floor(stl.large_above * large_headroom) / 100.0;
  const double low_share = 2.0 / spike.min_history +
                           2.0 / static_cast<double>(gap_ - o_.cards_per_account + 1);
  if (low_share >= 0.8)
    return bad("spend-spike: min_history is too small for the generator to keep its baseline "
               "clear of small amounts");
  bg_low_ = std::max(cents_ceil(1.1 * large_high_ / (spike.factor * (1 - low_share))),
                     cents_ceil(stl.small_below)) / 100.0;
  bg_high_ = std::min(cents_floor(stl.large_above), cents_floor(4 * bg_low_)) / 100.0;
  if (bg_low_ > bg_high_)
    return bad(fmt::format("spend-spike factor {} is too small: background amounts would have "
                           "to start at {:.2f}, above large_above {:.2f}",
                           spike.factor, bg_low_, stl.large_above));
  spike_low_ = cents_ceil(1.2 * spike.factor * large_high_) / 100.0;
  spike_high_ = cents_floor(1.5 * spike.factor * large_high_) / 100.0;
  spike_min_bg_index_ =
    (spike.min_history + o_.cards_per_account - 1) / o_.cards_per_account * cards_;
  if (2.0 * card_period_us >=
      static_cast<double>(std::chrono::duration_cast<std::chrono::microseconds>(spike.forget_after).count()))
    return bad("spend-spike: accounts pay too rarely for forget_after");
  return {};
}

std::uint32_t transaction_generator::length_of(episode_kind k) const {
  const auto n = r_.velocity.max_transactions;
  switch (k) {
    case episode_kind::small_large: return 2;
    case episode_kind::small_small_large: return 3;
    case episode_kind::small_other_large: return 3;
    case episode_kind::exact_small_large: return 2;
    case episode_kind::small_exact_large: return 2;
    case episode_kind::burst: return n + 1;
    case episode_kind::short_burst: return n;
    case episode_kind::teleport: return 2;
    case episode_kind::fast_but_possible: return 2;
    case episode_kind::spike: return 1;
  }
  return 1;
}

episode_kind transaction_generator::kind_of(std::uint64_t block) const {
  static constexpr int total = [] {
    int t = 0;
    for (int w : weights)
      t += w;
    return t;
  }();
  auto pick = static_cast<int>(mix(o_.seed, 20, block) % total);
  int k = 0;
  while (pick >= weights[static_cast<std::size_t>(k)])
    pick -= weights[static_cast<std::size_t>(k++)];
  auto kind = static_cast<episode_kind>(k);
  // Too early for the victim to have `min_history` transactions: a rule-1 pattern instead.
  if (kind == episode_kind::spike && block * gap_ < spike_min_bg_index_)
    kind = episode_kind::small_large;
  return kind;
}

std::uint64_t transaction_generator::victim_of(std::uint64_t block) const {
  return (block % o_.accounts * victim_stride_ + victim_shift_) % o_.accounts + 1;
}

void transaction_generator::seek_block(std::uint64_t slot, std::uint64_t& block,
                                       std::uint64_t& first) const {
  if (slot < first) {
    block = 0;
    first = 0;
  }
  for (;;) {
    const auto end = first + length_of(kind_of(block)) + gap_;
    if (slot < end)
      return;
    first = end;
    ++block;
  }
}

transaction_generator::block_info transaction_generator::block_at(std::uint64_t slot) const {
  std::uint64_t block = cur_block_, first = cur_first_;
  seek_block(slot, block, first);
  const auto kind = kind_of(block);
  return {block, first, kind, length_of(kind), victim_of(block)};
}

sluice::event_time transaction_generator::time_of(std::uint64_t slot) const {
  return o_.start + o_.interval * static_cast<std::int64_t>(slot);
}

transaction transaction_generator::operator()(std::uint64_t n) {
  seek_block(n, cur_block_, cur_first_);
  const auto kind = kind_of(cur_block_);
  const auto len = length_of(kind);
  const auto offset = n - cur_first_;
  if (offset < len)
    return episode({cur_block_, cur_first_, kind, len, victim_of(cur_block_)},
                   static_cast<std::uint32_t>(offset), n);
  return background(n, cur_block_ * gap_ + (offset - len));
}

transaction transaction_generator::background(std::uint64_t slot, std::uint64_t bg_index) const {
  const auto card = (bg_index % cards_ * stride_ + shift_) % cards_;
  const auto account = card / o_.cards_per_account + 1;
  const auto h = mix(o_.seed, 30, slot);
  transaction t;
  t.txn_id = slot;
  t.account_id = account;
  t.card_id = account * 10 + card % o_.cards_per_account + 1;
  t.amount = amount_in(h, cents_ceil(bg_low_), cents_floor(bg_high_));
  t.merchant = std::string{merchants[(h >> 40) % merchants.size()]};
  t.timestamp = time_of(slot);
  const auto where = home_of(o_.seed, account);
  t.country = std::string{cities[where.city].country};
  // Circling the home: 2*pi*2 km per hour, about 12.6 km/h.
  const double angle = 2 * std::numbers::pi *
                       (hours_since(o_.start, t.timestamp) / orbit_hours + unit(mix(o_.seed, 31, card)));
  t.lat = where.lat + orbit_km * std::sin(angle) / km_per_degree;
  t.lon = where.lon + orbit_km * std::cos(angle) /
                        (km_per_degree * std::cos(where.lat * std::numbers::pi / 180.0));
  return t;
}

transaction transaction_generator::episode(const block_info& b, std::uint32_t j,
                                           std::uint64_t slot) const {
  const auto& stl = r_.small_then_large;
  const auto h = mix(o_.seed, 40, slot);
  const auto where = home_of(o_.seed, b.victim);
  transaction t;
  t.txn_id = slot;
  t.account_id = b.victim;
  t.card_id = fresh_card_base + b.index;
  t.merchant = std::string{merchants[(h >> 40) % merchants.size()]};
  t.country = std::string{cities[where.city].country};
  t.lat = where.lat;
  t.lon = where.lon;
  t.timestamp = time_of(slot);
  const auto small = [&] { return amount_in(h, 1, cents_ceil(stl.small_below) - 1); };
  const auto large = [&] { return amount_in(h, cents_floor(stl.large_above) + 1, cents_floor(large_high_)); };
  const auto mid = [&] { return amount_in(h, cents_ceil(bg_low_), cents_floor(bg_high_)); };
  switch (b.kind) {
    case episode_kind::small_large: t.amount = j == 0 ? small() : large(); break;
    case episode_kind::small_small_large: t.amount = j < 2 ? small() : large(); break;
    case episode_kind::small_other_large: t.amount = j == 0 ? small() : j == 1 ? mid() : large(); break;
    case episode_kind::exact_small_large: t.amount = j == 0 ? stl.small_below : large(); break;
    case episode_kind::small_exact_large: t.amount = j == 0 ? small() : stl.large_above; break;
    case episode_kind::burst:
    case episode_kind::short_burst: t.amount = mid(); break;
    case episode_kind::teleport:
    case episode_kind::fast_but_possible: {
      t.amount = mid();
      if (j == 1) {
        const double bearing = 2 * std::numbers::pi * unit(mix(o_.seed, 41, b.index));
        const double interval_h = std::chrono::duration<double, std::ratio<3600>>(o_.interval).count();
        if (b.kind == episode_kind::fast_but_possible) {
          std::tie(t.lat, t.lon) =
            destination(where.lat, where.lon, 0.5 * r_.impossible_travel.max_speed_kmh * interval_h, bearing);
        } else {
          // A city far enough away, picked by the seed.
          const double need = teleport_km(r_, o_.interval);
          auto c = static_cast<std::size_t>(mix(o_.seed, 42, b.index) % cities.size());
          while (distance_km(where.lat, where.lon, cities[c].lat, cities[c].lon) < need)
            c = (c + 1) % cities.size();
          t.lat = cities[c].lat;
          t.lon = cities[c].lon;
          t.country = std::string{cities[c].country};
        }
      }
      break;
    }
    case episode_kind::spike: {
      // On one of the victim's own cards, where that card is at the time.
      const auto card_no = mix(o_.seed, 43, b.index) % o_.cards_per_account;
      const auto card_index = (b.victim - 1) * o_.cards_per_account + card_no;
      const double angle = 2 * std::numbers::pi *
                           (hours_since(o_.start, t.timestamp) / orbit_hours + unit(mix(o_.seed, 31, card_index)));
      t.card_id = b.victim * 10 + card_no + 1;
      t.lat = where.lat + orbit_km * std::sin(angle) / km_per_degree;
      t.lon = where.lon + orbit_km * std::cos(angle) /
                            (km_per_degree * std::cos(where.lat * std::numbers::pi / 180.0));
      t.amount = amount_in(h, cents_ceil(spike_low_), cents_floor(spike_high_));
      break;
    }
  }
  return t;
}

void transaction_generator::expected_of(const block_info& b, std::vector<expected_alert>& out) const {
  const auto s = b.first_slot;
  switch (b.kind) {
    case episode_kind::small_large: out.push_back({rule_kind::small_then_large, {s, s + 1}}); break;
    case episode_kind::small_small_large: out.push_back({rule_kind::small_then_large, {s + 1, s + 2}}); break;
    case episode_kind::burst: {
      expected_alert e{rule_kind::velocity, {}};
      for (std::uint64_t i = 0; i < b.length; ++i)
        e.txn_ids.push_back(s + i);
      out.push_back(std::move(e));
      break;
    }
    case episode_kind::teleport: out.push_back({rule_kind::impossible_travel, {s, s + 1}}); break;
    case episode_kind::spike: out.push_back({rule_kind::spend_spike, {s}}); break;
    default: break; // near misses raise nothing
  }
}

std::vector<expected_alert> transaction_generator::ground_truth(std::uint64_t first,
                                                                std::uint64_t end) const {
  std::vector<expected_alert> out;
  std::uint64_t block = 0, start = 0;
  while (start < end) {
    const auto kind = kind_of(block);
    const block_info b{block, start, kind, length_of(kind), victim_of(block)};
    const auto trigger = start + b.length - 1; // every pattern ends its episode
    if (trigger >= first && trigger < end)
      expected_of(b, out);
    start += b.length + gap_;
    ++block;
  }
  return out;
}

} // namespace sluice::fraud
