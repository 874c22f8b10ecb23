#include "core/progress.hpp"

#include <nlohmann/json.hpp>

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
  return j.dump();
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
