#pragma once
/// The records of the IoT sensors sample: temperature readings in, per-device window
/// statistics and band alerts out.
#include "sluice/core/time.hpp"

#include <cstdint>
#include <string>

namespace sluice::iot {

/// One reading as a device sends it. `timestamp` is the device's own clock (event time):
/// it drifts and may be off by seconds, and readings arrive out of order.
struct reading {
  std::string device;               ///< e.g. "sensor-03"
  double temperature = 0;           ///< degrees Celsius
  sluice::event_time timestamp{};   ///< the device's clock when it measured

  friend bool operator==(const reading&, const reading&) = default;
};

template <class Inspector>
bool inspect(Inspector& f, reading& x) {
  return f.object("reading")
    .fields(f.field("device", x.device), f.field("temperature", x.temperature),
            f.field("timestamp", x.timestamp));
}

/// The statistics of one device's readings in one window (the value of a
/// `window_result<std::string, temperature_stats>`).
struct temperature_stats {
  std::uint64_t readings = 0;
  double avg = 0; ///< rounded to 0.01 °C
  double min = 0;
  double max = 0;

  friend bool operator==(const temperature_stats&, const temperature_stats&) = default;
};

template <class Inspector>
bool inspect(Inspector& f, temperature_stats& x) {
  return f.object("temperature_stats")
    .fields(f.field("readings", x.readings), f.field("avg", x.avg), f.field("min", x.min),
            f.field("max", x.max));
}

/// A device's allowed temperatures: `[low, high]`, both inclusive.
struct band {
  double low = 10;
  double high = 35;

  bool contains(double t) const noexcept { return t >= low && t <= high; }
};

/// A reading left its device's band: the first reading of an excursion.
struct band_alert {
  std::string device;
  sluice::event_time timestamp{}; ///< of the reading that left the band
  double temperature = 0;
  double low = 0;  ///< the band it left
  double high = 0;
  std::string direction; ///< "above" or "below"

  friend bool operator==(const band_alert&, const band_alert&) = default;
};

template <class Inspector>
bool inspect(Inspector& f, band_alert& x) {
  return f.object("band_alert")
    .fields(f.field("device", x.device), f.field("timestamp", x.timestamp),
            f.field("temperature", x.temperature), f.field("low", x.low),
            f.field("high", x.high), f.field("direction", x.direction));
}

/// A reading that came after the watermark had closed its window: not in any average,
/// printed on its own (the window's late-data side output), so nothing is lost unseen.
struct late_reading {
  reading late;

  friend bool operator==(const late_reading&, const late_reading&) = default;
};

template <class Inspector>
bool inspect(Inspector& f, late_reading& x) {
  return f.object("late_reading").fields(f.field("late", x.late));
}

} // namespace sluice::iot
