#pragma once
/// LevelDB's two logs as the checkpoint store reads them: the write-ahead log of its
/// database, scanned before the database opens for a torn tail (which LevelDB's recovery
/// drops without a word), and its info log, captured while the database is opened or
/// repaired (what recovery and repair dropped). Private to checkpoint/: store.cpp and
/// store_repair.cpp use it; tests/checkpoint (store_test, corrupt_test) tear and damage
/// logs and check what the store reports.
#include <leveldb/env.h>

#include <cstdarg>
#include <cstdint>
#include <filesystem>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

namespace sluice {

/// A log of the database that ends in a torn write: the bytes LevelDB's recovery drops
/// without a word, since a crash in the middle of an unsynced write leaves the same tail.
/// But damage leaves it too (a truncated file), and then it may hold the newest synced
/// checkpoint metadata.
struct torn_log {
  std::string file;
  std::uint64_t dropped = 0;
};

/// Reads the framing of LevelDB's log `path` (doc/log_format.md: 32 KiB blocks of records,
/// each a 7-byte header (checksum, 2-byte length, type) and its data; a record too large
/// for a block is cut in first, middle and last fragments) and returns the torn tail that
/// LevelDB's log reader takes for the end of the file: a header or record cut short by the
/// end of the file, or fragments without their last. Checksums are LevelDB's to check:
/// with `paranoid_checks` a bad one fails the opening.
std::optional<torn_log> find_torn_tail(const std::filesystem::path& path);

/// LevelDB's info log: kept in memory while the database is opened or repaired (what
/// recovery and repair dropped is reported from it), and passed on to the debug log.
/// LevelDB calls it from its background thread too.
class capturing_logger final : public leveldb::Logger {
public:
  void Logv(const char* format, std::va_list ap) override;
  /// The lines logged since the last call, then stops keeping them.
  std::vector<std::string> take();

private:
  std::mutex mtx_;
  bool capturing_ = true;
  std::vector<std::string> lines_;
};

/// Whether a line of LevelDB's log says that something was dropped or could not be read.
bool tells_of_loss(const std::string& line);

} // namespace sluice
