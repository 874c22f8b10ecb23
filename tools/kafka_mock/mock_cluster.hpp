#pragma once
/// An in-process Kafka cluster for tests: librdkafka's mock cluster behind a small RAII class.
///
/// The brokers listen on loopback TCP and speak the real protocol, so any client (librdkafka in
/// this process or another, kcat) can use `bootstrap()`. What the mock does not do
/// (transactions that really abort, CreateTopics, retention beyond ~5 MiB per partition) is
/// listed in shared/DEPENDENCY-FACTS.md; tests that need those use the real broker of
/// scripts/kafka-broker.sh. librdkafka's headers stay in mock_cluster.cpp.
///
/// Every failure is returned as an `error`; nothing is printed (librdkafka's log is kept, and
/// its last lines are attached to errors).
#include "sluice/core/error.hpp"

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace sluice::kafka {

/// A Kafka protocol request kind (its ApiKey), for error injection.
enum class request : std::int16_t {
  produce = 0,
  fetch = 1,
  list_offsets = 2,
  metadata = 3,
  offset_commit = 8,
  offset_fetch = 9,
  find_coordinator = 10,
  join_group = 11,
  heartbeat = 12,
  leave_group = 13,
  sync_group = 14,
  init_producer_id = 22,
  add_partitions_to_txn = 24,
  add_offsets_to_txn = 25,
  end_txn = 26,
  txn_offset_commit = 28,
};

/// An error a mock broker answers with: a Kafka protocol error code as librdkafka numbers it
/// (`rd_kafka_resp_err_t`). Codes without a name here can be cast from librdkafka's constants.
enum class broker_error : int {
  none = 0,
  unknown_topic_or_partition = 3,
  leader_not_available = 5,
  not_leader_for_partition = 6,
  request_timed_out = 7,
  network_exception = 13,
  coordinator_load_in_progress = 14,
  coordinator_not_available = 15,
  not_coordinator = 16,
  not_enough_replicas = 19,
  not_enough_replicas_after_append = 20,
  /// Not an answer: the broker drops the connection (librdkafka's `_TRANSPORT`), as a crash
  /// would look to the client.
  disconnect = -195,
};

/// A mock Kafka cluster with brokers 1..N on loopback, alive as long as this object.
///
/// Thread safety: every member may be called from any thread; librdkafka applies each change on
/// the cluster's own thread. Clients still connected when the cluster is destroyed see their
/// connections fail, which is harmless in a test's teardown. A moved-from object may only be
/// destroyed or assigned to.
class mock_cluster {
public:
  /// Starts `brokers` brokers (ids 1..brokers). Fails with `invalid_option` if `brokers` < 1 and
  /// with `connector_failed` if librdkafka cannot start them (no free loopback port, ...).
  [[nodiscard]] static result<mock_cluster> create(int brokers = 1);

  mock_cluster(mock_cluster&&) noexcept;
  mock_cluster& operator=(mock_cluster&&) noexcept;
  mock_cluster(const mock_cluster&) = delete;
  mock_cluster& operator=(const mock_cluster&) = delete;
  /// Stops the brokers. Takes up to about 1 s with librdkafka 2.0.2 (measured: its mock thread
  /// notices the stop at its next 1 s poll), so a suite of many short cases may share a cluster.
  ~mock_cluster();

  /// "127.0.0.1:port,127.0.0.1:port,...", for `bootstrap.servers`.
  [[nodiscard]] std::string bootstrap() const;

  /// How many brokers the cluster has (their ids are 1..broker_count()).
  [[nodiscard]] int broker_count() const noexcept;

  /// Creates `name` with `partitions` partitions, replicated on up to 3 brokers. The mock has
  /// no CreateTopics API, and an auto-created topic gets 4 partitions: a test that cares about
  /// the count creates the topic here first. Creating an existing topic fails.
  [[nodiscard]] result<void> create_topic(std::string_view name, int partitions);

  /// Disconnects broker `id` and refuses new connections to it. Its partitions keep it as
  /// leader (librdkafka does not move them), so clients retry until `broker_up` or
  /// `set_leader`.
  [[nodiscard]] result<void> broker_down(int id);

  /// Lets broker `id` accept connections again.
  [[nodiscard]] result<void> broker_up(int id);

  /// Makes broker `id` the leader of `topic`/`partition` (after a `broker_down`, say).
  [[nodiscard]] result<void> set_leader(std::string_view topic, int partition, int id);

  /// Delays every response of broker `id` by `rtt`.
  [[nodiscard]] result<void> set_rtt(int id, std::chrono::milliseconds rtt);

  /// Makes the next `errors.size()` requests of kind `kind` (to any broker) fail, in order, with
  /// these errors; later requests succeed again. Sequences pushed for the same kind queue up.
  /// Example: `push_errors(request::produce, {broker_error::not_leader_for_partition,
  /// broker_error::request_timed_out})`: the next two produce requests fail, the third works.
  void push_errors(request kind, const std::vector<broker_error>& errors);

  /// Drops errors pushed for `kind` that no request has consumed yet.
  void clear_errors(request kind);

private:
  struct impl;
  explicit mock_cluster(std::unique_ptr<impl> state) noexcept;
  [[nodiscard]] result<void> check_broker(int id, std::string_view what) const;

  std::unique_ptr<impl> impl_;
};

} // namespace sluice::kafka
