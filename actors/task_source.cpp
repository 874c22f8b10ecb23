// The task actor at a source: polling, micro-batch triggers, source epochs, watermark
// alignment (task_actor.hpp).
#include "sluice/actors/task_actor.hpp"

namespace sluice {

void task_actor::end_source_epoch(std::int64_t epoch, bool checkpoint) {
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

std::string task_actor::current_offset() const {
  auto off = source_->offset();
  return off.empty() ? "{\"records\": " + std::to_string(rows_read_) + "}" : off;
}

void task_actor::on_prepare(std::int64_t epoch, bool unlimited, trigger_plans::step step,
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

void task_actor::on_run(std::int64_t epoch, std::int64_t wm_us) {
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

void task_actor::end_trigger() {
  source_active_ = false;
  if (auto epoch = trigger_.end())
    end_source_epoch(*epoch, checkpoints()); // every micro-batch is a checkpoint
}

void task_actor::schedule_poll() {
  if (poll_scheduled_)
    return;
  poll_scheduled_ = true;
  send(this, msg::poll::value);
}

void task_actor::on_poll() {
  poll_scheduled_ = false;
  if (!source_active_ || out_->pending() > 0 || failed_ || held_by_alignment())
    return;
  batch_ptr records;
  batch_ptr dead_letters;
  bool full = false; ///< the poll filled a whole batch
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
          full = records->size() >= bp_->options.batch_size;
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
  // A source with more input at hand (a full batch, and more to come) polls again at once:
  // partly filled buffers wait for it and leave full, which saves a message (and between
  // nodes a frame) per target and poll. Any watermark, barrier, idle mark or end sends
  // them first, and so does the next poll that is not full.
  const bool more_at_hand = full && polled->state == poll_result::status::more &&
                            bp_->options.linger.count() == 0;
  if (!more_at_hand)
    after_input();
  report_alignment();
  switch (polled->state) {
    case poll_result::status::more:
      schedule_poll();
      break;
    case poll_result::status::idle:
      flush_routers();
      poll_scheduled_ = true;
      idle_wait_ = ++idle_waits_; // a wake-up (source_context::wake) may end it early
      delayed_send(this, std::max(polled->retry_after, std::chrono::nanoseconds{1000}),
                   msg::poll::value, idle_wait_);
      break;
    case poll_result::status::end:
      source_active_ = false;
      finish(true);
      break;
  }
}

void task_actor::on_allowance(event_time allowed) {
  if (!align_)
    return;
  align_->allow(allowed);
  if (source_active_ && !held_by_alignment())
    schedule_poll();
}

void task_actor::report_alignment() {
  if (!align_ || failed_ || finishing_ || final_requested_ || out_->pending() > 0)
    return;
  const auto state = output_idle_                       ? alignment_state::idle
                     : out_watermark_ == min_watermark ? alignment_state::waiting
                                                       : alignment_state::active;
  const auto now = std::chrono::steady_clock::now();
  auto step = align_->update(state, out_watermark_, now);
  if (step.report)
    send_alignment(*step.report);
  else if (step.wake_at)
    delayed_send(this, *step.wake_at - now, msg::wm_report::value);
}

void task_actor::send_alignment(const alignment_report& r) {
  send(coordinator_, msg::wm_report::value, index_, static_cast<std::int32_t>(r.state),
       static_cast<std::int64_t>(r.watermark.time_since_epoch().count()));
}

} // namespace sluice
