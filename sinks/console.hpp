#pragma once
/// The console sink: records printed as JSON lines or as Spark-like tables, for demos and
/// debugging.
///
/// ```cpp
/// stream.sink_to(sinks::console<txn>{{.format = sinks::console_format::table}});
/// ```
#include "sluice/core/codec/csv.hpp"
#include "sluice/core/codec/inspect.hpp"
#include "sluice/core/codec/json.hpp"
#include "sluice/core/codec/record_text.hpp"
#include "sluice/sinks/sink.hpp"

#include <concepts>
#include <cstddef>
#include <iostream>
#include <iterator>
#include <memory>
#include <mutex>
#include <ostream>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

namespace sluice::sinks {

/// How the console sink prints records.
enum class console_format {
  json_lines, ///< one line per record: JSON for structs, the plain value otherwise
  table,      ///< one bordered table per written batch, one row per record
};

/// Options of the console sink. Every field has a working default.
struct console_options {
  /// Default: JSON lines.
  console_format format = console_format::json_lines;
  /// Where to print; must outlive the job. Default: `std::cout`.
  std::ostream* out = &std::cout;
  /// Table only: cells longer than this many characters are cut to it, ending in `...`
  /// (Spark's `show()` uses 20). 0 keeps cells whole. Default 20.
  std::size_t truncate = 20;
};

namespace detail {

/// A Spark-style table: `+---+` borders, the header, then one row per entry of `rows`.
/// Cells are right-aligned and cut to `truncate` characters (0: never). Widths count
/// UTF-8 code points, so non-ASCII text stays aligned. Ends with a newline.
std::string render_table(const std::vector<std::string>& header,
                         const std::vector<std::vector<std::string>>& rows, std::size_t truncate);

/// Writes `text` to `out` and flushes; `io_error` if the stream fails.
[[nodiscard]] result<void> write_console(std::ostream& out, const std::string& text);

/// The display text of one value: leaves (and optional leaves) as the codec shows them in
/// cells, anything else with a codec form (nested structs, vectors) as compact JSON; the
/// same text as `record_text`, without its bound.
template <class T>
std::string display_text(const T& x) {
  if constexpr (is_optional_v<T>) {
    return x ? display_text(*x) : std::string{"null"};
  } else {
    static_assert(is_codec_value_v<T> || ostreamable<T>,
                  "console sink: the record type must have an inspect() overload, be a codec "
                  "leaf (string, number, bool, event_time) or support `std::ostream << x`");
    return sluice::detail::full_record_text(x);
  }
}

/// Collects the display text of each top-level field of a record.
class display_cell_writer : public inspector_base<display_cell_writer> {
public:
  explicit display_cell_writer(std::vector<std::string>& out) noexcept : out_(&out) {}

  template <class... Ts>
  bool apply_fields(std::string_view, field_ref<Ts>... refs) {
    (out_->push_back(display_text(std::as_const(*refs.value))), ...);
    return true;
  }

private:
  std::vector<std::string>* out_;
};

/// The table header of `T`: its top-level field names, or `value` for a plain value.
template <class T>
std::vector<std::string> table_header() {
  if constexpr (inspectable<T>)
    return field_names<T>();
  else
    return {"value"};
}

/// The table cells of `x`, matching `table_header<T>()`.
template <class T>
std::vector<std::string> table_cells(const T& x) {
  if constexpr (inspectable<T>) {
    std::vector<std::string> out;
    display_cell_writer w{out};
    // Writing never changes the record; the inspect() protocol just has one signature.
    static_cast<void>(inspect(w, const_cast<T&>(x)));
    return out;
  } else {
    return {display_text(x)};
  }
}

/// One record as one console line (without the newline).
template <class T>
std::string console_line(const T& x) {
  if constexpr (inspectable<T>)
    return codec::to_json_line(x);
  else
    return display_text(x);
}

} // namespace detail

/// One instance of the console sink. See `console` for the contract.
template <class T>
class console_sink final : public sink<T> {
public:
  console_sink(console_options options, std::shared_ptr<std::mutex> lock)
    : options_(options), lock_(std::move(lock)) {}

  result<void> open(const sink_context& ctx) override {
    per_epoch_ = ctx.mode.has_value();
    return {};
  }

  result<void> write(std::vector<T>& records) override {
    if (per_epoch_) { // printed whole at the epoch's end, under its batch header
      std::move(records.begin(), records.end(), std::back_inserter(epoch_rows_));
      return {};
    }
    return print(records, {});
  }

  /// Under an output mode, like Spark's console sink: a "Batch: N" header, then the rows.
  result<void> end_epoch(std::int64_t epoch) override {
    if (!per_epoch_)
      return {};
    const std::string rule = "-------------------------------------------\n";
    auto rows = std::move(epoch_rows_);
    epoch_rows_.clear();
    return print(rows, rule + "Batch: " + std::to_string(epoch) + "\n" + rule);
  }

private:
  result<void> print(std::vector<T>& records, std::string text) {
    if (records.empty() && text.empty())
      return {};
    // Formatted outside the lock, so instances only wait for each other's output call.
    if (options_.format == console_format::table && !records.empty()) {
      std::vector<std::vector<std::string>> rows;
      rows.reserve(records.size());
      for (const auto& r : records)
        rows.push_back(detail::table_cells(r));
      text += detail::render_table(header_, rows, options_.truncate);
    } else {
      for (const auto& r : records) {
        text += detail::console_line(r);
        text += '\n';
      }
    }
    std::lock_guard guard{*lock_};
    return detail::write_console(*options_.out, text);
  }

public:
  result<void> flush() override {
    if (!epoch_rows_.empty()) // rows after the last epoch (the end of bounded input)
      if (auto r = print(epoch_rows_, {}); !r)
        return r;
    epoch_rows_.clear();
    std::lock_guard guard{*lock_};
    return detail::write_console(*options_.out, {});
  }

private:
  bool per_epoch_ = false;
  std::vector<T> epoch_rows_;
  console_options options_;
  std::shared_ptr<std::mutex> lock_;
  std::vector<std::string> header_ = detail::table_header<T>();
};

/// Descriptor: `stream.sink_to(sinks::console<T>{{.format = console_format::table}})`.
///
/// - JSON lines: structs (with `inspect()`) as `codec::to_json_line`; strings, numbers and
///   other values as their plain text.
/// - Table: per written batch, a table headed by the top-level field names (or `value`),
///   cells as `codec::to_cells` shows leaves, nested structs and vectors as compact JSON.
/// - Output is flushed after every batch. The instances of one descriptor share a mutex, so
///   their lines and tables never interleave; two separate console sinks on one stream may
///   still interleave whole batches.
/// - Fails with `io_error` when the stream goes bad.
/// - Delivery: at-least-once once checkpoints replay; printed output cannot be taken back.
template <class T>
struct console : console_options {
  using record_type = T;

  explicit console(console_options options = {}) : console_options(options) {}

  const console_options& options() const noexcept { return *this; }

  std::unique_ptr<sink<T>> create(const sink_context&) const {
    return std::make_unique<console_sink<T>>(options(), lock);
  }
  std::string describe() const { return "console"; }
  result<void> validate() const {
    if (out == nullptr)
      return make_error(error_code::invalid_option, "console sink: out is null");
    return {};
  }

  /// Serializes the writes of every instance created from this descriptor (and its copies).
  std::shared_ptr<std::mutex> lock = std::make_shared<std::mutex>();
};

} // namespace sluice::sinks
