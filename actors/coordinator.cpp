#include "sluice/actors/coordinator.hpp"

#include "sluice/actors/checkpoint_coordinator.hpp"
#include "sluice/actors/epoch_planner.hpp"
#include "sluice/actors/messages.hpp"
#include "sluice/actors/progress_builder.hpp"
#include "sluice/actors/remote.hpp"
#include "sluice/actors/remote_control.hpp"
#include "sluice/actors/replan.hpp"
#include "sluice/actors/restore.hpp"
#include "sluice/actors/task_restore.hpp"
#include "sluice/actors/task.hpp"
#include "sluice/actors/trigger_plans.hpp"
#include "sluice/actors/tsan.hpp"
#include "sluice/actors/watermark_alignment.hpp"

#include "sluice/core/log.hpp"
#include "sluice/graph/fingerprint.hpp"

#include <algorithm>
#include <map>
#include <set>

namespace sluice {

namespace {

/// Owns the job's lifecycle: spawns and wires the tasks, carries out the epoch planner's
/// decisions (triggers, barriers), completes checkpoints and publishes progress, waits for
/// the tasks to finish, turns the first failure into a restart or the job's outcome.
class coordinator_actor final : public tsan_visible_actor, public epoch_driver {
public:
  coordinator_actor(caf::actor_config& cfg, std::shared_ptr<const blueprint> bp,
                    std::shared_ptr<job_state> state, std::shared_ptr<const restore_point> from,
                    std::vector<std::string> skipped, std::shared_ptr<cluster_context> cluster)
    : tsan_visible_actor(cfg), bp_(std::move(bp)), state_(std::move(state)),
      cluster_(std::move(cluster)),
      clock_(bp_->options.processing_clock), skipped_(std::move(skipped)),
      planner_(bp_->options.epochs, bp_->tasks.size(), count_sources(*bp_),
               bp_->options.has_event_time_state, *this),
      checkpoints_(bp_->store, bp_->options.checkpoints, bp_->options.query_name,
                   bp_->plan.max_key_groups),
      progress_(*bp_, clock_, bp_->options.epochs.micro_batch()), plans_(make_plans(*bp_)),
      alignment_(alignment_groups::members_of(*bp_)) {
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
    set_down_handler([this](caf::down_msg& m) { on_task_stopped(m.source); });
    // A multi-node run starts once every node has joined: one job on all of them, never a
    // part of it alone (the bridge says when, or that the join timeout passed).
    if (cluster_)
      bridge_ = spawn_coordinator_bridge(system(), bp_, cluster_, caf::actor_cast<caf::actor>(this));
    else
      start_tasks(std::exchange(first_from_, nullptr));
    {
      std::lock_guard guard{state_->mtx};
      state_->id = ids_.query;
      state_->run_id = ids_.run;
    }
    const bool micro_batch = planner_.micro_batch();
    status(micro_batch ? "Initializing sources" : "Processing continuously", false, !micro_batch);
    const query_listener::started_event started{ids_.query, ids_.run, bp_->options.query_name,
                                                wall_now()};
    for (auto& l : bp_->options.listeners)
      l->on_started(started);
    logging::get().log(skipped_.empty() ? spdlog::level::info : spdlog::level::warn,
                       "job '{}' started: {} tasks, trigger {}{}", bp_->options.query_name,
                       bp_->tasks.size(), planner_.when().describe(),
                       describe_restore(restored_from_, skipped_));
    return {
      [this](msg::done, int task) {
        if (!from_current(task))
          return;
        planner_.task_done(clock_->now(), static_cast<std::size_t>(task));
        if (completed_)
          return;
        if (++done_ == tasks_.size()) {
          planner_.complete_all(clock_->now());
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
      [this](msg::restart) {
        restart_due_ = true;
        if (stopping_.empty())
          restart_now();
      },
      [this](msg::stop_wait, int attempt) { on_stop_timeout(attempt); },
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
        if (!planner_.micro_batch()) {
          if (!checkpoints_.in_flight())
            planner_.inject_now(clock_->now(), true);
        } else {
          planner_.trigger_now(clock_->now());
        }
        return rp;
      },
      [this](msg::node_gone, int node, std::string& why) {
        if (completed_)
          return;
        // A node cut off but running still holds its store: leaving it out would make two
        // nodes run its tasks. Wait for it instead, and look again later.
        if (auto free = can_take_over(node, bp_->options.checkpoints.dir, stores()); !free) {
          logging::get().warn("job '{}': {}, and it cannot be left out: {}; waiting for it",
                              bp_->options.query_name, why, free.error().message);
          delayed_send(bridge_, *bp_->options.cluster.rejoin_timeout, msg::rejoin::value, node, -1);
          return;
        }
        logging::get().warn("job '{}': {}: going on without it", bp_->options.query_name, why);
        gone_.insert(node);
        on_task_failed(make_error(error_code::node_lost, std::move(why)));
      },
      [this](msg::joined, int code, const std::string& failure) {
        if (completed_ || !first_from_)
          return;
        if (const auto after = ended_before_this_run()) {
          logging::get().warn("job '{}' had ended (after checkpoint {}) before node 0 was "
                              "restarted: this run ends too, and tells the other nodes{}{}",
                              bp_->options.query_name, *after, failure.empty() ? "" : "; ",
                              failure);
          return complete(std::nullopt);
        }
        if (!failure.empty())
          return complete(make_error(static_cast<error_code>(code), failure));
        start_tasks(std::exchange(first_from_, nullptr));
      },
      [this](msg::cancel) {
        cancelled_ = true;
        if (restarting_ || first_from_) { // no tasks to stop: the job ends here, cancelled
          complete(std::nullopt);
          return;
        }
        planner_.cancel();
      },
      [this](msg::ack, const epoch_report_ptr& report) {
        if (!report || !from_current(report->task) || completed_)
          return;
        if (!planner_.acknowledged(clock_->now(), report))
          complete(make_error(error_code::internal,
                              "task " + std::to_string(report->task) + " acknowledged epoch " +
                                std::to_string(report->epoch) +
                                ", which is not open (barriers numbered wrongly)"));
      },
      [this](msg::finishing, int task, std::int64_t last_epoch) {
        if (from_current(task) && !completed_)
          planner_.final_barrier(clock_->now(), last_epoch, checkpoints_.enabled());
      },
      [this](msg::prepared, int task, std::int64_t epoch, bool available, std::string& end) {
        if (!from_current(task))
          return;
        if (epoch == planner_.next_epoch())
          plans_.planned(source_slot(task), std::move(end));
        planner_.prepared(clock_->now(), epoch, available);
      },
      [this](msg::tick) { on_tick(); },
      [this](msg::wm_report, int task, std::int32_t state, std::int64_t us) {
        if (!from_current(task) || completed_ || !valid_alignment_state(state))
          return;
        for (const auto& a : alignment_.report(task, static_cast<alignment_state>(state),
                                               event_time{duration{us}}))
          send(tasks_[static_cast<std::size_t>(a.task)], msg::wm_allow::value,
               static_cast<std::int64_t>(a.max_watermark.time_since_epoch().count()));
      },
    };
  }

  void on_exit() override { tasks_.clear(); }

  // -- epoch_driver: what the planner decided ---------------------------------------------

  void prepare(std::int64_t epoch, bool unlimited) override {
    auto steps = plans_.begin(epoch);
    if (!steps) {
      complete(std::move(steps).error());
      return;
    }
    if (plans_.replaying())
      logging::get().warn("job '{}': micro-batch {} ran before without completing; it reads "
                          "exactly the same input again (offset log)",
                          bp_->options.query_name, epoch);
    // One time for every instance, as Spark's driver plans a batch once.
    const auto wall = clock_->wall_time(clock_->now()).time_since_epoch().count();
    for (std::size_t s = 0; s < sources_.size(); ++s)
      send(tasks_[static_cast<std::size_t>(sources_[s])], msg::prepare::value, epoch, unlimited,
           static_cast<std::int32_t>((*steps)[s].what), (*steps)[s].end, std::int64_t{wall});
  }

  void run(std::int64_t epoch, event_time watermark) override {
    // The batch's plan is durable before any source reads it (Spark's offset log).
    if (auto logged = plans_.log(); !logged) {
      complete(std::move(logged).error());
      return;
    }
    const std::int64_t us = watermark.time_since_epoch().count();
    for (int i : sources_)
      send(tasks_[static_cast<std::size_t>(i)], msg::run::value, epoch, us);
  }

  void inject(std::int64_t epoch, bool checkpoint) override {
    if (checkpoint)
      checkpoints_.begin(epoch, clock_->now());
    for (int i : sources_)
      send(tasks_[static_cast<std::size_t>(i)], msg::inject::value, epoch, checkpoint);
  }

  void stop_sources() override {
    for (int i : sources_)
      send(tasks_[static_cast<std::size_t>(i)], msg::cancel::value);
  }

  void schedule_tick(sluice::clock::time_point at) override {
    tick_at_ = at;
    wake_at(at);
  }

  /// A delayed tick at `at`, or sooner when a checkpoint is due sooner. A tick already on
  /// its way that comes no later does: ticks re-check the time, so one more costs nothing.
  void wake_at(sluice::clock::time_point at) {
    if (!planner_.micro_batch() && checkpoints_.between_epochs())
      if (auto checkpoint = checkpoints_.next_due(); checkpoint && *checkpoint < at)
        at = *checkpoint;
    const auto now = clock_->now();
    // The clock may be injected (it moves in jumps): real waits are capped, then re-checked.
    const auto wait = std::clamp<std::chrono::nanoseconds>(at - now, std::chrono::nanoseconds{0},
                                                           std::chrono::milliseconds{100});
    if (wake_scheduled_ && *wake_scheduled_ <= now + wait)
      return;
    wake_scheduled_ = now + wait;
    delayed_send(this, wait, msg::tick::value);
  }

  void status(std::string message, bool data_available, bool trigger_active) override {
    std::lock_guard guard{state_->mtx};
    state_->status = query_status{std::move(message), data_available, trigger_active};
  }

  void idle() override {
    const query_listener::idle_event idle{ids_.query, ids_.run, wall_now()};
    for (auto& l : bp_->options.listeners)
      l->on_idle(idle);
  }

  bool epoch_complete(std::int64_t id, const open_epoch& e) override {
    std::map<std::string, std::string> properties;
    if (checkpoints_.enabled()) {
      planner_.save(properties);
      properties["query_id"] = ids_.query;
      if (cluster_) { // its pieces lie in that many nodes' stores
        const auto where = cluster_->where();
        properties["cluster_nodes"] = std::to_string(where->nodes);
        record_placement(*where, properties);
      }
    }
    auto out = checkpoints_.epoch_ended(id, e, final_positions_, std::move(properties),
                                        !savepoint_waiters_.empty(), clock_->now());
    if (out.fatal) {
      complete(std::move(*out.fatal));
      return false;
    }
    if (out.failed && !checkpoint_failed(*out.failed))
      return false;
    if (out.completed || out.failed) {
      if (tick_at_) // the next checkpoint may be due before the next epoch boundary
        wake_at(*tick_at_);
    }
    if (out.completed) {
      checkpoint_completed(*out.completed);
      if (auto purged = plans_.completed(id); !purged)
        logging::get().warn("job '{}': {}", bp_->options.query_name, purged.error().message);
    }
    offer(progress_.epoch_progress(id, e, ids_));
    return true;
  }

private:
  /// The source tasks in task order, for the offset log; with checkpoints in micro-batch
  /// mode, the log lives beside the checkpoints.
  static trigger_plans make_plans(const blueprint& bp) {
    std::optional<offset_log> log;
    if (bp.store && bp.options.epochs.micro_batch())
      log.emplace(bp.options.checkpoints.dir);
    std::vector<trigger_plans::source_task> sources;
    for (auto& t : bp.tasks) {
      const auto& chain = bp.plan.chains[static_cast<std::size_t>(t.chain)];
      if (chain.is_source)
        sources.push_back({bp.logical.node(chain.nodes.front()).name, t.instance, chain.parallelism});
    }
    return trigger_plans{std::move(log), std::move(sources)};
  }

  /// The place of source task `task` among the source tasks.
  std::size_t source_slot(int task) const {
    return static_cast<std::size_t>(std::find(sources_.begin(), sources_.end(), task) -
                                    sources_.begin());
  }

  static std::size_t count_sources(const blueprint& bp) {
    std::size_t n = 0;
    for (auto& t : bp.tasks)
      n += bp.plan.chains[static_cast<std::size_t>(t.chain)].is_source ? 1 : 0;
    return n;
  }

  // -- the tasks of one run ---------------------------------------------------------------

  /// Spawns, wires and starts every task, restoring checkpoint `from` (or none).
  void start_tasks(std::shared_ptr<const restore_point> from) {
    // One start time for the whole job (source_context::job_start): read at the first
    // attempt, kept for the later ones, handed to every node with each attempt.
    if (!job_start_)
      job_start_ = clock_->wall_time(clock_->now());
    if (from->job_start != job_start_) {
      auto stamped = std::make_shared<restore_point>(*from);
      stamped->job_start = job_start_;
      from = std::move(stamped);
    }
    const auto n = bp_->tasks.size();
    tasks_.clear();
    ++attempt_;
    if (cluster_)
      cluster_->attempt.store(attempt_);
    std::vector<control_message::shipped_piece> adopted;
    if (cluster_ && !replan(from, adopted))
      return;
    const auto where = cluster_ ? cluster_->where() : nullptr;
    auto local_from = from;
    if (cluster_ && from->meta) { // node 0's tasks read node 0's pieces
      auto own = std::make_shared<restore_point>(*from);
      keep_pieces_of_this_node(*own->meta, 0);
      local_from = std::move(own);
    }
    for (std::size_t i = 0; i < n; ++i) {
      const bool remote = where && where->remote(static_cast<int>(i), 0);
      auto t = remote ? spawn_task_stand_in(this, bp_, cluster_, static_cast<int>(i), attempt_, this)
                      : spawn_task(this, bp_, static_cast<int>(i), attempt_, this, local_from, where);
      link_to(t); // if the coordinator is killed, the tasks go with it
      monitor(t); // a restart waits until every task of the failed attempt has stopped
      running_.insert(t.address());
      tasks_.push_back(std::move(t));
    }
    final_positions_.clear();
    done_ = 0;
    checkpoints_.restart(clock_->now());
    alignment_.restart();
    if (cluster_)
      start_attempt_on_every_node(*from, std::move(adopted));
    if (from->meta)
      if (auto it = from->meta->properties.find("query_id"); it != from->meta->properties.end())
        ids_.query = it->second;
    if (bridge_)
      send(bridge_, msg::wire::value, tasks_);
    for (auto& t : tasks_)
      send(t, msg::wire::value, tasks_);
    // The first epoch's interval counts from before any task starts: whoever sees a task
    // at work knows the tick's time is already fixed (tests that move a manual clock rely
    // on it).
    const auto started = clock_->now();
    for (std::size_t i = 0; i < n; ++i) {
      if (bp_->options.sync_point)
        bp_->options.sync_point("start", static_cast<std::int64_t>(i));
      send(tasks_[i], msg::start::value);
    }
    planner_.start(started, from->meta ? &*from->meta : nullptr, from->first_epoch);
  }

  /// Multi-node runs: tells every other node, before any of this attempt's messages to its
  /// tasks, which checkpoint the attempt starts from (remote.hpp), with node 0's source
  /// positions its tasks may need. Sent from here, not through a stand-in, so that it
  /// leads the attempt's frames to each node.
  void start_attempt_on_every_node(const restore_point& from,
                                   std::vector<control_message::shipped_piece> adopted) {
    control_message m{control_message::kind::attempt};
    m.task = -1;
    m.epoch = attempt_;
    m.flag = from.requested;
    m.first_epoch = from.first_epoch;
    m.meta = from.meta;
    m.nodes = cluster_->where()->live;
    m.task_nodes = cluster_->where()->node_of_task;
    m.pieces = std::move(adopted);
    if (from.job_start)
      m.job_start_us = from.job_start->time_since_epoch().count();
    if (from.meta)
      for (const auto& p : from.meta->pieces)
        if (p.node == 0 && is_source_piece(p.name)) {
          auto bytes = bp_->store->get(*from.meta, p.name);
          if (!bytes) {
            complete(std::move(bytes).error());
            return;
          }
          m.pieces.push_back({p.name, p.stored_in >= 0 ? p.stored_in : from.meta->id,
                              std::move(*bytes)});
        }
    tell_every_node(std::move(m));
  }

  /// Re-planning (replan.hpp): when a node was given up (`node_gone`), the attempt runs on
  /// the nodes left, and node 0 takes over the pieces of `from` the missing nodes held
  /// (into `adopted`, for every node; `from` then lists them as node 0's). False when the
  /// job cannot go on (it completed with the error).
  bool replan(std::shared_ptr<const restore_point>& from,
              std::vector<control_message::shipped_piece>& adopted) {
    const auto now = cluster_->where();
    // A node given up that came back meanwhile (or runs on behind a partition) holds its
    // store: it stays in the job.
    std::erase_if(gone_, [&](int n) {
      auto free = can_take_over(n, bp_->options.checkpoints.dir, stores());
      if (!free)
        logging::get().warn("job '{}': node {} is not left out after all: {}",
                            bp_->options.query_name, n, free.error().message);
      return !free;
    });
    if (!gone_.empty()) {
      std::vector<int> live;
      for (int n : now->live)
        if (!gone_.count(n))
          live.push_back(n);
      auto where = leave_out(bp_->logical, bp_->plan, bp_->tasks, *now, live);
      if (!where) {
        complete(std::move(where).error());
        return false;
      }
      logging::get().warn("job '{}': re-planned onto nodes {} (of {}): {}", bp_->options.query_name,
                          describe_nodes(live), now->nodes,
                          from->meta ? "restoring checkpoint " + std::to_string(from->meta->id)
                                     : std::string{"from the start (no checkpoint yet)"});
      // Kept at once, not only in the next checkpoint: node 0 restarting before that
      // checkpoint must not go back to the nodes left out.
      if (auto kept = write_placement_file(bp_->options.checkpoints.dir, *where); !kept)
        logging::get().warn("job '{}': {}", bp_->options.query_name, kept.error().message);
      cluster_->set_where(std::move(*where));
      gone_.clear();
    }
    const auto where = cluster_->where();
    if (!from->meta || where->live.size() == static_cast<std::size_t>(where->nodes))
      return true;
    auto changed = std::make_shared<restore_point>(*from);
    // Restoring the same checkpoint again (a failure before the next one completed): the
    // copies are in node 0's store already, and the missing node's store may be held by
    // now (its supervisor started it again before it heard it was left out).
    if (adopted_ && adopted_->checkpoint == changed->meta->id && adopted_->live == where->live) {
      changed->meta->pieces = adopted_->pieces;
      adopted = adopted_->shipped;
      from = std::move(changed);
      return true;
    }
    auto taken = adopt_pieces(*bp_->store, *changed->meta, where->live, bp_->options.checkpoints.dir,
                              stores());
    if (!taken) {
      complete(std::move(taken).error());
      return false;
    }
    adopted = std::move(*taken);
    adopted_ = adoption{changed->meta->id, where->live, changed->meta->pieces, adopted};
    from = std::move(changed);
    return true;
  }

  /// How stores are opened (re-planning opens a missing node's).
  checkpoint_store_options stores() const {
    return store_options(fingerprint_of(bp_->logical, bp_->plan), bp_->options, 0);
  }

  void tell_every_node(const control_message& m) {
    for (int n : cluster_->where()->live)
      if (n == 0)
        continue;
      else if (auto ok = send_to_node(*cluster_, n, m); !ok) {
        complete(std::move(ok).error());
        return;
      }
  }

  /// Messages of tasks killed by a restart may still be queued: only the current run's
  /// tasks count.
  bool from_current(int task) {
    return task >= 0 && static_cast<std::size_t>(task) < tasks_.size() &&
           caf::actor_cast<caf::actor_addr>(current_sender()) ==
             tasks_[static_cast<std::size_t>(task)].address();
  }

  /// A failure restarts the job from its latest complete checkpoint when the restart
  /// strategy allows; else it fails the job with this cause.
  void on_task_failed(error err) {
    const auto& rs = bp_->options.checkpoints.restart;
    if (completed_ || restarting_)
      return;
    if (!bp_->store || !restart_can_help(err.code) || rs.how == restart_strategy::kind::none ||
        restarts_ >= rs.max_restarts || cancelled_) {
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
    status("Restarting after a failure: " + err.message, false, false);
    logging::get().warn("job '{}': {}; restart {} of {}", bp_->options.query_name, err.message,
                        restarts_ + 1, rs.max_restarts);
    last_failure_ = err;
    restarting_ = true;
    restart_due_ = false;
    // The next attempt starts only once every task of this one has stopped: a task still
    // running beside its replacement would write the same checkpoint pieces and output files.
    for (std::size_t i = 0; i < tasks_.size(); ++i) {
      auto& t = tasks_[i];
      unlink_from(t);
      if (running_.count(t.address()))
        stopping_.emplace(t.address(), task_name(i));
      send_exit(t, caf::exit_reason::kill);
    }
    tasks_.clear();
    const auto delay = rs.delay_before(restarts_);
    restart_delays_.push_back(delay);
    ++restarts_;
    delayed_send(this, delay, msg::restart::value);
    delayed_send(this, rs.stop_timeout, msg::stop_wait::value, attempt_);
  }

  /// A task stopped. During a restart, the last task of the failed attempt to stop lets
  /// the next attempt start (once the restart delay has passed).
  void on_task_stopped(const caf::actor_addr& who) {
    running_.erase(who);
    if (stopping_.erase(who) == 0 || !stopping_.empty())
      return;
    if (restarting_ && restart_due_)
      restart_now();
  }

  /// The failed attempt `attempt` had `stop_timeout` to stop.
  void on_stop_timeout(int attempt) {
    if (attempt != attempt_ || !restarting_ || stopping_.empty() || completed_)
      return;
    std::string names;
    for (auto& [addr, name] : stopping_)
      names += (names.empty() ? "" : ", ") + name;
    complete(make_error(
      error_code::internal,
      "cannot restart after a failure: " + std::to_string(stopping_.size()) + " task(s) of attempt " +
        std::to_string(attempt) + " did not stop within " +
        std::to_string(bp_->options.checkpoints.restart.stop_timeout.count()) + " ms (" + names +
        "): blocked in a user function or a connector. The cause: " +
        (last_failure_ ? last_failure_->message : std::string{"unknown"})));
  }

  std::string task_name(std::size_t i) const {
    const auto& w = bp_->tasks[i];
    const auto& chain = bp_->plan.chains[static_cast<std::size_t>(w.chain)];
    return "'" + chain.name + "' (instance " + std::to_string(w.instance + 1) + " of " +
           std::to_string(chain.parallelism) + ")";
  }

  void restart_now() {
    restarting_ = false;
    restart_due_ = false;
    if (completed_)
      return;
    std::vector<std::string> skipped;
    auto latest = bp_->store->latest(skipped);
    if (!latest) {
      complete(std::move(latest).error());
      return;
    }
    // The same unusable checkpoint is found again at every restart: reported once.
    for (auto& s : skipped)
      if (std::find(skipped_.begin(), skipped_.end(), s) == skipped_.end())
        skipped_.push_back(s);
    if (!skipped.empty())
      logging::get().warn("job '{}' restarting{}", bp_->options.query_name,
                          describe_restore(*latest ? std::optional{(*latest)->id} : std::nullopt,
                                           skipped));
    auto from = std::make_shared<restore_point>();
    from->meta = std::move(*latest);
    {
      std::lock_guard guard{state_->mtx};
      state_->phase = "running";
    }
    const bool micro_batch = planner_.micro_batch();
    status(micro_batch ? "Waiting for next trigger" : "Processing continuously", false,
           !micro_batch);
    start_tasks(std::move(from));
  }

  // -- triggers ---------------------------------------------------------------------------

  void on_tick() {
    wake_scheduled_.reset();
    // While a restart waits for its delay there are no tasks; start_tasks schedules anew.
    if (completed_ || restarting_ || planner_.current() == epoch_planner::phase::stopping ||
        !tick_at_)
      return;
    const auto now = clock_->now();
    if (!planner_.micro_batch()) {
      if (auto expired = checkpoints_.expire(now); expired && !checkpoint_failed(*expired))
        return;
      // A checkpoint due before the next epoch boundary does not wait for it: it starts an
      // epoch of its own now (the epochs' own schedule goes on).
      if (now < *tick_at_ && checkpoints_.between_epochs() && checkpoints_.due(now))
        planner_.inject_now(now, true);
    }
    if (now < *tick_at_) {
      wake_at(*tick_at_);
      return;
    }
    tick_at_.reset();
    planner_.tick(now, checkpoints_.due(now));
  }

  // -- checkpoints ------------------------------------------------------------------------

  /// Counts a failed checkpoint; fails the job (and returns false) when more failed in a
  /// row than tolerated.
  bool checkpoint_failed(const checkpoint_failure& f) {
    {
      std::lock_guard guard{state_->mtx};
      ++state_->checkpoint_failures;
      state_->last_failure = "checkpoint " + std::to_string(f.id) + ": " + f.why;
    }
    logging::get().warn("job '{}': checkpoint {} failed: {}", bp_->options.query_name, f.id,
                        f.why);
    if (auto fatal = checkpoints_.count_failure(f)) {
      complete(std::move(*fatal));
      return false;
    }
    return true;
  }

  /// The metadata of checkpoint `st.id` is durable: savepoints are answered, the next
  /// progress report names it, and only now may sinks commit.
  void checkpoint_completed(const checkpoint_stats& st) {
    if (!savepoint_waiters_.empty()) {
      for (auto& rp : savepoint_waiters_)
        rp.deliver(st.id);
      savepoint_waiters_.clear();
      if (std::exchange(stop_at_savepoint_, false)) {
        cancelled_ = true;
        planner_.cancel();
      }
    }
    progress_.checkpoint_completed(checkpoint_progress{
      st.id, std::chrono::duration_cast<std::chrono::milliseconds>(st.duration).count(),
      static_cast<std::uint64_t>(st.bytes)});
    {
      std::lock_guard guard{state_->mtx};
      state_->checkpoints.push_back(st);
      if (state_->checkpoints.size() > 100)
        state_->checkpoints.pop_front();
      state_->checkpoints_completed = checkpoints_.completed();
    }
    logging::get().debug("job '{}': checkpoint {} complete: {} bytes in {} us",
                         bp_->options.query_name, st.id, st.bytes, st.duration.count());
    if (bp_->options.sync_point)
      bp_->options.sync_point("completed", st.id);
    if (cluster_) { // the nodes complete their stores before their tasks commit
      control_message m{control_message::kind::completed};
      m.task = -1;
      m.epoch = st.id;
      m.flag = st.savepoint;
      tell_every_node(m);
    }
    for (std::size_t t = 0; t < tasks_.size(); ++t)
      if (!planner_.finished(t))
        send(tasks_[t], msg::commit::value, st.id);
  }

  // -- progress reports and listeners -----------------------------------------------------

  static std::string wall_now() {
    return iso_millis(std::chrono::time_point_cast<duration>(std::chrono::system_clock::now()));
  }

  void offer(std::optional<query_progress> p, bool flush = false) {
    auto ready = progress_.offer(std::move(p), flush);
    if (!ready)
      return;
    if (ready->interval)
      status("Processing continuously", ready->report.num_input_rows > 0, true);
    const bool went_idle = ready->report.num_input_rows == 0 && !planner_.micro_batch();
    publish(std::move(ready->report));
    if (went_idle)
      idle();
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
    const std::string failure = err ? err->message : std::string{};
    if (!err)
      offer(std::nullopt, true); // the last interval's report
    for (auto& rp : savepoint_waiters_) // the job ended before a checkpoint completed
      rp.deliver(caf::make_error(caf::sec::request_receiver_down));
    savepoint_waiters_.clear();
    for (std::size_t i = 0; i < tasks_.size(); ++i) // stand-ins never stop by themselves
      if (err || (cluster_ && cluster_->where()->remote(static_cast<int>(i), 0)))
        send_exit(tasks_[i], caf::exit_reason::kill);
    for (auto& t : tasks_)
      unlink_from(t);
    tasks_.clear();
    status("Stopped", false, false);
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
        r.checkpoints_completed = checkpoints_.completed();
        r.checkpoints = checkpoints_.history();
        r.restarts = restarts_;
        r.restart_delays = restart_delays_;
        state_->outcome.emplace(std::move(r));
      }
    }
    state_->cv.notify_all();
    if (bridge_) { // the other nodes end their part of the run
      if (!err && attempt_ >= 0)
        record_job_end();
      send(bridge_, msg::job_end::value, failure);
    }
    quit();
  }

