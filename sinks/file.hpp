#pragma once
/// The file sink: records as JSON lines, one part file per parallel instance.
///
/// ```cpp
/// stream.sink_to(sinks::file<txn>{{.path = "out/", .prefix = "part"}});
/// // out/part-0.jsonl, out/part-1.jsonl, ...
/// ```
#include "sluice/core/codec/inspect.hpp"
#include "sluice/core/codec/json.hpp"
#include "sluice/sinks/file_io.hpp"
#include "sluice/sinks/file_manifest.hpp"
#include "sluice/sinks/sink.hpp"

#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

namespace sluice::sinks {

/// How the file sink writes records (Spark's `format`).
enum class file_format {
  json_lines, ///< one `codec::to_json_line` per record; files end in `.jsonl`
  /// Records that are `std::string`, one per line as they are (Spark's `text`); files end
  /// in `.txt`. Rows already formatted (CSV, say) keep their text. A record holding a line
  /// break is refused (`malformed_record`): it would read back as two records.
  text,
};

/// Options of the file sink. Every field but `path` has a working default.
struct file_sink_options {
  /// The output directory; created (with its parents) if missing.
  std::filesystem::path path{};
  /// Part files are named `<prefix>-<instance>.jsonl`, instances counted from 0.
  /// Default: `part`.
  std::string prefix = "part";
  /// How records become lines. Default: JSON lines.
  file_format format = file_format::json_lines;
  /// A first line of every part file, such as CSV column names (Spark writes its CSV
  /// header into every part file the same way). Default: empty, no first line.
  std::string header{};
  /// Exactly-once part files (Flink's FileSink): records go to a hidden in-progress file,
  /// which is synced and sealed as pending at each checkpoint (or, without checkpoints, each
  /// epoch) and made visible as `<prefix>-<instance>-<id>.jsonl` when that checkpoint
  /// completes, then listed in the manifest `<path>/_sluice_metadata/` (Spark's
  /// `_spark_metadata`). Readers that follow the manifest (`read_committed_files`) see
  /// exactly the committed output. Default: off (one growing `<prefix>-<instance>.jsonl`
  /// per instance, at-least-once).
  bool transactional = false;
  /// Transactional only. When a run falls back to a checkpoint older than output this sink
  /// already committed (the newer checkpoints are corrupt or lost), roll that output back
  /// and write it again, instead of failing the job with `restore_conflict`. Default: off.
  /// Rolling back removes files readers may have consumed; restoring the checkpoint
  /// explicitly (`checkpoint_options::restore_from`) rolls back as well, for that run only.
  bool roll_back_on_fallback = false;
  /// The file operations (tests record their order or make them fail). Default (null): the
  /// operating system's, `posix_file_io()`.
  std::shared_ptr<file_io> io{};
};

namespace detail {

/// `.jsonl` or `.txt`.
std::string file_extension(file_format format);

/// Appends `records` to `out`, one line each, as `format` says.
template <class T>
result<void> append_lines(std::string& out, const std::vector<T>& records, file_format format) {
  if constexpr (std::is_same_v<T, std::string>) {
    if (format == file_format::text) {
      for (const auto& r : records) {
        if (r.find('\n') != std::string::npos)
          return make_error(error_code::malformed_record,
                            "file sink: a text record holds a line break: \"" +
                              r.substr(0, r.find('\n')) + "...\"");
        out += r;
        out += '\n';
      }
      return {};
    }
  }
  for (const auto& r : records) {
    out += codec::to_json_line(r);
    out += '\n';
  }
  return {};
}

/// One output file, written through a buffer; errors name the file.
class part_file {
public:
  /// Creates the directory and the file, replacing an existing file of that name.
  [[nodiscard]] result<void> open(file_io& io, const std::filesystem::path& directory,
                                  const std::string& name);
  /// Appends `text` (buffered: handed to the operating system in blocks of 64 KiB).
  [[nodiscard]] result<void> write(const std::string& text);
  /// Hands buffered text to the operating system (no fsync).
  [[nodiscard]] result<void> flush();
  /// Flushes and makes everything written durable (fsync).
  [[nodiscard]] result<void> sync();
  /// Flushes and closes; closing twice is harmless.
  [[nodiscard]] result<void> close();

