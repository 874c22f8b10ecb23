#pragma once
/// The log-analytics job and its live dashboard, shared by the sample's `main` and
/// tests/logs.
///
/// ```cpp
/// auto board = std::make_shared<logs::dashboard>(logs::dashboard_options{});
/// auto out = logs::analyze(j, {.input = "logs/", .watch = true}, board);
/// out.minutes.sink_to(sinks::console<logs::minute_result>{});
/// monitor::server::start(exec, {.pages = board->pages()});   // /dashboard
/// ```
#include "sluice/api/job.hpp"
#include "sluice/monitor/server.hpp"
#include "sluice/operators/window/window_result.hpp"
#include "sluice/samples/log_analytics/clf.hpp"

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace sluice::logs {

/// A line as the file source reads it (see `analyze`).
struct raw_line {
  std::string line;
};

template <class Inspector>
bool inspect(Inspector& f, raw_line& x) {
  return f.object("raw_line").fields(f.field("line", x.line));
}

/// A line that is no Common Log Format: shown, counted, never dropped unseen.
struct malformed_line {
  std::string line;
  std::string error;
};

template <class Inspector>
bool inspect(Inspector& f, malformed_line& x) {
  return f.object("malformed_line").fields(f.field("line", x.line), f.field("error", x.error));
}

/// The requests of one minute (event time).
struct minute_stats {
  std::uint64_t requests = 0;
  std::uint64_t client_errors = 0; ///< 4xx
  std::uint64_t server_errors = 0; ///< 5xx
  std::uint64_t bytes = 0;

  double error_rate() const noexcept {
    return requests == 0 ? 0 : static_cast<double>(client_errors + server_errors) / static_cast<double>(requests);
  }
  friend bool operator==(const minute_stats&, const minute_stats&) = default;
};

template <class Inspector>
bool inspect(Inspector& f, minute_stats& x) {
  return f.object("minute_stats")
    .fields(f.field("requests", x.requests), f.field("client_errors", x.client_errors),
            f.field("server_errors", x.server_errors), f.field("bytes", x.bytes));
}

using minute_result = window_result<void, minute_stats>;

struct minute_aggregate {
  minute_stats create() const { return {}; }
  void add(minute_stats& m, const access_log& r) const;
  minute_stats result(const minute_stats& m) const { return m; }
};

struct dashboard_options {
  /// URLs listed. Default 10.
  std::size_t top = 10;
  /// Minutes kept for the charts and the table (the oldest go first). Default 120.
  std::size_t minutes = 120;
  /// How often the page fetches new figures. Default 1 s.
  std::chrono::milliseconds refresh{1000};
};

/// What the dashboard shows, fed by the job's sinks (any thread) and rendered for the
/// monitor's server (its threads). All members are thread-safe.
class dashboard {
public:
  explicit dashboard(dashboard_options opts = {}) : opts_(opts) {}

  void add_request(const access_log& r);
  void add_minute(const minute_result& m);
  void add_malformed(const malformed_line& m);

  struct totals {
    std::uint64_t requests = 0, client_errors = 0, server_errors = 0, malformed = 0;
    std::size_t minutes = 0; ///< closed minutes received
  };
  totals current() const;

  /// The figures as HTML (what `/dashboard/fragment` serves).
  std::string render_fragment() const;
  /// The whole page: the figures, and a small inline script that fetches the fragment
  /// every `refresh` (no external script; without JavaScript, a reload shows the news).
  std::string render_page() const;
  /// `/dashboard` and `/dashboard/fragment` for `monitor::server_options::pages`.
  std::vector<monitor::extra_page> pages(std::shared_ptr<const dashboard> self) const;

private:
  dashboard_options opts_;
  mutable std::mutex mtx_;
  totals totals_;
  std::map<std::string, std::uint64_t> url_counts_;
  std::map<sluice::event_time, minute_stats> minutes_;
  std::vector<malformed_line> last_malformed_; // the last few, for the page
};

struct analyze_options {
  /// A file or a directory of access logs.
  std::filesystem::path input;
  /// Keep watching the directory for new files (files must appear whole: rename them in).
  bool watch = true;
  /// How far out of order lines may come (event time). Default 30 s.
  std::chrono::microseconds out_of_orderness = std::chrono::seconds{30};
  /// A source with no new line for this long stops holding the watermark back, so the
  /// last minute closes even when no newer log comes. Default: never.
  std::optional<std::chrono::nanoseconds> idle_timeout{};
  /// How often the watched directory is scanned. Default 100 ms.
  std::chrono::milliseconds poll_interval{100};
};

struct analyze_outputs {
  stream<minute_result> minutes;      ///< per minute, when the watermark closes it
  stream<malformed_line> malformed;   ///< lines that are no Common Log Format
};

/// Reads the logs (the file source, one line per record), parses them (node "parse"),
/// feeds `board` with every request ("live-totals") and every closed minute, and returns
/// the per-minute results ("per-minute") and the malformed lines.
analyze_outputs analyze(job& j, const analyze_options& opts, std::shared_ptr<dashboard> board);

} // namespace sluice::logs
