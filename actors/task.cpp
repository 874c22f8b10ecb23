#include "sluice/actors/task.hpp"

#include "sluice/actors/checkpoint_writer.hpp"
#include "sluice/actors/messages.hpp"
#include "sluice/actors/source_trigger.hpp"
#include "sluice/actors/task_restore.hpp"
#include "sluice/actors/trigger_plans.hpp"
#include "sluice/actors/watermark_alignment.hpp"
#include "sluice/channels/input_gate.hpp"
#include "sluice/channels/output_gate.hpp"
#include "sluice/operators/chain.hpp"
#include "sluice/operators/record_loop.hpp"
#include "sluice/actors/tsan.hpp"

#include <algorithm>
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

namespace {

/// A piece of a snapshot on its way to the writer thread: its bytes, the function that
/// makes them there, or a reference to the same piece of the task's previous snapshot.
struct pending_piece {
  std::string name;
  std::string bytes;
  std::function<result<std::string>()> encode;
  bool reused = false;
};

/// Collects checkpoint pieces, named "<node name>/<piece>", for the writer thread.
struct store_writer final : snapshot_writer {
  std::string prefix;
  std::vector<pending_piece>* pieces = nullptr;
  /// The task snapshotted before in this run: its pieces can be referred to.
  bool has_previous = false;
  result<void> put(const std::string& piece, std::string bytes) override {
    pieces->push_back(pending_piece{prefix + piece, std::move(bytes), {}, false});
    return {};
  }
  result<void> put_later(const std::string& piece,
                         std::function<result<std::string>()> encode) override {
    pieces->push_back(pending_piece{prefix + piece, {}, std::move(encode), false});
    return {};
  }
  bool can_reuse() const noexcept override { return has_previous; }
  result<void> reuse(const std::string& piece) override {
    if (!has_previous)
      return snapshot_writer::reuse(piece);
    pieces->push_back(pending_piece{prefix + piece, {}, {}, true});
    return {};
  }
};

/// Runs on the writer thread: makes the deferred pieces' bytes, stores them in one write,
/// and resolves references through `previous` (the task's last stored pieces by name, which
/// only the writer thread touches; its jobs run in order). Returns every piece of the
/// snapshot, or what went wrong.
inline result<std::vector<checkpoint_piece>>
store_pieces(checkpoint_store& store, std::int64_t id, std::vector<pending_piece>& pieces,
             std::unordered_map<std::string, checkpoint_piece>& previous) {
  std::vector<std::pair<std::string, std::string>> bytes;
  std::vector<checkpoint_piece> reused;
  for (auto& p : pieces) {
    if (p.reused) {
      auto it = previous.find(p.name);
      if (it == previous.end())
        return make_error(error_code::internal,
                          "piece '" + p.name + "' refers to a previous snapshot without it");
      reused.push_back(it->second);
      continue;
    }
    if (p.encode) {
      auto made = p.encode();
      if (!made)
        return make_error(made.error().code, "piece '" + p.name + "': " + made.error().message);
      p.bytes = std::move(*made);
      p.encode = nullptr; // frees the frozen state now
    }
    bytes.emplace_back(std::move(p.name), std::move(p.bytes));
  }
  auto written = store.put_all(id, bytes);
  if (!written)
    return std::move(written).error();
  written->insert(written->end(), reused.begin(), reused.end());
  previous.clear();
  for (auto& p : *written)
    previous.emplace(p.name, p);
  return written;
}

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

