#pragma once
/// The task actor: one parallel instance of a chain, spawned through task.hpp. Private to
/// actors/. Its handlers are defined by concern:
/// - task.cpp: the messages it takes, setup, input, event time, output, completion, failures;
/// - task_checkpoints.cpp: epochs ending at barriers, snapshots, acknowledgements, restore,
///   commits;
/// - task_source.cpp: the source at a chain's head: polling, micro-batch triggers, the epochs
///   it ends itself, watermark alignment.
#include "sluice/actors/task.hpp"
#include "sluice/actors/actor_transport.hpp"
#include "sluice/actors/checkpoint_writer.hpp"
#include "sluice/actors/messages.hpp"
#include "sluice/actors/source_trigger.hpp"
#include "sluice/actors/task_restore.hpp"
#include "sluice/actors/task_snapshot.hpp"
#include "sluice/actors/trigger_plans.hpp"
#include "sluice/actors/watermark_alignment.hpp"
#include "sluice/channels/input_gate.hpp"
#include "sluice/channels/output_gate.hpp"
#include "sluice/operators/chain.hpp"
#include "sluice/operators/record_loop.hpp"
#include "sluice/actors/tsan.hpp"
#include <algorithm>
#include <atomic>
#include <cstdint>
#include <chrono>
#include <deque>
#include <unordered_map>
#include <iterator>
#include <string>
#include <utility>
#include <optional>
#include <map>

