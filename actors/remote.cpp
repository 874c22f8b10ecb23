#include "sluice/actors/remote.hpp"

#include "sluice/actors/coordinator.hpp"
#include "sluice/actors/messages.hpp"
#include "sluice/actors/progress_builder.hpp"
#include "sluice/actors/remote_control.hpp"
#include "sluice/actors/task_restore.hpp"
#include "sluice/actors/task.hpp"
#include "sluice/actors/tsan.hpp"

#include "sluice/core/log.hpp"
#include "sluice/graph/fingerprint.hpp"
#include "sluice/net/cluster.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <map>
#include <optional>
#include <set>

namespace sluice {

void cluster_context::wake() {
  if (drain_pending.exchange(true))
    return;
  std::lock_guard guard{mtx};
  if (bridge)
    caf::anon_send(*bridge, msg::drain::value);
  else
    drain_pending.store(false); // the bridge drains once when it starts
}

result<std::shared_ptr<cluster_context>> start_cluster(const blueprint& bp, placement where) {
  const auto& c = bp.options.cluster;
  if (auto ok = c.validate(); !ok)
    return std::move(ok).error();
  auto ctx = std::make_shared<cluster_context>();
  ctx->node = c.node;
  ctx->where = std::move(where);
  net::link_options o;
  o.node = static_cast<std::uint32_t>(c.node);
  o.nodes = c.nodes;
  // The graph and plan's fingerprint, and the node count: the same binary and flags on
  // every node give the same placement.
  o.fingerprint = fingerprint_of(bp.logical, bp.plan).hash_text() + "/" +
                  std::to_string(c.nodes.size()) + " nodes";
  o.cluster_digest = net::cluster_digest(c.nodes);
  o.heartbeat_interval = c.heartbeat_interval;
  o.heartbeat_timeout = c.heartbeat_timeout;
  if (!c.key_file.empty()) {
    auto key = net::read_key_file(c.key_file);
    if (!key)
      return std::move(key).error();
    o.cluster_key = std::move(*key);
  }
  std::weak_ptr<cluster_context> weak = ctx;
  o.on_event = [weak] {
    if (auto ctx = weak.lock())
      ctx->wake();
  };
  auto link = net::link::start(std::move(o));
  if (!link)
    return std::move(link).error();
  ctx->link = std::shared_ptr<net::link>(std::move(*link));
  logging::get().log(ctx->link->authenticated() ? spdlog::level::info : spdlog::level::warn,
                     "cluster: node {} of {} listening on {}; {}", c.node, c.nodes.size(),
                     ctx->link->endpoint(), ctx->link->security());
  return ctx;
}

namespace {

using control_kind = control_message::kind;

/// Control message `m` of attempt `attempt` to `node`.
result<void> send_control(cluster_context& c, std::int64_t attempt, int node,
                          const control_message& m) {
  net::frame f;
  f.attempt = std::max<std::int64_t>(attempt, 0);
  f.channel = m.task < 0 ? net::control_channel : static_cast<std::uint32_t>(m.task);
  f.body = net::control_body{encode_control(m)};
  return c.link->send(static_cast<std::uint32_t>(node), f);
}

// -- stand-ins ------------------------------------------------------------------------------

/// Takes the messages of task `task_`, which runs on another node, and sends them there.
class task_stand_in final : public tsan_visible_actor {
public:
  task_stand_in(caf::actor_config& cfg, std::shared_ptr<const blueprint> bp,
                std::shared_ptr<cluster_context> c, int task, std::int64_t attempt,
                caf::actor coordinator)
    : tsan_visible_actor(cfg), bp_(std::move(bp)), c_(std::move(c)), task_(task), attempt_(attempt),
      node_(c_->where.node_of_task[static_cast<std::size_t>(task)]),
      coordinator_(std::move(coordinator)) {}

