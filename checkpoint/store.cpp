#include "sluice/checkpoint/store.hpp"

#include "sluice/checkpoint/durable_file.hpp"
#include "sluice/checkpoint/leveldb_log.hpp"
#include "sluice/checkpoint/store_format.hpp"
#include "sluice/checkpoint/store_repair.hpp"
#include "sluice/core/log.hpp"

#include <leveldb/db.h>
#include <leveldb/write_batch.h>

#include <algorithm>
#include <atomic>
#include <charconv>
#include <cstdio>
#include <iterator>
#include <mutex>
#include <random>
#include <set>

namespace sluice {

namespace {

using namespace store_format;
using namespace durable_file;

class leveldb_store final : public checkpoint_store {
public:
  leveldb_store(std::unique_ptr<capturing_logger> logger, std::unique_ptr<leveldb::DB> db,
                std::filesystem::path dir, checkpoint_store_options options)
    : logger_(std::move(logger)), db_(std::move(db)), dir_(std::move(dir)),
      files_dir_(dir_ / pieces_dir_name), marker_path_(dir_ / marker_name), options_(std::move(options)) {}

  /// Lists the stored pieces once, so that retention never has to walk them. Fails when the
  /// database cannot be read through.
  result<void> index_pieces() {
    std::unique_ptr<leveldb::Iterator> it{db_->NewIterator(read_options())};
    for (it->Seek(leveldb::Slice{piece_prefix.data(), piece_prefix.size()});
         it->Valid() && it->key().starts_with(leveldb::Slice{piece_prefix.data(), piece_prefix.size()});
         it->Next()) {
      const auto key = it->key().ToString();
      const auto ref = decode_ref(std::string_view{it->value().data(), it->value().size()});
      pieces_[std::stoll(key.substr(piece_prefix.size(), 20))][key.substr(piece_prefix.size() + 21)] =
        ref ? ref->file : std::string{};
      if (ref)
        ++files_[ref->file];
    }
    if (!it->status().ok())
      return failure("cannot list checkpoints", it->status());
    return {};
  }

  /// Reads the marker of the newest completed checkpoint and compares it with the
  /// database; `torn` is what LevelDB's recovery dropped from its log, if anything.
  /// Returns false when the database lost a checkpoint (or may have: a torn log in a store
  /// without a marker).
  result<bool> check_marker(const std::optional<torn_log>& torn) {
    std::string problem;
    marker_ = read_marker(marker_path_, problem);
    if (!problem.empty())
      notes_.push_back(problem);
    if (torn)
      torn_ = "LevelDB's recovery dropped " + std::to_string(torn->dropped) +
              " bytes torn off the end of its log " + torn->file;
    auto newest = newest_complete();
    if (!newest)
      return std::move(newest).error();
    if (marker_ && (!*newest || *marker_ > **newest))
      return false; // `latest` reports it, until a checkpoint that new completes again
    if (!torn)
      return true;
    if (!marker_) { // a store written before the marker: nothing tells what the tail held
      notes_.push_back(dir_.string() + ": " + torn_ +
                       "; a checkpoint completed just before may be missing");
      return false;
    }
    // Every completed checkpoint is there: the tail was an unsynced write a crash cut.
    logging::get().info("checkpoints in {}: {}; every completed checkpoint is present",
                        dir_.string(), torn_);
    return true;
  }

