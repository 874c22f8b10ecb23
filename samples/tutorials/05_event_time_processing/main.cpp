// Tutorial 05, event time: the Structured Streaming guide's windowed word count with a
// watermark and late data, batch by batch (sliding windows, micro-batches, update mode), and
// the same ideas record by record in continuous mode (tumbling windows, allowed lateness, a
// side output of late records). See README.md.
//
//   tutorial_05_event_time_processing --part guide       # Spark's late-data example
//   tutorial_05_event_time_processing --part lateness    # allowed lateness + late side output
#include "sluice/api/job.hpp"
#include "sluice/core/codec/time_format.hpp"
#include "sluice/samples/common/cli.hpp"
#include "sluice/samples/common/run.hpp"
#include "sluice/sinks/callback.hpp"
#include "sluice/sinks/foreach_batch.hpp"
#include "sluice/sources/file.hpp"

#include <algorithm>
#include <iostream>
#include <map>
#include <mutex>
#include <sstream>
#include <string>
#include <tuple>
#include <vector>

using namespace sluice;
using namespace std::chrono_literals;

/// One input line: `{"timestamp": "2026-01-01T12:07:00Z", "line": "dog"}`.
struct line_record {
  event_time timestamp{};
  std::string line;
};

template <class Inspector>
bool inspect(Inspector& f, line_record& x) {
  return f.object("line_record").fields(f.field("timestamp", x.timestamp), f.field("line", x.line));
}

using word_count = window_result<std::string, std::uint64_t>;

/// "12:07" of 2026-01-01T12:07:00Z: the day is the same for every row of the input.
std::string hhmm(event_time t) {
  return codec::format_iso8601(t).substr(11, 5);
}

std::string window_text(const word_count& r) {
  return "[" + hhmm(r.start) + ", " + hhmm(r.end) + ") " + r.key + " = " +
         std::to_string(r.value);
}

int fail(const error& e) {
  std::cerr << "tutorial_05_event_time_processing: " << e.to_string() << "\n";
  return 2;
}

/// What the guide part prints per micro-batch, gathered while the job runs.
struct batch_report {
  std::vector<std::string> input;
  std::vector<word_count> output;
  std::string watermark;
  std::uint64_t dropped = 0;
  std::uint64_t state_rows = 0;
};

/// Spark's guide: sliding 10-minute windows every 5 minutes, a 10-minute watermark, update
/// mode, one file per trigger.
int run_guide(const std::string& input, samples::common_flags& common, job_options opts) {
  std::mutex mtx;
  std::map<std::int64_t, batch_report> batches;
  opts.trigger = triggers::available_now();
  opts.output_mode = output_mode::update;
  opts.on_progress = [&](const query_progress& p) {
    std::lock_guard guard{mtx};
    auto& b = batches[p.batch_id];
    b.watermark = p.event_time.count("watermark") ? p.event_time.at("watermark") : "?";
    for (auto& s : p.state_operators) {
      b.dropped += s.num_rows_dropped_by_watermark;
      b.state_rows += s.num_rows_total;
    }
  };
  auto duration = samples::apply_common_flags(common, opts);
  if (!duration)
    return fail(duration.error());

  job j{opts};
  auto lines = j.from(sources::file<line_record>{{.path = input, .max_files_per_trigger = 1}},
                      watermarks::bounded_out_of_orderness<line_record>(
                        10min, &line_record::timestamp))
                 .name("lines");
  lines.sink_to(sinks::foreach_batch<line_record>(
                  [&](std::int64_t batch, std::vector<line_record>& rows) {
                    std::lock_guard guard{mtx};
                    for (auto& r : rows)
                      batches[batch].input.push_back(hhmm(r.timestamp) + " " + r.line);
                    return result<void>{};
                  }))
    .name("input-rows");
  lines
    .flat_map([](const line_record& l, collector<line_record>& out) {
      std::istringstream words{l.line};
      for (std::string w; words >> w;)
        out.collect(line_record{l.timestamp, w});
    })
    .name("split")
    .with_timestamps(&line_record::timestamp)
    .key_by([](const line_record& w) { return w.line; }, "word")
    .window(windows::sliding{.size = 10min, .slide = 5min})
    .count()
    .name("counts")
    .sink_to(sinks::foreach_batch<word_count>(
      [&](std::int64_t batch, std::vector<word_count>& rows) {
        std::lock_guard guard{mtx};
        auto& out = batches[batch].output;
        out.insert(out.end(), rows.begin(), rows.end());
        return result<void>{};
      }))
    .name("output-rows");

  auto done = samples::explain_or_run(
    j, common, *duration, {.program = "tutorial_05_event_time_processing", .job_failed_exit = 2});
  if (!done)
    return done.exit_code();

  // Printed after the run, batch by batch: the sinks and the progress reports of one batch
  // arrive on different threads.
  for (auto& [id, b] : batches) {
    std::cout << "Batch " << id << ": watermark " << b.watermark << ", "
              << b.input.size() << " input rows, " << b.dropped
              << " (word, window) groups dropped as late, " << b.state_rows
              << " windows in state\n";
    for (auto& in : b.input)
      std::cout << "  in:  " << in << "\n";
    std::sort(b.output.begin(), b.output.end(), [](const word_count& x, const word_count& y) {
      return std::tie(x.start, x.key) < std::tie(y.start, y.key);
    });
    for (auto& r : b.output)
      std::cout << "  out: " << window_text(r) << "\n";
  }
  return 0;
}

