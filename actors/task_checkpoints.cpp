// Epochs, snapshots, acknowledgements, restore and commits of the task actor (task_actor.hpp).
#include "sluice/actors/task_actor.hpp"

namespace sluice {

void task_actor::on_aligned(std::optional<gate_event> ev) {
  if (!ev || failed_)
    return;
  epoch_report report;
  report.alignment = std::chrono::duration_cast<std::chrono::microseconds>(
    std::chrono::steady_clock::now() - alignment_began_);
  if (!end_chain_epoch(ev->epoch, report, ev->checkpoint))
    return;
  send_ack(std::move(report));
}

bool task_actor::end_chain_epoch(std::int64_t epoch, epoch_report& report, bool checkpoint) {
  std::vector<operator_epoch_stats> stats;
  if (!guarded([&] { return chain_->end_epoch(epoch, stats); }))
    return false;
  if (checkpoint) {
    sync_point("snapshot", epoch);
    const auto began = std::chrono::steady_clock::now();
    // The synchronous part: the pieces' bytes (or functions making them) for the writer.
    if (!guarded([&] {
          return snapshot_chain(epoch, view(), std::exchange(snapshotted_, true),
                                snapshot_pieces_);
        }))
      return false;
    report.checkpoint = true;
    report.pause = std::chrono::duration_cast<std::chrono::microseconds>(
      std::chrono::steady_clock::now() - began);
    last_checkpoint_ = epoch;
  }
  flush_routers();
  out_->broadcast(channel_item::barrier_of(epoch, checkpoint));
  last_epoch_ = epoch;
  report.task = index_;
  report.epoch = epoch;
  for (std::size_t i = 0; i < stats.size(); ++i) {
    const auto node = plan_.nodes[i];
    const auto& spec = bp_->logical.node(node);
    if (stats[i].state) {
      auto st = *stats[i].state;
      auto& nm = metrics_.nodes[i];
      nm.state_entries.store(st.rows_total, std::memory_order_relaxed);
      nm.state_bytes.store(st.memory_used_bytes, std::memory_order_relaxed);
      nm.timers_pending.store(st.timers_pending, std::memory_order_relaxed);
      st.node = node;
      st.name = spec.name;
      report.state.push_back(std::move(st));
    }
    if (stats[i].sink_rows)
      report.sinks.push_back(
        sink_epoch_report{node, spec.name, spec.description, *stats[i].sink_rows});
  }
  return true;
}

void task_actor::send_ack(epoch_report report) {
  if (!report.checkpoint) {
    send(coordinator_, msg::ack::value,
         epoch_report_ptr{std::make_shared<const epoch_report>(std::move(report))});
    return;
  }
  ++pending_writes_;
  bp_->writer->submit([store = bp_->store, self = caf::actor{this},
                       pieces = std::exchange(snapshot_pieces_, {}), previous = stored_pieces_,
                       report = std::move(report)]() mutable {
    auto written = store_pieces(*store, report.epoch, pieces, *previous);
    pieces.clear();
    if (written)
      report.pieces = std::move(*written);
    else
      report.checkpoint_problem = written.error().message;
    caf::anon_send(self, msg::written::value,
                   epoch_report_ptr{std::make_shared<const epoch_report>(std::move(report))});
  });
}

void task_actor::on_written(epoch_report_ptr report) {
  --pending_writes_;
  if (!report->checkpoint_problem.empty()) {
    auto named = std::make_shared<epoch_report>(*report);
    named->checkpoint_problem = "task '" + plan_.name + "' (instance " +
                                std::to_string(wiring_.instance + 1) + " of " +
                                std::to_string(plan_.parallelism) +
                                ") could not store its snapshot: " + report->checkpoint_problem;
    report = std::move(named);
    // The checkpoint is declined, not the task failed (Flink's tolerable checkpoint
    // failures): the coordinator counts it. The pieces it would have stored are missing,
    // so the next snapshot refers to none of this run's earlier ones: it is written in full.
    snapshotted_ = false;
  } else {
    sync_point("snapshotted", report->epoch);
  }
  send(coordinator_, msg::ack::value, report);
  finish_if_flushed();
}

chain_view task_actor::view() const {
  chain_view t{chain_.get(), source_.get(), {}, wiring_.instance, plan_.parallelism};
  for (auto id : plan_.nodes)
    t.names.push_back(bp_->logical.node(id).name);
  return t;
}

result<void> task_actor::restore() {
  const checkpoint_meta* meta = from_ && from_->meta ? &*from_->meta : nullptr;
  auto positioned = restore_chain(*bp_->store, meta, view());
  if (!positioned)
    return std::move(positioned).error();
  if (*positioned)
    last_offset_ = current_offset();
  if (meta) {
    last_epoch_ = meta->id;
    last_checkpoint_ = last_committed_ = meta->id;
  }
  return {};
}

void task_actor::on_commit(std::int64_t id) {
  if (failed_ || !chain_)
    return;
  sync_point("commit", id);
  if (source_ && !guarded([&] { return source_->notify_checkpoint_complete(id); }))
    return;
  for (std::size_t i = 0; i < chain_->size(); ++i)
    if (auto* op = chain_->node(i))
      if (!guarded([&] { return op->notify_checkpoint_complete(id); }))
        return;
  last_committed_ = std::max(last_committed_, id);
  finish_if_flushed();
}

} // namespace sluice
