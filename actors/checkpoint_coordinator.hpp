#pragma once
/// The coordinator's checkpoint bookkeeping: when the next checkpoint is due, when one in
/// flight is given up, when one fails, and completing one (its metadata written in one synced
/// write, which alone makes it restorable). CAF-free: the coordinator actor calls it and
/// acts on what it returns (tests/checkpoint/coordinator_test.cpp drives it directly).
#include "sluice/actors/epoch_planner.hpp"
#include "sluice/actors/runtime.hpp"
#include "sluice/checkpoint/store.hpp"

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

namespace sluice {

/// A checkpoint that failed, and why.
struct checkpoint_failure {
  std::int64_t id = 0;
  std::string why;
};

/// Finished source tasks, by task index: (piece name, bytes) of where their input ended.
/// Checkpoints taken after they finished carry these positions forward.
using final_positions = std::map<int, std::pair<std::string, std::string>>;

class checkpoint_coordinator {
public:
  /// Without a store (`store` null) nothing is ever due and no epoch is a checkpoint.
  checkpoint_coordinator(std::shared_ptr<checkpoint_store> store, checkpoint_options options,
                         std::string job, int max_key_groups);

  bool enabled() const noexcept { return store_ != nullptr; }
  /// A checkpoint's barriers are on their way and it has not completed or failed yet.
  bool in_flight() const noexcept { return !in_flight_.empty(); }
  /// Continuous mode: whether the epoch starting `now` is also a checkpoint.
  bool due(clock::time_point now) const;
  /// Continuous mode: when the next checkpoint is due (none while one is in flight, or
  /// without a store). The coordinator starts it then, between epoch boundaries if need be:
  /// the checkpoint interval is its own, as in Flink, not a multiple of the epochs'.
  std::optional<clock::time_point> next_due() const;
  /// Whether checkpoints keep that interval of their own (a positive `interval`). With an
  /// interval of 0 every epoch boundary is a checkpoint and none comes between two.
  bool between_epochs() const noexcept { return store_ && options_.interval.count() > 0; }
  /// Checkpoint `id`'s barriers were injected at `now`.
  void begin(std::int64_t id, clock::time_point now);
  /// A new run starts its tasks at `now`: nothing of the old one is in flight, and its first
  /// checkpoint is due one interval later (Flink's first checkpoint also waits the interval).
  void restart(clock::time_point now) noexcept {
    in_flight_.clear();
    run_started_ = now;
  }
  /// Continuous mode: a checkpoint still in flight `timeout` after it began is given up
  /// (Flink's checkpoint timeout); its barriers still flow and its late acknowledgements are
  /// ignored. Returns the oldest such checkpoint as a failure, to count with `count_failure`.
  std::optional<checkpoint_failure> expire(clock::time_point now);

  /// What ending an epoch did to checkpoints.
  struct outcome {
    std::optional<checkpoint_stats> completed; ///< checkpoint `id` is complete
    std::optional<checkpoint_failure> failed;  ///< checkpoint `id` failed: count it
    std::optional<error> fatal;                ///< the job must fail
  };
  /// Epoch `id` ended on every live task. When its barrier was a checkpoint's, the
  /// checkpoint completes (with `properties`, the finished sources' `finals`, and marked a
  /// savepoint when `savepoint`) or fails: a task declined it, a task ended the epoch without
  /// a snapshot (barriers numbered wrongly: never completed with pieces missing), or the
  /// metadata could not be written.
  outcome epoch_ended(std::int64_t id, const open_epoch& e, const final_positions& finals,
                      std::map<std::string, std::string> properties, bool savepoint,
                      clock::time_point now);

  /// Counts a failed checkpoint; an error (`checkpoint_failed`) when more failed in a row
  /// than `tolerable_failures`.
  std::optional<error> count_failure(const checkpoint_failure& f);

  std::int64_t completed() const noexcept { return completed_; }
  /// The measurements of the last 1000 completed checkpoints.
  const std::vector<checkpoint_stats>& history() const noexcept { return history_; }

private:
  std::shared_ptr<checkpoint_store> store_;
  checkpoint_options options_;
  std::string job_;
  int max_key_groups_;
  /// Checkpoints whose barriers are on their way, with when they began. Usually one; a
  /// source's final barrier may start another while one is in flight.
  std::map<std::int64_t, clock::time_point> in_flight_;
  std::set<std::int64_t> expired_; ///< given up after the timeout, acks still to come
  std::optional<clock::time_point> last_started_;
  std::optional<clock::time_point> last_done_;
  std::optional<clock::time_point> run_started_; ///< set by `restart`
  int failed_in_a_row_ = 0;
  std::int64_t completed_ = 0;
  std::vector<checkpoint_stats> history_;
};

/// `2026-01-01T12:00:00.000Z`: Spark's progress timestamps, always with milliseconds.
std::string iso_millis(event_time t);

} // namespace sluice
