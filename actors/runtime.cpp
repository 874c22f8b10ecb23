#include "actors/runtime.hpp"

#include "actors/blueprint.hpp"
#include "actors/checkpoint_writer.hpp"
#include "actors/messages.hpp"
#include "actors/task.hpp"

#include "core/codec/time_format.hpp"
#include "core/log.hpp"

#include <malloc.h>

#include <algorithm>
#include <cstdio>
#include <deque>
#include <map>
#include <random>
#include <set>

#include <condition_variable>
#include <mutex>
#include <optional>
#include <thread>

namespace sluice {

namespace {

/// What the coordinator and the caller's handle share.
struct job_state {
  std::mutex mtx;
  std::condition_variable cv;
  std::optional<result<job_result>> outcome;
  std::chrono::steady_clock::time_point started = std::chrono::steady_clock::now();
  std::deque<query_progress> progress; ///< the last 100 reports
  // What monitors read (job_snapshot), written by the coordinator.
  std::string id, run_id;
  std::string phase = "running";
  query_status status;
  int restarts = 0;
  std::int64_t checkpoints_completed = 0;
  std::int64_t checkpoint_failures = 0;
  std::optional<std::string> last_failure;
  std::deque<checkpoint_stats> checkpoints; ///< the last 100
  std::optional<error> failure;             ///< the job's own failure, once it ended
};

/// A progress report's ids: random version-4 UUIDs.
struct query_ids {
  std::string query;
  std::string run;

  static std::string uuid() {
    static thread_local std::mt19937_64 gen{std::random_device{}()};
    const auto a = gen(), b = gen();
    char text[40];
    std::snprintf(text, sizeof text, "%08x-%04x-4%03x-%04x-%012llx",
                  static_cast<unsigned>(a >> 32), static_cast<unsigned>((a >> 16) & 0xffff),
                  static_cast<unsigned>(a & 0x0fff),
                  static_cast<unsigned>(0x8000 | ((b >> 48) & 0x3fff)),
                  static_cast<unsigned long long>(b & 0xffffffffffffULL));
    return text;
  }
  static query_ids fresh() { return {uuid(), uuid()}; }
};

/// `2026-01-01T12:00:00.000Z`: Spark's progress timestamps, always with milliseconds.
std::string iso_millis(event_time t) {
  const auto secs = std::chrono::floor<std::chrono::seconds>(t);
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(t - secs).count();
  auto text = codec::format_iso8601(secs);
  char frac[8];
  std::snprintf(frac, sizeof frac, ".%03dZ", static_cast<int>(ms));
  text.pop_back(); // the 'Z'
  return text + frac;
}

std::vector<task_stats> collect_stats(const blueprint& bp) {
  std::vector<task_stats> out;
  for (std::size_t i = 0; i < bp.tasks.size(); ++i) {
    auto s = snapshot(bp.metrics[i]);
    const auto& chain = bp.plan.chains[static_cast<std::size_t>(bp.tasks[i].chain)];
    s.chain = chain.name;
    s.chain_id = chain.id;
    s.instance = bp.tasks[i].instance;
    for (std::size_t n = 0; n < s.nodes.size() && n < chain.nodes.size(); ++n)
      s.nodes[n].name = bp.logical.node(chain.nodes[n]).name;
    out.push_back(std::move(s));
  }
  return out;
}

/// Owns the job's lifecycle: spawns and wires the tasks, drives epochs (triggers,
/// barriers, progress reports), waits for the tasks to finish, turns the first failure
/// into the job's outcome and stops everything else.
class coordinator_actor final : public caf::event_based_actor {
public:
  coordinator_actor(caf::actor_config& cfg, std::shared_ptr<const blueprint> bp,
                    std::shared_ptr<job_state> state, std::shared_ptr<const restore_point> from,
                    std::vector<std::string> skipped)
    : caf::event_based_actor(cfg), bp_(std::move(bp)), state_(std::move(state)),
      clock_(bp_->options.processing_clock), when_(bp_->options.epochs),
      skipped_(std::move(skipped)) {
    if (from->meta)
      restored_from_ = from->meta->id;
    first_from_ = std::move(from);
  }

  caf::behavior make_behavior() override {
    for (std::size_t i = 0; i < bp_->tasks.size(); ++i)
      if (bp_->plan.chains[static_cast<std::size_t>(bp_->tasks[i].chain)].is_source)
        sources_.push_back(static_cast<int>(i));
    set_exit_handler([this](caf::exit_msg& m) {
      if (m.reason && !completed_)
        complete(make_error(error_code::internal, "a task stopped unexpectedly: " +
                                                    to_string(m.reason)));
    });
    start_tasks(std::exchange(first_from_, nullptr));
    {
      std::lock_guard guard{state_->mtx};
      state_->id = ids_.query;
      state_->run_id = ids_.run;
    }
    set_status(when_.micro_batch() ? "Initializing sources" : "Processing continuously",
               false, !when_.micro_batch());
    const query_listener::started_event started{ids_.query, ids_.run, bp_->options.query_name,
                                                wall_now()};
    for (auto& l : bp_->options.listeners)
      l->on_started(started);
    logging::get().info("job '{}' started: {} tasks, trigger {}{}", bp_->options.query_name,
                        bp_->tasks.size(), when_.describe(),
                        restored_from_ ? ", restored from checkpoint " +
                                           std::to_string(*restored_from_)
                                       : std::string{});
    for (auto& why : skipped_)
      logging::get().warn("job '{}': skipped checkpoint: {}", bp_->options.query_name, why);
    report_span_start_ = clock_->now();
    return {
      [this](msg::done, int task) {
        if (!from_current(task))
          return;
        task_done_[static_cast<std::size_t>(task)] = true;
        complete_epochs();
        if (++done_ == tasks_.size()) {
          complete_epochs(true);
          complete(std::nullopt);
        }
      },
      [this](msg::final_position, int task, std::string& piece, std::string& bytes) {
        if (from_current(task))
          final_positions_[task] = {std::move(piece), std::move(bytes)};
      },
      [this](msg::failed, int task, int code, std::string& text) {
        if (!from_current(task))
          return; // a task of a run that was already restarted
        on_task_failed(make_error(static_cast<error_code>(code), std::move(text)));
      },
      [this](msg::restart) { restart_now(); },
      [this](msg::savepoint, bool stop) -> caf::result<std::int64_t> {
        if (!bp_->store)
          return caf::make_error(caf::sec::invalid_argument,
                                 "savepoints need a checkpoint directory");
        if (completed_ || cancelled_)
          return caf::make_error(caf::sec::invalid_argument, "the job is stopping");
        if (restarting_) // no tasks until the restart: nothing could take it
          return caf::make_error(caf::sec::invalid_argument,
                                 "the job is restarting after a failure");
        auto rp = make_response_promise<std::int64_t>();
        savepoint_waiters_.push_back(rp);
        stop_at_savepoint_ = stop_at_savepoint_ || stop;
        // Continuous mode: a checkpoint now unless one is on its way; micro-batch: the next
        // batch to complete (every batch is a checkpoint).
        if (!when_.micro_batch() && !checkpoint_in_flight_)
          inject_through(next_epoch_, true);
        else if (when_.micro_batch() && phase_ == phase::idle && when_.how == trigger::kind::processing_time)
          begin_trigger();
        return rp;
      },
      [this](msg::cancel) {
        cancelled_ = true;
        if (restarting_) { // no tasks to stop: the job ends here, cancelled
          complete(std::nullopt);
          return;
        }
        if (phase_ == phase::running)
          stop_after_epoch_ = true; // a micro-batch in flight completes first
        else
          stop_sources();
      },
      [this](msg::ack, const epoch_report_ptr& report) {
        if (report && from_current(report->task))
          on_ack(report);
      },
      [this](msg::prepared, int task, std::int64_t epoch, bool available) {
        if (from_current(task))
          on_prepared(epoch, available);
      },
      [this](msg::tick) { on_tick(); },
    };
  }

