#pragma once
/// Window assigners: which event-time windows a record belongs to (Flink's WindowAssigner).
///
/// ```cpp
/// keyed.window(windows::tumbling{.size = 1min});
/// keyed.window(windows::tumbling{.size = 1h, .offset = 15min});
/// keyed.window(windows::sliding{.size = 10s, .slide = 5s});
/// keyed.window(windows::session{.gap = 30s});
/// keyed.window(windows::session_dynamic{[](const txn& t) { return t.vip ? 5min : 30s; }});
/// ```
///
/// Every window is half-open, `[start, end)`; its last instant ("max timestamp") is
/// `end - 1µs`. Options are validated when the window node is added to the graph; an invalid
/// one becomes a graph error that `job::run()` reports before anything starts.
#include "sluice/core/error.hpp"
#include "sluice/core/time.hpp"

#include <concepts>
#include <cstdint>
#include <functional>
#include <limits>
#include <string>
#include <type_traits>
#include <utility>

namespace sluice {

/// An event-time window `[start, end)`.
struct time_window {
  event_time start{};
  event_time end{};

  /// The last instant inside the window; the window fires when the watermark reaches it.
  constexpr event_time max_timestamp() const noexcept { return end - duration{1}; }
  /// Flink's TimeWindow.intersects: windows that overlap or touch (`a.end == b.start`).
  /// Touching sessions merge, so a record exactly `gap` after the last one extends it.
  constexpr bool touches(const time_window& o) const noexcept {
    return start <= o.end && o.start <= end;
  }
  friend constexpr bool operator==(const time_window&, const time_window&) = default;
};

namespace detail {

inline std::string micros(duration d) { return std::to_string(d.count()) + "us"; }

/// Whether `t + d` (`d >= 0`) is on the time line.
constexpr bool fits_after(event_time t, duration d) noexcept {
  return t.time_since_epoch().count() <= std::numeric_limits<duration::rep>::max() - d.count();
}
/// Whether `t - d` (`d >= 0`) is on the time line.
constexpr bool fits_before(event_time t, duration d) noexcept {
  return t.time_since_epoch().count() >= std::numeric_limits<duration::rep>::min() + d.count();
}
/// `2 * d` (`d >= 0`), at most `duration::max()`.
constexpr duration doubled(duration d) noexcept {
  return d > duration::max() / 2 ? duration::max() : 2 * d;
}

/// The start of the window of length `size` (shifted by `offset`) that holds `ts`.
/// Floors towards minus infinity, so negative event times (before 1970) land in the
/// window that contains them rather than the one after: C++'s `%` truncates.
constexpr event_time window_start(event_time ts, duration offset, duration size) noexcept {
  auto rem = (ts.time_since_epoch() - offset) % size;
  if (rem < duration::zero())
    rem += size;
  return ts - rem;
}

} // namespace detail

namespace windows {

/// The most windows one record may belong to: a sliding window's `ceil(size / slide)`.
/// Each record is added to every window that holds it, so `size 10m, slide 1us` (600
/// million windows per record) would grow memory until the process dies. Spark has no
/// limit; Flink computes the same count. Refused before the job starts.
inline constexpr std::int64_t max_windows_per_record = 10'000;

/// Fixed-size, non-overlapping windows: `[k*size + offset, (k+1)*size + offset)`.
struct tumbling {
  /// The window length; must be positive.
  duration size{};
  /// Shifts window starts away from the epoch, e.g. `-8h` for days in UTC-8. Must satisfy
  /// `|offset| < size`. Default: none (windows start at multiples of `size`).
  duration offset{};

  result<void> validate() const {
    if (size <= duration::zero())
      return make_error(error_code::invalid_option,
                        "tumbling window: size must be positive, got " + detail::micros(size));
    if (offset >= size || offset <= -size)
      return make_error(error_code::invalid_option,
                        "tumbling window: |offset| must be less than the size, got offset " +
                          detail::micros(offset) + " for size " + detail::micros(size));
    return {};
  }
  std::string describe() const {
    return "tumbling(" + detail::micros(size) +
           (offset == duration::zero() ? "" : ", offset " + detail::micros(offset)) + ")";
  }
  /// Whether the window holding `ts` lies on the time line (ends no later than
  /// `event_time::max()`). Checked before `assign`: a record for which it is false is
  /// malformed. Conservative by at most a window length at each end.
  constexpr bool fits(event_time ts) const noexcept {
    // start > ts - size - |offset| and end <= ts + size; the |offset| < size of validate().
    return detail::fits_before(ts, detail::doubled(size)) && detail::fits_after(ts, size);
  }
  /// Calls `fn(window)` for the one window holding `ts`; requires `fits(ts)`.
  template <class F>
  void assign(event_time ts, F&& fn) const {
    const auto start = detail::window_start(ts, offset, size);
    fn(time_window{start, start + size});
  }
};

/// Overlapping windows of length `size`, one starting every `slide`. A record belongs to
/// every window that contains it: `ceil(size / slide)` of them when `slide` divides `size`.
struct sliding {
  /// The window length; must be positive.
  duration size{};
  /// The distance between window starts; `0 < slide <= size` (Spark's rule). `slide ==
  /// size` is tumbling. Flink allows `slide > size`, but records in the gaps then belong to
  /// no window and vanish without a trace, so Sluice rejects it.
  duration slide{};
  /// Shifts window starts; `|offset| < slide`. Default: none.
  duration offset{};

