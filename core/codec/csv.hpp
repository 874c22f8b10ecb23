#pragma once
/// CSV encoding (RFC 4180) of records described by `inspect()`: one row per record.
///
/// Columns are the record's fields in declared order; a nested struct is flattened into its
/// own fields, headed `outer.inner`. Cells: `true`/`false`, decimal numbers (shortest form that
/// reads back exactly), strings as they are, `event_time` as ISO-8601 UTC. An empty cell is
/// `std::nullopt` for an optional field, so an optional string cannot hold an empty string
/// through CSV. A vector field is one cell holding a JSON array (`"[1,2]"` after quoting), so
/// any record that has a JSON form also has a CSV form. Optionals of structs fail to compile.
/// Embedded newlines are not supported: one line is one row.
#include "sluice/core/codec/inspect.hpp"
#include "sluice/core/codec/json.hpp"
#include "sluice/core/codec/time_format.hpp"
#include "sluice/core/error.hpp"
#include "sluice/core/time.hpp"

#include <concepts>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace sluice::codec {

/// How rows are split and joined.
struct csv_options {
  /// The field separator. Default `,`. Must not be `"`, `\r` or `\n`; `split_csv_row`
  /// rejects those with `invalid_option`.
  char delimiter = ',';
};

/// Splits one CSV line into unquoted cells.
///
/// A cell that starts with `"` is quoted: it ends at the next lone `"`, and `""` inside
/// stands for one `"`. A `"` inside an unquoted cell is kept as it is. One trailing `\r` is
/// dropped. An empty line is one empty cell. Fails with `malformed_record` on an unterminated
/// quote or on text after a closing quote.
[[nodiscard]] result<std::vector<std::string>> split_csv_row(std::string_view line,
                                                             const csv_options& options = {});

/// Joins cells into one CSV line (no line terminator), quoting those that contain the
/// delimiter, a quote or a line break.
std::string join_csv_row(std::span<const std::string> cells, const csv_options& options = {});

/// True when `cell` holds `delimiter`, a quote or a line break: RFC 4180 quotes it.
[[nodiscard]] bool csv_cell_needs_quotes(std::string_view cell, char delimiter = ',') noexcept;

/// Appends `cell` to `out`, quoted (and its quotes doubled) when it needs quotes.
void append_csv_cell(std::string& out, std::string_view cell, char delimiter = ',');

namespace detail {

using sluice::detail::decode_error;

// Leaf formatting and parsing, defined in csv.cpp. Non-string cells are parsed after
// trimming spaces and tabs, since hand-edited files often pad them.
std::string csv_format_bool(bool x);
std::string csv_format_signed(std::int64_t x);
std::string csv_format_unsigned(std::uint64_t x);
std::string csv_format_float(float x);
std::string csv_format_double(double x);

bool csv_parse_leaf(std::string_view cell, bool& out, decode_error& e);
bool csv_parse_leaf(std::string_view cell, float& out, decode_error& e);
bool csv_parse_leaf(std::string_view cell, double& out, decode_error& e);
bool csv_parse_leaf(std::string_view cell, std::string& out, decode_error& e);
bool csv_parse_leaf(std::string_view cell, event_time& out, decode_error& e);
bool csv_parse_signed(std::string_view cell, std::int64_t min, std::int64_t max,
                      std::string_view type_name, std::int64_t& out, decode_error& e);
bool csv_parse_unsigned(std::string_view cell, std::uint64_t max, std::string_view type_name,
                        std::uint64_t& out, decode_error& e);

/// True when `cell` is empty after trimming spaces and tabs.
bool csv_blank(std::string_view cell) noexcept;

/// Fails to compile, with a message, for types CSV cannot represent.
template <class T>
consteval void csv_check_type() {
  if constexpr (is_vector_v<T>) {
    static_assert(is_codec_value_v<typename T::value_type>,
                  "sluice CSV codec: unsupported element type in a std::vector field");
  } else if constexpr (is_optional_v<T>) {
    static_assert(is_codec_leaf_v<typename T::value_type>,
                  "sluice CSV codec: std::optional is supported only around leaf types "
                  "(bool, integers, float, double, std::string, sluice::event_time)");
  } else {
    static_assert(is_codec_leaf_v<T> || inspectable<T>,
                  "sluice CSV codec: unsupported field type. Supported are bool, integers, "
                  "float, double, std::string, sluice::event_time, std::optional of those, "
                  "and structs with an inspect() overload");
  }
}

template <class T>
std::string csv_format_leaf(const T& x) {
  if constexpr (std::same_as<T, bool>)
    return csv_format_bool(x);
  else if constexpr (std::integral<T> && std::is_signed_v<T>)
    return csv_format_signed(x);
  else if constexpr (std::integral<T>)
    return csv_format_unsigned(x);
  else if constexpr (std::same_as<T, float>)
    return csv_format_float(x);
  else if constexpr (std::same_as<T, double>)
    return csv_format_double(x);
  else if constexpr (std::same_as<T, std::string>)
    return x;
  else
    return format_iso8601(x);
}

/// Collects flattened column names: `prefix + name`, recursing into nested structs.
class csv_header_collector : public inspector_base<csv_header_collector> {
public:
  csv_header_collector(std::vector<std::string>& out, std::string prefix)
    : out_(&out), prefix_(std::move(prefix)) {}

