#pragma once
/// What windows emit: `window_result<K, V>` for aggregations, and the `window_context<K>`
/// that full-window `process` functions receive.
#include "sluice/core/time.hpp"
#include "sluice/operators/window/assigners.hpp"

#include <cstdint>

namespace sluice {

/// One firing of one window of one key.
///
/// `firing` counts the firings of this window: 0 for the on-time result, 1, 2, ... for the
/// updates that records arriving within the allowed lateness cause. A consumer that keeps
/// the latest result per (key, start, end) sees the final value.
template <class K, class V>
struct window_result {
  K key{};
  event_time start{};
  event_time end{};
  V value{};
  bool is_update = false; ///< true when this replaces an earlier result of the same window
  std::uint32_t firing = 0;

  time_window window() const noexcept { return {start, end}; }
  friend bool operator==(const window_result&, const window_result&) = default;
  friend auto operator<=>(const window_result&, const window_result&) = default;
};

/// The result of a non-keyed window (`window_all`): no key.
template <class V>
struct window_result<void, V> {
  event_time start{};
  event_time end{};
  V value{};
  bool is_update = false;
  std::uint32_t firing = 0;

  time_window window() const noexcept { return {start, end}; }
  friend bool operator==(const window_result&, const window_result&) = default;
  friend auto operator<=>(const window_result&, const window_result&) = default;
};

template <class Inspector, class K, class V>
bool inspect(Inspector& f, window_result<K, V>& x) {
  return f.object("window_result")
    .fields(f.field("key", x.key), f.field("start", x.start), f.field("end", x.end),
            f.field("value", x.value), f.field("is_update", x.is_update),
            f.field("firing", x.firing));
}
template <class Inspector, class V>
bool inspect(Inspector& f, window_result<void, V>& x) {
  return f.object("window_result")
    .fields(f.field("start", x.start), f.field("end", x.end), f.field("value", x.value),
            f.field("is_update", x.is_update), f.field("firing", x.firing));
}

/// What a window `process` function learns about the window it is called for. Valid only
/// during the call.
template <class K>
class window_context {
public:
  window_context(const K& key, time_window w, std::uint32_t firing, event_time wm) noexcept
    : key_(&key), w_(w), firing_(firing), wm_(wm) {}
  const K& key() const noexcept { return *key_; }
  time_window window() const noexcept { return w_; }
  event_time start() const noexcept { return w_.start; }
  event_time end() const noexcept { return w_.end; }
  event_time max_timestamp() const noexcept { return w_.max_timestamp(); }
  /// 0 for the on-time firing; more for updates caused by allowed-late records.
  std::uint32_t firing() const noexcept { return firing_; }
  bool is_update() const noexcept { return firing_ > 0; }
  /// The operator's watermark when the window fired.
  event_time current_watermark() const noexcept { return wm_; }

private:
  const K* key_;
  time_window w_;
  std::uint32_t firing_;
  event_time wm_;
};

/// The context of a non-keyed window: the same without a key.
template <>
class window_context<void> {
public:
  window_context(time_window w, std::uint32_t firing, event_time wm) noexcept
    : w_(w), firing_(firing), wm_(wm) {}
  time_window window() const noexcept { return w_; }
  event_time start() const noexcept { return w_.start; }
  event_time end() const noexcept { return w_.end; }
  event_time max_timestamp() const noexcept { return w_.max_timestamp(); }
  std::uint32_t firing() const noexcept { return firing_; }
  bool is_update() const noexcept { return firing_ > 0; }
  event_time current_watermark() const noexcept { return wm_; }

private:
  time_window w_;
  std::uint32_t firing_;
  event_time wm_;
};

} // namespace sluice
