#define BOOST_TEST_MODULE monitor_charts_test
// The status page's charts (monitor/charts.hpp): the SVG builder's scaling and its edge
// cases, and the bounded ring of samples taken from job snapshots.
#include <boost/test/unit_test.hpp>

#include "sluice/monitor/charts.hpp"

#include <cmath>
#include <limits>
#include <regex>
#include <string>
#include <vector>

using namespace sluice;
using namespace sluice::monitor;
using namespace std::chrono_literals;

namespace {

struct xy {
  double x, y;
};

/// The points of the polyline of series `name` in `svg`.
std::vector<xy> polyline_of(const std::string& svg, const std::string& name) {
  const std::regex line{"<polyline class=\"series\" data-series=\"" + name + "\" points=\"([^\"]*)\""};
  std::smatch m;
  BOOST_REQUIRE_MESSAGE(std::regex_search(svg, m, line), "no polyline for " << name << " in " << svg);
  std::vector<xy> out;
  const std::regex pair{R"(([-0-9.]+),([-0-9.]+))"};
  const auto text = m[1].str();
  for (auto it = std::sregex_iterator(text.begin(), text.end(), pair); it != std::sregex_iterator{}; ++it)
    out.push_back({std::stod((*it)[1].str()), std::stod((*it)[2].str())});
  return out;
}

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

std::size_t count(const std::string& text, const std::string& part) {
  std::size_t n = 0;
  for (auto at = text.find(part); at != std::string::npos; at = text.find(part, at + 1))
    ++n;
  return n;
}

void check_close(xy got, xy want) {
  BOOST_TEST(std::fabs(got.x - want.x) <= 0.05, got.x << " != " << want.x);
  BOOST_TEST(std::fabs(got.y - want.y) <= 0.05, got.y << " != " << want.y);
}

job_snapshot snapshot_at(std::chrono::milliseconds uptime, std::uint64_t source_in, std::uint64_t map_in) {
  job_snapshot s;
  s.uptime = uptime;
  s.now_us = 1'000'000'000 + std::chrono::duration_cast<std::chrono::microseconds>(uptime).count();
  task_stats a;
  a.chain = "src -> parse";
  a.nodes = {{.name = "src", .records_in = source_in}, {.name = "parse", .records_in = map_in}};
  task_stats b = a; // a second instance of the same chain
  b.instance = 1;
  s.tasks = {a, b};
  return s;
}

} // namespace

BOOST_AUTO_TEST_SUITE(svg_chart_builder)

// x runs over [min x, max x], y over [0, max y]: the corners of the plot.
BOOST_AUTO_TEST_CASE(points_scale_to_the_plot_area) {
  const chart_spec spec{"t", "test", "/s", 400, 200};
  const auto a = plot_area(spec);
  BOOST_TEST(a.width > 0);
  BOOST_TEST(a.height > 0);
  const auto svg = svg_chart(spec, {{"ops", {{10, 0}, {15, 50}, {20, 100}}}});
  const auto pts = polyline_of(svg, "ops");
  BOOST_REQUIRE_EQUAL(pts.size(), 3u);
  check_close(pts[0], {a.left, a.top + a.height});                     // (10, 0): bottom left
  check_close(pts[1], {a.left + a.width / 2, a.top + a.height / 2});   // the middle
  check_close(pts[2], {a.left + a.width, a.top});                      // (20, 100): top right
  BOOST_TEST(contains(svg, ">100/s</text>"));                          // the y axis' top
  BOOST_TEST(!contains(svg, "class=\"note\""));
}

// Two series share one scale; negative values extend the axis below zero.
BOOST_AUTO_TEST_CASE(series_share_the_scale_and_negative_values_extend_it) {
  const chart_spec spec{"t", "test", "s", 400, 200};
  const auto a = plot_area(spec);
  const auto svg = svg_chart(spec, {{"up", {{0, 0}, {4, 10}}}, {"down", {{0, -10}, {4, 0}}}});
  const auto up = polyline_of(svg, "up");
  const auto down = polyline_of(svg, "down");
  check_close(up[0], {a.left, a.top + a.height / 2});           // 0 is the middle of [-10, 10]
  check_close(up[1], {a.left + a.width, a.top});
  check_close(down[0], {a.left, a.top + a.height});
  check_close(down[1], {a.left + a.width, a.top + a.height / 2});
}

BOOST_AUTO_TEST_CASE(an_empty_chart_says_so) {
  for (const auto& series : {std::vector<chart_series>{}, std::vector<chart_series>{{"none", {}}}}) {
    const auto svg = svg_chart({"t", "test", "", 400, 200}, series);
    BOOST_TEST(contains(svg, ">no data yet</text>"));
    BOOST_TEST(!contains(svg, "<polyline"));
    BOOST_TEST(!contains(svg, "<circle"));
    BOOST_TEST(contains(svg, "</svg>"));
  }
}

// One sample: a dot in the middle of the x axis, at its value's height.
BOOST_AUTO_TEST_CASE(a_single_sample_is_a_dot) {
  const chart_spec spec{"t", "test", "", 400, 200};
  const auto a = plot_area(spec);
  const auto svg = svg_chart(spec, {{"one", {{7, 5}}}});
  BOOST_TEST(!contains(svg, "<polyline"));
  const std::regex dot{R"re(<circle class="series" data-series="one" cx="([-0-9.]+)" cy="([-0-9.]+)")re"};
  std::smatch m;
  BOOST_REQUIRE(std::regex_search(svg, m, dot));
  check_close({std::stod(m[1].str()), std::stod(m[2].str())}, {a.left + a.width / 2, a.top});
}

