#pragma once
/// Watermark strategies: how a source turns the event times it reads into watermarks.
///
/// ```cpp
/// job.from(sources::file<txn>{...},
///          watermarks::bounded_out_of_orderness<txn>(5s, [](const txn& t) { return t.ts; })
///            .with_idleness(1min));
/// ```
///
/// Semantics are Flink's: a watermark W promises that no record with event time <= W
/// follows. Bounded out-of-orderness emits `max event time seen - delay - 1µs`, so a record
/// exactly `delay` behind the maximum is still on time. Each split of a source instance
/// (a Kafka partition, a file) has its own generator; the instance's watermark is the
/// minimum over its splits that are not idle, and it never goes back.
#include "sluice/core/error.hpp"
#include "sluice/core/time.hpp"
#include "sluice/core/timestamp_fn.hpp"

#include <algorithm>
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

namespace sluice {

/// Makes watermarks from the event times of one split (Flink's WatermarkGenerator).
template <class T>
class watermark_generator {
public:
  virtual ~watermark_generator() = default;
  /// Sees every record of the split with its event time.
  virtual void on_event(const T& record, event_time ts) = 0;
  /// The watermark now, or nothing yet. Asked after every polled batch; a value lower than
  /// an earlier one is ignored.
  virtual std::optional<event_time> current() = 0;
};

/// `max seen - delay - 1µs`.
template <class T>
class bounded_out_of_orderness_generator final : public watermark_generator<T> {
public:
  explicit bounded_out_of_orderness_generator(duration delay) : delay_(delay) {}
  void on_event(const T&, event_time ts) override { max_ = std::max(max_, ts); }
  std::optional<event_time> current() override {
    if (max_ == min_watermark)
      return std::nullopt;
    return detail::saturating_add(detail::saturating_add(max_, -delay_), -duration{1});
  }

private:
  duration delay_;
  event_time max_ = min_watermark;
};

/// Flink's watermark alignment (`WatermarkStrategy.withWatermarkAlignment`): the source
/// instances of one group stop polling while their watermark is more than `max_drift` ahead
/// of the group's slowest, so that a fast instance cannot fill downstream state (windows,
/// joins) with records the slow one's watermark holds back. See docs/event-time.md.
///
/// - The group's minimum is taken over its instances that are neither idle nor at the end
///   of their input: idle and finished instances do not hold the group back.
/// - An instance that has not emitted a watermark yet holds the group at "unknown": the
///   others wait after their first watermark until it has one, goes idle or ends (Flink
///   leaves it out instead, so its first minutes may run unaligned; downstream waits for it
///   anyway, so records of the others would only pile up). `with_idleness` releases an
///   instance that never gets records, as it releases the downstream watermark.
/// - Instances report their watermark to the coordinator (node 0 in a multi-node job) at
///   most every `update_interval` of real time, and the coordinator sends each instance
///   the watermark it may reach; so an instance runs at most one polled batch past
///   `group minimum + max_drift`, never further.
/// - Not checkpointed (as in Flink): after a restore the group rebuilds from new reports.
///   Micro-batch triggers ignore it (each trigger reads a planned, bounded input).
struct watermark_alignment {
  std::string group;        ///< instances of every source with the same group align together
  duration max_drift{};     ///< how far ahead of the group's minimum an instance may run; > 0
  /// How often, at most, an instance reports its watermark (real time, not the job's
  /// processing clock: it paces control messages). Default 1 s, as Flink; > 0.
  std::chrono::nanoseconds update_interval = std::chrono::seconds{1};
};

/// Checks `a`'s options for source `source` (`job` does so before the start): a named
/// group, a positive drift and a positive update interval.
[[nodiscard]] inline result<void> check_watermark_alignment(const std::string& source,
                                                            const watermark_alignment& a) {
  const auto bad = [&](const std::string& what) {
    return make_error(error_code::invalid_option,
                      "source '" + source + "': watermark alignment: " + what);
  };
  if (a.group.empty())
    return bad("the group needs a name");
  if (a.max_drift <= duration::zero())
    return bad("the max drift must be positive, got " + std::to_string(a.max_drift.count()) +
               "us");
  if (a.update_interval <= std::chrono::nanoseconds::zero())
    return bad("the update interval must be positive, got " +
               std::to_string(a.update_interval.count()) + "ns");
  return {};
}

/// How a source stamps records with event time and makes watermarks from them.
template <class T>
struct watermark_strategy {
  using timestamp_fn = sluice::timestamp_fn<T>;
  using generator_factory = std::function<std::unique_ptr<watermark_generator<T>>()>;

