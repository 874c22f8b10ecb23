#pragma once
/// Per-key state, stored per key group so it can be snapshotted and redistributed key
/// group by key group.
///
/// Frozen without a copy: a checkpoint `freeze`s the groups it must write in full (a
/// reference each, so the task's pause does not grow with the state). Their bytes are made
/// once, by whichever comes first: the writer thread, or the task just before it changes the
/// group again. The group is then changed in place. (Copying it on that write instead,
/// copy-on-write, costs a hash-map copy and its allocation per group and checkpoint, on top
/// of the encoding the writer does anyway: with every key changing, that was about a third
/// of what checkpoints cost.) `share` still gives a copy-on-write view, for state that is
/// encoded differently at each checkpoint (TTL, keyed_process's backend).
///
/// Change log (for incremental checkpoints): operators that call `note_change` after each
/// write let a checkpoint write only the keys that changed since the previous one. Past
/// `change_log_limit` the log gives up and the group is written in full.
#include "core/error.hpp"
#include "core/key_group.hpp"

#include <absl/container/flat_hash_map.h>

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <functional>
#include <memory>
#include <string>
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

namespace detail {

/// One key group's bytes as of a checkpoint, made once by whichever needs them first: the
/// writer thread (`take`) or the task about to change the group (`settle`). The other one
/// waits for them (at most one group's encoding, well under a millisecond at 10k keys).
template <class Map>
class group_bytes {
public:
  using encoder = std::string (*)(const Map&);

  group_bytes(std::shared_ptr<const Map> map, encoder encode) noexcept
    : map_(std::move(map)), encode_(encode) {}
  group_bytes(const group_bytes&) = delete;
  group_bytes& operator=(const group_bytes&) = delete;

  /// The writer's side: the bytes, made now unless the task made them first. Called once.
  result<std::string> take() {
    settle();
    if (!failure_.empty())
      return make_error(error_code::internal, "encoding a key group failed: " + failure_);
    return std::move(bytes_);
  }

  /// The task's side, before it changes the group: makes the bytes, or waits while the
  /// writer makes them. Never throws; a failure reaches `take`.
  void settle() noexcept {
    int expected = waiting;
    if (state_.compare_exchange_strong(expected, encoding, std::memory_order_acquire)) {
      try {
        bytes_ = encode_(*map_);
      } catch (const std::exception& e) {
        failure_ = e.what();
      } catch (...) {
        failure_ = "unknown exception";
      }
      map_.reset(); // the task's copy-on-write check must see the group unshared again
      state_.store(done, std::memory_order_release);
      state_.notify_all();
      return;
    }
    for (int s = expected; s != done; s = state_.load(std::memory_order_acquire))
      state_.wait(s, std::memory_order_acquire);
  }

  /// Whether the bytes exist (for tests).
  bool settled() const noexcept { return state_.load(std::memory_order_acquire) == done; }

private:
  enum : int { waiting = 0, encoding = 1, done = 2 };
  std::atomic<int> state_{waiting};
  std::shared_ptr<const Map> map_;
  encoder encode_;
  std::string bytes_;
  std::string failure_;
};

} // namespace detail

/// A map from key to `V` for the key groups one instance owns. Copying a table is cheap
/// and gives a frozen view (copy-on-write).
template <class K, class V, class Map = std::unordered_map<K, V, key_hasher<K>>>
class keyed_state_table {
public:
  using key_type = K;
  using mapped_type = V;
  using map_type = Map;
  using shared_group = std::shared_ptr<const map_type>;
  using frozen_group = std::shared_ptr<detail::group_bytes<map_type>>;

  explicit keyed_state_table(key_group_range range = {0, default_max_key_groups})
    : range_(range), groups_(static_cast<std::size_t>(range.size())),
      logs_(static_cast<std::size_t>(range.size())) {
    for (auto& g : groups_)
      g.map = std::make_shared<map_type>();
  }

  /// The map of one key group, for changing it; `key_group` must be in this instance's
  /// range. A frozen group's bytes are made first; a shared one is copied first.
  map_type& group(int key_group) {
    auto& g = groups_[index(key_group)];
    if (g.frozen) [[unlikely]] {
      g.frozen->settle();
      g.frozen.reset();
    }
    if constexpr (shareable) {
      if (g.map.use_count() > 1)
        g.map = std::make_shared<map_type>(*g.map);
      else // the snapshot's last read happens-before this write (its release: the count's drop)
        std::atomic_thread_fence(std::memory_order_acquire);
    }
    return *g.map;
  }
  const map_type& group(int key_group) const noexcept { return *groups_[index(key_group)].map; }
  /// Read-only access that never copies (`group` on a const table).
  const map_type& view(int key_group) const noexcept { return *groups_[index(key_group)].map; }

  /// The group's bytes as it is now (`encode` makes them), without copying it: see the top
  /// of this file. Call `take` on the result once, on any thread.
  frozen_group freeze(int key_group, typename detail::group_bytes<map_type>::encoder encode) {
    auto& g = groups_[index(key_group)];
    if (g.frozen) // an earlier checkpoint still waits to write the group: make its bytes now
      g.frozen->settle();
    g.frozen = std::make_shared<detail::group_bytes<map_type>>(g.map, encode);
    return g.frozen;
  }

  /// Whether groups can be shared with a snapshot: copying one must be possible. A table of
  /// move-only values is snapshotted in the task's pause instead.
  static constexpr bool shareable = std::is_copy_constructible_v<V>;

  /// The group as it is now, frozen: later changes copy it (see `group`).
  shared_group share(int key_group) const
    requires shareable
  {
    return groups_[index(key_group)].map;
  }

  key_group_range range() const noexcept { return range_; }

  /// The number of keys held.
  std::size_t size() const noexcept {
    std::size_t n = 0;
    for (auto& g : groups_)
      n += g.map->size();
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
    if (const auto limit = change_log_limit(groups_[index(key_group)].map->size());
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

  struct slot {
    std::shared_ptr<map_type> map;
    frozen_group frozen; ///< the bytes a checkpoint still waits for, if any
  };

  key_group_range range_;
  std::vector<slot> groups_;
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
