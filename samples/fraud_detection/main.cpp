// fraud_detection: four fraud rules over a stream of card transactions, with alerts printed
// as they come and, at the end, alerts per rule, precision and recall against the
// generator's ground truth, and end-to-end alert latency percentiles.
//
//   fraud_detection                              # built-in generator, 10 s
//   fraud_detection --source walkthrough         # Flink's walkthrough data, cycling
//   fraud_detection --source file --input DIR    # JSON-lines transactions
//   fraud_detection --sink file --output DIR     # alerts to exactly-once part files
//   fraud_detection --help                       # every option, with its default
//
// See README.md next to this file.
#include "sluice/api/job.hpp"
#include "sluice/api/signals.hpp"
#include "sluice/core/codec/time_format.hpp"
#include "sluice/samples/common/cli.hpp"
#include "sluice/samples/common/run.hpp"
#include "sluice/samples/fraud_detection/alert_sink.hpp"
#include "sluice/samples/fraud_detection/pipeline.hpp"
#include "sluice/samples/fraud_detection/summary.hpp"
#include "sluice/sinks/callback.hpp"
#include "sluice/sinks/console.hpp"
#include "sluice/sinks/file.hpp"
#include "sluice/sinks/kafka.hpp"

#include <fmt/core.h>


#include <cstdlib>
#include <iostream>
#include <sstream>

using namespace sluice;
using namespace sluice::fraud;

