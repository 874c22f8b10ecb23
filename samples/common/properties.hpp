#pragma once
// KEY=VALUE flags (`--consumer-property fetch.wait.max.ms=10`), as Flink's and Spark's Kafka
// connectors take client properties straight through.
#include "sluice/core/error.hpp"

#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace sluice::samples {

/// Splits each "KEY=VALUE" at its first '='; one without a key or without '=' is refused,
/// naming the flag and the text (librdkafka itself judges the key and the value).
inline result<std::map<std::string, std::string>>
parse_properties(const std::vector<std::string>& items, std::string_view flag) {
  std::map<std::string, std::string> out;
  for (const auto& item : items) {
    const auto eq = item.find('=');
    if (eq == std::string::npos || eq == 0)
      return error{error_code::invalid_option,
                   std::string{flag} + " '" + item + "' is not KEY=VALUE"};
    out[item.substr(0, eq)] = item.substr(eq + 1);
  }
  return out;
}

} // namespace sluice::samples