  const std::filesystem::path& path() const noexcept { return path_; }
  bool is_open() const noexcept { return file_ != nullptr; }

private:
  std::filesystem::path path_;
  std::unique_ptr<writable_file> file_;
  std::string buffer_;
};

/// The names of the transactional file sink and the moves between them, and its manifest
/// (file_manifest.hpp). Every move is a rename within one directory, so a crash leaves each
/// file wholly in one state, and the directory is synced before a move returns, so the state
/// survives a power loss too. A committed file is renamed into place first and listed in the
/// manifest second (Spark's order: a reader that follows the manifest never sees a file
/// before it is complete); a rollback unlists before it removes.
class part_transactions {
public:
  /// Committed files are `<prefix>-<instance>-<checkpoint><extension>`.
  part_transactions(std::shared_ptr<file_io> io, std::filesystem::path dir, std::string prefix,
                    std::string sink_name, int instance, int parallelism, int attempt = 0,
                    std::string extension = ".jsonl")
    : io_(std::move(io)), dir_(std::move(dir)), prefix_(std::move(prefix)),
      sink_name_(std::move(sink_name)), extension_(std::move(extension)), instance_(instance),
      parallelism_(parallelism), attempt_(attempt) {}

  /// Creates the output directory and its manifest directory, durably.
  [[nodiscard]] result<void> prepare();
  std::string in_progress_name() const;
  /// Seals the (closed and synced) in-progress file as pending for `id`.
  [[nodiscard]] result<void> seal(std::int64_t id);
  /// Makes this instance's pending files up to `id` visible and lists each in the manifest.
  /// Idempotent.
  [[nodiscard]] result<void> commit(std::int64_t id);

  /// What `recover` does with output committed for checkpoints newer than the one restored.
  enum class newer_output {
    fail,      ///< a `restore_conflict` error naming it; nothing is changed
    roll_back, ///< unlist and remove it (logged as a warning): the replay writes it again
    replace,   ///< the same, logged at info: a run without checkpoints replaces its output
  };
  /// After a (re)start from checkpoint `id` (-1: none), for this instance and for old
  /// instances j with j % parallelism == instance (none is orphaned when the parallelism
  /// shrank): output committed after `id` is handled as `newer` says; pending files up to
  /// `id` are committed, newer ones and in-progress files removed; committed files up to `id`
  /// that a crash left unlisted are listed.
  [[nodiscard]] result<void> recover(std::int64_t id, newer_output newer);

private:
  std::string visible_name(int instance, std::int64_t id) const;

  std::shared_ptr<file_io> io_;
  std::filesystem::path dir_;
  std::string prefix_;
  std::string sink_name_;
  std::string extension_;
  int instance_;
  int parallelism_;
  int attempt_;
};

} // namespace detail

/// One instance of the file sink. See `file` for the contract.
template <class T>
class file_sink final : public sink<T> {
public:
  explicit file_sink(file_sink_options options) : options_(std::move(options)) {
    if (!options_.io)
      options_.io = posix_file_io();
  }

  result<void> open(const sink_context& ctx) override {
    if (auto r = file_.open(*options_.io, options_.path,
                            options_.prefix + "-" + std::to_string(ctx.instance) +
                              detail::file_extension(options_.format));
        !r)
      return r;
    return options_.header.empty() ? result<void>{} : file_.write(options_.header + "\n");
  }

  result<void> write(std::vector<T>& records) override {
    buffer_.clear();
    if (auto r = detail::append_lines(buffer_, records, options_.format); !r)
      return r;
    return file_.write(buffer_);
  }

  result<void> flush() override { return file_.flush(); }
  result<void> close() override { return file_.close(); }

private:
  file_sink_options options_;
  detail::part_file file_;
  std::string buffer_; // reused across batches
};

/// One instance of the transactional file sink (`file_sink_options::transactional`): the
/// moves between in-progress, pending and committed files are `detail::part_transactions`'.
template <class T>
class transactional_file_sink final : public sink<T> {
public:
  explicit transactional_file_sink(file_sink_options options) : options_(std::move(options)) {
    if (!options_.io)
      options_.io = posix_file_io();
  }

  result<void> open(const sink_context& ctx) override {
    checkpoints_ = ctx.checkpoints;
    restore_requested_ = ctx.restore_requested;
    tx_.emplace(options_.io, options_.path, options_.prefix, ctx.name, ctx.instance,
                ctx.parallelism, ctx.attempt, detail::file_extension(options_.format));
    if (auto r = tx_->prepare(); !r)
      return r;
    // With checkpoints the runtime calls recover() with the restored checkpoint; without,
    // a run replaces the output of earlier runs (epoch ids start again at 0).
    using newer = detail::part_transactions::newer_output;
    return checkpoints_ ? result<void>{} : tx_->recover(-1, newer::replace);
  }

