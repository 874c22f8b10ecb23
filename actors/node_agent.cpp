// The agent of a node other than 0: runs the node's tasks for node 0 (remote.hpp,
// docs/cluster.md).
#include "sluice/actors/bridge.hpp"
#include "sluice/actors/coordinator.hpp"
#include "sluice/actors/progress_builder.hpp"
#include "sluice/actors/task_restore.hpp"
#include "sluice/actors/task.hpp"

#include "sluice/core/log.hpp"
#include "sluice/net/cluster.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <map>
#include <optional>
#include <set>

namespace sluice {

namespace {

using control_kind = control_message::kind;


/// A node other than 0: runs its tasks for node 0's coordinator, which it stands in for.
class node_agent final : public bridge_base {
public:
  node_agent(caf::actor_config& cfg, std::shared_ptr<const blueprint> bp,
             std::shared_ptr<cluster_context> c, std::shared_ptr<job_state> state)
    : bridge_base(cfg, std::move(bp), std::move(c)), state_(std::move(state)) {}

  caf::behavior make_behavior() override {
    set_down_handler([this](caf::down_msg& m) { on_task_down(m); });
    set_exit_handler([this](caf::exit_msg& m) {
      if (m.reason)
        end(make_error(error_code::internal, "a task stopped unexpectedly on node " +
                                               std::to_string(c_->node) + ": " +
                                               to_string(m.reason)));
    });
    c_->attempt.store(-1); // until node 0 starts one
    if (bp_->store) {
      auto ended = bp_->store->job_end();
      if (!ended)
        logging::get().warn("cluster: node {}: {}", c_->node, ended.error().message);
      job_ended_ = ended && ended->has_value();
    }
    attach();
    delayed_send(this, bp_->options.cluster.join_timeout, msg::join_check::value,
                 std::int64_t{-1});
    return {
      [this](msg::drain) { on_drain(); },
      [this](msg::join_check, std::int64_t) {
        if (c_->attempt.load() >= 0)
          return;
        if (job_ended_) { // before this node's restart: node 0 told it so and has left
          logging::get().warn("cluster: node {}: the job had ended before this node was "
                              "restarted, and {} did not start it again within {} ms; this "
                              "run ends too",
                              c_->node, peer_name(0), bp_->options.cluster.join_timeout.count());
          return end(std::nullopt);
        }
        end(make_error(error_code::node_lost,
                         fmt::format("{} did not start this node's tasks within {} ms (join "
                                     "timeout)",
                                     peer_name(0), bp_->options.cluster.join_timeout.count())));
      },
      // What a task sends its coordinator goes to node 0, from the current attempt only.
      [this](msg::done, int task) {
        if (!current(task))
          return;
        finished_.insert(task);
        to_coordinator({control_kind::done}, task);
      },
      [this](msg::failed, int task, int code, std::string& text) {
        control_message m{control_kind::failed};
        m.code = code;
        m.text = std::move(text);
        if (current(task) || task_of_stand_in(task))
          to_coordinator(std::move(m), task);
      },
      [this](msg::ack, const epoch_report_ptr& report) {
        if (!current(report->task))
          return;
        if (report->checkpoint && report->checkpoint_problem.empty()) {
          auto& pieces = pieces_[report->epoch];
          pieces.insert(pieces.end(), report->pieces.begin(), report->pieces.end());
        }
        control_message m{control_kind::ack};
        m.report = *report;
        if (auto ok = ship_source_positions(*report, m.pieces); !ok)
          m.report->checkpoint_problem = fmt::format("node {}: {}", c_->node, ok.error().message);
        to_coordinator(std::move(m), report->task);
      },
      [this](msg::finishing, int task, std::int64_t last_epoch) {
        control_message m{control_kind::finishing};
        m.epoch = last_epoch;
        if (current(task))
          to_coordinator(std::move(m), task);
      },
      [this](msg::prepared, int task, std::int64_t epoch, bool available, std::string& end) {
        control_message m{control_kind::prepared};
        m.epoch = epoch;
        m.flag = available;
        m.text = std::move(end);
        if (current(task))
          to_coordinator(std::move(m), task);
      },
      [this](msg::final_position, int task, std::string& piece, std::string& bytes) {
        control_message m{control_kind::final_position};
        m.text = std::move(piece);
        m.bytes = std::move(bytes);
        if (current(task))
          to_coordinator(std::move(m), task);
      },
      [this](msg::wm_report, int task, std::int32_t state, std::int64_t us) {
        control_message m{control_kind::wm_report};
        m.code = state;
        m.watermark_us = us;
        if (current(task))
          to_coordinator(std::move(m), task);
      },
      [this](msg::cancel) { // this node's user stops the job: node 0 stops every node
        if (c_->attempt.load() < 0 || !c_->link->is_up(0))
          return end(std::nullopt); // no job here to stop, or no node 0 to ask
        control_message m{control_kind::cancel};
        to_coordinator(std::move(m), -1);
      },
    };
  }