  /// Deletes the piece files no record refers to (left by a crash between a file's write
  /// and its records' write, or between a retention's write and its file deletions), and
  /// says so. A store that lost records (`healthy` false) keeps them, and says that: they
  /// may be all that is left of a checkpoint.
  result<void> settle_piece_files(bool healthy) {
    std::error_code ec;
    std::filesystem::create_directories(files_dir_, ec);
    if (ec)
      return make_error(error_code::io_error, "cannot create " + files_dir_.string() + ": " + ec.message());
    std::vector<std::filesystem::path> orphans;
    std::filesystem::directory_iterator it_files{files_dir_, ec}, end;
    for (; !ec && it_files != end; it_files.increment(ec))
      if (!files_.count(it_files->path().filename().string()))
        orphans.push_back(it_files->path());
    if (ec)
      return make_error(error_code::io_error, "cannot list " + files_dir_.string() + ": " + ec.message());
    if (!orphans.empty()) {
      std::sort(orphans.begin(), orphans.end());
      std::string names;
      for (std::size_t i = 0; i < orphans.size() && i < 3; ++i)
        names += (i ? ", " : "") + orphans[i].filename().string();
      if (orphans.size() > 3)
        names += ", ...";
      if (!healthy) {
        notes_.push_back(dir_.string() + ": kept " + std::to_string(orphans.size()) +
                         " piece file(s) in pieces/ that no record of the database refers to (" +
                         names + "): the database lost records, and they may be all that is "
                         "left of a checkpoint");
      } else {
        std::size_t deleted = 0;
        for (auto& path : orphans) {
          std::error_code ignored; // an undeletable orphan is tried again at the next open
          deleted += std::filesystem::remove(path, ignored) ? 1 : 0;
        }
        logging::get().info("checkpoints in {}: deleted {} piece file(s) no record refers to ({}), "
                            "left by a crash before their records were written or after "
                            "retention deleted them",
                            dir_.string(), deleted, names);
      }
    }
    return sync_directory(dir_); // the entry of a new pieces/ directory survives a power loss
  }

  void add_notes(std::vector<std::string> notes) {
    notes_.insert(notes_.end(), std::make_move_iterator(notes.begin()),
                  std::make_move_iterator(notes.end()));
  }

  const std::vector<std::string>& opening_notes() const override { return notes_; }

  /// What LevelDB logged while the store was opened (the logger stops keeping lines).
  std::vector<std::string> take_log() { return logger_->take(); }

  result<checkpoint_piece> put(std::int64_t id, std::string_view name,
                               std::string_view bytes) override {
    auto out = put_all(id, {{std::string{name}, std::string{bytes}}}, /*sync=*/false);
    if (!out)
      return std::move(out).error();
    return std::move(out->front());
  }

  result<std::vector<checkpoint_piece>>
  put_all(std::int64_t id, const std::vector<std::pair<std::string, std::string>>& pieces) override {
    // Synced here, on the writer thread: the metadata's synced write (`complete`, on the
    // coordinator) then flushes only itself, not the pieces before it.
    return put_all(id, pieces, /*sync=*/true);
  }

  result<void> complete(const checkpoint_meta& meta) override {
    leveldb::WriteBatch batch;
    auto m = meta;
    if (m.graph.empty())
      m.graph = options_.graph;
    std::vector<staged_pieces> copied;
    if (m.savepoint) {
      auto ok = copy_shared_pieces(m, batch, copied);
      if (!ok) {
        for (auto& c : copied)
          settle(m.id, c, false);
        return ok;
      }
    }
    batch.Put(meta_key(m.id), encode_meta(m));
    leveldb::WriteOptions sync;
    sync.sync = true;
    const auto s = db_->Write(sync, &batch);
    for (auto& c : copied)
      settle(m.id, c, s.ok());
    if (!s.ok())
      return failure("cannot complete checkpoint " + std::to_string(m.id), s);
    if (!marker_ || m.id > *marker_) {
      // Advisory: without it a later loss of this checkpoint goes unnoticed, but the
      // checkpoint is complete and must count.
      if (auto ok = write_marker(marker_path_, m.id, /*sync=*/false); !ok)
        logging::get().warn("checkpoints in {}: {}", dir_.string(), ok.error().message);
      else
        marker_ = m.id;
    }
    {
      // The last retention's unsynced deletions are durable now (LevelDB's log is in order).
      std::lock_guard guard{mtx_};
      delete_unreferenced();
    }
    return apply_retention(m.id);
  }

  result<std::optional<checkpoint_meta>> latest(std::vector<std::string>& skipped) override {
    auto ids = complete_ids();
    if (!ids)
      return std::move(ids).error();
    if (marker_ && (ids->empty() || ids->back() < *marker_))
      skipped.push_back("checkpoint " + std::to_string(*marker_) + " completed (" +
                        marker_path_.string() + " names it) but the database in " +
                        (dir_ / db_name).string() + " lost its metadata" +
                        (torn_.empty() ? std::string{} : ": " + torn_) +
                        (repaired_.empty() ? std::string{} : ", in the damage repaired at opening"));
    for (auto it = ids->rbegin(); it != ids->rend(); ++it) {
      auto m = find(*it);
      if (m)
        return std::optional<checkpoint_meta>{std::move(*m)};
      skipped.push_back(m.error().message);
    }
    return std::optional<checkpoint_meta>{};
  }