  caf::behavior make_behavior() override {
    return {
      [this](msg::data, int channel, const batch_ptr& records) {
        const auto g = c_->where.channel(task_, channel);
        const auto* codec = c_->where.codec_of_channel[g];
        std::vector<std::byte> bytes;
        net::encode_data_frame(attempt_, g, bytes,
                               [&](std::vector<std::byte>& out) { codec->encode(*records, out); });
        check(c_->link->send_encoded(static_cast<std::uint32_t>(node_), std::move(bytes)));
      },
      [this](msg::eoi, int channel) { item(channel, net::end_body{}); },
      [this](msg::wm, int channel, std::int64_t us) {
        item(channel, net::watermark_body{event_time{duration{us}}});
      },
      [this](msg::idle, int channel, bool idle) {
        if (idle)
          item(channel, net::idle_body{});
        else
          item(channel, net::active_body{});
      },
      [this](msg::barrier, int channel, std::int64_t epoch, bool checkpoint) {
        item(channel, net::barrier_body{epoch, checkpoint});
      },
      [this](msg::credit, int output, int target, int n) {
        // A task of this node grants credit on its input from this task's output.
        const auto& t = bp_->tasks[static_cast<std::size_t>(task_)]
                          .outputs[static_cast<std::size_t>(output)]
                          .targets[static_cast<std::size_t>(target)];
        net::frame f{attempt_, c_->where.channel(t.to_task, t.receiver_channel),
                     net::credit_body{n}};
        check(c_->link->send(static_cast<std::uint32_t>(node_), f));
      },
      [this](msg::wire, const std::vector<caf::actor>&) { control({control_kind::wire}); },
      [this](msg::start) { control({control_kind::start}); },
      [this](msg::cancel) { control({control_kind::cancel}); },
      [this](msg::commit, std::int64_t id) {
        control_message m{control_kind::commit};
        m.epoch = id;
        control(std::move(m));
      },
      [this](msg::prepare, std::int64_t epoch, bool unlimited, std::int32_t step,
             const std::string& end) {
        control_message m{control_kind::prepare};
        m.epoch = epoch;
        m.flag = unlimited;
        m.step = step;
        m.text = end;
        control(std::move(m));
      },
      [this](msg::run, std::int64_t epoch, std::int64_t wm_us) {
        control_message m{control_kind::run};
        m.epoch = epoch;
        m.watermark_us = wm_us;
        control(std::move(m));
      },
      [this](msg::inject, std::int64_t epoch, bool checkpoint) {
        control_message m{control_kind::inject};
        m.epoch = epoch;
        m.flag = checkpoint;
        control(std::move(m));
      },
    };
  }

  void on_exit() override { coordinator_ = nullptr; }

private:
  template <class Body>
  void item(int channel, Body body) {
    net::frame f{attempt_, c_->where.channel(task_, channel), std::move(body)};
    check(c_->link->send(static_cast<std::uint32_t>(node_), f));
  }

  void control(control_message m) {
    m.task = task_;
    check(send_control(*c_, attempt_, node_, m));
  }

  /// A frame that cannot leave (the peer's queue is full: it stopped reading) fails the
  /// task it stands in for, once.
  void check(result<void> ok) {
    if (ok || failed_)
      return;
    failed_ = true;
    send(coordinator_, msg::failed::value, task_, static_cast<int>(ok.error().code),
         "task " + std::to_string(task_) + " on node " + std::to_string(node_) + ": " +
           ok.error().message);
  }

  std::shared_ptr<const blueprint> bp_;
  std::shared_ptr<cluster_context> c_;
  int task_;
  std::int64_t attempt_;
  int node_;
  caf::actor coordinator_;
  bool failed_ = false;
};

// -- the bridge --------------------------------------------------------------------------

/// What every node's bridge does with the link's events: channel items and credits go to
/// the local tasks; control messages and lost or refused peers go to `on_control` and
/// `on_peer_failed`.
class bridge_base : public tsan_visible_actor {
public:
  bridge_base(caf::actor_config& cfg, std::shared_ptr<const blueprint> bp,
              std::shared_ptr<cluster_context> c)
    : tsan_visible_actor(cfg), bp_(std::move(bp)), c_(std::move(c)) {
    for (std::size_t t = 0; t < bp_->tasks.size(); ++t)
      for (std::size_t i = 0; i < bp_->tasks[t].inputs.size(); ++i)
        owner_.emplace_back(static_cast<int>(t), static_cast<int>(i));
  }

protected:
  /// Registers this actor with the link and drains what arrived before.
  void attach() {
    {
      std::lock_guard guard{c_->mtx};
      c_->bridge = std::make_shared<caf::actor>(caf::actor_cast<caf::actor>(this));
    }
    c_->drain_pending.store(true);
    send(this, msg::drain::value);
  }

  void detach() {
    std::lock_guard guard{c_->mtx};
    c_->bridge.reset();
  }

