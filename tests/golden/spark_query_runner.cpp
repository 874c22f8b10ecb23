// spark_query_runner: the queries of tests/golden/spark/generate.py, built with Sluice's public
// API, so spark_golden_test can run each golden case as a child process (as it runs the
// windowed_wordcount sample for the word count cases).
//
//   spark_query_runner --query KIND --input DIR [--input-right DIR] [--static FILE]
//     [--window 10m] [--window2 30m] [--gap 5m] [--watermark 10m] [--bound 5m]
//     [--join inner|left_outer] [--min-count 2]
//     --output-mode append|update|complete --trigger available-now|once
//     --max-files-per-trigger N --late-rows previous|epoch --output FILE [--progress FILE]
//
// Input rows are JSON lines {"timestamp": "2026-01-01T12:07:00Z", "key": "a", "value": 1}
// (Spark's "timestamp TIMESTAMP, key STRING, value BIGINT"). FILE gets one JSON line per
// output row with the batch id first, in the layout generate.py writes for the kind. Exit
// codes: 0 done, 3 the job was refused before it started (Spark's AnalysisException; the
// message goes to stderr), 2 any other error.
//
// Kinds (Spark's query in generate.py, the Sluice equivalent here):
//   session          groupBy(session_window(ts, gap), key).count()
//   session_dynamic  the same with the gap `value` minutes (windows::session_dynamic)
//   dedup_window     dropDuplicatesWithinWatermark([value]), then a tumbling count per key
//   dedup            withWatermark + dropDuplicates([key, timestamp]): a within-watermark
//                    dedup keyed by (key, timestamp) with no extra delay, the way a Spark
//                    user writes it in Sluice (no separate operator exists)
//   dedup_forever    dropDuplicates([key]) without watermark: a keyed process function
//                    remembering every key
//   static_join      join with a static table ({"key", "name"} lines), inner or left_outer
//   window_filter    a tumbling count per key, then count >= min-count
//   stream_join      interval join of --input and --input-right on key, |dt| <= bound
//   chained          a tumbling count per key, then the sum of the counts per key in a
//                    coarser window over the first windows' window_time (end - 1 us)
//   keyed_timer      transformWithState with an event-time timer: per key a count and the
//                    latest event time; a timer at latest + gap (moved by every row) emits
//                    {key, count, last} and clears the key (a keyed process function)
#include "sluice/api/job.hpp"
#include "sluice/core/codec/time_format.hpp"
#include "sluice/samples/common/cli.hpp"
#include "sluice/sinks/foreach_batch.hpp"
#include "sluice/sources/file.hpp"
#include "sluice/sources/static_table.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <string>
#include <tuple>
#include <vector>

using namespace sluice;
using ojson = nlohmann::ordered_json;

struct kv_row {
  event_time timestamp{};
  std::string key;
  std::int64_t value = 0;
};

template <class Inspector>
bool inspect(Inspector& f, kv_row& x) {
  return f.object("kv_row").fields(f.field("timestamp", x.timestamp), f.field("key", x.key),
                                   f.field("value", x.value));
}

struct name_row {
  std::string key;
  std::string name;
};

template <class Inspector>
bool inspect(Inspector& f, name_row& x) {
  return f.object("name_row").fields(f.field("key", x.key), f.field("name", x.name));
}

struct joined_row {
  kv_row left;
  std::optional<std::string> name;         // static_join
  std::optional<kv_row> right;              // stream_join
};

template <class Inspector>
bool inspect(Inspector& f, joined_row& x) {
  return f.object("joined_row")
    .fields(f.field("left", x.left), f.field("name", x.name), f.field("right", x.right));
}

using count_result = window_result<std::string, std::uint64_t>;

struct timeout_row {
  std::string key;
  std::int64_t count = 0;
  event_time last{};
};

template <class Inspector>
bool inspect(Inspector& f, timeout_row& x) {
  return f.object("timeout_row")
    .fields(f.field("key", x.key), f.field("count", x.count), f.field("last", x.last));
}

/// keyed_timer's state per key: one value, as Spark's processor keeps one value state.
struct timeout_state {
  std::int64_t count = 0;
  event_time last{};
};