  result<void> write(std::vector<T>& records) override {
    buffer_.clear();
    if (auto r = detail::append_lines(buffer_, records, options_.format); !r)
      return r;
    if (!file_.is_open()) {
      if (auto r = file_.open(*options_.io, options_.path, tx_->in_progress_name()); !r)
        return r;
      if (!options_.header.empty())
        buffer_.insert(0, options_.header + "\n");
    }
    return file_.write(buffer_);
  }

  /// Without checkpoints each epoch commits at its end.
  result<void> end_epoch(std::int64_t epoch) override {
    last_epoch_ = epoch;
    if (checkpoints_)
      return {};
    if (auto r = seal(epoch); !r)
      return r;
    return tx_->commit(epoch);
  }
  result<void> pre_commit(std::int64_t id) override { return seal(id); }
  result<void> commit(std::int64_t id) override { return tx_->commit(id); }
  /// Output committed after checkpoint `id` is rolled back when the user asked for `id`
  /// (`restore_from`) or allows it (`roll_back_on_fallback`); otherwise it is an error, since
  /// the replay would commit it a second time.
  result<void> recover(std::int64_t id) override {
    using newer = detail::part_transactions::newer_output;
    return tx_->recover(id, restore_requested_ || options_.roll_back_on_fallback ? newer::roll_back
                                                                                 : newer::fail);
  }
  bool exactly_once() const noexcept override { return true; }

  /// The end of a bounded job without checkpoints: what came after the last epoch.
  result<void> close() override {
    if (checkpoints_ || !file_.is_open())
      return file_.close();
    if (auto r = seal(last_epoch_ + 1); !r)
      return r;
    return tx_->commit(last_epoch_ + 1);
  }

private:
  /// At the barrier, before the checkpoint is acknowledged: once checkpoint `id` is
  /// complete its output must survive a power loss, so the bytes are synced before the
  /// pending name is, and both before this returns.
  result<void> seal(std::int64_t id) {
    if (!file_.is_open())
      return {};
    if (auto r = file_.sync(); !r)
      return r;
    if (auto r = file_.close(); !r)
      return r;
    return tx_->seal(id);
  }

  file_sink_options options_;
  std::optional<detail::part_transactions> tx_;
  detail::part_file file_;
  std::string buffer_;
  bool checkpoints_ = false;
  bool restore_requested_ = false;
  std::int64_t last_epoch_ = -1;
};

/// Descriptor: `stream.sink_to(sinks::file<T>{{.path = "out/"}})`.
///
/// - Instance i writes `<path>/<prefix>-<i>.jsonl`, one `codec::to_json_line` per record, in
///   arrival order (`.format = file_format::text`: string records as they are, `.txt`), after
///   `header` if set. `open` creates the directory and replaces an existing part file.
/// - `flush()` hands buffered lines to the operating system; `close()` flushes and closes.
/// - Errors are `io_error` naming the file.
/// - Delivery: no atomic commit. Readers may see partial part files while the job runs or
///   after it fails; a rerun replaces them. With checkpoint replay this is at-least-once.
/// - `.transactional = true`: exactly-once part files with a manifest, read back with
///   `read_committed_files` (`transactional_file_sink`, file_manifest.hpp, sinks/README.md).
template <class T>
  requires is_codec_value_v<T>
struct file : file_sink_options {
  using record_type = T;

  explicit file(file_sink_options options) : file_sink_options(std::move(options)) {}

  const file_sink_options& options() const noexcept { return *this; }

  std::unique_ptr<sink<T>> create(const sink_context&) const {
    if (transactional)
      return std::make_unique<transactional_file_sink<T>>(options());
    return std::make_unique<file_sink<T>>(options());
  }
  std::string describe() const { return "file"; }
  /// Appends lines it cannot take back: Spark's file sink is append-only too.
  static constexpr output_modes supported_modes() { return output_modes::append_only(); }
  result<void> validate() const {
    if (path.empty())
      return make_error(error_code::invalid_option, "file sink: path is empty");
    if (prefix.empty() || prefix.find('/') != std::string::npos)
      return make_error(error_code::invalid_option,
                        "file sink: prefix must be a non-empty file name part without '/'");
    if (format == file_format::text && !std::is_same_v<T, std::string>)
      return make_error(error_code::invalid_option,
                        "file sink: format text needs std::string records (map them to text "
                        "first, or use json_lines)");
    if (header.find('\n') != std::string::npos)
      return make_error(error_code::invalid_option,
                        "file sink: header must be one line, without a line break");
    return {};
  }
};

} // namespace sluice::sinks