  result<checkpoint_meta> find(std::int64_t id) override {
    std::string stored;
    auto s = db_->Get(read_options(), meta_key(id), &stored);
    if (s.IsNotFound())
      return make_error(error_code::io_error, "checkpoint " + std::to_string(id) +
                                                " is not complete (no metadata) in " +
                                                dir_.string());
    if (!s.ok())
      return failure("cannot read checkpoint " + std::to_string(id), s);
    auto m = decode_meta(stored, id);
    if (!m)
      return std::move(m).error();
    for (auto& p : m->pieces)
      if (p.node == options_.node) // others are in other nodes' stores
        if (auto got = get(*m, p.name); !got)
          return std::move(got).error();
    return m;
  }

  result<std::string> get(const checkpoint_meta& meta, std::string_view name) override {
    const auto what = "checkpoint " + std::to_string(meta.id) + ", piece '" + std::string{name} + "'";
    auto p = std::find_if(meta.pieces.begin(), meta.pieces.end(),
                          [&](const checkpoint_piece& x) { return x.name == name; });
    if (p == meta.pieces.end())
      return make_error(error_code::io_error, what + ": not in the checkpoint's metadata");
    const auto in = p->stored_in >= 0 ? p->stored_in : meta.id;
    std::string record;
    auto s = db_->Get(read_options(), piece_key(in, name), &record);
    // Every node's store copies its pieces of a savepoint under the savepoint's id
    // (`complete`), but the metadata a multi-node run restores from is node 0's, where the
    // other nodes' pieces still name the checkpoint that wrote them: this node's retention
    // may have deleted that one since. The copy is the same stored bytes, checked below
    // against the metadata's size and hash as any piece.
    if (s.IsNotFound() && meta.savepoint && in != meta.id)
      s = db_->Get(read_options(), piece_key(meta.id, name), &record);
    if (s.IsNotFound())
      return make_error(error_code::io_error,
                        what + ": missing (" +
                          (in == meta.id ? std::string{"partial checkpoint"}
                                         : "written by checkpoint " + std::to_string(in) +
                                             ", since deleted") +
                          ")");
    if (!s.ok())
      return failure("cannot read " + what, s);
    auto resolved = resolve(std::move(record));
    if (!resolved)
      return make_error(error_code::io_error, what + ": " + resolved.error().message);
    const auto& bytes = *resolved;
    if (bytes.size() != p->size || hash_of(bytes) != p->hash)
      return make_error(error_code::io_error, what + ": size or hash mismatch (corrupt)");
    auto plain = from_stored(bytes);
    if (!plain)
      return make_error(error_code::io_error, what + ": " + plain.error().message);
    return plain;
  }

  result<std::vector<std::int64_t>> complete_ids() override {
    std::vector<std::int64_t> ids;
    std::unique_ptr<leveldb::Iterator> it{db_->NewIterator(read_options())};
    for (it->Seek(leveldb::Slice{meta_prefix.data(), meta_prefix.size()});
         it->Valid() && it->key().starts_with(leveldb::Slice{meta_prefix.data(), meta_prefix.size()});
         it->Next())
      ids.push_back(std::stoll(it->key().ToString().substr(meta_prefix.size())));
    if (!it->status().ok())
      return failure("cannot list checkpoints", it->status());
    return ids;
  }

  result<std::int64_t> highest_id() override {
    std::int64_t high = -1;
    std::unique_ptr<leveldb::Iterator> it{db_->NewIterator(read_options())};
    for (auto prefix : {meta_prefix, piece_prefix}) {
      // Keys sort by id within a prefix: the last key before the next prefix is the highest.
      std::string end{prefix};
      end.back() = static_cast<char>(end.back() + 1);
      it->Seek(end);
      if (it->Valid())
        it->Prev();
      else
        it->SeekToLast();
      if (it->Valid() && it->key().starts_with(leveldb::Slice{prefix.data(), prefix.size()}))
        high = std::max<std::int64_t>(high, std::stoll(it->key().ToString().substr(prefix.size(), 20)));
    }
    if (!it->status().ok())
      return failure("cannot list checkpoints", it->status());
    return high;
  }

