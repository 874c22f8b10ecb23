#include "sluice/sources/kafka_plan.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <limits>

namespace sluice::sources::detail {

std::string offsets_json(const partition_offsets& offsets) {
  nlohmann::json j = nlohmann::json::object();
  for (const auto& [tp, off] : offsets)
    j[tp.topic][std::to_string(tp.partition)] = off;
  return j.dump();
}

result<partition_offsets> parse_offsets_json(std::string_view text, const std::string& what) {
  auto bad = [&](const std::string& why) {
    return make_error(error_code::io_error, what + " is not valid (" + why + "): " +
                                              std::string{text.substr(0, 200)});
  };
  auto j = nlohmann::json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object())
    return bad("not a JSON object of topics");
  partition_offsets out;
  for (const auto& [topic, parts] : j.items()) {
    if (!parts.is_object())
      return bad("topic '" + topic + "' does not map partitions to offsets");
    for (const auto& [key, value] : parts.items()) {
      int partition = -1;
      const auto* end = key.data() + key.size();
      if (auto [p, ec] = std::from_chars(key.data(), end, partition);
          ec != std::errc{} || p != end || partition < 0)
        return bad("partition '" + key + "' of topic '" + topic + "' is not a number");
      if (!value.is_number_integer() || value.get<std::int64_t>() < 0)
        return bad("the offset of " + topic + "/" + key + " is not a non-negative integer");
      out[{topic, partition}] = value.get<std::int64_t>();
    }
  }
  return out;
}

partition_offsets rate_limit(std::int64_t limit, const partition_offsets& from,
                             const partition_offsets& until) {
  std::map<kafka::topic_partition, std::int64_t> sizes;
  double total = 0;
  for (const auto& [tp, end] : until) {
    auto it = from.find(tp);
    if (it == from.end() || end <= it->second)
      continue;
    sizes[tp] = end - it->second;
    total += static_cast<double>(end - it->second);
  }
  if (total < 1)
    return until;
  partition_offsets out = until;
  for (auto& [tp, end] : out) {
    auto size = sizes.find(tp);
    if (size == sizes.end())
      continue;
    const auto begin = from.at(tp);
    const double prorate = static_cast<double>(limit) * (static_cast<double>(size->second) / total);
    const auto share = static_cast<std::int64_t>(prorate < 1 ? std::ceil(prorate) : std::floor(prorate));
    const auto off = share > std::numeric_limits<std::int64_t>::max() - begin
                       ? std::numeric_limits<std::int64_t>::max()
                       : begin + share;
    end = std::min(end, off);
  }
  return out;
}

std::int64_t instance_share(std::int64_t limit, int instance, int parallelism) {
  const auto p = static_cast<std::int64_t>(std::max(parallelism, 1));
  const auto share = limit / p + (instance < limit % p ? 1 : 0);
  return std::max<std::int64_t>(share, 1);
}

} // namespace sluice::sources::detail