namespace sluice {

class task_actor final : public tsan_visible_actor,
                         public external_output,
                         public timer_service {
public:
  task_actor(caf::actor_config& cfg, std::shared_ptr<const blueprint> bp, int index, int attempt,
             caf::actor coordinator, std::shared_ptr<const restore_point> from,
             std::shared_ptr<const placement> where)
    : tsan_visible_actor(cfg), bp_(std::move(bp)), index_(index), attempt_(attempt),
      coordinator_(std::move(coordinator)), from_(std::move(from)), where_(std::move(where)),
      wiring_(bp_->tasks[static_cast<std::size_t>(index)]),
      plan_(bp_->plan.chains[static_cast<std::size_t>(wiring_.chain)]),
      metrics_(bp_->metrics[static_cast<std::size_t>(index)]) {}

  caf::behavior make_behavior() override;

  void on_exit() override;

  // -- output: what leaves the chain ------------------------------------------------------

  result<void> emit(int node, int port, batch_ptr records) override;

  // -- processing-time wake-ups of operators ----------------------------------------------

  void request_wakeup(clock::time_point when) override;

private:
  struct out_edge;

  /// Runs a handler and counts its time as busy (two clock reads per message: a batch, a
  /// poll, a timer), for the busy/backpressured/idle shares.
  template <class F>
  void busy(F&& f) {
    if (!bp_->options.collect_metrics) {
      f();
      return;
    }
    const auto began = std::chrono::steady_clock::now();
    f();
    const auto spent = std::chrono::steady_clock::now() - began;
    task_metrics::add(metrics_.busy_ns, static_cast<std::uint64_t>(spent.count()));
  }

  void set_backpressured(bool on);

  void on_timer();

  struct edge_writer final : channel_writer {
    task_actor* self = nullptr;
    int edge = 0;
    void send(int target, batch_ptr records) override {
      self->send_batch(edge, target, std::move(records));
    }
  };

  struct out_edge {
    std::unique_ptr<router_base> router;
    edge_writer writer;
  };

  // -- setup ------------------------------------------------------------------------------

  void on_wire(const std::vector<caf::actor>& all);

  void on_start();

  /// Whether task `task` runs on another node than this one.
  bool remote(int task) const;

  // -- input ------------------------------------------------------------------------------

  void accept_input(int channel, channel_item item);

  /// Processes queued input while no output waits for credit (input_gate.hpp has the rules).
  void drain();

  // -- event time -------------------------------------------------------------------------

  /// The task's watermark is the minimum over its live, non-idle input channels; it only
  /// advances. When every live input is idle, the task tells its outputs it is idle too.
  void update_watermark();

  void advance_watermark(event_time wm);

  void set_output_idle(bool idle);

  // -- epochs (task_checkpoints.cpp) ------------------------------------------------------

  bool micro_batch() const noexcept { return bp_->options.epochs.micro_batch(); }

  /// Every live input delivered the barrier: the epoch ends here. The chain emits its epoch
  /// output, the barrier goes on behind it, the coordinator hears of it; the input held back
  /// meanwhile comes next (the gate released it).
  void on_aligned(std::optional<gate_event> ev);

  /// Ends `epoch` in the chain, snapshots it when the barrier is a checkpoint's, and sends
  /// the barrier downstream; fills the report's operator part.
  bool end_chain_epoch(std::int64_t epoch, epoch_report& report, bool checkpoint);

  /// Acknowledges an epoch. A checkpoint's pieces are written by the writer thread first;
  /// it hands the report back (`written`) and the ack leaves from here, so that it always
  /// precedes this task's `done`.
  void send_ack(epoch_report report);

  void on_written(epoch_report_ptr report);

  // -- checkpoints (task_checkpoints.cpp) -------------------------------------------------

  bool checkpoints() const noexcept { return bp_->store != nullptr; }

  void sync_point(const char* step, std::int64_t id) const {
    if (bp_->options.sync_point)
      bp_->options.sync_point(step, id);
  }

  /// The operators and source of this task's chain, named by node, for snapshots and restores.
  chain_view view() const;

  /// At start with checkpoints: each operator takes its key groups' state (whatever the
  /// parallelism that wrote them), the source seeks to its position, two-phase sinks
  /// settle what the crashed run left (also when starting fresh). task_restore.hpp says how.
  result<void> restore();

  /// Checkpoint `id` is complete: two-phase sinks make their output visible.
  void on_commit(std::int64_t id);

  // -- sources (task_source.cpp) ----------------------------------------------------------

  /// A source task ends an epoch: after what it polled so far, at the head of its chain.
  void end_source_epoch(std::int64_t epoch, bool checkpoint);

  std::string current_offset() const;

  /// Micro-batch: fix this trigger's input (where it ends) and say whether there is any
  /// (source_trigger.hpp: planned afresh or replayed from the offset log).
  void on_prepare(std::int64_t epoch, bool unlimited, trigger_plans::step step,
                  const std::string& end, event_time wall);

  /// Micro-batch: read this trigger's input under watermark `wm_us`, then end the epoch.
  void on_run(std::int64_t epoch, std::int64_t wm_us);

  void end_trigger();

  void schedule_poll();

  void on_poll();

  // -- watermark alignment (task_source.cpp; watermark_alignment.hpp) ---------------------

  bool held_by_alignment() const { return align_ && align_->holds(out_watermark_); }

  void on_allowance(event_time allowed);

  /// Only once the output holds nothing back: what the coordinator allows from this report
  /// lets other instances run ahead, and their records must not overtake the ones before
  /// this watermark downstream.
  void report_alignment();

  void send_alignment(const alignment_report& r);

  // -- output -----------------------------------------------------------------------------

  /// Every batch that leaves the task: an idle task first tells its outputs it is active
  /// (whatever produced the data: input, a timer, a dead letter).
  void send_batch(int edge, int target, batch_ptr records);

  void on_credit(int output, int target, int n);

  void after_input();

  void flush_routers();

  // -- completion -------------------------------------------------------------------------

  /// `end_of_input`: the input is exhausted (not cancelled), so event time ends too: every
  /// window and event-time timer fires, as with Flink's final MAX watermark.
  void finish(bool end_of_input);

  /// The chain emits what it holds, and the end of input follows everything on every channel.
  void finish_chain();

  /// Sources at their natural end, and tasks whose every input reached the max watermark.
  bool all_inputs_reached_end_of_time() const {
    return source_ || in_->at_end_of_time();
  }

  void finish_if_flushed();

  // -- failures ---------------------------------------------------------------------------

  /// Runs `f`; turns an error result or an exception into a named job failure.
  template <class F>
  bool guarded(F&& f) {
    try {
      auto r = f();
      if (r)
        return true;
      fail(std::move(r).error(), chain_ ? chain_->current_node() : 0);
    } catch (const record_failure& e) {
      // "operator 'parse' (instance 1 of 2) threw: bad digit; record: {"line":"x1"}"
      fail(make_error(error_code::user_function_failed, e.cause() + "; record: " + e.record()),
           chain_ ? chain_->current_node() : 0, true);
    } catch (const std::exception& e) {
      fail(make_error(error_code::user_function_failed, e.what()),
           chain_ ? chain_->current_node() : 0, true);
    } catch (...) {
      fail(make_error(error_code::user_function_failed, "unknown exception"),
           chain_ ? chain_->current_node() : 0, true);
    }
    return false;
  }

  void fail(error err, int node, bool thrown = false);

  std::string node_name(int node) const;

  std::shared_ptr<const blueprint> bp_;
  int index_;
  int attempt_; ///< the job's attempt this task belongs to
  caf::actor coordinator_;
  std::shared_ptr<const restore_point> from_; ///< the checkpoint this run restores
  std::shared_ptr<const placement> where_;    ///< the attempt's placement; null in one process
  const task_wiring& wiring_;
  const chain_plan& plan_;
  task_metrics& metrics_;

  std::unique_ptr<chain> chain_;
  std::unique_ptr<source_base> source_;
  // Channels: the protocol lives in the gates, the actor handles in the transport's tables.
  actor_transport transport_;
  std::optional<input_gate> in_;
  std::optional<output_gate> out_;
  std::vector<out_edge> outputs_;
  std::map<std::pair<int, int>, std::vector<int>> routes_;
  bool source_active_ = false;
  bool poll_scheduled_ = false;
  /// Source: the number of the idle wait under way (0: none). The delayed (poll, wait)
  /// that ends it or a wake-up polls; a delayed poll of a wait a wake-up ended is ignored.
  std::uint64_t idle_wait_ = 0;
  std::uint64_t idle_waits_ = 0;
  /// Source: a (wake) is on its way; `source_context::wake` sends one at a time.
  std::shared_ptr<std::atomic<bool>> wake_sent_ = std::make_shared<std::atomic<bool>>(false);
  bool flush_scheduled_ = false;
  bool finishing_ = false;
  bool final_requested_ = false; ///< continuous source: waits for its last epoch's barrier
  bool done_ = false;
  bool failed_ = false;
  bool backpressured_ = false;
  std::chrono::steady_clock::time_point alignment_began_{};
  std::chrono::steady_clock::time_point backpressured_since_{};
  event_time out_watermark_ = min_watermark; ///< sent downstream; only advances
  bool output_idle_ = false;
  // Epochs.
  std::int64_t last_epoch_ = -1;              ///< the last epoch that passed this task
  std::uint64_t epoch_rows_ = 0;              ///< source: records read in this epoch
  std::uint64_t rows_read_ = 0;
  std::string last_offset_ = "null";
  source_trigger trigger_; ///< micro-batch source: the trigger being prepared or read
  // Checkpoints.
  bool has_sink_ = false;
  int pending_writes_ = 0; ///< snapshots handed to the writer, not yet acknowledged
  std::vector<pending_piece> snapshot_pieces_;
  /// The pieces of this task's last stored snapshot, by name (only the writer thread uses it).
  std::shared_ptr<std::unordered_map<std::string, checkpoint_piece>> stored_pieces_ =
    std::make_shared<std::unordered_map<std::string, checkpoint_piece>>();
  bool snapshotted_ = false; ///< a snapshot was taken in this run (incremental ones may follow)
  std::int64_t last_checkpoint_ = -1; ///< the last checkpoint snapshotted here
  std::int64_t last_committed_ = -1;  ///< the last checkpoint known complete
  std::optional<clock::time_point> wakeup_at_;
  std::optional<alignment_reporter> align_; ///< an aligned continuous source
};

} // namespace sluice
