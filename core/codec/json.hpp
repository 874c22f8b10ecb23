#pragma once
/// JSON encoding of records described by `inspect()`: one JSON object per record.
///
/// Mapping: `bool` is a JSON boolean; integers and `float`/`double` are numbers; `std::string`
/// is a string; `event_time` is an ISO-8601 UTC string (read also from an integer count of
/// epoch milliseconds); `std::optional` is the value or `null`; `std::vector` is an array;
/// an inspectable struct is an object keyed by field name.
///
/// Reading is strict about types and lenient about shape: unknown keys are ignored, a missing
/// or `null` optional field is `std::nullopt`, any other missing field is an error. Integers
/// are range-checked against the target type; a number with a fraction is not an integer.
/// JSON has no NaN or infinity: such doubles are written as `null` and do not read back.
///
/// Speed (issue 28): `from_json_line` reads structs and vectors with simdjson's On-Demand
/// parser straight into the record (json.cpp; no document tree, no allocation per record
/// beyond the record's own strings). A line it does not accept (any error, and the rare
/// inputs whose reading it leaves to nlohmann, such as `-0` for an unsigned field) is read
/// again by the nlohmann reader, which decides: so what is accepted, the values read and
/// every error message are nlohmann's, exactly as before. `to_json_line` writes records
/// straight into a string, byte for byte what `nlohmann::ordered_json::dump` wrote.
/// Both may run on any number of threads at once: each thread reads with its own parser and
/// buffer (kept for lines up to 1 MiB; a longer line gets a parser of its own).
#include "sluice/core/codec/inspect.hpp"
#include "sluice/core/codec/time_format.hpp"
#include "sluice/core/error.hpp"
#include "sluice/core/time.hpp"

#include <absl/functional/function_ref.h>
#include <nlohmann/json.hpp>

#include <cstdint>
#include <limits>
#include <string>
#include <string_view>
#include <utility>
#include <array>
#include <charconv>

namespace sluice::codec {

namespace detail {

using sluice::detail::decode_error;

// Leaf readers, defined in json.cpp. Each returns false and fills `e` on failure.
bool json_read_leaf(const nlohmann::json& j, bool& out, decode_error& e);
bool json_read_leaf(const nlohmann::json& j, float& out, decode_error& e);
bool json_read_leaf(const nlohmann::json& j, double& out, decode_error& e);
bool json_read_leaf(const nlohmann::json& j, std::string& out, decode_error& e);
bool json_read_leaf(const nlohmann::json& j, event_time& out, decode_error& e);
bool json_read_signed(const nlohmann::json& j, std::int64_t min, std::int64_t max,
                      std::string_view type_name, std::int64_t& out, decode_error& e);
bool json_read_unsigned(const nlohmann::json& j, std::uint64_t max, std::string_view type_name,
                        std::uint64_t& out, decode_error& e);

/// `x` widened to the double whose shortest decimal form equals `x`'s own, so that 0.1f is
/// written as 0.1 rather than 0.10000000149011612.
double float_for_json(float x) noexcept;

/// Records "expected <what>, got <description of j>" in `e`; returns false.
bool json_type_mismatch(const nlohmann::json& j, std::string_view what, decode_error& e);

/// Parses `text`, turning the parser's exception into a `malformed_record` error.
result<nlohmann::json> parse_json_text(std::string_view text);

/// Compact serialization; invalid UTF-8 in strings is replaced rather than thrown on.
std::string dump_json_line(const nlohmann::ordered_json& j);

template <class Json, class T>
Json to_json_value(const T& x);

/// Builds a JSON object from a record's fields, in declared order when `Json` keeps order.
template <class Json>
class json_object_writer : public inspector_base<json_object_writer<Json>> {
public:
  Json out = Json::object();

  template <class... Ts>
  bool apply_fields(std::string_view, field_ref<Ts>... refs) {
    (out.emplace(std::string{refs.name}, to_json_value<Json>(std::as_const(*refs.value))), ...);
    return true;
  }
};

template <class Json, class T>
Json to_json_value(const T& x) {
  static_assert(is_codec_value_v<T>, "sluice JSON codec: unsupported field type. Supported are "
                                     "bool, integers, float, double, std::string, "
                                     "sluice::event_time, std::optional and std::vector of "
                                     "those, and structs with an inspect() overload");
  if constexpr (std::same_as<T, bool> || std::same_as<T, double> || std::same_as<T, std::string>) {
    return Json(x);
  } else if constexpr (std::same_as<T, float>) {
    return Json(float_for_json(x));
  } else if constexpr (std::integral<T>) {
    // Widen first: nlohmann would treat char-like types as something other than numbers.
    if constexpr (std::is_signed_v<T>)
      return Json(static_cast<std::int64_t>(x));
    else
      return Json(static_cast<std::uint64_t>(x));
  } else if constexpr (std::same_as<T, event_time>) {
    return Json(format_iso8601(x));
  } else if constexpr (is_optional_v<T>) {
    return x ? to_json_value<Json>(*x) : Json(nullptr);
  } else if constexpr (is_vector_v<T>) {
    Json arr = Json::array();
    for (const typename T::value_type& elem : x)
      arr.push_back(to_json_value<Json>(elem));
    return arr;
  } else {
    json_object_writer<Json> w;
    // Writing never changes the record; the inspect() protocol just has one signature.
    static_cast<void>(inspect(w, const_cast<T&>(x)));
    return std::move(w.out);
  }
}

template <class T>
bool json_read_value(const nlohmann::json& j, T& out, decode_error& e);

/// Reads a record's fields from a JSON object.
class json_object_reader : public inspector_base<json_object_reader> {
public:
  static constexpr bool is_loading = true;
  json_object_reader(const nlohmann::json& obj, decode_error& e) noexcept : obj_(&obj), e_(&e) {}

