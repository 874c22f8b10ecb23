#pragma once
/// The file source: records from JSON-lines or CSV files, like Spark's file source.
///
/// ```cpp
/// job.from(sources::file<txn>{{.path = "data/in/", .format = sources::file_format::csv}});
/// ```
///
/// The path is a single file or a directory. A directory's regular files are read in
/// lexicographic order of name; names starting with `.` or `_` are skipped, so writers can
/// use such names for files in progress and rename them when complete (as Spark expects).
#include "sluice/core/codec/csv.hpp"
#include "sluice/core/codec/json.hpp"
#include "sluice/sources/malformed.hpp"
#include "sluice/sources/source.hpp"

#include <chrono>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <filesystem>
#include <fstream>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

namespace sluice::sources {

/// How each line of an input file encodes one record.
enum class file_format {
  json_lines, ///< one JSON object per line (`codec::from_json_line`)
  csv,        ///< one RFC 4180 row per line, columns as `codec::csv_header<T>()`
};

/// Options of the file source. Every field but `path` has a working default.
struct file_options {
  /// A single file, or a directory whose visible regular files are all read.
  std::filesystem::path path{};
  /// How lines are decoded. Default: JSON lines.
  file_format format = file_format::json_lines;
  /// Keep watching the directory for new files (unbounded). Default: read what is there
  /// when the job starts, then end (bounded). Each file is read once, identified by name;
  /// files must appear complete (rename them into the directory), since a file is not
  /// re-read when it grows.
  bool watch = false;
  /// At most this many new files are *started* per directory scan (a "trigger"). Default:
  /// no cap. In continuous mode a poll scans at most once, so this bounds how many files one
  /// poll takes on; in micro-batch mode it is Spark's `maxFilesPerTrigger` (per instance).
  std::optional<std::size_t> max_files_per_trigger{};
  /// CSV only: skip the first line of each file (a header). Default: true.
  bool csv_header = true;
  /// CSV only: the delimiter. Default: `,`.
  codec::csv_options csv{};
  /// What to do with a line that does not decode. Default: fail the job.
  on_malformed malformed = on_malformed::fail;
  /// With `watch`: how long to wait before scanning again when nothing is new. Default 100 ms.
  std::chrono::milliseconds poll_interval = std::chrono::milliseconds{100};
};

namespace detail {

/// True for names the file source skips: those starting with `.` or `_` (hidden files and
/// files still being written).
bool is_hidden_file_name(std::string_view name) noexcept;

/// The input files under `path`: `path` itself if it is a regular file, else the visible
/// regular files of the directory, sorted by name. Fails with `io_error` naming the path if
/// it does not exist or cannot be listed.
[[nodiscard]] result<std::vector<std::filesystem::path>>
list_input_files(const std::filesystem::path& path);

/// 64-bit FNV-1a: the same on every run and machine, unlike `std::hash`.
std::uint64_t stable_hash(std::string_view text) noexcept;

/// The non-template half of the file source: decides which files this instance reads,
/// opens them in turn and yields their lines with file name and line number.
///
/// Which instance reads a file: when bounded, file k of the sorted list goes to instance
/// k % parallelism, which spreads files evenly. When watching, the list grows while
/// instances scan it at different moments, so an index would move; a file goes instead to
/// instance `stable_hash(name) % parallelism`. Either way every file is read by exactly one
/// instance.
///
/// Positions (checkpoints) name files by their name under the *input root*, the canonical
/// form of `path` (symbolic links, `.`, `..` and trailing slashes resolved), and carry the
/// root: another spelling of the same input restores exactly, another input is refused.
/// They are rescalable: `seek_all` merges the positions of every old instance, and each
/// instance keeps what the assignment rule above gives it now.
/// A trigger's files as the offset log keeps them: `{"files": [names]}`.
std::string file_names_json(const std::vector<std::string>& names);
[[nodiscard]] result<std::vector<std::string>> file_names_from_json(std::string_view text);

class file_line_reader {
public:
  /// Checks that the path exists, resolves the input root and, when bounded, lists the
  /// files to read.
  [[nodiscard]] result<void> open(const file_options& options, int instance, int parallelism);

  /// Advances to the next line of the current file: true if there is one (see `line()`),
  /// false when no file is open or the current one just ended (it is then closed). Skips
  /// the CSV header line, a UTF-8 byte order mark and, in a file an earlier run had partly
  /// read, the lines it read.
  [[nodiscard]] result<bool> next_line();

