#pragma once
/// Per-key state, stored per key group so it can be snapshotted and redistributed key
/// group by key group.
///
/// Copy-on-write: each key group's map sits behind a `shared_ptr`. A checkpoint `share`s
/// the maps it must write (a reference count each, so the task's pause does not grow with
/// the state) and encodes them on the writer thread; the next mutable access to a shared
/// group copies it first. The copy costs about what the state changed since, so it is paid
/// only where the state changes.
///
/// Change log (for incremental checkpoints): operators that call `note_change` after each
/// write let a checkpoint write only the keys that changed since the previous one. Past
/// `change_log_limit` the log gives up and the group is written in full.
#include "core/key_group.hpp"

#include <absl/container/flat_hash_map.h>

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <type_traits>
#include <unordered_map>
#include <unordered_set>
#include <vector>

namespace sluice {

/// The hasher of the state maps: `std::hash` where it exists (cheap for integers; the
/// key group was already chosen by `key_hash`), else `key_hash`.
template <class K>
struct key_hasher {
  std::size_t operator()(const K& key) const noexcept {
    if constexpr (requires { std::hash<K>{}(key); })
      return std::hash<K>{}(key);
    else
      return static_cast<std::size_t>(key_hash<K>{}(key));
  }
};

/// `key_hasher` with its bits mixed: open addressing uses the hash's low and high bits
/// directly, and `std::hash` of an integer is the integer.
template <class K>
struct mixed_key_hasher {
  std::size_t operator()(const K& key) const noexcept {
    auto h = static_cast<std::uint64_t>(key_hasher<K>{}(key));
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    return static_cast<std::size_t>(h);
  }
};

/// What a key group's change log holds since the last checkpoint.
template <class K>
struct change_log {
  /// Changed (written or erased) keys, with repeats; meaningless when `overflowed`.
  std::vector<K> keys;
  /// Too many changes to list, or changes nobody listed: write the group in full.
  bool overflowed = true;
};

/// A map from key to `V` for the key groups one instance owns. Copying a table is cheap
/// and gives a frozen view (copy-on-write).
template <class K, class V, class Map = std::unordered_map<K, V, key_hasher<K>>>
class keyed_state_table {
public:
  using key_type = K;
  using mapped_type = V;
  using map_type = Map;
  using shared_group = std::shared_ptr<const map_type>;

  explicit keyed_state_table(key_group_range range = {0, default_max_key_groups})
    : range_(range), groups_(static_cast<std::size_t>(range.size())),
      logs_(static_cast<std::size_t>(range.size())) {
    for (auto& g : groups_)
      g = std::make_shared<map_type>();
  }

  /// The map of one key group, for changing it; `key_group` must be in this instance's
  /// range. Copies the map first when a snapshot still reads it.
  map_type& group(int key_group) {
    auto& g = groups_[index(key_group)];
    if constexpr (shareable) {
      if (g.use_count() > 1)
        g = std::make_shared<map_type>(*g);
      else // the snapshot's last read happens-before this write (its release: the count's drop)
        std::atomic_thread_fence(std::memory_order_acquire);
    }
    return *g;
  }
  const map_type& group(int key_group) const noexcept { return *groups_[index(key_group)]; }
  /// Read-only access that never copies (`group` on a const table).
  const map_type& view(int key_group) const noexcept { return *groups_[index(key_group)]; }

  /// Whether groups can be shared with a snapshot: copying one must be possible. A table of
  /// move-only values is snapshotted in the task's pause instead.
  static constexpr bool shareable = std::is_copy_constructible_v<V>;

  /// The group as it is now, frozen: later changes copy it (see `group`).
  shared_group share(int key_group) const
    requires shareable
  {
    return groups_[index(key_group)];
  }

  key_group_range range() const noexcept { return range_; }

  /// The number of keys held.
  std::size_t size() const noexcept {
    std::size_t n = 0;
    for (auto& g : groups_)
      n += g->size();
    return n;
  }

  // -- change log ---------------------------------------------------------------------

  /// Records that `key` of `key_group` was written or erased. Costs a push per call until
  /// the log holds a 64th of the group in different keys, then nothing (the group is
  /// written in full).
  void note_change(int key_group, const K& key) {
    auto& log = logs_[index(key_group)];
    if (log.overflowed)
      return;
    if (const auto limit = change_log_limit(groups_[index(key_group)]->size());
        log.keys.size() >= limit) {
      // Hot keys repeat: drop the repeats, and give up only when at least half of the
      // limit are different keys (so each push costs O(1), amortized).
      std::unordered_set<K, key_hasher<K>> distinct(log.keys.begin(), log.keys.end());
      if (distinct.size() * 2 > limit) {
        log.overflowed = true;
        log.keys = {};
        return;
      }
      log.keys.assign(distinct.begin(), distinct.end());
    }
    log.keys.push_back(key);
  }
  /// Takes the group's log and starts a new, empty one.
  change_log<K> take_changes(int key_group) {
    auto& log = logs_[index(key_group)];
    change_log<K> out = std::move(log);
    log.keys.clear();
    log.overflowed = false;
    return out;
  }
  /// Forgets every log: the next checkpoint writes every group in full (after a restore).
  void forget_changes() {
    for (auto& log : logs_) {
      log.keys = {};
      log.overflowed = true;
    }
  }

  /// Logged changes beyond which listing them costs more than writing the group.
  static std::size_t change_log_limit(std::size_t group_size) noexcept {
    return std::max<std::size_t>(64, group_size / 32);
  }

private:
  std::size_t index(int key_group) const noexcept {
    return static_cast<std::size_t>(key_group - range_.first);
  }

  key_group_range range_;
  std::vector<std::shared_ptr<map_type>> groups_;
  std::vector<change_log<K>> logs_;
};

/// A table of flat maps (open addressing, `absl::flat_hash_map`): the entries of a key
/// group sit in one array, so a lookup touches about one cache line and copying or walking
/// a group (copy-on-write, snapshots) runs at memory speed; a node-based map chases a
/// pointer per entry. References to entries do not survive an insertion into the same
/// group: for operators that use an entry only right after finding it.
template <class K, class V>
using flat_state_table = keyed_state_table<K, V, absl::flat_hash_map<K, V, mixed_key_hasher<K>>>;

} // namespace sluice