  template <class... Ts>
  bool apply_fields(std::string_view, field_ref<Ts>... refs) {
    (add(refs), ...);
    return true;
  }

private:
  template <class T>
  void add(field_ref<T> ref) {
    csv_check_type<T>();
    std::string name = prefix_;
    name.append(ref.name);
    if constexpr (inspectable<T>) {
      csv_header_collector sub{*out_, name + "."};
      static_cast<void>(inspect(sub, *ref.value));
    } else {
      out_->push_back(std::move(name));
    }
  }

  std::vector<std::string>* out_;
  std::string prefix_;
};

/// Renders flattened fields as cells. `display` selects the console form (`null` for an
/// empty optional) over the CSV form (empty cell).
class csv_cell_writer : public inspector_base<csv_cell_writer> {
public:
  csv_cell_writer(std::vector<std::string>& out, bool display) noexcept
    : out_(&out), display_(display) {}

  template <class... Ts>
  bool apply_fields(std::string_view, field_ref<Ts>... refs) {
    (add(std::as_const(*refs.value)), ...);
    return true;
  }

  template <class T>
  void add(const T& x) {
    csv_check_type<T>();
    if constexpr (is_codec_leaf_v<T>) {
      out_->push_back(csv_format_leaf(x));
    } else if constexpr (is_optional_v<T>) {
      if (x)
        add(*x);
      else
        out_->emplace_back(display_ ? "null" : "");
    } else if constexpr (is_vector_v<T>) {
      // CSV has no lists: the whole vector is one cell holding a JSON array.
      out_->push_back(dump_json_line(to_json_value<nlohmann::ordered_json>(x)));
    } else if constexpr (inspectable<T>) {
      // Writing never changes the record; the inspect() protocol just has one signature.
      static_cast<void>(inspect(*this, const_cast<T&>(x)));
    }
  }

private:
  std::vector<std::string>* out_;
  bool display_;
};

/// Reads flattened fields from cells, in order. The caller checks the cell count first.
class csv_cell_reader : public inspector_base<csv_cell_reader> {
public:
  static constexpr bool is_loading = true;
  csv_cell_reader(std::span<const std::string> cells, decode_error& e) noexcept
    : cells_(cells), e_(&e) {}

  template <class... Ts>
  bool apply_fields(std::string_view, field_ref<Ts>... refs) {
    return (read_field(refs) && ...);
  }

