#pragma once
// The end of every sample's main(): `--explain` or a run with the monitor, `--duration` and
// Ctrl-C, and how a failure is reported (samples/README.md).
#include "sluice/api/job.hpp"
#include "sluice/api/signals.hpp"
#include "sluice/monitor/server.hpp"
#include "sluice/samples/common/cli.hpp"

#include <chrono>
#include <functional>
#include <iostream>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace sluice::samples {

/// Runs the job until its input ends, `duration` passes or Ctrl-C, with the monitor
/// (`--metrics-port`) while it runs, serving `pages` beside its own (a dashboard).
inline result<job_result> run_job(job& j, const common_flags& f,
                                  std::optional<std::chrono::nanoseconds> duration,
                                  std::vector<monitor::extra_page> pages = {}) {
  auto attach = [&f, &pages](job_execution& exec) -> result<std::shared_ptr<void>> {
    if (f.metrics_port < 0)
      return std::shared_ptr<void>{};
    // Top-level pages are announced; their parts (a fragment a page fetches) are not.
    std::vector<std::string> paths;
    for (const auto& p : pages)
      if (p.path.find('/', 1) == std::string::npos)
        paths.push_back(p.path);
    auto server = monitor::server::start(exec, {.port = f.metrics_port, .pages = std::move(pages)});
    if (!server)
      return make_error(error_code::invalid_option, "--metrics-port: " + server.error().message);
    // "dashboard: http://127.0.0.1:9249/dashboard  status page: ...": each page by its name.
    const auto url = (*server)->url();
    for (const auto& path : paths)
      std::cerr << path.substr(1) << ": " << url << path << "  ";
    std::cerr << "status page: " << url << "/  metrics: " << url << "/metrics\n";
    return std::shared_ptr<void>{std::move(*server)};
  };
  return run_until_stopped(j, duration, attach);
}

/// How a sample ends when its job cannot be planned or fails (`explain_or_run`).
struct sample_run_options {
  /// Starts every message: "nexmark: job failed: ...".
  std::string_view program;
  /// The exit code of a failed job. Default 1; 2 is for bad flags and plans.
  int job_failed_exit = 1;
  /// Reports a failed job instead of the line on stderr (a tutorial that shows a failure
  /// prints it with its output).
  std::function<void(const error&)> on_failure{};
  /// Pages served on `--metrics-port` beside the monitor's own.
  std::vector<monitor::extra_page> pages{};
};

/// What `explain_or_run` ended with: the job's result, or the code `main` exits with.
class sample_run {
public:
  explicit sample_run(job_result done) : done_(std::move(done)) {}
  explicit sample_run(int exit_code) : exit_code_(exit_code) {}

  /// Whether the job ran to its end (or was stopped) and its result is here.
  explicit operator bool() const noexcept { return done_.has_value(); }
  /// The code `main` exits with: 0 when the job ran or `--explain` printed the plans, 2
  /// when the job could not be planned, `job_failed_exit` when it failed (each reported
  /// already).
  int exit_code() const noexcept { return exit_code_; }
  job_result& operator*() { return *done_; }
  job_result* operator->() { return &*done_; }

private:
  std::optional<job_result> done_;
  int exit_code_ = 0;
};

/// The end of a sample's main(), once its job is built. With `--explain`: prints the
/// logical and physical plans to stdout and gives exit code 0, or reports
/// "<program>: <error>" on stderr and gives 2 when the job cannot be planned. Otherwise runs
/// the job as `run_job` does (the monitor, `--duration`, Ctrl-C); a failed job is reported
/// ("<program>: job failed: <error>", or `on_failure`) and gives `job_failed_exit`.
///
///   auto done = samples::explain_or_run(j, common, *duration, {.program = "nexmark"});
///   if (!done)
///     return done.exit_code();
///   report(done->tasks);
inline sample_run explain_or_run(job& j, const common_flags& f,
                                 std::optional<std::chrono::nanoseconds> duration,
                                 sample_run_options how) {
  if (f.explain) {
    auto text = j.explain();
    if (!text) {
      std::cerr << how.program << ": " << text.error().to_string() << "\n";
      return sample_run{2};
    }
    std::cout << *text;
    return sample_run{0};
  }
  auto done = run_job(j, f, duration, std::move(how.pages));
  if (!done) {
    if (how.on_failure)
      how.on_failure(done.error());
    else
      std::cerr << how.program << ": job failed: " << done.error().to_string() << "\n";
    return sample_run{how.job_failed_exit};
  }
  return sample_run{std::move(*done)};
}

} // namespace sluice::samples
