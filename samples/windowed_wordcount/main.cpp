// windowed_wordcount: the windowed word count of Spark's Structured Streaming programming
// guide, with a watermark, under Spark's triggers and output modes.
//
//   windowed_wordcount --input DIR --window 10m --slide 5m --watermark 10m
//     --output-mode append|update|complete
//     --trigger available-now|once|processing-time:5s|continuous[:1s]
//     --max-files-per-trigger N --output FILE [--progress FILE]
//     [--output-dir DIR] [--checkpoint-dir DIR --checkpoint-interval 1s [--restore-from ID]]
//     [--bounded]
//
// DIR holds JSON-lines files, {"timestamp": "2026-01-01T12:07:00Z", "line": "cat dog"},
// taken in lexicographic order of name. FILE gets one JSON line per output row:
// {"batchId": 0, "window": {"start": ..., "end": ...}, "word": "dog", "count": 1}, rows of
// a batch sorted by window start, then word. --progress gets each epoch's progress JSON.
// --output-dir writes the same rows (without batch ids) through the exactly-once file sink:
// part files become visible when their checkpoint completes, and are listed in the manifest
// DIR/_sluice_metadata that readers follow (sinks::read_committed_files). --checkpoint-dir
// makes the job resume where it stopped, killed or not; if it can only resume from a
// checkpoint older than output it already committed (newer checkpoints corrupt or lost), it
// fails naming both instead of writing that output twice; --restore-from ID then starts
// from ID and rolls the newer output back. --bounded reads the files present at start
// and ends, also in continuous mode.
#include "sluice/api/job.hpp"
#include "sluice/api/signals.hpp"
#include "sluice/core/codec/time_format.hpp"
#include "sluice/samples/common/cli.hpp"
#include "sluice/samples/common/run.hpp"
#include "sluice/sinks/file.hpp"
#include "sluice/sinks/foreach_batch.hpp"
#include "sluice/sources/file.hpp"

#include <nlohmann/json.hpp>


#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <memory>
#include <mutex>
#include <sstream>
#include <string>
#include <tuple>
#include <vector>

using namespace sluice;

struct line_record {
  event_time timestamp{};
  std::string line;
};

template <class Inspector>
bool inspect(Inspector& f, line_record& x) {
  return f.object("line_record").fields(f.field("timestamp", x.timestamp), f.field("line", x.line));
}

struct word_at {
  event_time timestamp{};
  std::string word;
};

// Words cross nodes on their way to the counts in a multi-node run (--cluster): the binary
// record codec encodes them by these fields.
template <class Inspector>
bool inspect(Inspector& f, word_at& x) {
  return f.object("word_at").fields(f.field("timestamp", x.timestamp), f.field("word", x.word));
}

using word_count = window_result<std::string, std::uint64_t>;

/// A row of --output-dir.
struct output_row {
  std::string window_start;
  std::string window_end;
  std::string word;
  std::uint64_t count = 0;
};

template <class Inspector>
bool inspect(Inspector& f, output_row& x) {
  return f.object("output_row")
    .fields(f.field("window_start", x.window_start), f.field("window_end", x.window_end),
            f.field("word", x.word), f.field("count", x.count));
}

/// `--trigger available-now | once | processing-time:5s | continuous[:1s]`.
result<trigger> parse_trigger(const std::string& text) {
  const auto colon = text.find(':');
  const auto name = text.substr(0, colon);
  std::optional<std::chrono::milliseconds> interval;
  if (colon != std::string::npos) {
    auto d = codec::parse_duration(text.substr(colon + 1));
    if (!d)
      return make_error(error_code::invalid_option, "--trigger " + text + ": " + d.error().message);
    interval = std::chrono::duration_cast<std::chrono::milliseconds>(*d);
  }
  if (name == "available-now" && !interval)
    return triggers::available_now();
  if (name == "once" && !interval)
    return triggers::once();
  if (name == "processing-time" && interval)
    return triggers::processing_time(*interval);
  if (name == "continuous")
    return triggers::continuous(interval.value_or(std::chrono::seconds{1}));
  return make_error(error_code::invalid_option,
                    "--trigger " + text + ": expected available-now, once, "
                    "processing-time:<interval> or continuous[:<interval>]");
}

result<output_mode> parse_mode(const std::string& text) {
  if (text == "append")
    return output_mode::append;
  if (text == "update")
    return output_mode::update;
  if (text == "complete")
    return output_mode::complete;
  return make_error(error_code::invalid_option, "--output-mode " + text +
                                                  ": expected append, update or complete");
}

/// One output row in the layout Spark's golden files use.
std::string row_json(std::int64_t batch, const word_count& r) {
  return "{\"batchId\": " + std::to_string(batch) + ", \"window\": {\"start\": \"" +
         codec::format_iso8601(r.start) + "\", \"end\": \"" + codec::format_iso8601(r.end) +
         "\"}, \"word\": " + nlohmann::json(r.key).dump() +
         ", \"count\": " + std::to_string(r.value) + "}";
}

int fail(const error& e) {
  std::cerr << "windowed_wordcount: " << e.to_string() << "\n";
  return 2;
}

