#pragma once
/// The Kafka sink (librdkafka): none, at-least-once or exactly-once delivery.
///
/// ```cpp
/// stream.sink_to(sinks::kafka<alert>{{.bootstrap_servers = "127.0.0.1:9092",
///                                     .topic = "alerts",
///                                     .key = [](const alert& a) { return a.account; },
///                                     .delivery = sinks::kafka_delivery::exactly_once,
///                                     .transactional_id_prefix = "fraud-job"}});
/// ```
///
/// With `exactly_once` each checkpoint's output is one Kafka transaction, committed when
/// the checkpoint completes. Each instance keeps a pool of transactional producers
/// (`producer_pool_size`, as Flink's KafkaSink), so the records after a barrier go into the
/// next transaction at once while the previous one waits, pre-committed, for its checkpoint.
/// The records of a transaction that is not yet committed are also kept in the checkpoint,
/// and each transaction carries a marker (a group offset holding the transaction's number
/// in its run), so a restart decides from Kafka itself whether that output is already
/// there, and writes it again if not. docs/kafka.md explains the design and recovery.
#include "sluice/kafka/client.hpp"
#include "sluice/kafka/record.hpp"
#include "sluice/sinks/sink.hpp"

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace sluice::sinks {

enum class kafka_delivery {
  none,          ///< fire and forget (failures still fail the job)
  at_least_once, ///< flush and check every record at each checkpoint (the default)
  exactly_once,  ///< one transaction per checkpoint; needs checkpoints
};

/// Options of the Kafka sink that do not depend on the record type.
struct kafka_sink_settings {
  std::string bootstrap_servers{};
  std::string topic{};
  kafka::value_format format = kafka::value_format::json;
  kafka_delivery delivery = kafka_delivery::at_least_once;
  /// `exactly_once`: transactional ids are "<prefix>-<sink name>-<instance>" for the first
  /// producer of the pool and "<prefix>-<sink name>-<instance>.<n>" for the others, stable
  /// across restarts so a restarted instance fences its predecessors off. Required for
  /// exactly_once and unique per job (Flink's transactionalIdPrefix).
  std::string transactional_id_prefix{};
  /// `exactly_once`: transactional producers per instance (each a librdkafka producer with
  /// its own threads and connection). With 2, the records after a checkpoint's barrier go
  /// into Kafka at once, in the next transaction, while the previous one waits for its
  /// checkpoint to complete; with 1 they wait in memory until that commit. More than 2
  /// helps only when barriers overtake commits (checkpoints that fail or complete late).
  /// When none is free, records wait in memory: never lost. Default 2, 1 to 16.
  int producer_pool_size = 2;
  /// Kafka aborts a transaction left open longer than this (a crashed job's blocks
  /// read_committed readers at most this long). Must not exceed the broker's
  /// `transaction.max.timeout.ms`. Default 60 s.
  std::chrono::milliseconds transaction_timeout = std::chrono::seconds{60};
  /// How long flushes and transaction calls may take before the job fails. Default 30 s.
  std::chrono::milliseconds flush_timeout = std::chrono::seconds{30};
  /// `open` fails when no broker answers within this. Default 10 s.
  std::chrono::milliseconds connect_timeout = std::chrono::seconds{10};
  /// librdkafka producer properties, passed through; they win over the defaults each
  /// delivery sets (`detail::producer_properties`, docs/kafka.md "Producer settings").
  kafka::properties properties{};
};

/// The largest `producer_pool_size`.
inline constexpr int max_kafka_producer_pool = 16;

namespace detail {

/// The librdkafka properties of a sink instance's producers: the user's `properties` over
/// the defaults its delivery needs (docs/kafka.md, "Producer settings").
[[nodiscard]] kafka::properties producer_properties(const kafka_sink_settings& s,
                                                    bool transactional);

/// One record ready for Kafka.
struct kafka_out_record {
  std::optional<std::string> key;
  std::string value{};
  std::int32_t partition = -1; ///< -1: librdkafka's partitioner
};

template <class Inspector>
bool inspect(Inspector& f, kafka_out_record& x) {
  return f.object("kafka_out_record")
    .fields(f.field("key", x.key), f.field("value", x.value), f.field("partition", x.partition));
}

/// The delivery logic of one sink instance over encoded records (see docs/kafka.md).
class kafka_writer {
public:
  kafka_writer();
  ~kafka_writer();
  [[nodiscard]] result<void> open(const kafka_sink_settings& settings, const sink_context& ctx);
  /// The topic's partition count (for a user partitioner).
  int partitions() const noexcept;
  [[nodiscard]] result<void> write(kafka_out_record r);
  [[nodiscard]] result<void> flush();
  [[nodiscard]] result<void> pre_commit(std::int64_t id);
  [[nodiscard]] result<void> snapshot(std::int64_t id, snapshot_writer& w);
  [[nodiscard]] result<void> commit(std::int64_t id);
  [[nodiscard]] result<void> restore(std::int64_t id, snapshot_reader& r);
  [[nodiscard]] result<void> close();
  bool exactly_once() const noexcept;

private:
  struct impl;
  std::unique_ptr<impl> p_;
};

} // namespace detail

/// One instance of the Kafka sink. See `kafka` for the contract.
template <class T>
class kafka_sink final : public sink<T> {
public:
  using key_fn = std::function<std::optional<std::string>(const T&)>;
  using partition_fn = std::function<int(const T&, int partitions)>;

  kafka_sink(kafka_sink_settings settings, key_fn key, partition_fn partitioner)
    : settings_(std::move(settings)), key_(std::move(key)), partitioner_(std::move(partitioner)) {}

  result<void> open(const sink_context& ctx) override { return writer_.open(settings_, ctx); }
  result<void> write(std::vector<T>& records) override {
    for (const auto& r : records) {
      detail::kafka_out_record out;
      if (key_)
        out.key = key_(r);
      out.value = kafka::encode_value(r, settings_.format);
      if (partitioner_) {
        const int n = writer_.partitions();
        out.partition = partitioner_(r, n);
        if (out.partition < 0 || out.partition >= n)
          return make_error(error_code::user_function_failed,
                            "kafka sink: the partitioner returned " + std::to_string(out.partition) +
                              " for a topic with " + std::to_string(n) + " partitions");
      }
      if (auto ok = writer_.write(std::move(out)); !ok)
        return ok;
    }
    return {};
  }
  result<void> flush() override { return writer_.flush(); }
  result<void> pre_commit(std::int64_t id) override { return writer_.pre_commit(id); }
  result<void> snapshot(std::int64_t id, snapshot_writer& w) override { return writer_.snapshot(id, w); }
  result<void> commit(std::int64_t id) override { return writer_.commit(id); }
  result<void> restore(std::int64_t id, snapshot_reader& r) override { return writer_.restore(id, r); }
  bool exactly_once() const noexcept override { return writer_.exactly_once(); }
  result<void> close() override { return writer_.close(); }

private:
  kafka_sink_settings settings_;
  key_fn key_;
  partition_fn partitioner_;
  detail::kafka_writer writer_;
};

[[nodiscard]] result<void> validate_kafka_sink(const kafka_sink_settings& s);

/// Options of the Kafka sink.
template <class T>
struct kafka_sink_options : kafka_sink_settings {
  /// The record key. Unset: records have no key.
  std::function<std::optional<std::string>(const T&)> key{};
  /// The partition of a record, given the topic's partition count. Unset: librdkafka's
  /// partitioner (by key hash; keyless records spread).
  std::function<int(const T&, int partitions)> partitioner{};
};

/// Descriptor: `stream.sink_to(sinks::kafka<T>{{.bootstrap_servers = ..., .topic = ...}})`.
template <class T>
struct kafka : kafka_sink_options<T> {
  using record_type = T;

  explicit kafka(kafka_sink_options<T> options) : kafka_sink_options<T>(std::move(options)) {}

  std::unique_ptr<sink<T>> create(const sink_context&) const {
    return std::make_unique<kafka_sink<T>>(static_cast<const kafka_sink_settings&>(*this),
                                           this->key, this->partitioner);
  }
  std::string describe() const { return "kafka(" + this->topic + ")"; }
  /// Like Spark's Kafka sink it takes every output mode and appends what each epoch emits.
  static constexpr output_modes supported_modes() { return output_modes::all(); }
  result<void> validate() const {
    if (auto ok = validate_kafka_sink(*this); !ok)
      return ok;
    if (!sluice::kafka::format_supports<T>(this->format))
      return make_error(error_code::invalid_option,
                        "kafka sink: value format 'text' needs std::string records");
    return {};
  }
};

} // namespace sluice::sinks
