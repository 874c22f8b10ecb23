#include "sluice/actors/task.hpp"

#include "sluice/actors/task_actor.hpp"

namespace sluice {

caf::behavior task_actor::make_behavior() {
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
    [this](msg::poll, std::uint64_t wait) {
      if (wait != idle_wait_)
        return; // a wake-up ended this wait already
      idle_wait_ = 0;
      busy([&] { on_poll(); });
    },
    [this](msg::wake) {
      wake_sent_->store(false);
      if (idle_wait_ == 0)
        return; // not waiting: polled anyway (or finished)
      idle_wait_ = 0;
      busy([&] { on_poll(); });
    },
    [this](msg::wm_allow, std::int64_t us) { on_allowance(event_time{duration{us}}); },
    [this](msg::wm_report) {
      if (align_) {
        align_->woke();
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

void task_actor::on_exit() {
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
  transport_.clear();
  coordinator_ = nullptr;
}

result<void> task_actor::emit(int node, int port, batch_ptr records) {
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

void task_actor::request_wakeup(clock::time_point when) {
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

void task_actor::set_backpressured(bool on) {
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

void task_actor::on_timer() {
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

void task_actor::on_wire(const std::vector<caf::actor>& all) {
  const auto& opts = bp_->options;
  transport_.wire(this, wiring_, all);
  in_.emplace(wiring_.inputs.size(), transport_, &metrics_);
  metrics_.credits.store(0, std::memory_order_relaxed); // a restarted task starts afresh
  outputs_.resize(wiring_.outputs.size());
  std::vector<int> targets;
  for (std::size_t e = 0; e < wiring_.outputs.size(); ++e) {
    const auto& w = wiring_.outputs[e];
    const auto& edge = bp_->plan.edges[static_cast<std::size_t>(w.plan_edge)];
    auto& out = outputs_[e];
    router_config cfg{static_cast<int>(w.targets.size()), opts.batch_size,
                      bp_->plan.max_key_groups};
    cfg.remote_batch_size = opts.remote_batch_size;
    if (where_) // channels to another node: larger batches, fewer frames
      for (const auto& t : w.targets)
        cfg.remote_targets.push_back(remote(t.to_task));
    out.router = edge.make_router(cfg);
    out.writer.self = this;
    out.writer.edge = static_cast<int>(e);
    targets.push_back(static_cast<int>(w.targets.size()));
    routes_[{w.from_node_index, w.from_port}].push_back(static_cast<int>(e));
  }
  out_.emplace(targets, opts.credits, transport_, &metrics_);
  // Channels to another node get the remote window.
  for (std::size_t e = 0; e < wiring_.outputs.size(); ++e)
    for (std::size_t t = 0; t < wiring_.outputs[e].targets.size(); ++t)
      if (remote(wiring_.outputs[e].targets[t].to_task))
        out_->set_window(static_cast<int>(e), static_cast<int>(t), opts.remote_credits);
}

bool task_actor::remote(int task) const {
  return where_ && where_->remote(task, where_->node_of_task[static_cast<std::size_t>(index_)]);
}

void task_actor::on_start() {
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
      // From the source's own thread: a weak address (no cycle through the source), and one
      // message at a time however often the source calls.
      ctx.wake = [self = address(), sent = wake_sent_] {
        if (sent->exchange(true))
          return;
        if (auto task = caf::actor_cast<caf::actor>(self))
          caf::anon_send(task, msg::wake::value);
      };
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
      align_.emplace(head.alignment->update_interval);
    if (!micro_batch()) {
      source_active_ = true;
      schedule_poll();
    } // else the coordinator's `run` starts each trigger's polls
  } else {
    drain(); // input that arrived before `start`; finishes a task whose inputs all ended
  }
}

void task_actor::accept_input(int channel, channel_item item) {
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

void task_actor::drain() {
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

void task_actor::update_watermark() {
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

void task_actor::advance_watermark(event_time wm) {
  out_watermark_ = wm;
  metrics_.watermark.store(wm.time_since_epoch().count(), std::memory_order_relaxed);
  if (!chain_ || !guarded([&] { return chain_->advance_watermark(wm); }))
    return;
  // Records emitted so far (and on the watermark) must reach downstream before it.
  flush_routers();
  out_->broadcast(channel_item::watermark_of(wm));
}

void task_actor::set_output_idle(bool idle) {
  if (idle == output_idle_)
    return;
  output_idle_ = idle;
  flush_routers();
  out_->broadcast(channel_item::idle_mark(idle));
}

void task_actor::send_batch(int edge, int target, batch_ptr records) {
  if (output_idle_) {
    output_idle_ = false;
    out_->broadcast(channel_item::idle_mark(false));
  }
  if (out_->send(edge, target, std::move(records)))
    set_backpressured(true);
}

void task_actor::on_credit(int output, int target, int n) {
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

void task_actor::after_input() {
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

void task_actor::flush_routers() {
  for (auto& out : outputs_)
    out.router->flush(out.writer);
}

void task_actor::finish(bool end_of_input) {
  if (finishing_ || failed_ || final_requested_)
    return;
  if (align_) // before the final watermark: an ended instance no longer holds its group
    if (auto last = align_->end(out_watermark_, std::chrono::steady_clock::now()))
      send_alignment(*last);
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

void task_actor::finish_chain() {
  finishing_ = true;
  if (!guarded([&] { return chain_->finish(); }))
    return;
  flush_routers();
  out_->end();
  finish_if_flushed();
}

void task_actor::finish_if_flushed() {
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

void task_actor::fail(error err, int node, bool thrown) {
  if (failed_)
    return;
  failed_ = true;
  std::string where = "operator '" + node_name(node) + "' (instance " +
                      std::to_string(wiring_.instance + 1) + " of " +
                      std::to_string(plan_.parallelism) + ")";
  auto text = where + (thrown ? " threw: " : ": ") + err.message;
  send(coordinator_, msg::failed::value, index_, static_cast<int>(err.code), std::move(text));
}

std::string task_actor::node_name(int node) const {
  if (node < 0 || node >= static_cast<int>(plan_.nodes.size()))
    return plan_.name;
  return bp_->logical.node(plan_.nodes[static_cast<std::size_t>(node)]).name;
}

caf::actor spawn_task(caf::local_actor* parent, std::shared_ptr<const blueprint> bp, int index,
                      int attempt, caf::actor coordinator,
                      std::shared_ptr<const restore_point> from,
                      std::shared_ptr<const placement> where) {
  return parent->spawn<task_actor>(std::move(bp), index, attempt, std::move(coordinator),
                                   std::move(from), std::move(where));
}

} // namespace sluice
