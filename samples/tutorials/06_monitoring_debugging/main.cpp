// Tutorial 06, monitoring and debugging one small job (payments -> validate -> 10-minute sums
// per user): a listener and its progress reports, /metrics and the status page, a tap,
// malformed input to a dead-letter stream, a failing job's error, and a restart that gets
// over a transient failure. See README.md.
//
//   tutorial_06_monitoring_debugging --part listener|metrics|tap|dead-letters|failure|restart
#include "sluice/api/job.hpp"
#include "sluice/core/codec/json.hpp"
#include "sluice/core/codec/time_format.hpp"
#include "sluice/monitor/server.hpp"
#include "sluice/samples/common/cli.hpp"
#include "sluice/samples/common/run.hpp"
#include "sluice/sinks/callback.hpp"
#include "sluice/sinks/foreach_batch.hpp"
#include "sluice/sources/file.hpp"

#include <httplib.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <functional>
#include <iostream>
#include <map>
#include <mutex>
#include <sstream>
#include <stdexcept>
#include <string>
#include <tuple>
#include <vector>

using namespace sluice;
using namespace std::chrono_literals;

/// One payment: `{"time": "2026-01-01T12:00:00Z", "user": "u1", "amount": 10.0}`.
struct payment {
  event_time time{};
  std::string user;
  double amount = 0;
};

template <class Inspector>
bool inspect(Inspector& f, payment& x) {
  return f.object("payment").fields(f.field("time", x.time), f.field("user", x.user),
                                    f.field("amount", x.amount));
}

using user_sum = window_result<std::string, double>;

std::string hhmm(event_time t) {
  return codec::format_iso8601(t).substr(11, 5);
}

std::string sum_text(const user_sum& r) {
  std::ostringstream out;
  out << "[" << hhmm(r.start) << ", " << hhmm(r.end) << ") " << r.key << " = " << r.value;
  return out.str();
}

int fail(const error& e) {
  std::cerr << "tutorial_06_monitoring_debugging: " << e.to_string() << "\n";
  return 2;
}

/// A Spark-style StreamingQueryListener that prints what it hears (the fields that do not
/// depend on timing: no ids, durations or rates).
class printing_listener final : public query_listener {
public:
  explicit printing_listener(std::ostream& out) : out_(out) {}
  void on_started(const started_event& e) override {
    out_ << "started: " << e.name << "\n";
  }
  void on_progress(const query_progress& p) override {
    out_ << "progress: batch " << p.batch_id << ", " << p.num_input_rows
         << " input rows, watermark " << p.event_time.at("watermark");
    for (auto& s : p.state_operators)
      out_ << ", state '" << s.name << "' " << s.num_rows_total << " rows ("
           << s.num_rows_updated << " updated, " << s.num_rows_removed << " removed)";
    out_ << ", sink wrote " << p.sink.num_output_rows << " rows\n";
  }
  void on_idle(const idle_event&) override { out_ << "idle: the trigger found no new data\n"; }
  void on_terminated(const terminated_event& e) override {
    out_ << "terminated: " << (e.exception ? "failed: " + *e.exception : "cleanly") << "\n";
  }

private:
  std::ostream& out_;
};

/// The job every part monitors: payments from `input`, validated, summed per user in
/// 10-minute windows (update mode), one file per micro-batch.
struct payments_job {
  std::mutex mtx;
  std::map<std::int64_t, std::vector<user_sum>> batches;
  std::vector<dead_letter> dead;

  void build(job& j, const std::string& input, bool dead_letters,
             std::function<void(const payment&)> check) {
    sources::file_options files{.path = input};
    files.max_files_per_trigger = 1;
    if (dead_letters)
      files.malformed = on_malformed::dead_letter;
    auto src = j.from(sources::file<payment>{files},
                      watermarks::bounded_out_of_orderness<payment>(5min, &payment::time));
    src.name("payments");
    if (dead_letters)
      src.dead_letters()
        .sink_to(sinks::for_each<dead_letter>([this](const dead_letter& d) {
          std::lock_guard guard{mtx};
          dead.push_back(d);
        }))
        .name("dead-letters");
    src.map([check](const payment& p) {
         check(p);
         return p;
       })
      .name("validate")
      .with_timestamps(&payment::time)
      .key_by([](const payment& p) { return p.user; }, "user")
      .window(windows::tumbling{.size = 10min})
      .sum([](const payment& p) { return p.amount; })
      .name("sums")
      .sink_to(sinks::foreach_batch<user_sum>([this](std::int64_t b, std::vector<user_sum>& rows) {
        std::lock_guard guard{mtx};
        auto& out = batches[b];
        out.insert(out.end(), rows.begin(), rows.end());
        return result<void>{};
      }))
      .name("output");
  }

  void print(std::ostream& out) {
    std::lock_guard guard{mtx};
    for (auto& [b, rows] : batches) {
      std::sort(rows.begin(), rows.end(), [](const user_sum& x, const user_sum& y) {
        return std::tie(x.start, x.key) < std::tie(y.start, y.key);
      });
      out << "batch " << b << ":";
      if (rows.empty())
        out << " (no rows)";
      out << "\n";
      for (auto& r : rows)
        out << "  " << sum_text(r) << "\n";
    }
  }
};

/// A validation that fails the job on a negative amount: a bug, or bad data, to debug.
void reject_negative(const payment& p) {
  if (p.amount < 0)
    throw std::invalid_argument("negative amount " + std::to_string(p.amount));
}

