#pragma once
/// Encoding operator state for checkpoints with the binary record codec
/// (core/codec/binary.hpp): keys, accumulators and values need `inspect()` or must be
/// codec leaves (numbers, strings, event_time, vectors and optionals of those). Hash maps of
/// such keys and values (the payload of `map_state`) are encoded here, as a count and the
/// pairs, because the record codec has no map type.
#include "core/codec/binary.hpp"
#include "core/error.hpp"
#include "operators/keyed_state.hpp"
#include "operators/operator.hpp"

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <unordered_map>
#include <vector>

namespace sluice::detail {

template <class T>
struct is_unordered_map : std::false_type {};
template <class K, class V, class H, class E, class A>
struct is_unordered_map<std::unordered_map<K, V, H, E, A>> : std::true_type {};

template <class T>
struct snapshottable : std::bool_constant<sluice::is_codec_value_v<T>> {};
template <class K, class V, class H, class E, class A>
struct snapshottable<std::unordered_map<K, V, H, E, A>>
  : std::bool_constant<snapshottable<K>::value && snapshottable<V>::value> {};

/// True when `T` can be written to a checkpoint.
template <class T>
inline constexpr bool snapshottable_v = snapshottable<T>::value;

class state_encoder {
public:
  template <class T>
  void put(const T& x) {
    if constexpr (is_unordered_map<T>::value) {
      put(static_cast<std::uint64_t>(x.size()));
      for (const auto& [k, v] : x) {
        put(k);
        put(v);
      }
    } else {
      codec::to_binary(x, bytes_);
    }
  }
  std::string take() {
    std::string out(reinterpret_cast<const char*>(bytes_.data()), bytes_.size());
    bytes_.clear();
    return out;
  }

private:
  std::vector<std::byte> bytes_;
};

class state_decoder {
public:
  explicit state_decoder(std::string_view bytes)
    : in_(reinterpret_cast<const std::byte*>(bytes.data()), bytes.size()) {}
  template <class T>
  [[nodiscard]] result<void> get(T& x) {
    if constexpr (is_unordered_map<T>::value) {
      std::uint64_t n = 0;
      if (auto ok = get(n); !ok)
        return ok;
      // A corrupt count must not loop for ages: every pair takes at least one byte, except
      // in a map whose key type encodes to nothing, which holds at most one pair.
      if (n > 1 && n > in_.size())
        return make_error(error_code::malformed_record,
                          "map of " + std::to_string(n) + " entries in " +
                            std::to_string(in_.size()) + " bytes");
      x.clear();
      for (std::uint64_t i = 0; i < n; ++i) {
        typename T::key_type k{};
        typename T::mapped_type v{};
        if (auto ok = get(k); !ok)
          return ok;
        if (auto ok = get(v); !ok)
          return ok;
        x.insert_or_assign(std::move(k), std::move(v));
      }
      return {};
    } else {
      return codec::from_binary(in_, x);
    }
  }
  bool done() const noexcept { return in_.empty(); }
  std::size_t remaining() const noexcept { return in_.size(); }

private:
  std::span<const std::byte> in_;
};

/// The error for state that has no codec form.
inline error not_snapshottable(const std::string& op) {
  return make_error(error_code::invalid_graph,
                    "operator '" + op + "': its state types cannot be checkpointed; give "
                    "the key, value or accumulator types an inspect() function");
}

/// Restores every key group of `range` that has a piece: `restore_group(g, bytes)` decodes
/// one. A failure names `what` (e.g. "window 'counts'") and the key group.
template <class F>
result<void> restore_key_groups(key_group_range range, snapshot_reader& r, const std::string& what,
                                F restore_group) {
  for (int g = range.first; g < range.last; ++g) {
    auto piece = r.get(key_group_piece(g));
    if (!piece)
      return std::move(piece).error();
    if (!*piece)
      continue;
    if (auto ok = restore_group(g, std::string_view{**piece}); !ok)
      return make_error(error_code::io_error, what + ", key group " + std::to_string(g) +
                                                ": unreadable state: " + ok.error().message);
  }
  return {};
}

/// Writes a keyed table, one piece per non-empty key group: a count, then key and value
/// pairs.
template <class K, class V>
result<void> snapshot_table(const keyed_state_table<K, V>& table, snapshot_writer& w) {
  state_encoder enc;
  for (int g = table.range().first; g < table.range().last; ++g) {
    const auto& map = table.group(g);
    if (map.empty())
      continue;
    enc.put(static_cast<std::uint64_t>(map.size()));
    for (const auto& [key, value] : map) {
      enc.put(key);
      enc.put(value);
    }
    if (auto r = w.put(key_group_piece(g), enc.take()); !r)
      return r;
  }
  return {};
}

/// Reads the key groups of `table`'s range back (any parallelism wrote them).
template <class K, class V>
result<void> restore_table(keyed_state_table<K, V>& table, snapshot_reader& r,
                           const std::string& op) {
  for (int g = table.range().first; g < table.range().last; ++g) {
    auto piece = r.get(key_group_piece(g));
    if (!piece)
      return std::move(piece).error();
    if (!*piece)
      continue;
    state_decoder dec{**piece};
    std::uint64_t n = 0;
    auto bad = [&](const error& e) {
      return make_error(error_code::io_error, "operator '" + op + "', key group " +
                                                std::to_string(g) + ": unreadable state: " +
                                                e.message);
    };
    if (auto ok = dec.get(n); !ok)
      return bad(ok.error());
    auto& map = table.group(g);
    for (std::uint64_t i = 0; i < n; ++i) {
      K key{};
      V value{};
      if (auto ok = dec.get(key); !ok)
        return bad(ok.error());
      if (auto ok = dec.get(value); !ok)
        return bad(ok.error());
      map.insert_or_assign(std::move(key), std::move(value));
    }
  }
  return {};
}

} // namespace sluice::detail