  void on_exit() override { tasks_.clear(); }

private:
  enum class phase { idle, preparing, running, stopping };

  /// An epoch between its start and the last task's acknowledgement.
  struct open_epoch {
    sluice::clock::time_point triggered; ///< the trigger fired (prepare, or inject)
    sluice::clock::time_point started;   ///< the sources began reading it
    std::chrono::system_clock::time_point wall = std::chrono::system_clock::now();
    std::vector<bool> acked;
    std::vector<epoch_report_ptr> reports;
    std::optional<event_time> watermark; ///< micro-batch: Spark's watermark it ran with
  };

  // -- the tasks of one run ---------------------------------------------------------------

  /// Spawns, wires and starts every task, restoring checkpoint `from` (or none).
  void start_tasks(std::shared_ptr<const restore_point> from) {
    const auto n = bp_->tasks.size();
    tasks_.clear();
    for (std::size_t i = 0; i < n; ++i) {
      auto t = spawn_task(this, bp_, static_cast<int>(i), this, from);
      link_to(t); // if the coordinator is killed, the tasks go with it
      tasks_.push_back(std::move(t));
    }
    task_done_.assign(n, false);
    final_positions_.clear();
    done_ = 0;
    open_epochs_.clear();
    phase_ = phase::idle;
    checkpoint_in_flight_ = false;
    if (from->meta) {
      resume_epochs(*from->meta);
      next_epoch_ = std::max(next_epoch_, from->first_epoch);
    } else
      reset_epochs(); // a restart before any checkpoint: the tasks start at epoch 0 again
    for (auto& t : tasks_)
      send(t, msg::wire::value, tasks_);
    // The first epoch's interval counts from before any task starts: whoever sees a task
    // at work knows the tick's time is already fixed (tests that move a manual clock rely
    // on it).
    const auto started = clock_->now();
    for (auto& t : tasks_)
      send(t, msg::start::value);
    if (when_.micro_batch())
      begin_trigger();
    else
      schedule_tick(started + when_.interval);
  }

  /// Messages of tasks killed by a restart may still be queued: only the current run's
  /// tasks count.
  bool from_current(int task) {
    return task >= 0 && static_cast<std::size_t>(task) < tasks_.size() &&
           caf::actor_cast<caf::actor_addr>(current_sender()) == tasks_[static_cast<std::size_t>(task)].address();
  }

  /// A failure restarts the job from its latest complete checkpoint when the restart
  /// strategy allows; else it fails the job with this cause.
  void on_task_failed(error err) {
    const auto& rs = bp_->options.checkpoints.restart;
    if (completed_ || restarting_)
      return;
    if (!bp_->store || rs.how == restart_strategy::kind::none || restarts_ >= rs.max_restarts ||
        cancelled_) {
      if (restarts_ > 0)
        err.message += " (after " + std::to_string(restarts_) + " restarts)";
      complete(std::move(err));
      return;
    }
    {
      std::lock_guard guard{state_->mtx};
      state_->last_failure = err.message;
      state_->restarts = restarts_ + 1;
      state_->phase = "restarting";
    }
    set_status("Restarting after a failure: " + err.message, false, false);
    logging::get().warn("job '{}': {}; restart {} of {}", bp_->options.query_name, err.message,
                        restarts_ + 1, rs.max_restarts);
    last_failure_ = std::move(err);
    restarting_ = true;
    for (auto& t : tasks_) {
      unlink_from(t);
      send_exit(t, caf::exit_reason::kill);
    }
    tasks_.clear();
    const auto delay = rs.delay_before(restarts_);
    restart_delays_.push_back(delay);
    ++restarts_;
    delayed_send(this, delay, msg::restart::value);
  }

  void restart_now() {
    restarting_ = false;
    if (completed_)
      return;
    std::vector<std::string> skipped;
    auto latest = bp_->store->latest(skipped);
    if (!latest) {
      complete(std::move(latest).error());
      return;
    }
    for (auto& s : skipped)
      skipped_.push_back(s);
    auto from = std::make_shared<restore_point>();
    from->meta = std::move(*latest);
    {
      std::lock_guard guard{state_->mtx};
      state_->phase = "running";
    }
    set_status(when_.micro_batch() ? "Waiting for next trigger" : "Processing continuously",
               false, !when_.micro_batch());
    start_tasks(std::move(from));
  }

  /// After a restore: epochs continue after the checkpoint, micro-batch watermarks too.
  void resume_epochs(const checkpoint_meta& m) {
    next_epoch_ = m.id + 1;
    auto get = [&](const std::string& k) -> std::optional<std::int64_t> {
      auto it = m.properties.find(k);
      if (it == m.properties.end())
        return std::nullopt;
      return std::stoll(it->second);
    };
    auto at = [](std::int64_t us) { return event_time{duration{us}}; };
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
    if (auto it = m.properties.find("query_id"); it != m.properties.end())
      ids_.query = it->second;
  }

  /// A run without a checkpoint to restore numbers its epochs from 0, as its tasks do, and
  /// forgets the event times of a failed run.
  void reset_epochs() {
    next_epoch_ = 0;
    spark_watermark_.reset();
    last_run_watermark_.reset();
    source_max_.clear();
    source_delay_.clear();
  }

  // -- checkpoints ------------------------------------------------------------------------

  /// Continuous mode: whether the next injected epoch is also a checkpoint.
  bool checkpoint_due(sluice::clock::time_point now) const {
    if (!bp_->store || checkpoint_in_flight_)
      return false;
    return bp_->options.checkpoints.due(now, last_checkpoint_started_, last_checkpoint_done_);
  }