template <class Inspector>
bool inspect(Inspector& f, timeout_state& x) {
  return f.object("timeout_state").fields(f.field("count", x.count), f.field("last", x.last));
}

/// keyed_timer: Spark's StatefulProcessor of generate.py, as a keyed process function.
struct timeout_counter {
  duration gap{};

  void on_element(const kv_row& r, keyed_process_context<std::string>& ctx,
                  collector<timeout_row>&) {
    auto state = ctx.value_state<timeout_state>("state");
    auto s = state.value();
    if (s)
      ctx.timers().delete_event_time(s->last + gap);
    else
      s = timeout_state{0, r.timestamp};
    s->count += 1;
    s->last = std::max(s->last, r.timestamp);
    state.update(*s);
    ctx.timers().register_event_time(s->last + gap);
  }

  void on_timer(event_time, keyed_process_context<std::string>& ctx,
                collector<timeout_row>& out) {
    auto state = ctx.value_state<timeout_state>("state");
    if (auto s = state.value())
      out.collect(timeout_row{ctx.current_key(), s->count, s->last});
    state.clear();
  }
};

namespace {

std::string iso(event_time t) {
  return codec::format_iso8601(t);
}

ojson window_json(const char* what, const count_result& r) {
  ojson j;
  j[what] = {{"start", iso(r.start)}, {"end", iso(r.end)}};
  j["key"] = r.key;
  j["count"] = r.value;
  return j;
}

ojson kv_json(const kv_row& r) {
  return ojson{{"timestamp", iso(r.timestamp)}, {"key", r.key}, {"value", r.value}};
}

/// Rows of a batch in generate.py's order: window start, then the whole line.
struct output_file {
  std::ofstream out;

  result<void> write(std::int64_t batch, std::vector<ojson> rows) {
    std::vector<std::pair<std::string, std::string>> lines;
    for (auto& r : rows) {
      std::string start;
      for (const char* w : {"window", "session"})
        if (r.contains(w))
          start = r[w]["start"].get<std::string>();
      ojson line{{"batchId", batch}};
      line.update(r);
      lines.emplace_back(start, line.dump());
    }
    std::sort(lines.begin(), lines.end());
    for (auto& [_, l] : lines)
      out << l << "\n";
    out.flush();
    if (!out)
      return make_error(error_code::io_error, "cannot write the output file");
    return {};
  }
};

template <class T, class ToJson>
void sink_rows(stream<T> s, output_file& file, ToJson to_json) {
  s.sink_to(sinks::foreach_batch<T>([&file, to_json](std::int64_t batch, std::vector<T>& rows) {
     std::vector<ojson> out;
     out.reserve(rows.size());
     for (auto& r : rows)
       out.push_back(to_json(r));
     return file.write(batch, std::move(out));
   })).name("output");
}

result<trigger> parse_trigger(const std::string& text) {
  if (text == "available-now")
    return triggers::available_now();
  if (text == "once")
    return triggers::once();
  return make_error(error_code::invalid_option,
                    "--trigger " + text + ": expected available-now or once");
}

result<output_mode> parse_mode(const std::string& text) {
  if (text == "append")
    return output_mode::append;
  if (text == "update")
    return output_mode::update;
  if (text == "complete")
    return output_mode::complete;
  return make_error(error_code::invalid_option,
                    "--output-mode " + text + ": expected append, update or complete");
}

int fail(const error& e) {
  std::cerr << "spark_query_runner: " << e.to_string() << "\n";
  return 2;
}

} // namespace

