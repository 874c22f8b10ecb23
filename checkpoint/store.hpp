#pragma once
/// The checkpoint store: every checkpoint of a job in one LevelDB database under the job's
/// checkpoint directory. No LevelDB type leaks out of this header.
///
/// A checkpoint is a set of *pieces* (one per key group of a stateful operator, one per
/// source instance, one per sink instance, ...) and its *metadata*. Pieces are written
/// as tasks snapshot; the checkpoint counts only once its metadata, which lists every piece
/// with its size and hash, is written in one synced write (`complete`). So a crash at any
/// moment leaves either a complete checkpoint or an incomplete one that is never restored
/// from.
///
/// Large pieces live in files beside the database (`<dir>/pieces/`, one file per write of a
/// task), and the database holds a reference to them; small ones live in the database
/// itself. LevelDB copies a value through its log, its memtable, a level-0 table and
/// compactions; a file is written once (Flink keeps state files beside its metadata the
/// same way).
///
/// A directory whose files cannot be read as a store (LevelDB cannot open the database, or
/// piece files lie there without it) is never taken for an empty one: opening it fails,
/// naming the directory and what is wrong, unless `on_unreadable` says to repair it or to
/// start fresh. The id of the newest completed checkpoint is also kept outside the
/// database (`<dir>/last-completed-checkpoint`), so a database that lost its newest
/// checkpoints (a torn log, a deleted table) says so instead of falling back in silence.
#include "sluice/core/epoch.hpp"
#include "sluice/core/error.hpp"

#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace sluice {

/// What opening a checkpoint directory does when it holds checkpoint files that cannot be
/// read as a store: a database LevelDB cannot open (its CURRENT or MANIFEST deleted, a
/// table truncated or missing, a corrupt block), or piece files without a database.
enum class unreadable_checkpoints {
  /// Fail, naming the directory and what is wrong; nothing is changed (the default).
  refuse,
  /// Rebuild the database from the files left (LevelDB's `RepairDB`; what it could not read
  /// goes to `checkpoints.ldb/lost/`), then restore the newest checkpoint that verifies.
  /// Every checkpoint is still verified piece by piece, so a repair never restores damaged
  /// state; what it lost is reported.
  repair,
  /// Delete the checkpoint files and start the job from scratch, as a Spark user deletes
  /// the checkpoint directory: every input is read again.
  start_fresh,
};


/// What makes a checkpoint complete.
struct checkpoint_meta {
  std::int64_t id = 0;
  /// Savepoints are taken by the user and never deleted by retention.
  bool savepoint = false;
  std::string job;
  int max_key_groups = 0;
  std::string created; ///< ISO-8601, for people
  std::vector<checkpoint_piece> pieces;
  /// Anything else the runtime wants back at restore (epoch, query id, ...).
  std::map<std::string, std::string> properties;
  /// The fingerprint of the job that wrote it, as JSON (graph/fingerprint.hpp): what a
  /// restore compares the job with. Empty in checkpoints written before fingerprints (the
  /// metadata's format 1; format 2 has it).
  std::string graph;
};

/// Options of the store. Every field has a working default.
struct checkpoint_store_options {
  /// Complete checkpoints kept; older ones (not savepoints) are deleted. Default 3.
  std::size_t retained = 3;
  /// Pieces of at least this many bytes (as stored, after compression) go to a file beside
  /// the database; smaller ones into the database. Default 20 KiB (Flink's
  /// `state.storage.fs.memory-threshold`): a key group of a large state is far above it, a
  /// source position far below.
  std::size_t file_threshold = 20 << 10;
  /// Compress pieces with Snappy where that makes them smaller. Default on: state shrinks
  /// to a third or less, for about 3% of the CPU of a job whose 1M keys all change every
  /// second (Flink's `execution.checkpointing.snapshot-compression`, off by default there).
  bool compress = true;
  /// A savepoint copies the pieces it shares with earlier checkpoints; it reads and writes
  /// them in batches of about this many bytes, so its memory stays bounded whatever the
  /// state's size. Default 64 MiB.
  std::size_t savepoint_copy_batch = 64 << 20;
  /// What `open` does with a directory whose checkpoint files cannot be read. Default:
  /// refuse.
  unreadable_checkpoints on_unreadable = unreadable_checkpoints::refuse;
  /// The fingerprint (JSON) of the job writing to this store: `complete` puts it into the
  /// metadata of each checkpoint that has none. Empty: none.
  std::string graph{};
  /// The node of a multi-node run this store belongs to: the pieces it stores say so, and
  /// verifying a checkpoint reads only this node's pieces (the others are in the other
  /// nodes' stores). Default 0: a one-process run's store holds every piece.
  int node = 0;
};