  timestamp_fn timestamp;     ///< the event time of a record; required
  generator_factory generator; ///< one generator per split; required
  /// A split (or the whole instance) that has had no records for this long is idle: it no
  /// longer holds the watermark back, and rejoins with its next record. Unset: never idle.
  std::optional<std::chrono::nanoseconds> idle_timeout;
  std::string description; ///< shown in explain()
  /// Set by the built-in bounded strategies: the tracker then keeps the maximum itself in a
  /// tight loop instead of a virtual call per record (same watermarks as `generator`).
  std::optional<duration> bounded_delay;

  /// Unset: not aligned (see `with_watermark_alignment`).
  std::optional<watermark_alignment> alignment;

  /// Marks inputs idle after `timeout` without records (Flink's withIdleness).
  watermark_strategy with_idleness(std::chrono::nanoseconds timeout) const {
    auto copy = *this;
    copy.idle_timeout = timeout;
    copy.description += ", idle after " + std::to_string(
                          std::chrono::duration_cast<std::chrono::milliseconds>(timeout).count()) +
                        "ms";
    return copy;
  }

  /// Aligns this source's instances with every instance of group `group` (Flink's
  /// withWatermarkAlignment): an instance whose watermark is more than `max_drift` ahead of
  /// the group's minimum stops polling until the minimum catches up. Both durations must be
  /// positive (checked when the job is built). See `watermark_alignment`.
  watermark_strategy with_watermark_alignment(
    std::string group, duration max_drift,
    std::chrono::nanoseconds update_interval = std::chrono::seconds{1}) const {
    auto copy = *this;
    copy.description += ", aligned in group '" + group + "' (max drift " +
                        std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(
                                         max_drift).count()) +
                        "ms)";
    copy.alignment = watermark_alignment{std::move(group), max_drift, update_interval};
    return copy;
  }
};

namespace watermarks {

namespace detail {
template <class T, class F>
timestamp_fn<T> timestamp_of(F f) {
  static_assert(std::is_invocable_r_v<event_time, F&, const T&>,
                "watermarks: the timestamp function must be (const T&) -> sluice::event_time");
  return timestamp_fn<T>{std::move(f)};
}
} // namespace detail

/// Records may be up to `max_delay` out of order: W = max event time seen - max_delay - 1µs.
template <class T, class F>
watermark_strategy<T> bounded_out_of_orderness(duration max_delay, F timestamp) {
  return {detail::timestamp_of<T>(std::move(timestamp)),
          [max_delay] {
            return std::make_unique<bounded_out_of_orderness_generator<T>>(max_delay);
          },
          std::nullopt,
          "bounded out-of-orderness " + std::to_string(max_delay.count()) + "us",
          max_delay,
          std::nullopt};
}

/// Event times only ever increase within a split: W = max event time seen - 1µs.
template <class T, class F>
watermark_strategy<T> monotonous(F timestamp) {
  auto s = bounded_out_of_orderness<T>(duration{0}, std::move(timestamp));
  s.description = "monotonous";
  return s;
}

/// A user generator, one per split: `make()` returns a `watermark_generator<T>`.
template <class T, class F, class Make>
watermark_strategy<T> custom(F timestamp, Make make, std::string description = "custom") {
  return {detail::timestamp_of<T>(std::move(timestamp)),
          [make = std::move(make)]() -> std::unique_ptr<watermark_generator<T>> { return make(); },
          std::nullopt, std::move(description), std::nullopt, std::nullopt};
}

} // namespace watermarks

/// Where one split's records start in a polled batch (see `source_output::begin_split`).
struct split_mark {
  int split = 0;
  std::size_t begin = 0; ///< index of the split's first record in the batch
};

/// What the watermark of a source instance did after a poll.
struct watermark_update {
  std::optional<event_time> advanced; ///< the new watermark, when it moved forward
  std::optional<bool> idle;           ///< the new idle state, when it changed
  bool idle_now = false;              ///< the idle state now
};

/// Runs a strategy over the splits of one source instance.
template <class T>
class watermark_tracker {
public:
  explicit watermark_tracker(watermark_strategy<T> strategy) : strategy_(std::move(strategy)) {}