/// Flink's way, record by record: tumbling 10-minute windows, watermarks 5 minutes behind
/// the newest record, 5 minutes of allowed lateness, and the records later than that on a
/// side output.
int run_lateness(const std::string& input, samples::common_flags& common, job_options opts) {
  // One record per batch, so the watermark moves after every record, as with Flink's
  // per-record watermarks (the source asks its watermark generator after every batch).
  common.batch_size = 1;
  auto duration = samples::apply_common_flags(common, opts);
  if (!duration)
    return fail(duration.error());
  std::mutex mtx;
  std::vector<std::string> results, late;

  job j{opts};
  auto readings = j.from(sources::file<line_record>{{.path = input}},
                         watermarks::bounded_out_of_orderness<line_record>(
                           5min, &line_record::timestamp))
                    .name("readings");
  auto windowed = readings.key_by([](const line_record& r) { return r.line; }, "key")
                    .window(windows::tumbling{.size = 10min})
                    .allowed_lateness(5min);
  auto counts = windowed.count();
  counts.name("counts");
  counts.sink_to(sinks::for_each<word_count>([&](const word_count& r) {
      std::lock_guard guard{mtx};
      results.push_back(window_text(r) +
                        (r.is_update ? "  (update, firing " + std::to_string(r.firing) + ")"
                                     : "  (on time)"));
    }))
    .name("results");
  windowed.late_data()
    .sink_to(sinks::for_each<line_record>([&](const line_record& r) {
      std::lock_guard guard{mtx};
      late.push_back(hhmm(r.timestamp) + " " + r.line);
    }))
    .name("late-records");

  auto done = samples::explain_or_run(
    j, common, *duration, {.program = "tutorial_05_event_time_processing", .job_failed_exit = 2});
  if (!done)
    return done.exit_code();
  std::cout << "window results, in the order they fired:\n";
  for (auto& r : results)
    std::cout << "  " << r << "\n";
  std::cout << "late records (side output):\n";
  for (auto& r : late)
    std::cout << "  " << r << "\n";
  return 0;
}

int main(int argc, char** argv) {
  CLI::App app{"Tutorial 05: event time, watermarks, late data, allowed lateness"};
  samples::common_flags common;
  samples::add_common_flags(app, common);
  std::string part = "guide";
  std::string input;
  app.add_option("--part", part, "guide (Spark's late-data example) or lateness")
    ->check(CLI::IsMember({"guide", "lateness"}));
  app.add_option("--input", input, "input directory (default: the part's bundled data)");
  CLI11_PARSE(app, argc, argv);

  job_options opts;
  opts.name = "tutorial-05-" + part;
  if (input.empty())
    input = std::string{SLUICE_TUTORIAL_DATA} + "/" + part;
  return part == "guide" ? run_guide(input, common, opts) : run_lateness(input, common, opts);
}
