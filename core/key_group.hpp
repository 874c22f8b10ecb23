#pragma once
/// Key hashing and key groups (Flink's "max parallelism").
///
/// A key is hashed into one of `max_key_groups` key groups; each parallel instance of a
/// keyed operator owns a contiguous range of them. State and (later) checkpoints are kept
/// per key group, so a job can restart with a different parallelism.
// Inlined: a key is hashed once or twice per record on keyed edges.
#define XXH_INLINE_ALL
#include <xxhash.h>

#include <concepts>
#include <cstdint>
#include <string>
#include <string_view>
#include <type_traits>

namespace sluice {

/// Default number of key groups.
inline constexpr int default_max_key_groups = 128;

/// Hash of a key. Specialize `key_hash<K>` for your own key types; the default covers
/// integers, enums, strings and trivially copyable structs without padding surprises.
/// MurmurHash3's 64-bit finalizer: a full-avalanche mix of an integer key.
constexpr std::uint64_t mix64(std::uint64_t k) noexcept {
  k ^= k >> 33;
  k *= 0xff51afd7ed558ccdULL;
  k ^= k >> 33;
  k *= 0xc4ceb9fe1a85ec53ULL;
  k ^= k >> 33;
  return k;
}

/// Hash of a key. It decides the key group, so it must be stable across processes and
/// versions (checkpoints depend on it).
template <class K, class = void>
struct key_hash {
  std::uint64_t operator()(const K& key) const noexcept {
    static_assert(std::is_trivially_copyable_v<K>,
                  "sluice::key_hash<K>: specialize key_hash for this key type");
    return XXH3_64bits(&key, sizeof(K));
  }
};

template <class K>
struct key_hash<K, std::enable_if_t<std::is_integral_v<K> || std::is_enum_v<K>>> {
  std::uint64_t operator()(K key) const noexcept {
    return mix64(static_cast<std::uint64_t>(key));
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

/// The key group of a key hash.
constexpr int key_group_of(std::uint64_t hash, int max_key_groups) noexcept {
  return static_cast<int>(hash % static_cast<std::uint64_t>(max_key_groups));
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
