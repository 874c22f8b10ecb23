#include "sluice/samples/fraud_detection/summary.hpp"

#include "sluice/samples/fraud_detection/alert_sink.hpp"

#include <fmt/core.h>

#include <algorithm>
#include <cmath>

namespace sluice::fraud {

// -- alert_sink.hpp -----------------------------------------------------------------------

void alert_stats::merge(std::vector<alert> alerts, std::vector<std::int64_t> latencies_us) {
  std::lock_guard guard{mtx_};
  for (auto& a : alerts) {
    auto id = a.alert_id;
    if (!alerts_.emplace(std::move(id), std::move(a)).second)
      ++redelivered_;
  }
  latencies_.insert(latencies_.end(), latencies_us.begin(), latencies_us.end());
}

std::vector<alert> alert_stats::alerts() const {
  std::lock_guard guard{mtx_};
  std::vector<alert> out;
  out.reserve(alerts_.size());
  for (auto& [id, a] : alerts_)
    out.push_back(a);
  return out;
}

std::vector<std::int64_t> alert_stats::latencies_us() const {
  std::lock_guard guard{mtx_};
  return latencies_;
}

std::uint64_t alert_stats::redelivered() const {
  std::lock_guard guard{mtx_};
  return redelivered_;
}

// -- summary ------------------------------------------------------------------------------

std::set<expected_alert> identities(const std::vector<alert>& alerts) {
  std::set<expected_alert> out;
  for (const auto& a : alerts)
    if (auto r = parse_rule(a.rule))
      out.insert(expected_alert{*r, a.txn_ids});
  return out;
}

std::int64_t percentile(const std::vector<std::int64_t>& sorted, double p) {
  const auto n = sorted.size();
  // The epsilon keeps 99.9% of 1000 at rank 999 despite rounding (0.999 * 1000 > 999).
  auto rank = static_cast<std::size_t>(std::ceil(p / 100.0 * static_cast<double>(n) - 1e-9));
  rank = std::clamp<std::size_t>(rank, 1, n);
  return sorted[rank - 1];
}

run_summary summarize(const std::vector<rule_kind>& enabled, const std::vector<alert>& alerts,
                      const std::optional<std::vector<expected_alert>>& truth,
                      std::vector<std::int64_t> latencies_us) {
  run_summary s;
  s.has_ground_truth = truth.has_value();
  const auto raised = identities(alerts);
  std::set<expected_alert> wanted;
  if (truth)
    wanted.insert(truth->begin(), truth->end());
  for (auto r : enabled) {
    rule_summary rs;
    rs.rule = r;
    for (const auto& a : raised)
      if (a.rule == r) {
        ++rs.alerts;
        rs.matched += wanted.count(a);
      }
    for (const auto& e : wanted)
      rs.expected += e.rule == r;
    if (truth) {
      if (rs.alerts > 0)
        rs.precision = static_cast<double>(rs.matched) / static_cast<double>(rs.alerts);
      if (rs.expected > 0)
        rs.recall = static_cast<double>(rs.matched) / static_cast<double>(rs.expected);
    }
    s.rules.push_back(rs);
  }
  std::sort(latencies_us.begin(), latencies_us.end());
  s.latency.count = latencies_us.size();
  if (!latencies_us.empty()) {
    s.latency.p50 = percentile(latencies_us, 50);
    s.latency.p99 = percentile(latencies_us, 99);
    s.latency.p999 = percentile(latencies_us, 99.9);
    s.latency.max = latencies_us.back();
  }
  return s;
}

std::string format_summary(const run_summary& s) {
  auto ratio = [](const std::optional<double>& v) {
    return v ? fmt::format("{:.3f}", *v) : std::string{"-"};
  };
  std::string out = fmt::format("{:<18} {:>7} {:>9} {:>8} {:>10} {:>7}\n", "rule", "alerts",
                                "expected", "matched", "precision", "recall");
  for (const auto& r : s.rules)
    out += fmt::format("{:<18} {:>7} {:>9} {:>8} {:>10} {:>7}\n", rule_name(r.rule), r.alerts,
                       s.has_ground_truth ? std::to_string(r.expected) : "-",
                       s.has_ground_truth ? std::to_string(r.matched) : "-", ratio(r.precision),
                       ratio(r.recall));
  if (!s.has_ground_truth)
    out += "(no ground truth for this source)\n";
  if (s.latency.count == 0)
    out += "latency: no alerts\n";
  else
    out += fmt::format("latency, source ingest to alert sink, over {} alerts: p50 {} us, p99 {} "
                       "us, p99.9 {} us, max {} us\n",
                       s.latency.count, s.latency.p50, s.latency.p99, s.latency.p999,
                       s.latency.max);
  return out;
}

} // namespace sluice::fraud
