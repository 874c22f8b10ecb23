#pragma once
/// Files the checkpoint store keeps beside its database (store.cpp): pieces too large for
/// LevelDB, written durably before the database refers to them, and the marker
/// `<dir>/last-completed-checkpoint`. Private to checkpoint/.
#include "sluice/core/error.hpp"

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace sluice::durable_file {

/// Makes the entries of directory `dir` durable.
result<void> sync_directory(const std::filesystem::path& dir);

/// Writes `parts`, one after another, to a new file `path` and makes it durable (the
/// file's data, then its directory entry), so the database's reference never outlives the
/// bytes. The parts are written as they are, not gathered into one buffer first.
result<void> write_durable(const std::filesystem::path& path,
                           const std::vector<std::string_view>& parts);

/// Reads `length` bytes at `offset` of `path`; fewer bytes (a truncated file) are an error.
result<std::string> read_range(const std::filesystem::path& path, std::uint64_t offset,
                               std::uint64_t length);

/// The id in `<dir>/last-completed-checkpoint`: none when the file does not exist (a
/// store written before it was kept), an error text in `problem` when it does not read.
std::optional<std::int64_t> read_marker(const std::filesystem::path& path, std::string& problem);

/// Replaces the marker by way of a new file renamed over it, so that it is never torn.
/// Synced only when `sync` (when it goes down: a marker left higher than the database by a
/// power loss would report checkpoints as lost). Raising it needs no sync: it is written
/// after the checkpoint's metadata is durable, so a lost write leaves it lower, never higher.
result<void> write_marker(const std::filesystem::path& path, std::int64_t id, bool sync);

} // namespace sluice::durable_file