  void on_exit() override {
    detach();
    tasks_.clear();
    next_.reset();
  }

  /// Node 0 saying hello again restarted: this node's attempt belongs to a coordinator that
  /// is gone, so the node ends (its supervisor starts it anew, to join the new one).
  void on_peer_up(int peer) override {
    bridge_base::on_peer_up(peer);
    if (peer != 0)
      return;
    if (seen_node_0_)
      end(make_error(error_code::node_lost, peer_name(0) + " restarted: this node's run ends "
                                                           "so that it joins the new one"));
    seen_node_0_ = true;
  }

private:
  /// The sender is task `task` of the running attempt (a killed attempt's task may still
  /// have messages on their way).
  bool current(int task) {
    return task >= 0 && static_cast<std::size_t>(task) < tasks_.size() &&
           caf::actor_cast<caf::actor_addr>(current_sender()) ==
             tasks_[static_cast<std::size_t>(task)].address();
  }

  /// The source positions a task just wrote, whole, for node 0 to keep (see the coordinator
  /// bridge's `keep_source_positions`).
  result<void> ship_source_positions(const epoch_report& r,
                                     std::vector<control_message::shipped_piece>& out) {
    if (!r.checkpoint || !bp_->store)
      return {};
    for (const auto& p : r.pieces) {
      if (!is_source_piece(p.name) || p.node != c_->node)
        continue;
      checkpoint_meta one;
      one.id = p.stored_in >= 0 ? p.stored_in : r.epoch;
      one.pieces = {p};
      auto bytes = bp_->store->get(one, p.name);
      if (!bytes)
        return std::move(bytes).error();
      out.push_back({p.name, one.id, std::move(*bytes)});
    }
    return {};
  }

  /// A stand-in of this attempt reports that it cannot send.
  bool task_of_stand_in(int task) { return current(task); }

  void to_coordinator(control_message m, int task) {
    m.task = task;
    if (auto ok = send_to_node(*c_, 0, m); !ok)
      end(std::move(ok).error());
  }

