// nexmark: the Nexmark benchmark queries on Sluice, over Apache Beam's event generator.
//
//   nexmark --query 5 --events 10000000 [--rate R] [--parallelism P] [--output FILE]
//     [--output-dir DIR] [--checkpoint-dir CKPT --checkpoint-interval 1s]
//     [--split ranges|interleaved] [--align DRIFT [--align-interval 1s]]
//
// The result rows are counted and summed into an order-independent checksum; with --output
// they also go to FILE as CSV (a header, then the rows in arrival order: at least once
// across a restore). --output-dir writes them exactly once through the transactional file
// sink: CSV part files DIR/q<N>-<instance>-<checkpoint>.txt, each starting with the header,
// made visible when their checkpoint completes and listed in DIR/_sluice_metadata.
// At the end it prints the events per second and the number of result rows.
#include "sluice/samples/common/cli.hpp"
#include "sluice/samples/common/run.hpp"
#include "sluice/samples/nexmark/pipeline.hpp"
#include "sluice/sinks/file.hpp"

#include <fmt/format.h>
#include <xxhash.h>

#include <fstream>
#include <iostream>
#include <mutex>

using namespace sluice;

namespace {

/// Where every sink instance puts its rows.
struct results {
  std::mutex mu;
  std::ofstream file; ///< open when --output was given
  std::uint64_t rows = 0;
  std::uint64_t checksum = 0; ///< sum of the rows' XXH64 hashes: independent of order
};

/// Counts and checksums each batch of rows on its own, then adds the batch's figures under
/// the lock once (a lock per row cost about a tenth of q0's CPU; Flink's side keeps
/// per-instance accumulators the same way).
class checksum_sink final : public sink<nexmark::row> {
public:
  explicit checksum_sink(std::shared_ptr<results> out) : out_(std::move(out)) {}
  result<void> write(std::vector<nexmark::row>& rows) override {
    std::uint64_t sum = 0;
    for (const auto& r : rows)
      sum += XXH64(r.data(), r.size(), 0);
    std::lock_guard lock{out_->mu};
    out_->rows += rows.size();
    out_->checksum += sum;
    if (out_->file.is_open())
      for (const auto& r : rows)
        out_->file << r << '\n';
    return {};
  }

private:
  std::shared_ptr<results> out_;
};

struct checksummed {
  using record_type = nexmark::row;
  std::shared_ptr<results> out;
  std::unique_ptr<sink<nexmark::row>> create(const sink_context&) const {
    return std::make_unique<checksum_sink>(out);
  }
  std::string describe() const { return "checksum"; }
};

} // namespace