  /// Continuous mode: a checkpoint still in flight after `checkpoints.timeout` is given up
  /// (Flink's checkpoint timeout): it counts as a failure, and the next one may start. Its
  /// barriers still flow and its late acknowledgements are ignored; what sinks pre-committed
  /// for it is committed with the next complete checkpoint (sinks commit "up to" an id).
  void expire_checkpoint(sluice::clock::time_point now) {
    const auto timeout = bp_->options.checkpoints.timeout;
    if (!checkpoint_in_flight_ || !last_checkpoint_started_ || timeout.count() <= 0 ||
        now - *last_checkpoint_started_ < timeout)
      return;
    expired_.insert(in_flight_id_);
    checkpoint_in_flight_ = false;
    last_checkpoint_done_ = now;
    checkpoint_failed(in_flight_id_, "expired: not complete after " +
                                       std::to_string(timeout.count()) + " ms (checkpoint timeout)");
  }

  /// A task could not store its snapshot: the checkpoint fails (the epoch still ends, and
  /// what sinks pre-committed for it is committed with the next complete checkpoint).
  void decline_checkpoint(std::int64_t id, const std::string& why) {
    checkpoint_in_flight_ = false;
    last_checkpoint_done_ = clock_->now();
    checkpoint_failed(id, why);
  }

  /// Counts a failed checkpoint; fails the job when more fail in a row than tolerated.
  void checkpoint_failed(std::int64_t id, const std::string& why) {
    {
      std::lock_guard guard{state_->mtx};
      ++state_->checkpoint_failures;
      state_->last_failure = "checkpoint " + std::to_string(id) + ": " + why;
    }
    logging::get().warn("job '{}': checkpoint {} failed: {}", bp_->options.query_name, id, why);
    if (++failed_checkpoints_ > bp_->options.checkpoints.tolerable_failures)
      complete(make_error(error_code::checkpoint_failed, "checkpoint " + std::to_string(id) + " failed: " +
                                                  why + " (" + std::to_string(failed_checkpoints_) +
                                                  " checkpoint failures in a row)"));
  }

  /// Every task snapshotted epoch `id`: the metadata makes it complete (one synced write),
  /// and only then may sinks commit.
  void complete_checkpoint(std::int64_t id, const open_epoch& e) {
    checkpoint_meta meta;
    meta.id = id;
    meta.job = bp_->options.query_name;
    meta.max_key_groups = bp_->plan.max_key_groups;
    meta.created = iso_millis(std::chrono::time_point_cast<duration>(std::chrono::system_clock::now()));
    for (auto& r : e.reports)
      meta.pieces.insert(meta.pieces.end(), r->pieces.begin(), r->pieces.end());
    // Finished sources take no part any more: their final positions are carried forward.
    for (auto& [task, piece] : final_positions_) {
      if (e.acked[static_cast<std::size_t>(task)])
        continue;
      auto stored = bp_->store->put(id, piece.first, piece.second);
      if (!stored) {
        complete(std::move(stored).error());
        return;
      }
      meta.pieces.push_back(*stored);
    }
    auto us = [](event_time t) { return std::to_string(t.time_since_epoch().count()); };
    if (spark_watermark_)
      meta.properties["spark_watermark"] = us(*spark_watermark_);
    if (last_run_watermark_)
      meta.properties["last_run_watermark"] = us(*last_run_watermark_);
    for (auto& [node, max] : source_max_)
      meta.properties["source_max/" + std::to_string(node)] = us(max);
    for (auto& [node, d] : source_delay_)
      meta.properties["source_delay/" + std::to_string(node)] = std::to_string(d.count());
    meta.properties["query_id"] = ids_.query;
    checkpoint_in_flight_ = false;
    last_checkpoint_done_ = clock_->now();
    if (auto ok = bp_->store->complete(meta); !ok) {
      checkpoint_failed(id, ok.error().message);
      return;
    }
    failed_checkpoints_ = 0;
    ++checkpoints_completed_;
    if (!savepoint_waiters_.empty()) {
      meta.savepoint = true; // rewrite the metadata with the flag: retention keeps it
      if (auto ok = bp_->store->complete(meta); !ok) {
        complete(std::move(ok).error());
        return;
      }
      for (auto& rp : savepoint_waiters_)
        rp.deliver(id);
      savepoint_waiters_.clear();
      if (std::exchange(stop_at_savepoint_, false)) {
        cancelled_ = true;
        if (phase_ == phase::running)
          stop_after_epoch_ = true;
        else
          stop_sources();
      }
    }
    checkpoint_stats st;
    st.id = id;
    st.duration = std::chrono::duration_cast<std::chrono::microseconds>(clock_->now() - e.triggered);
    for (auto& p : meta.pieces) {
      st.full_bytes += p.size;
      if (p.stored_in == id)
        st.bytes += p.size;
    }
    for (auto& r : e.reports) {
      if (r->checkpoint)
        st.pauses.push_back(r->pause);
      st.alignment = std::max(st.alignment, r->alignment);
    }
    st.completed_at = meta.created;
    st.savepoint = meta.savepoint;
    last_checkpoint_ = checkpoint_progress{
      id, std::chrono::duration_cast<std::chrono::milliseconds>(st.duration).count(),
      static_cast<std::uint64_t>(st.bytes)};
    {
      std::lock_guard guard{state_->mtx};
      state_->checkpoints.push_back(st);
      if (state_->checkpoints.size() > 100)
        state_->checkpoints.pop_front();
      state_->checkpoints_completed = checkpoints_completed_;
    }
    logging::get().debug("job '{}': checkpoint {} complete: {} bytes in {} us",
                         bp_->options.query_name, id, st.bytes, st.duration.count());
    checkpoint_stats_.push_back(std::move(st));
    if (checkpoint_stats_.size() > 1000)
      checkpoint_stats_.erase(checkpoint_stats_.begin());
    if (bp_->options.sync_point)
      bp_->options.sync_point("completed", id);
    for (std::size_t t = 0; t < tasks_.size(); ++t)
      if (!task_done_[t])
        send(tasks_[t], msg::commit::value, id);
  }

  // -- triggers ---------------------------------------------------------------------------

  void schedule_tick(sluice::clock::time_point at) {
    tick_at_ = at;
    if (tick_scheduled_)
      return;
    tick_scheduled_ = true;
    // The clock may be injected (it moves in jumps): real waits are capped, then re-checked.
    const auto wait = std::clamp<std::chrono::nanoseconds>(at - clock_->now(),
                                                           std::chrono::nanoseconds{0},
                                                           std::chrono::milliseconds{100});
    delayed_send(this, wait, msg::tick::value);
  }

