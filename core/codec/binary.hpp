#pragma once
/// Compact binary encoding of records described by `inspect()`, for checkpoints and the wire.
///
/// Layout, all little-endian regardless of the host: `bool` is one byte (0 or 1); an integer
/// is its `sizeof` bytes; `float`/`double` are their IEEE-754 bits; `event_time` is 8 bytes of
/// microseconds since the epoch; `std::string` is a varint length and the bytes; `std::vector`
/// is a varint count and the elements; `std::optional` is a tag byte (0 or 1) and the value if
/// present; a struct is its fields in declared order, with no names or tags. The format
/// carries no schema: reader and writer must agree on the type, so a changed `inspect()`
/// needs a new checkpoint version. Varints are LEB128 (7 bits a byte, low bits first).
#include "sluice/core/codec/inspect.hpp"
#include "sluice/core/error.hpp"
#include "sluice/core/time.hpp"

#include <algorithm>
#include <bit>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <span>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

namespace sluice::codec {

namespace detail {

using sluice::detail::decode_error;

/// Appends `v` as a LEB128 varint (1 to 10 bytes).
inline void put_varint(std::vector<std::byte>& out, std::uint64_t v) {
  while (v >= 0x80) {
    out.push_back(static_cast<std::byte>((v & 0x7f) | 0x80));
    v >>= 7;
  }
  out.push_back(static_cast<std::byte>(v));
}

/// Appends the low `sizeof(U)` bytes of `v`, least significant first.
template <std::unsigned_integral U>
void put_fixed(std::vector<std::byte>& out, U v) {
  if constexpr (std::endian::native == std::endian::little) {
    // The layout is little-endian: on such hosts the bytes are the value's own.
    const auto n = out.size();
    out.resize(n + sizeof(U));
    std::memcpy(out.data() + n, &v, sizeof(U));
    return;
  }
  for (std::size_t i = 0; i < sizeof(U); ++i) {
    out.push_back(static_cast<std::byte>(v & 0xff));
    if constexpr (sizeof(U) > 1)
      v >>= 8;
  }
}

inline bool truncated(std::size_t needed, std::size_t left, decode_error& e) {
  return e.fail("truncated input: needed " + std::to_string(needed) + " bytes, "
                + std::to_string(left) + " left");
}

/// Reads a LEB128 varint of at most 10 bytes that fits in 64 bits.
inline bool get_varint(std::span<const std::byte>& in, std::uint64_t& out, decode_error& e) {
  std::uint64_t v = 0;
  for (std::size_t i = 0; i < 10; ++i) {
    if (i >= in.size())
      return truncated(i + 1, in.size(), e);
    const auto b = std::to_integer<std::uint64_t>(in[i]);
    if (i == 9 && b > 1)
      return e.fail("varint does not fit in 64 bits");
    v |= (b & 0x7f) << (7 * i);
    if ((b & 0x80) == 0) {
      in = in.subspan(i + 1);
      out = v;
      return true;
    }
  }
  return e.fail("varint longer than 10 bytes");
}

template <std::unsigned_integral U>
bool get_fixed(std::span<const std::byte>& in, U& out, decode_error& e) {
  if (in.size() < sizeof(U))
    return truncated(sizeof(U), in.size(), e);
  U v = 0;
  if constexpr (std::endian::native == std::endian::little) {
    std::memcpy(&v, in.data(), sizeof(U)); // the layout's bytes are the value's own
  } else {
    for (std::size_t i = 0; i < sizeof(U); ++i)
      v |= static_cast<U>(std::to_integer<U>(in[i]) << (8 * i));
  }
  in = in.subspan(sizeof(U));
  out = v;
  return true;
}

/// An unsigned type of the same size as `T` (`bool` is stored as one byte).
template <class T>
using binary_bits_t = std::conditional_t<
  sizeof(T) == 1, std::uint8_t,
  std::conditional_t<sizeof(T) == 2, std::uint16_t,
                     std::conditional_t<sizeof(T) == 4, std::uint32_t, std::uint64_t>>>;

template <class T>
void binary_write(std::vector<std::byte>& out, const T& x);

/// A number whose encoding is its own bytes on this host: little-endian integers (not
/// `bool`, whose byte is checked when read), IEEE-754 floats and `event_time`.
template <class T, class U = std::remove_cv_t<T>>
inline constexpr bool raw_scalar_v =
  std::endian::native == std::endian::little &&
  ((std::integral<U> && !std::same_as<U, bool>) ||
   (std::floating_point<U> && std::numeric_limits<U>::is_iec559) ||
   (std::same_as<U, event_time> && sizeof(event_time) == 8));

/// Finds out whether a record's encoding is exactly its memory: `inspect` names members
/// that are raw scalars or such records, in memory order, with no gap or padding between
/// them and none at the end. Such a record is written with one copy instead of field by
/// field (the bytes are the same).
class layout_probe : public inspector_base<layout_probe> {
public:
  explicit layout_probe(const void* base) noexcept
    : base_(static_cast<const std::byte*>(base)) {}

