#include "sluice/samples/iot_sensors/pipeline.hpp"

#include <algorithm>
#include <cmath>

namespace sluice::iot {

watermark_strategy<reading> reading_watermarks(std::chrono::microseconds out_of_orderness,
                                               std::optional<std::chrono::nanoseconds> idle_timeout) {
  auto s = watermarks::bounded_out_of_orderness<reading>(out_of_orderness, &reading::timestamp);
  return idle_timeout ? s.with_idleness(*idle_timeout) : s;
}

void temperature_aggregate::add(acc& a, const reading& r) const {
  a.min = a.n == 0 ? r.temperature : std::min(a.min, r.temperature);
  a.max = a.n == 0 ? r.temperature : std::max(a.max, r.temperature);
  a.sum += r.temperature;
  ++a.n;
}

temperature_stats temperature_aggregate::result(const acc& a) const {
  const double mean = a.n == 0 ? 0 : a.sum / static_cast<double>(a.n);
  // Rounded, so that the sample's text output does not depend on the last bits of a sum.
  return {a.n, std::round(mean * 100) / 100, a.min, a.max};
}

const band& band_options::of(const std::string& device) const {
  auto it = per_device.find(device);
  return it == per_device.end() ? fallback : it->second;
}

void band_monitor::on_element(const reading& r, keyed_process_context<std::string>& ctx,
                              collector<band_alert>& out) {
  const auto& b = bands.of(r.device);
  const bool inside = b.contains(r.temperature);
  auto state = ctx.state(last);
  const auto newest = state.value();
  const bool newer = !newest || r.timestamp >= newest->at;
  if (!inside && (!newest || newest->in_band))
    out.collect(band_alert{r.device, r.timestamp, r.temperature, b.low, b.high,
                           r.temperature > b.high ? "above" : "below"});
  if (newer)
    state.update({r.timestamp, inside});
}

pipeline_outputs monitor_devices(stream<reading> readings, const pipeline_options& opts) {
  auto by_device =
    readings.key_by([](const reading& r) { return r.device; }, "device");
  auto windowed = by_device.window(windows::tumbling{.size = opts.window});
  auto averages = windowed.aggregate(temperature_aggregate{}).name(averages_node);
  auto late = windowed.late_data().map([](const reading& r) { return late_reading{r}; }).name(late_node);
  auto alerts = by_device.process(band_monitor{opts.bands}).name(alerts_node);
  return {averages, alerts, late};
}

} // namespace sluice::iot
