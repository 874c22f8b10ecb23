#pragma once
/// One-line, bounded text of any record, for error messages, taps and logs.
///
/// ```cpp
/// record_text(txn{7, 12.5})          // {"account_id":7,"amount":12.5}
/// record_text(std::string{"a b"})    // a b
/// record_text(std::pair{1, "x"s})    // (1, x)
/// record_text(opaque{})              // <record of type opaque>
/// ```
///
/// Unlike the codecs, `record_text` accepts every type: it never fails to compile. A field
/// of an inspectable struct that no codec supports is shown as a JSON string of its own
/// record text.
#include "sluice/core/batch.hpp"
#include "sluice/core/codec/csv.hpp"
#include "sluice/core/codec/inspect.hpp"
#include "sluice/core/codec/json.hpp"

#include <cstddef>
#include <exception>
#include <functional>
#include <ostream>
#include <sstream>
#include <string>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <typeinfo>
#include <utility>

namespace sluice {

/// True when `std::ostream << x` compiles.
template <class T>
concept ostreamable = requires(std::ostream& os, const T& x) { os << x; };

/// The default bound of `record_text`, in characters.
inline constexpr std::size_t default_record_text_chars = 200;

/// `text` cut to at most `limit` characters (UTF-8 code points, never cutting inside one),
/// the last three replaced by `...` when it was cut and `limit >= 4` (Spark's `show()`).
/// `limit == 0` keeps the text whole.
inline std::string truncate_text(std::string text, std::size_t limit) {
  if (limit == 0 || text.size() <= limit) // bytes bound characters from above
    return text;
  const auto continuation = [](char c) { return (static_cast<unsigned char>(c) & 0xC0) == 0x80; };
  const std::size_t keep = limit < 4 ? limit : limit - 3;
  std::size_t chars = 0;
  std::size_t cut = text.size(); // byte where character number `keep` starts
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (continuation(text[i]))
      continue;
    if (chars == keep && cut == text.size())
      cut = i;
    if (++chars > limit)
      break;
  }
  if (chars <= limit)
    return text;
  text.resize(cut);
  if (limit >= 4)
    text += "...";
  return text;
}

namespace detail {

template <class T>
struct is_tuple_like : std::false_type {};
template <class A, class B>
struct is_tuple_like<std::pair<A, B>> : std::true_type {};
template <class... Ts>
struct is_tuple_like<std::tuple<Ts...>> : std::true_type {};

template <class T>
std::string full_record_text(const T& x);

template <class Json, class T>
Json tolerant_json(const T& x);

/// Builds a JSON object from a record's fields like the JSON codec, but accepts any field.
template <class Json>
class tolerant_json_writer : public inspector_base<tolerant_json_writer<Json>> {
public:
  Json out = Json::object();

  template <class... Ts>
  bool apply_fields(std::string_view, field_ref<Ts>... refs) {
    (out.emplace(std::string{refs.name}, tolerant_json<Json>(std::as_const(*refs.value))), ...);
    return true;
  }
};

/// The JSON codec's value of `x` where it has one; otherwise a JSON string of its text.
template <class Json, class T>
Json tolerant_json(const T& x) {
  if constexpr (is_codec_leaf_v<T>) {
    return codec::detail::to_json_value<Json>(x);
  } else if constexpr (is_optional_v<T>) {
    return x ? tolerant_json<Json>(*x) : Json(nullptr);
  } else if constexpr (is_vector_v<T>) {
    Json arr = Json::array();
    for (const typename T::value_type& elem : x)
      arr.push_back(tolerant_json<Json>(elem));
    return arr;
  } else if constexpr (inspectable<T>) {
    tolerant_json_writer<Json> w;
    // Writing never changes the record; the inspect() protocol just has one signature.
    static_cast<void>(inspect(w, const_cast<T&>(x)));
    return std::move(w.out);
  } else {
    return Json(full_record_text(x));
  }
}

/// The whole text of `x` (see `record_text`), not truncated and not forced onto one line.
template <class T>
std::string full_record_text(const T& x) {
  if constexpr (is_codec_leaf_v<T>) {
    return codec::to_cells(x).front();
  } else if constexpr (is_optional_v<T>) {
    return x ? full_record_text(*x) : std::string{"null"};
  } else if constexpr (inspectable<T> || is_vector_v<T>) {
    return codec::detail::dump_json_line(tolerant_json<nlohmann::ordered_json>(x));
  } else if constexpr (is_tuple_like<T>::value) {
    std::string out = "(";
    std::apply(
      [&](const auto&... elems) {
        bool first = true;
        ((out += (first ? "" : ", "), out += full_record_text(elems), first = false), ...);
      },
      x);
    return out + ")";
  } else if constexpr (ostreamable<T>) {
    std::ostringstream os;
    os << x;
    return std::move(os).str();
  } else {
    return "<record of type " + demangle(typeid(T)) + ">";
  }
}

/// `text` with line breaks shown as `\n` and `\r`, so it stays on one line.
inline std::string one_line(std::string text) {
  if (text.find_first_of("\r\n") == std::string::npos)
    return text;
  std::string out;
  out.reserve(text.size() + 8);
  for (char c : text) {
    if (c == '\n')
      out += "\\n";
    else if (c == '\r')
      out += "\\r";
    else
      out += c;
  }
  return out;
}

} // namespace detail

/// A one-line text of any record, at most `max_chars` characters (0: no bound).
///
/// - codec leaves (numbers, strings, `event_time`, ...) as the codec shows them in cells:
///   strings unquoted, times as ISO-8601; an empty optional as `null`;
/// - structs with `inspect()` and vectors as compact JSON in declared field order
///   (`codec::to_json_line`); fields without a codec form as JSON strings of their text;
/// - `std::pair` and `std::tuple` as `(a, b)`;
/// - types with `std::ostream << x` as they print;
/// - anything else as `<record of type NAME>`.
///
/// Line breaks are shown as `\n`; a longer text is cut (never inside a UTF-8 sequence) and
/// ends in `...`. Never throws: a failure to format (a throwing `operator<<`) gives
/// `<record of type NAME (text unavailable)>`.
template <class T>
std::string record_text(const T& x, std::size_t max_chars = default_record_text_chars) noexcept {
  try {
    return truncate_text(detail::one_line(detail::full_record_text(x)), max_chars);
  } catch (...) {
    try {
      return "<record of type " + demangle(typeid(T)) + " (text unavailable)>";
    } catch (...) {
      return {};
    }
  }
}

/// The text of record `index` of a type-erased batch (see `describe_records`).
using record_describer = std::function<std::string(const batch_base& records, std::size_t index)>;

/// A `record_describer` for batches of `T`: `record_text` of the record, at most
/// `max_chars` characters. The caller guarantees that batches hold `T` and `index` is in range.
template <class T>
record_describer describe_records(std::size_t max_chars = default_record_text_chars) {
  return [max_chars](const batch_base& records, std::size_t index) {
    return record_text(static_cast<const batch<T>&>(records).records[index], max_chars);
  };
}

} // namespace sluice