  void on_tick() {
    tick_scheduled_ = false;
    // While a restart waits for its delay there are no tasks; start_tasks schedules anew.
    if (completed_ || restarting_ || phase_ == phase::stopping || !tick_at_)
      return;
    const auto now = clock_->now();
    if (now < *tick_at_) {
      schedule_tick(*tick_at_);
      return;
    }
    tick_at_.reset();
    if (when_.micro_batch()) {
      if (phase_ == phase::idle)
        begin_trigger();
      return;
    }
    expire_checkpoint(now);
    if (completed_)
      return;
    // Continuous: a barrier into every source, then the next tick.
    inject_through(next_epoch_, checkpoint_due(now));
    schedule_tick(now + when_.interval);
  }

  /// Continuous mode: epochs up to `last` start at every source that has not begun them.
  void inject_through(std::int64_t last, bool checkpoint) {
    for (; next_epoch_ <= last; ++next_epoch_) {
      auto& e = open_epochs_[next_epoch_];
      init_epoch(e, clock_->now());
      if (checkpoint) {
        checkpoint_in_flight_ = true;
        in_flight_id_ = next_epoch_;
        last_checkpoint_started_ = clock_->now();
      }
      for (int i : sources_)
        send(tasks_[static_cast<std::size_t>(i)], msg::inject::value, next_epoch_, checkpoint);
    }
  }

  void init_epoch(open_epoch& e, sluice::clock::time_point now) {
    if (!e.acked.empty())
      return;
    e.triggered = e.started = now;
    e.acked.assign(tasks_.size(), false);
  }

  /// Micro-batch: ask every source what this trigger would read.
  void begin_trigger() {
    set_status("Getting offsets from sources", false, true);
    phase_ = phase::preparing;
    trigger_started_ = clock_->now();
    prepared_ = 0;
    available_ = false;
    const bool unlimited = when_.how == trigger::kind::once;
    for (int i : sources_)
      send(tasks_[static_cast<std::size_t>(i)], msg::prepare::value, next_epoch_, unlimited);
    if (sources_.empty())
      stop_sources();
  }

  void on_prepared(std::int64_t epoch, bool available) {
    if (phase_ != phase::preparing || epoch != next_epoch_)
      return;
    available_ = available_ || available;
    if (++prepared_ < sources_.size())
      return;
    // Spark runs an epoch for new data, or without data when the watermark moved and a
    // stateful operator may have rows to emit or evict (not in complete mode).
    const bool watermark_moved = spark_watermark_ && (!last_run_watermark_ ||
                                                      *spark_watermark_ > *last_run_watermark_);
    const bool no_data_epoch = watermark_moved && bp_->options.has_event_time_state &&
                               bp_->options.mode != output_mode::complete;
    if (!available_ && !no_data_epoch) {
      set_status("Waiting for data to arrive", false, false);
      idle_event();
      phase_ = phase::idle;
      if (when_.how == trigger::kind::processing_time)
        schedule_tick(trigger_started_ + when_.interval);
      else
        stop_sources(); // available_now / once: nothing left
      return;
    }
    phase_ = phase::running;
    set_status("Processing new data", available_, true);
    auto& e = open_epochs_[next_epoch_];
    init_epoch(e, clock_->now());
    e.triggered = trigger_started_;
    e.watermark = spark_watermark_.value_or(event_time{});
    last_run_watermark_ = spark_watermark_;
    // Operators use the engine's convention (W = the last instant known complete), one
    // microsecond below Spark's (W = the first instant that may still come): both make a
    // window with `end <= Spark's W` late.
    const std::int64_t wm =
      spark_watermark_ ? (*spark_watermark_ - duration{1}).time_since_epoch().count()
                       : min_watermark.time_since_epoch().count();
    for (int i : sources_)
      send(tasks_[static_cast<std::size_t>(i)], msg::run::value, next_epoch_, wm);
  }

  void stop_sources() {
    if (phase_ == phase::stopping)
      return;
    phase_ = phase::stopping;
    for (int i : sources_)
      send(tasks_[static_cast<std::size_t>(i)], msg::cancel::value);
  }

  // -- acknowledgements and progress --------------------------------------------------------

  void on_ack(const epoch_report_ptr& report) {
    if (completed_ || !report)
      return;
    if (!when_.micro_batch() && report->epoch >= next_epoch_) // a source's last barrier
      inject_through(report->epoch, report->checkpoint);
    auto it = open_epochs_.find(report->epoch);
    if (it == open_epochs_.end())
      return;
    init_epoch(it->second, clock_->now());
    it->second.acked[static_cast<std::size_t>(report->task)] = true;
    it->second.reports.push_back(report);
    complete_epochs();
  }

  /// Reports every epoch, oldest first, that each task acknowledged or finished without.
  /// `all`: the job ended, so every epoch still open is as complete as it will get.
  void complete_epochs(bool all = false) {
    while (!open_epochs_.empty()) {
      auto it = open_epochs_.begin();
      auto& e = it->second;
      if (!all)
        for (std::size_t t = 0; t < tasks_.size(); ++t)
          if (!e.acked[t] && !task_done_[t])
            return;
      if (!e.reports.empty()) {
        absorb_event_times(e); // before the checkpoint, which keeps the next watermark
        if (std::any_of(e.reports.begin(), e.reports.end(),
                        [](const epoch_report_ptr& r) { return r->checkpoint; }) &&
            !expired_.erase(it->first)) {
          auto declined = std::find_if(e.reports.begin(), e.reports.end(), [](const auto& r) {
            return !r->checkpoint_problem.empty();
          });
          if (declined == e.reports.end())
            complete_checkpoint(it->first, e);
          else
            decline_checkpoint(it->first, (*declined)->checkpoint_problem);
        }
        if (completed_)
          return;
        report_epoch(it->first, e);
      }
      open_epochs_.erase(it);
      if (when_.micro_batch() && phase_ == phase::running) {
        ++next_epoch_;
        after_micro_batch();
      }
    }
  }

  void after_micro_batch() {
    phase_ = phase::idle;
    set_status("Waiting for next trigger", false, false);
    if (stop_after_epoch_ || when_.how == trigger::kind::once) {
      stop_sources();
      return;
    }
    if (when_.how == trigger::kind::available_now) {
      begin_trigger();
      return;
    }
    const auto next = trigger_started_ + when_.interval;
    if (clock_->now() >= next)
      begin_trigger(); // the epoch overran its interval: the next one starts at once
    else
      schedule_tick(next);
  }

