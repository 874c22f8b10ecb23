#pragma once
/// The file sink: records as JSON lines, one part file per parallel instance.
///
/// ```cpp
/// stream.sink_to(sinks::file<txn>{{.path = "out/", .prefix = "part"}});
/// // out/part-0.jsonl, out/part-1.jsonl, ...
/// ```
#include "core/codec/inspect.hpp"
#include "core/codec/json.hpp"
#include "sinks/sink.hpp"

#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace sluice::sinks {

/// Options of the file sink. Every field but `path` has a working default.
struct file_sink_options {
  /// The output directory; created (with its parents) if missing.
  std::filesystem::path path{};
  /// Part files are named `<prefix>-<instance>.jsonl`, instances counted from 0.
  /// Default: `part`.
  std::string prefix = "part";
};

namespace detail {

/// One output file written through a buffered stream; errors name the file.
class part_file {
public:
  /// Creates the directory and the file, replacing an existing file of that name.
  [[nodiscard]] result<void> open(const std::filesystem::path& directory, const std::string& name);
  /// Appends `text`.
  [[nodiscard]] result<void> write(const std::string& text);
  /// Hands buffered text to the operating system (no fsync).
  [[nodiscard]] result<void> flush();
  /// Flushes and closes; closing twice is harmless.
  [[nodiscard]] result<void> close();

  const std::filesystem::path& path() const noexcept { return path_; }

private:
  std::filesystem::path path_;
  std::ofstream out_;
};

} // namespace detail

/// One instance of the file sink. See `file` for the contract.
template <class T>
class file_sink final : public sink<T> {
public:
  explicit file_sink(file_sink_options options) : options_(std::move(options)) {}

  result<void> open(const sink_context& ctx) override {
    return file_.open(options_.path, options_.prefix + "-" + std::to_string(ctx.instance) + ".jsonl");
  }

  result<void> write(std::vector<T>& records) override {
    buffer_.clear();
    for (const auto& r : records) {
      buffer_ += codec::to_json_line(r);
      buffer_ += '\n';
    }
    return file_.write(buffer_);
  }

  result<void> flush() override { return file_.flush(); }
  result<void> close() override { return file_.close(); }

private:
  file_sink_options options_;
  detail::part_file file_;
  std::string buffer_; // reused across batches
};

/// Descriptor: `stream.sink_to(sinks::file<T>{{.path = "out/"}})`.
///
/// - Instance i writes `<path>/<prefix>-<i>.jsonl`, one `codec::to_json_line` per record, in
///   arrival order. `open` creates the directory and replaces an existing part file.
/// - `flush()` hands buffered lines to the operating system; `close()` flushes and closes.
/// - Errors are `io_error` naming the file.
/// - Delivery: no atomic commit. Readers may see partial part files while the job runs or
///   after it fails; a rerun replaces them. With checkpoint replay this is at-least-once;
///   exactly-once part-file commits come in a later change.
template <class T>
  requires is_codec_value_v<T>
struct file : file_sink_options {
  using record_type = T;

  explicit file(file_sink_options options) : file_sink_options(std::move(options)) {}

  const file_sink_options& options() const noexcept { return *this; }

  std::unique_ptr<sink<T>> create(const sink_context&) const {
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
    return {};
  }
};

} // namespace sluice::sinks