  // -- the end of a multi-node job, kept across a restart of node 0 ----------------------
  //
  // The other nodes leave once node 0 tells them the job ended. Node 0 killed after that
  // but before its process exits is restarted by its supervisor and would wait for nodes
  // that never come back (and fail, and be restarted, ...). So its store records the end
  // before the others hear of it, until the process exits (runtime.cpp). Node 0 restarted
  // with the record, restoring the checkpoint it names, runs nothing: it tells the nodes
  // that join (those that had not heard) and ends as the job did once all have or the
  // join timeout passed.

  void record_job_end() {
    if (!bp_->store)
      return;
    if (auto ok = bp_->store->record_job_end(); !ok)
      logging::get().warn("job '{}': {}: node 0 restarted before its process exits would wait "
                          "for the other nodes, which leave now",
                          bp_->options.query_name, ok.error().message);
  }

  /// The checkpoint after which the job ended, when node 0 restarted after that.
  std::optional<std::int64_t> ended_before_this_run() {
    if (!bp_->store)
      return std::nullopt;
    auto ended = bp_->store->job_end();
    if (!ended) {
      logging::get().warn("job '{}': {}", bp_->options.query_name, ended.error().message);
      return std::nullopt;
    }
    if (*ended && **ended == restored_from_.value_or(-1))
      return **ended;
    return std::nullopt;
  }