  /// The link's events, at most a bounded number per message so that the bridge's mailbox
  /// (the coordinator's messages) is served in between.
  void on_drain() {
    c_->drain_pending.store(false);
    for (int k = 0; k < 512; ++k) {
      auto ev = c_->link->try_receive();
      if (!ev)
        return;
      on_event(std::move(*ev));
    }
    if (!c_->drain_pending.exchange(true))
      send(this, msg::drain::value);
  }

  /// The tasks of the current attempt (stand-ins for those on other nodes): frames that
  /// arrived before are delivered now.
  void wired(std::vector<caf::actor> tasks) {
    tasks_ = std::move(tasks);
    wired_ = true;
    auto held = std::exchange(held_, {});
    for (auto& ev : held)
      on_event(std::move(ev));
  }

  /// A new attempt is starting: its tasks' frames wait until `wired`.
  void unwire() {
    wired_ = false;
    tasks_.clear();
  }

  virtual void on_control(int peer, control_message m) = 0;
  virtual void on_peer_failed(int peer, error e) = 0;
  /// `peer` completed a handshake: it joined, or came back after a loss or a restart.
  virtual void on_peer_up(int peer) { logging::get().info("cluster: {} joined", peer_name(peer)); }

  std::string peer_name(int peer) const { return c_->link->peer_name(static_cast<std::uint32_t>(peer)); }

  std::shared_ptr<const blueprint> bp_;
  std::shared_ptr<cluster_context> c_;
  std::vector<caf::actor> tasks_;

private:
  void on_event(net::link_event ev) {
    using k = net::link_event::kind;
    const auto peer = static_cast<int>(ev.peer);
    switch (ev.what) {
      case k::peer_up:
        on_peer_up(peer);
        return;
      case k::peer_refused:
      case k::peer_lost:
      case k::peer_error:
        if (ev.peer == net::unknown_peer) {
          logging::get().warn("cluster: {}", ev.error.message);
          return;
        }
        on_peer_failed(peer, std::move(ev.error));
        return;
      case k::frame: break;
    }
    // Node-wide control messages (a new attempt, a completed checkpoint, the job's end)
    // are taken at once; a task's frames only for the attempt its tasks run.
    const bool node_wide = ev.frame.channel == net::control_channel &&
                           std::holds_alternative<net::control_body>(ev.frame.body);
    if (ev.frame.attempt < c_->attempt.load()) {
      ++stale_; // of an attempt that failed: its tasks are gone
      return;
    }
    if (!node_wide && (!wired_ || ev.frame.attempt > c_->attempt.load())) {
      held_.push_back(std::move(ev));
      return;
    }
    if (auto ok = on_frame(peer, std::move(ev.frame)); !ok)
      on_peer_failed(peer, std::move(ok).error());
  }

  result<void> on_frame(int peer, net::frame f) {
    if (auto* ctl = std::get_if<net::control_body>(&f.body)) {
      auto m = decode_control(ctl->text);
      if (!m)
        return std::move(m).error();
      on_control(peer, std::move(*m));
      return {};
    }
    if (f.channel >= owner_.size())
      return bad(peer, fmt::format("channel {} does not exist ({} channels)", f.channel,
                                   owner_.size()));
    const auto [task, input] = owner_[f.channel];
    const auto& in = bp_->tasks[static_cast<std::size_t>(task)].inputs[static_cast<std::size_t>(input)];
    const bool credit = std::holds_alternative<net::credit_body>(f.body);
    // Items travel from the sender's node to the receiver's; credits the other way.
    const int from = credit ? task : in.from_task;
    const int to = credit ? in.from_task : task;
    if (node_of(from) != peer || node_of(to) != c_->node)
      return bad(peer, fmt::format("channel {} does not run from {} to this node", f.channel,
                                   peer_name(peer)));
    const auto& dest = tasks_[static_cast<std::size_t>(to)];
    return std::visit(
      [&](auto& body) -> result<void> {
        using B = std::decay_t<decltype(body)>;
        if constexpr (std::is_same_v<B, net::data_body>) {
          auto records = c_->where.codec_of_channel[f.channel]->decode(body.payload);
          if (!records)
            return std::move(records).error();
          send(dest, msg::data::value, input, std::move(*records));
        } else if constexpr (std::is_same_v<B, net::watermark_body>) {
          send(dest, msg::wm::value, input, body.watermark.time_since_epoch().count());
        } else if constexpr (std::is_same_v<B, net::idle_body>) {
          send(dest, msg::idle::value, input, true);
        } else if constexpr (std::is_same_v<B, net::active_body>) {
          send(dest, msg::idle::value, input, false);
        } else if constexpr (std::is_same_v<B, net::barrier_body>) {
          send(dest, msg::barrier::value, input, body.epoch, body.checkpoint);
        } else if constexpr (std::is_same_v<B, net::end_body>) {
          send(dest, msg::eoi::value, input);
        } else if constexpr (std::is_same_v<B, net::credit_body>) {
          send<caf::message_priority::high>(dest, msg::credit::value, in.sender_output,
                                            in.sender_target, body.credits);
        } else {
          return bad(peer, fmt::format("a {} frame on channel {}", to_string(f.kind()), f.channel));
        }
        return {};
      },
      f.body);
  }

