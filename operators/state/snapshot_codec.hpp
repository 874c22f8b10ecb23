#pragma once
/// Encoding operator state for checkpoints with the binary record codec
/// (core/codec/binary.hpp): keys, accumulators and values need `inspect()` or must be
/// codec leaves (numbers, strings, event_time, vectors and optionals of those). Hash maps of
/// such keys and values (the payload of `map_state`) are encoded here, as a count and the
/// pairs, because the record codec has no map type.
#include "sluice/core/codec/binary.hpp"
#include "sluice/core/error.hpp"
#include "sluice/operators/keyed_state.hpp"
#include "sluice/operators/operator.hpp"

#include <algorithm>
#include <cstddef>
#include <concepts>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <unordered_map>
#include <unordered_set>
#include <utility>
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
  /// Room for `n` bytes in all, so that a long encoding does not grow step by step.
  void reserve(std::size_t n) { bytes_.reserve(n); }
  std::size_t size() const noexcept { return bytes_.size(); }
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

/// The late-row watermark of an operator instance (in micro-batches a row is late by the
/// watermark at the previous batch's end, Spark 3.4+), kept in a per-instance piece.
inline result<void> put_late_watermark(snapshot_writer& w, int instance, event_time late) {
  state_encoder enc;
  enc.put(late);
  return w.put(instance_piece(instance), enc.take());
}

/// Restores the late-row watermark: the highest of every instance's piece (whatever the
/// parallelism that wrote them; the watermark was the job's, and a rescaled instance may
/// find none of its own). Pieces that do not read fail naming `what` ("deduplication
/// 'name'") and the instance. Checkpoints without the pieces leave `late` as it is.
inline result<void> restore_late_watermark(snapshot_reader& r, const std::string& what,
                                           event_time& late) {
  return for_each_instance_piece(r, [&](int i, std::string_view bytes) -> result<void> {
    state_decoder dec{bytes};
    event_time got{};
    auto ok = dec.get(got);
    if (ok && !dec.done())
      ok = make_error(error_code::malformed_record, "bytes after the late-row watermark");
    if (!ok)
      return make_error(error_code::io_error, what + ", instance " + std::to_string(i) +
                                                ": unreadable state: " + ok.error().message);
    late = std::max(late, got);
    return {};
  });
}

inline std::string delta_piece(int key_group, int n) {
  return key_group_piece(key_group) + "/d" + std::to_string(n);
}

/// Encodes a whole key group: a count, then key and value pairs.
template <class Map>
std::string encode_group(const Map& map) {
  using K = typename Map::key_type;
  using V = typename Map::mapped_type;
  state_encoder enc;
  enc.put(static_cast<std::uint64_t>(map.size()));
  // Keys and values of a fixed size (numbers, flat records): the buffer's size is known.
  if (codec::detail::fixed_size<K>() && codec::detail::fixed_size<V>())
    enc.reserve(enc.size() + map.size() * (sizeof(K) + sizeof(V)));
  for (const auto& [key, value] : map) {
    enc.put(key);
    enc.put(value);
  }
  return enc.take();
}

/// What this run wrote for one key group: its last full piece (the base) and the delta
/// pieces chained onto it. Shared by `table_checkpoints` and keyed process functions.
struct delta_chain {
  static constexpr int max_deltas = 32;

  bool written = false;  ///< this run wrote the group before
  bool has_base = false; ///< the last full write has a piece (the group was not empty)
  int deltas = 0;
  std::size_t base_entries = 0;
  std::size_t delta_entries = 0;