  void report_epoch(std::int64_t id, const open_epoch& e) {
    const auto now = clock_->now();
    query_progress p;
    p.id = ids_.query;
    p.run_id = ids_.run;
    p.name = bp_->options.query_name;
    p.timestamp = iso_millis(std::chrono::time_point_cast<duration>(e.wall));
    p.batch_id = id;
    std::map<int, source_progress> sources;
    // node -> instance -> report: offsets are keyed by instance, whatever order tasks acked in
    std::map<int, std::map<int, const source_epoch_report*>> per_source;
    std::map<int, state_operator_progress> state;
    event_time_stats times;
    bool event_time_input = false;
    for (auto& r : e.reports) {
      for (auto& s : r->sources) {
        per_source[s.node][bp_->tasks[static_cast<std::size_t>(r->task)].instance] = &s;
        times.merge(s.event_times);
        if (s.watermark_delay)
          event_time_input = true;
      }
      for (auto& s : r->state) {
        auto& o = state[s.node];
        o.name = s.name;
        o.num_rows_total += s.rows_total;
        o.num_rows_updated += s.rows_updated;
        o.num_rows_removed += s.rows_removed;
        o.num_rows_dropped_by_watermark += s.rows_dropped_by_watermark;
        o.memory_used_bytes += s.memory_used_bytes;
      }
      for (auto& s : r->sinks) {
        if (p.sink.description.empty())
          p.sink.description = s.description;
        else if (p.sink.description.find(s.description) == std::string::npos)
          p.sink.description += ", " + s.description;
        p.sink.num_output_rows += s.rows;
      }
    }
    const double elapsed_s =
      std::chrono::duration<double>(now - e.triggered).count();
    const double since_last_s =
      last_trigger_ ? std::chrono::duration<double>(e.triggered - *last_trigger_).count() : 0.0;
    last_trigger_ = e.triggered;
    auto rate = [](std::uint64_t n, double s) { return s > 0 ? static_cast<double>(n) / s : 0.0; };
    for (auto& [node, reports] : per_source) {
      source_progress sp;
      sp.description = reports.begin()->second->description;
      if (reports.size() == 1) {
        sp.start_offset = reports.begin()->second->start_offset;
        sp.end_offset = reports.begin()->second->end_offset;
      } else { // one offset per parallel instance, keyed by the instance
        sp.start_offset = sp.end_offset = "{";
        for (auto& [instance, r] : reports) {
          const auto sep = std::string(sp.start_offset.size() > 1 ? ", " : "") + "\"" +
                           std::to_string(instance) + "\": ";
          sp.start_offset += sep + r->start_offset;
          sp.end_offset += sep + r->end_offset;
        }
        sp.start_offset += "}";
        sp.end_offset += "}";
      }
      for (auto& [instance, r] : reports)
        sp.num_input_rows += r->rows;
      sp.input_rows_per_second = rate(sp.num_input_rows, since_last_s);
      sp.processed_rows_per_second = rate(sp.num_input_rows, elapsed_s);
      p.num_input_rows += sp.num_input_rows;
      p.sources.push_back(std::move(sp));
    }
    for (auto& [node, s] : state)
      p.state_operators.push_back(s);
    p.input_rows_per_second = rate(p.num_input_rows, since_last_s);
    p.processed_rows_per_second = rate(p.num_input_rows, elapsed_s);
    auto ms = [](auto d) {
      return static_cast<std::int64_t>(
        std::chrono::duration_cast<std::chrono::milliseconds>(d).count());
    };
    p.duration_ms["triggerExecution"] = ms(now - e.triggered);
    p.duration_ms["latestOffset"] = ms(e.started - e.triggered);
    p.duration_ms["addBatch"] = ms(now - e.started);
    if (times.count > 0) {
      p.event_time["min"] = iso_millis(times.min);
      p.event_time["max"] = iso_millis(times.max);
      p.event_time["avg"] = iso_millis(event_time{duration{static_cast<duration::rep>(
        times.sum_us / static_cast<long double>(times.count))}});
    }
    if (event_time_input) {
      if (e.watermark)
        p.event_time["watermark"] = iso_millis(*e.watermark);
      else if (auto wm = continuous_watermark())
        p.event_time["watermark"] = iso_millis(*wm);
    }
    offer(std::move(p));
  }

