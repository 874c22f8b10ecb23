#include "sluice/monitor/charts.hpp"

#include <fmt/core.h>

#include <algorithm>
#include <climits>
#include <cmath>

namespace sluice::monitor {

std::string html_escape(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&#39;"; break;
      default: out += c;
    }
  }
  return out;
}

namespace {

constexpr double margin_left = 64;
constexpr double margin_right = 170; // the legend
constexpr double margin_top = 26;    // the title
constexpr double margin_bottom = 22; // the x labels

/// Colors the series take in turn (readable on white, and for most color blindness).
constexpr const char* palette[] = {"#0969da", "#cf222e", "#1a7f37", "#9a6700",
                                   "#8250df", "#bc4c00", "#1b7c83", "#57606a"};

std::string escape(const std::string& text) { return html_escape(text); }

/// A value for an axis label: three significant digits, k/M/G for large ones.
std::string axis_value(double v, const std::string& unit) {
  const double a = std::fabs(v);
  if (a >= 1e9)
    return fmt::format("{:.3g}G{}", v / 1e9, unit);
  if (a >= 1e6)
    return fmt::format("{:.3g}M{}", v / 1e6, unit);
  if (a >= 1e4)
    return fmt::format("{:.3g}k{}", v / 1e3, unit);
  return fmt::format("{:.3g}{}", v, unit);
}

std::string coord(double v) { return fmt::format("{:.1f}", v); }

} // namespace

chart_area plot_area(const chart_spec& spec) noexcept {
  const double w = std::max(spec.width, 200);
  const double h = std::max(spec.height, 100);
  return {margin_left, margin_top, w - margin_left - margin_right, h - margin_top - margin_bottom};
}

std::string svg_chart(const chart_spec& spec, const std::vector<chart_series>& series) {
  const int width = std::max(spec.width, 200);
  const int height = std::max(spec.height, 100);
  const auto area = plot_area(spec);
  auto finite = [](const chart_point& p) { return std::isfinite(p.x) && std::isfinite(p.y); };

  std::size_t skipped = 0;
  bool any = false;
  double xmin = 0, xmax = 0, ymin = 0, ymax = 0;
  for (const auto& s : series)
    for (const auto& p : s.points) {
      if (!finite(p)) {
        ++skipped;
        continue;
      }
      if (!any) {
        xmin = xmax = p.x;
        ymin = ymax = p.y;
        any = true;
      }
      xmin = std::min(xmin, p.x);
      xmax = std::max(xmax, p.x);
      ymin = std::min(ymin, p.y);
      ymax = std::max(ymax, p.y);
    }
  ymin = std::min(ymin, 0.0); // rates, lags and sizes read best from zero
  if (ymax <= ymin)
    ymax = ymin + 1;
  auto px = [&](double x) {
    return xmax > xmin ? area.left + (x - xmin) / (xmax - xmin) * area.width
                       : area.left + area.width / 2;
  };
  auto py = [&](double y) { return area.top + area.height - (y - ymin) / (ymax - ymin) * area.height; };

  std::string out = fmt::format(
    R"(<svg xmlns="http://www.w3.org/2000/svg" class="chart" data-chart="{}" width="{}" height="{}" viewBox="0 0 {} {}" role="img">)",
    escape(spec.id), width, height, width, height);
  out += fmt::format(R"(<title>{}</title>)", escape(spec.title));
  out += fmt::format(R"(<text class="chart-title" x="{}" y="16" font-size="13" font-weight="600">{}</text>)",
                     coord(area.left), escape(spec.title));
  out += fmt::format(R"(<rect class="plot" x="{}" y="{}" width="{}" height="{}" fill="none" stroke="#d0d7de"/>)",
                     coord(area.left), coord(area.top), coord(area.width), coord(area.height));
  if (!any) {
    out += fmt::format(R"(<text class="empty" x="{}" y="{}" text-anchor="middle" fill="#57606a" font-size="12">no data yet</text>)",
                       coord(area.left + area.width / 2), coord(area.top + area.height / 2));
  } else {
    // Axes: the y range at the left, the x range (seconds of uptime) below.
    out += fmt::format(R"(<text class="y-max" x="{}" y="{}" text-anchor="end" font-size="11">{}</text>)",
                       coord(area.left - 4), coord(area.top + 9), escape(axis_value(ymax, spec.unit)));
    out += fmt::format(R"(<text class="y-min" x="{}" y="{}" text-anchor="end" font-size="11">{}</text>)",
                       coord(area.left - 4), coord(area.top + area.height), escape(axis_value(ymin, spec.unit)));
    out += fmt::format(R"(<text class="x-min" x="{}" y="{}" font-size="11">{}</text>)", coord(area.left),
                       coord(area.top + area.height + 15), escape(axis_value(xmin, spec.x_unit)));
    out += fmt::format(R"(<text class="x-max" x="{}" y="{}" text-anchor="end" font-size="11">{}</text>)",
                       coord(area.left + area.width), coord(area.top + area.height + 15),
                       escape(axis_value(xmax, spec.x_unit)));
    std::size_t drawn = 0;
    for (std::size_t i = 0; i < series.size(); ++i) {
      const auto& s = series[i];
      const char* color = palette[i % std::size(palette)];
      std::vector<chart_point> pts;
      for (const auto& p : s.points)
        if (finite(p))
          pts.push_back(p);
      if (pts.empty())
        continue;
      if (pts.size() == 1) {
        out += fmt::format(R"(<circle class="series" data-series="{}" cx="{}" cy="{}" r="3" fill="{}"/>)",
                           escape(s.name), coord(px(pts[0].x)), coord(py(pts[0].y)), color);
      } else {
        std::string points;
        for (const auto& p : pts) {
          if (!points.empty())
            points += ' ';
          points += coord(px(p.x)) + "," + coord(py(p.y));
        }
        out += fmt::format(R"(<polyline class="series" data-series="{}" points="{}" fill="none" stroke="{}" stroke-width="1.5"/>)",
                           escape(s.name), points, color);
      }
      // The legend: one line per drawn series, at the right.
      const double ly = area.top + 10 + 14 * static_cast<double>(drawn);
      if (ly <= area.top + area.height) {
        out += fmt::format(R"(<rect x="{}" y="{}" width="10" height="3" fill="{}"/>)",
                           coord(area.left + area.width + 8), coord(ly - 4), color);
        out += fmt::format(R"(<text class="legend" x="{}" y="{}" font-size="11">{}</text>)",
                           coord(area.left + area.width + 22), coord(ly), escape(s.name));
      }
      ++drawn;
    }
  }
  if (skipped > 0)
    out += fmt::format(R"(<text class="note" x="{}" y="{}" text-anchor="end" fill="#cf222e" font-size="11">{} value{} not finite, not drawn</text>)",
                       coord(area.left + area.width), "16", skipped, skipped == 1 ? "" : "s");
  out += "</svg>";
  return out;
}

