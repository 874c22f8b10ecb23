// The four fraud rules of samples/fraud_detection, one operator at a time through the
// operator harness: processing time from the harness's manual clock, event time and
// watermarks set explicitly. Each suite walks the edges of one rule.
#define BOOST_TEST_MODULE fraud_rules
#include <boost/test/unit_test.hpp>

#include "sluice/operators/harness.hpp"
#include "sluice/operators/keyed_process.hpp"
#include "sluice/samples/fraud_detection/rules.hpp"
#include "sluice/samples/fraud_detection/walkthrough.hpp"
#include "sluice/tests/engine/test_helpers.hpp"

#include <functional>
#include <memory>
#include <ostream>
#include <vector>

using namespace sluice;
using namespace sluice::fraud;
using namespace sluice::test;

namespace {

using key_fn = std::uint64_t (*)(const transaction&);
std::uint64_t account_of(const transaction& t) { return t.account_id; }
std::uint64_t card_of(const transaction& t) { return t.card_id; }

/// A keyed rule operator in a harness; `op` points at the operator the harness owns.
template <class F>
struct rig {
  using op_t = keyed_process_function_operator<std::uint64_t, transaction, alert, key_fn, F>;
  op_t* op;
  operator_harness h;

  rig(F fn, key_fn key) : rig(std::make_unique<op_t>(key, std::move(fn), timestamps())) {}

  /// Pushes one transaction and returns the alerts it raised.
  std::vector<alert> push(const transaction& t) {
    require_ok(h.push(std::vector<transaction>{t}));
    return h.take<alert>();
  }
  void advance(std::chrono::nanoseconds d) { require_ok(h.advance_processing_time(d)); }
  void watermark(std::chrono::microseconds t) { require_ok(h.watermark(event_time{t})); }

private:
  static std::function<event_time(const transaction&)> timestamps() {
    return [](const transaction& t) { return t.timestamp; };
  }
  explicit rig(std::unique_ptr<op_t> o) : op(o.get()), h(std::move(o)) { require_ok(h.open()); }
};

/// A transaction of `account` (and card `account` unless given) at event time `ts`.
transaction txn(std::uint64_t id, std::uint64_t account, double amount,
                std::chrono::microseconds ts = 0us, std::uint64_t card = 0) {
  transaction t;
  t.txn_id = id;
  t.account_id = account;
  t.card_id = card ? card : account;
  t.amount = amount;
  t.timestamp = event_time{ts};
  return t;
}

/// A card's transaction at a place.
transaction at_place(std::uint64_t id, std::uint64_t card, double lat, double lon,
                     std::chrono::microseconds ts) {
  auto t = txn(id, 1, 10.0, ts, card);
  t.lat = lat;
  t.lon = lon;
  return t;
}

using ids = std::vector<std::uint64_t>;

std::vector<ids> txn_ids_of(const std::vector<alert>& alerts) {
  std::vector<ids> out;
  for (auto& a : alerts)
    out.push_back(a.txn_ids);
  return out;
}

/// Moves the harness's manual clock without delivering the wake-ups it passes (as a busy
/// task would deliver them late). The clock was created non-const by the harness.
void move_clock_without_wakeups(operator_harness& h, std::chrono::nanoseconds d) {
  auto& c = dynamic_cast<const manual_clock&>(*h.info().processing_clock);
  const_cast<manual_clock&>(c).advance(d);
}

constexpr std::chrono::microseconds secs(double s) {
  return std::chrono::microseconds{static_cast<std::int64_t>(s * 1e6)};
}

} // namespace

namespace std {
inline ostream& boost_test_print_type(ostream& os, const vector<uint64_t>& v) {
  os << '[';
  for (size_t i = 0; i < v.size(); ++i)
    os << (i ? "," : "") << v[i];
  return os << ']';
}
} // namespace std

// ---------------------------------------------------------------------------------------------

BOOST_AUTO_TEST_SUITE(small_then_large)

using rule = fraud::small_then_large;

