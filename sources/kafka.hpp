#pragma once
/// The Kafka source (librdkafka), replayable from checkpoints.
///
/// ```cpp
/// job.from(sources::kafka<txn>{{.bootstrap_servers = "127.0.0.1:9092", .topics = {"txns"}}},
///          watermarks::bounded_out_of_orderness<txn>(5s, &txn::ts).with_idleness(30s));
/// // keys, headers, offsets and Kafka timestamps too:
/// job.from(sources::kafka<kafka::record<txn>>{{...}});
/// ```
///
/// - **Partitions** of the topics (or of every topic matching `topic_pattern`) are spread
///   over the parallel instances as Flink's KafkaSource does; partitions created later are
///   found every `discovery_interval` and read from their beginning.
/// - **Offsets live in the checkpoint**; a restart seeks to them, also with a different
///   parallelism. After each completed checkpoint they are committed to `group_id` too, so
///   lag tools show progress (the job never reads them back, except with
///   `start_position::committed()` on a fresh start).
/// - **Event time**: each partition is its own split with its own watermark; an assigned
///   partition without records holds the watermark back until it turns idle
///   (`with_idleness`), so its late-arriving data is not behind a watermark.
/// - **Malformed values** fail the job naming topic, partition and offset, or become dead
///   letters (`on_malformed::dead_letter`), counted either way.
/// - `read_committed` by default: records of aborted transactions are never seen.
/// - **Micro-batch triggers** (Spark's Kafka source): each trigger reads up to end offsets
///   fixed when it is planned, the partitions' latest offsets (last stable offsets under
///   read_committed) capped by `max_offsets_per_trigger`; the plan is replayed exactly after
///   a restart. `available_now` reads up to the latest offsets taken at its first trigger,
///   then ends; a trigger without new offsets runs no batch.
#include "sluice/kafka/client.hpp"
#include "sluice/kafka/record.hpp"
#include "sluice/sources/kafka_plan.hpp"
#include "sluice/sources/malformed.hpp"
#include "sluice/sources/source.hpp"

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

namespace sluice::sources {

/// Where a fresh start (no checkpoint) begins reading each partition.
struct kafka_start {
  enum class kind { earliest, latest, committed, offsets, timestamp };
  kind from = kind::earliest;
  /// `committed`/`offsets`: where partitions without a committed or given offset begin.
  kind fallback = kind::earliest;
  std::map<kafka::topic_partition, std::int64_t> offsets; ///< `offsets` only
  event_time timestamp{};                                 ///< `timestamp` only