int main(int argc, char** argv) {
  CLI::App app{"Nexmark queries over Apache Beam's generator (docs/nexmark.md)"};
  samples::common_flags common;
  int query = -1;
  std::int64_t events = 0;
  std::int64_t rate = 0;
  std::string output;
  std::string split = "ranges";
  std::string align;
  std::string align_interval = "1s";
  samples::add_common_flags(app, common);
  app.add_option("--query", query, "the query: 0-9, 11-15 or 17")->required();
  app.add_option("--events", events, "events to generate (2% persons, 6% auctions, 92% bids)")
    ->required();
  app.add_option("--rate", rate,
                 "events per second, as Nexmark's TPS: the generator's event-time spacing and "
                 "a wall-clock limit (default: 10000/s of event time, emitted as fast as "
                 "possible)")
    ->check(CLI::Range(std::int64_t{1}, std::int64_t{1'000'000}));
  std::string output_dir;
  std::string side_input;
  app.add_option("--side-input", side_input,
                 "q13: the side input table, a CSV file of key,value rows (default: keys "
                 "0-9999, each with its decimal text as the value)");
  app.add_option("--output", output, "write the result rows as CSV to FILE (at least once)");
  app.add_option("--output-dir", output_dir,
                 "write the result rows exactly once as CSV part files into DIR, committed "
                 "with each checkpoint (docs/nexmark.md)");
  app.add_option("--split", split,
                 "how parallel source instances share the events: ranges (consecutive "
                 "ranges, as Beam's GeneratorConfig.split; the default) or interleaved "
                 "(instance i of p takes every p-th event, so all advance together in event "
                 "time); the events are the same either way")
    ->check(CLI::IsMember({"ranges", "interleaved"}));
  app.add_option("--align", align,
                 "watermark alignment of the source instances (Flink's "
                 "withWatermarkAlignment): the max drift of event time between them, e.g. 10s; "
                 "default: not aligned");
  app.add_option("--align-interval", align_interval,
                 "with --align: how often each instance reports its watermark (default 1s)");
  CLI11_PARSE(app, argc, argv);
  if (events <= 0) {
    std::cerr << "nexmark: --events: must be positive, got " << events << "\n";
    return 2;
  }

  job_options opts;
  opts.name = fmt::format("nexmark-q{}", query);
  auto duration = samples::apply_common_flags(common, opts);
  if (!duration) {
    std::cerr << "nexmark: " << duration.error().to_string() << "\n";
    return 2;
  }
  samples::install_crash_hook(opts);
  job j{opts};
  nexmark::run_options ro;
  ro.query = query;
  ro.events = events;
  ro.split = split == "interleaved" ? nexmark::split_mode::interleaved : nexmark::split_mode::ranges;
  if (!align.empty()) {
    auto drift = samples::duration_flag("--align", align, samples::duration_rule::positive);
    auto interval = samples::duration_flag("--align-interval", align_interval,
                                           samples::duration_rule::positive);
    if (!drift || !interval) {
      std::cerr << "nexmark: " << (drift ? interval.error() : drift.error()).to_string() << "\n";
      return 2;
    }
    ro.align_drift = *drift;
    ro.align_interval = *interval;
  }
  if (rate > 0) {
    ro.events_per_second = rate;
    ro.throttle = static_cast<double>(rate);
  }
  if (!side_input.empty()) {
    auto table = nexmark::read_side_input(side_input);
    if (!table) {
      std::cerr << "nexmark: " << table.error().to_string() << "\n";
      return 2;
    }
    ro.side_input = std::move(*table);
  }
  auto rows = nexmark::add_query(j, ro);
  if (!rows) {
    std::cerr << "nexmark: " << rows.error().to_string() << "\n";
    return 2;
  }
  auto out = std::make_shared<results>();
  if (!output.empty()) {
    out->file.open(output, std::ios::trunc);
    if (!out->file) {
      std::cerr << "nexmark: --output: cannot write " << output << "\n";
      return 2;
    }
    out->file << nexmark::find_query(query)->header << "\n";
  }
  rows->sink_to(checksummed{out}).name("results");
  if (!output_dir.empty())
    rows->sink_to(sinks::file<nexmark::row>{{.path = output_dir,
                                             .prefix = fmt::format("q{}", query),
                                             .format = sinks::file_format::text,
                                             .header = std::string{nexmark::find_query(query)->header},
                                             .transactional = true}})
      .name("output-dir");

  auto done = samples::explain_or_run(j, common, *duration, {.program = "nexmark"});
  if (!done)
    return done.exit_code();
  if (out->file.is_open()) {
    out->file.flush();
    if (!out->file) {
      std::cerr << "nexmark: --output: writing " << output << " failed\n";
      return 1;
    }
  }
  const double seconds = std::chrono::duration<double>(done->elapsed).count();
  // Events this run generated: fewer than --events after a restore from a checkpoint.
  std::uint64_t generated = 0, late = 0;
  for (const auto& t : done->tasks) {
    late += t.late_records;
    for (const auto& n : t.nodes)
      if (n.name == "nexmark")
        generated += n.records_out;
  }
  std::cout << fmt::format(
    "nexmark q{}: {} {} events in {:.3f} s: {:.0f} events/s, {} result rows, checksum "
    "{:016x}, {} late records\n",
    query, done->cancelled ? "stopped after" : "finished", generated, seconds,
    static_cast<double>(generated) / seconds, out->rows, out->checksum, late);
  return 0;
}
