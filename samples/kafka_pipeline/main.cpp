// kafka_pipeline: Kafka -> running total per account -> Kafka, exactly once.
//
// Reads payments (JSON) from one topic, keeps a running total per account (keyed state,
// checkpointed), and writes one enriched record per payment to another topic in Kafka
// transactions committed with the checkpoints. With --map it only converts each payment
// (the Kafka -> map -> Kafka benchmark).
//
//   sluice-kafka-mock --topic payments:4 --topic totals:4 &      # or a real broker
//   kafka_pipeline --bootstrap 127.0.0.1:PORT --checkpoint-dir /tmp/ckpt
//   kcat -C -b 127.0.0.1:PORT -t totals -X isolation.level=read_committed
#include "sluice/api/job.hpp"
#include "sluice/api/signals.hpp"
#include "sluice/samples/common/cli.hpp"
#include "sluice/samples/common/properties.hpp"
#include "sluice/samples/common/run.hpp"
#include "sluice/samples/kafka_pipeline/payments.hpp"
#include "sluice/sinks/kafka.hpp"
#include "sluice/sources/kafka.hpp"

#include <fmt/core.h>

#include <iostream>

using namespace sluice;
using sluice::samples::account_total;
using sluice::samples::payment;

/// The running total per account: one output per payment.
struct running_total {
  account_total create() const { return {}; }
  void add(account_total& acc, const payment& p) const {
    acc.id = p.id;
    acc.account = p.account;
    acc.cents = p.cents;
    acc.total_cents += p.cents;
    acc.sent_us = p.sent_us;
    acc.memo = p.memo;
  }
  account_total result(const account_total& acc) const { return acc; }
};

int main(int argc, char** argv) {
  CLI::App app{"Kafka -> running total per account -> Kafka, exactly once"};
  samples::common_flags common;
  samples::add_common_flags(app, common);
  std::string bootstrap = "127.0.0.1:9092";
  std::string input = "payments";
  std::string output = "totals";
  std::string delivery = "exactly-once";
  std::string prefix = "kafka-pipeline";
  std::string group;
  bool bounded = false;
  bool map_only = false;
  std::vector<std::string> consumer_props;
  std::vector<std::string> producer_props;
  std::string poll_interval = "2ms";
  app.add_option("--bootstrap", bootstrap, "Kafka bootstrap servers");
  app.add_option("--input", input, "topic of payments (JSON)");
  app.add_option("--output", output, "topic of running totals (JSON)");
  app.add_option("--delivery", delivery, "none, at-least-once or exactly-once")
    ->check(CLI::IsMember({"none", "at-least-once", "exactly-once"}));
  app.add_option("--transactional-id-prefix", prefix, "unique per job (exactly-once)");
  app.add_option("--group", group, "consumer group for committed offsets (default sluice-payments)");
  app.add_flag("--bounded", bounded, "stop once every partition is read to its end");
  app.add_flag("--map", map_only, "no state: convert each payment (the benchmark's map job)");
  app.add_option("--consumer-property", consumer_props,
                 "librdkafka consumer property KEY=VALUE for the source (repeatable)");
  app.add_option("--producer-property", producer_props,
                 "librdkafka producer property KEY=VALUE for the sink (repeatable)");
  app.add_option("--poll-interval", poll_interval,
                 "how long the source waits to poll again when nothing arrived (default 2ms)");
  CLI11_PARSE(app, argc, argv);
  auto poll_every = samples::duration_flag("--poll-interval", poll_interval,
                                           samples::duration_rule::positive);
  if (!poll_every) {
    std::cerr << "kafka_pipeline: " << poll_every.error().to_string() << "\n";
    return 2;
  }
  auto consumer_properties = samples::parse_properties(consumer_props, "--consumer-property");
  auto producer_properties = samples::parse_properties(producer_props, "--producer-property");
  for (const auto* parsed : {&consumer_properties, &producer_properties})
    if (!*parsed) {
      std::cerr << "kafka_pipeline: " << parsed->error().to_string() << "\n";
      return 2;
    }

  job_options opts{.name = "kafka-pipeline"};
  auto duration = samples::apply_common_flags(common, opts);
  if (!duration) {
    std::cerr << "kafka_pipeline: " << duration.error().to_string() << "\n";
    return 2;
  }
  samples::install_crash_hook(opts);
  const auto guarantee = delivery == "none"            ? sinks::kafka_delivery::none
                         : delivery == "at-least-once" ? sinks::kafka_delivery::at_least_once
                                                       : sinks::kafka_delivery::exactly_once;
  job j{opts};
  auto payments = j.from(sources::kafka<payment>{{.bootstrap_servers = bootstrap,
                                                  .topics = {input},
                                                  .group_id = group,
                                                  .bounded = bounded,
                                                  .poll_interval = *poll_every,
                                                  .properties = *consumer_properties}})
                    .name("payments");
  auto totals =
    map_only ? payments.map([](const payment& p) {
                 return account_total{p.id, p.account, p.cents, p.cents, p.sent_us, p.memo};
               }).name("convert")
             : payments.key_by([](const payment& p) { return p.account; })
                 .aggregate(running_total{})
                 .name("totals");
  totals
    .sink_to(sinks::kafka<account_total>{
      {{.bootstrap_servers = bootstrap,
        .topic = output,
        .delivery = guarantee,
        .transactional_id_prefix = prefix,
        .properties = *producer_properties},
       [](const account_total& t) { return std::optional{std::to_string(t.account)}; }}})
    .name("out");
  auto done = samples::explain_or_run(j, common, *duration, {.program = "kafka_pipeline"});
  if (!done)
    return done.exit_code();
  std::uint64_t read = 0;
  for (auto& t : done->tasks)
    if (t.chain_id == 0)
      read += t.records_in;
  std::cerr << fmt::format("kafka_pipeline: {} after {:.2f} s, {} payments read, {} checkpoints\n",
                           done->cancelled ? "stopped" : "finished",
                           std::chrono::duration<double>(done->elapsed).count(), read,
                           done->checkpoints_completed);
  return 0;
}