  result<std::vector<std::int64_t>> discard_after(std::int64_t id) override {
    auto ids = complete_ids();
    if (!ids)
      return std::move(ids).error();
    std::vector<std::int64_t> discarded, savepoints;
    for (auto c : *ids) {
      if (c <= id)
        continue;
      std::string stored;
      if (db_->Get(read_options(), meta_key(c), &stored).ok())
        if (auto m = decode_meta(stored, c); m && m->savepoint) {
          savepoints.push_back(c);
          continue;
        }
      discarded.push_back(c);
    }
    // Lowered first, and durably: a marker left above the database would report the
    // discarded checkpoints as lost.
    std::int64_t kept = id;
    for (auto c : savepoints)
      kept = std::max(kept, c);
    if (marker_ && *marker_ > kept) {
      if (auto ok = write_marker(marker_path_, kept, /*sync=*/true); !ok)
        return std::move(ok).error();
      marker_ = kept;
    }
    auto dropped = drop_where(
      [&](std::int64_t c) {
        return c > id && std::find(savepoints.begin(), savepoints.end(), c) == savepoints.end();
      },
      true, "cannot delete the checkpoints after " + std::to_string(id));
    if (!dropped)
      return std::move(dropped).error();
    return discarded;
  }

private:
  static leveldb::ReadOptions read_options() {
    leveldb::ReadOptions r;
    r.verify_checksums = true;
    return r;
  }

  error failure(const std::string& what, const leveldb::Status& s) const {
    return make_error(error_code::io_error,
                      what + " in " + dir_.string() + ": " + s.ToString());
  }

  result<std::vector<checkpoint_piece>>
  put_all(std::int64_t id, const std::vector<std::pair<std::string, std::string>>& pieces, bool sync) {
    std::vector<std::pair<std::string, std::string>> stored;
    std::vector<checkpoint_piece> out;
    stored.reserve(pieces.size());
    out.reserve(pieces.size());
    for (auto& [name, bytes] : pieces) {
      auto form = stored_form(bytes, options_.compress);
      out.push_back(checkpoint_piece{name, form.size(), hash_of(form), id, options_.node});
      stored.emplace_back(name, std::move(form));
    }
    leveldb::WriteBatch batch;
    auto staged = stage(id, stored, batch);
    if (!staged)
      return std::move(staged).error();
    leveldb::WriteOptions options;
    options.sync = sync;
    const auto s = db_->Write(options, &batch);
    settle(id, *staged, s.ok());
    if (!s.ok())
      return failure("cannot write the pieces of checkpoint " + std::to_string(id), s);
    return out;
  }

  /// Where `stage` put pieces: the file it wrote ("" if none) and each piece's place.
  struct staged_pieces {
    std::string file;
    std::vector<std::pair<std::string, std::string>> places; ///< name → file ("" inline)
  };

  /// A savepoint is self-contained (as Flink's): the pieces it shares with earlier
  /// checkpoints are copied under its own id, so it never depends on a checkpoint that
  /// retention may delete, and later checkpoints never depend on it. They are copied in
  /// batches of `savepoint_copy_batch` bytes, each staged (its large pieces written to a
  /// file) before the next is read; `staged` lists them, also on failure.
  result<void> copy_shared_pieces(checkpoint_meta& m, leveldb::WriteBatch& batch,
                                  std::vector<staged_pieces>& staged) {
    std::vector<std::pair<std::string, std::string>> copies;
    std::size_t bytes = 0;
    auto flush = [&]() -> result<void> {
      if (copies.empty())
        return {};
      auto done = stage(m.id, copies, batch);
      if (!done)
        return std::move(done).error();
      staged.push_back(std::move(*done));
      copies.clear();
      bytes = 0;
      return {};
    };
    for (auto& p : m.pieces) {
      if (p.stored_in < 0 || p.stored_in == m.id || p.node != options_.node)
        continue;
      const auto what = "savepoint " + std::to_string(m.id) + ": piece '" + p.name +
                        "' of checkpoint " + std::to_string(p.stored_in);
      auto stored = read_stored(p.stored_in, p.name, "cannot copy " + what);
      if (!stored)
        return std::move(stored).error();
      if (stored->size() != p.size || hash_of(*stored) != p.hash)
        return make_error(error_code::io_error, what + ": size or hash mismatch (corrupt)");
      bytes += stored->size();
      copies.emplace_back(p.name, std::move(*stored));
      p.stored_in = m.id;
      if (bytes >= options_.savepoint_copy_batch)
        if (auto ok = flush(); !ok)
          return ok;
    }
    return flush();
  }

