#pragma once
/// Per-key state, stored per key group so it can later be snapshotted and redistributed
/// key group by key group.
#include "core/key_group.hpp"

#include <functional>
#include <unordered_map>
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

/// A map from key to `V` for the key groups one instance owns.
template <class K, class V>
class keyed_state_table {
public:
  using map_type = std::unordered_map<K, V, key_hasher<K>>;

  explicit keyed_state_table(key_group_range range = {0, default_max_key_groups})
    : range_(range), groups_(static_cast<std::size_t>(range.size())) {}

  /// The map of one key group; `key_group` must be in this instance's range.
  map_type& group(int key_group) noexcept {
    return groups_[static_cast<std::size_t>(key_group - range_.first)];
  }
  const map_type& group(int key_group) const noexcept {
    return groups_[static_cast<std::size_t>(key_group - range_.first)];
  }
  key_group_range range() const noexcept { return range_; }

  /// The number of keys held.
  std::size_t size() const noexcept {
    std::size_t n = 0;
    for (auto& g : groups_)
      n += g.size();
    return n;
  }

private:
  key_group_range range_;
  std::vector<map_type> groups_;
};

} // namespace sluice
