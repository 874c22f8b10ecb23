// samples/iot_sensors: the fleet generator, the band alerts through the operator harness,
// and the idleness of silent devices, at the source and through a whole job.
#define BOOST_TEST_MODULE iot_test
#include <boost/test/unit_test.hpp>

#include "sluice/api/job.hpp"
#include "sluice/operators/harness.hpp"
#include "sluice/operators/keyed_process.hpp"
#include "sluice/samples/iot_sensors/devices.hpp"
#include "sluice/samples/iot_sensors/pipeline.hpp"
#include "sluice/sinks/memory.hpp"
#include "sluice/tests/engine/test_helpers.hpp"

#include <algorithm>
#include <atomic>
#include <map>
#include <set>
#include <tuple>

using namespace sluice;
using namespace sluice::iot;
using namespace sluice::test;
using namespace std::chrono_literals;

namespace {

const event_time t0{std::chrono::sys_days{std::chrono::year{2026} / 1 / 1}};

reading r(const std::string& device, double temperature, std::chrono::microseconds at) {
  return {device, temperature, t0 + at};
}

} // namespace

BOOST_AUTO_TEST_SUITE(fleet_generator)

BOOST_AUTO_TEST_CASE(the_same_seed_gives_the_same_readings_and_another_seed_others) {
  auto a = require_ok(fleet::make({.devices = 4, .readings_per_device = 50, .seed = 7}));
  auto b = require_ok(fleet::make({.devices = 4, .readings_per_device = 50, .seed = 7}));
  auto c = require_ok(fleet::make({.devices = 4, .readings_per_device = 50, .seed = 8}));
  BOOST_REQUIRE_EQUAL(a.arrivals()->size(), 200u);
  auto values = [](const iot::fleet& f) {
    std::vector<reading> v;
    for (const auto& x : *f.arrivals())
      v.push_back(x.value);
    return v;
  };
  BOOST_TEST((values(a) == values(b)));
  BOOST_TEST((values(a) != values(c)));
}

// Clocks drift and readings arrive out of order, but each device's readings are out of
// order by no more than the network delay (so one watermark per device needs only that
// delay), while across devices the clock offsets show.
BOOST_AUTO_TEST_CASE(readings_are_out_of_order_within_the_delay_per_device) {
  fleet_options o{.devices = 5, .readings_per_device = 200, .max_delay = 15s, .seed = 3};
  auto f = require_ok(fleet::make(o));
  std::map<int, event_time> newest;
  bool out_of_order = false;
  std::chrono::microseconds worst{0};
  for (const auto& a : *f.arrivals()) {
    auto [it, first] = newest.try_emplace(a.device, a.value.timestamp);
    if (!first) {
      if (a.value.timestamp < it->second) {
        out_of_order = true;
        worst = std::max(worst, std::chrono::duration_cast<std::chrono::microseconds>(
                                  it->second - a.value.timestamp));
      }
      it->second = std::max(it->second, a.value.timestamp);
    }
  }
  BOOST_TEST(out_of_order);
  // 15 s of delay, plus the drift over one reading's path (500 ppm of 15 s is 7.5 ms).
  BOOST_TEST(worst.count() <= std::chrono::microseconds{15s + 10ms}.count());
  std::set<std::chrono::microseconds> offsets;
  for (const auto& d : f.devices())
    offsets.insert(d.clock_offset);
  BOOST_TEST(offsets.size() == 5u); // every device's clock is off by its own amount
}

BOOST_AUTO_TEST_CASE(a_silent_device_stops_after_its_readings) {
  auto f = require_ok(fleet::make(
    {.devices = 3, .readings_per_device = 20, .seed = 1, .silent_device = 2, .silent_after = 4}));
  std::map<std::string, int> per_device;
  for (const auto& a : *f.arrivals())
    ++per_device[a.value.device];
  BOOST_TEST(per_device["sensor-01"] == 20);
  BOOST_TEST(per_device["sensor-02"] == 4);
  BOOST_TEST(per_device["sensor-03"] == 20);
}