  /// Whether the group must be written in full now, given `changed` listed changes:
  /// without references to earlier pieces, in a run's first checkpoint, when the changes
  /// could not be listed (`unlisted`), after `max_deltas` deltas, or when the deltas would
  /// list more entries than half the base (the compaction).
  bool needs_full(bool incremental, bool unlisted, std::size_t changed) const noexcept {
    return !incremental || !written || unlisted || deltas >= max_deltas ||
           (delta_entries + changed) * 2 > base_entries;
  }
  /// A full write of `entries` entries starts a new chain.
  void restart(bool base_written, std::size_t entries) noexcept {
    *this = delta_chain{true, base_written, 0, entries, 0};
  }
  /// Refers to the chain's pieces from the checkpoint being written.
  result<void> reuse(int key_group, snapshot_writer& w) const {
    if (has_base)
      if (auto ok = w.reuse(key_group_piece(key_group)); !ok)
        return ok;
    for (int d = 1; d <= deltas; ++d)
      if (auto ok = w.reuse(delta_piece(key_group, d)); !ok)
        return ok;
    return {};
  }
  /// Adds a delta listing `entries` entries; returns its piece name.
  std::string add_delta(int key_group, std::size_t entries) {
    ++deltas;
    delta_entries += entries;
    return delta_piece(key_group, deltas);
  }
};

/// The entries of `keys` in `map` as they are now, for a delta: each key with its value,
/// or nothing when it is gone or `live(value)` says it no longer counts (expired).
template <class Map, class K, class Live>
std::vector<std::pair<K, std::optional<typename Map::mapped_type>>>
copy_changes(const Map& map, std::vector<K> keys, Live live) {
  std::vector<std::pair<K, std::optional<typename Map::mapped_type>>> out;
  out.reserve(keys.size());
  for (auto& key : keys) {
    auto it = map.find(key);
    const bool present = it != map.end() && live(it->second);
    out.emplace_back(std::move(key), present ? std::optional{it->second} : std::nullopt);
  }
  return out;
}

/// Set in a delta's count when it lists, per key, what changed in the value
/// (`checkpoints_changes`) instead of the value: earlier pieces, which list values, read
/// as before.
inline constexpr std::uint64_t changes_flag = std::uint64_t{1} << 63;

/// A table value whose deltas list what changed in it rather than all of it, for values
/// that grow large (a key's buffered rows). `changes_since(gen)` gives what changed since
/// the checkpoint generation `gen` began (the value stamps its changes with the generation
/// its owner gives it, `table_checkpoints::generation()`), and `apply` replays it on the
/// value as of the previous checkpoint.
/// `changes::weight()` is the number of rows a change lists, against which the rows of a key
/// group weigh for the compaction.
template <class V>
concept checkpoints_changes =
  requires(const V& v, V& m, typename V::changes c, std::uint32_t gen) {
    { v.changes_since(gen) } -> std::same_as<typename V::changes>;
    { m.apply(std::move(c)) } -> std::same_as<result<void>>;
    { std::as_const(c).weight() } -> std::convertible_to<std::size_t>;
  };

template <class V>
struct changes_of_t {
  using type = V;
};
template <checkpoints_changes V>
struct changes_of_t<V> {
  using type = typename V::changes;
};
/// What a delta lists for a value of type `V`.
template <class V>
using changes_of = typename changes_of_t<V>::type;

/// A delta's bytes: a count (or'ed with `count_flag`), then per changed key (its last
/// change only) the key, then 1 and what `put_value(encoder, value)` writes, or 0 for an
/// erased key.
template <class K, class V, class PutValue>
std::string encode_changes(const std::vector<std::pair<K, std::optional<V>>>& changes,
                           PutValue put_value, std::uint64_t count_flag = 0) {
  std::unordered_map<K, const std::optional<V>*, key_hasher<K>> last;
  last.reserve(changes.size());
  for (auto& [key, value] : changes)
    last.insert_or_assign(key, &value);
  state_encoder enc;
  enc.put(static_cast<std::uint64_t>(last.size()) | count_flag);
  for (auto& [key, value] : last) {
    enc.put(key);
    enc.put(static_cast<std::uint8_t>(value->has_value()));
    if (*value)
      put_value(enc, **value);
  }
  return enc.take();
}

/// Reads the flag `encode_changes` writes before each value: whether the key holds one.
inline result<void> get_change_flag(state_decoder& dec, bool& present) {
  std::uint8_t flag = 0;
  if (auto ok = dec.get(flag); !ok)
    return ok;
  if (flag > 1)
    return make_error(error_code::malformed_record,
                      "change flag " + std::to_string(flag) + " (expected 0 or 1)");
  present = flag == 1;
  return {};
}

