#pragma once
/// Spark's `rate` and `rate-micro-batch` sources: rows `{timestamp, value}` with values
/// counting from 0, split over Spark's partitions and Sluice's instances.
///
/// `rate` (Spark's RateStreamProvider / RateStreamMicroBatchStream): offsets are whole
/// seconds since the source's creation on the processing clock; a micro-batch from second s
/// to e holds the values valueAtSecond(s) .. valueAtSecond(e) - 1, stamped from the batch's
/// start time on. `rate_micro_batch` (Spark 3.3+'s RatePerMicroBatchProvider): batch N holds
/// N*rows_per_batch .. (N+1)*rows_per_batch - 1, all stamped start_timestamp +
/// N*advance_millis_per_batch, whatever the clock. See docs/connectors.md.
#include "sluice/sources/source.hpp"

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

namespace sluice::sources {

/// A row of either rate source (Spark's schema: `timestamp TIMESTAMP, value BIGINT`).
struct rate_row {
  event_time timestamp{};
  std::int64_t value = 0;

  friend bool operator==(const rate_row&, const rate_row&) = default;
  friend std::ostream& operator<<(std::ostream& os, const rate_row& r) {
    return os << "rate_row{" << r.timestamp.time_since_epoch().count() << "us, " << r.value
              << "}";
  }
};

template <class Inspector>
bool inspect(Inspector& f, rate_row& x) {
  return f.object("rate_row").fields(f.field("timestamp", x.timestamp), f.field("value", x.value));
}

/// Options of `rate` (Spark's option names in parentheses).
struct rate_options {
  /// Rows per second after the ramp-up, over all instances (`rowsPerSecond`, default 1).
  /// Positive.
  std::int64_t rows_per_second = 1;
  /// How long the speed grows before it reaches `rows_per_second` (`rampUpTime`, default
  /// 0 s; Spark truncates finer units to whole seconds, here the type does). Not negative.
  std::chrono::seconds ramp_up_time{0};
  /// Spark's partitions (`numPartitions`, default: Spark's default parallelism; here the
  /// source's parallelism). Partition p goes to instance p % parallelism. Positive.
  std::optional<int> num_partitions{};
};

/// Options of `rate_micro_batch` (Spark's option names in parentheses).
struct rate_micro_batch_options {
  /// Rows per micro-batch (`rowsPerBatch`, no default: must be positive).
  std::int64_t rows_per_batch = 0;
  /// As `rate_options::num_partitions` (`numPartitions`).
  std::optional<int> num_partitions{};
  /// The timestamp of batch 0's rows (`startTimestamp`, default 1970-01-01, ms since the
  /// epoch in Spark). Not before the epoch.
  event_time start_timestamp{};
  /// How far each batch's timestamp is ahead of the one before (`advanceMillisPerBatch`,
  /// default 1000 ms). Not negative, at most 2^31 - 1 ms (Spark's `Int`).
  std::chrono::milliseconds advance_millis_per_batch{1000};
};

namespace rate_detail {

/// Spark's `RateStreamProvider.valueAtSecond`: the first value not yet emitted at `seconds`
/// (the speed grows by rows_per_second / (ramp_up + 1) each second of the ramp-up).
std::int64_t value_at_second(std::int64_t seconds, std::int64_t rows_per_second,
                             std::int64_t ramp_up_seconds) noexcept;

/// The values [begin, end) that instance `instance` of `parallelism` owns when Spark's
/// `partitions` partitions split them (partition p: begin + p, + partitions, ...; the
/// instance's partitions are those with p % parallelism == instance), in increasing order.
class strided_range {
public:
  strided_range() = default;
  strided_range(std::int64_t begin, std::int64_t end, int partitions, int instance,
                int parallelism) noexcept;
  /// The next owned value at or after the cursor, if any (the cursor moves onto it).
  std::optional<std::int64_t> peek() noexcept;
  /// Moves past the value `peek` returned.
  void advance() noexcept { ++next_; }
  /// Puts the cursor at `value` (values below it are taken as emitted).
  void seek(std::int64_t value) noexcept;
  /// The cursor as an offset from `begin`.
  std::int64_t begin() const noexcept { return begin_; }
  std::int64_t end() const noexcept { return end_; }
  std::int64_t cursor() const noexcept { return begin_ + static_cast<std::int64_t>(next_); }

private:
  std::int64_t begin_ = 0;
  std::int64_t end_ = 0;
  std::uint64_t next_ = 0; ///< offset from begin_ of the next candidate
  std::uint64_t partitions_ = 1;
  std::uint64_t instance_ = 0;
  std::uint64_t parallelism_ = 1;
};

/// What the instances of one `rate` descriptor agree on: Spark computes the creation time
/// and each batch's end offset once, on the driver; here every instance reads the clock,
/// and the first to read it fixes the value for the others.
class rate_timeline {
public:
  /// The creation time (ms since the epoch): fixed by the first caller.
  std::int64_t creation_ms(std::int64_t proposed);
  /// The creation time of the job run that started at `job_start` (ms since the epoch,
  /// `source_context::job_start`, the same on every node): that start, unless an instance
  /// of this run already restored another (`restore_creation_ms`). A new start (node 0
  /// began the job again) replaces what an earlier run left here.
  std::int64_t creation_for_start(std::int64_t job_start);
  /// A restored position carries the creation time: it wins over a fresh one.
  void restore_creation_ms(std::int64_t creation);
  /// The end second of the batch that starts at second `start`: fixed by the first caller
  /// that finds input (`proposed > start`).
  std::int64_t end_second(std::int64_t start, std::int64_t proposed);

private:
  std::mutex mutex_;
  std::optional<std::int64_t> creation_ms_;
  std::optional<std::int64_t> job_start_; ///< the run `creation_ms_` belongs to, if known
  std::map<std::int64_t, std::int64_t> ends_;
};

} // namespace rate_detail

/// One instance of `rate`.
class rate_source final : public source<rate_row> {
public:
  rate_source(rate_options opts, std::shared_ptr<rate_detail::rate_timeline> timeline)
    : opts_(opts), timeline_(std::move(timeline)) {}