/// The same validation, failing only the first time it meets the record: a transient error,
/// like a timeout calling a service, that a restart gets over.
void fail_once_on_negative(const payment& p) {
  static std::atomic<bool> failed{false};
  if (p.amount < 0 && !failed.exchange(true))
    throw std::runtime_error("lookup service timed out (transient)");
}

/// GET `path` from the monitor; "HTTP <status>" and the body.
std::pair<int, std::string> http_get(int port, const std::string& path) {
  httplib::Client client{"127.0.0.1", port};
  client.set_connection_timeout(5);
  client.set_read_timeout(5);
  auto res = client.Get(path.c_str());
  if (!res)
    return {0, "no answer: " + httplib::to_string(res.error())};
  return {res->status, res->body};
}

int run_metrics(job& j, payments_job& pj) {
  auto exec = j.start();
  if (!exec)
    return fail(exec.error());
  auto server = monitor::server::start(**exec, {.port = 0}); // any free port on loopback
  if (!server)
    return fail(server.error());
  (*exec)->await_termination();
  if (auto e = (*exec)->exception())
    return fail(*e);
  pj.print(std::cout);
  // Scraped after the job ended, so every counter is final and the same on every run.
  const int port = (*server)->port();
  auto [status, metrics] = http_get(port, "/metrics");
  std::cout << "GET /metrics: HTTP " << status << "\n";
  std::istringstream lines{metrics};
  std::vector<std::string> shown;
  for (std::string line; std::getline(lines, line);)
    if (line.rfind("sluice_records_in_total{", 0) == 0 ||
        line.rfind("sluice_records_out_total{", 0) == 0 ||
        line.rfind("sluice_state_entries{", 0) == 0)
      shown.push_back(line);
  std::sort(shown.begin(), shown.end());
  for (auto& l : shown)
    std::cout << "  " << l << "\n";
  auto [page_status, page] = http_get(port, "/");
  std::cout << "GET /: HTTP " << page_status << ", an HTML page: "
            << (page.find("<html") != std::string::npos ? "yes" : "no")
            << ", external scripts: "
            << (page.find("<script src") != std::string::npos ? "yes" : "no") << "\n";
  auto [api_status, progress] = http_get(port, "/api/progress");
  std::cout << "GET /api/progress: HTTP " << api_status << ", "
            << nlohmann::json::parse(progress, nullptr, false).size()
            << " progress reports\n";
  return 0;
}

int main(int argc, char** argv) {
  CLI::App app{"Tutorial 06: listeners, progress, metrics, taps, dead letters, failures"};
  samples::common_flags common;
  samples::add_common_flags(app, common);
  std::string part = "listener";
  std::string input;
  app.add_option("--part", part, "listener, metrics, tap, dead-letters, failure or restart")
    ->check(CLI::IsMember({"listener", "metrics", "tap", "dead-letters", "failure", "restart"}));
  app.add_option("--input", input, "directory of payments (default: the part's bundled data)");
  CLI11_PARSE(app, argc, argv);

  if (input.empty())
    input = std::string{SLUICE_TUTORIAL_DATA} +
            (part == "dead-letters"                          ? "/with_errors"
             : part == "failure" || part == "restart" ? "/poison"
                                                             : "/payments");
  job_options opts;
  opts.name = "tutorial-06";
  opts.trigger = triggers::available_now();
  opts.output_mode = output_mode::update;
  if (part == "listener")
    opts.listeners.push_back(std::make_shared<printing_listener>(std::cout));
  if (part == "tap")
    // Like `--tap validate:1000`: every record leaving 'validate', printed as JSON.
    opts.taps.push_back(tap_spec{.operator_name = "validate",
                                 .max_per_second = 1000,
                                 .out = [](const std::string& line) {
                                   std::cout << "tap: " << line << "\n";
                                 }});
  if (part == "restart") {
    if (common.checkpoint_dir.empty())
      return fail(make_error(error_code::invalid_option,
                             "--part restart: needs --checkpoint-dir (a restart resumes from "
                             "the latest checkpoint)"));
    opts.checkpoints.restart = restart_strategy::fixed(2, 10ms);
  }
  auto duration = samples::apply_common_flags(common, opts);
  if (!duration)
    return fail(duration.error());

  payments_job pj;
  job j{opts};
  pj.build(j, input, part == "dead-letters",
           part == "failure"   ? reject_negative
           : part == "restart" ? fail_once_on_negative
                               : [](const payment&) {});
  // This part starts the job and its monitor itself, to scrape it once the job ended.
  if (part == "metrics" && !common.explain)
    return run_metrics(j, pj);

  auto done = samples::explain_or_run(
    j, common, *duration,
    {.program = "tutorial_06_monitoring_debugging", .on_failure = [&pj](const error& e) {
       // The error names the operator, its instance, the cause and the record.
       std::cout << "the job failed: " << e.to_string() << "\n";
       pj.print(std::cout);
     }});
  if (!done)
    return done.exit_code();
  pj.print(std::cout);
  if (part == "dead-letters")
    for (auto d : pj.dead) {
      // The location is "<path>:<line>"; the file name is enough here.
      d.location = std::filesystem::path{d.location}.filename().string();
      std::cout << "dead letter: " << codec::to_json_line(d) << "\n";
    }
  if (part == "restart")
    std::cout << "restarts: " << done->restarts << "\n";
  return 0;
}
