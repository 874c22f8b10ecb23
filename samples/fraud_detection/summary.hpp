#pragma once
/// The end-of-run summary: alerts per rule, precision and recall against the ground truth,
/// and end-to-end latency percentiles.
#include "sluice/samples/fraud_detection/generator.hpp"
#include "sluice/samples/fraud_detection/types.hpp"

#include <cstdint>
#include <optional>
#include <set>
#include <string>
#include <vector>

namespace sluice::fraud {

/// The (rule, transactions) identity of each alert, to compare with the ground truth.
/// Alerts of unknown rules are left out.
std::set<expected_alert> identities(const std::vector<alert>& alerts);

struct rule_summary {
  rule_kind rule = rule_kind::small_then_large;
  std::uint64_t alerts = 0;   ///< distinct alerts raised
  std::uint64_t expected = 0; ///< ground truth (0 without one)
  std::uint64_t matched = 0;  ///< alerts that are in the ground truth
  /// matched / alerts and matched / expected; unset without a ground truth or when the
  /// denominator is 0.
  std::optional<double> precision, recall;
};

struct latency_summary {
  std::uint64_t count = 0;
  std::int64_t p50 = 0, p99 = 0, p999 = 0, max = 0; ///< microseconds
};

struct run_summary {
  std::vector<rule_summary> rules;
  bool has_ground_truth = false;
  latency_summary latency;
};

/// Nearest-rank percentile `p` (0 < p <= 100) of `sorted` (ascending, not empty).
std::int64_t percentile(const std::vector<std::int64_t>& sorted, double p);

/// Summarizes the enabled rules' alerts against `truth` (unset: no ground truth).
run_summary summarize(const std::vector<rule_kind>& enabled, const std::vector<alert>& alerts,
                      const std::optional<std::vector<expected_alert>>& truth,
                      std::vector<std::int64_t> latencies_us);

/// A small table for the terminal.
std::string format_summary(const run_summary& s);

} // namespace sluice::fraud
