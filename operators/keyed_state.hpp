#pragma once
/// Per-key state, stored per key group so it can be snapshotted and redistributed key
/// group by key group.
///
/// Frozen without a copy: a checkpoint `freeze`s the groups it must write in full (a
/// reference each, so the task's pause does not grow with the state). Their bytes are made
/// once, by whichever comes first: the writer thread, or the task just before it changes the
/// group again. The group is then changed in place. (Copying it on that write instead,
/// copy-on-write, cost a hash-map copy and its allocation per group and checkpoint, on top
/// of the encoding the writer did anyway: with every key changing, about a third of what
/// checkpoints cost; docs/checkpoints.md.)
///
/// Change log (for incremental checkpoints): operators that call `note_change` after each
/// write let a checkpoint write only the keys that changed since the previous one. Past
/// `change_log_limit` the log gives up and the group is written in full.
#include "sluice/core/error.hpp"
#include "sluice/core/key_group.hpp"

#include <absl/container/flat_hash_map.h>
#include <absl/container/flat_hash_set.h>

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
#include <utility>
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
/// `Made` is what the encoder returns: a `result`, so that a failure reaches the writer.
template <class Map, class Made = result<std::string>>
class group_bytes {
public:
  using encoder = std::function<Made(const Map&)>;

  group_bytes(std::shared_ptr<const Map> map, encoder encode) noexcept
    : map_(std::move(map)), encode_(std::move(encode)) {}
  group_bytes(const group_bytes&) = delete;
  group_bytes& operator=(const group_bytes&) = delete;

  /// The writer's side: the bytes, made now unless the task made them first. Called once.
  Made take() {
    settle();
    return std::exchange(made_, Made{make_error(error_code::internal, "key group bytes taken twice")});
  }

  /// The writer will not take the bytes (its checkpoint failed): the task need not make them.
  void abandon() noexcept {
    int expected = waiting;
    if (state_.compare_exchange_strong(expected, encoding, std::memory_order_acquire)) {
      made_ = make_error(error_code::internal, "key group bytes abandoned");
      finish();
    }
  }

  /// The task's side, before it changes the group: makes the bytes, or waits while the
  /// writer makes them. Never throws; a failure reaches `take`.
  void settle() noexcept {
    int expected = waiting;
    if (state_.compare_exchange_strong(expected, encoding, std::memory_order_acquire)) {
      try {
        made_ = encode_(*map_);
      } catch (const std::exception& e) {
        made_ = make_error(error_code::internal, std::string{"encoding a key group failed: "} + e.what());
      } catch (...) {
        made_ = make_error(error_code::internal, "encoding a key group failed");
      }
      finish();
      return;
    }
    // The writer's reads of the group happen-before its release of `done`.
    for (int s = expected; s != done; s = state_.load(std::memory_order_acquire))
      state_.wait(s, std::memory_order_acquire);
  }

  /// Whether the bytes exist (for tests).
  bool settled() const noexcept { return state_.load(std::memory_order_acquire) == done; }

private:
  enum : int { waiting = 0, encoding = 1, done = 2 };

  void finish() noexcept {
    map_.reset();
    encode_ = nullptr; // what it captured goes with the task's last use of it
    state_.store(done, std::memory_order_release);
    state_.notify_all();
  }

  std::atomic<int> state_{waiting};
  std::shared_ptr<const Map> map_; // alive even if the table goes first (a failing job)
  encoder encode_;
  Made made_{make_error(error_code::internal, "key group bytes taken twice")};
};

/// The writer's end of a frozen group, as a function for `snapshot_writer::put_later`: it
/// takes the bytes when called, and abandons them when dropped uncalled (a failed
/// checkpoint), so that the task does not make them for nothing.
template <class Map, class Made>
std::function<Made()> take_later(std::shared_ptr<group_bytes<Map, Made>> frozen) {
  struct guard {
    std::shared_ptr<group_bytes<Map, Made>> bytes;
    ~guard() {
      if (bytes)
        bytes->abandon();
    }
  };
  auto g = std::make_shared<guard>();
  g->bytes = std::move(frozen);
  return [g = std::move(g)] { return g->bytes->take(); };
}

} // namespace detail

