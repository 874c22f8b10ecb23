#pragma once
/// The arithmetic of the Kafka source's micro-batch plans, free of any client: end offsets
/// as Spark writes them in its offset log, and Spark's `maxOffsetsPerTrigger` rule.
#include "sluice/core/error.hpp"
#include "sluice/kafka/client.hpp"

#include <cstdint>
#include <map>
#include <string>
#include <string_view>

namespace sluice::sources::detail {

using partition_offsets = std::map<kafka::topic_partition, std::int64_t>;

/// `{"topic":{"0":123,"1":456}}`, the layout of Spark's Kafka offsets (offset log, progress
/// reports' `endOffset`).
std::string offsets_json(const partition_offsets& offsets);

/// Reads `offsets_json` back. Anything else (not JSON, a partition that is not a number, an
/// offset that is not a non-negative integer) is an `io_error` naming `what` and the text.
[[nodiscard]] result<partition_offsets> parse_offsets_json(std::string_view text,
                                                           const std::string& what);

/// Spark's `KafkaMicroBatchStream.rateLimit`: at most about `limit` offsets from `from` up to
/// `until`, split over the partitions in proportion to what each has to read. A partition's
/// share is `limit * size / total`, rounded down, but up when below 1 (no partition
/// starves), and never past `until`. Partitions missing in `from` start at their `until`
/// (nothing to read). With nothing to read at all, `until` itself.
partition_offsets rate_limit(std::int64_t limit, const partition_offsets& from,
                             const partition_offsets& until);

/// The part of a per-source limit that instance `instance` of `parallelism` takes: an even
/// split (the first `limit % parallelism` instances one more), at least 1 so that no instance
/// stalls.
std::int64_t instance_share(std::int64_t limit, int instance, int parallelism);

} // namespace sluice::sources::detail