  caf::behavior make_behavior() override {
    return {
      [this](msg::wire, const std::vector<caf::actor>& all) { on_wire(all); },
      [this](msg::start) { on_start(); },
      [this](msg::data, int channel, batch_ptr& records) {
        busy([&] { accept_input(channel, channel_item::data_of(std::move(records))); });
      },
      [this](msg::eoi, int channel) { accept_input(channel, channel_item::end_of_input()); },
      [this](msg::wm, int channel, std::int64_t us) {
        accept_input(channel, channel_item::watermark_of(event_time{duration{us}}));
      },
      [this](msg::idle, int channel, bool idle) {
        accept_input(channel, channel_item::idle_mark(idle));
      },
      [this](msg::barrier, int channel, std::int64_t epoch, bool checkpoint) {
        accept_input(channel, channel_item::barrier_of(epoch, checkpoint));
      },
      [this](msg::commit, std::int64_t id) { on_commit(id); },
      [this](msg::written, const epoch_report_ptr& report) {
        on_written(report);
      },
      [this](msg::prepare, std::int64_t epoch, bool unlimited, std::int32_t step,
             const std::string& end, std::int64_t wall_us) {
        on_prepare(epoch, unlimited, static_cast<trigger_plans::step>(step), end,
                   event_time{duration{wall_us}});
      },
      [this](msg::run, std::int64_t epoch, std::int64_t wm_us) { on_run(epoch, wm_us); },
      [this](msg::inject, std::int64_t epoch, bool checkpoint) {
        if (!source_ || finishing_ || failed_ || epoch <= last_epoch_)
          return;
        end_source_epoch(epoch, checkpoint);
        // The last epoch of a source that asked for it: a checkpoint's when the job takes
        // checkpoints, so that its position is stored and the sinks commit its records.
        if (final_requested_ && !failed_ && (checkpoint || !checkpoints()))
          finish_chain();
      },
      [this](msg::timer) { busy([&] { on_timer(); }); },
      [this](msg::credit, int output, int target, int n) {
        busy([&] { on_credit(output, target, n); });
      },
      [this](msg::poll) { busy([&] { on_poll(); }); },
      [this](msg::wm_allow, std::int64_t us) { on_allowance(event_time{duration{us}}); },
      [this](msg::wm_report) {
        if (align_) {
          align_->report_scheduled = false;
          report_alignment();
        }
      },
      [this](msg::flush) {
        flush_scheduled_ = false;
        flush_routers();
      },
      [this](msg::cancel) {
        if (source_ && !finishing_) {
          source_active_ = false;
          finish(false);
        }
      },
    };
  }

  void on_exit() override {
    // Release resources and the handles of other actors (no reference cycles).
    if (chain_)
      permit_unchecked(chain_->close());
    if (source_)
      source_->close();
    chain_.reset();
    source_.reset();
    in_.reset();
    out_.reset();
    outputs_.clear();
    senders_.clear();
    receivers_.clear();
    coordinator_ = nullptr;
  }

  // -- output: what leaves the chain ------------------------------------------------------

  result<void> emit(int node, int port, batch_ptr records) override {
    auto it = routes_.find({node, port});
    if (it == routes_.end())
      return make_error(error_code::internal, "output port " + std::to_string(port) + " of '" +
                                                node_name(node) + "' is not connected");
    auto& edges = it->second;
    for (std::size_t i = 0; i < edges.size(); ++i) {
      auto& out = outputs_[static_cast<std::size_t>(edges[i])];
      if (i + 1 < edges.size())
        out.router->push(records, out.writer);
      else
        out.router->push(std::move(records), out.writer);
    }
    return {};
  }

  // -- processing-time wake-ups of operators ----------------------------------------------

  void request_wakeup(clock::time_point when) override {
    if (wakeup_at_ && *wakeup_at_ <= when)
      return;
    wakeup_at_ = when;
    const auto now = bp_->options.processing_clock->now();
    // The processing clock may be injected (a manual clock moves in jumps), so the wait in
    // real time is capped: an early wake-up re-checks the clock and asks again.
    const auto wait = std::clamp<std::chrono::nanoseconds>(when - now, std::chrono::nanoseconds{0},
                                                           std::chrono::milliseconds{100});
    delayed_send(this, wait, msg::timer::value);
  }

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

  void set_backpressured(bool on) {
    if (on == backpressured_)
      return;
    backpressured_ = on;
    metrics_.backpressured.store(on, std::memory_order_relaxed);
    const auto now = std::chrono::steady_clock::now();
    if (on)
      backpressured_since_ = now;
    else
      task_metrics::add(metrics_.backpressured_ns,
                        static_cast<std::uint64_t>((now - backpressured_since_).count()));
  }

  void on_timer() {
    if (!wakeup_at_ || failed_ || finishing_ || done_ || !chain_)
      return; // after finish() nothing may be sent behind the end of input
    const auto now = bp_->options.processing_clock->now();
    if (now < *wakeup_at_) {
      // Early (an injected clock that has not moved yet): ask again.
      const auto at = *wakeup_at_;
      wakeup_at_.reset();
      request_wakeup(at);
      return;
    }
    wakeup_at_.reset();
    if (!guarded([&] { return chain_->processing_time(now); }))
      return;
    after_input();
    if (!source_)
      update_watermark(); // timer output may have ended an idle spell; idle again if so
  }

