// Spark's output-mode rules (UnsupportedOperationChecker), checked before a job starts.
#include "graph/graph.hpp"

#include <string>

namespace sluice {

namespace {

std::string mode_name(output_mode m) {
  switch (m) {
    case output_mode::append: return "Append";
    case output_mode::update: return "Update";
    case output_mode::complete: return "Complete";
  }
  return "?";
}

error unsupported(std::string text) {
  return make_error(error_code::invalid_graph, std::move(text));
}

} // namespace

result<void> check_query_rules(const graph& g, std::optional<output_mode> mode,
                               const trigger& when) {
  if (when.how == trigger::kind::continuous || when.how == trigger::kind::processing_time)
    if (when.interval.count() <= 0)
      return make_error(error_code::invalid_option,
                        "trigger " + when.describe() + ": the interval must be positive");
  if (when.micro_batch())
    for (auto& n : g.nodes())
      if (n.kind == node_kind::source && n.event_time && !n.watermark_delay)
        return make_error(error_code::invalid_option,
                          "source '" + n.name + "': micro-batch triggers compute Spark's "
                          "watermark (max event time - delay), which needs the source's "
                          "watermark strategy to be watermarks::bounded_out_of_orderness or "
                          "watermarks::monotonous, not a custom one");
  if (!mode)
    return {};
  const node_spec* aggregation = nullptr;
  bool unwindowed = false;
  for (auto& n : g.nodes()) {
    if (n.role.aggregation) {
      aggregation = &n;
      unwindowed = unwindowed || !n.role.event_time_aggregation;
    }
    if (n.role.session_window && *mode == output_mode::update)
      return unsupported("Update output mode not supported for session window on streaming "
                         "DataFrames/DataSets ('" + n.name + "'): use append or complete");
    if (n.role.stream_join && *mode != output_mode::append)
      return unsupported("Join between two streaming DataFrames/Datasets is not supported in " +
                         mode_name(*mode) + " output mode, only in Append output mode ('" +
                         n.name + "')");
  }
  if (*mode == output_mode::complete && !aggregation)
    return unsupported("Complete output mode not supported when there are no streaming "
                       "aggregations on streaming DataFrames/Datasets");
  if (*mode == output_mode::append && unwindowed)
    return unsupported("Append output mode not supported when there are streaming aggregations "
                       "on streaming DataFrames/DataSets without watermark (a keyed reduce or "
                       "aggregate never finalizes a row: use update or complete, or aggregate "
                       "over event-time windows)");
  for (auto& n : g.nodes())
    if (n.kind == node_kind::sink && !n.sink_modes.accepts(*mode))
      return unsupported("Data source " + n.name + " does not support " + mode_name(*mode) +
                         " output mode");
  return {};
}

} // namespace sluice
