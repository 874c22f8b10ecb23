#pragma once
/// The manifest of the exactly-once file sink, and how readers follow it.
///
/// Like Spark's `_spark_metadata`, the manifest is a log in the output directory,
/// `<path>/_sluice_metadata/`, with one entry per committed part file: which checkpoint (or,
/// without checkpoints, which epoch) made it visible, and its size. A part file counts as
/// output only once its entry exists; a restore from an older checkpoint removes the entries
/// of the newer ones before it removes their files. So a reader that follows the manifest
/// (`read_committed_files`) sees each committed row exactly once, whatever crashed or was
/// rolled back, while a plain listing of the directory may briefly see a file whose commit
/// has not finished, or one being rolled back.
///
/// ```cpp
/// auto files = sinks::read_committed_files("out/");          // paths, in commit order
/// auto rows = sinks::read_committed<alert>("out/");           // every committed record
/// ```
#include "sluice/core/codec/json.hpp"
#include "sluice/core/error.hpp"
#include "sluice/sinks/file_io.hpp"

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>
#include <vector>

namespace sluice::sinks {

/// The manifest's directory inside an output directory. Its name starts with `_`, so
/// readers that skip hidden names (Spark, Sluice's file source) never take it for output.
inline constexpr std::string_view manifest_directory = "_sluice_metadata";

/// A committed part file.
struct committed_file {
  std::filesystem::path path;
  /// The checkpoint (without checkpoints: the epoch) whose output it holds; -1 when the
  /// directory has no manifest.
  std::int64_t checkpoint = -1;
  std::string prefix;  ///< the sink's `file_sink_options::prefix`
  int instance = 0;    ///< the sink instance that wrote it
  std::uint64_t size = 0;
};

/// The committed files in `dir`, ordered by checkpoint, then prefix, then instance.
///
/// - With a manifest (`dir/_sluice_metadata`, which the exactly-once file sink creates when
///   it opens): exactly the files it lists. A listed file that is missing or whose size
///   differs, or an entry that does not parse, is an `io_error` naming it: the directory
///   was changed behind the sink's back.
/// - Without one (the plain file sink, or any other directory): every regular file whose
///   name does not start with `.` or `_` (Spark's rule for hidden files), ordered by name.
/// - A missing `dir` is an `io_error` naming it.
[[nodiscard]] result<std::vector<committed_file>>
read_committed_files(const std::filesystem::path& dir);

/// Every record of the committed files of `dir`, one JSON line each, in the order of
/// `read_committed_files` and then of the lines. A line that does not parse as `T` is a
/// `malformed_record` naming the file and line.
template <class T>
[[nodiscard]] result<std::vector<T>> read_committed(const std::filesystem::path& dir) {
  auto files = read_committed_files(dir);
  if (!files)
    return std::move(files).error();
  std::vector<T> out;
  for (auto& f : *files) {
    std::ifstream in{f.path, std::ios::binary};
    if (!in)
      return make_error(error_code::io_error, "cannot read '" + f.path.string() + "'");
    std::size_t line_no = 0;
    for (std::string line; std::getline(in, line);) {
      ++line_no;
      auto r = codec::from_json_line<T>(line);
      if (!r)
        return make_error(error_code::malformed_record, f.path.string() + ":" +
                                                          std::to_string(line_no) + ": " +
                                                          r.error().message);
      out.push_back(std::move(*r));
    }
  }
  return out;
}

namespace detail {

/// One entry of the manifest as the sink sees it: which file, from which instance and
/// checkpoint.
struct manifest_entry {
  std::filesystem::path entry; ///< the entry's own file in the manifest directory
  int instance = 0;
  std::int64_t checkpoint = 0;
};

/// The manifest's directory of output directory `dir`.
std::filesystem::path manifest_path(const std::filesystem::path& dir);

/// Lists the entries of sink prefix `prefix` (parsed from their names; nothing is read).
[[nodiscard]] result<std::vector<manifest_entry>> list_manifest(const std::filesystem::path& dir,
                                                                const std::string& prefix);

/// Writes the entry of `file` (a committed part file in `dir`) atomically: a hidden
/// temporary file, synced, renamed into place. The caller syncs the manifest directory.
[[nodiscard]] result<void> write_manifest_entry(file_io& io, const std::filesystem::path& dir,
                                                const std::string& prefix, int instance,
                                                std::int64_t checkpoint,
                                                const std::filesystem::path& file);

} // namespace detail

} // namespace sluice::sinks