result<chart_history> chart_history::make(chart_history_options opts) {
  if (opts.capacity < 2 || opts.capacity > 100'000)
    return make_error(error_code::invalid_option,
                      "monitor: chart capacity must be 2 to 100000 samples, got " +
                        std::to_string(opts.capacity));
  return chart_history{opts.capacity};
}

void chart_history::push(chart_sample sample) {
  if (ring_.size() == capacity_)
    ring_.pop_front();
  ring_.push_back(std::move(sample));
}

void chart_history::record(const job_snapshot& s) {
  chart_sample c;
  c.uptime_s = std::chrono::duration<double>(s.uptime).count();

  std::map<std::string, std::uint64_t> records_in;
  for (const auto& t : s.tasks)
    for (const auto& n : t.nodes)
      records_in[n.name] += n.records_in;
  if (last_uptime_s_ && c.uptime_s > *last_uptime_s_) {
    const double span = c.uptime_s - *last_uptime_s_;
    for (const auto& [name, n] : records_in) {
      auto before = last_records_in_.find(name);
      const std::uint64_t from = before == last_records_in_.end() ? 0 : before->second;
      if (n >= from) // else a restart reset the counters: no rate for this span
        c.records_per_second[name] = static_cast<double>(n - from) / span;
    }
  }
  last_uptime_s_ = c.uptime_s;
  last_records_in_ = std::move(records_in);

  for (const auto& t : s.tasks) {
    // No watermark yet (INT64_MIN), or the end of input's (INT64_MAX): no lag to show.
    if (t.watermark == INT64_MIN || t.watermark == INT64_MAX)
      continue;
    const double lag = static_cast<double>(s.now_us - t.watermark) / 1e6;
    auto [it, added] = c.watermark_lag_s.try_emplace(t.chain, lag);
    if (!added)
      it->second = std::max(it->second, lag);
  }

  if (!s.checkpoints.empty() && s.checkpoints.back().id > last_checkpoint_id_) {
    const auto& newest = s.checkpoints.back();
    c.checkpoint_duration_s = std::chrono::duration<double>(newest.duration).count();
    c.checkpoint_bytes = static_cast<double>(newest.bytes);
    last_checkpoint_id_ = newest.id;
  }
  push(std::move(c));
}

std::string charts_html(const std::vector<chart_sample>& samples) {
  auto keyed = [&](auto member) {
    std::map<std::string, chart_series> by_name;
    for (const auto& s : samples)
      for (const auto& [name, v] : s.*member) {
        auto& series = by_name[name];
        series.name = name;
        series.points.push_back({s.uptime_s, v});
      }
    std::vector<chart_series> out;
    for (auto& [name, series] : by_name)
      out.push_back(std::move(series));
    return out;
  };
  auto single = [&](auto member, const char* name) {
    chart_series series{name, {}};
    for (const auto& s : samples)
      if ((s.*member))
        series.points.push_back({s.uptime_s, *(s.*member)});
    return std::vector<chart_series>{series};
  };
  std::string out = R"(<div class="charts">)";
  out += svg_chart({"records-per-second", "Records in per second, per operator", "/s"},
                   keyed(&chart_sample::records_per_second));
  out += svg_chart({"watermark-lag", "Watermark lag (processing time - watermark), per task", "s"},
                   keyed(&chart_sample::watermark_lag_s));
  out += svg_chart({"checkpoint-duration", "Checkpoint duration", "s"},
                   single(&chart_sample::checkpoint_duration_s, "duration"));
  out += svg_chart({"checkpoint-size", "Checkpoint size (bytes written)", "B"},
                   single(&chart_sample::checkpoint_bytes, "size"));
  out += "</div>";
  return out;
}

} // namespace sluice::monitor
