#pragma once
/// The IoT job as building blocks, shared by the sample's `main` and tests/iot:
///
/// ```cpp
/// auto readings = j.from(fleet_source{...}, reading_watermarks(15s, 1min)).name(source_node);
/// auto out = monitor_devices(readings, {.window = 1min, .bands = {...}});
/// out.averages.sink_to(sinks::console<device_window>{}).name("averages-out");
/// out.alerts.sink_to(sinks::console<band_alert>{}).name("alerts-out");
/// ```
#include "sluice/api/job.hpp"
#include "sluice/operators/collector.hpp"
#include "sluice/operators/keyed_process.hpp"
#include "sluice/operators/state/state.hpp"
#include "sluice/operators/window/window_result.hpp"
#include "sluice/samples/iot_sensors/types.hpp"
#include "sluice/sources/watermarks.hpp"

#include <chrono>
#include <map>
#include <optional>
#include <string>

namespace sluice::iot {

/// Node names.
inline constexpr const char* source_node = "readings";
inline constexpr const char* averages_node = "per-device-averages";
inline constexpr const char* alerts_node = "band-alerts";
inline constexpr const char* late_node = "late-readings";

/// The result of one device's window.
using device_window = window_result<std::string, temperature_stats>;

/// Event time is the device's timestamp; the watermark of each device (split) trails its
/// newest reading by `out_of_orderness`. With `idle_timeout`, a device silent for that long
/// (processing time) stops holding the watermark back.
watermark_strategy<reading> reading_watermarks(std::chrono::microseconds out_of_orderness,
                                               std::optional<std::chrono::nanoseconds> idle_timeout);

/// Count, mean, min and max of a window's temperatures (an incremental window aggregate).
struct temperature_aggregate {
  struct acc {
    std::uint64_t n = 0;
    double sum = 0;
    double min = 0;
    double max = 0;
  };
  acc create() const { return {}; }
  void add(acc& a, const reading& r) const;
  temperature_stats result(const acc& a) const;
};

template <class Inspector>
bool inspect(Inspector& f, temperature_aggregate::acc& x) {
  return f.object("acc").fields(f.field("n", x.n), f.field("sum", x.sum), f.field("min", x.min),
                                f.field("max", x.max));
}

/// The bands: per device, else `fallback`.
struct band_options {
  std::map<std::string, band> per_device{};
  band fallback{}; ///< default [10, 35] °C
  const band& of(const std::string& device) const;
};

/// Keyed by device: one alert per excursion out of the device's band.
///
/// - State: the device's newest reading by event time (its time and whether it was in the
///   band), so an alert marks where an excursion starts, not every reading of it.
/// - A reading out of band alerts when the device's newest earlier reading was in band
///   (or there is none). A reading in band ends the excursion.
/// - Out of order: a reading older than the newest known one does not change the state.
///   Out of band, it alerts only if the newest one was in band (an excursion that is over,
///   seen late); in band, it changes nothing.
struct band_monitor {
  struct last_seen {
    sluice::event_time at{};
    bool in_band = true;
  };
  band_options bands;
  state_descriptor<value_state<last_seen>> last{"last-reading"};

  void on_element(const reading& r, keyed_process_context<std::string>& ctx,
                  collector<band_alert>& out);
};

template <class Inspector>
bool inspect(Inspector& f, band_monitor::last_seen& x) {
  return f.object("last_seen").fields(f.field("at", x.at), f.field("in_band", x.in_band));
}

struct pipeline_options {
  /// Tumbling event-time window per device. Default 1 minute.
  std::chrono::microseconds window = std::chrono::minutes{1};
  band_options bands{};
};

struct pipeline_outputs {
  stream<device_window> averages;
  stream<band_alert> alerts;
  stream<late_reading> late; ///< readings too late for their window
};

/// Adds the per-device windowed statistics (`averages_node`), the readings too late for
/// them (`late_node`) and the band alerts (`alerts_node`), all keyed by device.
pipeline_outputs monitor_devices(stream<reading> readings, const pipeline_options& opts);

} // namespace sluice::iot
