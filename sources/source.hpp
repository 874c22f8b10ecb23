#pragma once
/// The source interface. Connectors implement `source<T>`; they know nothing of actors.
///
/// A source task calls `poll` repeatedly, from one thread at a time. `poll` must not
/// block: when nothing is available it returns `idle` with a hint when to ask again.
#include "sluice/core/batch.hpp"
#include "sluice/core/epoch.hpp"
#include "sluice/core/error.hpp"
#include "sluice/core/time.hpp"
#include "sluice/sources/watermarks.hpp"

#include <charconv>
#include <chrono>
#include <cstdint>
#include <functional>
#include <limits>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace sluice {

/// Facts about one parallel source instance.
struct source_context {
  std::string name;
  int instance = 0;
  int parallelism = 1;
  std::shared_ptr<const clock> processing_clock = default_clock();
  /// How the job cuts epochs. Under a micro-batch trigger only `plan_trigger` (or
  /// `begin_trigger`) fixes what polls read; under `available_now` a source that can tell
  /// what is available takes it at its first plan and ends there, as Spark's sources do.
  trigger epochs{};
  /// When the job first started, as the coordinator (node 0 in a multi-node run) read its
  /// processing clock's wall time: the same for every instance on every node and for every
  /// attempt of one run. Sources that count from their creation (`rate`) start there, as
  /// Spark's driver creates a source once for all partitions. Unset outside the runtime.
  std::optional<event_time> job_start{};
  /// Asks the task to poll this source now instead of after the `retry_after` of its last
  /// `idle` poll: for a source whose client hears of new input on a thread of its own (a
  /// Kafka consumer's queue event), so records do not wait out the poll interval. Callable
  /// from any thread, cheap, and a no-op unless the task is waiting; the source must still
  /// answer `idle` with an interval, which stays the fallback. Outside the runtime: no-op.
  std::function<void()> wake = [] {};
};

/// What one `poll` call achieved.
struct poll_result {
  enum class status {
    more, ///< call again right away
    idle, ///< nothing available now; call again after `retry_after`
    end,  ///< bounded input is exhausted; `poll` will not be called again
  };
  status state = status::more;
  std::chrono::nanoseconds retry_after{0};

  static poll_result more() { return {status::more, {}}; }
  static poll_result idle(std::chrono::nanoseconds retry) { return {status::idle, retry}; }
  static poll_result end() { return {status::end, {}}; }
};

/// What one source instance will read in a micro-batch (`source_base::plan_trigger`).
struct trigger_plan {
  /// Input is waiting (or the source cannot tell before polling).
  bool available = true;
  /// Where the batch's input ends, as text only the source reads back (end offsets per
  /// partition, the files taken, a sequence number); empty when the source cannot replay a
  /// batch exactly.
  std::string end;
};

/// A record that could not be decoded, kept with where it came from. Sources with the
/// `dead_letter` policy emit these on output port 1.
struct dead_letter {
  std::string source;   ///< the source node's name
  std::string location; ///< e.g. "data/in.csv:17" or "socket 127.0.0.1:9999 line 4"
  std::string raw;      ///< the offending input, truncated to 1 KiB
  std::string error;    ///< why it failed

  friend bool operator==(const dead_letter&, const dead_letter&) = default;
};

template <class Inspector>
bool inspect(Inspector& f, dead_letter& x) {
  return f.object("dead_letter")
    .fields(f.field("source", x.source), f.field("location", x.location), f.field("raw", x.raw),
            f.field("error", x.error));
}

/// What a source does with input it cannot decode. Nothing is dropped silently.
enum class on_malformed {
  fail,        ///< fail the job with an error naming the input and line (the default)
  dead_letter, ///< emit a `dead_letter` on the source's second output and count it
};

/// Where a source puts what it polled.
template <class T>
struct source_output {
  std::vector<T>& records;
  std::vector<dead_letter>& dead_letters;
  /// Set by the runtime when the source has a watermark strategy.
  std::vector<split_mark>* splits = nullptr;
  std::vector<int>* ended_splits = nullptr;
  std::vector<int>* new_splits = nullptr;

  /// Records appended from now on belong to split `id` (a partition, a file): each split
  /// gets its own watermark. Sources with a single split need not call it.
  void begin_split(int id) {
    if (splits)
      splits->push_back(split_mark{id, records.size()});
  }
  /// Split `id` has no more records: it stops holding the watermark back.
  void end_split(int id) {
    if (ended_splits)
      ended_splits->push_back(id);
  }
  /// Split `id` exists before its first record (an assigned, still empty Kafka partition):
  /// it holds the watermark back until it has records or turns idle, as in Flink, so data
  /// that arrives there later is not behind a watermark its siblings pushed ahead.
  void add_split(int id) {
    if (new_splits)
      new_splits->push_back(id);
  }
};