BOOST_AUTO_TEST_CASE(a_large_one_59_9_s_after_a_small_one_alerts_with_both_ids) {
  rig r{rule{}, account_of};
  BOOST_TEST(r.push(txn(1, 7, 0.99)).empty());
  r.advance(secs(59.9));
  auto alerts = r.push(txn(2, 7, 500.01));
  BOOST_REQUIRE_EQUAL(alerts.size(), 1u);
  const auto& a = alerts.front();
  BOOST_TEST(a.alert_id == "small-then-large-2");
  BOOST_TEST(a.rule == "small-then-large");
  BOOST_TEST(a.account_id == 7u);
  BOOST_TEST(a.txn_ids == (ids{1, 2}));
  BOOST_TEST(a.details.find("0.99 then 500.01") != std::string::npos, a.details);
  BOOST_TEST(r.op->state_size("small-transaction") == 0u, "the pattern is used up");
  BOOST_TEST(r.op->timer_count(time_domain::processing_time) == 0u, "its timer is deleted");
}

BOOST_AUTO_TEST_CASE(a_large_one_61_s_after_does_not_alert_the_timer_cleared_the_state) {
  rig r{rule{}, account_of};
  BOOST_TEST(r.push(txn(1, 7, 0.5)).empty());
  BOOST_TEST(r.op->timer_count(time_domain::processing_time) == 1u);
  r.advance(secs(61));
  BOOST_TEST(r.op->state_size("small-transaction") == 0u, "the timer at +60 s fired");
  BOOST_TEST(r.push(txn(2, 7, 900)).empty());
}

BOOST_AUTO_TEST_CASE(exactly_one_minute_is_too_late_even_before_the_timer_is_delivered) {
  rig r{rule{}, account_of};
  BOOST_TEST(r.push(txn(1, 7, 0.5)).empty());
  r.advance(secs(59.9));
  r.advance(secs(0.1)); // exactly 60 s: the timer fires
  BOOST_TEST(r.op->state_size("small-transaction") == 0u);
  BOOST_TEST(r.push(txn(2, 7, 900)).empty());

  // In a task the wake-up may come late. Move the clock past the timer without delivering
  // it: the elapsed-time check alone must reject the pair.
  rig late{rule{}, account_of};
  BOOST_TEST(late.push(txn(1, 7, 0.5)).empty());
  move_clock_without_wakeups(late.h, secs(60));
  BOOST_TEST(late.op->state_size("small-transaction") == 1u, "no timer was delivered");
  BOOST_TEST(late.push(txn(2, 7, 900)).empty());
  BOOST_TEST(late.op->state_size("small-transaction") == 0u);
}

BOOST_AUTO_TEST_CASE(exactly_1_00_does_not_arm_and_just_below_does) {
  rig r{rule{}, account_of};
  BOOST_TEST(r.push(txn(1, 7, 1.00)).empty());
  BOOST_TEST(r.op->state_size("small-transaction") == 0u);
  BOOST_TEST(r.push(txn(2, 7, 800)).empty());
  BOOST_TEST(r.push(txn(3, 7, 0.999)).empty());
  BOOST_TEST(txn_ids_of(r.push(txn(4, 7, 800))) == (std::vector<ids>{{3, 4}}));
}

BOOST_AUTO_TEST_CASE(exactly_500_00_does_not_count_and_ends_the_pattern) {
  rig r{rule{}, account_of};
  BOOST_TEST(r.push(txn(1, 7, 0.5)).empty());
  BOOST_TEST(r.push(txn(2, 7, 500.00)).empty());
  BOOST_TEST(r.push(txn(3, 7, 500.01)).empty(), "500.00 came in between");
  BOOST_TEST(r.push(txn(4, 7, 0.5)).empty());
  BOOST_TEST(txn_ids_of(r.push(txn(5, 7, 500.01))) == (std::vector<ids>{{4, 5}}));
}

BOOST_AUTO_TEST_CASE(an_intervening_transaction_breaks_the_pattern) {
  rig r{rule{}, account_of};
  BOOST_TEST(r.push(txn(1, 7, 0.5)).empty());
  r.advance(1s);
  BOOST_TEST(r.push(txn(2, 7, 42)).empty());
  r.advance(1s);
  BOOST_TEST(r.push(txn(3, 7, 600)).empty());
  BOOST_TEST(r.op->state_size("small-transaction") == 0u);
  BOOST_TEST(r.op->timer_count(time_domain::processing_time) == 0u,
             "the broken pattern's timer is deleted");
}

