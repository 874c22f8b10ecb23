#pragma once
/// The records of the fraud-detection sample: card transactions in, alerts out, and the
/// names of the four rules.
#include "sluice/core/time.hpp"

#include <array>
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace sluice::fraud {

/// One card payment.
struct transaction {
  std::uint64_t txn_id = 0;     ///< unique per transaction
  std::uint64_t account_id = 0; ///< the account the card belongs to
  std::uint64_t card_id = 0;    ///< a card belongs to exactly one account
  double amount = 0;            ///< in the account's currency
  std::string merchant;
  std::string country; ///< ISO 3166 alpha-2 code
  double lat = 0;      ///< degrees north
  double lon = 0;      ///< degrees east
  sluice::event_time timestamp{}; ///< when the payment happened (event time)
  /// When the source read the transaction (steady clock), for end-to-end latency. Valid in
  /// this process only, so it is not part of the record's JSON or checkpoint form.
  std::chrono::steady_clock::time_point ingested{};
};

template <class Inspector>
bool inspect(Inspector& f, transaction& x) {
  return f.object("transaction")
    .fields(f.field("txn_id", x.txn_id), f.field("account_id", x.account_id),
            f.field("card_id", x.card_id), f.field("amount", x.amount),
            f.field("merchant", x.merchant), f.field("country", x.country),
            f.field("lat", x.lat), f.field("lon", x.lon), f.field("timestamp", x.timestamp));
}

/// The four rules. Their names (`rule_name`) appear in alerts, node names and flags.
enum class rule_kind : std::uint8_t {
  small_then_large,  ///< Flink's walkthrough rule, per account
  velocity,          ///< too many transactions of a card in a sliding event-time window
  impossible_travel, ///< two consecutive transactions of a card too far apart for the time
  spend_spike,       ///< an amount far above the account's running mean
};

inline constexpr std::array<rule_kind, 4> all_rules{rule_kind::small_then_large, rule_kind::velocity,
                                                    rule_kind::impossible_travel,
                                                    rule_kind::spend_spike};

/// "small-then-large", "velocity", "impossible-travel", "spend-spike".
std::string_view rule_name(rule_kind r) noexcept;
/// The rule of a name `rule_name` gives, or nothing.
std::optional<rule_kind> parse_rule(std::string_view name) noexcept;

/// An alert: a rule matched some transactions.
struct alert {
  /// Deterministic: `<rule>-<triggering txn_id>`. A rule raises at most one alert per
  /// transaction, so replaying the same input after a restart yields the same ids.
  std::string alert_id;
  std::string rule; ///< `rule_name` of the rule
  std::uint64_t account_id = 0;
  std::uint64_t card_id = 0; ///< the card of the triggering transaction
  /// The matching transactions in event-time order; the triggering one is last.
  std::vector<std::uint64_t> txn_ids;
  sluice::event_time event_time{}; ///< the triggering transaction's timestamp
  std::string details;             ///< a short human-readable explanation
  /// Set by the alert sink: wall-clock time when the alert reached it.
  sluice::event_time detected_at{};
  /// Set by the alert sink: microseconds from the source reading the triggering
  /// transaction to the sink receiving the alert (steady clock).
  std::int64_t latency_us = 0;
  /// The triggering transaction's `ingested` (process-local, not serialized).
  std::chrono::steady_clock::time_point ingested{};
};

template <class Inspector>
bool inspect(Inspector& f, alert& x) {
  return f.object("alert")
    .fields(f.field("alert_id", x.alert_id), f.field("rule", x.rule),
            f.field("account_id", x.account_id), f.field("card_id", x.card_id),
            f.field("txn_ids", x.txn_ids), f.field("event_time", x.event_time),
            f.field("details", x.details), f.field("detected_at", x.detected_at),
            f.field("latency_us", x.latency_us));
}

/// An alert of rule `r` triggered by `trigger`, matching `txn_ids` (ending with the
/// trigger's id). The sink fills in `detected_at` and `latency_us`.
alert make_alert(rule_kind r, const transaction& trigger, std::vector<std::uint64_t> txn_ids,
                 std::string details);

/// Great-circle distance in kilometres between two points given in degrees (haversine,
/// mean Earth radius 6371.0088 km).
double distance_km(double lat1, double lon1, double lat2, double lon2) noexcept;

} // namespace sluice::fraud
