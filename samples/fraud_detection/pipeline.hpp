#pragma once
/// The fraud-detection job as building blocks: sources of transactions (stamped with their
/// ingest time), the rules as named keyed operators, and their alerts as one stream. The
/// sample's `main` and the job-level tests assemble the same job from these.
///
/// ```cpp
/// job j{{.name = "fraud-detection", .parallelism = 2}};
/// auto progress = std::make_shared<generator_progress>();
/// auto txns = from_generator(j, *transaction_generator::make({}), {.rate = 1000.0}, progress);
/// auto alerts = detect_fraud(txns, rules_options{});
/// alerts->sink_to(measured(sinks::console<alert>{}, stats)).name("alerts");
/// ```
#include "sluice/api/job.hpp"
#include "sluice/samples/fraud_detection/generator.hpp"
#include "sluice/samples/fraud_detection/rules.hpp"
#include "sluice/samples/fraud_detection/types.hpp"
#include "sluice/samples/fraud_detection/walkthrough.hpp"
#include "sluice/sources/generator.hpp"

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <limits>
#include <memory>
#include <vector>

namespace sluice::fraud {

/// Which sequence numbers a generator-based source produced in this run (for the ground
/// truth): `[first, end)`. Written by the source's thread, read after the job.
struct generator_progress {
  std::atomic<std::uint64_t> first{std::numeric_limits<std::uint64_t>::max()};
  std::atomic<std::uint64_t> end{0};
};

/// The rules to run and their options.
struct rules_options {
  /// Default: all four.
  std::vector<rule_kind> enabled{all_rules.begin(), all_rules.end()};
  small_then_large_options small_then_large{};
  velocity_options velocity{};
  impossible_travel_options impossible_travel{};
  spend_spike_options spend_spike{};
  /// Parallel instances per rule, indexed by `rule_kind`; 0 (the default) takes the job's.
  std::array<int, 4> parallelism{};

  bool has(rule_kind r) const;
  /// The options the generator must shape its traffic for.
  generator_rules for_generator() const;
};

/// Node names: "transactions" (the source) and the rule names (`rule_name`).
inline constexpr const char* source_node = "transactions";

/// The generator as one source instance (so each card's transactions stay in order),
/// rate-limited when `opts.rate` is set and bounded when `opts.count` is. Event time is the
/// transactions' timestamps; the watermark trails the newest by `out_of_orderness`.
stream<transaction> from_generator(job& j, transaction_generator gen,
                                   sources::generator_options opts,
                                   std::shared_ptr<generator_progress> progress,
                                   std::chrono::microseconds out_of_orderness = {});

/// Flink's walkthrough, cycling through `rows` at `rate` records per second (Flink's
/// source: 10, one per 100 ms), optionally bounded by `count`.
stream<transaction> from_walkthrough(job& j, std::vector<walkthrough_row> rows, double rate,
                                     std::optional<std::uint64_t> count,
                                     std::shared_ptr<generator_progress> progress,
                                     std::chrono::microseconds out_of_orderness = {});

/// JSON-lines transactions from a file or directory (files in name order, one instance).
stream<transaction> from_files(job& j, const std::filesystem::path& path,
                               std::chrono::microseconds out_of_orderness);

/// JSON transactions from Kafka `topic` (see docs/kafka.md). The topic must be keyed by
/// account, so each account's (and card's) transactions stay in order in one partition;
/// partitions are spread over the job's parallelism. `bounded`: stop at the topics' end.
stream<transaction> from_kafka(job& j, const std::string& bootstrap, const std::string& topic,
                               bool bounded, std::chrono::microseconds out_of_orderness);

/// Adds the enabled rules, each keyed (by account or card) and named by `rule_name`, and
/// returns their alerts as one stream. Fails with `invalid_option` when no rule is enabled.
[[nodiscard]] result<stream<alert>> detect_fraud(stream<transaction> txns, const rules_options& rules);

} // namespace sluice::fraud