/// A map from key to `V` for the key groups one instance owns.
template <class K, class V, class Map = std::unordered_map<K, V, key_hasher<K>>>
class keyed_state_table {
public:
  using key_type = K;
  using mapped_type = V;
  using map_type = Map;
  template <class Made>
  using frozen_group = std::shared_ptr<detail::group_bytes<map_type, Made>>;

  explicit keyed_state_table(key_group_range range = {0, default_max_key_groups})
    : range_(range), groups_(static_cast<std::size_t>(range.size())),
      logs_(static_cast<std::size_t>(range.size())) {
    for (auto& g : groups_)
      g.map = std::make_shared<map_type>();
  }
  // A copy would share the maps and change them under the other's frozen groups.
  keyed_state_table(const keyed_state_table&) = delete;
  keyed_state_table& operator=(const keyed_state_table&) = delete;
  keyed_state_table(keyed_state_table&&) noexcept = default;
  keyed_state_table& operator=(keyed_state_table&&) noexcept = default;

  /// The map of one key group, for changing it; `key_group` must be in this instance's
  /// range. A frozen group's bytes are made first.
  map_type& group(int key_group) {
    auto& g = groups_[index(key_group)];
    if (g.frozen) [[unlikely]] {
      g.frozen();
      g.frozen = nullptr;
    }
    return *g.map;
  }
  const map_type& group(int key_group) const noexcept { return *groups_[index(key_group)].map; }
  /// Read-only access that never settles a frozen group (`group` on a const table).
  const map_type& view(int key_group) const noexcept { return *groups_[index(key_group)].map; }

  /// The group's bytes as it is now, made by `encode` (on the writer thread, or on the task
  /// before the group's next change), without copying it: see the top of this file. Call
  /// `take` on the result once, on any thread.
  template <class Made>
  frozen_group<Made> freeze(int key_group, std::function<Made(const map_type&)> encode) {
    auto& g = groups_[index(key_group)];
    auto frozen = std::make_shared<detail::group_bytes<map_type, Made>>(g.map, std::move(encode));
    // An earlier checkpoint may still wait to write the group: both read the same map, and
    // the group's next change settles both (not now: the pause must not grow).
    g.frozen = [frozen, earlier = std::move(g.frozen)] {
      if (earlier)
        earlier();
      frozen->settle();
    };
    return frozen;
  }

  /// Whether a checkpoint still waits for the group's bytes: `group` would make them.
  bool frozen(int key_group) const noexcept { return static_cast<bool>(groups_[index(key_group)].frozen); }

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
      // limit are different keys (so each push costs O(1), amortized). The set is reused:
      // a small group (a few windows of hot keys) dedups every few dozen records, and a
      // fresh node-based set cost a malloc per entry each time (W4: 15% more CPU per record).
      distinct_.clear();
      distinct_.insert(log.keys.begin(), log.keys.end());
      if (distinct_.size() * 2 > limit) {
        log.overflowed = true;
        log.keys = {};
        return;
      }
      log.keys.assign(distinct_.begin(), distinct_.end());
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
    /// Settles the bytes a checkpoint still waits for, if any.
    std::function<void()> frozen;
  };

  key_group_range range_;
  std::vector<slot> groups_;
  std::vector<change_log<K>> logs_;
  absl::flat_hash_set<K, key_hasher<K>> distinct_; ///< scratch of `note_change`
};

/// A table of flat maps (open addressing, `absl::flat_hash_map`): the entries of a key
/// group sit in one array, so a lookup touches about one cache line and copying or walking
/// a group (copy-on-write, snapshots) runs at memory speed; a node-based map chases a
/// pointer per entry. References to entries do not survive an insertion into the same
/// group: for operators that use an entry only right after finding it.
template <class K, class V>
using flat_state_table = keyed_state_table<K, V, absl::flat_hash_map<K, V, mixed_key_hasher<K>>>;

} // namespace sluice