  struct edge_writer final : channel_writer {
    task_actor* self = nullptr;
    int edge = 0;
    void send(int target, batch_ptr records) override { self->send_batch(edge, target, std::move(records)); }
  };

  struct out_edge {
    std::unique_ptr<router_base> router;
    edge_writer writer;
  };

  /// Carries the channel protocol's items as CAF messages to the tasks of this process.
  struct actor_transport final : channel_transport {
    task_actor* self = nullptr;
    void deliver(int edge, int target, channel_item item) override {
      const auto e = static_cast<std::size_t>(edge);
      const auto t = static_cast<std::size_t>(target);
      const auto& dest = self->receivers_[e][t];
      const int ch = self->wiring_.outputs[e].targets[t].receiver_channel;
      switch (item.what) {
        case channel_item::kind::data:
          self->send(dest, msg::data::value, ch, std::move(item.records));
          break;
        case channel_item::kind::watermark:
          self->send(dest, msg::wm::value, ch,
                     static_cast<std::int64_t>(item.watermark.time_since_epoch().count()));
          break;
        case channel_item::kind::idle:
        case channel_item::kind::active:
          self->send(dest, msg::idle::value, ch, item.what == channel_item::kind::idle);
          break;
        case channel_item::kind::barrier:
          self->send(dest, msg::barrier::value, ch, item.epoch, item.checkpoint);
          break;
        case channel_item::kind::end:
          self->send(dest, msg::eoi::value, ch);
          break;
      }
    }
    void grant(int channel, int n) override {
      const auto& w = self->wiring_.inputs[static_cast<std::size_t>(channel)];
      // Credits overtake data in the sender's mailbox.
      self->send<caf::message_priority::high>(self->senders_[static_cast<std::size_t>(channel)],
                                              msg::credit::value, w.sender_output,
                                              w.sender_target, n);
    }
  };

  // -- setup ------------------------------------------------------------------------------

  void on_wire(const std::vector<caf::actor>& all) {
    const auto& opts = bp_->options;
    transport_.self = this;
    for (auto& in : wiring_.inputs)
      senders_.push_back(all[static_cast<std::size_t>(in.from_task)]);
    in_.emplace(wiring_.inputs.size(), transport_, &metrics_);
    metrics_.credits.store(0, std::memory_order_relaxed); // a restarted task starts afresh
    outputs_.resize(wiring_.outputs.size());
    receivers_.resize(wiring_.outputs.size());
    std::vector<int> targets;
    for (std::size_t e = 0; e < wiring_.outputs.size(); ++e) {
      const auto& w = wiring_.outputs[e];
      const auto& edge = bp_->plan.edges[static_cast<std::size_t>(w.plan_edge)];
      auto& out = outputs_[e];
      router_config cfg{static_cast<int>(w.targets.size()), opts.batch_size,
                        bp_->plan.max_key_groups};
      out.router = edge.make_router(cfg);
      out.writer.self = this;
      out.writer.edge = static_cast<int>(e);
      for (auto& t : w.targets)
        receivers_[e].push_back(all[static_cast<std::size_t>(t.to_task)]);
      targets.push_back(static_cast<int>(w.targets.size()));
      routes_[{w.from_node_index, w.from_port}].push_back(static_cast<int>(e));
    }
    out_.emplace(targets, opts.credits, transport_, &metrics_);
    if (where_) // channels to another node get the remote window
      for (std::size_t e = 0; e < wiring_.outputs.size(); ++e)
        for (std::size_t t = 0; t < wiring_.outputs[e].targets.size(); ++t)
          if (where_->remote(wiring_.outputs[e].targets[t].to_task,
                             where_->node_of_task[static_cast<std::size_t>(index_)]))
            out_->set_window(static_cast<int>(e), static_cast<int>(t), opts.remote_credits);
  }

