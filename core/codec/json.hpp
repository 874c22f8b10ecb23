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
#include "sluice/core/codec/inspect.hpp"
#include "sluice/core/codec/time_format.hpp"
#include "sluice/core/error.hpp"
#include "sluice/core/time.hpp"

#include <nlohmann/json.hpp>

#include <cstdint>
#include <limits>
#include <string>
#include <string_view>
#include <utility>

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
  return detail::dump_json_line(detail::to_json_value<nlohmann::ordered_json>(x));
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
  auto parsed = detail::parse_json_text(line);
  if (!parsed)
    return std::move(parsed).error();
  T out{};
  if (auto ok = from_json(*parsed, out); !ok)
    return std::move(ok).error();
  return out;
}

} // namespace sluice::codec