  template <class... Ts>
  bool apply_fields(std::string_view, field_ref<Ts>... refs) {
    (visit(refs.value), ...);
    return true;
  }
  /// Whether every field so far was flat and they cover `size` bytes exactly.
  bool flat(std::size_t size) const noexcept { return flat_ && next_ == size; }

private:
  template <class F>
  void visit(F* field) {
    if (!flat_)
      return;
    const auto* at = reinterpret_cast<const std::byte*>(field);
    if (at != base_ + next_) {
      flat_ = false; // out of order, padding before it, or not a member at all
      return;
    }
    if constexpr (raw_scalar_v<F>) {
      next_ += sizeof(F);
    } else if constexpr (inspectable<F> && std::is_trivially_copyable_v<F>) {
      const auto start = next_;
      static_cast<void>(inspect(*this, *field));
      flat_ = flat_ && next_ == start + sizeof(F); // no padding at the nested end
    } else {
      flat_ = false;
    }
  }

  const std::byte* base_;
  std::size_t next_ = 0;
  bool flat_ = true;
};

/// Whether `T`'s encoding is its memory (see `layout_probe`); probed once per type, on a
/// zeroed object and on one whose every byte is 1. Like every `inspect` in this code base,
/// the function must name the same members whatever their values: one that names a
/// temporary for some values only would be judged by these two.
template <class T>
bool flat_layout() {
  if constexpr (!inspectable<T> || !std::is_trivially_copyable_v<T> ||
                !std::default_initializable<T>) {
    return false;
  } else {
    static const bool flat = [] {
      auto probe_with = [](unsigned char byte) {
        T probe{};
        std::memset(static_cast<void*>(&probe), byte, sizeof(T));
        layout_probe f{&probe};
        static_cast<void>(inspect(f, probe));
        return f.flat(sizeof(T));
      };
      return probe_with(0) && probe_with(1);
    }();
    return flat;
  }
}

/// Whether every `T` encodes to exactly `sizeof(T)` bytes (a raw number or a flat record).
template <class T>
bool fixed_size() {
  if constexpr (raw_scalar_v<T>)
    return true;
  else if constexpr (inspectable<T>)
    return flat_layout<T>();
  else
    return false;
}

/// Appends `n` bytes from `p`.
inline void put_raw(std::vector<std::byte>& out, const void* p, std::size_t n) {
  const auto* bytes = static_cast<const std::byte*>(p);
  out.insert(out.end(), bytes, bytes + n);
}

/// Appends a record's fields in declared order.
class binary_writer : public inspector_base<binary_writer> {
public:
  explicit binary_writer(std::vector<std::byte>& out) noexcept : out_(&out) {}

