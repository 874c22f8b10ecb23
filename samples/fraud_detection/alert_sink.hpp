#pragma once
/// The alert sink: stamps each alert with the time it arrived and its end-to-end latency,
/// records it for the summary, and hands it on to the real sink (console, file, ...).
///
/// ```cpp
/// auto stats = std::make_shared<alert_stats>();
/// alerts.sink_to(measured(sinks::console<alert>{}, stats)).name("alerts");
/// // after the run: stats->latencies_us(), stats->alerts()
/// ```
#include "sluice/samples/fraud_detection/types.hpp"
#include "sluice/sinks/descriptor.hpp"
#include "sluice/sinks/sink.hpp"

#include <chrono>
#include <concepts>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

namespace sluice::fraud {

/// What the alert sinks saw, merged over all their instances. Thread-safe.
class alert_stats {
public:
  /// One instance's observations, merged when the instance closes.
  void merge(std::vector<alert> alerts, std::vector<std::int64_t> latencies_us);

  /// Distinct alerts by id (a redelivered alert counts once), in id order.
  std::vector<alert> alerts() const;
  /// Every delivery's latency in microseconds, unsorted.
  std::vector<std::int64_t> latencies_us() const;
  /// Deliveries of an id already seen (at-least-once replays after a restart).
  std::uint64_t redelivered() const;

private:
  mutable std::mutex mtx_;
  std::map<std::string, alert> alerts_;
  std::vector<std::int64_t> latencies_;
  std::uint64_t redelivered_ = 0;
};

/// One instance: measures, then forwards every call to the inner sink.
class measured_alert_sink final : public sink<alert> {
public:
  measured_alert_sink(std::unique_ptr<sink<alert>> inner, std::shared_ptr<alert_stats> stats)
    : inner_(std::move(inner)), stats_(std::move(stats)) {}

  result<void> open(const sink_context& ctx) override { return inner_->open(ctx); }

  /// Latency is taken once per batch, when the batch arrives: the alerts of one batch
  /// arrived together.
  result<void> write(std::vector<alert>& records) override {
    const auto now = std::chrono::steady_clock::now();
    const auto wall = std::chrono::time_point_cast<std::chrono::microseconds>(
      std::chrono::system_clock::now());
    for (auto& a : records) {
      a.detected_at = sluice::event_time{wall.time_since_epoch()};
      a.latency_us = std::chrono::duration_cast<std::chrono::microseconds>(now - a.ingested).count();
      latencies_.push_back(a.latency_us);
      seen_.push_back(a);
    }
    return inner_->write(records);
  }
  result<void> end_epoch(std::int64_t epoch) override { return inner_->end_epoch(epoch); }
  result<void> flush() override { return inner_->flush(); }
  result<void> pre_commit(std::int64_t id) override { return inner_->pre_commit(id); }
  result<void> commit(std::int64_t id) override { return inner_->commit(id); }
  result<void> recover(std::int64_t id) override { return inner_->recover(id); }
  result<void> snapshot(std::int64_t id, snapshot_writer& w) override {
    return inner_->snapshot(id, w);
  }
  result<void> restore(std::int64_t id, snapshot_reader& r) override {
    return inner_->restore(id, r);
  }
  bool exactly_once() const noexcept override { return inner_->exactly_once(); }
  result<void> close() override {
    stats_->merge(std::exchange(seen_, {}), std::exchange(latencies_, {}));
    return inner_->close();
  }

private:
  std::unique_ptr<sink<alert>> inner_;
  std::shared_ptr<alert_stats> stats_;
  std::vector<alert> seen_;
  std::vector<std::int64_t> latencies_;
};

/// Descriptor wrapping another alert sink descriptor `D`.
template <sink_descriptor D>
  requires std::same_as<typename D::record_type, alert>
struct measured_alerts {
  using record_type = alert;
  D inner;
  std::shared_ptr<alert_stats> stats;

  std::unique_ptr<sink<alert>> create(const sink_context& ctx) const {
    return std::make_unique<measured_alert_sink>(inner.create(ctx), stats);
  }
  std::string describe() const { return inner.describe(); }
  int max_parallelism() const { return sink_max_parallelism(inner); }
  output_modes supported_modes() const { return sink_output_modes(inner); }
  result<void> validate() const {
    if (!stats)
      return make_error(error_code::invalid_option, "alert sink: no alert_stats");
    return validate_sink(inner);
  }
};

/// `alerts.sink_to(measured(sinks::console<alert>{}, stats))`.
template <sink_descriptor D>
measured_alerts<D> measured(D inner, std::shared_ptr<alert_stats> stats) {
  return {std::move(inner), std::move(stats)};
}

} // namespace sluice::fraud