  /// Adds pieces of checkpoint `id` (name, stored form) to `batch`: the small ones as they
  /// are, the large ones as references to one new file, written and synced here, before the
  /// batch is. `settle` must follow the batch's write.
  result<staged_pieces> stage(std::int64_t id, const std::vector<std::pair<std::string, std::string>>& stored,
                              leveldb::WriteBatch& batch) {
    staged_pieces out;
    // Unique across runs too (the nonce): a run may write an id an earlier run crashed in.
    const auto file = id_text(id) + "-" + nonce_ + "-" + std::to_string(next_file_++) + ".pieces";
    std::vector<std::string_view> file_parts;
    std::uint64_t file_size = 0;
    for (auto& [name, form] : stored) {
      if (form.size() < options_.file_threshold) {
        batch.Put(piece_key(id, name), form);
        out.places.emplace_back(name, std::string{});
        continue;
      }
      batch.Put(piece_key(id, name), encode_ref({file, file_size, form.size()}));
      file_parts.emplace_back(form);
      file_size += form.size();
      out.places.emplace_back(name, file);
    }
    if (!file_parts.empty()) {
      if (auto written = write_durable(files_dir_ / file, file_parts); !written)
        return std::move(written).error();
      out.file = file;
    }
    return out;
  }

  /// After the write of a staged batch: lists its pieces (a retention pass that ran
  /// meanwhile lists nothing of them, so the next pass drops them if it must), or, when the
  /// write failed, deletes the file nothing refers to.
  void settle(std::int64_t id, const staged_pieces& staged, bool written) {
    std::error_code ec;
    if (!written) {
      if (!staged.file.empty())
        std::filesystem::remove(files_dir_ / staged.file, ec);
      return;
    }
    std::lock_guard guard{mtx_};
    auto& names = pieces_[id];
    for (auto& [name, file] : staged.places) {
      auto [at, added] = names.try_emplace(name, file);
      if (!added) {
        if (at->second == file) // the same name twice in one batch: one record
          continue;
        release(at->second); // rewritten (a repaired piece, in tests)
        at->second = file;
      }
      if (!file.empty())
        ++files_[file];
    }
  }

  /// Drops one reference to `file` (none for an inline piece). When it was the last, the
  /// file is deleted after the next synced write: the deletion of its records may not be
  /// durable yet, and a file must never go while a durable record refers to it. Called with
  /// `mtx_` held.
  void release(const std::string& file) {
    if (file.empty())
      return;
    auto it = files_.find(file);
    if (it == files_.end() || --it->second > 0)
      return;
    files_.erase(it);
    unreferenced_.push_back(file);
  }

  /// Deletes the files released before the synced write that just returned. Called with
  /// `mtx_` held. A file that cannot be deleted now is deleted at the next open (nothing
  /// refers to it).
  void delete_unreferenced() {
    std::error_code ec;
    for (auto& file : unreferenced_)
      std::filesystem::remove(files_dir_ / file, ec);
    unreferenced_.clear();
  }

  /// A stored record's piece bytes: the record itself, or the bytes of the file it refers to.
  result<std::string> resolve(std::string record) const {
    auto ref = decode_ref(record);
    if (!ref)
      return record;
    return read_range(files_dir_ / ref->file, ref->offset, ref->length);
  }

  result<std::string> read_stored(std::int64_t id, const std::string& name, const std::string& what) {
    std::string record;
    if (auto s = db_->Get(read_options(), piece_key(id, name), &record); !s.ok())
      return failure(what, s);
    auto bytes = resolve(std::move(record));
    if (!bytes)
      return make_error(error_code::io_error, what + ": " + bytes.error().message);
    return bytes;
  }

