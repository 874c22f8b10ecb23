#pragma once
/// The built-in transaction generator: background card traffic with fraud patterns (and
/// near misses) injected at a configurable share, deterministic from a seed, and the
/// alerts those patterns must raise (the ground truth).
///
/// Transaction n is a pure function of (options, n), so the generator source replays it
/// exactly after a restart and every parallelism sees the same input.
///
/// **Layout.** The sequence is cut into blocks. Block k starts with one *episode* (a
/// pattern or a near miss, 1 to `max_transactions` + 1 transactions in consecutive slots,
/// on victim account `victim(k)`), followed by `background_per_block` background
/// transactions. Event time is simulated: transaction n happens at `start + n * interval`.
///
/// **Background traffic cannot match rules 1-3** (so "no false positives" is a real check):
/// - amounts lie in [`background_low`, `background_high`], never below `small_below` nor
///   above `large_above` (rule 1 needs both);
/// - the background cards take turns in a fixed order, so each card pays once per
///   `accounts * cards_per_account` background slots: at most `max_transactions` - 1 per
///   velocity window even with a spend spike added (checked by `validate`);
/// - a background card drifts around its account's home at 13 km/h (rule 3);
/// - every episode but a spend spike uses a card of its own that no other transaction
///   uses, and every rule-1 episode ends with a transaction that is not small, so no
///   pattern leaves state behind that a later transaction could complete.
///
/// Rule 4 is exact too while `validate` accepts the options: background amounts are high
/// enough that no rule-1 large amount (at most 1.04 × `large_above`) exceeds `factor` × a
/// mean dragged down by the small ones, and spikes exceed `factor` × the largest amount
/// that can enter a mean. A spike is only injected on an account whose background alone
/// has reached `min_history`.
#include "sluice/core/error.hpp"
#include "sluice/core/time.hpp"
#include "sluice/samples/fraud_detection/rules.hpp"
#include "sluice/samples/fraud_detection/types.hpp"

#include <chrono>
#include <cstdint>
#include <vector>

namespace sluice::fraud {

/// Options of the generator.
struct generator_options {
  /// Seeds everything. Default 42.
  std::uint64_t seed = 42;
  /// Accounts with background traffic. Default 200.
  std::uint32_t accounts = 200;
  /// Cards per account (1 to 9). Default 2.
  std::uint32_t cards_per_account = 2;
  /// Share of all transactions that belong to an injected episode (a pattern or a near
  /// miss), in (0, 0.05]. Default 0.01.
  double fraud_share = 0.01;
  /// Event time between consecutive transactions. Default 100 ms: at 1000 transactions/s
  /// the stream covers 100 s of event time per second.
  std::chrono::microseconds interval = std::chrono::milliseconds{100};
  /// Event time of transaction 0. Default 2024-01-01T00:00:00Z.
  sluice::event_time start{std::chrono::sys_days{std::chrono::year{2024} / 1 / 1}};
};

/// The rule options the generator shapes its traffic for.
struct generator_rules {
  small_then_large_options small_then_large{};
  velocity_options velocity{};
  impossible_travel_options impossible_travel{};
  spend_spike_options spend_spike{};
};

/// An alert a rule must raise: the rule and its transactions in `alert::txn_ids` order.
struct expected_alert {
  rule_kind rule = rule_kind::small_then_large;
  std::vector<std::uint64_t> txn_ids;
  friend auto operator<=>(const expected_alert&, const expected_alert&) = default;
};

/// What an episode is; each kind is a pattern (raises an alert) or a near miss (must not).
enum class episode_kind : std::uint8_t {
  small_large,         ///< rule 1: small, large
  small_small_large,   ///< rule 1 re-armed: small, small, large (the second small counts)
  small_other_large,   ///< near miss: small, a transaction in between, large
  exact_small_large,   ///< near miss: exactly `small_below`, large
  small_exact_large,   ///< near miss: small, exactly `large_above`
  burst,               ///< rule 2: `max_transactions` + 1 on one card
  short_burst,         ///< near miss: `max_transactions` on one card
  teleport,            ///< rule 3: two transactions far apart, one interval apart
  fast_but_possible,   ///< near miss: half the speed limit
  spike,               ///< rule 4: an amount far above the account's mean
};
inline constexpr int episode_kinds = 10;

/// Makes transactions and ground truth. Copyable; each copy keeps its own cursor, so
/// calls with increasing `n` cost O(1) and a jump back costs a walk from the start.
class transaction_generator {
public:
  /// Fails with `invalid_option` naming the option when the options cannot keep
  /// background traffic clear of the rules (see the file comment).
  [[nodiscard]] static result<transaction_generator> make(generator_options o,
                                                         generator_rules rules = {});

  /// Transaction `n` (its `txn_id` is `n`; `ingested` is left unset).
  transaction operator()(std::uint64_t n);

  /// The alerts rules 1-4 must raise on transactions `[first, end)`: one per pattern whose
  /// triggering (last) transaction is in the range. Computed from the layout, never by
  /// running the rules; callers drop the rules they do not run.
  std::vector<expected_alert> ground_truth(std::uint64_t first, std::uint64_t end) const;

  /// The episode of block `k` and its first slot, for tests and the README.
  struct block_info {
    std::uint64_t index = 0;
    std::uint64_t first_slot = 0;
    episode_kind kind = episode_kind::small_large;
    std::uint32_t length = 0;
    std::uint64_t victim = 0; ///< account id
  };
  block_info block_at(std::uint64_t slot) const;

  const generator_options& options() const noexcept { return o_; }
  std::uint64_t background_per_block() const noexcept { return gap_; }
  double background_low() const noexcept { return bg_low_; }
  double background_high() const noexcept { return bg_high_; }

private:
  transaction_generator(generator_options o, generator_rules r);
  result<void> derive();

  episode_kind kind_of(std::uint64_t block) const;
  std::uint32_t length_of(episode_kind k) const;
  std::uint64_t victim_of(std::uint64_t block) const;
  /// Moves the cursor to the block containing `slot`.
  void seek_block(std::uint64_t slot, std::uint64_t& block, std::uint64_t& first) const;
  transaction background(std::uint64_t slot, std::uint64_t bg_index) const;
  transaction episode(const block_info& b, std::uint32_t j, std::uint64_t slot) const;
  void expected_of(const block_info& b, std::vector<expected_alert>& out) const;
  sluice::event_time time_of(std::uint64_t slot) const;

  generator_options o_;
  generator_rules r_;
  std::uint64_t cards_ = 0;   ///< background cards
  std::uint64_t gap_ = 0;     ///< background transactions per block
  std::uint64_t stride_ = 1;  ///< card order: card of background slot b = (b * stride_ + shift_) mod cards_
  std::uint64_t shift_ = 0;
  std::uint64_t victim_stride_ = 1;
  std::uint64_t victim_shift_ = 0;
  double bg_low_ = 0, bg_high_ = 0;     ///< background amounts
  double large_high_ = 0;               ///< rule-1 large amounts lie in (large_above, large_high_]
  double spike_low_ = 0, spike_high_ = 0;
  std::uint64_t spike_min_bg_index_ = 0; ///< spikes only from this background index on
  // cursor
  std::uint64_t cur_block_ = 0;
  std::uint64_t cur_first_ = 0;
};

} // namespace sluice::fraud