  int node_of(int task) const { return c_->where.node_of_task[static_cast<std::size_t>(task)]; }

  error bad(int peer, std::string what) {
    return make_error(error_code::malformed_frame, peer_name(peer) + " sent a frame that does not "
                                                                     "fit the plan: " + std::move(what));
  }

  std::vector<std::pair<int, int>> owner_; ///< per global channel: task, input
  bool wired_ = false;
  std::vector<net::link_event> held_;
  std::uint64_t stale_ = 0;
};

/// Node 0's bridge: remote tasks' messages go to the coordinator as from their stand-ins.
class coordinator_bridge final : public bridge_base {
public:
  coordinator_bridge(caf::actor_config& cfg, std::shared_ptr<const blueprint> bp,
                     std::shared_ptr<cluster_context> c, caf::actor coordinator)
    : bridge_base(cfg, std::move(bp), std::move(c)), coordinator_(std::move(coordinator)),
      up_(static_cast<std::size_t>(c_->where.nodes), false),
      lost_(static_cast<std::size_t>(c_->where.nodes), false) {}

  caf::behavior make_behavior() override {
    attach();
    if (c_->where.nodes == 1) { // a cluster of one: nobody to wait for
      all_joined_ = true;
      send(coordinator_, msg::joined::value, 0, std::string{});
    }
    delayed_send(this, bp_->options.cluster.join_timeout, msg::join_check::value,
                 std::int64_t{-1});
    return {
      [this](msg::drain) { on_drain(); },
      [this](msg::wire, const std::vector<caf::actor>& all) {
        wired(all);
        delayed_send(this, bp_->options.cluster.join_timeout, msg::join_check::value,
                     c_->attempt.load());
      },
      [this](msg::join_check, std::int64_t attempt) {
        if (attempt < 0) { // the first start
          if (!all_joined_)
            send(coordinator_, msg::joined::value, static_cast<int>(error_code::node_lost),
                 missing_nodes());
          return;
        }
        if (attempt != c_->attempt.load())
          return;
        for (int n = 1; n < c_->where.nodes; ++n)
          if (!c_->link->is_up(static_cast<std::uint32_t>(n)))
            on_peer_failed(n, make_error(error_code::node_lost,
                                         fmt::format("{} did not join within {} ms (join timeout)",
                                                     peer_name(n),
                                                     bp_->options.cluster.join_timeout.count())));
      },
      [this](msg::job_end, const std::string& failure) {
        logging::get().debug("cluster: the job ended{}{}", failure.empty() ? "" : ": ", failure);
        control_message m{control_kind::job_ended};
        m.task = -1;
        m.text = failure;
        for (int n = 1; n < c_->where.nodes; ++n)
          if (auto ok = send_to_node(*c_, n, m); !ok)
            logging::get().warn("cluster: cannot tell {} that the job ended: {}", peer_name(n),
                                ok.error().message);
        detach();
        quit();
      },
    };
  }