  result<void> validate() const {
    if (size <= duration::zero())
      return make_error(error_code::invalid_option,
                        "sliding window: size must be positive, got " + detail::micros(size));
    if (slide <= duration::zero())
      return make_error(error_code::invalid_option,
                        "sliding window: slide must be positive, got " + detail::micros(slide));
    if (slide > size)
      return make_error(error_code::invalid_option,
                        "sliding window: slide " + detail::micros(slide) +
                          " is larger than the size " + detail::micros(size) +
                          "; records between windows would belong to none");
    if (const auto n = windows_per_record(); n > max_windows_per_record)
      return make_error(error_code::invalid_option,
                        "sliding window: size " + detail::micros(size) + " / slide " +
                          detail::micros(slide) + " = " + std::to_string(n) +
                          " windows per record, more than the limit of " +
                          std::to_string(max_windows_per_record) +
                          " (windows::max_windows_per_record); use a larger slide");
    if (offset >= slide || offset <= -slide)
      return make_error(error_code::invalid_option,
                        "sliding window: |offset| must be less than the slide, got offset " +
                          detail::micros(offset) + " for slide " + detail::micros(slide));
    return {};
  }
  std::string describe() const {
    return "sliding(" + detail::micros(size) + " every " + detail::micros(slide) +
           (offset == duration::zero() ? "" : ", offset " + detail::micros(offset)) + ")";
  }
  /// The number of windows that hold a record: `ceil(size / slide)` (positive options).
  constexpr std::int64_t windows_per_record() const noexcept {
    return size.count() / slide.count() + (size.count() % slide.count() != 0 ? 1 : 0);
  }
  /// Whether every window holding `ts` lies on the time line, and `assign`'s arithmetic with
  /// it. Checked before `assign`: a record for which it is false is malformed.
  constexpr bool fits(event_time ts) const noexcept {
    // Starts lie in (ts - size - slide, ts], ends in (ts, ts + size]; |offset| < slide.
    return detail::fits_before(ts, size) && detail::fits_before(ts - size, detail::doubled(slide)) &&
           detail::fits_after(ts, size);
  }
  /// Calls `fn(window)` for every window holding `ts`, latest start first (Flink's order);
  /// requires `fits(ts)`.
  template <class F>
  void assign(event_time ts, F&& fn) const {
    const auto last_start = detail::window_start(ts, offset, slide);
    for (auto start = last_start; start > ts - size; start -= slide)
      fn(time_window{start, start + size});
  }
};

/// Session windows with a fixed gap: a record at `ts` opens `[ts, ts + gap)`, and sessions
/// of one key that overlap or touch merge into one.
struct session {
  /// The inactivity gap that closes a session; must be positive.
  duration gap{};

  result<void> validate() const {
    if (gap <= duration::zero())
      return make_error(error_code::invalid_option,
                        "session window: gap must be positive, got " + detail::micros(gap));
    return {};
  }
  std::string describe() const { return "session(gap " + detail::micros(gap) + ")"; }
  template <class T>
  duration gap_of(const T&) const noexcept {
    return gap;
  }
  /// Whether the session a record at `ts` opens, `[ts, ts + gap)`, lies on the time line.
  static constexpr bool fits(event_time ts, duration gap) noexcept {
    return detail::fits_after(ts, gap);
  }
};

/// Session windows whose gap depends on the record: `gap_fn(const T&) -> duration`. A
/// record whose gap is not positive fails the job with `invalid_option` (Flink throws).
template <class F>
struct session_dynamic {
  F gap_fn;

  result<void> validate() const { return {}; }
  std::string describe() const { return "session(dynamic gap)"; }
  template <class T>
  duration gap_of(const T& record) const {
    static_assert(std::is_invocable_v<const F&, const T&>,
                  "session_dynamic: the gap function must be (const T&) -> duration");
    return std::chrono::duration_cast<duration>(std::invoke(gap_fn, record));
  }
  /// As `session::fits`.
  static constexpr bool fits(event_time ts, duration gap) noexcept {
    return session::fits(ts, gap);
  }
};
template <class F>
session_dynamic(F) -> session_dynamic<F>;

} // namespace windows

/// True for assigners whose windows merge (sessions).
template <class A>
inline constexpr bool is_merging_assigner = false;
template <>
inline constexpr bool is_merging_assigner<windows::session> = true;
template <class F>
inline constexpr bool is_merging_assigner<windows::session_dynamic<F>> = true;

/// The assigners `window()` accepts.
template <class A>
concept window_assigner =
  std::same_as<A, windows::tumbling> || std::same_as<A, windows::sliding> || is_merging_assigner<A>;

} // namespace sluice