namespace {

/// Every option of the sample below the command line: plain typed values.
struct settings {
  samples::common_flags common;
  std::string source = "generator";
  std::string input;
  std::string walkthrough = SLUICE_SAMPLE_DATA "/flink_walkthrough_transactions.csv";
  std::string sink = "console";
  std::string bootstrap = "127.0.0.1:9092";
  std::string topic = "transactions";
  std::string alerts_topic = "alerts";
  bool bounded = false;
  std::string output;
  std::string format = "json";
  bool quiet = false;
  std::string rules = "all";
  std::string time = "processing";
  std::string within = "1m";
  std::string velocity_window = "1m";
  std::string travel_forget = "24h";
  std::string spike_forget = "30d";
  std::string interval = "100ms";
  std::string out_of_orderness = "0";
  double rate = 1000;
  std::uint64_t count = 0;
  generator_options gen;
  rules_options rule;
};

void add_flags(CLI::App& app, settings& s) {
  samples::add_common_flags(app, s.common);
  auto* in = app.add_option_group("input and output");
  in->add_option("--source", s.source, "generator, walkthrough, file or kafka")
    ->check(CLI::IsMember({"generator", "walkthrough", "file", "kafka"}))
    ->capture_default_str();
  in->add_option("--input", s.input, "file or directory of JSON-lines transactions (--source file)");
  in->add_option("--walkthrough-data", s.walkthrough, "the walkthrough CSV")->capture_default_str();
  in->add_option("--out-of-orderness", s.out_of_orderness,
                 "how far the watermark trails the newest transaction, e.g. 5s")
    ->capture_default_str();
  in->add_option("--sink", s.sink,
                 "console, file, kafka (alerts, exactly-once with checkpoints), or "
                 "kafka-transactions (no rules: write the source's transactions to --topic, "
                 "keyed by account, to feed a Kafka run)")
    ->check(CLI::IsMember({"console", "file", "kafka", "kafka-transactions"}))
    ->capture_default_str();
  in->add_option("--output", s.output, "directory of alert part files (--sink file)");
  in->add_option("--bootstrap", s.bootstrap, "Kafka bootstrap servers")->capture_default_str();
  in->add_option("--topic", s.topic, "Kafka topic of transactions (JSON, keyed by account)")
    ->capture_default_str();
  in->add_option("--alerts-topic", s.alerts_topic, "Kafka topic of alerts")->capture_default_str();
  in->add_flag("--bounded", s.bounded, "--source kafka: stop at the end of the topic");
  in->add_option("--format", s.format, "console output: json or table")
    ->check(CLI::IsMember({"json", "table"}))
    ->capture_default_str();
  in->add_flag("--quiet", s.quiet, "do not print alerts, only the summary");

  auto* gen = app.add_option_group("generator");
  gen->add_option("--seed", s.gen.seed, "seed of everything generated")->capture_default_str();
  gen->add_option("--rate", s.rate, "transactions per second")->check(CLI::PositiveNumber)->capture_default_str();
  gen->add_option("--count", s.count, "stop after this many transactions (0: no limit)")->capture_default_str();
  gen->add_option("--accounts", s.gen.accounts, "accounts")->check(CLI::Range(1u, 1'000'000u))->capture_default_str();
  gen->add_option("--cards-per-account", s.gen.cards_per_account, "cards per account")
    ->check(CLI::Range(1u, 9u))->capture_default_str();
  gen->add_option("--fraud-share", s.gen.fraud_share,
                  "share of transactions in injected patterns and near misses, up to 0.05")
    ->check(CLI::Range(1e-6, 0.05))->capture_default_str();
  gen->add_option("--interval", s.interval, "event time between consecutive transactions")
    ->capture_default_str();

  auto* r = app.add_option_group("rules");
  r->add_option("--rules", s.rules,
                "comma-separated: small-then-large, velocity, impossible-travel, spend-spike, or all")
    ->capture_default_str();
  r->add_option("--time", s.time, "small-then-large clock: processing or event")
    ->check(CLI::IsMember({"processing", "event"}))->capture_default_str();
  r->add_option("--small-below", s.rule.small_then_large.small_below, "small-then-large: small is below")
    ->capture_default_str();
  r->add_option("--large-above", s.rule.small_then_large.large_above, "small-then-large: large is above")
    ->capture_default_str();
  r->add_option("--within", s.within, "small-then-large: the large one must follow within")
    ->capture_default_str();
  r->add_option("--velocity-max", s.rule.velocity.max_transactions,
                "velocity: more transactions of a card than this...")
    ->check(CLI::Range(1u, 1'000'000u))->capture_default_str();
  r->add_option("--velocity-window", s.velocity_window, "velocity: ...within this event time")
    ->capture_default_str();
  r->add_option("--max-speed", s.rule.impossible_travel.max_speed_kmh,
                "impossible-travel: speed limit between a card's transactions, km/h")
    ->check(CLI::PositiveNumber)->capture_default_str();
  r->add_option("--travel-forget", s.travel_forget,
                "impossible-travel: forget a card's position after this event time")
    ->capture_default_str();
  r->add_option("--spike-factor", s.rule.spend_spike.factor,
                "spend-spike: an amount above this times the account's mean")
    ->check(CLI::PositiveNumber)->capture_default_str();
  r->add_option("--spike-min-history", s.rule.spend_spike.min_history,
                "spend-spike: once the mean covers this many transactions")
    ->capture_default_str();
  r->add_option("--spike-forget", s.spike_forget,
                "spend-spike: forget an account's profile after this event time")
    ->capture_default_str();
}

result<std::chrono::microseconds> duration_flag(const std::string& flag, const std::string& text,
                                                bool positive = true) {
  return samples::duration_flag(flag, text,
                                positive ? samples::duration_rule::positive
                                         : samples::duration_rule::not_negative);
}

/// Turns the string flags into the typed options.
result<void> resolve(settings& s) {
  auto within = duration_flag("--within", s.within);
  auto window = duration_flag("--velocity-window", s.velocity_window);
  auto travel = duration_flag("--travel-forget", s.travel_forget);
  auto spike = duration_flag("--spike-forget", s.spike_forget);
  auto interval = duration_flag("--interval", s.interval);
  for (auto* d : {&within, &window, &travel, &spike, &interval})
    if (!*d)
      return d->error();
  using std::chrono::duration_cast;
  s.rule.small_then_large.within = duration_cast<std::chrono::milliseconds>(*within);
  s.rule.small_then_large.time = s.time == "event" ? time_mode::event : time_mode::processing;
  s.rule.velocity.window = duration_cast<std::chrono::milliseconds>(*window);
  s.rule.impossible_travel.forget_after = duration_cast<std::chrono::hours>(*travel);
  s.rule.spend_spike.forget_after = duration_cast<std::chrono::hours>(*spike);
  if (s.rule.impossible_travel.forget_after.count() <= 0 || s.rule.spend_spike.forget_after.count() <= 0)
    return make_error(error_code::invalid_option, "--travel-forget, --spike-forget: at least 1h");
  s.gen.interval = *interval;
  s.rule.enabled.clear();
  std::stringstream list{s.rules};
  for (std::string name; std::getline(list, name, ',');) {
    if (name == "all") {
      s.rule.enabled.assign(all_rules.begin(), all_rules.end());
    } else if (auto r = parse_rule(name)) {
      s.rule.enabled.push_back(*r);
    } else {
      return make_error(error_code::invalid_option, "--rules: unknown rule '" + name + "'");
    }
  }
  return {};
}

/// The one place that picks the source.
result<stream<transaction>> make_source(job& j, const settings& s,
                                        std::shared_ptr<generator_progress> progress,
                                        std::optional<transaction_generator>& generator,
                                        std::optional<std::vector<walkthrough_row>>& walkthrough) {
  auto delay = duration_flag("--out-of-orderness", s.out_of_orderness, false);
  if (!delay)
    return delay.error();
  const auto count = s.count > 0 ? std::optional{s.count} : std::nullopt;
  if (s.source == "generator") {
    auto gen = transaction_generator::make(s.gen, s.rule.for_generator());
    if (!gen)
      return gen.error();
    generator = *gen;
    return from_generator(j, *gen, {.count = count, .rate = s.rate}, progress, *delay);
  }
  if (s.source == "walkthrough") {
    auto rows = load_walkthrough(s.walkthrough);
    if (!rows)
      return rows.error();
    walkthrough = *rows;
    // Flink's tutorial source: one record per 100 ms.
    return from_walkthrough(j, std::move(*rows), 10.0, count, progress, *delay);
  }
  if (s.source == "file") {
    if (s.input.empty())
      return make_error(error_code::invalid_option, "--source file needs --input");
    return from_files(j, s.input, *delay);
  }
  return from_kafka(j, s.bootstrap, s.topic, s.bounded, *delay);
}

/// The one place that picks the alert sink.
result<void> add_sink(stream<alert>& alerts, const settings& s, std::shared_ptr<alert_stats> stats,
                      bool checkpoints) {
  if (s.sink == "kafka") {
    sinks::kafka_sink_options<alert> ko;
    ko.bootstrap_servers = s.bootstrap;
    ko.topic = s.alerts_topic;
    // Transactions commit per checkpoint: exactly-once needs them.
    ko.delivery = checkpoints ? sinks::kafka_delivery::exactly_once
                              : sinks::kafka_delivery::at_least_once;
    ko.transactional_id_prefix = "fraud-detection";
    ko.key = [](const alert& a) { return std::optional{std::to_string(a.account_id)}; };
    alerts.sink_to(measured(sinks::kafka<alert>{std::move(ko)}, stats)).name("alerts");
    return {};
  }
  if (s.sink == "file") {
    if (s.output.empty())
      return make_error(error_code::invalid_option, "--sink file needs --output");
    // Exactly-once part files: visible when their checkpoint (or epoch) completes.
    alerts.sink_to(measured(sinks::file<alert>{{.path = s.output, .prefix = "alerts",
                                                .transactional = true}},
                            stats))
      .name("alerts");
  } else if (s.quiet) {
    alerts.sink_to(measured(sinks::for_each<alert>([](const alert&) {}), stats)).name("alerts");
  } else {
    alerts.sink_to(measured(sinks::console<alert>{{.format = s.format == "table"
                                                                ? sinks::console_format::table
                                                                : sinks::console_format::json_lines}},
                            stats))
      .name("alerts");
  }
  return {};
}

int fail(const error& e, int code) {
  std::cerr << "fraud_detection: " << e.to_string() << "\n";
  return code;
}

} // namespace

