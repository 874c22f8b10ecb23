#pragma once
/// Key hashing and key groups (Flink's "max parallelism").
///
/// A key is hashed into one of `max_key_groups` key groups; each parallel instance of a
/// keyed operator owns a contiguous range of them. State and checkpoints are kept per key
/// group, so a job can restart with a different parallelism.
///
/// Equal keys must hash alike, or one key's records would land in two key groups (two
/// instances, two states). So a key is hashed by its value, never by bytes that are not
/// part of it:
/// - integers, enums and `bool`: a 64-bit mix of the value;
/// - `std::string` and `std::string_view`: XXH3 of the characters;
/// - `float` and `double`: XXH3 of the bits, with `-0.0` hashed as `+0.0` and every NaN as
///   one canonical NaN (see "NaN keys" in docs/api.md: NaN never equals itself, so a NaN
///   key never finds its state again);
/// - a trivially copyable struct whose every byte is part of its value
///   (`std::has_unique_object_representations`: no padding, no floating-point member):
///   XXH3 of its bytes;
/// - any other struct with an `inspect()` overload (core/codec/inspect.hpp): hashed field
///   by field, in the order `inspect` names them, floats as above and strings, optionals and
///   vectors with their lengths. For a struct without padding this is XXH3 of the same bytes
///   as above, so such keys keep their key groups.
/// Anything else (padding without `inspect`, `long double`, `std::pair`, ...) is refused at
/// compile time: give the type an `inspect()` or specialize `key_hash<K>`.
///
/// The hash decides the key group, so it must be stable across processes and versions:
/// checkpoints depend on it. The rules above hash every key that the previous rules (raw
/// bytes for trivially copyable keys) accepted to the same value, except `-0.0`, NaNs other
/// than the canonical one, and structs with padding, whose old hash depended on garbage.
// Inlined: a key is hashed once or twice per record on keyed edges.
#define XXH_INLINE_ALL
#include <xxhash.h>

#include "sluice/core/codec/inspect.hpp"
#include "sluice/core/time.hpp"

#include <bit>
#include <concepts>
#include <cstdint>
#include <cstring>
#include <limits>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

namespace sluice {

/// Default number of key groups.
inline constexpr int default_max_key_groups = 128;

/// MurmurHash3's 64-bit finalizer: a full-avalanche mix of an integer key.
constexpr std::uint64_t mix64(std::uint64_t k) noexcept {
  k ^= k >> 33;
  k *= 0xff51afd7ed558ccdULL;
  k ^= k >> 33;
  k *= 0xc4ceb9fe1a85ec53ULL;
  k ^= k >> 33;
  return k;
}

namespace detail {

/// Keys whose bytes are their value: hashed as they lie in memory.
template <class K>
concept key_hashed_by_bytes = std::has_unique_object_representations_v<K>;

/// Keys hashed field by field through their `inspect()`.
template <class K>
concept key_hashed_by_fields = !key_hashed_by_bytes<K> && inspectable<K>;

/// `x` with `-0.0` made `+0.0` and every NaN the canonical quiet NaN: equal values (by
/// `==`, plus NaN with NaN) get equal bits.
template <std::floating_point F>
constexpr F canonical_float(F x) noexcept {
  if (x != x)
    return std::numeric_limits<F>::quiet_NaN();
  if (x == F{0})
    return F{0};
  return x;
}

/// Streams the canonical bytes of a key's fields into XXH3 (see the file comment).
class key_hash_writer : public inspector_base<key_hash_writer> {
public:
  key_hash_writer() noexcept { XXH3_64bits_reset(&state_); }

  template <class... Ts>
  bool apply_fields(std::string_view, field_ref<Ts>... refs) {
    (write(std::as_const(*refs.value)), ...);
    return true;
  }

  template <class T>
  void write(const T& x) noexcept {
    if constexpr (std::same_as<T, bool>) {
      const unsigned char b = x ? 1 : 0;
      bytes(&b, 1);
    } else if constexpr (std::floating_point<T>) {
      static_assert(sizeof(T) <= 8,
                    "sluice::key_hash: long double fields have padding; use double");
      const T c = canonical_float(x);
      bytes(&c, sizeof(T));
    } else if constexpr (std::same_as<T, std::string>) {
      length(x.size());
      bytes(x.data(), x.size());
    } else if constexpr (is_optional_v<T>) {
      write(x.has_value());
      if (x)
        write(*x);
    } else if constexpr (is_vector_v<T>) {
      length(x.size());
      for (const auto& e : x)
        write(e);
    } else if constexpr (key_hashed_by_bytes<T>) {
      bytes(&x, sizeof(T)); // integers, enums, event_time, padding-free structs
    } else {
      static_assert(inspectable<T>,
                    "sluice::key_hash: a field of this key has padding or floating-point "
                    "members and no inspect(); give it an inspect() overload");
      // Hashing never changes the key; the inspect() protocol just has one signature.
      static_cast<void>(inspect(*this, const_cast<T&>(x)));
    }
  }