class checkpoint_store {
public:
  virtual ~checkpoint_store() = default;

  /// Opens the store in `dir`, creating it when the directory holds no checkpoint files.
  /// Fails with `io_error` naming the directory when it cannot be created, is used by
  /// another job, or holds checkpoint files that cannot be read (then as
  /// `options.on_unreadable` says: by default it fails and changes nothing).
  [[nodiscard]] static result<std::unique_ptr<checkpoint_store>>
  open(const std::filesystem::path& dir, checkpoint_store_options options = {});

  /// What opening found and did that a person should hear of: a repair or a fresh start and
  /// why, what LevelDB's recovery dropped, piece files kept because no record explains them.
  /// The runtime reports them with the skipped checkpoints.
  virtual const std::vector<std::string>& opening_notes() const = 0;

  /// Stores piece `name` of checkpoint `id` (not synced, unless it goes to a file). Thread-safe.
  [[nodiscard]] virtual result<checkpoint_piece> put(std::int64_t id, std::string_view name,
                                                     std::string_view bytes) = 0;
  /// Stores several pieces of checkpoint `id` in one synced write (off the coordinator:
  /// the metadata's synced write then has little to flush). Thread-safe.
  [[nodiscard]] virtual result<std::vector<checkpoint_piece>>
  put_all(std::int64_t id, const std::vector<std::pair<std::string, std::string>>& pieces) = 0;
  /// Makes checkpoint `meta.id` complete with one synced write, then applies retention. A
  /// savepoint (`meta.savepoint`) gets copies of the pieces it refers to in earlier
  /// checkpoints, in the same write: it stands alone.
  [[nodiscard]] virtual result<void> complete(const checkpoint_meta& meta) = 0;

  /// The newest complete checkpoint whose metadata and pieces all verify, or none. Each
  /// newer one that fails to verify is skipped and described in `skipped` (the caller
  /// reports it), and so is a completed checkpoint the database lost (newer than its
  /// newest: see `<dir>/last-completed-checkpoint`). Fails only when the store itself
  /// cannot be read.
  [[nodiscard]] virtual result<std::optional<checkpoint_meta>>
  latest(std::vector<std::string>& skipped) = 0;
  /// A complete checkpoint by id, verified.
  [[nodiscard]] virtual result<checkpoint_meta> find(std::int64_t id) = 0;
  /// Piece `name` of checkpoint `meta`, checked against the metadata's size and hash. A
  /// savepoint's piece that names an earlier checkpoint is also found under the
  /// savepoint's own id, where this store copied it: the metadata may be another node's.
  [[nodiscard]] virtual result<std::string> get(const checkpoint_meta& meta,
                                                std::string_view name) = 0;
  /// The ids of the complete checkpoints, oldest first (not verified).
  [[nodiscard]] virtual result<std::vector<std::int64_t>> complete_ids() = 0;
  /// The highest id that has pieces or metadata (complete or not); -1 when empty. A new
  /// run numbers its checkpoints after it, so ids never repeat.
  [[nodiscard]] virtual result<std::int64_t> highest_id() = 0;
  /// Deletes every checkpoint newer than `id` except savepoints, and the leftovers of
  /// unfinished ones: a run restored from an older checkpoint starts a new history, and
  /// the abandoned one must never be restored by a later restart (nor reported as lost).
  /// Returns the ids deleted.
  [[nodiscard]] virtual result<std::vector<std::int64_t>> discard_after(std::int64_t id) = 0;

  /// The run writing this store ended (its job finished or was stopped) after the newest
  /// complete checkpoint (-1: none). Kept, synced, until `clear_job_end`: a node of a cluster
  /// restarted between its job's end and its process's exit learns from it that the job is
  /// over, and that the other nodes, which have left, will not join again (Flink's
  /// JobResultStore keeps a finished job from running again after a JobManager failover for
  /// the same reason; docs/cluster.md).
  [[nodiscard]] virtual result<void> record_job_end() = 0;
  /// The checkpoint `record_job_end` recorded, if it was called and not cleared since.
  [[nodiscard]] virtual result<std::optional<std::int64_t>> job_end() = 0;
  /// A new run of the job started on every node, or the process that ran it exits: the
  /// record no longer holds. Writes nothing when there is none.
  [[nodiscard]] virtual result<void> clear_job_end() = 0;
};

} // namespace sluice