  /// Opens the next file taken by `scan`; false if none is waiting.
  [[nodiscard]] result<bool> start_next_file();

  /// One trigger: takes up to `max_files_per_trigger` new files (the bounded list's next
  /// ones, or new names in the watched directory), or all of them when `unlimited`.
  /// The cap is the whole source's, as Spark's: every instance picks the same next files
  /// of the whole listing and takes those it owns (`take_window`). Returns how many this
  /// instance took.
  [[nodiscard]] result<std::size_t> scan(bool unlimited = false);
  /// Micro-batch: the names of the files now open or taken and not yet read (a trigger's
  /// files, for its plan in the offset log).
  std::vector<std::string> unread() const;
  /// Micro-batch replay: takes exactly the files `names` (names under the input root) that
  /// are not already open, taken or read, in that order. A file that no longer exists fails
  /// when it is opened, naming it.
  /// `only_owned`: skip names another instance owns (a plan made at another parallelism).
  void take(const std::vector<std::string>& names, bool only_owned = false);

  /// Whether the last `scan` found new files for the source as a whole: under a capped
  /// window with several instances, files this instance does not own count too (the
  /// others take them in this trigger, so the source is not done).
  bool last_scan_found_files() const noexcept { return last_scan_found_ > 0; }

  /// True while a taken file is open or waiting to be opened.
  bool busy() const noexcept { return in_.is_open() || !pending_.empty(); }
  /// Files taken by scans so far (the progress report's offset).
  std::uint64_t files_taken() const noexcept { return files_taken_; }

  /// Checkpoints, as JSON: the input root, the files read to their end, the lines read in
  /// files begun but not finished, and the files taken by a trigger but not opened yet.
  /// Unchanged by `close()`.
  std::string position() const;
  /// Continues after the `position()`s of every instance of an earlier run, whatever its
  /// parallelism: finished files are skipped, begun ones are read from the line after the
  /// recorded one, taken ones are read before new files are taken. Fails with
  /// `invalid_option` naming both roots when a position was written for another input
  /// root, and with `io_error` when one does not read. Positions written before they
  /// carried the root (typed paths) are converted: see `docs/checkpoints.md`.
  [[nodiscard]] result<void> seek(const std::vector<std::string>& positions);

  /// True when bounded and every file has been read.
  bool exhausted() const noexcept;

  /// The current line, without its line terminator (`\n` or `\r\n`).
  std::string_view line() const noexcept { return line_; }
  /// "data/in.csv:3": the current file and 1-based line number.
  std::string location() const;

  void close();

private:
  /// What positions say about the files, merged over the old instances.
  struct merged_position;
  [[nodiscard]] result<void> merge(std::string_view position, merged_position& into) const;
  [[nodiscard]] result<std::string> name_of_typed_path(const std::string& typed) const;
  /// The name a position uses for `file`, one of the listed input files.
  std::string name_of(const std::filesystem::path& file) const;
  /// The file's path as the listing spells it (under the typed path), for reading and errors.
  std::filesystem::path path_of(const std::string& name) const;
  /// Whether this instance reads the file `name`; `index`: its place in the bounded listing.
  bool owns(const std::string& name, std::optional<std::size_t> index) const noexcept;
  /// `scan` under a cap with several instances: the next `cap` files of the whole source
  /// not taken yet (by any instance), in name order; takes this instance's among them.
  [[nodiscard]] result<std::size_t> take_window(std::size_t cap);
  /// `scan` otherwise: up to `cap` new files this instance owns.
  [[nodiscard]] result<std::size_t> scan_own(std::size_t cap);