  std::uint64_t digest() const noexcept { return XXH3_64bits_digest(&state_); }

private:
  void bytes(const void* p, std::size_t n) noexcept { XXH3_64bits_update(&state_, p, n); }
  void length(std::size_t n) noexcept {
    const auto v = static_cast<std::uint64_t>(n);
    bytes(&v, sizeof v);
  }

  XXH3_state_t state_;
};

} // namespace detail

/// Hash of a key. It decides the key group, so it must be stable across processes and
/// versions (checkpoints depend on it). Specialize `key_hash<K>` for key types the rules of
/// the file comment do not cover; a specialization must hash equal keys alike.
template <class K, class = void>
struct key_hash {
  /// Marks the default rules (`is_hashable_key_v` tells a specialization from them).
  static constexpr bool sluice_default_rules = true;

  std::uint64_t operator()(const K& key) const noexcept {
    static_assert(detail::key_hashed_by_bytes<K> || detail::key_hashed_by_fields<K>,
                  "sluice::key_hash<K>: K has padding bytes or floating-point members (or is "
                  "not trivially copyable), so hashing its bytes would send equal keys to "
                  "different key groups. Give K an inspect() overload naming its fields "
                  "(core/codec/inspect.hpp), so it is hashed field by field, or specialize "
                  "sluice::key_hash<K>");
    if constexpr (detail::key_hashed_by_bytes<K>) {
      return XXH3_64bits(&key, sizeof(K));
    } else if constexpr (detail::key_hashed_by_fields<K>) {
      detail::key_hash_writer w;
      w.write(key);
      return w.digest();
    } else {
      return 0;
    }
  }
};

template <class K>
struct key_hash<K, std::enable_if_t<std::is_integral_v<K> || std::is_enum_v<K>>> {
  std::uint64_t operator()(K key) const noexcept {
    return mix64(static_cast<std::uint64_t>(key));
  }
};

/// `float` and `double`: the bits, `-0.0` as `+0.0`, every NaN as one.
template <class K>
struct key_hash<K, std::enable_if_t<std::is_same_v<K, float> || std::is_same_v<K, double>>> {
  std::uint64_t operator()(K key) const noexcept {
    const K c = detail::canonical_float(key);
    return XXH3_64bits(&c, sizeof(K));
  }
};

template <>
struct key_hash<std::string> {
  std::uint64_t operator()(const std::string& key) const noexcept {
    return XXH3_64bits(key.data(), key.size());
  }
};

template <>
struct key_hash<std::string_view> {
  std::uint64_t operator()(std::string_view key) const noexcept {
    return XXH3_64bits(key.data(), key.size());
  }
};

/// True when `key_hash<K>` can hash `K`: a specialization, or a type the default rules
/// accept (see the file comment). `key_by` requires it.
template <class K>
inline constexpr bool is_hashable_key_v = [] {
  if constexpr (requires { key_hash<K>::sluice_default_rules; })
    return detail::key_hashed_by_bytes<K> || detail::key_hashed_by_fields<K>;
  else
    return requires(const K& k) {
      { key_hash<K>{}(k) } -> std::convertible_to<std::uint64_t>;
    };
}();

/// The key group of a key hash. A power-of-two count (the default 128) takes a mask
/// instead of the division: the same result, but a 64-bit `div` costs 30-90 cycles and ran
/// twice per record on keyed edges (router and operator; BENCHMARKS.md, issue 28).
constexpr int key_group_of(std::uint64_t hash, int max_key_groups) noexcept {
  const auto m = static_cast<std::uint64_t>(max_key_groups);
  if ((m & (m - 1)) == 0) [[likely]]
    return static_cast<int>(hash & (m - 1));
  return static_cast<int>(hash % m);
}

/// The instance (of `parallelism`) that owns `key_group` (Flink's assignment formula).
constexpr int instance_of_key_group(int key_group, int max_key_groups, int parallelism) noexcept {
  return key_group * parallelism / max_key_groups;
}

/// The first key group owned by `instance`, and one past the last.
struct key_group_range {
  int first = 0;
  int last = 0; ///< exclusive
  constexpr int size() const noexcept { return last - first; }
  constexpr bool contains(int kg) const noexcept { return kg >= first && kg < last; }
};

constexpr key_group_range key_groups_of_instance(int instance, int max_key_groups,
                                                 int parallelism) noexcept {
  // Inverse of instance_of_key_group: the smallest kg with kg * p / m >= instance.
  auto first = (instance * max_key_groups + parallelism - 1) / parallelism;
  auto last = ((instance + 1) * max_key_groups + parallelism - 1) / parallelism;
  return {first, last};
}

} // namespace sluice
