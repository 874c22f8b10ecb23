#include "sluice/samples/log_analytics/analytics.hpp"

#include "sluice/core/codec/time_format.hpp"
#include "sluice/monitor/charts.hpp"
#include "sluice/sinks/callback.hpp"
#include "sluice/sources/file.hpp"

#include <fmt/core.h>

#include <algorithm>

namespace sluice::logs {

namespace {

/// A parsed line, or why it is not one.
struct parsed_line {
  std::string raw;
  bool ok = false;
  access_log log;
  std::string error;
};

template <class Inspector>
bool inspect(Inspector& f, parsed_line& x) {
  return f.object("parsed_line")
    .fields(f.field("raw", x.raw), f.field("ok", x.ok), f.field("log", x.log), f.field("error", x.error));
}

std::string escape(std::string_view text) { return monitor::html_escape(text); }

constexpr std::size_t malformed_shown = 5;

} // namespace

void minute_aggregate::add(minute_stats& m, const access_log& r) const {
  ++m.requests;
  if (r.status >= 400 && r.status < 500)
    ++m.client_errors;
  else if (r.status >= 500)
    ++m.server_errors;
  m.bytes += r.bytes;
}

void dashboard::add_request(const access_log& r) {
  std::lock_guard guard{mtx_};
  ++totals_.requests;
  if (r.status >= 400 && r.status < 500)
    ++totals_.client_errors;
  else if (r.status >= 500)
    ++totals_.server_errors;
  ++url_counts_[r.url];
}

void dashboard::add_minute(const minute_result& m) {
  std::lock_guard guard{mtx_};
  minutes_[m.start] = m.value;
  ++totals_.minutes;
  while (minutes_.size() > opts_.minutes)
    minutes_.erase(minutes_.begin());
}

void dashboard::add_malformed(const malformed_line& m) {
  std::lock_guard guard{mtx_};
  ++totals_.malformed;
  last_malformed_.push_back(m);
  if (last_malformed_.size() > malformed_shown)
    last_malformed_.erase(last_malformed_.begin());
}

dashboard::totals dashboard::current() const {
  std::lock_guard guard{mtx_};
  return totals_;
}

std::string dashboard::render_fragment() const {
  totals t;
  std::vector<std::pair<std::string, std::uint64_t>> top;
  std::map<event_time, minute_stats> minutes;
  std::vector<malformed_line> malformed;
  {
    std::lock_guard guard{mtx_};
    t = totals_;
    top.assign(url_counts_.begin(), url_counts_.end());
    minutes = minutes_;
    malformed = last_malformed_;
  }
  // Most requested first; ties by URL, so the page does not flicker between equals.
  std::sort(top.begin(), top.end(), [](const auto& a, const auto& b) {
    return a.second != b.second ? a.second > b.second : a.first < b.first;
  });
  if (top.size() > opts_.top)
    top.resize(opts_.top);

  const auto errors = t.client_errors + t.server_errors;
  std::string out;
  out += "<dl class=\"totals\">";
  out += fmt::format("<div><dt>requests</dt><dd id=\"total-requests\">{}</dd></div>", t.requests);
  out += fmt::format("<div><dt>4xx</dt><dd id=\"total-4xx\">{}</dd></div>", t.client_errors);
  out += fmt::format("<div><dt>5xx</dt><dd id=\"total-5xx\">{}</dd></div>", t.server_errors);
  out += fmt::format("<div><dt>error rate</dt><dd id=\"error-rate\">{:.1f}%</dd></div>",
                     t.requests == 0 ? 0.0 : 100.0 * static_cast<double>(errors) / static_cast<double>(t.requests));
  out += fmt::format("<div><dt>malformed lines</dt><dd id=\"total-malformed\">{}</dd></div>", t.malformed);
  out += fmt::format("<div><dt>minutes closed</dt><dd id=\"minutes-closed\">{}</dd></div>", t.minutes);
  out += "</dl>";

  // Charts over the closed minutes, x in minutes since the first one shown.
  monitor::chart_series requests{"requests", {}}, failed{"4xx + 5xx", {}}, rate{"error rate", {}};
  const auto first = minutes.empty() ? event_time{} : minutes.begin()->first;
  for (const auto& [start, m] : minutes) {
    const double x = std::chrono::duration<double>(start - first).count() / 60;
    requests.points.push_back({x, static_cast<double>(m.requests)});
    failed.points.push_back({x, static_cast<double>(m.client_errors + m.server_errors)});
    rate.points.push_back({x, 100 * m.error_rate()});
  }
  out += "<div class=\"charts\">";
  out += monitor::svg_chart({.id = "requests-per-minute", .title = "Requests per minute", .unit = "",
                             .x_unit = "min"},
                            {requests, failed});
  out += monitor::svg_chart({.id = "error-rate", .title = "Error rate per minute (4xx + 5xx)", .unit = "%",
                             .x_unit = "min"},
                            {rate});
  out += "</div>";

  out += "<h2>Per minute</h2><table id=\"minutes\"><thead><tr><th>Minute (UTC)</th><th>Requests</th>"
         "<th>4xx</th><th>5xx</th><th>Error rate</th></tr></thead><tbody>";
  if (minutes.empty())
    out += "<tr><td colspan=\"5\" class=\"empty\">no minute closed yet</td></tr>";
  for (auto it = minutes.rbegin(); it != minutes.rend(); ++it)
    out += fmt::format("<tr class=\"minute\" data-start=\"{0}\"><td>{0}</td><td>{1}</td><td>{2}</td>"
                       "<td>{3}</td><td>{4:.1f}%</td></tr>",
                       escape(codec::format_iso8601(it->first)), it->second.requests,
                       it->second.client_errors, it->second.server_errors, 100 * it->second.error_rate());
  out += "</tbody></table>";

  out += "<h2>Top URLs</h2><table id=\"top-urls\"><thead><tr><th>URL</th><th>Requests</th></tr></thead><tbody>";
  if (top.empty())
    out += "<tr><td colspan=\"2\" class=\"empty\">no request yet</td></tr>";
  for (const auto& [url, n] : top)
    out += fmt::format("<tr class=\"url\"><td class=\"mono\">{}</td><td>{}</td></tr>", escape(url), n);
  out += "</tbody></table>";

  if (!malformed.empty()) {
    out += "<h2>Last malformed lines</h2><ul id=\"malformed\">";
    for (const auto& m : malformed)
      out += fmt::format("<li><code>{}</code>: {}</li>", escape(m.line.substr(0, 200)), escape(m.error));
    out += "</ul>";
  }
  return out;
}

std::string dashboard::render_page() const {
  std::string page = R"page(<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Access logs - Sluice</title>
<style>
  body { font-family: system-ui, sans-serif; margin: 16px 24px; color: #1f2328; background: #f6f8fa; }
  dl.totals { display: flex; gap: 24px; margin: 0 0 12px; }
  dl.totals div { background: #fff; border: 1px solid #d0d7de; border-radius: 6px; padding: 6px 12px; }
  dt { color: #57606a; font-size: 12px; } dd { margin: 0; font-size: 22px; font-weight: 600; }
  .charts { display: flex; flex-wrap: wrap; gap: 12px; }
  .charts svg { background: #fff; border: 1px solid #d0d7de; border-radius: 6px; }
  table { border-collapse: collapse; background: #fff; }
  td, th { border: 1px solid #d0d7de; padding: 3px 8px; text-align: right; }
  td.mono { font-family: ui-monospace, monospace; text-align: left; }
  .empty { color: #57606a; } #state { color: #57606a; }
</style></head>
<body>
<h1>Access logs</h1>
<p id="state">live: updates every )page" + std::to_string(opts_.refresh.count()) + R"page( ms</p>
<div id="dashboard">)page" + render_fragment() + R"page(</div>
<script>
"use strict";
// Fetches the server-rendered figures; on an error the last ones stay and it tries again.
async function refresh() {
  try {
    const res = await fetch("dashboard/fragment", { cache: "no-store" });
    if (!res.ok) throw new Error("HTTP " + res.status);
    document.getElementById("dashboard").innerHTML = await res.text();
    document.getElementById("state").textContent = "live, updated " + new Date().toLocaleTimeString();
  } catch (err) {
    document.getElementById("state").textContent = "disconnected (" + err.message + ")";
  } finally {
    setTimeout(refresh, )page" + std::to_string(opts_.refresh.count()) + R"page();
  }
}
setTimeout(refresh, )page" + std::to_string(opts_.refresh.count()) + R"page();
</script>
</body></html>
)page";
  return page;
}

std::vector<monitor::extra_page> dashboard::pages(std::shared_ptr<const dashboard> self) const {
  return {{"/dashboard", "text/html; charset=utf-8", [self] { return self->render_page(); }},
          {"/dashboard/fragment", "text/html; charset=utf-8", [self] { return self->render_fragment(); }}};
}

analyze_outputs analyze(job& j, const analyze_options& opts, std::shared_ptr<dashboard> board) {
  // The file source reads JSON lines or CSV. A one-column CSV whose delimiter (the ASCII
  // unit separator) never occurs in a log reads each line whole: a '"' inside an unquoted
  // cell is kept as it is (core/codec/csv.hpp).
  sources::file_options fo;
  fo.path = opts.input;
  fo.format = sources::file_format::csv;
  fo.csv_header = false;
  fo.csv.delimiter = '\x1f';
  fo.watch = opts.watch;
  fo.poll_interval = opts.poll_interval;
  // The event time is read from the line; a line without one counts as the epoch, which
  // never moves the watermark (it is reported as malformed after parsing).
  auto strategy = watermarks::bounded_out_of_orderness<raw_line>(
    opts.out_of_orderness, [](const raw_line& l) { return clf_time(l.line).value_or(event_time{}); });
  if (opts.idle_timeout)
    strategy = strategy.with_idleness(*opts.idle_timeout);
  auto lines = j.from(sources::file<raw_line>{fo}, strategy).name("access-logs").parallelism(1);
  auto parsed = lines
                  .map([](const raw_line& l) {
                    parsed_line p;
                    p.raw = l.line;
                    auto r = parse_clf(l.line);
                    if (r) {
                      p.ok = true;
                      p.log = std::move(*r);
                    } else {
                      p.error = r.error().message;
                    }
                    return p;
                  })
                  .name("parse");
  auto requests = parsed.filter([](const parsed_line& p) { return p.ok; })
                    .name("valid")
                    .map([](const parsed_line& p) { return p.log; })
                    .name("requests")
                    .with_timestamps([](const access_log& r) { return r.time; });
  auto malformed = parsed.filter([](const parsed_line& p) { return !p.ok; })
                     .name("invalid")
                     .map([](const parsed_line& p) { return malformed_line{p.raw, p.error}; })
                     .name("malformed");
  requests.sink_to(sinks::for_each<access_log>([board](const access_log& r) { board->add_request(r); }))
    .name("live-totals");
  auto minutes = requests.window_all(windows::tumbling{.size = std::chrono::minutes{1}})
                   .aggregate(minute_aggregate{})
                   .name("per-minute");
  minutes.sink_to(sinks::for_each<minute_result>([board](const minute_result& m) { board->add_minute(m); }))
    .name("dashboard-minutes");
  malformed.sink_to(sinks::for_each<malformed_line>([board](const malformed_line& m) { board->add_malformed(m); }))
    .name("dashboard-malformed");
  return {minutes, malformed};
}

} // namespace sluice::logs
