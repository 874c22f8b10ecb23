#pragma once
/// A checkpoint directory as files, looked at without the store: its layout, what it holds,
/// and what `checkpoint_store::open` does with files that cannot be read as a store, as
/// `checkpoint_store_options::on_unreadable` says: refuse (naming what is wrong), repair
/// (LevelDB's RepairDB) or start fresh (delete them). Private to checkpoint/: store.cpp's
/// opener calls it; tests/checkpoint/corrupt_test.cpp damages directories and checks what
/// opening says and does.
#include "sluice/core/error.hpp"

#include <leveldb/options.h>

#include <cstddef>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

namespace sluice {

/// The database under a checkpoint directory.
inline constexpr std::string_view db_name = "checkpoints.ldb";
/// The large pieces' files, beside the database.
inline constexpr std::string_view pieces_dir_name = "pieces";
/// The id of the newest completed checkpoint, kept outside the database.
inline constexpr std::string_view marker_name = "last-completed-checkpoint";

/// The checkpoint files in a directory, looked at before the database is opened: whether
/// the directory holds checkpoints that a new store must not be created over.
struct directory_facts {
  bool current = false;              ///< checkpoints.ldb/CURRENT exists
  std::vector<std::string> db_files; ///< of checkpoints.ldb that hold data
  std::size_t piece_files = 0;       ///< under pieces/
  bool marker = false;               ///< last-completed-checkpoint exists

  bool holds_checkpoints() const noexcept { return !db_files.empty() || piece_files > 0 || marker; }

  /// "2 database files (000005.ldb, 000007.log), 4 piece files in pieces/, last-completed-checkpoint"
  std::string describe() const;
};

directory_facts look_at(const std::filesystem::path& dir);

/// A checkpoint directory whose files cannot be read as a store, and why.
struct unreadable_directory {
  std::filesystem::path dir;
  directory_facts facts;
  std::string why;

  /// "checkpoint directory D holds checkpoints (what it holds) that cannot be read: why"
  std::string what() const;
};

/// `refuse`: the error naming the directory, what is wrong and how to go on (nothing was
/// changed).
error refuse_unreadable(const unreadable_directory& u);

/// `repair`: rebuilds the database with LevelDB's RepairDB, holding its lock, with
/// `options` (the store's own; the info log is captured here). Returns the note the opened
/// store reports (why it was repaired, and what the repair lost), or an error naming the
/// directory and RepairDB's failure.
[[nodiscard]] result<std::string> repair_database(const unreadable_directory& u,
                                                  leveldb::Options options);

/// `start_fresh`: deletes the directory's checkpoint files (the database's but its lock, the
/// piece files, the marker), holding the database's lock. Returns the note the new store
/// reports (what was deleted and why), or an error naming what failed.
[[nodiscard]] result<std::string> delete_checkpoint_files(const unreadable_directory& u);

} // namespace sluice