int main(int argc, char** argv) {
  CLI::App app{"Fraud detection over card transactions: four rules, alerts as they come, and "
               "a summary with precision, recall and latency at the end"};
  settings s;
  s.common.duration = "10s";
  add_flags(app, s);
  CLI11_PARSE(app, argc, argv);
  if (auto ok = resolve(s); !ok)
    return fail(ok.error(), 2);

  job_options opts;
  opts.name = "fraud-detection";
  auto duration = samples::apply_common_flags(s.common, opts);
  if (!duration)
    return fail(duration.error(), 2);
  samples::install_crash_hook(opts);
  job j{opts};

  auto progress = std::make_shared<generator_progress>();
  auto stats = std::make_shared<alert_stats>();
  std::optional<transaction_generator> generator;
  std::optional<std::vector<walkthrough_row>> walkthrough;
  auto txns = make_source(j, s, progress, generator, walkthrough);
  if (!txns)
    return fail(txns.error(), 2);
  if (s.sink == "kafka-transactions") {
    // Feeds a Kafka run: the source's transactions, keyed by account, no rules.
    sinks::kafka_sink_options<transaction> ko;
    ko.bootstrap_servers = s.bootstrap;
    ko.topic = s.topic;
    ko.key = [](const transaction& t) { return std::optional{std::to_string(t.account_id)}; };
    txns->sink_to(sinks::kafka<transaction>{std::move(ko)}).name("to-kafka");
  } else {
    auto alerts = detect_fraud(*txns, s.rule);
    if (!alerts)
      return fail(alerts.error(), 2);
    if (auto ok = add_sink(*alerts, s, stats, !opts.checkpoints.dir.empty()); !ok)
      return fail(ok.error(), 2);
  }

  auto done = samples::explain_or_run(j, s.common, *duration, {.program = "fraud_detection"});
  if (!done)
    return done.exit_code();

  if (s.sink == "kafka-transactions") {
    std::cerr << fmt::format("fraud_detection: wrote {} transactions to Kafka topic '{}'\n",
                             progress->end.load() > progress->first.load()
                               ? progress->end.load() - progress->first.load()
                               : 0,
                             s.topic);
    return 0;
  }
  // The ground truth covers the transactions this run read: [first, end).
  const auto first = progress->first.load(), end = progress->end.load();
  std::optional<std::vector<expected_alert>> truth;
  if (generator && end > first)
    truth = generator->ground_truth(first, end);
  else if (generator)
    truth.emplace();
  const small_then_large_options flink{};
  if (walkthrough && s.rule.small_then_large.time == time_mode::processing &&
      s.rule.small_then_large.small_below == flink.small_below &&
      s.rule.small_then_large.large_above == flink.large_above &&
      s.rule.small_then_large.within == flink.within)
    truth = end > first ? walkthrough_ground_truth(*walkthrough, first, end)
                        : std::vector<expected_alert>{};
  const auto seen = stats->alerts();
  std::uint64_t read = 0;
  for (const auto& t : done->tasks)
    if (t.chain_id == 0)
      read += t.records_in;
  std::cerr << fmt::format("\nfraud_detection: {} after {:.2f} s: {} transactions, {} alerts{}{}\n",
                           done->cancelled ? "stopped" : "finished",
                           std::chrono::duration<double>(done->elapsed).count(), read, seen.size(),
                           done->restored_from ? fmt::format(", resumed from checkpoint {}",
                                                             *done->restored_from)
                                               : std::string{},
                           stats->redelivered() > 0
                             ? fmt::format(", {} redelivered", stats->redelivered())
                             : std::string{});
  std::cerr << format_summary(summarize(s.rule.enabled, seen, truth, stats->latencies_us()));
  return 0;
}