BOOST_AUTO_TEST_CASE(other_accounts_neither_break_nor_complete_the_pattern) {
  rig r{rule{}, account_of};
  BOOST_TEST(r.push(txn(1, 7, 0.5)).empty());
  BOOST_TEST(r.push(txn(2, 8, 42)).empty());
  BOOST_TEST(r.push(txn(3, 8, 600)).empty(), "account 8 had no small transaction");
  auto alerts = r.push(txn(4, 7, 600));
  BOOST_TEST(txn_ids_of(alerts) == (std::vector<ids>{{1, 4}}));
}

BOOST_AUTO_TEST_CASE(a_second_small_one_re_arms_the_timer) {
  rig r{rule{}, account_of};
  BOOST_TEST(r.push(txn(1, 7, 0.5)).empty());
  r.advance(40s);
  BOOST_TEST(r.push(txn(2, 7, 0.25)).empty());
  BOOST_TEST(r.op->timer_count(time_domain::processing_time) == 1u, "the first timer is gone");
  r.advance(30s); // 70 s after the first small one, 30 s after the second
  BOOST_TEST(r.op->state_size("small-transaction") == 1u, "the old timer did not clear it");
  auto alerts = r.push(txn(3, 7, 777));
  BOOST_TEST(txn_ids_of(alerts) == (std::vector<ids>{{2, 3}}), "the latest small one counts");

  // And the re-armed timer is at +60 s from the second small one.
  BOOST_TEST(r.push(txn(4, 7, 0.5)).empty());
  r.advance(40s);
  BOOST_TEST(r.push(txn(5, 7, 0.5)).empty());
  r.advance(secs(60.5));
  BOOST_TEST(r.op->state_size("small-transaction") == 0u);
  BOOST_TEST(r.push(txn(6, 7, 777)).empty());
}

BOOST_AUTO_TEST_CASE(event_time_mode_measures_the_transactions_timestamps) {
  rig r{rule{{.time = time_mode::event}}, account_of};
  BOOST_TEST(r.push(txn(1, 7, 0.5, secs(100))).empty());
  r.advance(10min); // processing time does not matter
  BOOST_TEST(txn_ids_of(r.push(txn(2, 7, 600, secs(159.9)))) == (std::vector<ids>{{1, 2}}));

  BOOST_TEST(r.push(txn(3, 7, 0.5, secs(200))).empty());
  BOOST_TEST(r.push(txn(4, 7, 600, secs(261))).empty(), "61 s of event time");

  BOOST_TEST(r.push(txn(5, 7, 0.5, secs(300))).empty());
  BOOST_TEST(r.push(txn(6, 7, 600, secs(299))).empty(), "older than the small one");

  // The event-time timer clears a dangling small one when the watermark passes +60 s.
  BOOST_TEST(r.push(txn(7, 7, 0.5, secs(400))).empty());
  BOOST_TEST(r.op->timer_count(time_domain::event_time) == 1u);
  r.watermark(secs(459.9));
  BOOST_TEST(r.op->state_size("small-transaction") == 1u);
  r.watermark(secs(460));
  BOOST_TEST(r.op->state_size("small-transaction") == 0u);
}

BOOST_AUTO_TEST_CASE(thresholds_and_window_are_options) {
  rig r{rule{{.small_below = 5.0, .large_above = 100.0, .within = 10s}}, account_of};
  BOOST_TEST(r.push(txn(1, 7, 4.99)).empty());
  r.advance(secs(9.9));
  BOOST_TEST(txn_ids_of(r.push(txn(2, 7, 100.01))) == (std::vector<ids>{{1, 2}}));
  BOOST_TEST(r.push(txn(3, 7, 4.99)).empty());
  r.advance(secs(10.1));
  BOOST_TEST(r.push(txn(4, 7, 1000)).empty());
}

