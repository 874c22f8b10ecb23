// iot_sensors: per-device windowed temperature averages and band alerts over sensors whose
// clocks drift and whose readings arrive out of order (see README.md).
//
//   iot_sensors                                   # the built-in fleet, as fast as it goes
//   iot_sensors --rate 50 --keep-open --silent-device 3 --silent-after 30 --metrics-port 9249
//   iot_sensors --source file --input samples/iot_sensors/data/readings.jsonl
#include "sluice/api/job.hpp"
#include "sluice/samples/common/cli.hpp"
#include "sluice/samples/common/run.hpp"
#include "sluice/samples/iot_sensors/devices.hpp"
#include "sluice/samples/iot_sensors/pipeline.hpp"
#include "sluice/sinks/console.hpp"
#include "sluice/sources/file.hpp"

#include <fmt/core.h>

#include <charconv>
#include <iostream>

using namespace sluice;
using namespace sluice::iot;

namespace {

/// "LOW:HIGH" -> band; errors name the flag and the text.
result<band> parse_band(const std::string& flag, std::string_view text) {
  const auto colon = text.find(':');
  band b;
  auto num = [](std::string_view s, double& out) {
    auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
    return ec == std::errc{} && p == s.data() + s.size() && !s.empty();
  };
  if (colon == std::string_view::npos || !num(text.substr(0, colon), b.low) ||
      !num(text.substr(colon + 1), b.high) || !(b.low <= b.high))
    return make_error(error_code::invalid_option,
                      flag + ": expected LOW:HIGH with LOW <= HIGH, got " + std::string{text});
  return b;
}

} // namespace