  template <class... Ts>
  bool apply_fields(std::string_view, field_ref<Ts>... refs) {
    return (read_field(refs) && ...);
  }

private:
  template <class T>
  bool read_field(field_ref<T> ref) {
    const auto it = obj_->find(ref.name);
    if (it == obj_->end()) {
      if constexpr (is_optional_v<T>) {
        ref.value->reset();
        return true;
      } else {
        return e_->fail_missing(ref.name);
      }
    }
    if (!json_read_value(*it, *ref.value, *e_)) {
      e_->path.emplace_back(ref.name);
      return false;
    }
    return true;
  }

  const nlohmann::json* obj_;
  decode_error* e_;
};

template <class T>
bool json_read_value(const nlohmann::json& j, T& out, decode_error& e) {
  static_assert(is_codec_value_v<T>, "sluice JSON codec: unsupported field type. Supported are "
                                     "bool, integers, float, double, std::string, "
                                     "sluice::event_time, std::optional and std::vector of "
                                     "those, and structs with an inspect() overload");
  if constexpr (std::same_as<T, bool> || std::floating_point<T> || std::same_as<T, std::string>
                || std::same_as<T, event_time>) {
    return json_read_leaf(j, out, e);
  } else if constexpr (std::integral<T>) {
    if constexpr (std::is_signed_v<T>) {
      std::int64_t v = 0;
      if (!json_read_signed(j, std::numeric_limits<T>::min(), std::numeric_limits<T>::max(),
                            integer_type_name<T>(), v, e))
        return false;
      out = static_cast<T>(v);
    } else {
      std::uint64_t v = 0;
      if (!json_read_unsigned(j, std::numeric_limits<T>::max(), integer_type_name<T>(), v, e))
        return false;
      out = static_cast<T>(v);
    }
    return true;
  } else if constexpr (is_optional_v<T>) {
    if (j.is_null()) {
      out.reset();
      return true;
    }
    if (!out)
      out.emplace();
    return json_read_value(j, *out, e);
  } else if constexpr (is_vector_v<T>) {
    if (!j.is_array())
      return json_type_mismatch(j, "an array", e);
    out.clear();
    out.reserve(j.size());
    for (std::size_t i = 0; i < j.size(); ++i) {
      typename T::value_type elem{};
      if (!json_read_value(j[i], elem, e)) {
        e.path.push_back("[" + std::to_string(i) + "]");
        return false;
      }
      out.push_back(std::move(elem));
    }
    return true;
  } else {
    if (!j.is_object())
      return json_type_mismatch(j, "an object", e);
    json_object_reader r{j, e};
    if (!inspect(r, out)) {
      if (e.problem.empty() && !e.missing)
        e.problem = "inspect() rejected the value";
      return false;
    }
    return true;
  }
}

// ---- The fast reader: simdjson On-Demand (json.cpp) ----------------------------------
//
// It never produces error messages: any failure (or anything it cannot be sure to read as
// nlohmann would) returns false, and `from_json_line` hands the line to the nlohmann
// reader, which accepts or rejects it with today's message. So it must never accept a line
// the nlohmann reader rejects, nor read a value differently (tests/core/json_fast_test.cpp
// compares the two readers on mutated inputs).

/// One value of the document being read (a simdjson::ondemand::value, defined in json.cpp so
/// that simdjson.h stays out of this header).
struct fast_value;

bool fast_read(fast_value& v, bool& out) noexcept;
bool fast_read(fast_value& v, double& out) noexcept;
bool fast_read(fast_value& v, float& out) noexcept;
bool fast_read(fast_value& v, std::string& out);
bool fast_read(fast_value& v, event_time& out);
bool fast_read_signed(fast_value& v, std::int64_t min, std::int64_t max,
                      std::int64_t& out) noexcept;
bool fast_read_unsigned(fast_value& v, std::uint64_t max, std::uint64_t& out) noexcept;
/// True (and consumed) when `v` is `null`; false for anything else, left to be read.
bool fast_is_null(fast_value& v) noexcept;
/// Reads and checks any value, for keys the record does not have.
bool fast_skip(fast_value& v) noexcept;
/// Calls `each` on every element of an array. (Pointers: absl::FunctionRef needs complete
/// argument types, and fast_value is complete in json.cpp only.)
bool fast_for_each_element(fast_value& v, absl::FunctionRef<bool(fast_value*)> each);
/// Calls `each(key, value)` on every member of an object, in document order.
bool fast_for_each_member(fast_value& v,
                          absl::FunctionRef<bool(std::string_view, fast_value*)> each);
/// Parses `text` (an object or array; copied into a padded per-thread buffer), calls `root`
/// on its value and checks that nothing follows it.
bool fast_parse_line(std::string_view text, absl::FunctionRef<bool(fast_value*)> root);

template <class T>
bool fast_read_value(fast_value& v, T& out);

/// Reads a record's fields in one pass over the object's members, in document order: a
/// repeated key is read again, so the last one wins, as in nlohmann's object.
class fast_object_reader : public inspector_base<fast_object_reader> {
public:
  static constexpr bool is_loading = true;
  explicit fast_object_reader(fast_value& v) noexcept : v_(&v) {}