BOOST_AUTO_TEST_CASE(flink_walkthrough_replay_raises_one_account_3_alert_per_cycle) {
  auto rows = load_walkthrough(SLUICE_WALKTHROUGH_CSV);
  BOOST_REQUIRE_MESSAGE(rows.has_value(), error_text(rows));
  BOOST_REQUIRE_EQUAL(rows->size(), 50u);
  rig r{rule{}, account_of};
  std::vector<alert> alerts;
  constexpr std::uint64_t cycles = 4;
  for (std::uint64_t n = 0; n < cycles * 50; ++n) {
    r.advance(100ms); // Flink's source sleeps 100 ms before each record
    for (auto& a : r.push(walkthrough_transaction(*rows, n)))
      alerts.push_back(a);
  }
  BOOST_REQUIRE_EQUAL(alerts.size(), cycles);
  for (std::uint64_t c = 0; c < cycles; ++c) {
    BOOST_TEST(alerts[c].account_id == 3u);
    BOOST_TEST(alerts[c].txn_ids == (ids{c * 50 + 22, c * 50 + 27}));
  }
  BOOST_TEST(walkthrough_ground_truth(*rows, 0, cycles * 50).size() == cycles);
}

BOOST_AUTO_TEST_SUITE_END()

// ---------------------------------------------------------------------------------------------

BOOST_AUTO_TEST_SUITE(velocity)

using rule = fraud::velocity;

/// Pushes transactions of card 5 at the given seconds, ids from `first_id`; returns alerts.
std::vector<alert> burst(rig<rule>& r, std::vector<double> seconds, std::uint64_t first_id = 1,
                         std::uint64_t card = 5) {
  std::vector<alert> out;
  for (auto s : seconds)
    for (auto& a : r.push(txn(first_id++, 1, 20, secs(s), card)))
      out.push_back(a);
  return out;
}

BOOST_AUTO_TEST_CASE(six_within_59_9_s_alert_with_all_six) {
  rig r{rule{}, card_of};
  auto alerts = burst(r, {0, 10, 20, 30, 40, 59.9});
  BOOST_REQUIRE_EQUAL(alerts.size(), 1u);
  BOOST_TEST(alerts[0].alert_id == "velocity-6");
  BOOST_TEST(alerts[0].card_id == 5u);
  BOOST_TEST(alerts[0].txn_ids == (ids{1, 2, 3, 4, 5, 6}));
}

BOOST_AUTO_TEST_CASE(six_spanning_exactly_60_s_do_not_and_five_never_do) {
  rig r{rule{}, card_of};
  BOOST_TEST(burst(r, {0, 10, 20, 30, 40, 60}).empty());
  rig five{rule{}, card_of};
  BOOST_TEST(burst(five, {0, 0.1, 0.2, 0.3, 0.4}).empty());
}

BOOST_AUTO_TEST_CASE(one_alert_per_episode_then_again_after_the_card_calms_down) {
  rig r{rule{}, card_of};
  auto alerts = burst(r, {0, 1, 2, 3, 4, 5, 6, 7});
  BOOST_TEST(txn_ids_of(alerts) == (std::vector<ids>{{1, 2, 3, 4, 5, 6}}),
             "the 7th and 8th are the same episode");
  // At 100 s the window holds one transaction: the episode is over.
  BOOST_TEST(burst(r, {100}, 9).empty());
  alerts = burst(r, {101, 102, 103, 104, 105}, 10);
  BOOST_TEST(txn_ids_of(alerts) == (std::vector<ids>{{9, 10, 11, 12, 13, 14}}));
}

BOOST_AUTO_TEST_CASE(cards_are_counted_apart) {
  rig r{rule{}, card_of};
  std::vector<alert> alerts;
  for (int i = 0; i < 10; ++i)
    for (auto& a : r.push(txn(static_cast<std::uint64_t>(i), 1, 20, secs(i), 100 + i % 2)))
      alerts.push_back(a);
  BOOST_TEST(alerts.empty(), "five each");
}

BOOST_AUTO_TEST_CASE(limit_and_window_are_options_and_state_expires_with_the_watermark) {
  rig r{rule{{.max_transactions = 2, .window = 10s}}, card_of};
  BOOST_TEST(burst(r, {0, 5}).empty());
  BOOST_TEST(txn_ids_of(burst(r, {9.9}, 3)) == (std::vector<ids>{{1, 2, 3}}));
  BOOST_TEST(r.op->state_size("recent-transactions") == 1u);
  r.watermark(secs(19.8));
  BOOST_TEST(r.op->state_size("recent-transactions") == 1u);
  r.watermark(secs(19.9)); // the last transaction + the window
  BOOST_TEST(r.op->state_size("recent-transactions") == 0u, "TTL frees the card");
}

