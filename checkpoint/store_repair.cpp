#include "sluice/checkpoint/store_repair.hpp"

#include "sluice/checkpoint/leveldb_log.hpp"
#include "sluice/core/log.hpp"

#include <leveldb/db.h>
#include <leveldb/env.h>

#include <algorithm>
#include <system_error>
#include <utility>

namespace sluice {

std::string directory_facts::describe() const {
  std::vector<std::string> parts;
  if (!db_files.empty()) {
    std::string names;
    for (std::size_t i = 0; i < db_files.size() && i < 4; ++i)
      names += (i ? ", " : "") + db_files[i];
    if (db_files.size() > 4)
      names += ", ...";
    parts.push_back(std::to_string(db_files.size()) + " database file" +
                    (db_files.size() == 1 ? "" : "s") + " (" + names + ")");
  }
  if (piece_files > 0)
    parts.push_back(std::to_string(piece_files) + " piece file" + (piece_files == 1 ? "" : "s") +
                    " in pieces/");
  if (marker)
    parts.push_back(std::string{marker_name});
  std::string out;
  for (std::size_t i = 0; i < parts.size(); ++i)
    out += (i ? ", " : "") + parts[i];
  return out;
}

directory_facts look_at(const std::filesystem::path& dir) {
  directory_facts f;
  std::error_code ec;
  const auto db = dir / db_name;
  f.current = std::filesystem::exists(db / "CURRENT", ec);
  for (std::filesystem::directory_iterator it{db, ec}, end; !ec && it != end; it.increment(ec)) {
    const auto name = it->path().filename().string();
    const auto ext = it->path().extension().string();
    // Tables and logs hold the data. LOCK, LOG and an empty log hold none; nor does a
    // MANIFEST alone (it lists tables): a crash while LevelDB creates a database leaves
    // one without CURRENT (tests/recovery kills the samples at random moments).
    if (ext == ".ldb" || ext == ".sst" || (ext == ".log" && it->file_size(ec) > 0))
      f.db_files.push_back(name);
  }
  std::sort(f.db_files.begin(), f.db_files.end());
  ec.clear();
  for (std::filesystem::directory_iterator it{dir / pieces_dir_name, ec}, end; !ec && it != end;
       it.increment(ec))
    ++f.piece_files;
  f.marker = std::filesystem::exists(dir / marker_name, ec);
  return f;
}

std::string unreadable_directory::what() const {
  return "checkpoint directory " + dir.string() + " holds checkpoints (" + facts.describe() +
         ") that cannot be read: " + why;
}

error refuse_unreadable(const unreadable_directory& u) {
  return make_error(error_code::io_error,
                    u.what() + ". No checkpoint file was changed. To go on, set on_unreadable to repair "
                               "(rebuild the database from its files with LevelDB's RepairDB "
                               "and restore the newest checkpoint that verifies) or to "
                               "start_fresh (delete them and start the job from scratch)");
}

namespace {

/// Holds LevelDB's lock of the database directory, so that no job uses it while it is
/// repaired or deleted (a database that does not open is not locked by its opener).
class db_lock {
public:
  static result<db_lock> take(const std::filesystem::path& db_dir) {
    std::error_code ec;
    std::filesystem::create_directories(db_dir, ec);
    if (ec)
      return make_error(error_code::io_error, "cannot create " + db_dir.string() + ": " + ec.message());
    leveldb::FileLock* lock = nullptr;
    auto s = leveldb::Env::Default()->LockFile((db_dir / "LOCK").string(), &lock);
    if (!s.ok())
      return make_error(error_code::io_error, "cannot lock " + db_dir.string() +
                                                " (is another job using this checkpoint "
                                                "directory?): " + s.ToString());
    return db_lock{lock};
  }
  db_lock(db_lock&& other) noexcept : lock_(std::exchange(other.lock_, nullptr)) {}
  db_lock& operator=(db_lock&&) = delete;
  ~db_lock() { release(); }
  void release() {
    if (lock_)
      permit_unchecked_status(leveldb::Env::Default()->UnlockFile(std::exchange(lock_, nullptr)));
  }

private:
  explicit db_lock(leveldb::FileLock* lock) : lock_(lock) {}
  static void permit_unchecked_status(const leveldb::Status&) {} // unlocking cannot fail usefully
  leveldb::FileLock* lock_;
};

} // namespace

result<std::string> repair_database(const unreadable_directory& u, leveldb::Options options) {
  const auto db_dir = u.dir / db_name;
  const auto what = u.what();
  auto lock = db_lock::take(db_dir);
  if (!lock)
    return std::move(lock).error();
  capturing_logger logger;
  options.info_log = &logger;
  const auto s = leveldb::RepairDB(db_dir.string(), options);
  lock->release();
  std::string lost;
  for (auto& line : logger.take())
    if (tells_of_loss(line))
      lost += "; " + line;
  if (!s.ok())
    return make_error(error_code::io_error, what + ". LevelDB's RepairDB failed too: " +
                                              s.ToString() + lost);
  logging::get().warn("{}: repaired with LevelDB's RepairDB (on_unreadable = repair){}", what, lost);
  return "repaired with LevelDB's RepairDB after: " + u.why + lost;
}

result<std::string> delete_checkpoint_files(const unreadable_directory& u) {
  const auto db_dir = u.dir / db_name;
  const auto what = u.what();
  auto lock = db_lock::take(db_dir);
  if (!lock)
    return std::move(lock).error();
  std::error_code ec;
  for (std::filesystem::directory_iterator it{db_dir, ec}, end; !ec && it != end; it.increment(ec))
    if (it->path().filename() != "LOCK")
      std::filesystem::remove_all(it->path(), ec);
  if (!ec)
    std::filesystem::remove_all(u.dir / pieces_dir_name, ec);
  if (!ec)
    std::filesystem::remove(u.dir / marker_name, ec);
  lock->release();
  if (ec)
    return make_error(error_code::io_error, what + ". Starting fresh failed: " + ec.message());
  logging::get().warn("{}: deleted them and started from scratch (on_unreadable = start_fresh)", what);
  return u.dir.string() + ": started from scratch (on_unreadable = start_fresh): deleted " +
         u.facts.describe() + " that could not be read: " + u.why;
}

} // namespace sluice