  template <class... Ts>
  bool apply_fields(std::string_view, field_ref<Ts>... refs) {
    // The object is read once; an inspect() that calls fields() twice is left to nlohmann.
    if (used_)
      return false;
    used_ = true;
    return read_members(std::index_sequence_for<Ts...>{}, refs...);
  }

  /// Whether fields() ran (the object was read and checked).
  bool used() const noexcept { return used_; }

private:
  template <std::size_t... I, class... Ts>
  bool read_members(std::index_sequence<I...>, field_ref<Ts>... refs) {
    std::array<bool, sizeof...(Ts)> seen{};
    const bool ok = fast_for_each_member(*v_, [&](std::string_view key, fast_value* val) {
      bool matched = false;
      bool good = true;
      static_cast<void>(((key == refs.name
                          && (matched = true, seen[I] = true,
                              good = fast_read_value(*val, *refs.value), true))
                         || ...));
      return matched ? good : fast_skip(*val);
    });
    return ok && ((seen[I] || absent(refs)) && ...);
  }

  template <class T>
  static bool absent(field_ref<T> ref) {
    if constexpr (is_optional_v<T>) {
      ref.value->reset();
      return true;
    } else {
      return false;
    }
  }

  fast_value* v_;
  bool used_ = false;
};

template <class T>
bool fast_read_value(fast_value& v, T& out) {
  if constexpr (std::same_as<T, bool> || std::floating_point<T> || std::same_as<T, std::string>
                || std::same_as<T, event_time>) {
    return fast_read(v, out);
  } else if constexpr (std::integral<T>) {
    if constexpr (std::is_signed_v<T>) {
      std::int64_t x = 0;
      if (!fast_read_signed(v, std::numeric_limits<T>::min(), std::numeric_limits<T>::max(), x))
        return false;
      out = static_cast<T>(x);
    } else {
      std::uint64_t x = 0;
      if (!fast_read_unsigned(v, std::numeric_limits<T>::max(), x))
        return false;
      out = static_cast<T>(x);
    }
    return true;
  } else if constexpr (is_optional_v<T>) {
    if (fast_is_null(v)) {
      out.reset();
      return true;
    }
    if (!out)
      out.emplace();
    return fast_read_value(v, *out);
  } else if constexpr (is_vector_v<T>) {
    out.clear();
    return fast_for_each_element(v, [&](fast_value* e) {
      typename T::value_type elem{};
      if (!fast_read_value(*e, elem))
        return false;
      out.push_back(std::move(elem));
      return true;
    });
  } else {
    fast_object_reader r{v};
    return inspect(r, out) && r.used();
  }
}

// ---- The writer -----------------------------------------------------------------------

/// Appends `s` as a JSON string: escaped as nlohmann escapes (ensure_ascii off), and invalid
/// UTF-8 replaced by U+FFFD as nlohmann's `error_handler_t::replace` does.
void append_json_string(std::string& out, std::string_view s);
/// Appends `x` as nlohmann writes a double (its shortest round-trip form, `null` for NaN
/// and infinities).
void append_json_double(std::string& out, double x);

template <class T>
void append_json(std::string& out, const T& x);

/// Appends a record's fields as `"name":value` pairs, comma-separated.
class json_line_writer : public inspector_base<json_line_writer> {
public:
  explicit json_line_writer(std::string& out) noexcept : out_(&out) {}