int main(int argc, char** argv) {
  CLI::App app{"Per-device temperature averages and band alerts over drifting, out-of-order sensors"};
  samples::common_flags common;
  std::string source = "generator";
  std::string input;
  fleet_options fleet_opts;
  std::uint64_t readings = fleet_opts.readings_per_device;
  std::string interval = "10s", max_delay = "15s", max_offset = "20s";
  int silent_device = 0;
  double rate = 0;
  bool keep_open = false;
  std::string window = "1m", out_of_orderness = "15s", idle_timeout = "30s";
  std::string default_band = "10:35";
  std::vector<std::string> band_flags;
  samples::add_common_flags(app, common);
  app.add_option("--source", source, "generator (the built-in fleet) or file (JSON lines)")
    ->check(CLI::IsMember({"generator", "file"}));
  app.add_option("--input", input, "file or directory of JSON-lines readings (--source file)");
  app.add_option("--devices", fleet_opts.devices, "generator: number of devices")
    ->check(CLI::Range(1, 99));
  app.add_option("--readings", readings, "generator: readings per device")
    ->check(CLI::Range(std::uint64_t{1}, std::uint64_t{10'000'000}));
  app.add_option("--interval", interval, "generator: time between a device's readings");
  app.add_option("--max-delay", max_delay, "generator: network delay of a reading, at most");
  app.add_option("--max-clock-offset", max_offset, "generator: how far off a device clock is, at most");
  app.add_option("--spike-probability", fleet_opts.spike_probability,
                 "generator: chance that a reading leaves its band")->check(CLI::Range(0.0, 1.0));
  app.add_option("--seed", fleet_opts.seed, "generator: seed");
  app.add_option("--silent-device", silent_device,
                 "generator: this device (1-based) goes silent after --silent-after readings");
  app.add_option("--silent-after", fleet_opts.silent_after, "generator: see --silent-device");
  app.add_option("--rate", rate, "generator: readings per second (0: as fast as possible)")
    ->check(CLI::NonNegativeNumber);
  app.add_flag("--keep-open", keep_open,
               "generator: stay open after the last reading, as a live fleet (stop with Ctrl-C "
               "or --duration; open windows then stay unfired)");
  app.add_option("--window", window, "tumbling event-time window per device");
  app.add_option("--out-of-orderness", out_of_orderness,
                 "how far a device's readings may arrive out of order");
  app.add_option("--idle-timeout", idle_timeout,
                 "a device silent this long (processing time) stops holding the watermark "
                 "back (0: never)");
  app.add_option("--band", band_flags, "DEVICE=LOW:HIGH, a device's band in °C; repeatable");
  app.add_option("--default-band", default_band,
                 "LOW:HIGH for devices without --band (file source; the generator gives "
                 "each device its nominal ± 4 °C)");
  CLI11_PARSE(app, argc, argv);

  auto fail = [](const error& e, int code = 2) {
    std::cerr << "iot_sensors: " << e.to_string() << "\n";
    return code;
  };
  job_options opts;
  opts.name = "iot-sensors";
  auto duration = samples::apply_common_flags(common, opts);
  if (!duration)
    return fail(duration.error());
  using samples::duration_rule;
  auto window_size = samples::duration_flag("--window", window, duration_rule::positive);
  auto delay = samples::duration_flag("--out-of-orderness", out_of_orderness, duration_rule::not_negative);
  auto idle = samples::duration_flag("--idle-timeout", idle_timeout, duration_rule::not_negative);
  auto every = samples::duration_flag("--interval", interval, duration_rule::positive);
  auto net = samples::duration_flag("--max-delay", max_delay, duration_rule::not_negative);
  auto offset = samples::duration_flag("--max-clock-offset", max_offset, duration_rule::not_negative);
  for (auto* d : {&window_size, &delay, &idle, &every, &net, &offset})
    if (!*d)
      return fail(d->error());
  pipeline_options pipe{.window = *window_size};
  auto fallback = parse_band("--default-band", default_band);
  if (!fallback)
    return fail(fallback.error());
  pipe.bands.fallback = *fallback;

  job j{opts};
  const auto strategy =
    reading_watermarks(*delay, idle->count() > 0 ? std::optional{std::chrono::nanoseconds{*idle}}
                                                 : std::nullopt);
  std::optional<stream<reading>> in;
  if (source == "file") {
    if (input.empty())
      return fail(make_error(error_code::invalid_option, "--source file needs --input"));
    sources::file_options fo;
    fo.path = input;
    in = j.from(sources::file<reading>{fo}, strategy).name(source_node).parallelism(1);
  } else {
    fleet_opts.readings_per_device = readings;
    fleet_opts.interval = std::chrono::duration_cast<std::chrono::milliseconds>(*every);
    fleet_opts.max_delay = std::chrono::duration_cast<std::chrono::milliseconds>(*net);
    fleet_opts.max_clock_offset = std::chrono::duration_cast<std::chrono::milliseconds>(*offset);
    if (silent_device != 0)
      fleet_opts.silent_device = silent_device;
    auto f = fleet::make(fleet_opts);
    if (!f)
      return fail(f.error());
    for (const auto& d : f->devices())
      pipe.bands.per_device[d.name] = d.band;
    fleet_source_options so;
    so.keep_open = keep_open;
    if (rate > 0)
      so.rate = rate;
    in = j.from(fleet_source{f->arrivals(), fleet_opts.devices, so}, strategy).name(source_node);
  }
  for (const auto& flag : band_flags) {
    const auto eq = flag.find('=');
    if (eq == std::string::npos || eq == 0)
      return fail(make_error(error_code::invalid_option, "--band: expected DEVICE=LOW:HIGH, got " + flag));
    auto b = parse_band("--band", std::string_view{flag}.substr(eq + 1));
    if (!b)
      return fail(b.error());
    pipe.bands.per_device[flag.substr(0, eq)] = *b;
  }

  auto out = monitor_devices(*in, pipe);
  out.averages.sink_to(sinks::console<device_window>{}).name("averages-out");
  out.alerts.sink_to(sinks::console<band_alert>{}).name("alerts-out");
  out.late.sink_to(sinks::console<late_reading>{}).name("late-out");

  auto done = samples::explain_or_run(j, common, *duration, {.program = "iot_sensors"});
  if (!done)
    return done.exit_code();
  std::uint64_t read = 0, late = 0, behind = 0;
  for (const auto& t : done->tasks) {
    if (t.chain_id == 0)
      read += t.records_in;
    late += t.late_records;
    behind += t.records_behind_watermark;
  }
  std::cerr << fmt::format("iot_sensors: {}, {} readings read, {} too late for their window, "
                           "{} behind the watermark on arrival\n",
                           done->cancelled ? "stopped" : "finished", read, late, behind);
  return 0;
}
