#pragma once
/// A progress report per epoch, with the fields and meaning of Spark's
/// `StreamingQueryProgress`, so that dashboards and habits carry over.
#include "core/epoch.hpp"

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

  /// Spark's JSON layout (`StreamingQueryProgress.json`), one object.
  std::string to_json() const;
};

} // namespace sluice