  template <class... Ts>
  bool apply_fields(std::string_view, field_ref<Ts>... refs) {
    (binary_write(*out_, std::as_const(*refs.value)), ...);
    return true;
  }

private:
  std::vector<std::byte>* out_;
};

template <class T>
void binary_write(std::vector<std::byte>& out, const T& x) {
  static_assert(is_codec_value_v<T>, "sluice binary codec: unsupported field type. Supported "
                                     "are bool, integers, float, double, std::string, "
                                     "sluice::event_time, std::optional and std::vector of "
                                     "those, and structs with an inspect() overload");
  if constexpr (std::same_as<T, bool>) {
    out.push_back(static_cast<std::byte>(x ? 1 : 0));
  } else if constexpr (std::integral<T>) {
    static_assert(sizeof(T) <= 8, "sluice binary codec: integers wider than 64 bits");
    put_fixed(out, static_cast<binary_bits_t<T>>(x));
  } else if constexpr (std::floating_point<T>) {
    put_fixed(out, std::bit_cast<binary_bits_t<T>>(x));
  } else if constexpr (std::same_as<T, event_time>) {
    put_fixed(out, static_cast<std::uint64_t>(x.time_since_epoch().count()));
  } else if constexpr (std::same_as<T, std::string>) {
    put_varint(out, x.size());
    const auto* bytes = reinterpret_cast<const std::byte*>(x.data());
    out.insert(out.end(), bytes, bytes + x.size());
  } else if constexpr (is_optional_v<T>) {
    out.push_back(static_cast<std::byte>(x ? 1 : 0));
    if (x)
      binary_write(out, *x);
  } else if constexpr (is_vector_v<T>) {
    put_varint(out, x.size());
    using E = typename T::value_type;
    if constexpr (raw_scalar_v<E>) {
      put_raw(out, x.data(), x.size() * sizeof(E));
      return;
    } else if constexpr (inspectable<E>) {
      if (flat_layout<E>()) {
        put_raw(out, x.data(), x.size() * sizeof(E));
        return;
      }
    }
    for (const E& elem : x)
      binary_write(out, elem);
  } else {
    if (flat_layout<T>()) {
      put_raw(out, &x, sizeof(T));
      return;
    }
    binary_writer w{out};
    // Writing never changes the record; the inspect() protocol just has one signature.
    static_cast<void>(inspect(w, const_cast<T&>(x)));
  }
}

template <class T>
bool binary_read(std::span<const std::byte>& in, T& x, decode_error& e);

/// Reads a record's fields in declared order.
class binary_reader : public inspector_base<binary_reader> {
public:
  static constexpr bool is_loading = true;
  binary_reader(std::span<const std::byte>& in, decode_error& e) noexcept : in_(&in), e_(&e) {}

  template <class... Ts>
  bool apply_fields(std::string_view, field_ref<Ts>... refs) {
    return (read_field(refs) && ...);
  }

private:
  template <class T>
  bool read_field(field_ref<T> ref) {
    if (!binary_read(*in_, *ref.value, *e_)) {
      e_->path.emplace_back(ref.name);
      return false;
    }
    return true;
  }

