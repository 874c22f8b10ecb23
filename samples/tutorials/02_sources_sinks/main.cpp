// Tutorial 02, sources and sinks: the same stream of clicks from the rate source, a
// directory, a TCP socket or Kafka, written to the console, exactly-once files, a memory
// table, a foreach_batch function or Kafka. See README.md.
//
//   tutorial_02_sources_sinks --source rate|file|socket|kafka
//                             --sink console|file|memory|foreach-batch|kafka
//   (socket: --port P, with `nc -lk 9999` on the other side; kafka: --bootstrap --topic;
//    file sink: --output-dir DIR --checkpoint-dir DIR)
#include "sluice/api/job.hpp"
#include "sluice/core/codec/json.hpp"
#include "sluice/core/codec/time_format.hpp"
#include "sluice/samples/common/cli.hpp"
#include "sluice/samples/common/run.hpp"
#include "sluice/sinks/console.hpp"
#include "sluice/sinks/file.hpp"
#include "sluice/sinks/file_manifest.hpp"
#include "sluice/sinks/foreach_batch.hpp"
#include "sluice/sinks/kafka.hpp"
#include "sluice/sinks/memory.hpp"
#include "sluice/sources/file.hpp"
#include "sluice/sources/kafka.hpp"
#include "sluice/sources/rate.hpp"
#include "sluice/sources/socket.hpp"

#include <iostream>
#include <string>
#include <vector>

using namespace sluice;
using namespace std::chrono_literals;

/// One click: `{"time": "2026-01-01T12:00:00Z", "user": "u1", "page": "home"}`.
struct click {
  event_time time{};
  std::string user;
  std::string page;
};

template <class Inspector>
bool inspect(Inspector& f, click& x) {
  return f.object("click").fields(f.field("time", x.time), f.field("user", x.user),
                                  f.field("page", x.page));
}

struct settings {
  std::string source = "file";
  std::string sink = "console";
  std::string input = SLUICE_TUTORIAL_DATA "/clicks";
  int port = 9999;
  std::string bootstrap = "127.0.0.1:9092";
  std::string topic = "clicks";
  std::string output_dir;
  bool watch = false;
};

int fail(const error& e) {
  std::cerr << "tutorial_02_sources_sinks: " << e.to_string() << "\n";
  return 2;
}

/// The source part of the job: every source gives a stream of clicks.
stream<click> read_clicks(job& j, const settings& s) {
  if (s.source == "rate") {
    // Spark's rate-micro-batch: 3 rows per batch; value v becomes user u<v % 2>.
    auto start = codec::parse_iso8601("2026-01-01T12:00:00Z");
    return j.from(sources::rate_micro_batch({.rows_per_batch = 3, .start_timestamp = *start}))
      .name("rate")
      .map([](const sources::rate_row& r) {
        return click{r.timestamp, "u" + std::to_string(r.value % 2), "page-" + std::to_string(r.value)};
      })
      .name("to-click");
  }
  if (s.source == "socket")
    return j.from(sources::socket<click>{{.host = "127.0.0.1", .port = static_cast<std::uint16_t>(s.port)}}).name("socket");
  if (s.source == "kafka")
    return j.from(sources::kafka<click>{{.bootstrap_servers = s.bootstrap, .topics = {s.topic}}})
      .name("kafka");
  sources::file_options files{.path = s.input, .watch = s.watch};
  files.max_files_per_trigger = 1; // Spark's maxFilesPerTrigger: one file per micro-batch
  return j.from(sources::file<click>{files}).name("files");
}

/// What the foreach_batch and memory sinks print.
void print_rows(const std::vector<click>& rows) {
  for (auto& c : rows)
    std::cout << "  " << codec::to_json_line(c) << "\n";
}

