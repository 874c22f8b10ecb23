#include "sluice/samples/iot_sensors/devices.hpp"

#include "sluice/sources/generator.hpp" // splitmix64

#include <fmt/core.h>

#include <algorithm>
#include <cmath>

namespace sluice::iot {

namespace {

/// A uniform number in [0, 1) from the seed and a stream of draws.
double unit(std::uint64_t seed, std::uint64_t draw) noexcept {
  return static_cast<double>(splitmix64(seed ^ splitmix64(draw)) >> 11) * 0x1.0p-53;
}

/// A uniform number in [-1, 1).
double signed_unit(std::uint64_t seed, std::uint64_t draw) noexcept {
  return 2 * unit(seed, draw) - 1;
}

double round2(double x) noexcept { return std::round(x * 100) / 100; }

// Draw numbers: one range per purpose, so changing one option leaves the others' draws.
constexpr std::uint64_t profile_draws = 1ull << 40;
constexpr std::uint64_t reading_draws = 2ull << 40;

} // namespace

result<fleet> fleet::make(const fleet_options& o) {
  auto bad = [](const std::string& what) { return make_error(error_code::invalid_option, what); };
  if (o.devices < 1 || o.devices > 99)
    return bad(fmt::format("fleet: devices must be 1 to 99, got {}", o.devices));
  if (o.interval.count() <= 0)
    return bad(fmt::format("fleet: interval must be positive, got {}ms", o.interval.count()));
  if (o.max_delay.count() < 0 || o.max_clock_offset.count() < 0)
    return bad("fleet: max_delay and max_clock_offset must not be negative");
  if (!(o.max_drift_ppm >= 0 && o.max_drift_ppm <= 1e5))
    return bad(fmt::format("fleet: max_drift_ppm must be 0 to 100000, got {}", o.max_drift_ppm));
  if (!(o.spike_probability >= 0 && o.spike_probability <= 1))
    return bad(fmt::format("fleet: spike_probability must be 0 to 1, got {}", o.spike_probability));
  if (o.silent_device && (*o.silent_device < 1 || *o.silent_device > o.devices))
    return bad(fmt::format("fleet: silent_device must be 1 to {}, got {}", o.devices, *o.silent_device));
  if (o.readings_per_device > 10'000'000)
    return bad(fmt::format("fleet: at most 10000000 readings per device, got {}",
                           o.readings_per_device));

  fleet f;
  for (int d = 0; d < o.devices; ++d) {
    const auto k = profile_draws + static_cast<std::uint64_t>(d) * 8;
    device_profile p;
    p.name = fmt::format("sensor-{:02}", d + 1);
    p.nominal = round2(18 + 6 * unit(o.seed, k));
    p.band = {round2(p.nominal - 4), round2(p.nominal + 4)};
    p.clock_offset = std::chrono::microseconds{static_cast<std::int64_t>(
      signed_unit(o.seed, k + 1) * static_cast<double>(o.max_clock_offset.count()) * 1000)};
    p.drift_ppm = signed_unit(o.seed, k + 2) * o.max_drift_ppm;
    f.devices_.push_back(std::move(p));
  }

  struct timed {
    sluice::event_time arrives;
    arrival a;
  };
  std::vector<timed> all;
  const auto interval = std::chrono::duration_cast<std::chrono::microseconds>(o.interval);
  const auto max_delay_us = static_cast<double>(
    std::chrono::duration_cast<std::chrono::microseconds>(o.max_delay).count());
  for (int d = 0; d < o.devices; ++d) {
    const auto& p = f.devices_[static_cast<std::size_t>(d)];
    auto count = o.readings_per_device;
    if (o.silent_device && *o.silent_device == d + 1)
      count = std::min(count, o.silent_after);
    // Devices take turns within an interval instead of all measuring at once.
    const auto phase = interval * d / o.devices;
    for (std::uint64_t n = 0; n < count; ++n) {
      const auto k = reading_draws + (static_cast<std::uint64_t>(d) << 32) + n * 4;
      const auto since_start = interval * static_cast<std::int64_t>(n) + phase;
      const auto truth = o.start + since_start;
      const auto drift = std::chrono::microseconds{static_cast<std::int64_t>(
        static_cast<double>(since_start.count()) * p.drift_ppm / 1e6)};
      double t = p.nominal + signed_unit(o.seed, k);   // ±1 °C of noise
      if (unit(o.seed, k + 1) < o.spike_probability)
        t += unit(o.seed, k + 2) < 0.5 ? -8 : 8;
      const auto delay = std::chrono::microseconds{
        static_cast<std::int64_t>(unit(o.seed, k + 3) * max_delay_us)};
      all.push_back({truth + delay, {d, {p.name, round2(t), truth + p.clock_offset + drift}}});
    }
  }
  std::stable_sort(all.begin(), all.end(),
                   [](const timed& a, const timed& b) { return a.arrives < b.arrives; });
  auto arrivals = std::make_shared<std::vector<arrival>>();
  arrivals->reserve(all.size());
  for (auto& t : all)
    arrivals->push_back(std::move(t.a));
  f.arrivals_ = std::move(arrivals);
  return f;
}

std::vector<std::string> fleet::device_names() const {
  std::vector<std::string> names;
  for (const auto& d : devices_)
    names.push_back(d.name);
  return names;
}

result<void> device_source::open(const source_context& ctx) {
  if (ctx.parallelism != 1)
    return make_error(error_code::invalid_option,
                      "source '" + ctx.name + "': the fleet source runs as one instance");
  if (opts_.rate && !(*opts_.rate > 0))
    return make_error(error_code::invalid_option,
                      "source '" + ctx.name + "': the rate must be positive");
  clock_ = ctx.processing_clock;
  start_ = clock_->now();
  first_ = next_;
  return {};
}

result<void> device_source::seek(std::string_view position) {
  auto n = parse_sequence_number(position);
  if (!n || *n > arrivals_->size())
    return make_error(error_code::connector_failed,
                      "fleet source: position '" + std::string{position} +
                        "' is not an arrival index within " + std::to_string(arrivals_->size()));
  next_ = static_cast<std::size_t>(*n);
  first_ = next_;
  return {};
}

result<poll_result> device_source::poll(source_output<reading>& out, std::size_t max) {
  if (!announced_) {
    // Every device holds the watermark back from the start, until it sends or turns idle:
    // a device that is slow to send its first reading must not find its windows closed.
    for (int d = 0; d < devices_; ++d)
      out.add_split(d);
    announced_ = true;
  }
  const auto& all = *arrivals_;
  if (next_ >= all.size())
    return opts_.keep_open ? poll_result::idle(10ms) : poll_result::end();
  auto stop = std::min(all.size(), next_ + max);
  if (opts_.rate) {
    const std::chrono::duration<double> elapsed = clock_->now() - start_;
    const auto due = first_ + static_cast<std::size_t>(elapsed.count() * *opts_.rate) + 1;
    stop = std::min(stop, due);
    if (stop <= next_)
      return poll_result::idle(std::chrono::duration_cast<std::chrono::nanoseconds>(
        std::chrono::duration<double>{1.0 / *opts_.rate}));
  }
  int split = -1;
  for (; next_ < stop; ++next_) {
    const auto& a = all[next_];
    if (a.device != split) {
      out.begin_split(a.device);
      split = a.device;
    }
    out.records.push_back(a.value);
  }
  return poll_result::more();
}

std::string fleet_source::describe() const {
  return fmt::format("fleet of {} devices, {} readings", devices, arrivals ? arrivals->size() : 0);
}

} // namespace sluice::iot