  static kafka_start earliest() { return {}; }
  static kafka_start latest() { return {kind::latest, kind::earliest, {}, {}}; }
  /// The group's committed offsets (Kafka's default for consumer groups).
  static kafka_start committed(kind fallback = kind::earliest) {
    return {kind::committed, fallback, {}, {}};
  }
  static kafka_start at_offsets(std::map<kafka::topic_partition, std::int64_t> o,
                                kind fallback = kind::earliest) {
    return {kind::offsets, fallback, std::move(o), {}};
  }
  /// The first record whose Kafka timestamp is at or after `t`.
  static kafka_start at_timestamp(event_time t) { return {kind::timestamp, kind::earliest, {}, t}; }
};

/// Options of the Kafka source. `bootstrap_servers` and `topics` (or `topic_pattern`) are
/// required; everything else has a working default.
struct kafka_source_options {
  std::string bootstrap_servers{};
  std::vector<std::string> topics{};
  /// Every topic whose whole name matches this ECMAScript regex (internal `__` topics
  /// excluded), checked again at each discovery.
  std::string topic_pattern{};
  /// The consumer group offsets are committed to. Default: "sluice-<source name>".
  std::string group_id{};
  kafka_start start_position = kafka_start::earliest();
  /// How often to look for new partitions and topics. Zero: never. Default 10 s.
  std::chrono::milliseconds discovery_interval = std::chrono::seconds{10};
  /// Skip records of aborted transactions. Default: on.
  bool read_committed = true;
  kafka::value_format format = kafka::value_format::json;
  on_malformed malformed = on_malformed::fail;
  /// Bounded: each partition is read up to where it ends when the source catches up with
  /// it (its last stable offset under read_committed), then the source finishes (Flink's
  /// `setBounded(latest)`; Spark's available-now). No discovery then. Under a micro-batch
  /// trigger: up to the latest offsets taken at the first trigger, as `available_now`.
  /// Default: unbounded.
  bool bounded = false;
  /// Micro-batch triggers: at most this many offsets per trigger (Spark's
  /// `maxOffsetsPerTrigger`; an offset is a record, or a transaction marker). The limit is
  /// the whole source's: it is split evenly over the parallel instances (at least 1 each),
  /// and each instance splits its part over its partitions in proportion to what each has
  /// to read, Spark's rule. `triggers::once()` ignores it. Must be positive. Default: none.
  std::optional<std::int64_t> max_offsets_per_trigger{};
  /// Commit checkpointed offsets to `group_id` when a checkpoint completes. Default: on.
  bool commit_offsets_on_checkpoint = true;
  /// `open` fails when no broker answers within this. Default 10 s.
  std::chrono::milliseconds connect_timeout = std::chrono::seconds{10};
  /// How long to wait before polling again when nothing arrived. A record that arrives
  /// meanwhile has the task poll at once (the consumer's queue event wakes it,
  /// `source_context::wake`), so this is the fallback, not a delay records pay. Default
  /// 2 ms; must be positive.
  std::chrono::microseconds poll_interval = std::chrono::milliseconds{2};
  /// librdkafka consumer properties, passed through (they win over the defaults above).
  kafka::properties properties{};
};

namespace detail {

/// The partition bookkeeping of one source instance, whatever its record type: assignment,
/// start offsets, positions for checkpoints and offset commits.
class kafka_reader {
public:
  [[nodiscard]] result<void> open(const kafka_source_options& options, const source_context& ctx);
  /// Opened under a micro-batch trigger: polls read only what a plan fixed.
  bool trigger_mode() const noexcept { return trigger_mode_; }
  /// Micro-batch: fixes the next trigger's end offsets (see `kafka_source::plan_trigger`).
  [[nodiscard]] result<trigger_plan> plan_trigger(bool unlimited);
  /// Micro-batch: fixes the trigger's end offsets to `end`, a plan's `end` of an earlier
  /// run, from the restored positions.
  [[nodiscard]] result<void> replay_trigger(std::string_view end);
  /// Micro-batch, after a change of parallelism: `ends` are every old instance's plan; this
  /// instance fixes the ends of the partitions it owns now to their union's.
  [[nodiscard]] result<void> replay_trigger_all(const std::vector<std::string>& ends);
  /// Micro-batch: every partition has reached the trigger's end (or no trigger is planned).
  bool trigger_read() const noexcept;
  /// Continues from the positions of every old instance (any old parallelism).
  [[nodiscard]] result<void> restore(const std::vector<std::string>& positions);
  /// Hands up to `max` records to `fn` with their split id; `added` gets the split ids of
  /// partitions assigned during this call.
  [[nodiscard]] result<std::size_t>
  poll(std::size_t max, const std::function<void(const kafka::message_view&, int split)>& fn,
       std::vector<int>& added, std::vector<int>& ended);
  /// Bounded and every assigned partition read to its end; under a micro-batch trigger,
  /// every partition read to the query's end (available_now or bounded).
  bool finished() const noexcept;
  /// {"topic/partition": next offset} of this instance's partitions.
  std::string position() const;
  /// Remembers the offsets of checkpoint `id`, to commit them when it completes.
  void remember(std::int64_t id);
  /// Commits the offsets of checkpoint `id` (and drops older ones). Failures are counted,
  /// not fatal: the group's offsets are for monitoring only.
  void commit(std::int64_t id);
  /// Commits the last completed checkpoint's offsets and waits for it, then closes.
  void close();
  /// Spark's endOffset: {"topic": {"partition": offset}}.
  std::string offset_json() const;
  /// "kafka orders/3@17": where the last record came from.
  std::string location(const kafka::message_view& m) const;
  const std::string& name() const noexcept { return name_; }
  const std::string& label() const noexcept { return label_; }
  std::uint64_t failed_commits() const noexcept { return failed_commits_; }
  std::size_t partition_count() const noexcept { return next_.size(); }

private:
  [[nodiscard]] result<void> discover(bool first);
  /// `replay_trigger` (one plan, this instance's) and `replay_trigger_all` (`merged`: the
  /// plans of every old instance, of which this one takes the partitions it owns).
  [[nodiscard]] result<void> replay(const std::vector<std::string>& ends, bool merged);
  /// Micro-batch: the first discovery, and later ones when due (never for a bounded query).
  [[nodiscard]] result<void> discover_for_trigger();
  /// Micro-batch: pauses the partitions with nothing to read in the planned trigger and
  /// resumes, at their positions, the paused ones that have.
  [[nodiscard]] result<void> start_trigger(partition_offsets ends);
  /// Micro-batch poll: hands out records below the trigger's end offsets only.
  [[nodiscard]] result<std::size_t>
  poll_trigger(std::size_t max, const std::function<void(const kafka::message_view&, int split)>& fn,
               std::vector<int>& ended);
  [[nodiscard]] result<std::int64_t> start_offset(const kafka::topic_partition& tp, bool first);
  bool mine(const kafka::topic_partition& tp) const;
  /// The client for metadata and offset look-ups: the offset reader when there is one.
  kafka::consumer& lookup() { return offsets_reader_ ? *offsets_reader_ : *consumer_; }