int main(int argc, char** argv) {
  CLI::App app{"Spark's windowed word count with a watermark, under Spark's triggers and "
               "output modes"};
  samples::common_flags common;
  std::string input, output, output_dir;
  bool bounded = false;
  std::string window = "10m", slide = "5m", watermark = "10m";
  std::string mode_text = "append", trigger_text = "available-now", late_rows = "previous";
  std::size_t max_files = 0;
  samples::add_common_flags(app, common);
  app.add_option("--input", input, "directory of JSON-lines files")->required();
  app.add_option("--output", output, "file for the output rows (JSON lines)");
  app.add_option("--output-dir", output_dir,
                 "directory for the output rows through the exactly-once file sink");
  app.add_flag("--bounded", bounded, "read the files present at start, then end");
  app.add_option("--window", window, "window length, e.g. 10m");
  app.add_option("--slide", slide, "window slide, e.g. 5m (= window: tumbling)");
  app.add_option("--watermark", watermark, "how late a word may arrive, e.g. 10m");
  app.add_option("--output-mode", mode_text, "append, update or complete");
  app.add_option("--trigger", trigger_text,
                 "available-now, once, processing-time:<interval> or continuous[:<interval>]");
  app.add_option("--max-files-per-trigger", max_files, "new files per micro-batch (0: all)");
  app.add_option("--late-rows", late_rows,
                 "which watermark makes a row late: previous (Spark 3.4+) or epoch (Spark 3.3)")
    ->check(CLI::IsMember({"previous", "epoch"}));
  CLI11_PARSE(app, argc, argv);

  job_options opts;
  opts.name = "windowed_wordcount";
  auto duration = samples::apply_common_flags(common, opts);
  if (!duration)
    return fail(duration.error());
  auto when = parse_trigger(trigger_text);
  if (!when)
    return fail(when.error());
  auto mode = parse_mode(mode_text);
  if (!mode)
    return fail(mode.error());
  auto size = samples::duration_flag("--window", window, samples::duration_rule::positive);
  auto step = samples::duration_flag("--slide", slide, samples::duration_rule::positive);
  auto delay =
    samples::duration_flag("--watermark", watermark, samples::duration_rule::not_negative);
  for (auto* d : {&size, &step, &delay})
    if (!*d)
      return fail(d->error());
  // The job would refuse them too, naming the window operator; here the flags are named.
  if (auto ok = windows::sliding{.size = *size, .slide = *step}.validate(); !ok)
    return fail(make_error(error_code::invalid_option,
                           "--window " + window + " --slide " + slide + ": " + ok.error().message));
  opts.trigger = *when;
  opts.output_mode = *mode;
  opts.late_rows = late_rows == "epoch" ? late_row_rule::epoch_watermark
                                        : late_row_rule::previous_watermark;

  if (output.empty() && output_dir.empty())
    return fail(make_error(error_code::invalid_option, "give --output, --output-dir or both"));
  std::ofstream out;
  if (!output.empty()) {
    // With checkpoints a restarted run continues the file; else it starts it anew.
    out.open(output, opts.checkpoints.dir.empty() ? std::ios::trunc : std::ios::app);
    if (!out)
      return fail(make_error(error_code::io_error, "cannot write --output " + output));
  }

  samples::install_crash_hook(opts);
  job j{opts};
  sources::file_options files;
  files.path = input;
  // Micro-batches read what is there at start; the other triggers keep watching.
  files.watch = !bounded && (!when->micro_batch() || when->how == trigger::kind::processing_time);
  if (max_files > 0)
    files.max_files_per_trigger = max_files;
  auto lines = j.from(sources::file<line_record>{files},
                      watermarks::bounded_out_of_orderness<line_record>(
                        *delay, &line_record::timestamp));
  auto words = lines.name("lines")
                 .flat_map([](const line_record& l, collector<word_at>& emit) {
                   std::istringstream in{l.line};
                   for (std::string w; in >> w;)
                     emit.collect(word_at{l.timestamp, std::move(w)});
                 })
                 .name("split")
                 .with_timestamps(&word_at::timestamp);
  auto counts = words.key_by([](const word_at& w) { return w.word; }, "word")
                  .window(windows::sliding{.size = *size, .slide = *step})
                  .count();
  counts.name("counts");
  if (!output_dir.empty())
    counts
      .map([](const word_count& r) {
        return output_row{codec::format_iso8601(r.start), codec::format_iso8601(r.end), r.key,
                          r.value};
      })
      .name("rows")
      .sink_to(sinks::file<output_row>{{.path = output_dir, .transactional = true}})
      .name("output-dir");
  if (!output.empty())
    counts.sink_to(
    sinks::foreach_batch<word_count>([&out](std::int64_t batch, std::vector<word_count>& rows) {
      std::sort(rows.begin(), rows.end(), [](const word_count& a, const word_count& b) {
        return std::tie(a.start, a.key) < std::tie(b.start, b.key);
      });
      for (auto& r : rows)
        out << row_json(batch, r) << "\n";
      out.flush();
      if (!out)
        return result<void>{make_error(error_code::io_error, "cannot write the output file")};
      return result<void>{};
    }));

  auto done = samples::explain_or_run(j, common, *duration,
                                      {.program = "windowed_wordcount", .job_failed_exit = 2});
  return done.exit_code();
}