  file_options options_;
  int instance_ = 0;
  int parallelism_ = 1;
  std::filesystem::path root_;  // canonical `path`: the key of the positions
  bool single_file_ = false;    // `path` is a file, not a directory
  std::unordered_map<std::string, std::size_t> index_; // bounded: name -> place in the listing
  std::deque<std::filesystem::path> listed_;  // bounded: owned files not yet taken
  std::deque<std::filesystem::path> pending_; // taken by a scan, not yet opened
  std::unordered_set<std::string> seen_;      // watching: names already taken
  // A capped trigger's files are the whole source's next ones (take_window): the names
  // taken by any instance, as every instance derives them by the same rule.
  std::vector<std::string> listing_;              // bounded: every file's name, in order
  std::size_t listing_cursor_ = 0;                // bounded: listing_ before it is taken
  std::unordered_set<std::string> source_taken_;  // names taken by any instance
  std::size_t last_scan_found_ = 0;               // files the last scan found, any owner
  std::unordered_map<std::string, std::uint64_t> skip_; // restored: lines read of begun files
  std::ifstream in_;
  bool reading_ = false;     // a file was opened and has not ended (kept by close())
  std::string current_;      // its path as listed, for messages
  std::string current_name_; // its name under the root, for positions
  std::string line_;
  std::uint64_t line_number_ = 0;
  std::uint64_t skip_lines_ = 0; // lines of the current file an earlier run read
  std::uint64_t files_taken_ = 0;
  std::vector<std::string> done_;  // names of files read to their end, in order
};

} // namespace detail

/// One parallel instance of the file source. See `file` for the contract.
template <class T>
  requires std::default_initializable<T> && std::movable<T>
class file_source final : public source<T> {
public:
  explicit file_source(file_options options) : options_(std::move(options)) {}

  result<void> open(const source_context& ctx) override {
    name_ = ctx.name;
    return reader_.open(options_, ctx.instance, ctx.parallelism);
  }

  result<poll_result> poll(source_output<T>& out, std::size_t max) override {
    // Every line read counts against `max`, empty and malformed ones too, so one poll
    // never runs unbounded over a file of junk.
    bool scanned = false;
    std::size_t budget = max;
    while (budget > 0) {
      auto got = reader_.next_line();
      if (!got)
        return std::move(got).error();
      if (*got) {
        --budget;
        if (reader_.line().empty())
          continue;
        auto decoded = decode(reader_.line());
        if (decoded) {
          out.records.push_back(std::move(*decoded));
        } else if (auto handled = on_malformed_line(decoded.error(), out); !handled) {
          return std::move(handled).error();
        }
        continue;
      }
      auto started = reader_.start_next_file();
      if (!started)
        return std::move(started).error();
      if (*started)
        continue;
      // Micro-batch mode: the trigger's files were taken by begin_trigger; none are left.
      if (trigger_mode_)
        return reader_.exhausted() ? poll_result::end() : poll_result::idle(options_.poll_interval);
      // One scan per poll, so that `max_files_per_trigger` caps the files started per poll.
      if (scanned)
        break;
      scanned = true;
      auto found = reader_.scan();
      if (!found)
        return std::move(found).error();
      if (*found == 0)
        return reader_.exhausted() ? poll_result::end() : poll_result::idle(options_.poll_interval);
    }
    return reader_.exhausted() ? poll_result::end() : poll_result::more();
  }

  void close() override { reader_.close(); }

  result<bool> begin_trigger(bool unlimited) override {
    auto plan = plan_trigger(unlimited, 0);
    if (!plan)
      return std::move(plan).error();
    return plan->available;
  }

  /// Micro-batch: the trigger reads the files it takes now (at most
  /// `max_files_per_trigger`), each to its end; its plan names them.
  result<trigger_plan> plan_trigger(bool unlimited, std::uint64_t) override {
    trigger_mode_ = true;
    // Files of the last trigger not read yet (a record cap stopped it) come first, and alone.
    bool others_have_files = false;
    if (!reader_.busy()) {
      auto found = reader_.scan(unlimited);
      if (!found)
        return std::move(found).error();
      // A capped window may hold only other instances' files: the source is not done.
      others_have_files = reader_.last_scan_found_files();
    }
    auto names = reader_.unread();
    return trigger_plan{!names.empty() || others_have_files, detail::file_names_json(names)};
  }

  result<void> replay_trigger(std::string_view end) override {
    trigger_mode_ = true;
    auto names = detail::file_names_from_json(end);
    if (!names)
      return std::move(names).error();
    reader_.take(*names);
    return {};
  }

  /// Another parallelism: the union of the old instances' files, each read by the
  /// instance that owns it now.
  result<void> replay_trigger_all(const std::vector<std::string>& ends) override {
    trigger_mode_ = true;
    std::vector<std::string> all;
    for (auto& end : ends) {
      auto names = detail::file_names_from_json(end);
      if (!names)
        return std::move(names).error();
      all.insert(all.end(), names->begin(), names->end());
    }
    reader_.take(all, /*only_owned=*/true);
    return {};
  }