  result<void> open(const source_context& ctx) override;
  result<poll_result> poll(source_output<rate_row>& out, std::size_t max) override;
  void trigger_time(event_time wall) override;
  result<trigger_plan> plan_trigger(bool unlimited, std::uint64_t max_records) override;
  result<bool> begin_trigger(bool unlimited) override;
  result<void> replay_trigger(std::string_view end) override;
  std::string offset() const override;
  std::optional<std::string> position() const override;
  result<void> seek(std::string_view position) override;
  /// Restores at another parallelism too, when the checkpoint lies between batches (every
  /// micro-batch checkpoint does): all instances stood at the same second then.
  bool restores_from_all_instances() const noexcept override { return true; }
  result<void> seek_all(const std::vector<std::string>& positions) override;
  result<void> replay_trigger_all(const std::vector<std::string>& ends) override;

private:
  std::int64_t now_ms() const;
  result<void> check_second(std::int64_t second) const;
  result<void> start_range(std::int64_t start, std::int64_t end);

  rate_options opts_;
  std::shared_ptr<rate_detail::rate_timeline> timeline_;
  std::shared_ptr<const clock> clock_;
  std::string label_;
  int instance_ = 0;
  int parallelism_ = 1;
  int partitions_ = 1;
  bool micro_batch_ = false;
  std::int64_t max_seconds_ = 0;   ///< Spark's maxSeconds: later offsets overflow int64
  std::int64_t creation_ms_ = 0;
  std::int64_t last_time_ms_ = 0;  ///< Spark's lastTimeMs: the clock as read, never going back
  /// The coordinator's wall time for the coming trigger (ms): every instance plans from it.
  std::optional<std::int64_t> trigger_ms_;
  // The range being read: seconds [start_, end_) (continuous: one second at a time).
  std::int64_t start_ = 0;
  std::int64_t end_ = 0;
  rate_detail::strided_range range_;
  double ms_per_value_ = 0;
  bool in_trigger_ = false;                   ///< micro-batch: a planned trigger is being read
  /// No batch planned yet and nothing restored: Spark's first batch goes from no offset to
  /// offset 0 and runs, empty, even when no second has passed.
  bool first_batch_ = true;
  std::optional<std::int64_t> available_now_; ///< available_now: the second it stops at
};

/// One instance of `rate_micro_batch`.
class rate_micro_batch_source final : public source<rate_row> {
public:
  explicit rate_micro_batch_source(rate_micro_batch_options opts) : opts_(opts) {}

  result<void> open(const source_context& ctx) override;
  result<poll_result> poll(source_output<rate_row>& out, std::size_t max) override;
  result<trigger_plan> plan_trigger(bool unlimited, std::uint64_t max_records) override;
  result<bool> begin_trigger(bool unlimited) override;
  result<void> replay_trigger(std::string_view end) override;
  std::string offset() const override;
  std::optional<std::string> position() const override;
  result<void> seek(std::string_view position) override;
  /// As `rate_source`: another parallelism restores from a checkpoint between batches.
  bool restores_from_all_instances() const noexcept override { return true; }
  result<void> seek_all(const std::vector<std::string>& positions) override;
  result<void> replay_trigger_all(const std::vector<std::string>& ends) override;

private:
  /// Spark's offset: the next value and the timestamp of the batch that starts there (µs
  /// here, ms in Spark: a `start_timestamp` may be finer).
  struct spark_offset {
    std::int64_t offset = 0;
    std::int64_t timestamp_us = 0;
  };
  result<spark_offset> next_offset(const spark_offset& from) const;
  static std::string encode(const spark_offset& o);
  result<spark_offset> decode(std::string_view text, const char* what) const;

  rate_micro_batch_options opts_;
  std::string label_;
  int instance_ = 0;
  int parallelism_ = 1;
  int partitions_ = 1;
  bool available_now_ = false;
  spark_offset at_{};                   ///< where the next batch starts
  std::optional<spark_offset> end_;     ///< the planned batch's end, while it is read
  std::optional<spark_offset> stop_at_; ///< available_now: the end fixed at the first plan
  rate_detail::strided_range range_;
};

/// Descriptor: `job.from(sources::rate({.rows_per_second = 10}))`. Copies share one
/// timeline (creation time, batch ends): use one descriptor per job.
struct rate {
  using record_type = rate_row;
  rate_options options;
  std::shared_ptr<rate_detail::rate_timeline> timeline =
    std::make_shared<rate_detail::rate_timeline>();

  explicit rate(rate_options o = {}) : options(o) {}

  std::unique_ptr<source<rate_row>> create(const source_context&) const {
    return std::make_unique<rate_source>(options, timeline);
  }
  std::string describe() const;
  result<void> validate() const;
};

/// Descriptor: `job.from(sources::rate_micro_batch({.rows_per_batch = 100}))`. Micro-batch
/// triggers only, as in Spark.
struct rate_micro_batch {
  using record_type = rate_row;
  rate_micro_batch_options options;

  explicit rate_micro_batch(rate_micro_batch_options o) : options(o) {}

  std::unique_ptr<source<rate_row>> create(const source_context&) const {
    return std::make_unique<rate_micro_batch_source>(options);
  }
  std::string describe() const;
  result<void> validate() const;
};

} // namespace sluice::sources
