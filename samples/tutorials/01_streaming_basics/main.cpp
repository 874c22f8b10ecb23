// Tutorial 01, streaming basics: one windowed count, read from a directory or from Spark's
// rate-micro-batch source, under append, update and complete output mode, printed by the
// console sink with Spark's "Batch: N" headers; and Spark's rate source on the real clock,
// its rows as they come. See README.md.
//
//   tutorial_01_streaming_basics --output-mode append|update|complete
//   tutorial_01_streaming_basics --source rate-micro-batch --output-mode complete --runs 3 --checkpoint-dir DIR
//   tutorial_01_streaming_basics --source rate --rows-per-second 5 --duration 3s
#include "sluice/api/job.hpp"
#include "sluice/core/codec/time_format.hpp"
#include "sluice/samples/common/cli.hpp"
#include "sluice/samples/common/run.hpp"
#include "sluice/sinks/console.hpp"
#include "sluice/sources/file.hpp"
#include "sluice/sources/rate.hpp"

#include <cstdint>
#include <iostream>
#include <string>

using namespace sluice;
using namespace std::chrono_literals;

/// One line of the input files: `{"time": "2026-01-01T12:02:00Z", "action": "open"}`.
struct event {
  event_time time{};
  std::string action;
};

template <class Inspector>
bool inspect(Inspector& f, event& x) {
  return f.object("event").fields(f.field("time", x.time), f.field("action", x.action));
}

/// One row of the result table, as Spark's console shows `window`, the key and `count`.
struct count_row {
  event_time window_start{};
  event_time window_end{};
  std::string key;
  std::uint64_t count = 0;
};

template <class Inspector>
bool inspect(Inspector& f, count_row& x) {
  return f.object("count_row")
    .fields(f.field("window_start", x.window_start), f.field("window_end", x.window_end),
            f.field("key", x.key), f.field("count", x.count));
}

count_row to_row(const window_result<std::string, std::uint64_t>& r) {
  return {r.start, r.end, r.key, r.value};
}

output_mode parse_mode(const std::string& text) {
  if (text == "append")
    return output_mode::append;
  if (text == "update")
    return output_mode::update;
  return output_mode::complete;
}

int fail(const error& e) {
  std::cerr << "tutorial_01_streaming_basics: " << e.to_string() << "\n";
  return 2;
}

int main(int argc, char** argv) {
  CLI::App app{"Tutorial 01: a windowed count under Spark's three output modes"};
  samples::common_flags common;
  samples::add_common_flags(app, common);
  std::string source = "file";
  std::string input = SLUICE_TUTORIAL_DATA "/events";
  std::string mode_text = "append";
  int runs = 1;
  std::int64_t rows_per_second = 5;
  app.add_option("--source", source,
                 "file (a directory of JSON lines), rate (Spark's rate, on the real clock) or "
                 "rate-micro-batch")
    ->check(CLI::IsMember({"file", "rate", "rate-micro-batch"}));
  app.add_option("--rows-per-second", rows_per_second,
                 "--source rate: rows per second (Spark's rowsPerSecond; default 5)")
    ->check(CLI::Range(std::int64_t{1}, std::int64_t{1'000'000}));
  app.add_option("--input", input, "the directory the file source reads");
  app.add_option("--output-mode", mode_text, "append, update or complete")
    ->check(CLI::IsMember({"append", "update", "complete"}));
  app.add_option("--runs", runs,
                 "run the available-now query this many times on one --checkpoint-dir; each "
                 "run goes on where the last stopped")
    ->check(CLI::Range(1, 100));
  CLI11_PARSE(app, argc, argv);

  job_options opts;
  opts.name = "tutorial-01";
  auto duration = samples::apply_common_flags(common, opts);
  if (!duration)
    return fail(duration.error());
  if (runs > 1 && common.checkpoint_dir.empty())
    return fail(make_error(error_code::invalid_option,
                           "--runs: needs --checkpoint-dir (a run resumes from the last one's "
                           "checkpoint)"));
  // Spark's Trigger.AvailableNow: micro-batches over what is there at the start, then stop.
  // The rate source never runs dry: a micro-batch every second until --duration or Ctrl-C.
  opts.trigger = source == "rate" ? triggers::processing_time(1s) : triggers::available_now();
  opts.output_mode = parse_mode(mode_text);

  for (int run = 0; run < runs; ++run) {
    job j{opts};
    if (source == "rate") {
      // Spark's rate source: value v is stamped creation + v / rows_per_second on the
      // processing clock; each batch holds the whole seconds that passed since the last.
      j.from(sources::rate({.rows_per_second = rows_per_second}))
        .name("rate")
        .sink_to(sinks::console<sources::rate_row>{{.format = sinks::console_format::table,
                                                    .truncate = 0}})
        .name("console");
      auto done = samples::explain_or_run(
        j, common, *duration, {.program = "tutorial_01_streaming_basics", .job_failed_exit = 2});
      if (!done)
        return done.exit_code();
      continue;
    }
    stream<count_row> counts = [&] {
      if (source == "file") {
        // maxFilesPerTrigger 1: one file per micro-batch, so the batches can be told apart.
        auto events = j.from(sources::file<event>{{.path = input, .max_files_per_trigger = 1}},
                             watermarks::bounded_out_of_orderness<event>(5min, &event::time))
                        .name("events");
        return events.key_by([](const event& e) { return e.action; }, "action")
          .window(windows::tumbling{.size = 10min})
          .count()
          .name("counts")
          .map(to_row)
          .name("rows");
      }
      // Spark's rate-micro-batch: batch N holds values 4N .. 4N+3, stamped start + N seconds.
      auto start = codec::parse_iso8601("2026-01-01T00:00:00Z");
      auto rows = j.from(sources::rate_micro_batch({.rows_per_batch = 4,
                                                    .start_timestamp = *start,
                                                    .advance_millis_per_batch = 1000ms}),
                         watermarks::bounded_out_of_orderness<sources::rate_row>(
                           0s, &sources::rate_row::timestamp))
                    .name("rate");
      return rows
        .key_by([](const sources::rate_row& r) {
          return std::string{r.value % 2 == 0 ? "even" : "odd"};
        }, "parity")
        .window(windows::tumbling{.size = 2s})
        .count()
        .name("counts")
        .map(to_row)
        .name("rows");
    }();
    counts.sink_to(sinks::console<count_row>{{.format = sinks::console_format::table,
                                               .truncate = 0}})
      .name("console");

    auto done = samples::explain_or_run(
      j, common, *duration, {.program = "tutorial_01_streaming_basics", .job_failed_exit = 2});
    if (!done)
      return done.exit_code();
  }
  return 0;
}