BOOST_AUTO_TEST_CASE(bad_options_are_refused_by_name) {
  auto e = require_error(fleet::make({.devices = 0}));
  BOOST_TEST(e.message.find("devices must be 1 to 99, got 0") != std::string::npos, e.message);
  e = require_error(fleet::make({.devices = 2, .silent_device = 3}));
  BOOST_TEST(e.message.find("silent_device must be 1 to 2, got 3") != std::string::npos, e.message);
  e = require_error(fleet::make({.interval = 0ms}));
  BOOST_TEST(e.message.find("interval must be positive") != std::string::npos, e.message);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(band_alerts)

struct rig {
  using key_fn = std::function<std::string(const reading&)>;
  using op_t = keyed_process_function_operator<std::string, reading, band_alert, key_fn, band_monitor>;
  operator_harness h;

  explicit rig(band_options bands)
    : h(std::make_unique<op_t>(key_fn{[](const reading& x) { return x.device; }},
                               band_monitor{std::move(bands)},
                               [](const reading& x) { return x.timestamp; })) {
    require_ok(h.open());
  }
  std::vector<band_alert> push(const reading& x) {
    require_ok(h.push(std::vector<reading>{x}));
    return h.take<band_alert>();
  }
};

BOOST_AUTO_TEST_CASE(one_alert_per_excursion_with_the_device_band) {
  rig g{{.per_device = {{"a", {18, 24}}}, .fallback = {10, 35}}};
  BOOST_TEST(g.push(r("a", 20, 0s)).empty());
  auto first = g.push(r("a", 25, 10s)); // leaves a's own band
  BOOST_REQUIRE_EQUAL(first.size(), 1u);
  BOOST_TEST(first[0].direction == "above");
  BOOST_TEST(first[0].high == 24.0);
  BOOST_TEST((first[0].timestamp == t0 + 10s));
  BOOST_TEST(g.push(r("a", 26, 20s)).empty()); // the same excursion
  BOOST_TEST(g.push(r("a", 20, 30s)).empty()); // back in
  auto second = g.push(r("a", 17.5, 40s));
  BOOST_REQUIRE_EQUAL(second.size(), 1u);
  BOOST_TEST(second[0].direction == "below");
  BOOST_TEST(g.push(r("b", 25, 0s)).empty()); // b has the fallback band: 25 is inside
  BOOST_TEST(g.push(r("b", 35, 5s)).empty()); // the band's ends are inside
  BOOST_TEST(g.push(r("b", 35.01, 6s)).size() == 1u);
}

// Out of order: an old reading changes nothing of the device's current state; an old
// reading out of band is an excursion that is over, seen late, and alerts once.
BOOST_AUTO_TEST_CASE(out_of_order_readings_do_not_end_or_repeat_an_excursion) {
  rig g{{.fallback = {10, 30}}};
  BOOST_TEST(g.push(r("a", 31, 50s)).size() == 1u);
  BOOST_TEST(g.push(r("a", 20, 40s)).empty()); // older and inside: the excursion goes on
  BOOST_TEST(g.push(r("a", 32, 55s)).empty()); // so this is still the same one
  BOOST_TEST(g.push(r("a", 20, 60s)).empty()); // newer and inside: it ends
  BOOST_TEST(g.push(r("a", 5, 45s)).size() == 1u); // older, out, newest inside: alerts
  BOOST_TEST(g.push(r("a", 21, 70s)).empty());
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(silent_devices)

/// Devices a and b send every 10 s for 3 minutes; c sends once, at 0 s, then falls silent.
/// Then one more of a, at 3 min 5 s.
std::shared_ptr<std::vector<arrival>> silent_c_arrivals() {
  auto v = std::make_shared<std::vector<arrival>>();
  v->push_back({2, r("c", 20, 0s)});
  for (int s = 0; s <= 180; s += 10) {
    v->push_back({0, r("a", 20, std::chrono::seconds{s})});
    v->push_back({1, r("b", 21, std::chrono::seconds{s})});
  }
  v->push_back({0, r("a", 20, 185s)});
  return v;
}

// At the source, without actors: with c silent, the watermark stays at c's until c has
// been silent for the idle timeout, then follows a and b; without idleness it stays.
BOOST_AUTO_TEST_CASE(a_silent_device_holds_the_watermark_until_it_turns_idle) {
  for (bool with_idleness : {true, false}) {
    BOOST_TEST_CONTEXT("with idleness: " << with_idleness) {
      auto clk = std::make_shared<manual_clock>();
      device_source src{silent_c_arrivals(), 3, {}};
      src.set_watermark_strategy(
        reading_watermarks(5s, with_idleness ? std::optional{std::chrono::nanoseconds{30s}}
                                             : std::nullopt));
      require_ok(src.open({.name = "readings", .processing_clock = clk}));
      batch_ptr recs, bad;
      require_ok(src.poll_batches(1000, recs, bad)); // everything, in one batch
      BOOST_REQUIRE(recs);
      auto u = src.watermarks(clk->now());
      BOOST_REQUIRE(u.advanced.has_value());
      BOOST_TEST((*u.advanced == t0 - 5s - 1us)); // c's
      clk->advance(29s);
      BOOST_TEST(!src.watermarks(clk->now()).advanced.has_value());
      clk->advance(2s);
      u = src.watermarks(clk->now());
      if (with_idleness) {
        // Every device sent its last reading 31 s ago, so every device is idle, and the
        // instance with it: downstream tasks no longer wait for it at all.
        BOOST_TEST(u.idle_now);
      } else {
        BOOST_TEST(!u.idle_now);
        BOOST_TEST(!u.advanced.has_value());
      }
    }
  }
}

// The same, as a device is silent while the others keep sending: only c turns idle.
BOOST_AUTO_TEST_CASE(only_the_silent_device_turns_idle_while_the_others_send) {
  for (bool with_idleness : {true, false}) {
    BOOST_TEST_CONTEXT("with idleness: " << with_idleness) {
      auto clk = std::make_shared<manual_clock>();
      device_source src{silent_c_arrivals(), 3, {}};
      src.set_watermark_strategy(
        reading_watermarks(5s, with_idleness ? std::optional{std::chrono::nanoseconds{30s}}
                                             : std::nullopt));
      require_ok(src.open({.name = "readings", .processing_clock = clk}));
      std::optional<event_time> wm;
      bool idle = false;
      // One reading per poll, one second of processing time apart.
      for (int i = 0; i < 39; ++i) {
        batch_ptr recs, bad;
        require_ok(src.poll_batches(1, recs, bad));
        auto u = src.watermarks(clk->now());
        if (u.advanced)
          wm = u.advanced;
        idle = idle || u.idle_now;
        clk->advance(1s);
      }
      BOOST_TEST(!idle); // a and b are sending: the instance is never idle
      BOOST_REQUIRE(wm.has_value());
      if (with_idleness)
        BOOST_TEST((*wm == t0 + 180s - 5s - 1us)); // a and b's, c no longer counts
      else
        BOOST_TEST((*wm == t0 - 5s - 1us)); // held at c's first reading
    }
  }
}

/// The fleet source, playing only the first `released` arrivals (set by the test).
struct gate {
  std::atomic<std::size_t> released{0};
};

class gated_source final : public source<reading> {
public:
  gated_source(std::shared_ptr<const std::vector<arrival>> arrivals, std::shared_ptr<gate> g)
    : inner_(std::move(arrivals), 3, keep_open()), gate_(std::move(g)) {}
  result<void> open(const source_context& ctx) override { return inner_.open(ctx); }
  result<poll_result> poll(source_output<reading>& out, std::size_t max) override {
    const auto released = gate_->released.load();
    if (emitted_ >= released)
      return poll_result::idle(1ms);
    const auto before = out.records.size();
    auto res = inner_.poll(out, std::min(max, released - emitted_));
    emitted_ += out.records.size() - before;
    return res;
  }

private:
  static fleet_source_options keep_open() {
    fleet_source_options o;
    o.keep_open = true;
    return o;
  }
  device_source inner_;
  std::shared_ptr<gate> gate_;
  std::size_t emitted_ = 0;
};

struct gated {
  using record_type = reading;
  std::shared_ptr<const std::vector<arrival>> arrivals;
  std::shared_ptr<gate> g;
  std::unique_ptr<source<reading>> create(const source_context&) const {
    return std::make_unique<gated_source>(arrivals, g);
  }
  std::string describe() const { return "gated fleet"; }
  int max_parallelism() const { return 1; }
};

struct job_run {
  std::vector<device_window> windows;
  std::int64_t window_watermark = INT64_MIN; ///< of the averages' task, before the cancel
};

/// The whole job on the silent-c arrivals, one reading per second of processing time (a
/// manual clock): c sends at 1 s and then nothing, a and b keep sending. Each step waits
/// until the averages' task has the step's reading; since the source updates its
/// watermark right after each poll, whatever watermark step k caused is on the channel
/// ahead of step k + 1's reading, so the waits also witness the watermarks. Returns the
/// windows fired before the cancel.
job_run run_silent_c(bool with_idleness) {
  auto clk = std::make_shared<manual_clock>();
  auto arrivals = silent_c_arrivals();
  auto g = std::make_shared<gate>();
  job j{{.name = "iot-idleness", .parallelism = 1, .runtime = {.processing_clock = clk}}};
  auto in = j.from(gated{arrivals, g},
                   reading_watermarks(5s, with_idleness ? std::optional{std::chrono::nanoseconds{30s}}
                                                        : std::nullopt))
              .name(source_node);
  auto out = monitor_devices(in, {});
  sinks::collect<device_window> got;
  out.averages.sink_to(got).name("averages-out");
  out.alerts.sink_to(sinks::collect<band_alert>{}).name("alerts-out");
  out.late.sink_to(sinks::collect<late_reading>{}).name("late-out");
  auto exec = require_ok(j.start());

  auto averages_task = [&] {
    for (const auto& t : exec->metrics())
      if (t.chain.find(averages_node) != std::string::npos)
        return t;
    BOOST_FAIL("no task runs " << averages_node);
    return task_stats{};
  };
  for (std::size_t k = 1; k <= arrivals->size(); ++k) {
    clk->advance(1s);
    g->released = k;
    BOOST_REQUIRE(wait_until(*exec, [&] { return averages_task().records_in == k; }));
    if (k == 3) // c, a and b (all at 0 s) are in: c's watermark holds everything
      BOOST_REQUIRE(wait_until(*exec, [&] {
        return averages_task().watermark == (t0 - 5s - 1us).time_since_epoch().count();
      }));
  }
  job_run run;
  if (with_idleness)
    BOOST_REQUIRE(wait_until(*exec, [&] { return got.size() == 5u; }));
  run.window_watermark = averages_task().watermark;
  exec->cancel(); // no max watermark on cancel: windows still open stay unfired
  require_ok(exec->wait());
  run.windows = got.records();
  std::sort(run.windows.begin(), run.windows.end(), [](const device_window& a, const device_window& b) {
    return std::tie(a.key, a.start) < std::tie(b.key, b.start);
  });
  return run;
}

// The job-level proof: with one device silent, the windows of the others fire once it has
// been silent for the idle timeout; without idleness, not one window fires.
BOOST_AUTO_TEST_CASE(with_idleness_the_windows_of_the_other_devices_fire) {
  auto run = run_silent_c(true);
  std::vector<std::pair<std::string, std::int64_t>> fired;
  for (const auto& w : run.windows)
    fired.emplace_back(w.key, std::chrono::duration_cast<std::chrono::seconds>(w.start - t0).count());
  // The watermark of a and b (b's newest is 3 min): 2 min 55 s - 1 µs; it closes
  // [0, 1 min) and [1, 2 min) of every device, c's single window too.
  const std::vector<std::pair<std::string, std::int64_t>> want{
    {"a", 0}, {"a", 60}, {"b", 0}, {"b", 60}, {"c", 0}};
  BOOST_TEST((fired == want));
  BOOST_TEST(run.windows[0].value.readings == 6u); // a: 0, 10, ..., 50 s
  BOOST_TEST(run.windows[0].value.avg == 20.0);
  BOOST_TEST(run.window_watermark == (t0 + 175s - 1us).time_since_epoch().count());
}

BOOST_AUTO_TEST_CASE(without_idleness_the_silent_device_holds_every_window) {
  auto run = run_silent_c(false);
  BOOST_TEST(run.windows.empty());
  BOOST_TEST(run.window_watermark == (t0 - 5s - 1us).time_since_epoch().count());
}

BOOST_AUTO_TEST_SUITE_END()
