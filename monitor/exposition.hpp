#pragma once
/// What the monitor serves, rendered from a `job_snapshot`: Prometheus text and the JSON of
/// the status page's API. Pure functions, no I/O, so tests check them directly.
#include "sluice/actors/runtime.hpp"

#include <string>
#include <vector>

namespace sluice::monitor {

/// Prometheus text exposition format 0.0.4: `sluice_*` metrics in base units, counters
/// ending in `_total`, labelled `job`, `task` (the chain), `operator` and `instance`.
std::string prometheus_text(const job_snapshot& s);

/// A sample's value as the text format writes it: `NaN`, `+Inf` and `-Inf` for the
/// non-finite ones, else a decimal that reads back to exactly `v`.
std::string prometheus_value(double v);

/// `/api/job`: the job's state, status, plan (operators, edges, chains) and per-operator
/// figures summed over instances. `previous` (may be null) is an earlier snapshot: rates and
/// time shares are computed over the span between the two.
std::string job_json(const job_snapshot& s, const job_snapshot* previous);

/// `/api/progress`: the recent progress reports, oldest first, as a JSON array of Spark's
/// `StreamingQueryProgress` objects.
std::string progress_json(const std::vector<query_progress>& reports);

/// `/api/checkpoints`: completed, failed and the history (id, time, duration, size,
/// alignment, longest pause, savepoint).
std::string checkpoints_json(const job_snapshot& s);

} // namespace sluice::monitor