/// The type-erased side the runtime drives.
class source_base {
public:
  virtual ~source_base() = default;
  virtual result<void> open(const source_context& ctx) = 0;
  /// Polls up to `max` records; records go to port 0, dead letters to port 1.
  virtual result<poll_result> poll_batches(std::size_t max, batch_ptr& records,
                                           batch_ptr& dead_letters) = 0;
  virtual void close() {}
  /// Records that could not be decoded so far (all of them, whatever the policy).
  virtual std::uint64_t malformed_count() const noexcept { return 0; }
  /// True when a watermark strategy is attached.
  virtual bool has_watermarks() const noexcept { return false; }
  /// The instance's watermark and idleness after the last poll, at processing time `now`.
  virtual watermark_update watermarks(clock::time_point /*now*/) { return {}; }

  // -- micro-batch mode ------------------------------------------------------------------

  /// The coordinator's wall time when it asked for the coming trigger, given just before
  /// `plan_trigger` plans one afresh. Spark computes a batch's offsets once, on the driver:
  /// a source whose plan depends on the clock (`rate`) plans from this time, so that every
  /// instance, on any node and whatever its own clock, cuts the batch alike. Default:
  /// ignored.
  virtual void trigger_time(event_time /*wall*/) {}

  /// Starts a trigger: fixes what the polls of this trigger read (Spark's latest offset
  /// under the read limit, e.g. `max_files_per_trigger` new files) and says whether any
  /// input is waiting. Polls then return `idle` or `end` once the trigger's input is read.
  /// Calling it again before that keeps the trigger's input. `unlimited`: ignore per-trigger
  /// caps (Trigger.Once). Default: input may be waiting; polls say when there is none.
  virtual result<bool> begin_trigger(bool /*unlimited*/) { return true; }
  /// Micro-batch, exact replay (Spark's offset log): like `begin_trigger`, but also says
  /// where this trigger's input ends, as text that `replay_trigger` reads back. The runtime
  /// writes every source's plan to the checkpoint store before the batch runs, so that after
  /// a crash batch N is read again with exactly the same rows, whatever arrived meanwhile.
  /// `max_records`: the runtime's per-trigger record cap for sources that never run dry
  /// (ignored when `unlimited`). Default: `begin_trigger`, with no end (not replayable).
  [[nodiscard]] virtual result<trigger_plan> plan_trigger(bool unlimited, std::uint64_t max_records) {
    static_cast<void>(max_records);
    auto available = begin_trigger(unlimited);
    if (!available)
      return std::move(available).error();
    return trigger_plan{*available, {}};
  }
  /// After a restart: the trigger an earlier run planned (its `trigger_plan::end`) but did
  /// not complete is fixed again to exactly that end, from the restored position; polls
  /// then read it as after `plan_trigger`. Default: not replayable.
  [[nodiscard]] virtual result<void> replay_trigger(std::string_view end) {
    static_cast<void>(end);
    return make_error(error_code::invalid_option,
                      "this source cannot replay a planned micro-batch exactly");
  }
  /// After a restart at another parallelism (`restores_from_all_instances` sources): the
  /// trigger the earlier run planned, as every old instance's `trigger_plan::end`; this
  /// instance reads its own share of their union, as its restored positions split them.
  [[nodiscard]] virtual result<void> replay_trigger_all(const std::vector<std::string>& ends) {
    static_cast<void>(ends);
    return make_error(error_code::invalid_option,
                      "this source cannot replay a planned micro-batch at another parallelism");
  }
  /// The position after everything polled so far, as JSON text (a progress report's
  /// `endOffset`). Empty: the runtime reports the number of records read.
  virtual std::string offset() const { return {}; }
  // -- checkpoints -----------------------------------------------------------------------

  /// Where the next poll continues, as bytes (a sequence number; files and a line). Unset:
  /// the source cannot replay, so a restart loses what it read after the last checkpoint
  /// (the socket source: at-most-once).
  virtual std::optional<std::string> position() const { return std::nullopt; }
  /// Continues after `position`, which this instance's `position()` returned in an earlier
  /// run. Called after `open`, before the first poll.
  [[nodiscard]] virtual result<void> seek(std::string_view /*position*/) {
    return make_error(error_code::invalid_option, "this source cannot replay from a checkpoint");
  }
  /// The position stored with checkpoint `checkpoint`. Sources that commit offsets back
  /// somewhere when the checkpoint completes (Kafka) remember them here.
  virtual std::optional<std::string> snapshot_position(std::int64_t /*checkpoint*/) {
    return position();
  }
  /// Checkpoint `checkpoint` is complete.
  [[nodiscard]] virtual result<void> notify_checkpoint_complete(std::int64_t /*checkpoint*/) {
    return {};
  }
  /// True when the source acts on `notify_checkpoint_complete`: its task then stays until
  /// the last checkpoint it took part in completes, even after its input ended.
  virtual bool wants_checkpoint_complete() const noexcept { return false; }
  /// True when each instance restores from the positions of every old instance (it takes
  /// the partitions it owns now), so the source's parallelism may change between runs.
  virtual bool restores_from_all_instances() const noexcept { return false; }
  /// With `restores_from_all_instances`: the positions every old instance stored.
  [[nodiscard]] virtual result<void> seek_all(const std::vector<std::string>& /*positions*/) {
    return make_error(error_code::internal,
                      "seek_all called on a source that restores one position per instance");
  }