  kafka_source_options options_;
  source_context ctx_;
  std::string name_{};
  std::string label_{};
  std::optional<kafka::consumer> consumer_;
  /// Micro-batch: asks for the latest offsets on its own connections, as Spark's driver-side
  /// offset reader does. On the reading consumer's, the broker would answer only after the
  /// fetch in flight there, which waits up to `fetch.wait.max.ms` (500 ms) for new data.
  std::optional<kafka::consumer> offsets_reader_;
  std::optional<std::map<kafka::topic_partition, std::int64_t>> restored_;
  std::map<kafka::topic_partition, std::int64_t> next_; ///< assigned partitions
  std::map<kafka::topic_partition, int> split_of_;
  std::set<kafka::topic_partition> at_end_; ///< bounded: partitions read to their end
  std::vector<int> new_splits_; ///< split ids of partitions assigned since the last poll
  bool trigger_mode_ = false;
  bool query_bounded_ = false; ///< micro-batch: the query ends at `query_end_`
  /// available_now (or bounded): the latest offsets at the first trigger.
  std::optional<partition_offsets> query_end_;
  /// The current trigger's end offsets, one per assigned partition (empty: none planned).
  partition_offsets trigger_end_;
  std::set<kafka::topic_partition> paused_; ///< paused in the consumer: at their trigger end
  std::map<std::int64_t, std::map<kafka::topic_partition, std::int64_t>> pending_commits_;
  std::optional<clock::time_point> last_discovery_;
  std::map<kafka::topic_partition, std::int64_t> last_completed_;
  std::uint64_t failed_commits_ = 0;
};

/// One instance of the Kafka source. See `kafka` for the contract.
template <class T>
class kafka_source final : public source<T> {
public:
  explicit kafka_source(kafka_source_options options) : options_(std::move(options)) {}

  result<void> open(const source_context& ctx) override { return reader_.open(options_, ctx); }

  result<poll_result> poll(source_output<T>& out, std::size_t max) override {
    std::optional<error> failure;
    int current = -1;
    std::vector<int> added;
    std::vector<int> ended;
    auto n = reader_.poll(
      max,
      [&](const kafka::message_view& m, int split) {
        if (failure)
          return;
        if (split != current) {
          out.begin_split(split);
          current = split;
        }
        auto decoded = kafka::decode<T>(m, options_.format);
        if (decoded) {
          out.records.push_back(std::move(*decoded));
          return;
        }
        ++malformed_;
        if (options_.malformed == on_malformed::fail) {
          failure = located_error(reader_.location(m), decoded.error());
          return;
        }
        out.dead_letters.push_back(dead_letter{reader_.name(), reader_.location(m),
                                               truncate_raw(m.value()), decoded.error().message});
      },
      added, ended);
    for (int id : added)
      out.add_split(id);
    for (int id : ended)
      out.end_split(id);
    if (!n)
      return std::move(n).error();
    if (failure)
      return std::move(*failure);
    if (reader_.trigger_mode()) {
      // A poll that found nothing waited up to poll_interval for the planned records; an
      // `idle` would end the trigger before its end offsets.
      if (!reader_.trigger_read())
        return poll_result::more();
      return reader_.finished() ? poll_result::end() : poll_result::idle(options_.poll_interval);
    }
    if (*n == 0 && reader_.finished())
      return poll_result::end();
    return *n == 0 ? poll_result::idle(options_.poll_interval) : poll_result::more();
  }