  void on_start() {
    std::vector<std::unique_ptr<operator_base>> ops;
    std::vector<operator_info> infos;
    const auto& g = bp_->logical;
    for (auto id : plan_.nodes) {
      const auto& spec = g.node(id);
      operator_info info;
      info.name = spec.name;
      info.instance = wiring_.instance;
      info.parallelism = plan_.parallelism;
      info.max_key_groups = bp_->plan.max_key_groups;
      info.key_groups =
        key_groups_of_instance(wiring_.instance, bp_->plan.max_key_groups, plan_.parallelism);
      info.processing_clock = bp_->options.processing_clock;
      info.timers = this;
      info.metrics = &metrics_;
      info.mode = bp_->options.mode;
      info.micro_batch = micro_batch();
      info.late_rows = bp_->options.late_rows;
      info.checkpoints = checkpoints();
      info.restored = from_ && from_->meta ? from_->meta->id : -1;
      info.attempt = attempt_;
      info.restore_requested = from_ && from_->requested;
      has_sink_ = has_sink_ || spec.kind == node_kind::sink;
      infos.push_back(info);
      if (spec.kind == node_kind::source) {
        source_context ctx{spec.name, wiring_.instance, plan_.parallelism,
                           bp_->options.processing_clock, bp_->options.epochs,
                           from_ ? from_->job_start : std::nullopt};
        if (!guarded([&]() -> result<void> {
              source_ = spec.make_source(ctx);
              return source_->open(ctx);
            }))
          return;
        ops.push_back(nullptr);
      } else {
        ops.push_back(spec.make_operator());
      }
    }
    chain_ = std::make_unique<chain>(std::move(ops), *this);
    if (bp_->taps) {
      std::vector<tap_point*> taps;
      for (auto id : plan_.nodes)
        taps.push_back(bp_->taps->point(id));
      chain_->set_taps(taps, wiring_.instance);
    }
    if (bp_->options.collect_metrics)
      chain_->set_metrics(metrics_.nodes.get());
    if (!guarded([&] { return chain_->open(infos); }))
      return;
    if (checkpoints() && !guarded([&] { return restore(); }))
      return;
    if (source_) {
      source_->collect_event_time_stats(true);
      const auto& head = bp_->logical.node(plan_.nodes[0]);
      if (head.alignment && source_->has_watermarks() && !micro_batch())
        align_.emplace(alignment{.interval = head.alignment->update_interval});
      if (!micro_batch()) {
        source_active_ = true;
        schedule_poll();
      } // else the coordinator's `run` starts each trigger's polls
    } else {
      drain(); // input that arrived before `start`; finishes a task whose inputs all ended
    }
  }

  // -- input ------------------------------------------------------------------------------

  void accept_input(int channel, channel_item item) {
    if (!in_->push(channel, std::move(item))) {
      fail(make_error(error_code::internal,
                      "input channel " + std::to_string(channel) + " does not exist"),
           0);
      return;
    }
    if (!chain_)
      sync_point("queued", index_);
    drain();
  }

  /// Processes queued input while no output waits for credit (input_gate.hpp has the rules).
  void drain() {
    // Not started yet: CAF orders messages per sender only, so an upstream task that started
    // first can send data (on its initial credit) before the coordinator's `start` arrives
    // here. It waits in the gate, its credit held, until on_start drains it.
    if (!chain_)
      return;
    bool processed = false;
    while (out_->pending() == 0 && !failed_) {
      auto ev = in_->next();
      if (!ev)
        break;
      switch (ev->what) {
        case gate_event::kind::changed: // a watermark, idle mark or end of a channel
          update_watermark();
          on_aligned(in_->take_aligned());
          continue;
        case gate_event::kind::blocked:
          if (ev->first)
            alignment_began_ = std::chrono::steady_clock::now();
          on_aligned(in_->take_aligned());
          continue;
        case gate_event::kind::aligned:
          on_aligned(std::move(ev));
          continue;
        case gate_event::kind::data:
          break;
      }
      if (ev->reactivated)
        update_watermark();
      if (failed_)
        return;
      if (ev->channel_watermark < out_watermark_)
        task_metrics::add(metrics_.records_behind_watermark, ev->records->size());
      task_metrics::add(metrics_.records_in, ev->records->size());
      task_metrics::add(metrics_.batches_in, 1);
      const auto input = wiring_.inputs[static_cast<std::size_t>(ev->channel)].to_input;
      if (!guarded([&] { return chain_->push(input, std::move(ev->records)); }))
        return;
      processed = true;
      // Credit goes back only once the batch is consumed: in-flight data stays bounded.
      in_->consumed(ev->channel);
    }
    if (processed)
      after_input();
    // Sources finish when their input ends or they are stopped, never for lack of inputs.
    if (!source_ && in_->open() == 0 && in_->queued() == 0 && !finishing_ && !failed_ && chain_)
      finish(true);
  }

  // -- event time -------------------------------------------------------------------------