  void on_control(int peer, control_message m) override {
    logging::get().debug("cluster: node {} takes '{}' for task {}", c_->node, to_string(m.what),
                         m.task);
    if (peer != 0) {
      on_peer_failed(peer, make_error(error_code::malformed_frame,
                                      fmt::format("{} sent '{}'; only node 0 coordinates",
                                                  peer_name(peer), to_string(m.what))));
      return;
    }
    switch (m.what) {
      case control_kind::job_ended:
        if (m.text.empty()) {
          // Kept, so that this node, restarted before its process exits, does not wait for
          // node 0, which leaves too (see the coordinator's `record_job_end`).
          if (bp_->store && c_->attempt.load() >= 0)
            if (auto ok = bp_->store->record_job_end(); !ok)
              logging::get().warn("cluster: node {}: {}", c_->node, ok.error().message);
          end(std::nullopt);
        } else
          end(make_error(error_code::internal, "the job failed (node 0 says): " + m.text));
        return;
      case control_kind::attempt: begin_attempt(std::move(m)); return;
      case control_kind::completed: complete_checkpoint(m.epoch, m.flag); return;
      case control_kind::removed:
        end(make_error(error_code::node_lost, fmt::format("node {}: {}", c_->node, m.text)));
        return;
      default: break;
    }
    if (m.task < 0 || static_cast<std::size_t>(m.task) >= tasks_.size() ||
        where_->node_of_task[static_cast<std::size_t>(m.task)] != c_->node) {
      on_peer_failed(peer, make_error(error_code::malformed_frame,
                                      fmt::format("{} sent '{}' for task {}, which this node "
                                                  "does not run",
                                                  peer_name(peer), to_string(m.what), m.task)));
      return;
    }
    const auto& to = tasks_[static_cast<std::size_t>(m.task)];
    switch (m.what) {
      case control_kind::wire: break; // wired when spawned
      case control_kind::start: send(to, msg::start::value); break;
      case control_kind::cancel: send(to, msg::cancel::value); break;
      case control_kind::commit:
        // Which attempt's commits a node carried out: the partition test's evidence that a
        // node cut off never commits for an attempt node 0 has replaced.
        logging::get().debug("cluster: node {} attempt {}: task {} commits checkpoint {}",
                             c_->node, c_->attempt.load(), m.task, m.epoch);
        send(to, msg::commit::value, m.epoch);
        break;
      case control_kind::prepare:
        send(to, msg::prepare::value, m.epoch, m.flag, m.step, std::move(m.text), m.wall_us);
        break;
      case control_kind::run: send(to, msg::run::value, m.epoch, m.watermark_us); break;
      case control_kind::inject: send(to, msg::inject::value, m.epoch, m.flag); break;
      case control_kind::wm_allow: send(to, msg::wm_allow::value, m.watermark_us); break;
      default:
        on_peer_failed(peer, make_error(error_code::malformed_frame,
                                        fmt::format("{} sent '{}', which only tasks send",
                                                    peer_name(peer), to_string(m.what))));
    }
  }

  // -- attempts ----------------------------------------------------------------------------

  /// Node 0 starts attempt `m.epoch`: the running one's tasks stop first (no two attempts
  /// write the same pieces or output), then the new ones start from the checkpoint it names.
  void begin_attempt(control_message m) {
    if (m.epoch <= c_->attempt.load())
      return; // an older attempt's start, queued while this node was away
    logging::get().info("cluster: node {} starts attempt {}{}", c_->node, m.epoch,
                        m.meta ? ", from checkpoint " + std::to_string(m.meta->id) : "");
    c_->attempt.store(m.epoch); // frames of the old attempt are dropped from now on
    if (job_ended_) { // a new run of the job: it ends on its own
      job_ended_ = false;
      if (auto ok = bp_->store->clear_job_end(); !ok)
        logging::get().warn("cluster: node {}: {}", c_->node, ok.error().message);
    }
    unwire();
    next_ = std::move(m);
    for (auto& t : spawned_) {
      unlink_from(t);
      send_exit(t, caf::exit_reason::kill);
    }
    spawned_.clear();
    if (local_.empty())
      spawn_attempt();
  }

