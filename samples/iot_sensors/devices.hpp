#pragma once
/// A fleet of simulated temperature sensors and the source that plays their readings.
///
/// ```cpp
/// auto fleet = iot::fleet::make({.devices = 5, .seed = 7});      // result<fleet>
/// job.from(iot::fleet_source{fleet->arrivals(), fleet->device_names(), {.rate = 100.0}},
///          iot::reading_watermarks(15s, 1min))
/// ```
///
/// The generator is deterministic: the same options give the same readings in the same
/// arrival order on every run and machine (splitmix64, no `<random>` distributions, whose
/// results differ between standard libraries).
///
/// Why each device is a split of the source: a device's clock is off by seconds and
/// drifts, so the readings of different devices cannot share one watermark without a
/// delay that covers the worst clock. As Kafka partitions in Flink, each device gets its
/// own watermark generator (its readings are out of order only by their network delay),
/// and the source's watermark is the minimum over the devices. A silent device would then
/// hold everybody's windows back: `with_idleness` lets the others go on without it.
#include "sluice/core/error.hpp"
#include "sluice/samples/iot_sensors/types.hpp"
#include "sluice/sources/source.hpp"

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace sluice::iot {

using namespace std::chrono_literals;

/// Options of the simulated fleet. Every default is the sample's.
struct fleet_options {
  /// Number of devices, named `sensor-01`, `sensor-02`, ... Default 5; 1 to 99.
  int devices = 5;
  /// Readings each device takes. Default 360 (an hour at one per 10 s).
  std::uint64_t readings_per_device = 360;
  /// True time between two readings of a device. Default 10 s; must be positive.
  std::chrono::milliseconds interval = 10s;
  /// Each device's clock is off by a fixed amount of at most this, either way. Default 20 s.
  std::chrono::milliseconds max_clock_offset = 20s;
  /// ...and drifts by at most this many microseconds per second, either way. Default 500.
  double max_drift_ppm = 500;
  /// Each reading is delayed on its way by 0 to this (so a device's readings arrive out of
  /// order when it exceeds `interval`). Default 15 s; not negative.
  std::chrono::milliseconds max_delay = 15s;
  /// The chance that a reading is a spike 8 °C off the device's nominal temperature (it
  /// leaves the device's band). Default 0.02; 0 to 1.
  double spike_probability = 0.02;
  std::uint64_t seed = 42;
  /// This device (1-based, as in its name) goes silent after `silent_after` readings, as a
  /// sensor whose battery died. Default: none.
  std::optional<int> silent_device{};
  std::uint64_t silent_after = 0;
  /// True time of the first reading. Default 2026-01-01T00:00:00Z.
  sluice::event_time start{std::chrono::sys_days{std::chrono::year{2026} / 1 / 1}};
};

/// What the generator decided for one device.
struct device_profile {
  std::string name;
  double nominal = 20;            ///< its usual temperature
  iot::band band;                 ///< nominal ± 4 °C: spikes leave it, noise does not
  std::chrono::microseconds clock_offset{};
  double drift_ppm = 0;
};

/// A reading and the device (index into the fleet's devices) that sent it.
struct arrival {
  int device = 0;
  reading value;
};

/// The simulated fleet: its devices and every reading in the order it arrives.
class fleet {
public:
  /// Fails with `invalid_option` naming the option when one is out of range.
  [[nodiscard]] static result<fleet> make(const fleet_options& opts);

  const std::vector<device_profile>& devices() const noexcept { return devices_; }
  std::vector<std::string> device_names() const;
  /// Every reading, ordered by arrival time (true time + network delay).
  const std::shared_ptr<const std::vector<arrival>>& arrivals() const noexcept { return arrivals_; }

private:
  std::vector<device_profile> devices_;
  std::shared_ptr<const std::vector<arrival>> arrivals_;
};

/// How the source plays the readings.
struct fleet_source_options {
  /// Readings per second of processing time; unset (the default) for as fast as possible.
  std::optional<double> rate{};
  /// After the last reading, stay open (as a live fleet: the job runs until cancelled, and
  /// windows fire only as the watermark moves) instead of ending (which fires every window).
  /// Default false.
  bool keep_open = false;
};

/// Plays `arrivals` in order, each device a split (see the file comment). One instance: the
/// readings of a device must stay in one channel. The position (the next arrival) is
/// checkpointed, so a restored job continues where it stopped.
class device_source final : public source<reading> {
public:
  device_source(std::shared_ptr<const std::vector<arrival>> arrivals, int devices,
                fleet_source_options opts)
    : arrivals_(std::move(arrivals)), devices_(devices), opts_(opts) {}

  result<void> open(const source_context& ctx) override;
  result<poll_result> poll(source_output<reading>& out, std::size_t max) override;
  std::optional<std::string> position() const override { return std::to_string(next_); }
  [[nodiscard]] result<void> seek(std::string_view position) override;

private:
  std::shared_ptr<const std::vector<arrival>> arrivals_;
  int devices_ = 0;
  fleet_source_options opts_;
  std::shared_ptr<const clock> clock_;
  clock::time_point start_{};
  std::size_t next_ = 0;
  std::size_t first_ = 0; ///< where this run started (the pace counts from here)
  bool announced_ = false;
};

/// Descriptor for `job.from(...)`.
struct fleet_source {
  using record_type = reading;
  std::shared_ptr<const std::vector<arrival>> arrivals;
  int devices = 0;
  fleet_source_options options{};

  std::unique_ptr<source<reading>> create(const source_context&) const {
    return std::make_unique<device_source>(arrivals, devices, options);
  }
  std::string describe() const;
  int max_parallelism() const { return 1; }
};

} // namespace sluice::iot