  std::optional<std::string> position() const override { return reader_.position(); }
  result<void> seek(std::string_view pos) override { return reader_.seek({std::string{pos}}); }
  /// Positions are rescalable: every instance merges those of every old instance.
  bool restores_from_all_instances() const noexcept override { return true; }
  result<void> seek_all(const std::vector<std::string>& positions) override {
    return reader_.seek(positions);
  }

  std::string offset() const override {
    return "{\"files\": " + std::to_string(reader_.files_taken()) + "}";
  }

  std::uint64_t malformed_count() const noexcept override { return malformed_; }

private:
  result<T> decode(std::string_view line) const {
    if (options_.format == file_format::csv)
      return codec::from_csv_row<T>(line, options_.csv);
    return codec::from_json_line<T>(line);
  }

  result<void> on_malformed_line(const error& cause, source_output<T>& out) {
    ++malformed_;
    if (options_.malformed == on_malformed::fail)
      return detail::located_error(reader_.location(), cause, reader_.line());
    out.dead_letters.push_back(dead_letter{name_, reader_.location(),
                                           detail::truncate_raw(reader_.line()), cause.message});
    return {};
  }

  file_options options_;
  std::string name_;
  detail::file_line_reader reader_;
  std::uint64_t malformed_ = 0;
  bool trigger_mode_ = false; // micro-batch: only begin_trigger takes new files
};

/// Descriptor: `job.from(sources::file<T>{{.path = "in/", .format = file_format::csv}})`.
///
/// - Bounded unless `watch`: ends after the files present at start. With `watch` it never
///   ends and returns `idle(poll_interval)` when no new file has appeared.
/// - Empty lines are skipped. Line numbers in errors count every physical line from 1,
///   the CSV header included.
/// - A malformed line with `on_malformed::fail` fails the job with `malformed_record:
///   <file>:<line>: <cause>`; with `on_malformed::dead_letter` it becomes a `dead_letter`
///   (raw line cut to 1 KiB) on `dead_letters()` and reading goes on. Both are counted.
/// - A missing path fails `open` with `io_error` naming it; so does a file that vanishes
///   between the directory scan and its opening.
/// - When watching, the names already read are kept in memory for the job's lifetime.
/// - Parallel instances split the files (see `detail::file_line_reader`): file k of the
///   sorted list goes to instance k % parallelism; when watching, by a hash of the name.
/// - Delivery: every line of every file once per run. With checkpoints, exactly once across
///   restores: a position names the files read to their end, the lines read in begun ones
///   and the files a trigger took, by name under the input root (`path` resolved: a
///   relative path, a trailing slash or a symbolic link name the same root). A restore on
///   another root is refused, naming both. Positions of every old instance merge, so the
///   source's parallelism may change between runs (see `detail::file_line_reader`).
/// - `T` is decoded as JSON or CSV, chosen at run time, so `T` needs both codec forms (no
///   `std::vector` fields): the CSV codec rejects such types at compile time.
///
/// The descriptor is its options (it derives from `file_options`), so `malformed` is the one
/// field the engine reads to enable the dead-letter output.
template <class T>
struct file : file_options {
  using record_type = T;

  explicit file(file_options options) : file_options(std::move(options)) {}

  const file_options& options() const noexcept { return *this; }

  std::unique_ptr<source<T>> create(const source_context&) const {
    return std::make_unique<file_source<T>>(options());
  }

  std::string describe() const {
    return "file(" + path.string() + (format == file_format::csv ? ", csv" : ", json_lines") +
           (watch ? ", watch)" : ")");
  }

  result<void> validate() const {
    if (path.empty())
      return make_error(error_code::invalid_option, "file source: path is empty");
    if (max_files_per_trigger && *max_files_per_trigger == 0)
      return make_error(error_code::invalid_option,
                        "file source: max_files_per_trigger must be at least 1");
    if (watch && poll_interval <= std::chrono::milliseconds::zero())
      return make_error(error_code::invalid_option,
                        "file source: poll_interval must be positive when watching");
    if (format == file_format::csv &&
        (csv.delimiter == '"' || csv.delimiter == '\r' || csv.delimiter == '\n'))
      return make_error(error_code::invalid_option,
                        "file source: the CSV delimiter cannot be a quote or a line break");
    return {};
  }
};

} // namespace sluice::sources