  void spawn_attempt() {
    auto m = std::move(*next_);
    next_.reset();
    // The nodes node 0 runs this attempt on (fewer than all after a re-plan): every node
    // places the tasks alike.
    if (m.nodes != c_->where()->live || m.task_nodes != c_->where()->node_of_task) {
      if (!std::binary_search(m.nodes.begin(), m.nodes.end(), c_->node))
        return end(make_error(error_code::node_lost,
                              fmt::format("node {}: node 0 runs the job on nodes {} without "
                                          "this node",
                                          c_->node, describe_nodes(m.nodes))));
      auto where = place_as(bp_->logical, bp_->plan, bp_->tasks, c_->where()->nodes,
                            std::move(m.nodes), std::move(m.task_nodes));
      if (!where)
        return end(make_error(where.error().code,
                              fmt::format("node {}: cannot place attempt {} as node 0 says: {}",
                                          c_->node, m.epoch, where.error().message)));
      logging::get().warn("cluster: node {} runs attempt {} on nodes {}", c_->node, m.epoch,
                          describe_nodes(where->live));
      c_->set_where(std::move(*where));
    }
    const auto where = c_->where();
    auto from = std::make_shared<restore_point>();
    from->meta = std::move(m.meta);
    from->requested = m.flag;
    from->first_epoch = m.first_epoch;
    if (m.job_start_us)
      from->job_start = event_time{duration{*m.job_start_us}};
    const auto full = from->meta; // what the store completes, before the tasks' view
    if (bp_->store) {
      // Node 0 completed the checkpoint; this node may not have heard before it stopped: its
      // store completes it now (its own pieces, written before it acknowledged), else the
      // line below would take them for an unfinished checkpoint's leftovers.
      if (full && !bp_->store->find(full->id)) {
        auto own = *full;
        own.savepoint = false; // its pieces are this node's own: nothing to copy
        std::erase_if(own.pieces, [&](const checkpoint_piece& p) { return p.node != c_->node; });
        if (auto ok = bp_->store->complete(own); !ok)
          return end(std::move(ok).error());
      }
      // A new history starts at the restored checkpoint (or from scratch): pieces of later,
      // unfinished checkpoints go; node 0's source positions come in, under their own ids.
      if (auto gone = bp_->store->discard_after(from->meta ? from->meta->id : -1); !gone)
        return end(std::move(gone).error());
      for (auto& p : m.pieces)
        if (auto put = bp_->store->put(p.stored_in, p.name, p.bytes); !put)
          return end(std::move(put).error());
    }
    if (from->meta) {
      take_shipped_pieces(*from->meta, c_->node, m.pieces);
      keep_pieces_of_this_node(*from->meta, c_->node);
    }
    pieces_.clear();
    finished_.clear();
    std::vector<caf::actor> all;
    const auto self = caf::actor_cast<caf::actor>(this);
    for (std::size_t t = 0; t < bp_->tasks.size(); ++t) {
      const int task = static_cast<int>(t);
      if (where->node_of_task[t] == c_->node) {
        auto a = spawn_task(this, bp_, task, static_cast<int>(m.epoch), self, from, where);
        link_to(a);
        monitor(a);
        local_.insert(a.address());
        all.push_back(a);
      } else {
        all.push_back(spawn_task_stand_in(this, bp_, c_, task, m.epoch, self));
      }
      spawned_.push_back(all.back());
    }
    // Every handle exists before any of the attempt's frames is taken, so the node's tasks
    // are wired before input from any other node reaches them.
    for (std::size_t t = 0; t < all.size(); ++t)
      if (where->node_of_task[t] == c_->node)
        send(all[t], msg::wire::value, all);
    wired(std::move(all));
  }

  /// Node 0 completed checkpoint `id`: so does this node's store (its pieces of it, as
  /// the tasks reported them), which applies retention. A savepoint's pieces are kept (and
  /// those it shares with earlier checkpoints copied), as node 0's.
  void complete_checkpoint(std::int64_t id, bool savepoint) {
    if (!bp_->store)
      return;
    checkpoint_meta meta;
    meta.id = id;
    meta.savepoint = savepoint;
    meta.job = bp_->options.query_name;
    meta.max_key_groups = bp_->plan.max_key_groups;
    meta.created = "node " + std::to_string(c_->node);
    if (auto it = pieces_.find(id); it != pieces_.end())
      meta.pieces = std::move(it->second);
    pieces_.erase(pieces_.begin(), pieces_.upper_bound(id));
    if (auto ok = bp_->store->complete(meta); !ok) {
      control_message f{control_kind::failed};
      f.code = static_cast<int>(ok.error().code);
      f.text = fmt::format("node {}: {}", c_->node, ok.error().message);
      to_coordinator(std::move(f), first_local_task());
      return;
    }
    // This node's "completed": its store has the checkpoint, its tasks have not committed.
    if (bp_->options.sync_point)
      bp_->options.sync_point("completed", id);
  }