int main(int argc, char** argv) {
  CLI::App app{"Tutorial 02: sources and sinks"};
  samples::common_flags common;
  samples::add_common_flags(app, common);
  settings s;
  app.add_option("--source", s.source, "rate, file, socket or kafka")
    ->check(CLI::IsMember({"rate", "file", "socket", "kafka"}));
  app.add_option("--sink", s.sink, "console, file, memory, foreach-batch or kafka")
    ->check(CLI::IsMember({"console", "file", "memory", "foreach-batch", "kafka"}));
  app.add_option("--input", s.input, "file source: the directory");
  app.add_flag("--watch", s.watch,
               "file source: keep watching the directory (processing-time trigger of 1s)");
  app.add_option("--port", s.port, "socket source: the port on 127.0.0.1")->check(CLI::Range(1, 65535));
  app.add_option("--bootstrap", s.bootstrap, "kafka: bootstrap servers");
  app.add_option("--topic", s.topic, "kafka: the topic");
  app.add_option("--output-dir", s.output_dir, "file sink: the directory");
  CLI11_PARSE(app, argc, argv);

  job_options opts;
  opts.name = "tutorial-02";
  auto duration = samples::apply_common_flags(common, opts);
  if (!duration)
    return fail(duration.error());
  // Micro-batches over what is there (a socket: until the peer closes), then stop; a
  // watched directory gets a micro-batch every second until Ctrl-C or --duration.
  opts.trigger = s.watch ? triggers::processing_time(1s) : triggers::available_now();
  opts.output_mode = output_mode::append;
  if (s.source == "socket") {
    // A socket has no offsets to plan a micro-batch by (Spark's socket source keeps lines in
    // memory for that): it runs continuously, each line printed as it comes, until the
    // peer closes.
    opts.trigger = triggers::continuous();
    opts.output_mode.reset();
  }
  if (s.sink == "file" && (s.output_dir.empty() || common.checkpoint_dir.empty()))
    return fail(make_error(error_code::invalid_option,
                           "--sink file: needs --output-dir and --checkpoint-dir (its part "
                           "files are committed with the checkpoints)"));

  job j{opts};
  auto clicks = read_clicks(j, s);
  auto table = sinks::memory_table<click>{};
  if (s.sink == "console") {
    // A table per micro-batch; JSON lines when records come one by one.
    clicks.sink_to(sinks::console<click>{{.format = opts.output_mode ? sinks::console_format::table
                                                                      : sinks::console_format::json_lines}})
      .name("console");
  } else if (s.sink == "file") {
    clicks.sink_to(sinks::file<click>{{.path = s.output_dir, .transactional = true}}).name("files-out");
  } else if (s.sink == "memory") {
    clicks.sink_to(table).name("memory");
  } else if (s.sink == "foreach-batch") {
    clicks.sink_to(sinks::foreach_batch<click>([](std::int64_t batch, std::vector<click>& rows) {
      // Called once per batch, with the batch id: skipping ids already written makes a
      // write idempotent, since a replayed batch holds the same rows.
      std::cout << "batch " << batch << ": " << rows.size() << " rows\n";
      print_rows(rows);
      return result<void>{};
    })).name("foreach-batch");
  } else {
    clicks.sink_to(sinks::kafka<click>{{{.bootstrap_servers = s.bootstrap, .topic = s.topic}}})
      .name("kafka-out");
  }

  auto done = samples::explain_or_run(
    j, common, *duration, {.program = "tutorial_02_sources_sinks", .job_failed_exit = 2});
  if (!done)
    return done.exit_code();

  if (s.sink == "file") {
    // What a reader that follows the manifest sees: exactly the committed rows.
    auto files = sinks::read_committed_files(s.output_dir);
    if (!files)
      return fail(files.error());
    std::cout << files->size() << " committed part file(s) in --output-dir, read through its manifest:\n";
    auto rows = sinks::read_committed<click>(s.output_dir);
    if (!rows)
      return fail(rows.error());
    print_rows(*rows);
  } else if (s.sink == "memory") {
    std::cout << "memory table after batch " << table.last_epoch() << ": " << table.rows().size()
              << " rows\n";
    print_rows(table.rows());
  } else if (s.sink == "kafka") {
    // Read the topic back with a second, bounded job.
    job_options back_opts;
    back_opts.name = "tutorial-02-read-back";
    back_opts.trigger = triggers::available_now();
    back_opts.output_mode = output_mode::append;
    back_opts.runtime = opts.runtime;
    job back{back_opts};
    back.from(sources::kafka<click>{{.bootstrap_servers = s.bootstrap,
                                     .topics = {s.topic},
                                     .group_id = "tutorial-02-read-back"}})
      .name("kafka-in")
      .sink_to(sinks::console<click>{{.format = sinks::console_format::table}});
    std::cout << "read back from topic '" << s.topic << "':\n";
    if (auto ok = back.run(); !ok)
      return fail(ok.error());
  }
  return 0;
}