  /// Folds an epoch's event times into each source's maximum and, in micro-batch mode,
  /// computes the watermark the next epoch runs with. Runs before the epoch's checkpoint is
  /// completed, so that the checkpoint holds that watermark and a restored run resumes with
  /// it (not with the one of the epoch before).
  void absorb_event_times(const open_epoch& e) {
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
  void update_spark_watermark() {
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

  /// Continuous mode: the lowest watermark of the sources, in Spark's convention.
  std::optional<event_time> continuous_watermark() const {
    std::optional<event_time> low;
    for (int i : sources_) {
      const event_time w{duration{bp_->metrics[static_cast<std::size_t>(i)].watermark.load(
        std::memory_order_relaxed)}};
      if (w == min_watermark)
        continue;
      low = low ? std::min(*low, w) : w;
    }
    if (low && *low != max_watermark)
      *low += duration{1};
    return low;
  }

  // -- progress reports, status and listeners ---------------------------------------------

  static std::string wall_now() {
    return iso_millis(std::chrono::time_point_cast<duration>(std::chrono::system_clock::now()));
  }

  void set_status(std::string message, bool data_available, bool trigger_active) {
    std::lock_guard guard{state_->mtx};
    state_->status = query_status{std::move(message), data_available, trigger_active};
  }

  void idle_event() {
    const query_listener::idle_event idle{ids_.query, ids_.run, wall_now()};
    for (auto& l : bp_->options.listeners)
      l->on_idle(idle);
  }

  /// One epoch's report. Micro-batch mode publishes it; continuous mode folds it into the
  /// report of the progress interval, published when the interval is over (or the job
  /// ends: `flush`).
  void offer(std::optional<query_progress> p, bool flush = false) {
    const auto now = clock_->now();
    const auto every = bp_->options.progress_interval;
    if (!when_.micro_batch() && every.count() > 0) {
      if (p && pending_report_)
        pending_report_->absorb(*p);
      else if (p)
        pending_report_ = std::move(p);
      if (!pending_report_ || (!flush && now - report_span_start_ < every))
        return;
      p = std::move(pending_report_);
      pending_report_.reset();
      // Rates over the whole interval, not one epoch.
      const double span = std::chrono::duration<double>(now - report_span_start_).count();
      auto rate = [span](std::uint64_t n) { return span > 0 ? static_cast<double>(n) / span : 0.0; };
      p->input_rows_per_second = p->processed_rows_per_second = rate(p->num_input_rows);
      for (auto& src : p->sources)
        src.input_rows_per_second = src.processed_rows_per_second = rate(src.num_input_rows);
      set_status("Processing continuously", p->num_input_rows > 0, true);
    }
    if (!p)
      return;
    add_operator_progress(*p, now);
    report_span_start_ = now;
    const bool idle = p->num_input_rows == 0 && !when_.micro_batch();
    publish(std::move(*p));
    if (idle)
      idle_event();
  }

  /// Sluice's extra fields: per operator over the span since the last report, and the
  /// newest checkpoint completed in it.
  void add_operator_progress(query_progress& p, sluice::clock::time_point now) {
    auto stats = collect_stats(*bp_);
    const double span_ns =
      std::max(1.0, static_cast<double>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                          now - report_span_start_)
                                          .count()));
    std::map<node_id, operator_progress> ops;
    std::map<node_id, std::int64_t> low_watermark;
    for (std::size_t t = 0; t < stats.size(); ++t) {
      const auto& cur = stats[t];
      const task_stats* before = t < last_stats_.size() ? &last_stats_[t] : nullptr;
      const auto& chain = bp_->plan.chains[static_cast<std::size_t>(bp_->tasks[t].chain)];
      auto delta = [&](auto field) {
        return before ? cur.*field - before->*field : cur.*field;
      };
      for (std::size_t n = 0; n < cur.nodes.size(); ++n) {
        const auto id = chain.nodes[n];
        const auto& spec = bp_->logical.node(id);
        auto& o = ops[id];
        o.name = spec.name;
        o.parallelism = chain.parallelism;
        const auto& cn = cur.nodes[n];
        const node_stats* bn = before && n < before->nodes.size() ? &before->nodes[n] : nullptr;
        o.records_in += cn.records_in - (bn ? bn->records_in : 0);
        o.records_out += cn.records_out - (bn ? bn->records_out : 0);
        o.state_entries += cn.state_entries;
        o.state_bytes += cn.state_bytes;
        // The chain's thread is shared by its operators: each shows the task's shares,
        // averaged over the instances.
        o.busy_share += static_cast<double>(delta(&task_stats::busy_ns)) / span_ns /
                        chain.parallelism;
        o.backpressured_share += static_cast<double>(delta(&task_stats::backpressured_ns)) /
                                 span_ns / chain.parallelism;
        // Late records belong to the chain's event-time operator (else its last node).
        const bool late_here = spec.role.event_time_state ||
                               (n + 1 == cur.nodes.size() &&
                                std::none_of(chain.nodes.begin(), chain.nodes.end(), [&](node_id x) {
                                  return bp_->logical.node(x).role.event_time_state;
                                }));
        if (late_here) {
          const auto side = delta(&task_stats::late_records_to_side_output);
          o.late_records_side_output += side;
          o.late_records_dropped += delta(&task_stats::late_records) - side;
        }
        if (cur.watermark != INT64_MIN) {
          auto [it, fresh] = low_watermark.emplace(id, cur.watermark);
          if (!fresh)
            it->second = std::min(it->second, cur.watermark);
        }
      }
    }
    const auto now_us = std::chrono::duration_cast<duration>(now.time_since_epoch()).count();
    for (auto& [id, o] : ops) {
      if (auto it = low_watermark.find(id); it != low_watermark.end() &&
                                            it->second != max_watermark.time_since_epoch().count()) {
        o.watermark = iso_millis(event_time{duration{it->second}});
        o.watermark_lag_ms = (now_us - it->second) / 1000;
      }
      p.operators.push_back(std::move(o));
    }
    last_stats_ = std::move(stats);
    p.checkpoint = std::exchange(last_checkpoint_, std::nullopt);
  }

  void publish(query_progress p) {
    if (bp_->options.on_progress)
      bp_->options.on_progress(p);
    for (auto& l : bp_->options.listeners)
      l->on_progress(p);
    std::lock_guard guard{state_->mtx};
    state_->progress.push_back(std::move(p));
    if (state_->progress.size() > 100)
      state_->progress.pop_front();
  }

  // -- completion -------------------------------------------------------------------------

  void complete(std::optional<error> err) {
    if (completed_)
      return;
    completed_ = true;
    if (!err)
      offer(std::nullopt, true); // the last interval's report
    for (auto& rp : savepoint_waiters_) // the job ended before a checkpoint completed
      rp.deliver(caf::make_error(caf::sec::request_receiver_down));
    savepoint_waiters_.clear();
    if (err)
      for (auto& t : tasks_)
        send_exit(t, caf::exit_reason::kill);
    for (auto& t : tasks_)
      unlink_from(t);
    tasks_.clear();
    set_status("Stopped", false, false);
    {
      std::lock_guard guard{state_->mtx};
      state_->phase = err ? "failed" : cancelled_ ? "cancelled" : "finished";
      if (err) {
        state_->last_failure = err->message;
        state_->failure = *err;
      }
    }
    const query_listener::terminated_event ended{
      ids_.query, ids_.run, err ? std::optional<std::string>{err->message} : std::nullopt};
    if (err)
      logging::get().error("job '{}' failed: {}", bp_->options.query_name, err->message);
    else
      logging::get().info("job '{}' {}", bp_->options.query_name,
                          cancelled_ ? "stopped" : "finished");
    for (auto& l : bp_->options.listeners)
      l->on_terminated(ended);
    {
      std::lock_guard guard{state_->mtx};
      if (err) {
        state_->outcome.emplace(std::move(*err));
      } else {
        job_result r;
        r.cancelled = cancelled_;
        r.elapsed = std::chrono::steady_clock::now() - state_->started;
        r.tasks = collect_stats(*bp_);
        r.restored_from = restored_from_;
        r.skipped_checkpoints = skipped_;
        r.checkpoints_completed = checkpoints_completed_;
        r.checkpoints = checkpoint_stats_;
        r.restarts = restarts_;
        r.restart_delays = restart_delays_;
        state_->outcome.emplace(std::move(r));
      }
    }
    state_->cv.notify_all();
    quit();
  }