  void on_peer_failed(int peer, error e) override {
    if (peer == 0) // without node 0 there is no job: the supervisor restarts this node
      return end(std::move(e));
    if (!c_->where()->runs_on(peer))
      return; // left out of the job by a re-plan
    // Another node misbehaves: node 0 decides (it restarts or fails the job).
    control_message m{control_kind::failed};
    m.code = static_cast<int>(e.code);
    m.text = e.message;
    if (const int t = first_local_task(); t >= 0 && c_->attempt.load() >= 0)
      to_coordinator(std::move(m), t);
  }

  int first_local_task() const {
    for (std::size_t t = 0; t < where_->node_of_task.size(); ++t)
      if (where_->node_of_task[t] == c_->node)
        return static_cast<int>(t);
    return -1;
  }

  void on_task_down(const caf::down_msg& m) {
    local_.erase(m.source);
    if (ended_)
      return;
    if (next_ && local_.empty()) { // the old attempt has stopped
      spawn_attempt();
      return;
    }
    // A task of the running attempt that stops without saying it is done has failed.
    for (std::size_t t = 0; t < tasks_.size(); ++t)
      if (tasks_[t].address() == m.source && !finished_.count(static_cast<int>(t))) {
        control_message f{control_kind::failed};
        f.code = static_cast<int>(error_code::internal);
        f.text = fmt::format("task {} stopped on node {}: {}", t, c_->node, to_string(m.reason));
        to_coordinator(std::move(f), static_cast<int>(t));
      }
  }

  /// The node's run is over: publish its outcome, stop its tasks.
  void end(std::optional<error> err) {
    if (ended_)
      return;
    ended_ = true;
    for (auto& t : spawned_) { // done tasks have stopped; stand-ins never stop by themselves
      unlink_from(t);
      send_exit(t, caf::exit_reason::kill);
    }
    {
      std::lock_guard guard{state_->mtx};
      state_->phase = err ? "failed" : "finished";
      if (err) {
        state_->failure = *err;
        state_->last_failure = err->message;
        state_->outcome.emplace(std::move(*err));
      } else {
        job_result r;
        r.elapsed = std::chrono::steady_clock::now() - state_->started;
        r.tasks = collect_stats(*bp_);
        state_->outcome.emplace(std::move(r));
      }
    }
    state_->cv.notify_all();
    detach();
    quit();
  }

  std::shared_ptr<job_state> state_;
  std::vector<caf::actor> spawned_;       ///< this attempt's tasks and stand-ins
  std::set<caf::actor_addr> local_;       ///< local tasks (of any attempt) not stopped yet
  std::optional<control_message> next_;   ///< an attempt waiting for the old one to stop
  std::map<std::int64_t, std::vector<checkpoint_piece>> pieces_; ///< per checkpoint, reported
  std::set<int> finished_;
  bool seen_node_0_ = false;
  bool ended_ = false;
  /// This node's store says the job ended before this run (node 0 said so): node 0 will
  /// not come back for it unless the whole job is started again.
  bool job_ended_ = false;
};


} // namespace

caf::actor spawn_node_agent(caf::actor_system& sys, std::shared_ptr<const blueprint> bp,
                            std::shared_ptr<cluster_context> cluster,
                            std::shared_ptr<job_state> state) {
  return sys.spawn<node_agent>(std::move(bp), std::move(cluster), std::move(state));
}

} // namespace sluice
