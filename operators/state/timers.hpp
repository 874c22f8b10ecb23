#pragma once
/// Per-key timers, kept per key group: an ordered set of (time, key) per key group and
/// time domain. A (key, time) pair is stored once, so registering it again is a no-op.
///
/// A hash set beside each ordered set answers "already registered?" in one probe, as
/// Flink's HeapPriorityQueueSet does: functions commonly register a timer on every
/// element, nearly always one that exists, and a tree walk for each was 15% of Nexmark
/// q12's CPU (BENCHMARKS.md).
#include "sluice/core/key_group.hpp"
#include "sluice/operators/state/backend.hpp"

#include <absl/container/flat_hash_set.h>

#include <algorithm>
#include <cstdint>
#include <optional>
#include <set>
#include <vector>

namespace sluice {

template <class K>
class timer_table {
public:
  /// A timer that is due; `key_group` tells where it is stored.
  struct due_timer {
    std::int64_t time;
    int key_group;
    K key;
  };

  /// One registration or removal, for an incremental checkpoint's delta.
  struct change {
    time_domain domain;
    bool added; ///< registered, else removed (deleted or fired)
    std::int64_t time;
    K key;
  };
  /// What changed in one key group since the last `take_changes`.
  struct change_list {
    /// The changes in order; empty when `all` is set.
    std::vector<change> changes;
    /// Too many changes to list, or a first call: the group's timers must be written whole.
    bool all = false;
    bool empty() const noexcept { return !all && changes.empty(); }
  };

  explicit timer_table(key_group_range range = {0, default_max_key_groups})
    : range_(range),
      event_(static_cast<std::size_t>(range.size())),
      processing_(static_cast<std::size_t>(range.size())),
      logs_(static_cast<std::size_t>(range.size()), change_list{{}, true}) {}

  /// Adds a timer; false when (key, time) was already registered.
  bool add(time_domain d, int key_group, std::int64_t time, const K& key) {
    auto& g = group(d, key_group);
    if (!g.index.insert(entry{time, key}).second)
      return false;
    g.ordered.insert(entry{time, key});
    log(d, key_group, true, time, key);
    return true;
  }
  /// Removes a timer; false when there was none.
  bool remove(time_domain d, int key_group, std::int64_t time, const K& key) {
    auto& g = group(d, key_group);
    if (g.index.erase(entry{time, key}) == 0)
      return false;
    g.ordered.erase(entry{time, key});
    log(d, key_group, false, time, key);
    return true;
  }

  /// The changes to the timers of `key_group` since the last call (everything at first,
  /// and after `forget_changes`): an incremental checkpoint writes them, or the group's
  /// timers whole when they are too many.
  change_list take_changes(int key_group) {
    auto& log = logs_[index(key_group)];
    change_list out = std::move(log);
    log = change_list{};
    return out;
  }
  /// The next `take_changes` of every group lists everything (after a restore).
  void forget_changes() {
    for (auto& log : logs_)
      log = change_list{{}, true};
  }

  /// The timers with time <= `up_to`, ordered by time, then key group, then key. They
  /// stay registered: `take` each right before firing it, so that one deleted by an
  /// earlier timer's callback is skipped.
  std::vector<due_timer> due(time_domain d, std::int64_t up_to) const {
    std::vector<due_timer> out;
    auto& groups = d == time_domain::event_time ? event_ : processing_;
    for (std::size_t i = 0; i < groups.size(); ++i)
      for (auto& e : groups[i].ordered) {
        if (e.time > up_to)
          break;
        out.push_back(due_timer{e.time, range_.first + static_cast<int>(i), e.key});
      }
    // Each group's run is sorted by (time, key) and groups were appended in order.
    std::stable_sort(out.begin(), out.end(),
                     [](const due_timer& a, const due_timer& b) { return a.time < b.time; });
    return out;
  }

  /// Unregisters a due timer before it fires; false when it was deleted meanwhile.
  bool take(time_domain d, const due_timer& t) { return remove(d, t.key_group, t.time, t.key); }

  /// The earliest registered time in `d`, or nothing.
  std::optional<std::int64_t> earliest(time_domain d) const {
    std::optional<std::int64_t> best;
    for (auto& g : d == time_domain::event_time ? event_ : processing_)
      if (!g.ordered.empty() && (!best || g.ordered.begin()->time < *best))
        best = g.ordered.begin()->time;
    return best;
  }

  /// How many timers are registered in `d`.
  std::size_t size(time_domain d) const noexcept {
    std::size_t n = 0;
    for (auto& g : d == time_domain::event_time ? event_ : processing_)
      n += g.ordered.size();
    return n;
  }

  key_group_range range() const noexcept { return range_; }

  /// Calls `fn(time, key)` for every timer of `d` in `key_group`, in (time, key) order: what
  /// a checkpoint writes for that key group.
  template <class Fn>
  void for_each_in_group(time_domain d, int key_group, Fn&& fn) const {
    const auto& groups = d == time_domain::event_time ? event_ : processing_;
    for (auto& e : groups[static_cast<std::size_t>(key_group - range_.first)].ordered)
      fn(e.time, e.key);
  }

private:
  struct entry {
    std::int64_t time;
    K key;
  };
  struct entry_less {
    bool operator()(const entry& a, const entry& b) const noexcept {
      if (a.time != b.time)
        return a.time < b.time;
      return detail::key_less<K>{}(a.key, b.key);
    }
  };
  struct entry_hash {
    std::size_t operator()(const entry& e) const noexcept {
      // Mixed again after the XOR, so a key equal to its timer's time does not hash to 0.
      return static_cast<std::size_t>(
        mix64(key_hash<K>{}(e.key) ^ mix64(static_cast<std::uint64_t>(e.time))));
    }
  };
  struct entry_equal {
    bool operator()(const entry& a, const entry& b) const noexcept {
      const detail::key_less<K> less;
      return a.time == b.time && !less(a.key, b.key) && !less(b.key, a.key);
    }
  };
  /// The timers of one key group and domain: ordered for firing, hashed for lookups.
  struct timer_set {
    std::set<entry, entry_less> ordered;
    absl::flat_hash_set<entry, entry_hash, entry_equal> index;
  };

  std::size_t index(int key_group) const noexcept {
    return static_cast<std::size_t>(key_group - range_.first);
  }
  timer_set& group(time_domain d, int key_group) {
    auto& groups = d == time_domain::event_time ? event_ : processing_;
    return groups[index(key_group)];
  }

  /// Logs a change until the log holds as many as a 32nd of the group's timers (at least
  /// 64): beyond that, writing the timers whole costs less than listing the changes.
  void log(time_domain d, int key_group, bool added, std::int64_t time, const K& key) {
    auto& log = logs_[index(key_group)];
    if (log.all)
      return;
    const auto i = index(key_group);
    const auto held = event_[i].ordered.size() + processing_[i].ordered.size();
    if (log.changes.size() >= std::max<std::size_t>(64, held / 32)) {
      log.changes = {};
      log.all = true;
      return;
    }
    log.changes.push_back(change{d, added, time, key});
  }

  key_group_range range_;
  std::vector<timer_set> event_;
  std::vector<timer_set> processing_;
  std::vector<change_list> logs_; ///< per key group, since `take_changes`
};

} // namespace sluice