  /// Micro-batch: whether any assigned partition has offsets to read (plans the trigger).
  result<bool> begin_trigger(bool unlimited) override {
    auto plan = reader_.plan_trigger(unlimited);
    if (!plan)
      return std::move(plan).error();
    return plan->available;
  }
  /// Micro-batch: fixes the trigger's end offsets per assigned partition, Spark's latest
  /// offset under the read limit: each partition's latest offset (high watermark; last
  /// stable offset under read_committed), for available_now at most the one taken at the
  /// first trigger, capped by `max_offsets_per_trigger` unless `unlimited`. `end` is
  /// `{"topic":{"partition":offset}}`; `available` is false when no partition has new
  /// offsets. `max_records` does not apply: a Kafka trigger always ends at its end offsets,
  /// and Spark has no such cap (use `max_offsets_per_trigger`).
  result<trigger_plan> plan_trigger(bool unlimited, std::uint64_t /*max_records*/) override {
    return reader_.plan_trigger(unlimited);
  }
  /// Micro-batch, after a restart: the trigger's end offsets are `end` again (a plan's
  /// `end`), from the restored positions, whatever arrived since. Fails with `io_error`
  /// when `end` does not read, names a partition this instance does not read, or lies
  /// before the restored position of one.
  result<void> replay_trigger(std::string_view end) override { return reader_.replay_trigger(end); }
  /// Micro-batch, after a restart at another parallelism: `ends` are the plans of every old
  /// instance; this instance reads to their ends on the partitions it owns now (the others'
  /// are another instance's), nothing on partitions none of them planned.
  result<void> replay_trigger_all(const std::vector<std::string>& ends) override {
    return reader_.replay_trigger_all(ends);
  }
  std::uint64_t malformed_count() const noexcept override { return malformed_; }
  std::string offset() const override { return reader_.offset_json(); }
  std::optional<std::string> position() const override { return reader_.position(); }
  std::optional<std::string> snapshot_position(std::int64_t id) override {
    reader_.remember(id);
    return reader_.position();
  }
  result<void> notify_checkpoint_complete(std::int64_t id) override {
    reader_.commit(id);
    return {};
  }
  bool wants_checkpoint_complete() const noexcept override {
    return options_.commit_offsets_on_checkpoint;
  }
  void close() override { reader_.close(); }
  bool restores_from_all_instances() const noexcept override { return true; }
  result<void> seek_all(const std::vector<std::string>& positions) override {
    return reader_.restore(positions);
  }
  result<void> seek(std::string_view position) override {
    return reader_.restore({std::string{position}});
  }

private:
  kafka_source_options options_;
  kafka_reader reader_;
  std::uint64_t malformed_ = 0;
};

[[nodiscard]] result<void> validate_kafka_source(const kafka_source_options& o);

} // namespace detail

/// Descriptor: `job.from(sources::kafka<T>{{.bootstrap_servers = ..., .topics = {...}}})`.
/// `T` is a value type decoded in `format`, or `kafka::record<V>` to keep Kafka's metadata.
template <class T>
  requires std::default_initializable<T> && std::movable<T>
struct kafka : kafka_source_options {
  using record_type = T;

  explicit kafka(kafka_source_options options) : kafka_source_options(std::move(options)) {}

  const kafka_source_options& options() const noexcept { return *this; }
  std::unique_ptr<source<T>> create(const source_context&) const {
    return std::make_unique<detail::kafka_source<T>>(options());
  }
  std::string describe() const {
    std::string s = "kafka(";
    for (std::size_t i = 0; i < topics.size(); ++i)
      s += (i ? "," : "") + topics[i];
    if (!topic_pattern.empty())
      s += (topics.empty() ? "/" : ",/") + topic_pattern + "/";
    return s + ")";
  }
  result<void> validate() const {
    if (auto ok = detail::validate_kafka_source(*this); !ok)
      return ok;
    if (!sluice::kafka::format_supports<T>(format))
      return make_error(error_code::invalid_option,
                        "kafka source: value format 'text' needs std::string records");
    return {};
  }
};

} // namespace sluice::sources