  /// Micro-batch mode: also gather statistics of the polled records' event times.
  void collect_event_time_stats(bool on) noexcept { collect_stats_ = on; }
  /// The statistics gathered since the last call.
  event_time_stats take_event_time_stats() noexcept { return std::exchange(stats_, {}); }
  /// The delay of a bounded watermark strategy (`max event time - delay` is Spark's
  /// watermark); unset for other strategies and without one.
  virtual std::optional<duration> watermark_delay() const noexcept { return std::nullopt; }

protected:
  bool collect_stats_ = false;
  event_time_stats stats_;
};

/// `begin_trigger` of a source whose `plan_trigger` decides what a trigger reads: whether
/// that plan, without a record cap, has input.
[[nodiscard]] inline result<bool> begin_as_planned(source_base& s, bool unlimited) {
  auto plan = s.plan_trigger(unlimited, std::numeric_limits<std::uint64_t>::max());
  if (!plan)
    return std::move(plan).error();
  return plan->available;
}

/// Reads back a sequence number a source wrote as decimal text (its position, the end of a
/// planned trigger): digits only, within 64 bits; none for anything else. Damaged text must
/// not become another number (std::stoull reads "-1" as 2^64 - 1 and "2x" as 2), which
/// would skip or repeat records without a word.
[[nodiscard]] inline std::optional<std::uint64_t> parse_sequence_number(std::string_view text) noexcept {
  std::uint64_t n = 0;
  const auto* end = text.data() + text.size();
  const auto [stop, ec] = std::from_chars(text.data(), end, n);
  if (text.empty() || ec != std::errc{} || stop != end)
    return std::nullopt;
  return n;
}

/// A source of `T`.
template <class T>
class source : public source_base {
public:
  using record_type = T;
  virtual result<poll_result> poll(source_output<T>& out, std::size_t max) = 0;

  result<poll_result> poll_batches(std::size_t max, batch_ptr& records,
                                   batch_ptr& dead_letters) final {
    auto recs = make_batch<T>(max);
    source_output<T> out{recs->records, bad_};
    if (tracker_) {
      marks_.clear();
      ended_.clear();
      added_.clear();
      out.splits = &marks_;
      out.ended_splits = &ended_;
      out.new_splits = &added_;
    }
    auto r = poll(out, max);
    if (tracker_) {
      for (int id : added_)
        tracker_->add_split(id);
      // The records' event times, taken once for the statistics and the watermark.
      const event_time* times = nullptr;
      if (collect_stats_) {
        times_.resize(recs->records.size());
        tracker_->strategy().timestamp.fill(recs->records, times_.data());
        stats_.add_all(times_);
        times = times_.data();
      }
      tracker_->observe(recs->records, marks_, times);
      for (int id : ended_)
        tracker_->end_split(id);
    }
    if (!recs->records.empty())
      records = std::move(recs);
    if (!bad_.empty()) {
      dead_letters = std::make_shared<batch<dead_letter>>(std::move(bad_));
      bad_.clear();
    }
    return r;
  }

  /// Attaches a watermark strategy (done by `job::from`, before `open`).
  void set_watermark_strategy(watermark_strategy<T> strategy) {
    tracker_.emplace(std::move(strategy));
  }
  bool has_watermarks() const noexcept final { return tracker_.has_value(); }
  watermark_update watermarks(clock::time_point now) final {
    return tracker_ ? tracker_->update(now) : watermark_update{};
  }
  std::optional<duration> watermark_delay() const noexcept final {
    return tracker_ ? tracker_->strategy().bounded_delay : std::nullopt;
  }

private:
  std::vector<dead_letter> bad_; // reused: most polls have no dead letters
  std::vector<event_time> times_; // reused: the polled records' event times, for stats_
  std::optional<watermark_tracker<T>> tracker_;
  std::vector<split_mark> marks_;
  std::vector<int> ended_;
  std::vector<int> added_;
};

} // namespace sluice