  /// The task's watermark is the minimum over its live, non-idle input channels; it only
  /// advances. When every live input is idle, the task tells its outputs it is idle too.
  void update_watermark() {
    const auto v = in_->watermark();
    metrics_.idle_inputs.store(v.idle, std::memory_order_relaxed);
    if (!v.live)
      return; // end of input: finish() decides
    if (!v.low) {
      set_output_idle(true);
      return;
    }
    set_output_idle(false);
    if (*v.low > out_watermark_)
      advance_watermark(*v.low);
  }

  void advance_watermark(event_time wm) {
    out_watermark_ = wm;
    metrics_.watermark.store(wm.time_since_epoch().count(), std::memory_order_relaxed);
    if (!chain_ || !guarded([&] { return chain_->advance_watermark(wm); }))
      return;
    // Records emitted so far (and on the watermark) must reach downstream before it.
    flush_routers();
    out_->broadcast(channel_item::watermark_of(wm));
  }

  void set_output_idle(bool idle) {
    if (idle == output_idle_)
      return;
    output_idle_ = idle;
    flush_routers();
    out_->broadcast(channel_item::idle_mark(idle));
  }

  // -- epochs -----------------------------------------------------------------------------

  bool micro_batch() const noexcept { return bp_->options.epochs.micro_batch(); }

  /// Every live input delivered the barrier: the epoch ends here. The chain emits its epoch
  /// output, the barrier goes on behind it, the coordinator hears of it; the input held back
  /// meanwhile comes next (the gate released it).
  void on_aligned(std::optional<gate_event> ev) {
    if (!ev || failed_)
      return;
    epoch_report report;
    report.alignment = std::chrono::duration_cast<std::chrono::microseconds>(
      std::chrono::steady_clock::now() - alignment_began_);
    if (!end_chain_epoch(ev->epoch, report, ev->checkpoint))
      return;
    send_ack(std::move(report));
  }