  template <class T>
  bool read(T& x) {
    csv_check_type<T>();
    if constexpr (is_codec_leaf_v<T>) {
      const std::string_view cell = cells_[pos_++];
      if constexpr (std::same_as<T, bool> || std::floating_point<T> || std::same_as<T, std::string>
                    || std::same_as<T, event_time>) {
        return csv_parse_leaf(cell, x, *e_);
      } else if constexpr (std::is_signed_v<T>) {
        std::int64_t v = 0;
        if (!csv_parse_signed(cell, std::numeric_limits<T>::min(), std::numeric_limits<T>::max(),
                              integer_type_name<T>(), v, *e_))
          return false;
        x = static_cast<T>(v);
        return true;
      } else {
        std::uint64_t v = 0;
        if (!csv_parse_unsigned(cell, std::numeric_limits<T>::max(), integer_type_name<T>(), v,
                                *e_))
          return false;
        x = static_cast<T>(v);
        return true;
      }
    } else if constexpr (is_optional_v<T>) {
      const std::string_view cell = cells_[pos_];
      const bool empty = std::same_as<typename T::value_type, std::string> ? cell.empty()
                                                                          : csv_blank(cell);
      if (empty) {
        ++pos_;
        x.reset();
        return true;
      }
      if (!x)
        x.emplace();
      return read(*x);
    } else if constexpr (is_vector_v<T>) {
      const std::string_view cell = cells_[pos_++];
      auto parsed = parse_json_text(cell);
      if (!parsed)
        return e_->fail("expected a JSON array in the cell, got \"" + std::string{cell} + "\"");
      return json_read_value(*parsed, x, *e_);
    } else if constexpr (inspectable<T>) {
      if (!inspect(*this, x)) {
        if (e_->problem.empty())
          e_->problem = "inspect() rejected the value";
        return false;
      }
      return true;
    } else {
      return false; // unreachable: csv_check_type rejected T
    }
  }

private:
  template <class T>
  bool read_field(field_ref<T> ref) {
    if (!read(*ref.value)) {
      e_->path.emplace_back(ref.name);
      return false;
    }
    return true;
  }

  std::span<const std::string> cells_;
  std::size_t pos_ = 0;
  decode_error* e_;
};

/// "expected 3 fields, found 2"
error csv_field_count_error(std::size_t expected, std::size_t found);

} // namespace detail

/// The column names of `T`: its fields in declared order, nested structs flattened as
/// `outer.inner`. A leaf type has the single column `value`.
template <class T>
  requires std::default_initializable<T>
std::vector<std::string> csv_header() {
  detail::csv_check_type<T>();
  std::vector<std::string> out;
  if constexpr (inspectable<T>) {
    detail::csv_header_collector f{out, {}};
    T probe{};
    static_cast<void>(inspect(f, probe));
  } else {
    out.emplace_back("value");
  }
  return out;
}

/// The display text of each flattened field of `x`: strings unquoted, times as ISO-8601,
/// an empty optional as `null`. For console tables, not for CSV files.
template <class T>
std::vector<std::string> to_cells(const T& x) {
  std::vector<std::string> out;
  detail::csv_cell_writer w{out, true};
  w.add(x);
  return out;
}

/// `x` as one CSV line, without a line terminator.
template <class T>
std::string to_csv_row(const T& x, const csv_options& options = {}) {
  std::vector<std::string> cells;
  detail::csv_cell_writer w{cells, false};
  w.add(x);
  return join_csv_row(cells, options);
}

/// Parses one CSV line into a new `T`, columns in the order of `csv_header<T>()`.
///
/// Fails with `malformed_record`: `expected 3 fields, found 2` on a wrong cell count, or a
/// message naming the field, e.g. `field 'amount': cannot parse "x" as a number`.
template <class T>
  requires std::default_initializable<T>
[[nodiscard]] result<T> from_csv_row(std::string_view line, const csv_options& options = {}) {
  // The column count depends only on the type; count once per type.
  static const std::size_t columns = csv_header<T>().size();
  auto cells = split_csv_row(line, options);
  if (!cells)
    return std::move(cells).error();
  if (cells->size() != columns)
    return detail::csv_field_count_error(columns, cells->size());
  T out{};
  sluice::detail::decode_error e;
  detail::csv_cell_reader r{*cells, e};
  if (!r.read(out))
    return e.to_error();
  return out;
}

} // namespace sluice::codec
