#pragma once
/// Builds a Nexmark job: the source (source.hpp) and one query (queries.hpp). Shared by the
/// sample's main and tests/nexmark.
#include "sluice/samples/nexmark/queries.hpp"
#include "sluice/samples/nexmark/source.hpp"

#include <chrono>
#include <cstdint>
#include <optional>

namespace sluice::nexmark {

/// What to run.
struct run_options {
  int query = 0;                      ///< a number of `all_queries()`
  std::int64_t events = 100'000;      ///< events in total; positive
  /// Events per second of event time: the generator's timeline (Beam's firstEventRate).
  std::int64_t events_per_second = 10'000;
  /// Events per second of wall-clock time over all source instances; none: as fast as
  /// possible.
  std::optional<double> throttle{};
  /// How events are dealt out to parallel source instances.
  split_mode split = split_mode::ranges;
  /// Watermark alignment of the source instances (`with_watermark_alignment`, group
  /// "nexmark"): their max drift; none: not aligned.
  std::optional<duration> align_drift{};
  /// With `align_drift`: how often instances report their watermark (Flink's default 1 s).
  std::chrono::nanoseconds align_interval = std::chrono::seconds{1};
  /// q13's side input table; none: `default_side_input()`. Only q13 reads it.
  std::shared_ptr<const side_table> side_input{};
};

/// Adds the source and the query to `j`; the query's rows. Errors name a bad option.
result<stream<row>> add_query(job& j, const run_options& o);

} // namespace sluice::nexmark
