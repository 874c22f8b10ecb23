#pragma once
/// A thin, error-returning wrapper of librdkafka's C API, shared by the Kafka source and sink.
///
/// librdkafka's headers stay in client.cpp: the source and sink templates (and user code that
/// includes them) see only these classes. Every failure becomes an `error` naming the client
/// and what it tried; nothing is printed, librdkafka's own log goes to a callback that keeps
/// the last lines for error messages.
#include "sluice/core/error.hpp"

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace sluice::kafka {

/// librdkafka configuration properties ("bootstrap.servers", "acks", ...), passed through.
using properties = std::map<std::string, std::string>;

struct topic_partition {
  std::string topic;
  int partition = 0;

  friend auto operator<=>(const topic_partition&, const topic_partition&) = default;
  /// "orders/3"
  std::string to_string() const { return topic + "/" + std::to_string(partition); }
};

/// librdkafka's logical offsets, for `consumer::assign`.
namespace logical_offset {
inline constexpr std::int64_t beginning = -2; ///< the earliest retained record
inline constexpr std::int64_t end = -1;       ///< records produced after the assignment
inline constexpr std::int64_t stored = -1000; ///< the group's committed offset
} // namespace logical_offset

using header_list = std::vector<std::pair<std::string, std::string>>;

/// One consumed record, valid during the callback that receives it.
class message_view {
public:
  std::string_view topic() const noexcept { return topic_; }
  int partition() const noexcept { return partition_; }
  std::int64_t offset() const noexcept { return offset_; }
  /// Milliseconds since the Unix epoch (create or log-append time); unset if the record has
  /// none.
  std::optional<std::int64_t> timestamp_ms() const noexcept { return timestamp_ms_; }
  std::optional<std::string_view> key() const noexcept { return key_; }
  std::string_view value() const noexcept { return value_; }
  /// Copies the record's headers (a header without value gets an empty string).
  header_list headers() const;

private:
  friend class consumer;
  const void* raw_ = nullptr; // rd_kafka_message_t
  std::string_view topic_;
  int partition_ = 0;
  std::int64_t offset_ = 0;
  std::optional<std::int64_t> timestamp_ms_;
  std::optional<std::string_view> key_;
  std::string_view value_;
};

/// A committed group offset and the metadata string committed with it.
struct committed_entry {
  std::int64_t offset = 0;
  std::string metadata;
};

/// A consumer with manual partition assignment (Flink's KafkaSource assigns partitions
/// itself; the group is used only to store offsets for lag tools).
class consumer {
public:
  struct options {
    std::string bootstrap_servers{};
    std::string group_id{};
    bool read_committed = true;
    /// Bounds the first metadata request, so unreachable brokers fail `open`.
    std::chrono::milliseconds connect_timeout = std::chrono::seconds{10};
    /// Report partitions read to their end (librdkafka's partition EOF events).
    bool report_end = false;
    properties extra{};
    /// Names this client in errors: "kafka source 'orders' instance 1".
    std::string label = "kafka consumer";
    /// Called on a librdkafka thread when a record (or any event) arrives in the consumer's
    /// queue while it is empty, so that a caller waiting between polls can poll at once.
    /// Must be quick and thread-safe, and must not call this consumer. Empty: never called.
    std::function<void()> on_arrival{};
  };

  static result<consumer> open(const options& o);
  consumer(consumer&&) noexcept;
  consumer& operator=(consumer&&) noexcept;
  ~consumer();

  /// The partitions of `topics` and of every topic matching `pattern` (ECMAScript regex,
  /// whole name). A listed topic that does not exist is an error.
  result<std::vector<topic_partition>> partitions(const std::vector<std::string>& topics,
                                                  const std::string& pattern,
                                                  std::chrono::milliseconds timeout);
  /// Adds partitions to the assignment, each starting at an offset or a `logical_offset`.
  result<void> assign(const std::vector<std::pair<topic_partition, std::int64_t>>& start);
  /// Hands up to `max` records to `fn`; returns how many. With `options::report_end`,
  /// `at_end` hears when a partition is read to its end, with that end offset (its last
  /// stable offset under read_committed): every record before it was handed out, and the
  /// offsets between the last record and the end hold none (transaction markers, aborted
  /// records). `wait`: when nothing is there at once, wait up to this long for the first
  /// record or end report (zero: never block).
  result<std::size_t> poll(std::size_t max, const std::function<void(const message_view&)>& fn,
                           const std::function<void(const topic_partition&, std::int64_t end)>&
                             at_end = {},
                           std::chrono::milliseconds wait = std::chrono::milliseconds{0});
  /// Stops fetching `partitions`; records already fetched for them are discarded, not
  /// handed out (librdkafka purges them), so resume with `resume_at`.
  result<void> pause(const std::vector<topic_partition>& partitions);
  /// Fetches each paused partition again from the given offset. The seek is confirmed
  /// (within `timeout`) before fetching resumes, so no record fetched before the pause for
  /// another offset is ever handed out.
  result<void> resume_at(const std::vector<std::pair<topic_partition, std::int64_t>>& start,
                         std::chrono::milliseconds timeout);
  /// Commits offsets (the next offset to read) to the group; `wait`: until the broker
  /// confirmed.
  result<void> commit(const std::vector<std::pair<topic_partition, std::int64_t>>& offsets,
                      bool wait = false);
  /// The group's committed offsets (absent: none).
  result<std::map<topic_partition, std::int64_t>>
  committed(const std::vector<topic_partition>& partitions, std::chrono::milliseconds timeout);
  /// The group's committed offset of `tp` with its metadata (unset: none).
  result<std::optional<committed_entry>> committed_entry_of(const topic_partition& tp,
                                                            std::chrono::milliseconds timeout);
  /// The earliest offset whose timestamp is at or after `timestamp_ms`, per partition; the
  /// end offset where there is none.
  result<std::map<topic_partition, std::int64_t>>
  offsets_for_time(const std::vector<topic_partition>& partitions, std::int64_t timestamp_ms,
                   std::chrono::milliseconds timeout);
  /// The offset after the last record each partition holds now, as this consumer may read
  /// it: the high watermark, or under read_committed the last stable offset (what Spark's
  /// Kafka source and `seekToEnd` take as the latest offset). One request per leader.
  result<std::map<topic_partition, std::int64_t>>
  end_offsets(const std::vector<topic_partition>& partitions, std::chrono::milliseconds timeout);
  /// The low and high watermark offsets of a partition (asks the broker).
  result<std::pair<std::int64_t, std::int64_t>> watermark_offsets(const topic_partition& tp,
                                                                  std::chrono::milliseconds timeout);

  const std::string& label() const noexcept;

private:
  struct impl;
  explicit consumer(std::unique_ptr<impl> p);
  std::unique_ptr<impl> p_;
};

/// A producer, optionally transactional. Delivery failures are collected and reported by
/// the next `flush` (or `produce`), so no failure goes unseen.
class producer {
public:
  struct options {
    std::string bootstrap_servers{};
    /// Set: a transactional producer (enables idempotence); `init_transactions` fences any
    /// older producer of the same id and aborts its open transaction.
    std::optional<std::string> transactional_id{};
    std::chrono::milliseconds connect_timeout = std::chrono::seconds{10};
    properties extra{};
    std::string label = "kafka producer";
  };

  /// What kind of failure an error from this producer is.
  enum class failure {
    none,
    retriable, ///< try the same call again
    abortable, ///< abort the transaction and write it again
    fenced,    ///< another producer with the same transactional id took over
    fatal,     ///< the producer cannot be used any more
  };

  static result<producer> open(const options& o);
  producer(producer&&) noexcept;
  producer& operator=(producer&&) noexcept;
  ~producer();

  /// Queues one record. `partition` < 0: librdkafka's partitioner (by key hash). Blocks,
  /// serving delivery reports, while librdkafka's queue is full (backpressure).
  result<void> produce(const std::string& topic, int partition, std::optional<std::string_view> key,
                       std::string_view value, const header_list* headers = nullptr);
  /// Waits until every queued record is acknowledged; reports the first delivery failure.
  result<void> flush(std::chrono::milliseconds timeout);
  /// Serves delivery reports without waiting.
  void poll();
  /// The number of partitions of `topic`.
  result<int> partition_count(const std::string& topic, std::chrono::milliseconds timeout);

  result<void> init_transactions(std::chrono::milliseconds timeout);
  result<void> begin_transaction();
  /// Adds "group `group_id` has committed `offset` on `tp`" to the open transaction: it
  /// becomes visible exactly when the transaction commits.
  result<void> send_offset(const std::string& group_id, const topic_partition& tp,
                           std::int64_t offset, const std::string& metadata,
                           std::chrono::milliseconds timeout);
  result<void> commit_transaction(std::chrono::milliseconds timeout);
  result<void> abort_transaction(std::chrono::milliseconds timeout);

  /// The kind of the last failure returned by this producer.
  failure last_failure() const noexcept;
  const std::string& label() const noexcept;

private:
  struct impl;
  explicit producer(std::unique_ptr<impl> p);
  std::unique_ptr<impl> p_;
};

/// The offset group `group_id` has committed on `tp`, read as a `read_committed` client
/// sees it (pending transactional commits are waited for); unset if none.
result<std::optional<committed_entry>> committed_offset(const std::string& bootstrap_servers,
                                                     const properties& extra,
                                                     const std::string& group_id,
                                                     const topic_partition& tp,
                                                     std::chrono::milliseconds timeout);

/// Creates `topic` with `partitions` partitions (replication factor 1 unless `extra` of
/// the topic says otherwise). An existing topic is an error naming it.
result<void> create_topic(const std::string& bootstrap_servers, const std::string& topic,
                          int partitions, std::chrono::milliseconds timeout,
                          const properties& topic_config = {});
/// Grows `topic` to `partitions` partitions.
result<void> add_partitions(const std::string& bootstrap_servers, const std::string& topic,
                            int partitions, std::chrono::milliseconds timeout);

} // namespace sluice::kafka
