#pragma once
/// Describe a record type once, CAF-style, and get JSON, CSV and binary encodings from it.
///
/// A record type opts in with a free function found by argument-dependent lookup:
///
/// ```cpp
/// template <class Inspector>
/// bool inspect(Inspector& f, txn& x) {
///   return f.object("txn").fields(f.field("account_id", x.account_id),
///                                 f.field("amount", x.amount));
/// }
/// ```
///
/// Every codec (JSON, CSV, binary, the field-name collector) is an inspector: it derives from
/// `inspector_base`, so `object()` and `field()` are the same everywhere, and it implements
/// `apply_fields(type_name, refs...)`, which does the codec's work on each field in order.
/// Field and type names are held as `std::string_view`: pass string literals.
#include "sluice/core/error.hpp"
#include "sluice/core/time.hpp"

#include <concepts>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

namespace sluice {

/// One named field of a record, as handed to an inspector by `f.field(name, x.member)`.
template <class T>
struct field_ref {
  std::string_view name; ///< the field's name in JSON keys and CSV headers
  T* value;              ///< the member itself; never null
};

/// What `f.object(type_name)` returns; its `fields(...)` runs the inspector over the fields.
template <class Inspector>
class object_ref {
public:
  constexpr object_ref(Inspector& f, std::string_view type_name) noexcept
    : f_(&f), type_name_(type_name) {}

  /// Visits the fields in the order given. Returns false if the inspector failed (reading
  /// only); the inspector then holds the reason.
  template <class... Ts>
  bool fields(field_ref<Ts>... refs) {
    return f_->apply_fields(type_name_, refs...);
  }

private:
  Inspector* f_;
  std::string_view type_name_;
};

/// The part every inspector shares: the `object()` / `field()` vocabulary users write.
template <class Derived>
class inspector_base {
public:
  /// True for inspectors that decode (fill the object), false for those that only read it.
  /// An `inspect` whose codec form is not simply its members (a type that encodes a copy
  /// of part of itself) fills its members only when loading; readers redeclare it (CAF's
  /// `Inspector::is_loading`).
  static constexpr bool is_loading = false;

  /// Starts describing an object named `type_name` (used in messages, not on the wire).
  object_ref<Derived> object(std::string_view type_name) noexcept {
    return {static_cast<Derived&>(*this), type_name};
  }

  /// Names one member of the object.
  template <class T>
  field_ref<T> field(std::string_view name, T& value) noexcept {
    return {name, &value};
  }
};

namespace detail {

/// Collects the top-level field names of a record, in declared order.
class field_name_collector : public inspector_base<field_name_collector> {
public:
  explicit field_name_collector(std::vector<std::string>& out) noexcept : out_(&out) {}

  template <class... Ts>
  bool apply_fields(std::string_view, field_ref<Ts>... refs) {
    (out_->emplace_back(refs.name), ...);
    return true;
  }

private:
  std::vector<std::string>* out_;
};

} // namespace detail

/// True when `T` has an `inspect(f, x)` overload that ADL finds. The user's `inspect` is a
/// template over the inspector, so probing it with one inspector stands for all of them.
template <class T>
concept inspectable = requires(detail::field_name_collector& f, T& x) {
  { inspect(f, x) } -> std::convertible_to<bool>;
};

/// True for the types every codec encodes directly: `bool`, every integral type, `float`,
/// `double`, `std::string` and `sluice::event_time`.
template <class T>
struct is_codec_leaf
  : std::bool_constant<std::integral<T> || std::same_as<T, float> || std::same_as<T, double>
                       || std::same_as<T, std::string> || std::same_as<T, event_time>> {};

template <class T>
inline constexpr bool is_codec_leaf_v = is_codec_leaf<T>::value;

/// A leaf type (see `is_codec_leaf`).
template <class T>
concept codec_leaf = is_codec_leaf_v<T>;

template <class T>
struct is_optional : std::false_type {};
template <class T>
struct is_optional<std::optional<T>> : std::true_type {};
template <class T>
inline constexpr bool is_optional_v = is_optional<T>::value;

template <class T>
struct is_vector : std::false_type {};
template <class T>
struct is_vector<std::vector<T>> : std::true_type {};
template <class T>
inline constexpr bool is_vector_v = is_vector<T>::value;

/// True for every type a codec can handle: leaves, inspectable structs, and `std::optional`
/// and `std::vector` of those. CSV supports a subset (no vectors).
template <class T>
struct is_codec_value : std::bool_constant<is_codec_leaf_v<T> || inspectable<T>> {};
template <class T>
struct is_codec_value<std::optional<T>> : is_codec_value<T> {};
template <class T>
struct is_codec_value<std::vector<T>> : is_codec_value<T> {};
template <class T>
inline constexpr bool is_codec_value_v = is_codec_value<T>::value;

/// The names of `T`'s top-level fields, in the order `inspect` lists them.
///
/// `T` must be default-constructible: `inspect` needs an object to name members of.
template <inspectable T>
  requires std::default_initializable<T>
std::vector<std::string> field_names() {
  std::vector<std::string> out;
  detail::field_name_collector f{out};
  T probe{};
  static_cast<void>(inspect(f, probe));
  return out;
}

/// A short name of an integer type for messages ("int8", "uint64", ...).
template <std::integral T>
constexpr std::string_view integer_type_name() noexcept {
  if constexpr (std::same_as<T, bool>) {
    return "bool";
  } else if constexpr (std::is_signed_v<T>) {
    switch (sizeof(T)) {
      case 1: return "int8";
      case 2: return "int16";
      case 4: return "int32";
      default: return "int64";
    }
  } else {
    switch (sizeof(T)) {
      case 1: return "uint8";
      case 2: return "uint16";
      case 4: return "uint32";
      default: return "uint64";
    }
  }
}

namespace detail {

/// Where and why decoding failed. The path is only built on failure: each enclosing level
/// appends its field name, so successful decoding never allocates path strings.
struct decode_error {
  std::string problem;           ///< what is wrong with the value
  std::vector<std::string> path; ///< innermost first: {"[2]", "tags", "outer"}
  bool missing = false;          ///< the innermost path element is a missing field

  /// Records `what` as the problem; returns false so callers can `return e.fail(...)`.
  bool fail(std::string what) {
    problem = std::move(what);
    return false;
  }

  /// Records that the field `name` is absent.
  bool fail_missing(std::string_view name) {
    missing = true;
    path.emplace_back(name);
    return false;
  }

  /// The dotted path, outermost first: "outer.tags[2]".
  std::string joined_path() const {
    std::string out;
    for (auto i = path.rbegin(); i != path.rend(); ++i) {
      if (!out.empty() && !i->starts_with('['))
        out += '.';
      out += *i;
    }
    return out;
  }

  /// The final `malformed_record` error: "field 'outer.ts': ..." or "missing field 'ts'".
  error to_error() const {
    if (missing)
      return make_error(error_code::malformed_record, "missing field '" + joined_path() + "'");
    if (path.empty())
      return make_error(error_code::malformed_record, problem);
    return make_error(error_code::malformed_record,
                      "field '" + joined_path() + "': " + problem);
  }
};

} // namespace detail

} // namespace sluice
