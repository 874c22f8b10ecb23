#include "sluice/core/progress.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>

namespace sluice {

namespace {

/// Offsets are JSON text already; embed them as JSON, not as strings.
nlohmann::json offset_json(const std::string& text) {
  if (text.empty())
    return nullptr;
  auto parsed = nlohmann::json::parse(text, nullptr, false);
  return parsed.is_discarded() ? nlohmann::json(text) : parsed;
}

} // namespace

std::string query_progress::to_json() const {
  nlohmann::ordered_json j;
  j["id"] = id;
  j["runId"] = run_id;
  j["name"] = name;
  j["timestamp"] = timestamp;
  j["batchId"] = batch_id;
  j["numInputRows"] = num_input_rows;
  j["inputRowsPerSecond"] = input_rows_per_second;
  j["processedRowsPerSecond"] = processed_rows_per_second;
  j["durationMs"] = nlohmann::ordered_json::object();
  for (auto& [k, v] : duration_ms)
    j["durationMs"][k] = v;
  if (!event_time.empty()) {
    auto& e = j["eventTime"] = nlohmann::ordered_json::object();
    for (const char* k : {"avg", "max", "min", "watermark"})
      if (auto it = event_time.find(k); it != event_time.end())
        e[k] = it->second;
  }
  j["stateOperators"] = nlohmann::ordered_json::array();
  for (auto& s : state_operators)
    j["stateOperators"].push_back({{"operatorName", s.name},
                                   {"numRowsTotal", s.num_rows_total},
                                   {"numRowsUpdated", s.num_rows_updated},
                                   {"numRowsRemoved", s.num_rows_removed},
                                   {"numRowsDroppedByWatermark", s.num_rows_dropped_by_watermark},
                                   {"memoryUsedBytes", s.memory_used_bytes}});
  j["sources"] = nlohmann::ordered_json::array();
  for (auto& s : sources)
    j["sources"].push_back({{"description", s.description},
                            {"startOffset", offset_json(s.start_offset)},
                            {"endOffset", offset_json(s.end_offset)},
                            {"numInputRows", s.num_input_rows},
                            {"inputRowsPerSecond", s.input_rows_per_second},
                            {"processedRowsPerSecond", s.processed_rows_per_second}});
  j["sink"] = {{"description", sink.description}, {"numOutputRows", sink.num_output_rows}};
  auto& x = j["sluice"] = nlohmann::ordered_json::object();
  x["epochs"] = epochs;
  x["operators"] = nlohmann::ordered_json::array();
  for (auto& o : operators) {
    nlohmann::ordered_json e{{"name", o.name},
                             {"parallelism", o.parallelism},
                             {"recordsIn", o.records_in},
                             {"recordsOut", o.records_out}};
    if (!o.watermark.empty()) {
      e["watermark"] = o.watermark;
      e["watermarkLagMs"] = o.watermark_lag_ms;
    }
    e["lateRecordsDropped"] = o.late_records_dropped;
    e["lateRecordsSideOutput"] = o.late_records_side_output;
    e["busyShare"] = o.busy_share;
    e["backpressuredShare"] = o.backpressured_share;
    e["stateEntries"] = o.state_entries;
    e["stateBytes"] = o.state_bytes;
    x["operators"].push_back(std::move(e));
  }
  if (checkpoint)
    x["checkpoint"] = {{"id", checkpoint->id},
                       {"durationMs", checkpoint->duration_ms},
                       {"bytes", checkpoint->bytes}};
  return j.dump();
}

void query_progress::absorb(const query_progress& next) {
  const auto rows_before = num_input_rows;
  batch_id = next.batch_id;
  epochs += next.epochs;
  num_input_rows += next.num_input_rows;
  for (auto& [k, v] : next.duration_ms)
    duration_ms[k] += v;
  // ISO-8601 texts of one format order like the instants they name.
  for (auto& [k, v] : next.event_time) {
    auto it = event_time.find(k);
    if (it == event_time.end() || k == "watermark")
      event_time[k] = v;
    else if (k == "min")
      it->second = std::min(it->second, v);
    else if (k == "max")
      it->second = std::max(it->second, v);
    else if (k == "avg" && next.num_input_rows > rows_before)
      it->second = v; // the mean of the busier epoch: exact means need the raw sums
  }
  for (auto& s : next.state_operators) {
    auto it = std::find_if(state_operators.begin(), state_operators.end(),
                           [&](const state_operator_progress& o) { return o.name == s.name; });
    if (it == state_operators.end()) {
      state_operators.push_back(s);
      continue;
    }
    it->num_rows_total = s.num_rows_total;
    it->memory_used_bytes = s.memory_used_bytes;
    it->num_rows_updated += s.num_rows_updated;
    it->num_rows_removed += s.num_rows_removed;
    it->num_rows_dropped_by_watermark += s.num_rows_dropped_by_watermark;
  }
  for (auto& s : next.sources) {
    auto it = std::find_if(sources.begin(), sources.end(),
                           [&](const source_progress& o) { return o.description == s.description; });
    if (it == sources.end()) {
      sources.push_back(s);
      continue;
    }
    it->end_offset = s.end_offset;
    it->num_input_rows += s.num_input_rows;
  }
  if (sink.description.empty())
    sink.description = next.sink.description;
  sink.num_output_rows += next.sink.num_output_rows;
}

std::string_view to_string(output_mode m) noexcept {
  switch (m) {
    case output_mode::append: return "append";
    case output_mode::update: return "update";
    case output_mode::complete: return "complete";
  }
  return "?";
}

std::string trigger::describe() const {
  const auto ms = std::to_string(interval.count()) + "ms";
  switch (how) {
    case kind::continuous: return "continuous(epochs every " + ms + ")";
    case kind::processing_time: return "processing_time(" + ms + ")";
    case kind::available_now: return "available_now";
    case kind::once: return "once";
  }
  return "?";
}

} // namespace sluice