/// Writes a keyed table's checkpoints, one piece per non-empty key group, incrementally
/// where the writer allows it (`snapshot_writer::reuse`) and the table's change log lists
/// what changed:
/// - a group that did not change refers to its pieces of the previous checkpoint;
/// - a group with few changes adds a *delta* piece (`kg/<g>/d<n>`: the changed keys with
///   their values, or their erasure) to its chain;
/// - any other group, and every group once its chain has `max_deltas` deltas or its deltas
///   list more entries than half its base, is written in full (the compaction).
/// The task pauses only to copy the deltas' entries and to freeze the full groups (see
/// keyed_state_table); the full groups are encoded on the writer thread, or by the task
/// just before it changes one.
template <class Table>
class table_checkpoints {
public:
  using K = typename Table::key_type;
  using V = typename Table::mapped_type;
  static constexpr int max_chain = delta_chain::max_deltas;

  result<void> snapshot(Table& table, snapshot_writer& w) {
    return snapshot(table, w, [&](int g) { return table.view(g).size(); });
  }

  /// `group_weight(g)`: what key group `g` holds, in the unit in which the deltas are
  /// weighed against it for the compaction: keys, or for values that list their changes
  /// the rows those list (`V::changes::weight`).
  template <class GroupWeight>
  result<void> snapshot(Table& table, snapshot_writer& w, GroupWeight group_weight) {
    const auto range = table.range();
    if (chains_.size() != static_cast<std::size_t>(range.size()))
      chains_.assign(static_cast<std::size_t>(range.size()), delta_chain{});
    const bool incremental = w.can_reuse();
    for (int g = range.first; g < range.last; ++g) {
      auto& c = chains_[static_cast<std::size_t>(g - range.first)];
      auto log = table.take_changes(g);
      const bool changed = !log.keys.empty();
      // The pause copies what a delta needs as of the barrier: each changed key's value, or
      // what changed in it since the previous checkpoint.
      using listed = changes_of<V>;
      std::vector<std::pair<K, std::optional<listed>>> changes;
      std::size_t weight = log.keys.size();
      if constexpr (checkpoints_changes<V>) {
        if (changed && !c.needs_full(incremental, log.overflowed, 0)) {
          changes = list_changes(table.view(g), std::move(log.keys));
          weight = changes.size();
          for (auto& [key, change] : changes)
            weight += change ? change->weight() : 0;
        }
      }
      if (c.needs_full(incremental, log.overflowed, weight)) {
        const auto& map = table.view(g);
        c.restart(!map.empty(), group_weight(g));
        if (!c.has_base)
          continue;
        if (auto ok = w.put_later(key_group_piece(g),
                                  take_later(table.template freeze<result<std::string>>(
                                    g, [](const typename Table::map_type& m) {
                                      return result<std::string>{encode_group(m)};
                                    })));
            !ok)
          return ok;
        continue;
      }
      if (auto ok = c.reuse(g, w); !ok)
        return ok;
      if (!changed)
        continue;
      if constexpr (!checkpoints_changes<V>)
        changes = copy_changes(table.view(g), std::move(log.keys), [](const V&) { return true; });
      if (auto ok = w.put_later(c.add_delta(g, weight),
                                [changes = std::move(changes)] {
                                  return result<std::string>{encode_changes(
                                    changes, [](state_encoder& enc, const listed& v) { enc.put(v); },
                                    checkpoints_changes<V> ? changes_flag : 0)};
                                });
          !ok)
        return ok;
    }
    ++generation_;
    return {};
  }

  /// What changed in each of `keys` (repeats count once) since the previous checkpoint
  /// (nothing: erased).
  std::vector<std::pair<K, std::optional<changes_of<V>>>>
  list_changes(const typename Table::map_type& map, std::vector<K> keys) const {
    std::unordered_set<K, key_hasher<K>> distinct(std::make_move_iterator(keys.begin()),
                                                  std::make_move_iterator(keys.end()));
    std::vector<std::pair<K, std::optional<changes_of<V>>>> out;
    out.reserve(distinct.size());
    for (auto& key : distinct) {
      auto it = map.find(key);
      if (it == map.end())
        out.emplace_back(std::move(key), std::nullopt);
      else
        out.emplace_back(std::move(key), it->second.changes_since(generation_));
    }
    return out;
  }