  std::shared_ptr<const blueprint> bp_;
  std::shared_ptr<job_state> state_;
  std::shared_ptr<cluster_context> cluster_; ///< null in a one-process run
  caf::actor bridge_;                        ///< node 0's bridge to the link, with `cluster_`
  std::shared_ptr<const sluice::clock> clock_;
  std::vector<std::string> skipped_; ///< checkpoints that could not be restored, and why
  epoch_planner planner_;
  checkpoint_coordinator checkpoints_;
  progress_builder progress_;
  trigger_plans plans_;
  alignment_groups alignment_; ///< the aligned source tasks' reports (watermark alignment)
  query_ids ids_ = query_ids::fresh();
  std::vector<caf::actor> tasks_;
  std::vector<int> sources_;
  final_positions final_positions_;
  std::size_t done_ = 0;
  bool cancelled_ = false;
  /// Nodes given up (`node_gone`): the next attempt re-plans the job without them.
  std::set<int> gone_;
  /// The pieces node 0 took over for a checkpoint restored after a re-plan, to restore it
  /// again without reading the missing node's store (held in memory until then).
  struct adoption {
    std::int64_t checkpoint = -1;
    std::vector<int> live;
    std::vector<checkpoint_piece> pieces; ///< the checkpoint's, relabelled
    std::vector<control_message::shipped_piece> shipped;
  };
  std::optional<adoption> adopted_;