  void on_exit() override {
    detach();
    coordinator_ = nullptr;
    tasks_.clear();
  }

private:
  void on_control(int peer, control_message m) override {
    if (m.what == control_kind::cancel && m.task < 0) {
      logging::get().info("cluster: {} cancels the job", peer_name(peer));
      send(coordinator_, msg::cancel::value);
      return;
    }
    if (m.task < 0 || static_cast<std::size_t>(m.task) >= tasks_.size() ||
        c_->where.node_of_task[static_cast<std::size_t>(m.task)] != peer) {
      on_peer_failed(peer, make_error(error_code::malformed_frame,
                                      fmt::format("{} sent '{}' for task {}, which it does not "
                                                  "run",
                                                  peer_name(peer), to_string(m.what), m.task)));
      return;
    }
    const auto& from = tasks_[static_cast<std::size_t>(m.task)];
    switch (m.what) {
      case control_kind::done: caf::send_as(from, coordinator_, msg::done::value, m.task); break;
      case control_kind::failed:
        caf::send_as(from, coordinator_, msg::failed::value, m.task, m.code, std::move(m.text));
        break;
      case control_kind::ack:
        if (m.report) {
          if (auto ok = keep_source_positions(*m.report, m.pieces); !ok)
            m.report->checkpoint_problem = fmt::format("node {}: {}", peer, ok.error().message);
          caf::send_as(from, coordinator_, msg::ack::value,
                       epoch_report_ptr{std::make_shared<const epoch_report>(std::move(*m.report))});
        }
        break;
      case control_kind::finishing:
        caf::send_as(from, coordinator_, msg::finishing::value, m.task, m.epoch);
        break;
      case control_kind::prepared:
        caf::send_as(from, coordinator_, msg::prepared::value, m.task, m.epoch, m.flag,
                     std::move(m.text));
        break;
      case control_kind::final_position:
        caf::send_as(from, coordinator_, msg::final_position::value, m.task, std::move(m.text),
                     std::move(m.bytes));
        break;
      default:
        on_peer_failed(peer, make_error(error_code::malformed_frame,
                                        fmt::format("{} sent '{}', which only node 0 sends",
                                                    peer_name(peer), to_string(m.what))));
    }
  }

  /// Source positions go to node 0's store: a source may restore every old instance's
  /// position, whatever node ran it, so node 0 keeps them all and hands them to every node
  /// at each attempt's start. The report then names node 0 as their holder.
  result<void> keep_source_positions(epoch_report& r,
                                     const std::vector<control_message::shipped_piece>& pieces) {
    if (pieces.empty() || !bp_->store)
      return {};
    for (const auto& shipped : pieces) {
      auto put = bp_->store->put(shipped.stored_in, shipped.name, shipped.bytes);
      if (!put)
        return std::move(put).error();
      for (auto& p : r.pieces)
        if (p.name == shipped.name)
          p = *put;
    }
    return {};
  }

  /// A node that comes back after a loss takes part in the next attempt (the attempt's
  /// start waits for it in the link); one that says hello again without having been lost
  /// restarted unnoticed: its tasks of this attempt are gone.
  void on_peer_up(int peer) override {
    const auto p = static_cast<std::size_t>(peer);
    const bool restarted = up_[p] && !lost_[p];
    up_[p] = true;
    lost_[p] = false;
    logging::get().info("cluster: {} {}", peer_name(peer), restarted ? "restarted" : "joined");
    if (!all_joined_ && std::count(up_.begin() + 1, up_.end(), true) == c_->where.nodes - 1) {
      all_joined_ = true;
      logging::get().info("cluster: all {} nodes joined", c_->where.nodes);
      send(coordinator_, msg::joined::value, 0, std::string{});
    }
    if (restarted)
      on_peer_failed(peer, make_error(error_code::node_lost,
                                      peer_name(peer) + " restarted: its tasks are gone"));
  }

  /// A lost, refused or misbehaving node fails the attempt: its tasks' work is gone. The
  /// coordinator restarts every node from the last checkpoint when its strategy allows.
  void on_peer_failed(int peer, error e) override {
    if (e.code == error_code::node_lost)
      lost_[static_cast<std::size_t>(peer)] = true;
    if (!all_joined_) { // refused or lost before the job started: it cannot start
      all_joined_ = true;
      send(coordinator_, msg::joined::value, static_cast<int>(e.code), e.message);
      return;
    }
    for (std::size_t t = 0; t < tasks_.size(); ++t)
      if (c_->where.node_of_task[t] == peer) {
        caf::send_as(tasks_[t], coordinator_, msg::failed::value, static_cast<int>(t),
                     static_cast<int>(e.code), e.message);
        return;
      }
    // A node without tasks: the job goes on without it.
    logging::get().warn("cluster: {}", e.message);
  }

  /// "node 1 (...) did not join within 60000 ms (join timeout)", for each node missing.
  std::string missing_nodes() const {
    std::string out;
    for (int n = 1; n < c_->where.nodes; ++n)
      if (!up_[static_cast<std::size_t>(n)])
        out += (out.empty() ? "" : "; ") +
               fmt::format("{} did not join within {} ms (join timeout)", peer_name(n),
                           bp_->options.cluster.join_timeout.count());
    return out;
  }