BOOST_AUTO_TEST_CASE(a_late_transaction_is_counted_by_its_event_time) {
  rig r{rule{}, card_of};
  BOOST_TEST(burst(r, {0, 10, 20, 30}).empty());
  BOOST_TEST(burst(r, {90}, 5).empty());
  // Arrives after 90 s but happened at 35 s: its window (−25 s, 35 s] holds five.
  BOOST_TEST(burst(r, {35}, 6).empty());
  // Happened at 40 s: six in (−20 s, 40 s].
  auto alerts = burst(r, {40}, 7);
  BOOST_TEST(txn_ids_of(alerts) == (std::vector<ids>{{1, 2, 3, 4, 6, 7}}));
}

BOOST_AUTO_TEST_SUITE_END()

// ---------------------------------------------------------------------------------------------

BOOST_AUTO_TEST_SUITE(impossible_travel)

using rule = fraud::impossible_travel;

constexpr double berlin_lat = 52.52, berlin_lon = 13.405;
constexpr double paris_lat = 48.857, paris_lon = 2.352;

BOOST_AUTO_TEST_CASE(faster_than_the_limit_alerts_slower_does_not) {
  const double km = distance_km(berlin_lat, berlin_lon, paris_lat, paris_lon);
  BOOST_TEST(km == 878.0, boost::test_tools::tolerance(0.01)); // about 878 km
  const double at_limit_s = km / 900.0 * 3600.0;

  rig r{rule{}, card_of};
  BOOST_TEST(r.push(at_place(1, 9, berlin_lat, berlin_lon, secs(0))).empty());
  auto alerts = r.push(at_place(2, 9, paris_lat, paris_lon, secs(at_limit_s * 0.99)));
  BOOST_REQUIRE_EQUAL(alerts.size(), 1u);
  BOOST_TEST(alerts[0].alert_id == "impossible-travel-2");
  BOOST_TEST(alerts[0].txn_ids == (ids{1, 2}));
  BOOST_TEST(alerts[0].details.find("km/h") != std::string::npos, alerts[0].details);

  rig slow{rule{}, card_of};
  BOOST_TEST(slow.push(at_place(1, 9, berlin_lat, berlin_lon, secs(0))).empty());
  BOOST_TEST(slow.push(at_place(2, 9, paris_lat, paris_lon, secs(at_limit_s * 1.01))).empty());
}

BOOST_AUTO_TEST_CASE(only_consecutive_transactions_of_one_card_are_compared) {
  rig r{rule{}, card_of};
  BOOST_TEST(r.push(at_place(1, 9, berlin_lat, berlin_lon, secs(0))).empty());
  BOOST_TEST(r.push(at_place(2, 8, paris_lat, paris_lon, secs(60))).empty(), "another card");
  // Card 9 drives 100 km in 2 h, then flies nowhere: both steps are possible.
  BOOST_TEST(r.push(at_place(3, 9, 53.4, 13.405, secs(7200))).empty());
  BOOST_TEST(r.push(at_place(4, 9, 53.4, 13.405, secs(7201))).empty(), "same place");
  // Paris half an hour after card 9's last transaction north of Berlin: over 1,800 km/h.
  auto alerts = r.push(at_place(5, 9, paris_lat, paris_lon, secs(7201 + 1800)));
  BOOST_TEST(txn_ids_of(alerts) == (std::vector<ids>{{4, 5}}));
}

BOOST_AUTO_TEST_CASE(two_places_at_the_same_time_alert_one_place_never_does) {
  rig r{rule{}, card_of};
  BOOST_TEST(r.push(at_place(1, 9, berlin_lat, berlin_lon, secs(10))).empty());
  BOOST_TEST(r.push(at_place(2, 9, berlin_lat, berlin_lon, secs(10))).empty());
  BOOST_TEST(txn_ids_of(r.push(at_place(3, 9, 52.53, 13.405, secs(10)))) ==
             (std::vector<ids>{{2, 3}}));
}

