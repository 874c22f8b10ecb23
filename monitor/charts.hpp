#pragma once
/// Charts over time for the status page: a bounded ring of samples taken from job
/// snapshots, and SVG line charts rendered from them on the server (no script, no library:
/// the page inserts the markup as it is, and `/charts` shows it without JavaScript).
///
/// ```cpp
/// chart_history history{{.capacity = 300}};
/// history.record(job.snapshot());        // every second, from the monitor's sampler thread
/// std::string html = charts_html(history.samples());
/// ```
#include "sluice/actors/runtime.hpp"
#include "sluice/core/error.hpp"

#include <cstddef>
#include <deque>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace sluice::monitor {

/// `text` safe inside HTML or SVG text and attribute values (& < > " ' escaped).
std::string html_escape(std::string_view text);

// -- the SVG builder ------------------------------------------------------------------------

struct chart_point {
  double x = 0;
  double y = 0;
};

/// One line of a chart. Points need not be sorted; they are drawn in the order given.
struct chart_series {
  std::string name; ///< shown in the legend, as text (escaped)
  std::vector<chart_point> points;
};

/// What a chart looks like.
struct chart_spec {
  std::string id;    ///< the svg's `data-chart` attribute
  std::string title; ///< shown above the plot
  std::string unit;  ///< after the y axis values: "/s", "s", "B"
  int width = 560;   ///< pixels, at least 200
  int height = 180;  ///< pixels, at least 100
  std::string x_unit = "s"; ///< after the x axis values (the monitor's x is uptime)
};

/// The plot's rectangle inside the svg (the rest holds the title, axis labels and legend).
struct chart_area {
  double left = 0;
  double top = 0;
  double width = 0;
  double height = 0;
};
chart_area plot_area(const chart_spec& spec) noexcept;

/// A line chart as one `<svg class="chart">` element. x runs from the smallest to the
/// largest x of all points, y from min(0, smallest y) to the largest y; a series of one
/// point is a dot, of several a polyline (`data-series` names it). Points with a NaN or
/// infinite coordinate are not drawn, and the chart says how many were skipped; a chart
/// with nothing to draw says "no data yet". Deterministic: the same input gives the same
/// text.
std::string svg_chart(const chart_spec& spec, const std::vector<chart_series>& series);

// -- the ring of samples --------------------------------------------------------------------

/// What the charts show at one moment.
struct chart_sample {
  double uptime_s = 0; ///< the job's uptime when taken: the x axis
  /// Records per second into each operator (summed over its instances) since the sample
  /// before; absent for the first sample and after a counter went back (a restart).
  std::map<std::string, double> records_per_second{};
  /// Processing time minus the watermark, per task (chain), its worst instance; only
  /// tasks that have a watermark.
  std::map<std::string, double> watermark_lag_s{};
  /// The newest checkpoint completed since the sample before, if any.
  std::optional<double> checkpoint_duration_s{};
  std::optional<double> checkpoint_bytes{};
};

struct chart_history_options {
  /// Samples kept; the oldest goes when a new one comes. Default 300 (5 minutes at the
  /// monitor's default interval of 1 s); 2 to 100000.
  std::size_t capacity = 300;
};

/// The last `capacity` samples. Not thread-safe: the monitor guards it with a mutex.
class chart_history {
public:
  /// Fails with `invalid_option` when the capacity is out of range.
  [[nodiscard]] static result<chart_history> make(chart_history_options opts = {});

  /// Takes a sample from `s`, with rates over the span since the snapshot recorded before.
  void record(const job_snapshot& s);
  /// Appends a sample as it is (tests, and whoever computes samples elsewhere).
  void push(chart_sample sample);

  std::vector<chart_sample> samples() const { return {ring_.begin(), ring_.end()}; }
  std::size_t size() const noexcept { return ring_.size(); }
  std::size_t capacity() const noexcept { return capacity_; }

private:
  explicit chart_history(std::size_t capacity) : capacity_(capacity) {}

  std::size_t capacity_;
  std::deque<chart_sample> ring_;
  // What the next rate is computed against.
  std::optional<double> last_uptime_s_;
  std::map<std::string, std::uint64_t> last_records_in_;
  std::int64_t last_checkpoint_id_ = 0;
};

/// The four charts (records per second per operator, watermark lag per task, checkpoint
/// duration, checkpoint size) of `samples`, as HTML: a `<div class="charts">` of svg
/// elements.
std::string charts_html(const std::vector<chart_sample>& samples);

} // namespace sluice::monitor
