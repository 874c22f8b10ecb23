#pragma once
/// A static table: rows read from one JSON-lines or CSV file, looked up by key. The right
/// side of a stream-static join (`stream<T>::join_static`, see docs/joins.md).
///
/// ```cpp
/// auto accounts = static_table<std::uint64_t, account>::from_file(
///   "accounts.csv", sources::file_format::csv, [](const account& a) { return a.id; });
/// ```
///
/// The table is a descriptor: nothing is read until `load()`, which the join operator calls
/// in `open()` on every parallel instance (each instance holds its own immutable copy, so
/// lookups take no lock; the memory cost is one copy per instance).
#include "sluice/core/codec/csv.hpp"
#include "sluice/core/codec/json.hpp"
#include "sluice/core/error.hpp"
#include "sluice/core/key_group.hpp"
#include "sluice/sources/file.hpp"
#include "sluice/sources/malformed.hpp"

#include <cerrno>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <system_error>
#include <type_traits>
#include <unordered_map>
#include <utility>
#include <vector>

namespace sluice {

/// Where a static table comes from. Every field but `path` has a working default.
struct static_table_options {
  /// One regular file (not a directory: a lookup table is read whole, once, at open).
  std::filesystem::path path{};
  /// How each line encodes one row. Default: JSON lines.
  sources::file_format format = sources::file_format::json_lines;
  /// CSV only: the first line is a header and is skipped. Default: true.
  bool csv_header = true;
  /// CSV only: the delimiter. Default: `,`.
  codec::csv_options csv{};
};

/// The loaded rows by key, immutable once built. A key may have several rows (the join
/// then emits one result per row, as a relational join does); they keep file order.
template <class K, class V>
class lookup_table {
public:
  struct hasher {
    std::size_t operator()(const K& key) const noexcept {
      if constexpr (requires { std::hash<K>{}(key); })
        return std::hash<K>{}(key);
      else
        return static_cast<std::size_t>(key_hash<K>{}(key));
    }
  };
  using map_type = std::unordered_map<K, std::vector<V>, hasher>;

  lookup_table() = default;
  explicit lookup_table(map_type rows) : rows_(std::move(rows)) {
    for (auto& [k, v] : rows_)
      count_ += v.size();
  }

  /// The rows of `key`, or null when there are none.
  const std::vector<V>* find(const K& key) const {
    auto it = rows_.find(key);
    return it == rows_.end() ? nullptr : &it->second;
  }
  std::size_t rows() const noexcept { return count_; }
  std::size_t keys() const noexcept { return rows_.size(); }

private:
  map_type rows_;
  std::size_t count_ = 0;
};

/// Descriptor of a static table of `V` rows keyed by `K`. Copyable and cheap to copy.
///
/// `V` is decoded as JSON or CSV, chosen at run time, so it needs both codec forms, like
/// `sources::file<T>`.
template <class K, class V>
  requires std::default_initializable<V> && std::movable<V>
class static_table {
public:
  using key_type = K;
  using row_type = V;
  using table_type = lookup_table<K, V>;

  static_table(static_table_options options, std::function<K(const V&)> key_fn)
    : options_(std::move(options)), key_fn_(std::move(key_fn)) {}

  /// A table read from `path`, each row's key given by `key_fn(const V&) -> K`.
  template <class KeyFn>
  static static_table from_file(std::filesystem::path path, sources::file_format format,
                                KeyFn key_fn) {
    static_assert(std::is_invocable_r_v<K, KeyFn&, const V&>,
                  "static_table: the key function must be (const V&) -> K");
    return static_table{static_table_options{.path = std::move(path), .format = format},
                        [f = std::move(key_fn)](const V& v) -> K { return std::invoke(f, v); }};
  }

  /// Reads the whole file.
  ///
  /// Fails with `io_error` when the file is missing, not a regular file or unreadable, and
  /// with `malformed_record` on the first line that does not decode, in both cases naming
  /// the file (and the 1-based line, counting the CSV header and empty lines):
  /// `malformed_record: static table accounts.csv:3: expected 3 fields, found 2`.
  /// Empty lines are skipped; an empty file is an empty table.
  [[nodiscard]] result<std::shared_ptr<const table_type>> load() const {
    const auto& path = options_.path;
    std::error_code ec;
    const auto st = std::filesystem::status(path, ec);
    if (ec || !std::filesystem::exists(st))
      return make_error(error_code::io_error,
                        "static table: file '" + path.string() + "' does not exist");
    if (!std::filesystem::is_regular_file(st))
      return make_error(error_code::io_error,
                        "static table: '" + path.string() + "' is not a regular file");
    std::ifstream in{path, std::ios::in | std::ios::binary};
    if (!in.is_open()) {
      const int err = errno;
      return make_error(error_code::io_error, "static table: cannot open '" + path.string() +
                                                "': " + std::generic_category().message(err));
    }
    typename table_type::map_type rows;
    std::string line;
    std::uint64_t number = 0;
    while (std::getline(in, line)) {
      ++number;
      if (!line.empty() && line.back() == '\r')
        line.pop_back();
      if (number == 1) {
        if (line.starts_with("\xEF\xBB\xBF"))
          line.erase(0, 3);
        if (options_.format == sources::file_format::csv && options_.csv_header)
          continue;
      }
      if (line.empty())
        continue;
      auto row = decode(line);
      if (!row)
        return sources::detail::located_error(
          "static table " + path.string() + ":" + std::to_string(number), row.error());
      K key = key_fn_(*row);
      rows[std::move(key)].push_back(std::move(*row));
    }
    if (in.bad())
      return make_error(error_code::io_error,
                        "static table: cannot read '" + path.string() + "'");
    return std::shared_ptr<const table_type>{std::make_shared<table_type>(std::move(rows))};
  }

  /// Shown in explain(): `static_table(accounts.csv, csv)`.
  std::string describe() const {
    return "static_table(" + options_.path.string() +
           (options_.format == sources::file_format::csv ? ", csv)" : ", json_lines)");
  }

  const static_table_options& options() const noexcept { return options_; }

private:
  result<V> decode(std::string_view line) const {
    if (options_.format == sources::file_format::csv)
      return codec::from_csv_row<V>(line, options_.csv);
    return codec::from_json_line<V>(line);
  }

  static_table_options options_;
  std::function<K(const V&)> key_fn_;
};

} // namespace sluice