  std::shared_ptr<const blueprint> bp_;
  std::shared_ptr<job_state> state_;
  std::shared_ptr<const sluice::clock> clock_;
  trigger when_;
  std::vector<std::string> skipped_; ///< checkpoints that could not be restored, and why
  std::vector<caf::actor> tasks_;
  std::vector<int> sources_;
  std::vector<bool> task_done_;
  /// Finished source tasks: (piece name, bytes) of where their input ended.
  std::map<int, std::pair<std::string, std::string>> final_positions_;
  std::size_t done_ = 0;
  bool cancelled_ = false;
  bool completed_ = false;
  // Epochs.
  query_ids ids_ = query_ids::fresh();
  std::map<std::int64_t, open_epoch> open_epochs_;
  std::int64_t next_epoch_ = 0;
  phase phase_ = phase::idle;
  bool stop_after_epoch_ = false;
  std::optional<sluice::clock::time_point> tick_at_;
  bool tick_scheduled_ = false;
  sluice::clock::time_point trigger_started_{};
  std::optional<sluice::clock::time_point> last_trigger_;
  std::size_t prepared_ = 0;
  bool available_ = false;
  std::map<int, event_time> source_max_;
  std::map<int, duration> source_delay_;
  std::optional<event_time> spark_watermark_;
  std::optional<event_time> last_run_watermark_;
  // Checkpoints and restarts.
  std::shared_ptr<const restore_point> first_from_;
  std::optional<std::int64_t> restored_from_;
  bool checkpoint_in_flight_ = false;
  std::int64_t in_flight_id_ = -1;
  std::set<std::int64_t> expired_; ///< given up after the timeout, acks still to come
  std::optional<sluice::clock::time_point> last_checkpoint_started_;
  std::optional<sluice::clock::time_point> last_checkpoint_done_;
  int failed_checkpoints_ = 0;
  std::int64_t checkpoints_completed_ = 0;
  std::vector<checkpoint_stats> checkpoint_stats_;
  int restarts_ = 0;
  std::vector<std::chrono::milliseconds> restart_delays_;
  bool restarting_ = false;
  std::vector<caf::response_promise> savepoint_waiters_;
  bool stop_at_savepoint_ = false;
  std::optional<error> last_failure_;
  // Progress reports.
  std::optional<query_progress> pending_report_; ///< continuous: the interval so far
  sluice::clock::time_point report_span_start_{};
  std::vector<task_stats> last_stats_; ///< at the last report, for per-operator deltas
  std::optional<checkpoint_progress> last_checkpoint_; ///< completed since the last report
};

class execution final : public job_execution {
public:
  execution(std::shared_ptr<blueprint> bp, int threads, scheduler_policy policy,
            std::shared_ptr<const restore_point> from, std::vector<std::string> skipped)
    : bp_(std::move(bp)), state_(std::make_shared<job_state>()) {
    cfg_.set("scheduler.max-threads", static_cast<std::size_t>(threads));
    // CAF 0.17 lets an actor keep its worker thread for as long as its mailbox is not
    // empty (max-throughput is unlimited by default). A source task that re-sends itself
    // `poll` without ever running out of credit (seen with a source instance that polls
    // "more" but yields no records) then never empties its mailbox: the coordinator and
    // tasks queued behind it on that worker starved, so cancel() and failures went
    // unhandled while the rest of the job ran on. Yielding after 64 messages (batches)
    // lets them run; W1/W2 throughput is unchanged within noise.
    cfg_.set("scheduler.max-throughput", std::size_t{64});
    cfg_.set("scheduler.policy", policy == scheduler_policy::sharing ? caf::atom("sharing")
                                                                     : caf::atom("stealing"));
    system_.emplace(cfg_);
    coordinator_ = system_->spawn<coordinator_actor>(bp_, state_, std::move(from),
                                                     std::move(skipped));
  }

  ~execution() override {
    if (!finished()) {
      cancel();
      permit_unchecked(wait());
    }
    coordinator_ = nullptr;
    // Snapshots still queued for the writer (of tasks a failure killed) are written now,
    // while the actors they answer exist. Its jobs hold those tasks, which hold the
    // blueprint: left to itself, the writer thread could drop the blueprint's last reference
    // and join itself in its destructor (std::terminate), and keep the store open after the
    // job has ended.
    if (bp_->writer)
      bp_->writer.reset();
    system_.reset(); // waits for every actor; all have quit by now
  }

  void cancel() override { caf::anon_send(coordinator_, msg::cancel::value); }

  result<std::int64_t> savepoint(bool stop) override {
    caf::scoped_actor self{*system_};
    result<std::int64_t> out = make_error(error_code::internal, "no answer");
    self->request(coordinator_, caf::infinite, msg::savepoint::value, stop)
      .receive([&](std::int64_t id) { out = id; },
               [&](caf::error& e) {
                 out = make_error(error_code::invalid_option,
                                  "savepoint failed: " + system_->render(e));
               });
    return out;
  }

  result<job_result> wait() override {
    std::unique_lock lock{state_->mtx};
    state_->cv.wait(lock, [this] { return state_->outcome.has_value(); });
    return *state_->outcome;
  }

  bool wait_for(std::chrono::nanoseconds timeout) override {
    std::unique_lock lock{state_->mtx};
    return state_->cv.wait_for(lock, timeout, [this] { return state_->outcome.has_value(); });
  }

  std::vector<task_stats> metrics() const override { return collect_stats(*bp_); }

  std::vector<query_progress> recent_progress() const override {
    std::lock_guard guard{state_->mtx};
    return {state_->progress.begin(), state_->progress.end()};
  }

  result<void> tap(const std::string& operator_name, double max_per_second,
                   std::function<void(const std::string& line)> out) override {
    return bp_->taps->tap(operator_name, max_per_second, std::move(out));
  }

  void untap(const std::string& operator_name) override { bp_->taps->untap(operator_name); }

  query_status status() const override {
    std::lock_guard guard{state_->mtx};
    return state_->status;
  }

  std::optional<query_progress> last_progress() const override {
    std::lock_guard guard{state_->mtx};
    if (state_->progress.empty())
      return std::nullopt;
    return state_->progress.back();
  }

  std::optional<error> exception() const override {
    std::lock_guard guard{state_->mtx};
    return state_->failure;
  }

  job_snapshot snapshot() const override {
    job_snapshot s;
    s.tasks = collect_stats(*bp_);
    s.name = bp_->options.query_name;
    s.plan_json = plan_json_;
    s.now_us = std::chrono::duration_cast<duration>(
                 bp_->options.processing_clock->now().time_since_epoch())
                 .count();
    std::lock_guard guard{state_->mtx};
    s.id = state_->id;
    s.run_id = state_->run_id;
    s.state = state_->phase;
    s.status = state_->status;
    s.uptime = std::chrono::steady_clock::now() - state_->started;
    s.restarts = state_->restarts;
    s.checkpoints_completed = state_->checkpoints_completed;
    s.checkpoint_failures = state_->checkpoint_failures;
    s.last_failure = state_->last_failure;
    s.checkpoints.assign(state_->checkpoints.begin(), state_->checkpoints.end());
    return s;
  }

private:
  bool finished() {
    std::lock_guard guard{state_->mtx};
    return state_->outcome.has_value();
  }

