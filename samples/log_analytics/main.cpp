// log_analytics: requests and error rates per minute and the top URLs of web access logs
// (Common Log Format) from a watched directory, with a live dashboard (see README.md).
//
//   log_analytics --input logs/ --metrics-port 9249      # then open http://127.0.0.1:9249/dashboard
//   log_analytics --input samples/log_analytics/data --no-watch
#include "sluice/api/job.hpp"
#include "sluice/samples/common/cli.hpp"
#include "sluice/samples/common/run.hpp"
#include "sluice/samples/log_analytics/analytics.hpp"
#include "sluice/sinks/console.hpp"

#include <fmt/core.h>

#include <iostream>

using namespace sluice;

int main(int argc, char** argv) {
  CLI::App app{"Requests, error rates and top URLs of web access logs, with a live dashboard"};
  samples::common_flags common;
  logs::analyze_options opts;
  std::string input;
  bool no_watch = false;
  std::string out_of_orderness = "30s", idle_timeout = "0";
  std::size_t top = 10;
  samples::add_common_flags(app, common);
  app.add_option("--input", input, "file or directory of access logs (Common Log Format)")->required();
  app.add_flag("--no-watch", no_watch, "read what is there and end (default: keep watching the directory)");
  app.add_option("--out-of-orderness", out_of_orderness, "how far lines may come out of order");
  app.add_option("--idle-timeout", idle_timeout,
                 "with no new line for this long, close the open minutes anyway (0: never)");
  app.add_option("--top", top, "URLs on the dashboard")->check(CLI::Range(1, 1000));
  CLI11_PARSE(app, argc, argv);

  auto fail = [](const error& e, int code = 2) {
    std::cerr << "log_analytics: " << e.to_string() << "\n";
    return code;
  };
  job_options jo;
  jo.name = "log-analytics";
  auto duration = samples::apply_common_flags(common, jo);
  if (!duration)
    return fail(duration.error());
  auto delay = samples::duration_flag("--out-of-orderness", out_of_orderness,
                                      samples::duration_rule::not_negative);
  auto idle = samples::duration_flag("--idle-timeout", idle_timeout, samples::duration_rule::not_negative);
  if (!delay)
    return fail(delay.error());
  if (!idle)
    return fail(idle.error());
  opts.input = input;
  opts.watch = !no_watch;
  opts.out_of_orderness = *delay;
  if (idle->count() > 0)
    opts.idle_timeout = *idle;

  job j{jo};
  auto board = std::make_shared<logs::dashboard>(logs::dashboard_options{.top = top});
  auto out = logs::analyze(j, opts, board);
  out.minutes.sink_to(sinks::console<logs::minute_result>{}).name("minutes-out");
  out.malformed.sink_to(sinks::console<logs::malformed_line>{{.out = &std::cerr}}).name("malformed-out");

  // The dashboard's pages are served on the monitor's server (--metrics-port).
  auto done = samples::explain_or_run(j, common, *duration,
                                      {.program = "log_analytics", .pages = board->pages(board)});
  if (!done)
    return done.exit_code();
  const auto t = board->current();
  std::cerr << fmt::format("log_analytics: {}, {} requests ({} 4xx, {} 5xx), {} malformed lines, "
                           "{} minutes closed\n",
                           done->cancelled ? "stopped" : "finished", t.requests, t.client_errors,
                           t.server_errors, t.malformed, t.minutes);
  return 0;
}
