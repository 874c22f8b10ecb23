#pragma once
/// Time types: event time and processing time are `std::chrono` time points.
#include <atomic>
#include <chrono>
#include <memory>

namespace sluice {

using namespace std::chrono_literals;

/// Event time: microseconds since the Unix epoch (UTC).
using event_time = std::chrono::sys_time<std::chrono::microseconds>;
using duration = std::chrono::microseconds;

/// The watermark before any input: nothing is known about event time yet.
inline constexpr event_time min_watermark = event_time::min();
/// The watermark at the end of bounded input: every event-time window and timer is due.
inline constexpr event_time max_watermark = event_time::max();

/// The first and last event times the codecs read from input: years 0000 to 9999 in UTC,
/// what ISO-8601's four-digit years write (and Spark's timestamp range, about). Outside it a
/// timestamp is a malformed record. The 64-bit microsecond time line reaches about 292 000
/// years each way, so window, watermark and lateness arithmetic around these never
/// overflows; records stamped by user functions are checked where it could (the window
/// operators treat a record whose windows overflow as malformed).
inline constexpr event_time min_input_event_time{duration{-62'167'219'200'000'000}};
inline constexpr event_time max_input_event_time{duration{253'402'300'799'999'999}};

namespace detail {

/// `t + d`, clamped at the ends of the time line instead of overflowing (the max
/// watermark plus allowed lateness must stay the max watermark).
constexpr event_time saturating_add(event_time t, duration d) noexcept {
  using rep = duration::rep;
  rep r = 0;
  if (__builtin_add_overflow(t.time_since_epoch().count(), d.count(), &r))
    return d.count() > 0 ? event_time::max() : event_time::min();
  return event_time{duration{r}};
}

} // namespace detail

/// A source of processing time. Injectable so that tests never depend on the wall clock.
class clock {
public:
  using time_point = std::chrono::steady_clock::time_point;
  virtual ~clock() = default;
  /// The current processing time. Must be monotonic and safe to call from any thread.
  virtual time_point now() const noexcept = 0;
  /// The wall-clock time (UTC) at processing time `t`, for sources that stamp records with
  /// it (the rate sources). The real clock maps through the system clock; a manual clock
  /// overrides it so that a test's timestamps are fixed.
  virtual event_time wall_time(time_point t) const noexcept;
};

/// The real steady clock.
class system_clock final : public clock {
public:
  time_point now() const noexcept override { return std::chrono::steady_clock::now(); }
};

/// A clock that moves only when told to; for deterministic tests.
class manual_clock final : public clock {
public:
  explicit manual_clock(time_point start = time_point{}) : now_(start.time_since_epoch().count()) {}
  time_point now() const noexcept override {
    return time_point{time_point::duration{now_.load(std::memory_order_acquire)}};
  }
  /// Its count is the time since the Unix epoch: a manual clock at its default start reads
  /// 1970-01-01T00:00:00Z, as Spark's ManualClock (which starts at 0 ms) does.
  event_time wall_time(time_point t) const noexcept override {
    return event_time{std::chrono::duration_cast<duration>(t.time_since_epoch())};
  }
  void advance(std::chrono::nanoseconds d) noexcept {
    now_.fetch_add(std::chrono::duration_cast<time_point::duration>(d).count(),
                   std::memory_order_acq_rel);
  }

private:
  std::atomic<time_point::duration::rep> now_;
};

/// The process-wide default clock.
std::shared_ptr<const clock> default_clock();

} // namespace sluice
