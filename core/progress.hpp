#pragma once
/// A progress report per epoch, with the fields and meaning of Spark's
/// `StreamingQueryProgress`, so that dashboards and habits carry over.
#include "sluice/core/epoch.hpp"

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace sluice {

struct state_operator_progress {
  std::string name;
  std::uint64_t num_rows_total = 0;
  std::uint64_t num_rows_updated = 0;
  std::uint64_t num_rows_removed = 0;
  std::uint64_t num_rows_dropped_by_watermark = 0;
  std::uint64_t memory_used_bytes = 0;
};

struct source_progress {
  std::string description;
  std::string start_offset; ///< JSON text ("null" for the first epoch)
  std::string end_offset;   ///< JSON text
  std::uint64_t num_input_rows = 0;
  double input_rows_per_second = 0;
  double processed_rows_per_second = 0;
};

struct sink_progress {
  std::string description;
  std::uint64_t num_output_rows = 0;
};

/// Sluice's extra fields for one operator (all its instances), over the report's span.
struct operator_progress {
  std::string name;
  int parallelism = 1;
  std::uint64_t records_in = 0;  ///< in the report's span
  std::uint64_t records_out = 0; ///< in the report's span
  /// The lowest watermark of its instances, ISO-8601; empty without event time.
  std::string watermark;
  /// Processing time minus that watermark, in milliseconds (-1 without event time).
  std::int64_t watermark_lag_ms = -1;
  std::uint64_t late_records_dropped = 0;     ///< in the span, not sent anywhere
  std::uint64_t late_records_side_output = 0; ///< in the span, sent to a late-data output
  /// Shares of the span the task spent processing and waiting for credit (0 to 1).
  double busy_share = 0;
  double backpressured_share = 0;
  std::uint64_t state_entries = 0;
  std::uint64_t state_bytes = 0;
};

/// The newest checkpoint completed within the report's span.
struct checkpoint_progress {
  std::int64_t id = 0;
  std::int64_t duration_ms = 0;
  std::uint64_t bytes = 0;
};

struct query_progress {
  std::string id;     ///< the query's id (Spark keeps it in the checkpoint)
  std::string run_id; ///< new for every run
  std::string name;
  std::string timestamp; ///< when the epoch's trigger fired, ISO-8601 with milliseconds
  std::int64_t batch_id = 0;
  std::uint64_t num_input_rows = 0;
  double input_rows_per_second = 0;
  double processed_rows_per_second = 0;
  /// Phases in milliseconds: `triggerExecution` (the whole epoch), `latestOffset` (asking
  /// the sources what is available), `addBatch` (processing until every task passed the
  /// epoch's barrier).
  std::map<std::string, std::int64_t> duration_ms;
  /// Event times of the epoch's input: "min", "max", "avg", and "watermark" (the watermark
  /// the epoch ran with). Empty without event time.
  std::map<std::string, std::string> event_time;
  std::vector<state_operator_progress> state_operators;
  std::vector<source_progress> sources;
  sink_progress sink;
  /// Sluice's fields, in the JSON under `"sluice"`: per operator, and the checkpoint.
  std::vector<operator_progress> operators;
  std::optional<checkpoint_progress> checkpoint;
  /// Epochs this report covers: 1 in micro-batch mode; in continuous mode, every epoch
  /// that ended within the progress interval (`batch_id` is the last).
  std::int64_t epochs = 1;

  /// Folds the next epoch's report into this one (continuous mode): rows and durations
  /// add up, end offsets and state totals are the next one's.
  void absorb(const query_progress& next);

  /// Spark's JSON layout (`StreamingQueryProgress.json`), one object.
  std::string to_json() const;
};

/// Spark's `StreamingQueryStatus`: what the query is doing now.
struct query_status {
  std::string message = "Initializing";
  bool is_data_available = false;
  bool is_trigger_active = false;
};

/// Spark's `StreamingQueryListener`. The runtime calls a job's listeners one at a time
/// from one thread, in order: `on_started` first, then progress and idle events, and
/// `on_terminated` last (before `await_termination` returns). Keep them short: the job's
/// coordinator waits for them.
class query_listener {
public:
  struct started_event {
    std::string id;
    std::string run_id;
    std::string name;
    std::string timestamp; ///< ISO-8601 with milliseconds
  };
  struct idle_event {
    std::string id;
    std::string run_id;
    std::string timestamp;
  };
  struct terminated_event {
    std::string id;
    std::string run_id;
    /// The failure, when the job failed (unset after a clean end or `stop()`).
    std::optional<std::string> exception;
  };

  virtual ~query_listener() = default;
  virtual void on_started(const started_event&) {}
  virtual void on_progress(const query_progress&) {}
  /// A trigger (micro-batch) or a progress interval (continuous) found no new input.
  virtual void on_idle(const idle_event&) {}
  virtual void on_terminated(const terminated_event&) {}
};

} // namespace sluice
