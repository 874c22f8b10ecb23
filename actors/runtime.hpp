#pragma once
/// The runtime's entry point, free of CAF: runs a physical plan on actors.
#include "core/epoch.hpp"
#include "core/metrics.hpp"
#include "core/progress.hpp"
#include "core/time.hpp"
#include "graph/plan.hpp"

#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <memory>
#include <vector>

namespace sluice {

/// CAF's scheduler policies. `stealing` polls (about 1.5% of a core when idle) and moves
/// messages fastest; `sharing` idles at 0% but moves messages 3-5x slower.
enum class scheduler_policy { stealing, sharing };

/// How a job executes. Defaults favour throughput with bounded memory.
struct runtime_options {
  /// Worker threads; 0 means one per core (at least 2).
  int threads = 0;
  scheduler_policy scheduler = scheduler_policy::stealing;
  /// Records per batch on the wire: a buffer is sent as soon as it holds this many.
  std::size_t batch_size = 1024;
  /// How long a partly filled buffer may wait for more records. 0: send at the end of
  /// every input batch, for the lowest latency.
  std::chrono::microseconds linger{0};
  /// Batches a channel may have in flight (the credit window). Bounds memory.
  int credits = 4;
  /// Processing time; inject a `manual_clock` in tests.
  std::shared_ptr<const clock> processing_clock = default_clock();
  /// Raise glibc's trim and mmap thresholds once per process: batches freed on another
  /// thread than the one that allocated them otherwise return memory to the kernel on
  /// every batch (5-25x slower; see docs/architecture.md).
  bool tune_malloc = true;

  // -- epochs (set from job_options; see core/epoch.hpp) ---------------------------------

  /// When epochs begin.
  trigger epochs = triggers::continuous();
  /// Spark's output mode, when the job sets one.
  std::optional<output_mode> mode{};
  late_row_rule late_rows = late_row_rule::previous_watermark;
  /// Micro-batch mode: records one source instance may read in one trigger, for sources
  /// that never run dry (an unthrottled generator). Files are capped by
  /// `max_files_per_trigger` instead.
  std::size_t max_records_per_trigger = 1'000'000;
  /// Called with every epoch's progress report, on a runtime thread: keep it short.
  std::function<void(const query_progress&)> on_progress{};
  /// The query's name in progress reports.
  std::string query_name = "sluice-job";
  /// Whether a stateful event-time operator exists: micro-batch mode then runs an epoch
  /// without data when the watermark moved (set by `job`).
  bool has_event_time_state = false;
};

/// How a finished job ended.
struct job_result {
  bool cancelled = false; ///< stopped by `cancel()`; all input read so far was flushed
  std::chrono::nanoseconds elapsed{0};
  std::vector<task_stats> tasks;
};

/// A running job. Destroying it cancels the job and waits for it to stop.
class job_execution {
public:
  virtual ~job_execution() = default;
  /// Stops the sources; everything already read is processed and flushed. Thread-safe.
  virtual void cancel() = 0;
  /// Blocks until the job ends; returns its outcome (the same on every call).
  virtual result<job_result> wait() = 0;
  /// Waits at most `timeout`; true when the job has ended.
  virtual bool wait_for(std::chrono::nanoseconds timeout) = 0;
  /// The counters of every task, now.
  virtual std::vector<task_stats> metrics() const = 0;
  /// The progress reports of the last (up to 100) epochs, oldest first (Spark's
  /// `recentProgress`).
  virtual std::vector<query_progress> recent_progress() const = 0;
};

/// Starts the plan's tasks and returns at once.
result<std::unique_ptr<job_execution>> execute(const graph& g, const physical_plan& plan,
                                               const runtime_options& opts);

} // namespace sluice