  std::span<const std::byte>* in_;
  decode_error* e_;
};

/// Reads a tag byte that must be 0 or 1 (bools and optional tags).
inline bool get_flag(std::span<const std::byte>& in, std::string_view what, bool& out,
                     decode_error& e) {
  std::uint8_t b = 0;
  if (!get_fixed(in, b, e))
    return false;
  if (b > 1) {
    std::string msg = "invalid ";
    msg.append(what);
    msg += " byte ";
    msg += std::to_string(b);
    return e.fail(std::move(msg));
  }
  out = b == 1;
  return true;
}

template <class T>
bool binary_read(std::span<const std::byte>& in, T& x, decode_error& e) {
  static_assert(is_codec_value_v<T>, "sluice binary codec: unsupported field type. Supported "
                                     "are bool, integers, float, double, std::string, "
                                     "sluice::event_time, std::optional and std::vector of "
                                     "those, and structs with an inspect() overload");
  if constexpr (std::same_as<T, bool>) {
    return get_flag(in, "bool", x, e);
  } else if constexpr (std::integral<T> || std::floating_point<T>) {
    binary_bits_t<T> bits = 0;
    if (!get_fixed(in, bits, e))
      return false;
    if constexpr (std::floating_point<T>)
      x = std::bit_cast<T>(bits);
    else
      x = static_cast<T>(bits);
    return true;
  } else if constexpr (std::same_as<T, event_time>) {
    std::uint64_t bits = 0;
    if (!get_fixed(in, bits, e))
      return false;
    x = event_time{std::chrono::microseconds{static_cast<std::int64_t>(bits)}};
    return true;
  } else if constexpr (std::same_as<T, std::string>) {
    std::uint64_t len = 0;
    if (!get_varint(in, len, e))
      return false;
    if (len > in.size())
      return truncated(len, in.size(), e);
    x.assign(reinterpret_cast<const char*>(in.data()), static_cast<std::size_t>(len));
    in = in.subspan(static_cast<std::size_t>(len));
    return true;
  } else if constexpr (is_optional_v<T>) {
    bool present = false;
    if (!get_flag(in, "optional tag", present, e))
      return false;
    if (!present) {
      x.reset();
      return true;
    }
    if (!x)
      x.emplace();
    return binary_read(in, *x, e);
  } else if constexpr (is_vector_v<T>) {
    std::uint64_t count = 0;
    if (!get_varint(in, count, e))
      return false;
    x.clear();
    using E = typename T::value_type;
    // Raw numbers and flat records (see `layout_probe`: no bool, so every byte pattern is a
    // value) are their bytes: one copy for all of them, as `binary_write` writes them. Short
    // input takes the element-by-element path below, which names the element that is cut.
    if constexpr (!std::same_as<E, bool> && std::is_trivially_copyable_v<E> &&
                  std::default_initializable<E>) {
      if ((raw_scalar_v<E> || fixed_size<E>()) && count <= in.size() / sizeof(E)) {
        const auto n = static_cast<std::size_t>(count);
        x.resize(n);
        if (n != 0)
          std::memcpy(static_cast<void*>(x.data()), in.data(), n * sizeof(E));
        in = in.subspan(n * sizeof(E));
        return true;
      }
    }
    // A corrupt count must not trigger a huge allocation: every element takes at least one
    // byte unless it is an empty struct, so the input size bounds the reservation.
    x.reserve(static_cast<std::size_t>(std::min<std::uint64_t>(count, in.size())));
    for (std::uint64_t i = 0; i < count; ++i) {
      typename T::value_type elem{};
      if (!binary_read(in, elem, e)) {
        e.path.push_back("[" + std::to_string(i) + "]");
        return false;
      }
      x.push_back(std::move(elem));
    }
    return true;
  } else {
    binary_reader r{in, e};
    if (!inspect(r, x)) {
      if (e.problem.empty())
        e.problem = "inspect() rejected the value";
      return false;
    }
    return true;
  }
}

} // namespace detail

/// Appends the binary encoding of `x` to `out`.
template <class T>
void to_binary(const T& x, std::vector<std::byte>& out) {
  detail::binary_write(out, x);
}

/// Reads `out` from the front of `in` and advances `in` past the bytes consumed.
///
/// Fails with `malformed_record` ("truncated input: ...", "invalid bool byte 7", ...,
/// prefixed by the field path). On failure `in` is left unchanged, so a caller reading from
/// a stream can retry once more bytes arrive; `out` may be partly assigned.
template <class T>
[[nodiscard]] result<void> from_binary(std::span<const std::byte>& in, T& out) {
  std::span<const std::byte> rest = in;
  sluice::detail::decode_error e;
  if (!detail::binary_read(rest, out, e))
    return e.to_error();
  in = rest;
  return {};
}

} // namespace sluice::codec
