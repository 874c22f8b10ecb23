#include "sluice/actors/epoch_planner.hpp"

#include <algorithm>

namespace sluice {

epoch_planner::epoch_planner(trigger when, std::size_t tasks, std::size_t sources,
                             bool has_event_time_state, epoch_driver& driver)
  : when_(when), tasks_(tasks), sources_(sources), has_event_time_state_(has_event_time_state),
    driver_(driver) {}

void epoch_planner::start(clock::time_point now, const checkpoint_meta* restored,
                          std::int64_t first_epoch) {
  open_epochs_.clear();
  task_done_.assign(tasks_, false);
  phase_ = phase::idle;
  last_checkpoint_injected_ = -1;
  if (restored) {
    resume(*restored);
    next_epoch_ = std::max(next_epoch_, first_epoch);
  } else {
    reset(); // a restart before any checkpoint: the tasks start at epoch 0 again
  }
  if (when_.micro_batch())
    begin_trigger(now);
  else
    driver_.schedule_tick(now + when_.interval);
}

// -- triggers -----------------------------------------------------------------------------

void epoch_planner::tick(clock::time_point now, bool checkpoint) {
  if (phase_ == phase::stopping)
    return;
  if (when_.micro_batch()) {
    if (phase_ == phase::idle)
      begin_trigger(now);
    return;
  }
  inject_through(now, next_epoch_, checkpoint);
  driver_.schedule_tick(now + when_.interval);
}

void epoch_planner::inject_now(clock::time_point now, bool checkpoint) {
  if (!when_.micro_batch())
    inject_through(now, next_epoch_, checkpoint);
}

void epoch_planner::trigger_now(clock::time_point now) {
  if (when_.micro_batch() && phase_ == phase::idle && when_.how == trigger::kind::processing_time)
    begin_trigger(now);
}

/// Continuous mode: epochs up to `last` start at every source that has not begun them.
void epoch_planner::inject_through(clock::time_point now, std::int64_t last, bool checkpoint) {
  for (; next_epoch_ <= last; ++next_epoch_) {
    init_epoch(open_epochs_[next_epoch_], now);
    if (checkpoint)
      last_checkpoint_injected_ = next_epoch_;
    driver_.inject(next_epoch_, checkpoint);
  }
}

void epoch_planner::final_barrier(clock::time_point now, std::int64_t after, bool checkpoint) {
  if (when_.micro_batch())
    return;
  const auto newest = checkpoint ? last_checkpoint_injected_ : next_epoch_ - 1;
  if (newest > after)
    return; // it reaches the source behind what it has sent
  inject_through(now, next_epoch_, checkpoint);
}

void epoch_planner::init_epoch(open_epoch& e, clock::time_point now) {
  if (!e.acked.empty())
    return;
  e.triggered = e.started = now;
  e.acked.assign(tasks_, false);
}

/// Micro-batch: ask every source what this trigger would read.
void epoch_planner::begin_trigger(clock::time_point now) {
  driver_.status("Getting offsets from sources", false, true);
  phase_ = phase::preparing;
  trigger_started_ = now;
  prepared_ = 0;
  available_ = false;
  driver_.prepare(next_epoch_, when_.how == trigger::kind::once);
  if (sources_ == 0)
    stop_sources();
}

void epoch_planner::prepared(clock::time_point now, std::int64_t epoch, bool available) {
  if (phase_ != phase::preparing || epoch != next_epoch_)
    return;
  available_ = available_ || available;
  if (++prepared_ < sources_)
    return;
  // Spark runs an epoch for new data, or without data when the watermark moved and a
  // stateful operator may have rows to emit or evict (`has_event_time_state` says whether
  // one does in this output mode).
  const bool watermark_moved =
    spark_watermark_ && (!last_run_watermark_ || *spark_watermark_ > *last_run_watermark_);
  const bool no_data_epoch = watermark_moved && has_event_time_state_;
  if (!available_ && !no_data_epoch) {
    driver_.status("Waiting for data to arrive", false, false);
    driver_.idle();
    phase_ = phase::idle;
    if (when_.how == trigger::kind::processing_time)
      driver_.schedule_tick(trigger_started_ + when_.interval);
    else
      stop_sources(); // available_now / once: nothing left
    return;
  }
  phase_ = phase::running;
  driver_.status("Processing new data", available_, true);
  auto& e = open_epochs_[next_epoch_];
  init_epoch(e, now);
  e.triggered = trigger_started_;
  e.watermark = spark_watermark_.value_or(event_time{});
  last_run_watermark_ = spark_watermark_;
  // Operators use the engine's convention (W = the last instant known complete), one
  // microsecond below Spark's (W = the first instant that may still come): both make a
  // window with `end <= Spark's W` late.
  driver_.run(next_epoch_, spark_watermark_ ? *spark_watermark_ - duration{1} : min_watermark);
}

void epoch_planner::cancel() {
  if (phase_ == phase::running)
    stop_after_epoch_ = true; // a micro-batch in flight completes first
  else
    stop_sources();
}

void epoch_planner::stop_sources() {
  if (phase_ == phase::stopping)
    return;
  phase_ = phase::stopping;
  driver_.stop_sources();
}

// -- acknowledgements ---------------------------------------------------------------------

bool epoch_planner::acknowledged(clock::time_point now, const epoch_report_ptr& report) {
  auto it = open_epochs_.find(report->epoch);
  if (it == open_epochs_.end())
    return false;
  init_epoch(it->second, now);
  it->second.acked[static_cast<std::size_t>(report->task)] = true;
  it->second.reports.push_back(report);
  complete_epochs(false, now);
  return true;
}

void epoch_planner::task_done(clock::time_point now, std::size_t task) {
  task_done_[task] = true;
  complete_epochs(false, now);
}

void epoch_planner::complete_all(clock::time_point now) { complete_epochs(true, now); }

/// Hands every epoch, oldest first, that each task acknowledged or finished without to the
/// driver. `all`: the job ended, so every epoch still open is as complete as it will get.
void epoch_planner::complete_epochs(bool all, clock::time_point now) {
  while (!open_epochs_.empty()) {
    auto it = open_epochs_.begin();
    auto& e = it->second;
    if (!all)
      for (std::size_t t = 0; t < tasks_; ++t)
        if (!e.acked[t] && !task_done_[t])
          return;
    if (!e.reports.empty()) {
      absorb_event_times(e); // before the checkpoint, which keeps the next watermark
      if (!driver_.epoch_complete(it->first, e))
        return;
    }
    open_epochs_.erase(it);
    if (when_.micro_batch() && phase_ == phase::running) {
      ++next_epoch_;
      after_micro_batch(now);
    }
  }
}

void epoch_planner::after_micro_batch(clock::time_point now) {
  phase_ = phase::idle;
  driver_.status("Waiting for next trigger", false, false);
  if (stop_after_epoch_ || when_.how == trigger::kind::once) {
    stop_sources();
    return;
  }
  if (when_.how == trigger::kind::available_now) {
    begin_trigger(now);
    return;
  }
  const auto next = trigger_started_ + when_.interval;
  if (now >= next)
    begin_trigger(now); // the epoch overran its interval: the next one starts at once
  else
    driver_.schedule_tick(next);
}

// -- Spark's watermark --------------------------------------------------------------------

/// Folds an epoch's event times into each source's maximum and, in micro-batch mode,
/// computes the watermark the next epoch runs with. Runs before the epoch's checkpoint is
/// completed, so that the checkpoint holds that watermark and a restored run resumes with
/// it (not with the one of the epoch before).
void epoch_planner::absorb_event_times(const open_epoch& e) {
  for (auto& r : e.reports)
    for (auto& s : r->sources)
      if (s.watermark_delay && s.event_times.count > 0) {
        auto& m = source_max_[s.node];
        m = std::max(m, s.event_times.max);
        source_delay_[s.node] = *s.watermark_delay;
      }
  if (when_.micro_batch())
    update_spark_watermark();
}

/// Spark's rule: the watermark of the next epoch is, per source, the maximum event time
/// seen so far minus the delay; with several sources the minimum; it never goes back.
void epoch_planner::update_spark_watermark() {
  std::optional<event_time> low;
  for (auto& [node, max] : source_max_) {
    const auto w = max - source_delay_[node];
    low = low ? std::min(*low, w) : w;
  }
  if (low && (!spark_watermark_ || *low > *spark_watermark_))
    spark_watermark_ = *low;
  if (!spark_watermark_ && !source_delay_.empty())
    spark_watermark_ = event_time{}; // Spark starts at 1970-01-01
}

void epoch_planner::save(std::map<std::string, std::string>& properties) const {
  auto us = [](event_time t) { return std::to_string(t.time_since_epoch().count()); };
  if (spark_watermark_)
    properties["spark_watermark"] = us(*spark_watermark_);
  if (last_run_watermark_)
    properties["last_run_watermark"] = us(*last_run_watermark_);
  for (auto& [node, max] : source_max_)
    properties["source_max/" + std::to_string(node)] = us(max);
  for (auto& [node, d] : source_delay_)
    properties["source_delay/" + std::to_string(node)] = std::to_string(d.count());
}

/// After a restore: epochs continue after the checkpoint, micro-batch watermarks too.
void epoch_planner::resume(const checkpoint_meta& m) {
  next_epoch_ = m.id + 1;
  auto get = [&](const std::string& k) -> std::optional<std::int64_t> {
    auto it = m.properties.find(k);
    if (it == m.properties.end())
      return std::nullopt;
    return std::stoll(it->second);
  };
  auto at = [](std::int64_t us) { return event_time{duration{us}}; };
  spark_watermark_.reset();
  last_run_watermark_.reset();
  if (auto w = get("spark_watermark"))
    spark_watermark_ = at(*w);
  if (auto w = get("last_run_watermark"))
    last_run_watermark_ = at(*w);
  source_max_.clear();
  source_delay_.clear();
  for (auto& [k, v] : m.properties) {
    if (k.starts_with("source_max/"))
      source_max_[std::stoi(k.substr(11))] = at(std::stoll(v));
    if (k.starts_with("source_delay/"))
      source_delay_[std::stoi(k.substr(13))] = duration{std::stoll(v)};
  }
}

/// A run without a checkpoint to restore numbers its epochs from 0, as its tasks do, and
/// forgets the event times of a failed run.
void epoch_planner::reset() {
  next_epoch_ = 0;
  spark_watermark_.reset();
  last_run_watermark_.reset();
  source_max_.clear();
  source_delay_.clear();
}

} // namespace sluice