  template <class... Ts>
  bool apply_fields(std::string_view, field_ref<Ts>... refs) {
    (member(refs.name, std::as_const(*refs.value)), ...);
    return true;
  }

private:
  template <class T>
  void member(std::string_view name, const T& value) {
    if (!first_)
      out_->push_back(',');
    first_ = false;
    append_json_string(*out_, name);
    out_->push_back(':');
    append_json(*out_, value);
  }

  std::string* out_;
  bool first_ = true;
};

template <class T>
void append_json(std::string& out, const T& x) {
  static_assert(is_codec_value_v<T>, "sluice JSON codec: unsupported field type. Supported are "
                                     "bool, integers, float, double, std::string, "
                                     "sluice::event_time, std::optional and std::vector of "
                                     "those, and structs with an inspect() overload");
  if constexpr (std::same_as<T, bool>) {
    out += x ? "true" : "false";
  } else if constexpr (std::same_as<T, double>) {
    append_json_double(out, x);
  } else if constexpr (std::same_as<T, float>) {
    append_json_double(out, float_for_json(x));
  } else if constexpr (std::integral<T>) {
    char buf[24];
    // Widened: char-like types are numbers here, as in to_json_value.
    using wide = std::conditional_t<std::is_signed_v<T>, std::int64_t, std::uint64_t>;
    const auto r = std::to_chars(buf, buf + sizeof buf, static_cast<wide>(x));
    out.append(buf, static_cast<std::size_t>(r.ptr - buf));
  } else if constexpr (std::same_as<T, std::string>) {
    append_json_string(out, x);
  } else if constexpr (std::same_as<T, event_time>) {
    append_json_string(out, format_iso8601(x));
  } else if constexpr (is_optional_v<T>) {
    if (x)
      append_json(out, *x);
    else
      out += "null";
  } else if constexpr (is_vector_v<T>) {
    out.push_back('[');
    bool first = true;
    for (const typename T::value_type& elem : x) {
      if (!first)
        out.push_back(',');
      first = false;
      append_json(out, elem);
    }
    out.push_back(']');
  } else {
    out.push_back('{');
    json_line_writer w{out};
    // Writing never changes the record; the inspect() protocol just has one signature.
    static_cast<void>(inspect(w, const_cast<T&>(x)));
    out.push_back('}');
  }
}

/// The nlohmann reader of `from_json_line` (the only one before issue 28): it decides every
/// line the fast reader does not accept. Public for the tests and the benchmark.
template <class T>
  requires std::default_initializable<T>
[[nodiscard]] result<T> from_json_line_reference(std::string_view line);

/// `to_json_line` through nlohmann::ordered_json (before issue 28), for tests and benchmark.
template <class T>
std::string to_json_line_reference(const T& x) {
  return dump_json_line(to_json_value<nlohmann::ordered_json>(x));
}

} // namespace detail

/// The JSON value of `x`: an object for an inspectable struct, a scalar for a leaf type.
/// Keys of `nlohmann::json` objects are sorted; `to_json_line` keeps the declared order.
template <class T>
nlohmann::json to_json(const T& x) {
  return detail::to_json_value<nlohmann::json>(x);
}

/// `x` as one compact line of JSON, fields in declared order, without a trailing newline.
template <class T>
std::string to_json_line(const T& x) {
  std::string out;
  out.reserve(128); // most records: one allocation
  detail::append_json(out, x);
  return out;
}

/// Reads `out` from `j`.
///
/// Fails with `malformed_record` and a message naming the field path, e.g.
/// `field 'amount': expected a number, got string "abc"` or `missing field 'ts'`.
/// On failure `out` may be partly assigned.
template <class T>
[[nodiscard]] result<void> from_json(const nlohmann::json& j, T& out) {
  sluice::detail::decode_error e;
  if (!detail::json_read_value(j, out, e))
    return e.to_error();
  return {};
}

/// Parses one line of JSON text into a new `T` (which must be default-constructible).
/// Fails with `malformed_record`: `invalid JSON: <parser message>` or as `from_json`.
template <class T>
  requires std::default_initializable<T>
[[nodiscard]] result<T> from_json_line(std::string_view line) {
  if constexpr (inspectable<T> || is_vector_v<T>) {
    T out{};
    if (detail::fast_parse_line(line,
                                [&](detail::fast_value* v) { return detail::fast_read_value(*v, out); }))
      return out;
  }
  // Not read by the fast reader (an error, a leaf at the root, or an input it leaves to
  // nlohmann): nlohmann decides, with its messages.
  return detail::from_json_line_reference<T>(line);
}

template <class T>
  requires std::default_initializable<T>
result<T> detail::from_json_line_reference(std::string_view line) {
  auto parsed = detail::parse_json_text(line);
  if (!parsed)
    return std::move(parsed).error();
  T out{};
  if (auto ok = from_json(*parsed, out); !ok)
    return std::move(ok).error();
  return out;
}

} // namespace sluice::codec