// NaN and infinities are not drawn, nor do they stretch the axes; the chart says so.
BOOST_AUTO_TEST_CASE(non_finite_values_are_skipped_with_a_visible_note) {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const double inf = std::numeric_limits<double>::infinity();
  const chart_spec spec{"t", "test", "", 400, 200};
  const auto a = plot_area(spec);
  const auto svg = svg_chart(spec, {{"s", {{0, 1}, {1, nan}, {2, inf}, {-inf, 3}, {4, 2}}}});
  const auto pts = polyline_of(svg, "s");
  BOOST_REQUIRE_EQUAL(pts.size(), 2u);
  check_close(pts[0], {a.left, a.top + a.height / 2}); // y range [0, 2]: 1 is the middle
  check_close(pts[1], {a.left + a.width, a.top});
  BOOST_TEST(contains(svg, ">3 values not finite, not drawn</text>"));
  BOOST_TEST(!contains(svg, "nan"));
  BOOST_TEST(!contains(svg, "inf"));

  const auto only_bad = svg_chart(spec, {{"s", {{0, nan}}}});
  BOOST_TEST(contains(only_bad, ">no data yet</text>"));
  BOOST_TEST(contains(only_bad, ">1 value not finite, not drawn</text>"));
}

BOOST_AUTO_TEST_CASE(names_are_text_not_markup) {
  const auto svg = svg_chart({"id\"x", "a <b> & c", "", 400, 200}, {{"<script>", {{0, 1}, {1, 2}}}});
  BOOST_TEST(!contains(svg, "<script>"));
  BOOST_TEST(!contains(svg, "<b>"));
  BOOST_TEST(contains(svg, "data-series=\"&lt;script&gt;\""));
  BOOST_TEST(contains(svg, "a &lt;b&gt; &amp; c"));
  BOOST_TEST(contains(svg, "data-chart=\"id&quot;x\""));
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(chart_samples)

BOOST_AUTO_TEST_CASE(the_ring_keeps_the_newest_samples_up_to_its_capacity) {
  auto h = *chart_history::make({.capacity = 3});
  for (int i = 0; i < 5; ++i)
    h.push({.uptime_s = static_cast<double>(i)});
  BOOST_TEST(h.size() == 3u);
  const auto s = h.samples();
  BOOST_TEST(s.front().uptime_s == 2.0);
  BOOST_TEST(s.back().uptime_s == 4.0);
  for (std::size_t bad : {std::size_t{0}, std::size_t{1}, std::size_t{100'001}}) {
    auto refused = chart_history::make({.capacity = bad});
    BOOST_REQUIRE(!refused);
    BOOST_TEST(contains(refused.error().message, "chart capacity must be 2 to 100000"),
               refused.error().message);
  }
}

// Rates per operator summed over instances, over the span between two snapshots; the
// worst watermark lag per task; each checkpoint once.
BOOST_AUTO_TEST_CASE(samples_are_rates_lags_and_new_checkpoints) {
  auto h = *chart_history::make({.capacity = 10});
  auto first = snapshot_at(1000ms, 100, 50);
  h.record(first);
  auto second = snapshot_at(3000ms, 500, 250); // 2 instances: 1000 and 500 in, +800 and +400
  second.tasks[0].watermark = second.now_us - 4'000'000;
  second.tasks[1].watermark = second.now_us - 1'500'000;
  checkpoint_stats c;
  c.id = 1;
  c.duration = 250ms;
  c.bytes = 4096;
  second.checkpoints = {c};
  h.record(second);
  auto third = snapshot_at(4000ms, 20, 10); // counters back to less: a restart
  third.checkpoints = second.checkpoints;   // no new checkpoint
  h.record(third);

  const auto s = h.samples();
  BOOST_REQUIRE_EQUAL(s.size(), 3u);
  BOOST_TEST(s[0].records_per_second.empty()); // nothing to compare with yet
  BOOST_TEST(s[1].records_per_second.at("src") == 400.0);
  BOOST_TEST(s[1].records_per_second.at("parse") == 200.0);
  BOOST_TEST(s[1].watermark_lag_s.at("src -> parse") == 4.0);
  BOOST_TEST(s[0].watermark_lag_s.empty()); // no watermark yet: no lag
  BOOST_TEST(s[1].checkpoint_duration_s.value_or(-1) == 0.25);
  BOOST_TEST(s[1].checkpoint_bytes.value_or(-1) == 4096.0);
  BOOST_TEST(s[2].records_per_second.empty());
  BOOST_TEST(!s[2].checkpoint_duration_s.has_value());

  const auto html = charts_html(s);
  for (const char* id : {"records-per-second", "watermark-lag", "checkpoint-duration", "checkpoint-size"})
    BOOST_TEST(contains(html, std::string{"data-chart=\""} + id + "\""), id);
  BOOST_TEST(count(html, "<svg") == 4u);
  BOOST_TEST(contains(html, "data-series=\"src\""));
  BOOST_TEST(contains(html, "data-series=\"src -&gt; parse\""));
}

BOOST_AUTO_TEST_SUITE_END()
