#include "sluice/samples/fraud_detection/rules.hpp"

#include <fmt/core.h>

#include <algorithm>
#include <cmath>
#include <numbers>

namespace sluice::fraud {

// -- types.hpp ----------------------------------------------------------------------------

std::string_view rule_name(rule_kind r) noexcept {
  switch (r) {
    case rule_kind::small_then_large: return "small-then-large";
    case rule_kind::velocity: return "velocity";
    case rule_kind::impossible_travel: return "impossible-travel";
    case rule_kind::spend_spike: return "spend-spike";
  }
  return "unknown";
}

std::optional<rule_kind> parse_rule(std::string_view name) noexcept {
  for (auto r : all_rules)
    if (rule_name(r) == name)
      return r;
  return std::nullopt;
}

alert make_alert(rule_kind r, const transaction& trigger, std::vector<std::uint64_t> txn_ids,
                 std::string details) {
  alert a;
  a.alert_id = fmt::format("{}-{}", rule_name(r), trigger.txn_id);
  a.rule = std::string{rule_name(r)};
  a.account_id = trigger.account_id;
  a.card_id = trigger.card_id;
  a.txn_ids = std::move(txn_ids);
  a.event_time = trigger.timestamp;
  a.details = std::move(details);
  a.ingested = trigger.ingested;
  return a;
}

double distance_km(double lat1, double lon1, double lat2, double lon2) noexcept {
  constexpr double earth_radius_km = 6371.0088;
  constexpr double rad = std::numbers::pi / 180.0;
  const double dlat = (lat2 - lat1) * rad;
  const double dlon = (lon2 - lon1) * rad;
  const double a = std::sin(dlat / 2) * std::sin(dlat / 2) +
                   std::cos(lat1 * rad) * std::cos(lat2 * rad) * std::sin(dlon / 2) * std::sin(dlon / 2);
  return 2 * earth_radius_km * std::asin(std::min(1.0, std::sqrt(a)));
}

// -- 1. small then large --------------------------------------------------------------------

std::int64_t small_then_large::now(const transaction& t, rule_context& ctx) const {
  if (options.time == time_mode::processing)
    return ctx.timers().current_processing_time().time_since_epoch().count();
  return t.timestamp.time_since_epoch().count();
}

std::int64_t small_then_large::within_ticks() const {
  if (options.time == time_mode::processing)
    return std::chrono::duration_cast<clock::time_point::duration>(options.within).count();
  return std::chrono::duration_cast<std::chrono::microseconds>(options.within).count();
}

void small_then_large::set_timer(rule_context& ctx, std::int64_t at) {
  if (options.time == time_mode::processing)
    ctx.timers().register_processing_time(clock::time_point{clock::time_point::duration{at}});
  else
    ctx.timers().register_event_time(sluice::event_time{std::chrono::microseconds{at}});
}

void small_then_large::delete_timer(rule_context& ctx, std::int64_t at) {
  if (options.time == time_mode::processing)
    ctx.timers().delete_processing_time(clock::time_point{clock::time_point::duration{at}});
  else
    ctx.timers().delete_event_time(sluice::event_time{std::chrono::microseconds{at}});
}

void small_then_large::on_element(const transaction& t, rule_context& ctx, collector<alert>& out) {
  auto s = ctx.state(small);
  const auto at = now(t, ctx);
  if (auto armed_by = s.value()) {
    // Whatever this transaction is, it ends the pattern the small one started.
    const auto elapsed = at - armed_by->at;
    if (t.amount > options.large_above && elapsed >= 0 && elapsed < within_ticks()) {
      const double seconds = options.time == time_mode::processing
                               ? std::chrono::duration<double>(clock::time_point::duration{elapsed}).count()
                               : static_cast<double>(elapsed) / 1e6;
      out.collect(make_alert(rule_kind::small_then_large, t, {armed_by->txn_id, t.txn_id},
                             fmt::format("{:.2f} then {:.2f} within {:.3f} s ({} time)",
                                         armed_by->amount, t.amount, seconds,
                                         options.time == time_mode::processing ? "processing"
                                                                                : "event")));
    }
    delete_timer(ctx, armed_by->timer);
    s.clear();
  }
  if (t.amount < options.small_below) {
    const auto timer = at + within_ticks();
    set_timer(ctx, timer);
    s.update(armed{t.txn_id, t.amount, at, timer});
  }
}

void small_then_large::on_timer(clock::time_point at, rule_context& ctx, collector<alert>&) {
  auto s = ctx.state(small);
  if (auto a = s.value(); a && a->timer == at.time_since_epoch().count())
    s.clear();
}

void small_then_large::on_timer(sluice::event_time at, rule_context& ctx, collector<alert>&) {
  auto s = ctx.state(small);
  if (auto a = s.value(); a && a->timer == at.time_since_epoch().count())
    s.clear();
}

// -- 2. velocity ----------------------------------------------------------------------------

void velocity::on_element(const transaction& t, rule_context& ctx, collector<alert>& out) {
  auto s = ctx.state(recent);
  auto r = s.value_or({});
  auto& w = r.window;
  const auto later = [](const seen& a, const seen& b) { return a.at < b.at; };
  w.insert(std::upper_bound(w.begin(), w.end(), seen{t.txn_id, t.timestamp}, later),
           seen{t.txn_id, t.timestamp});
  // A transaction still to come is newer than the watermark (or late, and then counted
  // as well as what is left): no window of one can hold these any more.
  const auto span = std::chrono::duration_cast<std::chrono::microseconds>(options.window);
  if (const auto wm = ctx.current_watermark(); wm != min_watermark) {
    const auto cutoff = std::min(w.back().at, wm) - span;
    w.erase(w.begin(), std::find_if(w.begin(), w.end(),
                                    [&](const seen& e) { return e.at > cutoff; }));
  }
  // The window (t - span, t] that ends at this transaction.
  std::vector<std::uint64_t> ids;
  for (const auto& e : w)
    if (e.at > t.timestamp - span && e.at <= t.timestamp)
      ids.push_back(e.txn_id);
  if (ids.size() > options.max_transactions) {
    if (!r.alerting) {
      // The triggering transaction goes last (equal times keep arrival order above).
      std::erase(ids, t.txn_id);
      ids.push_back(t.txn_id);
      const auto n = ids.size();
      out.collect(make_alert(rule_kind::velocity, t, std::move(ids),
                             fmt::format("{} transactions within {} s (limit {})", n,
                                         std::chrono::duration<double>(options.window).count(),
                                         options.max_transactions)));
      r.alerting = true;
    }
  } else {
    r.alerting = false;
  }
  s.update(std::move(r));
}

// -- 3. impossible travel -------------------------------------------------------------------

void impossible_travel::on_element(const transaction& t, rule_context& ctx, collector<alert>& out) {
  auto s = ctx.state(last);
  const auto prev = s.value();
  if (prev) {
    const double km = distance_km(prev->lat, prev->lon, t.lat, t.lon);
    const double hours =
      std::abs(std::chrono::duration<double, std::ratio<3600>>(t.timestamp - prev->at).count());
    if (km > 0 && (hours == 0 || km / hours > options.max_speed_kmh)) {
      const bool in_order = t.timestamp >= prev->at;
      std::vector<std::uint64_t> ids =
        in_order ? std::vector<std::uint64_t>{prev->txn_id, t.txn_id}
                 : std::vector<std::uint64_t>{t.txn_id, prev->txn_id};
      out.collect(make_alert(rule_kind::impossible_travel, t, std::move(ids),
                             hours == 0 ? fmt::format("{:.1f} km at the same time", km)
                                        : fmt::format("{:.1f} km in {:.1f} s: {:.0f} km/h", km,
                                                      hours * 3600, km / hours)));
    }
  }
  if (!prev || t.timestamp >= prev->at)
    s.update(position{t.txn_id, t.lat, t.lon, t.timestamp});
}

// -- 4. spend spike -------------------------------------------------------------------------

void spend_spike::on_element(const transaction& t, rule_context& ctx, collector<alert>& out) {
  auto s = ctx.state(baseline);
  auto p = s.value_or({});
  if (p.count >= options.min_history && t.amount > options.factor * p.mean) {
    out.collect(make_alert(rule_kind::spend_spike, t, {t.txn_id},
                           fmt::format("{:.2f} is {:.1f} x the mean {:.2f} of {} transactions",
                                       t.amount, t.amount / p.mean, p.mean, p.count)));
    return; // a spike stays out of the baseline
  }
  ++p.count;
  p.mean += (t.amount - p.mean) / static_cast<double>(p.count);
  s.update(p);
}

} // namespace sluice::fraud