  caf::actor coordinator_;
  bool all_joined_ = false;
  std::vector<bool> up_;   ///< per node: it was up at some point
  std::vector<bool> lost_; ///< per node: lost since it was last up
};

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
    attach();
    delayed_send(this, bp_->options.cluster.join_timeout, msg::join_check::value,
                 std::int64_t{-1});
    return {
      [this](msg::drain) { on_drain(); },
      [this](msg::join_check, std::int64_t) {
        if (c_->attempt.load() < 0)
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
        if (m.text.empty())
          end(std::nullopt);
        else
          end(make_error(error_code::internal, "the job failed (node 0 says): " + m.text));
        return;
      case control_kind::attempt: begin_attempt(std::move(m)); return;
      case control_kind::completed: complete_checkpoint(m.epoch); return;
      default: break;
    }
    if (m.task < 0 || static_cast<std::size_t>(m.task) >= tasks_.size() ||
        c_->where.node_of_task[static_cast<std::size_t>(m.task)] != c_->node) {
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
      case control_kind::commit: send(to, msg::commit::value, m.epoch); break;
      case control_kind::prepare:
        send(to, msg::prepare::value, m.epoch, m.flag, m.step, std::move(m.text));
        break;
      case control_kind::run: send(to, msg::run::value, m.epoch, m.watermark_us); break;
      case control_kind::inject: send(to, msg::inject::value, m.epoch, m.flag); break;
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
    if (from->meta)
      keep_pieces_of_this_node(*from->meta, c_->node);
    pieces_.clear();
    finished_.clear();
    std::vector<caf::actor> all;
    const auto self = caf::actor_cast<caf::actor>(this);
    for (std::size_t t = 0; t < bp_->tasks.size(); ++t) {
      const int task = static_cast<int>(t);
      if (c_->where.node_of_task[t] == c_->node) {
        auto a = spawn_task(this, bp_, task, static_cast<int>(m.epoch), self, from);
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
      if (c_->where.node_of_task[t] == c_->node)
        send(all[t], msg::wire::value, all);
    wired(std::move(all));
  }

  /// Node 0 completed checkpoint `id`: so does this node's store (its pieces of it, as
  /// the tasks reported them), which applies retention.
  void complete_checkpoint(std::int64_t id) {
    if (!bp_->store)
      return;
    checkpoint_meta meta;
    meta.id = id;
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
    }
  }

  void on_peer_failed(int peer, error e) override {
    if (peer == 0) // without node 0 there is no job: the supervisor restarts this node
      return end(std::move(e));
    // Another node misbehaves: node 0 decides (it restarts or fails the job).
    control_message m{control_kind::failed};
    m.code = static_cast<int>(e.code);
    m.text = e.message;
    if (const int t = first_local_task(); t >= 0 && c_->attempt.load() >= 0)
      to_coordinator(std::move(m), t);
  }

  int first_local_task() const {
    for (std::size_t t = 0; t < c_->where.node_of_task.size(); ++t)
      if (c_->where.node_of_task[t] == c_->node)
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
};

} // namespace

void keep_pieces_of_this_node(checkpoint_meta& meta, int node) {
  std::erase_if(meta.pieces, [&](const checkpoint_piece& p) {
    return p.node != node && !is_source_piece(p.name);
  });
}

result<void> send_to_node(cluster_context& c, int node, const control_message& m) {
  return send_control(c, c.attempt.load(), node, m);
}

caf::actor spawn_task_stand_in(caf::local_actor* parent, std::shared_ptr<const blueprint> bp,
                               std::shared_ptr<cluster_context> cluster, int task,
                               std::int64_t attempt, caf::actor coordinator) {
  return parent->spawn<task_stand_in>(std::move(bp), std::move(cluster), task, attempt,
                                      std::move(coordinator));
}

caf::actor spawn_coordinator_bridge(caf::actor_system& sys, std::shared_ptr<const blueprint> bp,
                                    std::shared_ptr<cluster_context> cluster,
                                    caf::actor coordinator) {
  return sys.spawn<coordinator_bridge>(std::move(bp), std::move(cluster), std::move(coordinator));
}

caf::actor spawn_node_agent(caf::actor_system& sys, std::shared_ptr<const blueprint> bp,
                            std::shared_ptr<cluster_context> cluster,
                            std::shared_ptr<job_state> state) {
  return sys.spawn<node_agent>(std::move(bp), std::move(cluster), std::move(state));
}

} // namespace sluice