  /// Ends `epoch` in the chain, snapshots it when the barrier is a checkpoint's, and sends
  /// the barrier downstream; fills the report's operator part.
  bool end_chain_epoch(std::int64_t epoch, epoch_report& report, bool checkpoint) {
    std::vector<operator_epoch_stats> stats;
    if (!guarded([&] { return chain_->end_epoch(epoch, stats); }))
      return false;
    if (checkpoint) {
      sync_point("snapshot", epoch);
      const auto began = std::chrono::steady_clock::now();
      if (!guarded([&] { return snapshot(epoch, snapshot_pieces_); }))
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

  /// Acknowledges an epoch. A checkpoint's pieces are written by the writer thread first;
  /// it hands the report back (`written`) and the ack leaves from here, so that it always
  /// precedes this task's `done`.
  void send_ack(epoch_report report) {
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

  void on_written(epoch_report_ptr report) {
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

  // -- checkpoints ------------------------------------------------------------------------

  bool checkpoints() const noexcept { return bp_->store != nullptr; }

  void sync_point(const char* step, std::int64_t id) const {
    if (bp_->options.sync_point)
      bp_->options.sync_point(step, id);
  }

  /// The synchronous snapshot: every operator's state and the source's position, written
  /// to the store under the node's name (unique in a job with checkpoints).
  result<void> snapshot(std::int64_t id, std::vector<pending_piece>& pieces) {
    store_writer w;
    w.pieces = &pieces;
    w.has_previous = std::exchange(snapshotted_, true);
    for (std::size_t i = 0; i < chain_->size(); ++i) {
      const auto& name = bp_->logical.node(plan_.nodes[i]).name;
      if (auto* op = chain_->node(i)) {
        w.prefix = name + "/";
        if (auto r = op->snapshot(id, w); !r)
          return r;
      } else if (source_) {
        if (auto pos = source_->snapshot_position(id)) {
          w.prefix = source_piece_prefix(name);
          if (auto r = w.put(std::to_string(wiring_.instance), std::move(*pos)); !r)
            return r;
        }
      }
    }
    return {};
  }

  /// At start with checkpoints: each operator takes its key groups' state (whatever the
  /// parallelism that wrote them), the source seeks to its position, two-phase sinks
  /// settle what the crashed run left (also when starting fresh). task_restore.hpp says how.
  result<void> restore() {
    const checkpoint_meta* meta = from_ && from_->meta ? &*from_->meta : nullptr;
    restore_target t{chain_.get(), source_.get(), {}, wiring_.instance, plan_.parallelism};
    for (auto id : plan_.nodes)
      t.names.push_back(bp_->logical.node(id).name);
    auto positioned = restore_chain(*bp_->store, meta, t);
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

  /// Checkpoint `id` is complete: two-phase sinks make their output visible.
  void on_commit(std::int64_t id) {
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

  /// A source task ends an epoch: after what it polled so far, at the head of its chain.
  void end_source_epoch(std::int64_t epoch, bool checkpoint) {
    flush_routers();
    epoch_report report;
    if (!end_chain_epoch(epoch, report, checkpoint))
      return;
    const auto& spec = bp_->logical.node(plan_.nodes[0]);
    source_epoch_report src;
    src.node = plan_.nodes[0];
    src.name = spec.name;
    src.description = spec.description;
    src.rows = std::exchange(epoch_rows_, 0);
    src.event_times = source_->take_event_time_stats();
    src.watermark_delay = source_->watermark_delay();
    src.start_offset = std::exchange(last_offset_, current_offset());
    src.end_offset = last_offset_;
    report.sources.push_back(std::move(src));
    send_ack(std::move(report));
  }

  std::string current_offset() const {
    auto off = source_->offset();
    return off.empty() ? "{\"records\": " + std::to_string(rows_read_) + "}" : off;
  }

  /// Micro-batch: fix this trigger's input (where it ends) and say whether there is any
  /// (source_trigger.hpp: planned afresh or replayed from the offset log).
  void on_prepare(std::int64_t epoch, bool unlimited, trigger_plans::step step,
                  const std::string& end, event_time wall) {
    if (!source_ || failed_)
      return;
    trigger_plan plan;
    if (!guarded([&]() -> result<void> {
          auto r = trigger_.prepare(*source_,
                                    {unlimited, step, end, bp_->options.max_records_per_trigger,
                                     plan_.parallelism, wall},
                                    finishing_);
          if (!r)
            return std::move(r).error();
          plan = std::move(*r);
          return {};
        }))
      return;
    send(coordinator_, msg::prepared::value, index_, epoch, plan.available, std::move(plan.end));
  }

  /// Micro-batch: read this trigger's input under watermark `wm_us`, then end the epoch.
  void on_run(std::int64_t epoch, std::int64_t wm_us) {
    if (!source_ || failed_ || finishing_)
      return;
    trigger_.begin(epoch);
    const event_time wm{duration{wm_us}};
    if (wm > out_watermark_)
      advance_watermark(wm);
    if (failed_)
      return;
    if (trigger_.exhausted()) {
      end_trigger();
      return;
    }
    source_active_ = true;
    schedule_poll();
  }

  void end_trigger() {
    source_active_ = false;
    if (auto epoch = trigger_.end())
      end_source_epoch(*epoch, checkpoints()); // every micro-batch is a checkpoint
  }

  // -- sources ----------------------------------------------------------------------------

  void schedule_poll() {
    if (poll_scheduled_)
      return;
    poll_scheduled_ = true;
    send(this, msg::poll::value);
  }

  void on_poll() {
    poll_scheduled_ = false;
    if (!source_active_ || out_->pending() > 0 || failed_ || held_by_alignment())
      return;
    batch_ptr records;
    batch_ptr dead_letters;
    result<poll_result> polled = poll_result::more();
    if (!guarded([&]() -> result<void> {
          polled = source_->poll_batches(bp_->options.batch_size, records, dead_letters);
          if (!polled)
            return polled.error();
          if (records) {
            if (output_idle_)
              set_output_idle(false); // before the records, so downstream counts them live
            task_metrics::add(metrics_.records_in, records->size());
            if (bp_->options.collect_metrics) {
              task_metrics::add(metrics_.nodes[0].records_in, records->size());
              task_metrics::add(metrics_.nodes[0].bytes_in, records->bytes());
              task_metrics::add(metrics_.nodes[0].batches_in, 1);
            }
            epoch_rows_ += records->size();
            trigger_.count(records->size());
            rows_read_ += records->size();
            if (auto r = chain_->deliver(0, 0, std::move(records)); !r)
              return r;
          }
          if (dead_letters)
            return chain_->deliver(0, 1, std::move(dead_letters));
          return {};
        }))
      return;
    if (micro_batch()) {
      // The coordinator sets the watermark per trigger (Spark's timing); the trigger ends
      // when the source runs dry or reaches its cap.
      after_input();
      if (trigger_.reads_on(polled->state, bp_->options.max_records_per_trigger))
        schedule_poll();
      else
        end_trigger();
      return;
    }
    if (source_->has_watermarks()) {
      auto u = source_->watermarks(bp_->options.processing_clock->now());
      set_output_idle(u.idle_now); // level, not edge: data may have ended an idle spell
      if (u.advanced && *u.advanced > out_watermark_)
        advance_watermark(*u.advanced);
      if (failed_)
        return;
    }
    after_input();
    report_alignment();
    switch (polled->state) {
      case poll_result::status::more:
        schedule_poll();
        break;
      case poll_result::status::idle:
        flush_routers();
        poll_scheduled_ = true;
        delayed_send(this, std::max(polled->retry_after, std::chrono::nanoseconds{1000}),
                     msg::poll::value);
        break;
      case poll_result::status::end:
        source_active_ = false;
        finish(true);
        break;
    }
  }

  // -- watermark alignment (watermark_alignment.hpp) --------------------------------------

  /// An aligned source with a watermark polls only while it is within the allowance the
  /// coordinator sent; before the first allowance it waits (its group may be unknown).
  bool held_by_alignment() const {
    if (!align_ || out_watermark_ == min_watermark)
      return false;
    return !align_->allowed || out_watermark_ > *align_->allowed;
  }

  void on_allowance(event_time allowed) {
    if (!align_)
      return;
    align_->allowed = allowed;
    if (source_active_ && !held_by_alignment())
      schedule_poll();
  }

  alignment_state current_alignment_state() const {
    if (output_idle_)
      return alignment_state::idle;
    return out_watermark_ == min_watermark ? alignment_state::waiting : alignment_state::active;
  }

  /// Reports a change of state at once, a new watermark at most every update interval.
  /// Only once the output holds nothing back: what the coordinator allows from this report
  /// lets other instances run ahead, and their records must not overtake the ones before
  /// this watermark downstream.
  void report_alignment() {
    if (!align_ || failed_ || finishing_ || final_requested_ || out_->pending() > 0)
      return;
    const auto state = current_alignment_state();
    if (state != align_->state) {
      send_alignment(state);
      return;
    }
    if (state != alignment_state::active || out_watermark_ == align_->watermark ||
        align_->report_scheduled)
      return;
    const auto now = std::chrono::steady_clock::now();
    const auto due = align_->last_report + align_->interval;
    if (now >= due) {
      send_alignment(state);
      return;
    }
    align_->report_scheduled = true;
    delayed_send(this, due - now, msg::wm_report::value);
  }

  void send_alignment(alignment_state state) {
    if (align_->state == alignment_state::ended)
      return;
    align_->state = state;
    align_->watermark = out_watermark_;
    align_->last_report = std::chrono::steady_clock::now();
    send(coordinator_, msg::wm_report::value, index_, static_cast<std::int32_t>(state),
         static_cast<std::int64_t>(out_watermark_.time_since_epoch().count()));
  }

  // -- output -----------------------------------------------------------------------------

  /// Every batch that leaves the task: an idle task first tells its outputs it is active
  /// (whatever produced the data: input, a timer, a dead letter).
  void send_batch(int edge, int target, batch_ptr records) {
    if (output_idle_) {
      output_idle_ = false;
      out_->broadcast(channel_item::idle_mark(false));
    }
    if (out_->send(edge, target, std::move(records)))
      set_backpressured(true);
  }

  void on_credit(int output, int target, int n) {
    if (!out_->grant(output, target, n))
      return; // not one of this task's channels (a message of an earlier wiring)
    if (out_->pending() > 0)
      return;
    set_backpressured(false);
    report_alignment(); // a report waits until the records before its watermark left
    if (source_active_)
      schedule_poll();
    else
      drain();
    finish_if_flushed();
  }

  void after_input() {
    if (bp_->options.linger.count() == 0) {
      flush_routers();
      return;
    }
    if (flush_scheduled_)
      return;
    for (auto& out : outputs_) {
      if (out.router->buffered()) {
        flush_scheduled_ = true;
        delayed_send(this, bp_->options.linger, msg::flush::value);
        return;
      }
    }
  }

  void flush_routers() {
    for (auto& out : outputs_)
      out.router->flush(out.writer);
  }

  // -- completion -------------------------------------------------------------------------

  /// `end_of_input`: the input is exhausted (not cancelled), so event time ends too: every
  /// window and event-time timer fires, as with Flink's final MAX watermark.
  void finish(bool end_of_input) {
    if (finishing_ || failed_ || final_requested_)
      return;
    if (align_) // before the final watermark: an ended instance no longer holds its group
      send_alignment(alignment_state::ended);
    if (end_of_input && out_watermark_ < max_watermark && all_inputs_reached_end_of_time()) {
      advance_watermark(max_watermark);
      if (failed_)
        return;
    }
    if (source_ && !micro_batch()) {
      // The records read since the last barrier form a last epoch (and checkpoint). The
      // coordinator numbers its barrier like every other: a source that picked its own id
      // could clash with one the coordinator had injected as no checkpoint, and a checkpoint
      // then completed without other tasks' pieces.
      final_requested_ = true;
      source_active_ = false;
      send(coordinator_, msg::finishing::value, index_, last_epoch_);
      return;
    }
    finish_chain();
  }

  /// The chain emits what it holds, and the end of input follows everything on every channel.
  void finish_chain() {
    finishing_ = true;
    if (!guarded([&] { return chain_->finish(); }))
      return;
    flush_routers();
    out_->end();
    finish_if_flushed();
  }

  /// Sources at their natural end, and tasks whose every input reached the max watermark.
  bool all_inputs_reached_end_of_time() const {
    return source_ || in_->at_end_of_time();
  }

  void finish_if_flushed() {
    if (!finishing_ || failed_ || done_ || out_->pending() > 0)
      return;
    // Snapshots still being written must be acknowledged before `done`; a sink stays
    // until its last pre-committed output is committed.
    const bool awaits_commit = has_sink_ || (source_ && source_->wants_checkpoint_complete());
    if (pending_writes_ > 0 || (awaits_commit && last_committed_ < last_checkpoint_))
      return;
    if (!out_->ended())
      return;
    done_ = true;
    auto closed = chain_->close();
    if (!closed) {
      fail(std::move(closed).error(), chain_->current_node());
      return;
    }
    // Checkpoints taken after this task is gone must still hold where its source ended, or
    // a restore would read that input again.
    if (checkpoints() && source_)
      if (auto pos = source_->position())
        send(coordinator_, msg::final_position::value, index_,
             source_piece_prefix(bp_->logical.node(plan_.nodes[0]).name) +
               std::to_string(wiring_.instance),
             std::move(*pos));
    send(coordinator_, msg::done::value, index_);
    quit();
  }

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

  void fail(error err, int node, bool thrown = false) {
    if (failed_)
      return;
    failed_ = true;
    std::string where = "operator '" + node_name(node) + "' (instance " +
                        std::to_string(wiring_.instance + 1) + " of " +
                        std::to_string(plan_.parallelism) + ")";
    auto text = where + (thrown ? " threw: " : ": ") + err.message;
    send(coordinator_, msg::failed::value, index_, static_cast<int>(err.code), std::move(text));
  }

  std::string node_name(int node) const {
    if (node < 0 || node >= static_cast<int>(plan_.nodes.size()))
      return plan_.name;
    return bp_->logical.node(plan_.nodes[static_cast<std::size_t>(node)]).name;
  }

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
  std::vector<caf::actor> senders_;                ///< by input channel
  std::vector<std::vector<caf::actor>> receivers_; ///< by output edge, then target
  std::vector<out_edge> outputs_;
  std::map<std::pair<int, int>, std::vector<int>> routes_;
  bool source_active_ = false;
  bool poll_scheduled_ = false;
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
  /// An aligned continuous source: what it last reported and the allowance it holds.
  struct alignment {
    std::chrono::nanoseconds interval;
    std::optional<event_time> allowed{}; ///< none until the coordinator's first answer
    alignment_state state = alignment_state::waiting;
    event_time watermark = min_watermark; ///< reported last
    std::chrono::steady_clock::time_point last_report{};
    bool report_scheduled = false;
  };
  std::optional<alignment> align_;
};

} // namespace

caf::actor spawn_task(caf::local_actor* parent, std::shared_ptr<const blueprint> bp, int index,
                      int attempt, caf::actor coordinator,
                      std::shared_ptr<const restore_point> from,
                      std::shared_ptr<const placement> where) {
  return parent->spawn<task_actor>(std::move(bp), index, attempt, std::move(coordinator),
                                   std::move(from), std::move(where));
}

} // namespace sluice
