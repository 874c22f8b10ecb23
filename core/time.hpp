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

/// A source of processing time. Injectable so that tests never depend on the wall clock.
class clock {
public:
  using time_point = std::chrono::steady_clock::time_point;
  virtual ~clock() = default;
  /// The current processing time. Must be monotonic and safe to call from any thread.
  virtual time_point now() const noexcept = 0;
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
