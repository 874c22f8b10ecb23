#pragma once
/// The file operations of the file sink behind a small interface (RocksDB's `Env`), so that
/// tests can record their order or make one fail. `posix_file_io()` is the real thing.
///
/// The exactly-once file sink's durability rests on the order of these calls: a part file is
/// synced before its checkpoint is acknowledged, and every rename or removal is followed by
/// a sync of its directory (on Linux a rename is durable only once its directory is synced).
#include "sluice/core/error.hpp"

#include <filesystem>
#include <memory>
#include <string_view>

namespace sluice::sinks {

/// A file open for writing. Driven by one thread (the sink instance that owns it).
class writable_file {
public:
  virtual ~writable_file() = default;
  /// Hands `bytes` to the operating system, after what was appended before.
  [[nodiscard]] virtual result<void> append(std::string_view bytes) = 0;
  /// Makes everything appended durable (fsync).
  [[nodiscard]] virtual result<void> sync() = 0;
  /// Closes the file; closing twice is harmless.
  [[nodiscard]] virtual result<void> close() = 0;
};

/// Creating, renaming and removing files, and syncing directories. Implementations are
/// thread-safe: every instance of a sink may share one. Errors are `io_error` naming the
/// path.
class file_io {
public:
  virtual ~file_io() = default;
  /// Creates `path` for writing, replacing a file of that name. Its parent must exist.
  [[nodiscard]] virtual result<std::unique_ptr<writable_file>>
  create(const std::filesystem::path& path) = 0;
  /// Renames `from` to `to` (same directory or file system: atomic, replaces `to`). Durable
  /// only once the directory is synced.
  [[nodiscard]] virtual result<void> rename(const std::filesystem::path& from,
                                            const std::filesystem::path& to) = 0;
  /// Removes a file; one that does not exist is no error. Durable once the directory is
  /// synced.
  [[nodiscard]] virtual result<void> remove(const std::filesystem::path& path) = 0;
  /// Makes the entries of directory `dir` durable: files created, renamed or removed in it.
  [[nodiscard]] virtual result<void> sync_directory(const std::filesystem::path& dir) = 0;
};

/// The operating system's files (POSIX `open`, `write`, `fsync`, `rename`, `unlink`). One
/// shared, stateless instance.
std::shared_ptr<file_io> posix_file_io();

} // namespace sluice::sinks
