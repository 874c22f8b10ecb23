#pragma once
/// A chain: operators fused into one task, calling each other directly.
///
/// Node 0 is the head. In a source chain the head is the source itself (no operator
/// object); the task polls it and hands its output to `deliver(0, ...)`. Port 0 of every
/// node but the last feeds the next node; every other (node, port) goes out of the task
/// through `external_output`.
#include "sluice/core/metrics.hpp"
#include "sluice/operators/operator.hpp"
#include "sluice/operators/tap.hpp"

#include <memory>
#include <string>
#include <vector>

namespace sluice {

/// Receives what leaves the chain.
class external_output {
public:
  virtual ~external_output() = default;
  virtual result<void> emit(int node, int port, batch_ptr records) = 0;
};

class chain {
public:
  /// `ops[i]` may be null only for i == 0 (a source head).
  chain(std::vector<std::unique_ptr<operator_base>> ops, external_output& tail);
  chain(const chain&) = delete;
  chain& operator=(const chain&) = delete;

  /// Opens every operator; `infos[i]` describes node i.
  result<void> open(const std::vector<operator_info>& infos);
  /// Feeds a batch into the head operator's `input`.
  result<void> push(int input, batch_ptr records);
  /// Routes the output of `node`'s `port` (used by source heads).
  result<void> deliver(int node, int port, batch_ptr records);
  /// Moves every operator's watermark to `wm`, head first, so that what an operator emits
  /// on the watermark reaches the next one before the next one sees the watermark.
  result<void> advance_watermark(event_time wm);
  /// Ends epoch `epoch` in every operator, head first (like `advance_watermark`);
  /// `stats[i]` receives node i's report.
  result<void> end_epoch(std::int64_t epoch, std::vector<operator_epoch_stats>& stats);
  /// Lets every operator fire processing-time timers due at `now`.
  result<void> processing_time(clock::time_point now);
  /// Ends input: each operator's `finish` output flows through the rest before the next
  /// operator finishes.
  result<void> finish();
  /// Closes every opened operator; returns the first error.
  result<void> close();

  /// Counts records, bytes and batches into and out of each node (`nodes[i]` for node i,
  /// as many as the chain has nodes); null (the default) counts nothing.
  void set_metrics(node_metrics* nodes) noexcept { metrics_ = nodes; }
  /// Where node i looks for a tap on its main output (`points[i]`, as many as the chain has
  /// nodes; null entries: never tapped), and this chain's instance index for tap lines.
  /// Without this call nothing is tapped.
  void set_taps(const std::vector<tap_point*>& points, int instance);
  /// The node that was running when the last call failed or threw.
  int current_node() const noexcept { return current_; }
  std::size_t size() const noexcept { return ops_.size(); }
  operator_base* node(std::size_t i) const noexcept { return ops_[i].get(); }

private:
  struct link final : output {
    chain* self = nullptr;
    int node = 0;
    result<void> emit(int port, batch_ptr records) override {
      return self->deliver(node, port, std::move(records));
    }
  };

  std::vector<std::unique_ptr<operator_base>> ops_;
  std::vector<link> links_;
  std::vector<tap_point*> taps_; ///< one per node, never null
  int instance_ = 0;
  external_output* tail_;
  node_metrics* metrics_ = nullptr;
  int current_ = 0;
  std::size_t opened_ = 0;
};

} // namespace sluice
