#pragma once
/// q13's bounded side input: a table of `key -> value` that every bid is looked up in
/// (`mod(auction, 10000) = key`). Read once when the job is built; every parallel instance
/// of the lookup shares it read-only.
#include "sluice/core/error.hpp"

#include <absl/container/flat_hash_map.h>

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>

namespace sluice::nexmark {

using side_table = absl::flat_hash_map<std::int64_t, std::string>;

/// The table the nexmark runners fill when no file is given (RisingWave's q13 setup): keys
/// 0 to 9 999, each with its own decimal text as the value.
std::shared_ptr<const side_table> default_side_input();

/// A table from a CSV file, one `key,value` row per line (RFC 4180 quoting; blank lines are
/// skipped). Errors name the file and line: an unreadable file, a row without two cells, a
/// key that is not an integer, a key given twice (a lookup join would then give two rows
/// per bid; refused rather than guessed).
result<std::shared_ptr<const side_table>> read_side_input(const std::filesystem::path& file);

} // namespace sluice::nexmark