int main(int argc, char** argv) {
  CLI::App app{"The golden Spark queries (tests/golden/spark) built with Sluice"};
  samples::common_flags common;
  std::string query, input, input_right, static_file, output;
  std::string window = "10m", window2 = "30m", gap = "5m", watermark = "10m", bound = "5m";
  std::string join = "inner", mode_text = "append", trigger_text = "available-now",
              late_rows = "previous";
  std::size_t max_files = 0;
  std::uint64_t min_count = 2;
  samples::add_common_flags(app, common);
  app.add_option("--query", query, "the query kind")
    ->required()
    ->check(CLI::IsMember({"session", "session_dynamic", "dedup_window", "dedup",
                           "dedup_forever", "static_join", "window_filter", "stream_join",
                           "chained", "keyed_timer"}));
  app.add_option("--input", input, "directory of JSON-lines files")->required();
  app.add_option("--input-right", input_right, "stream_join: the right side's directory");
  app.add_option("--static", static_file,
                 "static_join: the table, {\"key\", \"name\"} lines, or a .csv file with a "
                 "header line and the columns key, name");
  app.add_option("--window", window, "tumbling window length, e.g. 10m");
  app.add_option("--window2", window2, "chained: the second window's length");
  app.add_option("--gap", gap, "session: the inactivity gap");
  app.add_option("--watermark", watermark, "how late a row may arrive, e.g. 10m");
  app.add_option("--bound", bound, "stream_join: right time within this of left time");
  app.add_option("--join", join, "static_join, stream_join: inner or left_outer")
    ->check(CLI::IsMember({"inner", "left_outer"}));
  app.add_option("--min-count", min_count, "window_filter: keep rows with count >= this");
  app.add_option("--output-mode", mode_text, "append, update or complete");
  app.add_option("--trigger", trigger_text, "available-now or once");
  app.add_option("--max-files-per-trigger", max_files, "new files per micro-batch (0: all)");
  app.add_option("--late-rows", late_rows,
                 "which watermark makes a row late: previous (Spark 3.4+) or epoch (Spark 3.3)")
    ->check(CLI::IsMember({"previous", "epoch"}));
  app.add_option("--output", output, "file for the output rows (JSON lines)")->required();
  CLI11_PARSE(app, argc, argv);

  job_options opts;
  opts.name = "spark_query_runner_" + query;
  if (auto d = samples::apply_common_flags(common, opts); !d)
    return fail(d.error());
  auto when = parse_trigger(trigger_text);
  if (!when)
    return fail(when.error());
  auto mode = parse_mode(mode_text);
  if (!mode)
    return fail(mode.error());
  using samples::duration_rule;
  auto size = samples::duration_flag("--window", window, duration_rule::positive);
  auto size2 = samples::duration_flag("--window2", window2, duration_rule::positive);
  auto gap_d = samples::duration_flag("--gap", gap, duration_rule::positive);
  auto delay = samples::duration_flag("--watermark", watermark, duration_rule::not_negative);
  auto bound_d = samples::duration_flag("--bound", bound, duration_rule::not_negative);
  for (auto* d : {&size, &size2, &gap_d, &delay, &bound_d})
    if (!*d)
      return fail(d->error());
  opts.trigger = *when;
  opts.output_mode = *mode;
  opts.late_rows = late_rows == "epoch" ? late_row_rule::epoch_watermark
                                        : late_row_rule::previous_watermark;

  output_file file;
  file.out.open(output, std::ios::trunc);
  if (!file.out)
    return fail(make_error(error_code::io_error, "cannot write --output " + output));

  job j{opts};
  auto read = [&](const std::string& dir, bool with_watermark) {
    sources::file_options files;
    files.path = dir;
    files.watch = false;
    if (max_files > 0)
      files.max_files_per_trigger = max_files;
    if (!with_watermark)
      return j.from(sources::file<kv_row>{files});
    return j.from(sources::file<kv_row>{files},
                  watermarks::bounded_out_of_orderness<kv_row>(*delay, &kv_row::timestamp));
  };
  auto window_rows = [](const char* what) {
    return [what](const count_result& r) { return window_json(what, r); };
  };
  const auto by_key = [](const kv_row& r) { return r.key; };

  if (query == "session" || query == "session_dynamic") {
    auto rows = read(input, true).name("input");
    auto keyed = rows.key_by(by_key, "key");
    if (query == "session")
      sink_rows(keyed.window(windows::session{.gap = *gap_d}).count(), file, window_rows("session"));
    else
      sink_rows(keyed
                  .window(windows::session_dynamic{
                    [](const kv_row& r) { return std::chrono::minutes{r.value}; }})
                  .count(),
                file, window_rows("session"));
  } else if (query == "dedup_window") {
    auto unique = read(input, true)
                    .name("input")
                    .key_by([](const kv_row& r) { return r.value; }, "value")
                    .drop_duplicates_within_watermark(*delay);
    sink_rows(unique.key_by(by_key, "key").window(windows::tumbling{.size = *size}).count(), file,
              window_rows("window"));
  } else if (query == "dedup") {
    auto unique = read(input, true)
                    .name("input")
                    .key_by([](const kv_row& r) { return r.key + "\n" + iso(r.timestamp); },
                            "key_and_time")
                    .drop_duplicates_within_watermark();
    sink_rows(unique, file, kv_json);
  } else if (query == "dedup_forever") {
    auto unique = read(input, false)
                    .name("input")
                    .key_by(by_key, "key")
                    .process([](const kv_row& r, keyed_process_context<std::string>& ctx,
                                collector<kv_row>& out) {
                      auto seen = ctx.value_state<bool>("seen");
                      if (seen.exists())
                        return;
                      seen.update(true);
                      out.collect(r);
                    });
    sink_rows(unique, file, kv_json);
  } else if (query == "static_join") {
    if (static_file.empty())
      return fail(make_error(error_code::invalid_option, "--query static_join needs --static"));
    // Spark's `spark.read.csv(path, header=True, schema="key STRING, name STRING")` for a
    // .csv file: the header line skipped, columns by position.
    const auto format = std::filesystem::path{static_file}.extension() == ".csv" ? sources::file_format::csv
                                                                      : sources::file_format::json_lines;
    auto table = static_table<std::string, name_row>::from_file(
      static_file, format, [](const name_row& n) { return n.key; });
    // Spark's query has no watermark (a stream-static join keeps no state).
    auto joined = read(input, false).name("input").join_static(
      table, by_key,
      [](const kv_row& r, const name_row* n) {
        return joined_row{r, n ? std::optional<std::string>{n->name} : std::nullopt, {}};
      },
      join == "left_outer" ? join_type::left_outer : join_type::inner);
    sink_rows(joined, file, [](const joined_row& r) {
      auto j = kv_json(r.left);
      j["name"] = r.name ? ojson(*r.name) : ojson(nullptr);
      return j;
    });
  } else if (query == "window_filter") {
    auto counts = read(input, true)
                    .name("input")
                    .key_by(by_key, "key")
                    .window(windows::tumbling{.size = *size})
                    .count();
    sink_rows(counts.filter([min_count](const count_result& r) { return r.value >= min_count; }),
              file, window_rows("window"));
  } else if (query == "stream_join") {
    if (input_right.empty())
      return fail(make_error(error_code::invalid_option, "--query stream_join needs --input-right"));
    auto left = read(input, true).name("left");
    auto right = read(input_right, true).name("right");
    const auto b = *bound_d;
    auto between = left.key_by(by_key, "key")
                     .interval_join(right.key_by(by_key, "key"))
                     .between(-b, b);
    if (join == "left_outer")
      between = between.left_outer();
    auto joined = between.apply([](const kv_row& l, const kv_row* r) {
      return joined_row{l, std::nullopt, r ? std::optional<kv_row>{*r} : std::nullopt};
    });
    sink_rows(joined, file, [](const joined_row& r) {
      auto j = kv_json(r.left);
      j["right_timestamp"] = r.right ? ojson(iso(r.right->timestamp)) : ojson(nullptr);
      j["right_value"] = r.right ? ojson(r.right->value) : ojson(nullptr);
      return j;
    });
  } else if (query == "chained") {
    auto first = read(input, true)
                   .name("input")
                   .key_by(by_key, "key")
                   .window(windows::tumbling{.size = *size})
                   .count();
    first.name("first");
    // A window result's event time is its window_time (end - 1 us), as in Spark.
    auto second = first.key_by([](const count_result& r) { return r.key; }, "key")
                    .window(windows::tumbling{.size = *size2})
                    .sum([](const count_result& r) { return r.value; });
    sink_rows(second, file, window_rows("window"));
  } else if (query == "keyed_timer") {
    auto out = read(input, true)
                 .name("input")
                 .key_by(by_key, "key")
                 .process(timeout_counter{*gap_d});
    sink_rows(out, file, [](const timeout_row& r) {
      return ojson{{"key", r.key}, {"count", r.count}, {"last", iso(r.last)}};
    });
  }

  auto done = j.run();
  if (!done) {
    std::cerr << "spark_query_runner: " << done.error().to_string() << "\n";
    return done.error().code == error_code::invalid_graph ? 3 : 2;
  }
  return 0;
}