  bool completed_ = false;
  std::optional<sluice::clock::time_point> tick_at_;
  /// When the earliest delayed tick on its way arrives (none on its way: unset).
  std::optional<sluice::clock::time_point> wake_scheduled_;
  // Restarts and savepoints.
  std::shared_ptr<const restore_point> first_from_;
  std::optional<event_time> job_start_; ///< fixed at the first attempt (start_tasks)
  std::optional<std::int64_t> restored_from_;
  int restarts_ = 0;
  std::vector<std::chrono::milliseconds> restart_delays_;
  bool restarting_ = false;
  bool restart_due_ = false; ///< the restart delay has passed
  int attempt_ = -1;         ///< the current attempt: 0 for the first run
  /// Tasks that have not stopped yet (of any attempt), and those of a failed attempt that a
  /// restart waits for, with their names.
  std::set<caf::actor_addr> running_;
  std::map<caf::actor_addr, std::string> stopping_;
  std::optional<error> last_failure_;
  std::vector<caf::response_promise> savepoint_waiters_;
  bool stop_at_savepoint_ = false;
};

} // namespace

caf::actor spawn_coordinator(caf::actor_system& sys, std::shared_ptr<const blueprint> bp,
                             std::shared_ptr<job_state> state,
                             std::shared_ptr<const restore_point> from,
                             std::vector<std::string> skipped,
                             std::shared_ptr<cluster_context> cluster) {
  return sys.spawn<coordinator_actor>(std::move(bp), std::move(state), std::move(from),
                                      std::move(skipped), std::move(cluster));
}

} // namespace sluice
