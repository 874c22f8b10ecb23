#pragma once
/// The four fraud rules, each a keyed process function with typed options.
///
/// ```cpp
/// txns.key_by([](const transaction& t) { return t.account_id; })
///     .process(small_then_large{{.within = 1min}})
///     .name("small-then-large");
/// ```
///
/// Every rule decides when a transaction arrives (no waiting for the watermark, so alerts
/// come with the lowest latency), from per-key state declared through descriptors and
/// cleaned up by timers or TTL. They assume that the transactions of one key arrive in
/// event-time order, which holds when one source instance reads them in order (the
/// generator, the walkthrough, one ordered file): a keyed edge keeps the order of each
/// channel. What each rule does with a transaction that arrives out of order is stated on
/// the rule.
#include "sluice/operators/collector.hpp"
#include "sluice/operators/keyed_process.hpp"
#include "sluice/operators/state/state.hpp"
#include "sluice/samples/fraud_detection/types.hpp"

#include <chrono>
#include <cstdint>
#include <vector>

namespace sluice::fraud {

/// The key of every rule: an account or a card id.
using rule_context = keyed_process_context<std::uint64_t>;

/// Which clock a time-bounded rule follows.
enum class time_mode : std::uint8_t {
  processing, ///< when the job sees the transactions (Flink's walkthrough)
  event,      ///< the transactions' timestamps
};

// -- 1. small then large -----------------------------------------------------------------

/// Options of `small_then_large`.
struct small_then_large_options {
  /// A transaction strictly below this arms the rule. Default 1.00 (1.00 itself does not).
  double small_below = 1.00;
  /// A transaction strictly above this, right after a small one, raises the alert.
  /// Default 500.00 (500.00 itself does not).
  double large_above = 500.00;
  /// The large one must come less than this long after the small one. Default 1 minute.
  std::chrono::milliseconds within = 1min;
  /// Which clock measures `within`. Default: processing time, as in Flink's walkthrough.
  time_mode time = time_mode::processing;
};

/// Rule 1, keyed by account (Flink's fraud-detection walkthrough): a transaction below
/// `small_below` immediately followed, within `within`, by one above `large_above`.
///
/// - Any transaction of the account between the two breaks the pattern; a small one
///   arms it again (the latest small one counts, with a fresh timer).
/// - State: one `value_state` holding the small transaction; a timer at small + `within`
///   (processing or event time) clears it. The elapsed time is also checked when the
///   large one arrives, so the boundary does not depend on when the timer is delivered.
/// - Event time: a large transaction older than the small one (out of order) does not match.
struct small_then_large {
  /// The armed small transaction. `at` and `timer` count the time domain's ticks:
  /// steady-clock ticks in processing time, microseconds since the epoch in event time.
  struct armed {
    std::uint64_t txn_id = 0;
    double amount = 0;
    std::int64_t at = 0;
    std::int64_t timer = 0;
  };

  small_then_large_options options{};
  state_descriptor<value_state<armed>> small{"small-transaction"};

  void on_element(const transaction& t, rule_context& ctx, collector<alert>& out);
  void on_timer(clock::time_point at, rule_context& ctx, collector<alert>& out);
  void on_timer(sluice::event_time at, rule_context& ctx, collector<alert>& out);

private:
  std::int64_t now(const transaction& t, rule_context& ctx) const;
  void set_timer(rule_context& ctx, std::int64_t at);
  void delete_timer(rule_context& ctx, std::int64_t at);
  std::int64_t within_ticks() const;
};

template <class Inspector>
bool inspect(Inspector& f, small_then_large::armed& x) {
  return f.object("armed").fields(f.field("txn_id", x.txn_id), f.field("amount", x.amount),
                                  f.field("at", x.at), f.field("timer", x.timer));
}

// -- 2. velocity -------------------------------------------------------------------------

/// Options of `velocity`.
struct velocity_options {
  /// More than this many transactions of one card... Default 5.
  std::uint32_t max_transactions = 5;
  /// ...less than this far apart in event time (first to last) raise an alert. Default
  /// 1 minute: 6 transactions within 59.9 s match, 6 spanning exactly 60 s do not.
  std::chrono::milliseconds window = 1min;
};

/// Rule 2, keyed by card: more than `max_transactions` in a sliding event-time window of
/// `window`, evaluated at every transaction `t` over `(t - window, t]` (a window per
/// transaction, not on a slide grid, so no burst falls between two windows).
///
/// - One alert per episode: the first transaction that takes the count over the limit
///   raises it, listing the transactions in the window; the card alerts again only after a
///   transaction finds the count back at or under the limit.
/// - State: one `value_state` with the recent transactions' ids and times, with an
///   event-time TTL of `window` (freed once the watermark passes the last one + `window`).
/// - Out of order: the transaction is placed by its time and the window ending at it is
///   counted; alerts already raised are not revisited. Transactions are kept until the
///   watermark passes them by `window`, so one that arrives late but not behind the
///   watermark is counted exactly; one behind it may find older ones already dropped.
struct velocity {
  struct seen {
    std::uint64_t txn_id = 0;
    sluice::event_time at{};
  };
  struct recent_transactions {
    std::vector<seen> window; ///< by event time
    bool alerting = false;    ///< an alert was raised for the current episode
  };