  /// Keeps the newest `retained` complete checkpoints (savepoints always) and drops the
  /// leftovers of checkpoints that never completed before `newest`.
  result<void> apply_retention(std::int64_t newest) {
    auto ids = complete_ids();
    if (!ids)
      return std::move(ids).error();
    std::vector<std::int64_t> keep;
    for (auto it = ids->rbegin(); it != ids->rend(); ++it) {
      if (keep.size() < options_.retained) {
        keep.push_back(*it);
        continue;
      }
      std::string stored;
      if (db_->Get(read_options(), meta_key(*it), &stored).ok())
        if (auto m = decode_meta(stored, *it); m && m->savepoint) {
          keep.push_back(*it);
          continue;
        }
    }
    return drop_where(
      [&](std::int64_t id) {
        return id < newest && std::find(keep.begin(), keep.end(), id) == keep.end();
      },
      false, "cannot delete old checkpoints");
  }

  /// Deletes the metadata and pieces of every checkpoint id for which `drop(id)` holds, in
  /// one write batch (synced when `sync`); pieces a remaining checkpoint refers to stay.
  template <class Pred>
  result<void> drop_where(Pred drop, bool sync, const std::string& what) {
    std::set<std::pair<std::int64_t, std::string>> referenced;
    auto ids = complete_ids();
    if (!ids)
      return std::move(ids).error();
    for (auto id : *ids) {
      if (drop(id))
        continue;
      std::string stored;
      if (!db_->Get(read_options(), meta_key(id), &stored).ok())
        continue;
      if (auto m = decode_meta(stored, id))
        for (auto& p : m->pieces)
          if (p.stored_in >= 0 && p.stored_in != id)
            referenced.emplace(p.stored_in, p.name);
    }
    leveldb::WriteBatch batch;
    for (auto id : *ids)
      if (drop(id))
        batch.Delete(meta_key(id));
    std::lock_guard guard{mtx_};
    std::vector<std::string> released; // files of the deleted records, released once written
    for (auto it = pieces_.begin(); it != pieces_.end();) {
      auto& [id, names] = *it;
      if (!drop(id)) {
        ++it;
        continue;
      }
      for (auto n = names.begin(); n != names.end();) {
        if (referenced.count({id, n->first})) {
          ++n;
          continue;
        }
        batch.Delete(piece_key(id, n->first));
        released.push_back(n->second);
        n = names.erase(n);
      }
      it = names.empty() ? pieces_.erase(it) : std::next(it);
    }
    leveldb::WriteOptions options;
    options.sync = sync;
    if (auto s = db_->Write(options, &batch); !s.ok())
      return failure(what, s);
    for (auto& file : released)
      release(file);
    if (sync)
      delete_unreferenced();
    return {};
  }

public:
  /// Set when the database was repaired: why, for the reports of what it lost.
  std::string repaired_;

private:
  result<std::optional<std::int64_t>> newest_complete() {
    auto ids = complete_ids();
    if (!ids)
      return std::move(ids).error();
    if (ids->empty())
      return std::optional<std::int64_t>{};
    return std::optional<std::int64_t>{ids->back()};
  }

  result<void> record_job_end() override {
    auto ids = complete_ids();
    if (!ids)
      return std::move(ids).error();
    leveldb::WriteOptions sync;
    sync.sync = true;
    const auto text = std::to_string(ids->empty() ? std::int64_t{-1} : ids->back());
    if (auto s = db_->Put(sync, leveldb::Slice{job_end_key.data(), job_end_key.size()}, text); !s.ok())
      return failure("cannot record that the job ended", s);
    return {};
  }

  result<std::optional<std::int64_t>> job_end() override {
    std::string text;
    const auto s = db_->Get(read_options(), leveldb::Slice{job_end_key.data(), job_end_key.size()}, &text);
    if (s.IsNotFound())
      return std::optional<std::int64_t>{};
    if (!s.ok())
      return failure("cannot read the record that the job ended", s);
    std::int64_t id = 0;
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), id);
    if (ec != std::errc{} || end != text.data() + text.size() || id < -1)
      return make_error(error_code::io_error,
                        "the record that the job ended in " + (dir_ / db_name).string() +
                          " reads '" + text + "', not a checkpoint id");
    return std::optional<std::int64_t>{id};
  }

