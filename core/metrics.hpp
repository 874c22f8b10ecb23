#pragma once
/// Counters a task keeps about itself. Written by the task's own thread with relaxed
/// atomics (a plain add on x86), read by anyone at any time.
#include <atomic>
#include <climits>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace sluice {

/// Counters of one operator inside a task's chain (operators fused into one task share the
/// task's time counters but count their own records).
struct node_metrics {
  std::atomic<std::uint64_t> records_in{0};
  std::atomic<std::uint64_t> records_out{0};
  std::atomic<std::uint64_t> bytes_in{0};
  std::atomic<std::uint64_t> bytes_out{0};
  std::atomic<std::uint64_t> batches_in{0};
  std::atomic<std::uint64_t> batches_out{0};
  /// Keyed state and timers, as of the operator's last epoch report.
  std::atomic<std::uint64_t> state_entries{0};
  std::atomic<std::uint64_t> state_bytes{0};
  std::atomic<std::uint64_t> timers_pending{0};
};

struct task_metrics {
  /// One block per node of the task's chain, head first (set before the task starts).
  std::unique_ptr<node_metrics[]> nodes;
  std::size_t node_count = 0;
  std::atomic<std::uint64_t> records_in{0};
  std::atomic<std::uint64_t> records_out{0};
  std::atomic<std::uint64_t> batches_in{0};
  std::atomic<std::uint64_t> batches_out{0};
  /// Times an output channel ran out of credit and the task had to wait.
  std::atomic<std::uint64_t> backpressure_events{0};
  /// Batches queued at this task's input, now and at most so far.
  std::atomic<std::uint64_t> input_queue{0};
  std::atomic<std::uint64_t> max_input_queue{0};
  /// The most batches ever in flight (sent, not yet credited back) on one output channel.
  std::atomic<std::uint64_t> max_in_flight{0};
  /// True while the task waits for credit.
  std::atomic<bool> backpressured{false};
  /// Time spent handling input, polls and timers, and time spent waiting for credit, in
  /// nanoseconds since the task started. Idle time is the rest.
  std::atomic<std::uint64_t> busy_ns{0};
  std::atomic<std::uint64_t> backpressured_ns{0};
  /// Credits the task holds for its output channels now (batches it may still send).
  std::atomic<std::int64_t> credits{0};
  /// The task's event-time watermark in µs since the epoch (INT64_MIN before the first).
  std::atomic<std::int64_t> watermark{INT64_MIN};
  /// Records that came too late for an event-time operator: dropped (and counted here),
  /// or sent to a late-data side output (counted in both).
  std::atomic<std::uint64_t> late_records{0};
  std::atomic<std::uint64_t> late_records_to_side_output{0};
  /// Records that arrived on an input channel whose watermark was behind the task's, i.e.
  /// from an input that had been idle and rejoined: they are at risk of being late.
  std::atomic<std::uint64_t> records_behind_watermark{0};
  /// Input channels currently marked idle.
  std::atomic<std::uint64_t> idle_inputs{0};
  /// Records a deduplication operator dropped as repeats of a key it had seen.
  std::atomic<std::uint64_t> duplicates_dropped{0};

  static void add(std::atomic<std::uint64_t>& c, std::uint64_t n) noexcept {
    c.store(c.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
  }
  static void add(std::atomic<std::int64_t>& c, std::int64_t n) noexcept {
    c.store(c.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
  }
  static void raise_to(std::atomic<std::uint64_t>& c, std::uint64_t n) noexcept {
    if (n > c.load(std::memory_order_relaxed))
      c.store(n, std::memory_order_relaxed);
  }
};

/// A copy of one operator's counters.
struct node_stats {
  std::string name; ///< the node's name
  std::uint64_t records_in = 0;
  std::uint64_t records_out = 0;
  std::uint64_t bytes_in = 0;
  std::uint64_t bytes_out = 0;
  std::uint64_t batches_in = 0;
  std::uint64_t batches_out = 0;
  std::uint64_t state_entries = 0;
  std::uint64_t state_bytes = 0;
  std::uint64_t timers_pending = 0;
};

/// A copy of one task's counters.
struct task_stats {
  std::string chain; ///< the chain's name: its node names joined by " -> "
  int chain_id = 0;
  int instance = 0;
  std::uint64_t records_in = 0;
  std::uint64_t records_out = 0;
  std::uint64_t batches_in = 0;
  std::uint64_t batches_out = 0;
  std::uint64_t backpressure_events = 0;
  std::uint64_t input_queue = 0;
  std::uint64_t max_input_queue = 0;
  std::uint64_t max_in_flight = 0;
  bool backpressured = false;
  std::uint64_t busy_ns = 0;
  std::uint64_t backpressured_ns = 0;
  std::int64_t credits = 0;
  std::int64_t watermark = INT64_MIN;
  std::uint64_t late_records = 0;
  std::uint64_t late_records_to_side_output = 0;
  std::uint64_t records_behind_watermark = 0;
  std::uint64_t idle_inputs = 0;
  std::uint64_t duplicates_dropped = 0;
  /// The chain's operators, head first (names filled in by the runtime).
  std::vector<node_stats> nodes;
};

inline task_stats snapshot(const task_metrics& m) {
  task_stats s;
  s.records_in = m.records_in.load(std::memory_order_relaxed);
  s.records_out = m.records_out.load(std::memory_order_relaxed);
  s.batches_in = m.batches_in.load(std::memory_order_relaxed);
  s.batches_out = m.batches_out.load(std::memory_order_relaxed);
  s.backpressure_events = m.backpressure_events.load(std::memory_order_relaxed);
  s.input_queue = m.input_queue.load(std::memory_order_relaxed);
  s.max_input_queue = m.max_input_queue.load(std::memory_order_relaxed);
  s.max_in_flight = m.max_in_flight.load(std::memory_order_relaxed);
  s.backpressured = m.backpressured.load(std::memory_order_relaxed);
  s.busy_ns = m.busy_ns.load(std::memory_order_relaxed);
  s.backpressured_ns = m.backpressured_ns.load(std::memory_order_relaxed);
  s.credits = m.credits.load(std::memory_order_relaxed);
  s.watermark = m.watermark.load(std::memory_order_relaxed);
  s.late_records = m.late_records.load(std::memory_order_relaxed);
  s.late_records_to_side_output = m.late_records_to_side_output.load(std::memory_order_relaxed);
  s.records_behind_watermark = m.records_behind_watermark.load(std::memory_order_relaxed);
  s.idle_inputs = m.idle_inputs.load(std::memory_order_relaxed);
  s.duplicates_dropped = m.duplicates_dropped.load(std::memory_order_relaxed);
  for (std::size_t i = 0; i < m.node_count; ++i) {
    const auto& n = m.nodes[i];
    node_stats ns;
    ns.records_in = n.records_in.load(std::memory_order_relaxed);
    ns.records_out = n.records_out.load(std::memory_order_relaxed);
    ns.bytes_in = n.bytes_in.load(std::memory_order_relaxed);
    ns.bytes_out = n.bytes_out.load(std::memory_order_relaxed);
    ns.batches_in = n.batches_in.load(std::memory_order_relaxed);
    ns.batches_out = n.batches_out.load(std::memory_order_relaxed);
    ns.state_entries = n.state_entries.load(std::memory_order_relaxed);
    ns.state_bytes = n.state_bytes.load(std::memory_order_relaxed);
    ns.timers_pending = n.timers_pending.load(std::memory_order_relaxed);
    s.nodes.push_back(std::move(ns));
  }
  return s;
}

} // namespace sluice