BOOST_AUTO_TEST_CASE(a_late_transaction_is_compared_but_does_not_replace_the_newest) {
  rig r{rule{}, card_of};
  BOOST_TEST(r.push(at_place(1, 9, berlin_lat, berlin_lon, secs(3600))).empty());
  // Happened 10 minutes earlier in Paris: impossible, listed in event-time order.
  BOOST_TEST(txn_ids_of(r.push(at_place(2, 9, paris_lat, paris_lon, secs(3000)))) ==
             (std::vector<ids>{{2, 1}}));
  // The newest is still Berlin at 1 h: Berlin again a minute later is fine.
  BOOST_TEST(r.push(at_place(3, 9, berlin_lat, berlin_lon, secs(3660))).empty());
}

BOOST_AUTO_TEST_CASE(speed_limit_and_memory_are_options) {
  rig r{rule{{.max_speed_kmh = 100, .forget_after = std::chrono::hours{1}}}, card_of};
  BOOST_TEST(r.push(at_place(1, 9, 52.0, 13.0, secs(0))).empty());
  // About 111 km in an hour: over 100 km/h.
  BOOST_TEST(r.push(at_place(2, 9, 53.0, 13.0, secs(3600))).size() == 1u);
  r.watermark(secs(7199));
  BOOST_TEST(r.op->state_size("last-position") == 1u);
  r.watermark(secs(7200));
  BOOST_TEST(r.op->state_size("last-position") == 0u, "forgotten an hour after");
  BOOST_TEST(r.push(at_place(3, 9, berlin_lat, berlin_lon, secs(7300))).empty(),
             "nothing to compare with");
}

BOOST_AUTO_TEST_SUITE_END()

// ---------------------------------------------------------------------------------------------

BOOST_AUTO_TEST_SUITE(spend_spike)

using rule = fraud::spend_spike;

std::vector<alert> history(rig<rule>& r, int n, double amount, std::uint64_t first_id = 1) {
  std::vector<alert> out;
  for (int i = 0; i < n; ++i)
    for (auto& a : r.push(txn(first_id + static_cast<std::uint64_t>(i), 3, amount, secs(i))))
      out.push_back(a);
  return out;
}

BOOST_AUTO_TEST_CASE(above_k_times_the_mean_after_m_transactions_alerts) {
  rig r{rule{}, account_of};
  BOOST_TEST(history(r, 10, 100.0).empty());
  BOOST_TEST(r.push(txn(11, 3, 1000.00, secs(11))).empty(), "exactly 10 x the mean");
  // 1000 entered the mean: (10 * 100 + 1000) / 11 = 181.82.
  auto alerts = r.push(txn(12, 3, 1818.20, secs(12)));
  BOOST_REQUIRE_EQUAL(alerts.size(), 1u);
  BOOST_TEST(alerts[0].alert_id == "spend-spike-12");
  BOOST_TEST(alerts[0].txn_ids == (ids{12}));
  BOOST_TEST(alerts[0].details.find("of 11 transactions") != std::string::npos, alerts[0].details);
}

BOOST_AUTO_TEST_CASE(not_before_m_transactions) {
  rig r{rule{}, account_of};
  BOOST_TEST(history(r, 9, 100.0).empty());
  BOOST_TEST(r.push(txn(10, 3, 50'000, secs(10))).empty(), "9 < 10 transactions");
}

BOOST_AUTO_TEST_CASE(a_spike_stays_out_of_the_baseline) {
  rig r{rule{}, account_of};
  BOOST_TEST(history(r, 10, 100.0).empty());
  BOOST_TEST(r.push(txn(11, 3, 5000, secs(11))).size() == 1u);
  auto again = r.push(txn(12, 3, 5000, secs(12)));
  BOOST_REQUIRE_EQUAL(again.size(), 1u);
  BOOST_TEST(again[0].details.find("mean 100.00 of 10") != std::string::npos, again[0].details);
}

BOOST_AUTO_TEST_CASE(factor_history_and_ttl_are_options) {
  rig r{rule{{.factor = 2, .min_history = 3, .forget_after = std::chrono::hours{1}}}, account_of};
  BOOST_TEST(history(r, 3, 100.0).empty());
  BOOST_TEST(r.push(txn(4, 3, 200.01, secs(10))).size() == 1u);
  r.watermark(secs(2 + 3600)); // the last write was at 2 s
  BOOST_TEST(r.op->state_size("spend-profile") == 0u, "the profile expired");
  BOOST_TEST(r.push(txn(5, 3, 10'000, secs(4000))).empty(), "history starts over");
}

BOOST_AUTO_TEST_SUITE_END()