  result<void> clear_job_end() override {
    // Called as every node's process exits: a synced write only when there is a record.
    std::string text;
    const auto found = db_->Get(read_options(), leveldb::Slice{job_end_key.data(), job_end_key.size()}, &text);
    if (found.IsNotFound())
      return {};
    leveldb::WriteOptions sync;
    sync.sync = true;
    if (auto s = db_->Delete(sync, leveldb::Slice{job_end_key.data(), job_end_key.size()}); !s.ok())
      return failure("cannot clear the record that the job ended", s);
    return {};
  }

  std::unique_ptr<capturing_logger> logger_; ///< outlives the database, which logs to it
  std::unique_ptr<leveldb::DB> db_;
  std::filesystem::path dir_;
  std::filesystem::path files_dir_; ///< the large pieces' files
  std::filesystem::path marker_path_;
  checkpoint_store_options options_;
  /// The id in the marker file: the newest checkpoint completed in this directory.
  std::optional<std::int64_t> marker_;
  /// What LevelDB's recovery dropped from the end of its log at this opening, if anything.
  std::string torn_;
  std::vector<std::string> notes_; ///< `opening_notes`
  /// Names this store's files apart from those of earlier runs, with `next_file_`.
  const std::string nonce_ = hex(std::random_device{}() * 0x100000000ULL + std::random_device{}());
  std::atomic<std::uint64_t> next_file_{0};
  std::mutex mtx_; ///< guards pieces_, files_ and unreferenced_ (writer threads put pieces)
  /// The stored pieces by checkpoint id: name → the file holding it ("" for inline).
  std::map<std::int64_t, std::map<std::string, std::string>> pieces_;
  /// Each piece file's number of records referring to it.
  std::map<std::string, std::size_t> files_;
  /// Files no record refers to, deleted after the next synced write (`release`).
  std::vector<std::string> unreferenced_;
};

} // namespace

namespace {

leveldb::Options db_options(capturing_logger* logger, bool create) {
  leveldb::Options o;
  o.create_if_missing = create;
  // A corruption LevelDB notices while opening (a bad log record, a missing table) fails the
  // opening instead of being skipped: the caller decides, by `on_unreadable`.
  o.paranoid_checks = true;
  o.info_log = logger;
  // State pieces are written once, read only at a restore, and deleted a few checkpoints
  // later: compressing them (and decompressing them in every compaction) cost about a tenth
  // of the CPU of a job checkpointing 1M changing keys every second, for little disk saved.
  o.compression = leveldb::kNoCompression;
  // Fewer, larger level-0 files: less compaction work for data that dies young.
  o.write_buffer_size = 32 << 20;
  o.max_file_size = 16 << 20;
  return o;
}

bool locked(const leveldb::Status& s) { return s.ToString().find("lock") != std::string::npos; }

/// Opens a checkpoint directory: the steps of `checkpoint_store::open`.
class store_opener {
public:
  store_opener(std::filesystem::path dir, checkpoint_store_options options)
    : dir_(std::move(dir)), db_dir_(dir_ / db_name), options_(std::move(options)) {}