  std::shared_ptr<blueprint> bp_;
  std::shared_ptr<job_state> state_;
  std::string plan_json_ = explain_json(bp_->logical, bp_->plan);
  caf::actor_system_config cfg_;
  std::optional<caf::actor_system> system_;
  caf::actor coordinator_;
};

void tune_malloc_once() {
  static std::once_flag once;
  std::call_once(once, [] {
    mallopt(M_TRIM_THRESHOLD, 256 * 1024 * 1024);
    mallopt(M_MMAP_THRESHOLD, 64 * 1024 * 1024);
  });
}

} // namespace

/// A job with checkpoints: every operator can snapshot its state, and node names (the
/// keys of their state in a checkpoint, like Flink's operator uids) are unique.
result<void> check_checkpointable(const graph& g, const physical_plan&) {
  std::set<std::string> names;
  for (auto& n : g.nodes()) {
    if (!names.insert(n.name).second)
      return make_error(error_code::invalid_graph,
                        "checkpoints: two nodes are named '" + n.name +
                          "'; names key the state in a checkpoint, so give them distinct names");
    if (n.kind == node_kind::source || !n.make_operator)
      continue;
    if (!n.make_operator()->can_checkpoint())
      return make_error(error_code::invalid_graph,
                        "checkpoints: operator '" + n.name + "' (" + n.kind_name +
                          ") cannot be checkpointed yet, or its state types have no "
                          "inspect(); run it without a checkpoint directory");
  }
  return {};
}

/// The checkpoint to start from: the one asked for, else the latest that verifies. A
/// directory with complete checkpoints of which none verifies is an error, never a
/// silent fresh start.
result<std::optional<checkpoint_meta>> find_restore_point(checkpoint_store& store,
                                                          const checkpoint_options& o,
                                                          const physical_plan& plan,
                                                          std::vector<std::string>& skipped) {
  std::optional<checkpoint_meta> meta;
  if (o.restore_from) {
    auto m = store.find(*o.restore_from);
    if (!m)
      return make_error(error_code::io_error, "cannot restore checkpoint " +
                                                std::to_string(*o.restore_from) + ": " +
                                                m.error().message);
    meta = std::move(*m);
  } else {
    auto latest = store.latest(skipped);
    if (!latest)
      return std::move(latest).error();
    if (!*latest && !skipped.empty()) {
      std::string why;
      for (auto& s : skipped)
        why += "\n  " + s;
      return make_error(error_code::io_error, "checkpoint directory " + o.dir.string() +
                                                " holds checkpoints but none is usable:" + why);
    }
    meta = std::move(*latest);
  }
  if (meta && meta->max_key_groups != plan.max_key_groups)
    return make_error(error_code::invalid_option,
                      "checkpoint " + std::to_string(meta->id) + " was written with " +
                        std::to_string(meta->max_key_groups) + " key groups, the job has " +
                        std::to_string(plan.max_key_groups) +
                        "; key groups (max_key_groups) cannot change across a restore");
  return meta;
}

result<std::unique_ptr<job_execution>> execute(const graph& g, const physical_plan& plan,
                                               const runtime_options& opts) {
  if (opts.batch_size == 0)
    return make_error(error_code::invalid_option, "batch_size must be at least 1");
  if (opts.credits < 1)
    return make_error(error_code::invalid_option, "credits must be at least 1");
  if (opts.linger.count() < 0)
    return make_error(error_code::invalid_option, "linger must not be negative");
  if (opts.threads < 0)
    return make_error(error_code::invalid_option, "threads must not be negative");
  if (!opts.processing_clock)
    return make_error(error_code::invalid_option, "processing_clock must be set");
  if (opts.tune_malloc)
    tune_malloc_once();
  auto bp = std::make_shared<blueprint>();
  bp->logical = g;
  bp->plan = plan;
  bp->tasks = wire(plan);
  bp->options = opts;
  bp->metrics = std::make_unique<task_metrics[]>(bp->tasks.size());
  {
    std::vector<tap_registry::node> tappable;
    for (const auto& n : g.nodes()) {
      auto& t = tappable.emplace_back(tap_registry::node{n.name, "out", {}});
      if (n.outputs.empty())
        continue; // a sink: nothing to tap
      const auto& port = n.outputs.front();
      t.port_name = port.name;
      t.describe = port.describe ? port.describe
                                 : [type = port.type.name](const batch_base&, std::size_t) {
                                     return "<record of type " + type + ">";
                                   };
    }
    bp->taps = std::make_shared<tap_registry>(tappable, opts.processing_clock);
    for (const auto& t : opts.taps)
      if (auto ok = bp->taps->tap(t.operator_name, t.max_per_second, t.out); !ok)
        return std::move(ok).error();
  }
  for (std::size_t i = 0; i < bp->tasks.size(); ++i) {
    auto& m = bp->metrics[i];
    m.node_count = plan.chains[static_cast<std::size_t>(bp->tasks[i].chain)].nodes.size();
    m.nodes = std::make_unique<node_metrics[]>(m.node_count);
  }
  auto from = std::make_shared<restore_point>();
  std::vector<std::string> skipped;
  if (!opts.checkpoints.dir.empty()) {
    if (auto ok = check_checkpointable(g, plan); !ok)
      return std::move(ok).error();
    auto store = checkpoint_store::open(opts.checkpoints.dir,
                                        {.retained = opts.checkpoints.retained,
                                         .file_threshold = opts.checkpoints.file_threshold,
                                         .compress = opts.checkpoints.compression});
    if (!store)
      return std::move(store).error();
    bp->store = std::shared_ptr<checkpoint_store>{std::move(*store)};
    bp->writer = std::make_shared<checkpoint_writer>();
    auto point = find_restore_point(*bp->store, opts.checkpoints, plan, skipped);
    if (!point)
      return std::move(point).error();
    from->meta = std::move(*point);
    if (opts.checkpoints.restore_from) {
      // A new history starts at the restored checkpoint: the newer ones must never be
      // restored by a later restart (Spark users delete the later offsets for this).
      auto gone = bp->store->discard_after(*opts.checkpoints.restore_from);
      if (!gone)
        return std::move(gone).error();
      for (auto id : *gone)
        logging::get().warn("job '{}': restored from checkpoint {}: deleted the newer "
                            "checkpoint {}",
                            opts.query_name, *opts.checkpoints.restore_from, id);
      // Newer savepoints stay; epochs number after them so that none is overwritten.
      auto high = bp->store->highest_id();
      if (!high)
        return std::move(high).error();
      if (*high > *opts.checkpoints.restore_from)
        from->first_epoch = *high + 1;
    }
  }
  auto threads = opts.threads > 0
                   ? opts.threads
                   : std::max(2, static_cast<int>(std::thread::hardware_concurrency()));
  return std::unique_ptr<job_execution>{std::make_unique<execution>(
    std::move(bp), threads, opts.scheduler, std::move(from), std::move(skipped))};
}

} // namespace sluice