  /// Feeds a polled batch. `marks` split it by split; records before the first mark belong
  /// to the split marked last (split 0 before any mark), so a source reading one split over
  /// many polls marks it once. The processing time of the batch is that of the next `update`.
  /// `times`, when given, holds the records' event times (the strategy's function applied
  /// already, as the source does for its statistics), so they are not computed again.
  void observe(const std::vector<T>& records, const std::vector<split_mark>& marks,
               const event_time* times = nullptr) {
    const auto first = marks.empty() ? records.size() : marks.front().begin;
    observe_split(current_split_, records, times, 0, first);
    for (std::size_t m = 0; m < marks.size(); ++m) {
      const auto end = m + 1 < marks.size() ? marks[m + 1].begin : records.size();
      observe_split(marks[m].split, records, times, marks[m].begin, end);
      current_split_ = marks[m].split;
    }
  }

  /// A split is finished (a file read to its end, a partition revoked): it no longer holds
  /// the watermark back.
  void end_split(int split) { splits_.erase(split); }
  /// A split exists before its first record: it holds the watermark back from the next
  /// update on, until it has records or turns idle (see `source_output::add_split`).
  void add_split(int split) {
    auto [it, added] = splits_.try_emplace(split);
    if (added)
      it->second.seen = true; // starts its idle clock at the next update
  }

  /// The instance's watermark and idleness at `now`; changes only.
  watermark_update update(clock::time_point now) {
    watermark_update u;
    if (!opened_)
      opened_ = now;
    std::optional<event_time> low;
    bool any_active = false;
    bool blocked = false; // an active split without a watermark yet holds everything back
    for (auto& [id, s] : splits_) {
      if (s.seen) {
        s.seen = false;
        s.last_record = now;
      }
      if (strategy_.idle_timeout && now - s.last_record >= *strategy_.idle_timeout)
        s.idle = true;
      if (s.idle)
        continue;
      any_active = true;
      auto w = current(s);
      if (!w) {
        blocked = true;
        continue;
      }
      low = low ? std::min(*low, *w) : *w;
    }
    bool idle = !any_active && strategy_.idle_timeout &&
                (!splits_.empty() || now - *opened_ >= *strategy_.idle_timeout);
    if (idle != idle_) {
      idle_ = idle;
      u.idle = idle;
    }
    u.idle_now = idle;
    if (!blocked && low && *low > watermark_) {
      watermark_ = *low;
      u.advanced = *low;
    }
    return u;
  }

  event_time watermark() const noexcept { return watermark_; }
  bool idle() const noexcept { return idle_; }
  const watermark_strategy<T>& strategy() const noexcept { return strategy_; }

private:
  struct split_state {
    std::unique_ptr<watermark_generator<T>> generator;
    event_time max_ts = min_watermark; ///< bounded strategies only
    clock::time_point last_record{};
    bool seen = false; ///< records since the last update
    bool idle = false;
  };

  void observe_split(int id, const std::vector<T>& records, const event_time* times,
                     std::size_t begin, std::size_t end) {
    if (begin == end)
      return;
    auto& s = splits_[id];
    s.seen = true;
    s.idle = false;
    if (strategy_.bounded_delay) {
      if (times)
        s.max_ts = std::max(s.max_ts, *std::max_element(times + begin, times + end));
      else
        s.max_ts = strategy_.timestamp.max_of(std::span{records}.subspan(begin, end - begin),
                                              s.max_ts);
      return;
    }
    if (!s.generator)
      s.generator = strategy_.generator();
    for (auto i = begin; i < end; ++i)
      s.generator->on_event(records[i], times ? times[i] : strategy_.timestamp(records[i]));
  }

  std::optional<event_time> current(split_state& s) {
    if (strategy_.bounded_delay) {
      if (s.max_ts == min_watermark)
        return std::nullopt;
      return detail::saturating_add(detail::saturating_add(s.max_ts, -*strategy_.bounded_delay),
                                    -duration{1});
    }
    return s.generator ? s.generator->current() : std::nullopt;
  }

  watermark_strategy<T> strategy_;
  std::optional<clock::time_point> opened_; ///< the first update
  std::map<int, split_state> splits_;
  event_time watermark_ = min_watermark;
  bool idle_ = false;
  int current_split_ = 0;
};

} // namespace sluice