  explicit velocity(velocity_options o = {})
    : options(o), recent{"recent-transactions", state_ttl::event(o.window)} {}

  velocity_options options;
  state_descriptor<value_state<recent_transactions>> recent;

  void on_element(const transaction& t, rule_context& ctx, collector<alert>& out);
};

template <class Inspector>
bool inspect(Inspector& f, velocity::seen& x) {
  return f.object("seen").fields(f.field("txn_id", x.txn_id), f.field("at", x.at));
}
template <class Inspector>
bool inspect(Inspector& f, velocity::recent_transactions& x) {
  return f.object("recent_transactions")
    .fields(f.field("window", x.window), f.field("alerting", x.alerting));
}

// -- 3. impossible travel ----------------------------------------------------------------

/// Options of `impossible_travel`.
struct impossible_travel_options {
  /// Two consecutive transactions of a card farther apart than this speed allows raise an
  /// alert. Default 900 km/h (an airliner).
  double max_speed_kmh = 900;
  /// A card's last position is forgotten after this much event time without a transaction.
  /// Default 24 h: no two points on Earth are more than 20,016 km apart, 22.3 h at 900 km/h,
  /// so forgetting after 24 h never misses an alert at the default speed.
  std::chrono::hours forget_after{24};
};

/// Rule 3, keyed by card: the distance between two consecutive transactions divided by the
/// event time between them exceeds `max_speed_kmh`. Two transactions at the same time in
/// different places always match; two at the same place never do.
///
/// - State: one `value_state` with the last transaction's id, position and time, with an
///   event-time TTL of `forget_after`.
/// - Out of order: an older transaction is compared with the newest one seen (by the
///   absolute time between them) and does not replace it.
struct impossible_travel {
  struct position {
    std::uint64_t txn_id = 0;
    double lat = 0;
    double lon = 0;
    sluice::event_time at{};
  };

  explicit impossible_travel(impossible_travel_options o = {})
    : options(o), last{"last-position", state_ttl::event(o.forget_after)} {}

  impossible_travel_options options;
  state_descriptor<value_state<position>> last;

  void on_element(const transaction& t, rule_context& ctx, collector<alert>& out);
};

template <class Inspector>
bool inspect(Inspector& f, impossible_travel::position& x) {
  return f.object("position").fields(f.field("txn_id", x.txn_id), f.field("lat", x.lat),
                                     f.field("lon", x.lon), f.field("at", x.at));
}

// -- 4. spend spike ----------------------------------------------------------------------

/// Options of `spend_spike`.
struct spend_spike_options {
  /// An amount strictly above `factor` times the account's running mean matches.
  /// Default 10.
  double factor = 10;
  /// Only once the account's mean covers at least this many transactions. Default 10.
  std::uint32_t min_history = 10;
  /// The account's profile is forgotten after this much event time without a transaction
  /// that updates it (state TTL). Default 30 days.
  std::chrono::hours forget_after{24 * 30};
};

/// Rule 4, keyed by account: an amount above `factor` × the running mean of the account's
/// earlier transactions, once that mean covers `min_history` of them.
///
/// - A transaction that raises an alert does not enter the mean, so fraud does not raise
///   the baseline it is measured against (and a second spike still stands out).
/// - State: one `value_state` with the count and mean, with an event-time TTL of
///   `forget_after`.
struct spend_spike {
  struct profile {
    std::uint64_t count = 0;
    double mean = 0;
  };

  explicit spend_spike(spend_spike_options o = {})
    : options(o), baseline{"spend-profile", state_ttl::event(o.forget_after)} {}

  spend_spike_options options;
  state_descriptor<value_state<profile>> baseline;

  void on_element(const transaction& t, rule_context& ctx, collector<alert>& out);
};

template <class Inspector>
bool inspect(Inspector& f, spend_spike::profile& x) {
  return f.object("profile").fields(f.field("count", x.count), f.field("mean", x.mean));
}

} // namespace sluice::fraud
