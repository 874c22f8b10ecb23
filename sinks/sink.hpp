#pragma once
/// The sink interface. Connectors implement `sink<T>`; they know nothing of actors.
///
/// A sink may block in `write` (a slow disk, a corked test sink): the task stops
/// returning credit upstream meanwhile, so backpressure reaches the sources.
#include "sluice/core/error.hpp"
#include "sluice/core/time.hpp"
#include "sluice/operators/operator.hpp"

#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace sluice {

/// Facts about one parallel sink instance.
struct sink_context {
  std::string name;
  int instance = 0;
  int parallelism = 1;
  /// The job's output mode, when it sets one (a memory sink replaces its table per epoch
  /// in `complete`).
  std::optional<output_mode> mode{};
  /// The job takes checkpoints: two-phase sinks commit per checkpoint, not per epoch.
  bool checkpoints = false;
  /// The checkpoint the run restores was asked for (`checkpoint_options::restore_from`): a
  /// new history starts there, so output committed for newer checkpoints may be rolled back.
  /// False when the run restores the latest usable checkpoint, or none.
  bool restore_requested = false;
  /// The job's attempt (0, then one more after each restart): files a sink writes before
  /// they are committed carry it, so a failed attempt's leftovers never collide with the
  /// next attempt's files.
  int attempt = 0;
};

/// A sink of `T`.
template <class T>
class sink {
public:
  using record_type = T;
  virtual ~sink() = default;
  virtual result<void> open(const sink_context&) { return {}; }
  /// Takes a batch of records; the sink may move them out.
  virtual result<void> write(std::vector<T>& records) = 0;
  /// Every record of epoch `epoch` has been written. Sinks that work per epoch
  /// (foreach_batch, the memory table) publish it here.
  virtual result<void> end_epoch(std::int64_t /*epoch*/) { return {}; }
  /// Makes everything written so far durable or visible.
  virtual result<void> flush() { return {}; }

  // -- two-phase commit with checkpoints ---------------------------------------------------

  /// At checkpoint `id`'s barrier: make everything written since the last pre-commit
  /// durable but not yet visible. Default: `flush()` (at-least-once sinks).
  virtual result<void> pre_commit(std::int64_t /*id*/) { return flush(); }
  /// Checkpoint `id` is complete: make what was pre-committed up to it visible. Must be
  /// idempotent: it may come again after a restart.
  virtual result<void> commit(std::int64_t /*id*/) { return {}; }
  /// At a restart from checkpoint `id` (after `open`): commit what was pre-committed up to
  /// it and discard whatever a crashed run wrote after it. `-1`: no checkpoint yet.
  virtual result<void> recover(std::int64_t /*id*/) { return {}; }
  /// After `pre_commit(id)`: stores what the sink needs to finish checkpoint `id` after a
  /// crash (Kafka keeps the records of its open transactions: see docs/kafka.md).
  virtual result<void> snapshot(std::int64_t /*id*/, snapshot_writer&) { return {}; }
  /// At a restart from checkpoint `id` (-1: none yet), with what `snapshot` stored. Default:
  /// `recover(id)`.
  virtual result<void> restore(std::int64_t id, snapshot_reader&) { return recover(id); }
  /// True when the sink delivers exactly once with checkpoints (two-phase or idempotent).
  virtual bool exactly_once() const noexcept { return false; }
  /// Flushes and releases resources.
  virtual result<void> close() { return flush(); }
};

/// Runs a `sink<T>` as the last operator of a chain.
template <class T>
class sink_operator final : public operator_base {
public:
  explicit sink_operator(std::unique_ptr<sink<T>> s) : sink_(std::move(s)) {}

  result<void> open(const operator_info& info) override {
    info_ = info;
    return sink_->open(sink_context{info.name, info.instance, info.parallelism, info.mode,
                                    info.checkpoints, info.restore_requested, info.attempt});
  }
  result<void> process(int, batch_ptr in, output&) override {
    auto& records = records_of<T>(*in);
    rows_in_epoch_ += records.size();
    return sink_->write(records);
  }
  result<void> end_epoch(std::int64_t epoch, output&, operator_epoch_stats& stats) override {
    stats.sink_rows = rows_in_epoch_;
    rows_in_epoch_ = 0;
    return sink_->end_epoch(epoch);
  }
  result<void> finish(output&) override { return sink_->flush(); }
  result<void> snapshot(std::int64_t id, snapshot_writer& w) override {
    if (auto r = sink_->pre_commit(id); !r)
      return r;
    return sink_->snapshot(id, w);
  }
  result<void> notify_checkpoint_complete(std::int64_t id) override { return sink_->commit(id); }
  result<void> restore(snapshot_reader& r) override { return sink_->restore(info_.restored, r); }
  result<void> close() override { return sink_->close(); }

private:
  std::unique_ptr<sink<T>> sink_;
  std::uint64_t rows_in_epoch_ = 0;
};

} // namespace sluice
