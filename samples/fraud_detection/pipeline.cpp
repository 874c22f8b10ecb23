#include "sluice/samples/fraud_detection/pipeline.hpp"

#include "sluice/sources/file.hpp"
#include "sluice/sources/kafka.hpp"
#include "sluice/sources/watermarks.hpp"

#include <algorithm>

namespace sluice::fraud {

namespace {

watermark_strategy<transaction> by_timestamp(std::chrono::microseconds out_of_orderness) {
  return watermarks::bounded_out_of_orderness<transaction>(out_of_orderness,
                                                           &transaction::timestamp);
}

void note(generator_progress& p, std::uint64_t n) {
  if (p.first.load(std::memory_order_relaxed) > n)
    p.first.store(n, std::memory_order_relaxed);
  p.end.store(n + 1, std::memory_order_relaxed);
}

} // namespace

bool rules_options::has(rule_kind r) const {
  return std::find(enabled.begin(), enabled.end(), r) != enabled.end();
}

generator_rules rules_options::for_generator() const {
  return {small_then_large, velocity, impossible_travel, spend_spike};
}

stream<transaction> from_generator(job& j, transaction_generator gen,
                                   sources::generator_options opts,
                                   std::shared_ptr<generator_progress> progress,
                                   std::chrono::microseconds out_of_orderness) {
  auto make = [gen = std::move(gen), progress](std::uint64_t n) mutable {
    auto t = gen(n);
    t.ingested = std::chrono::steady_clock::now(); // the source reads it now
    if (progress)
      note(*progress, n);
    return t;
  };
  return j.from(sources::generator(opts, std::move(make)), by_timestamp(out_of_orderness))
    .name(source_node)
    .parallelism(1);
}

stream<transaction> from_walkthrough(job& j, std::vector<walkthrough_row> rows, double rate,
                                     std::optional<std::uint64_t> count,
                                     std::shared_ptr<generator_progress> progress,
                                     std::chrono::microseconds out_of_orderness) {
  auto data = std::make_shared<const std::vector<walkthrough_row>>(std::move(rows));
  auto make = [data, progress](std::uint64_t n) {
    auto t = walkthrough_transaction(*data, n);
    t.ingested = std::chrono::steady_clock::now();
    if (progress)
      note(*progress, n);
    return t;
  };
  return j.from(sources::generator({.count = count, .rate = rate}, std::move(make)),
                by_timestamp(out_of_orderness))
    .name(source_node)
    .parallelism(1);
}

stream<transaction> from_files(job& j, const std::filesystem::path& path,
                               std::chrono::microseconds out_of_orderness) {
  sources::file_options fo;
  fo.path = path;
  fo.format = sources::file_format::json_lines;
  return j.from(sources::file<transaction>{fo}, by_timestamp(out_of_orderness))
    .name(source_node)
    .parallelism(1)
    // Chained to the source: stamps each transaction as the source hands it over.
    .map([](const transaction& t) {
      auto stamped = t;
      stamped.ingested = std::chrono::steady_clock::now();
      return stamped;
    })
    .name("ingest")
    .parallelism(1)
    .with_timestamps(&transaction::timestamp);
}

stream<transaction> from_kafka(job& j, const std::string& bootstrap, const std::string& topic,
                               bool bounded, std::chrono::microseconds out_of_orderness) {
  sources::kafka_source_options ko;
  ko.bootstrap_servers = bootstrap;
  ko.topics = {topic};
  ko.bounded = bounded;
  return j.from(sources::kafka<transaction>{ko}, by_timestamp(out_of_orderness))
    .name(source_node)
    .map([](const transaction& t) {
      auto stamped = t;
      stamped.ingested = std::chrono::steady_clock::now();
      return stamped;
    })
    .name("ingest")
    .with_timestamps(&transaction::timestamp);
}

result<stream<alert>> detect_fraud(stream<transaction> txns, const rules_options& rules) {
  const auto by_account = [](const transaction& t) { return t.account_id; };
  const auto by_card = [](const transaction& t) { return t.card_id; };
  std::vector<stream<alert>> outs;
  auto finish = [&](stream<alert> s, rule_kind r) {
    s.name(std::string{rule_name(r)});
    if (const int p = rules.parallelism[static_cast<std::size_t>(r)]; p > 0)
      s.parallelism(p);
    outs.push_back(s);
  };
  if (rules.has(rule_kind::small_then_large))
    finish(txns.key_by(by_account, "account_id")
             .process(small_then_large{rules.small_then_large}),
           rule_kind::small_then_large);
  if (rules.has(rule_kind::velocity))
    finish(txns.key_by(by_card, "card_id").process(velocity{rules.velocity}),
           rule_kind::velocity);
  if (rules.has(rule_kind::impossible_travel))
    finish(txns.key_by(by_card, "card_id").process(impossible_travel{rules.impossible_travel}),
           rule_kind::impossible_travel);
  if (rules.has(rule_kind::spend_spike))
    finish(txns.key_by(by_account, "account_id").process(spend_spike{rules.spend_spike}),
           rule_kind::spend_spike);
  if (outs.empty())
    return make_error(error_code::invalid_option, "fraud detection: no rule enabled");
  auto all = outs.front();
  for (std::size_t i = 1; i < outs.size(); ++i)
    all = all.union_with(outs[i]);
  return all;
}

} // namespace sluice::fraud