  result<std::unique_ptr<checkpoint_store>> open() {
    std::error_code ec;
    std::filesystem::create_directories(dir_, ec);
    if (ec)
      return make_error(error_code::io_error,
                        "cannot create checkpoint directory " + dir_.string() + ": " + ec.message());
    const auto facts = look_at(dir_);
    if (!facts.current) {
      if (!facts.holds_checkpoints())
        return open_db(/*create=*/true, {}, {}); // a new store
      return unreadable(facts, std::string{db_name} +
                                 (std::filesystem::exists(db_dir_, ec)
                                    ? "/CURRENT is missing (it names the database's MANIFEST)"
                                    : " is missing"));
    }
    // Before LevelDB reads its logs (and turns them into a table): what a torn tail drops
    // is known only now.
    std::optional<torn_log> torn;
    for (std::filesystem::directory_iterator it{db_dir_, ec}, end; !ec && it != end; it.increment(ec))
      if (it->path().extension() == ".log")
        if (auto t = find_torn_tail(it->path()))
          torn = t;
    auto store = open_db(/*create=*/false, torn, {});
    if (store || !damaged_)
      return store;
    return unreadable(facts, store.error().message);
  }

private:
  /// Opens the database, lists its pieces and compares it with the marker. A failure that
  /// shows damage (not a lock, not a permission) sets `damaged_`.
  result<std::unique_ptr<checkpoint_store>> open_db(bool create, const std::optional<torn_log>& torn,
                                                    std::string repaired) {
    damaged_ = false;
    auto logger = std::make_unique<capturing_logger>();
    leveldb::DB* raw = nullptr;
    auto s = leveldb::DB::Open(db_options(logger.get(), create), db_dir_.string(), &raw);
    if (!s.ok()) {
      damaged_ = s.IsCorruption() || s.IsNotFound() || s.IsInvalidArgument();
      return make_error(error_code::io_error,
                        "cannot open checkpoint store " + db_dir_.string() +
                          (locked(s) ? " (is another job using this checkpoint directory?)" : "") +
                          ": " + s.ToString());
    }
    auto store = std::make_unique<leveldb_store>(std::move(logger), std::unique_ptr<leveldb::DB>{raw},
                                                 dir_, options_);
    store->repaired_ = std::move(repaired);
    // LevelDB opened it; what fails to read now is damage (a table truncated or corrupt).
    if (auto ok = store->index_pieces(); !ok) {
      damaged_ = true;
      return std::move(ok).error();
    }
    auto healthy = store->check_marker(torn);
    if (!healthy) {
      damaged_ = true;
      return std::move(healthy).error();
    }
    std::vector<std::string> dropped;
    for (auto& line : store->take_log())
      if (tells_of_loss(line))
        dropped.push_back(line);
    if (!dropped.empty()) { // with paranoid checks LevelDB fails rather than drop; but say it
      std::string lines;
      for (auto& l : dropped)
        lines += "\n  " + l;
      store->add_notes({dir_.string() + ": LevelDB reported while opening its database:" + lines});
    }
    if (!store->repaired_.empty())
      store->add_notes({dir_.string() + ": " + store->repaired_});
    store->add_notes(std::move(notes_));
    if (auto ok = store->settle_piece_files(*healthy && dropped.empty() && store->repaired_.empty()); !ok)
      return std::move(ok).error();
    return std::unique_ptr<checkpoint_store>{std::move(store)};
  }

  /// The directory holds checkpoint files that cannot be read as a store (`why`):
  /// store_repair.hpp does what `on_unreadable` says, then the database opens.
  result<std::unique_ptr<checkpoint_store>> unreadable(const directory_facts& facts,
                                                       const std::string& why) {
    const unreadable_directory u{dir_, facts, why};
    switch (options_.on_unreadable) {
      case unreadable_checkpoints::refuse: return refuse_unreadable(u);
      case unreadable_checkpoints::repair: {
        auto repaired = repair_database(u, db_options(nullptr, false));
        if (!repaired)
          return std::move(repaired).error();
        auto store = open_db(/*create=*/false, {}, std::move(*repaired));
        if (!store)
          return make_error(error_code::io_error,
                            u.what() + ". After LevelDB's RepairDB: " + store.error().message);
        return store;
      }
      case unreadable_checkpoints::start_fresh: {
        auto deleted = delete_checkpoint_files(u);
        if (!deleted)
          return std::move(deleted).error();
        notes_.push_back(std::move(*deleted));
        return open_db(/*create=*/true, {}, {});
      }
    }
    return make_error(error_code::invalid_option, "unknown on_unreadable value");
  }

  std::filesystem::path dir_;
  std::filesystem::path db_dir_;
  checkpoint_store_options options_;
  bool damaged_ = false;
  std::vector<std::string> notes_;
};

} // namespace

result<std::unique_ptr<checkpoint_store>>
checkpoint_store::open(const std::filesystem::path& dir, checkpoint_store_options options) {
  if (options.retained == 0)
    return make_error(error_code::invalid_option, "checkpoints: retained must be at least 1");
  return store_opener{dir, std::move(options)}.open();
}

} // namespace sluice