  /// Changes made now go into the next checkpoint's deltas under this number (see
  /// `checkpoints_changes`).
  std::uint32_t generation() const noexcept { return generation_; }

  /// Reads the key groups of `table`'s range back (any parallelism wrote them): each
  /// group's base, then its deltas in order. The next checkpoint writes every group in full.
  result<void> restore(Table& table, snapshot_reader& r, const std::string& op) {
    chains_.clear();
    table.forget_changes();
    for (int g = table.range().first; g < table.range().last; ++g) {
      auto bad = [&](const std::string& piece, const error& e) {
        return make_error(error_code::io_error, "operator '" + op + "', key group " +
                                                  std::to_string(g) + " (" + piece +
                                                  "): unreadable state: " + e.message);
      };
      auto& map = table.group(g);
      for (int d = 0;; ++d) {
        const auto name = d == 0 ? key_group_piece(g) : delta_piece(g, d);
        auto piece = r.get(name);
        if (!piece)
          return std::move(piece).error();
        if (!*piece) {
          if (d == 0)
            continue; // no base: the group was empty when last written in full
          break;
        }
        if (auto ok = read_entries(**piece, map, d > 0); !ok)
          return bad(name, ok.error());
      }
    }
    return {};
  }

private:
  /// Reads a base (key and value pairs) or, with `delta`, a delta (per key a flag: 1 and
  /// the value, or 0 for an erasure) into `map`.
  template <class Map>
  static result<void> read_entries(std::string_view bytes, Map& map, bool delta) {
    state_decoder dec{bytes};
    std::uint64_t n = 0;
    if (auto ok = dec.get(n); !ok)
      return ok;
    const bool listed_changes = delta && (n & changes_flag) != 0;
    n &= ~changes_flag;
    if (listed_changes && !checkpoints_changes<V>)
      return make_error(error_code::malformed_record,
                        "a delta of changes for state that keeps no changes");
    for (std::uint64_t i = 0; i < n; ++i) {
      K key{};
      bool present = true;
      if (auto ok = dec.get(key); !ok)
        return ok;
      if (delta)
        if (auto ok = get_change_flag(dec, present); !ok)
          return ok;
      if (!present) {
        map.erase(key);
        continue;
      }
      if constexpr (checkpoints_changes<V>) {
        if (listed_changes) {
          typename V::changes change{};
          if (auto ok = dec.get(change); !ok)
            return ok;
          if (auto ok = map[key].apply(std::move(change)); !ok)
            return ok;
          continue;
        }
      }
      V value{};
      if (auto ok = dec.get(value); !ok)
        return ok;
      map.insert_or_assign(std::move(key), std::move(value));
    }
    if (!dec.done())
      return make_error(error_code::malformed_record,
                        std::to_string(dec.remaining()) + " bytes after the last entry");
    return {};
  }

  std::vector<delta_chain> chains_;
  /// Starts at 1: values restored or created unchanged carry 0.
  std::uint32_t generation_ = 1;
};

/// Writes a keyed table in full, one piece per non-empty key group (for operators that
/// keep no change log).
template <class K, class V, class Map>
result<void> snapshot_table(const keyed_state_table<K, V, Map>& table, snapshot_writer& w) {
  for (int g = table.range().first; g < table.range().last; ++g) {
    const auto& map = table.group(g);
    if (map.empty())
      continue;
    if (auto r = w.put(key_group_piece(g), encode_group(map)); !r)
      return r;
  }
  return {};
}

/// Reads the key groups of `table`'s range back (any parallelism wrote them).
template <class K, class V, class Map>
result<void> restore_table(keyed_state_table<K, V, Map>& table, snapshot_reader& r,
                           const std::string& op) {
  return table_checkpoints<keyed_state_table<K, V, Map>>{}.restore(table, r, op);
}

} // namespace sluice::detail
