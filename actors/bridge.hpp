#pragma once
/// The part every node's bridge shares (remote.hpp): delivering what the link receives to
/// the local tasks, holding frames of an attempt not wired yet, dropping older attempts'
/// frames. Node 0's bridge (coordinator_bridge.cpp) and the other nodes' agent
/// (node_agent.cpp) derive from it. Includes CAF; private to actors/.
#include "sluice/actors/blueprint.hpp"
#include "sluice/actors/messages.hpp"
#include "sluice/actors/remote.hpp"
#include "sluice/actors/remote_control.hpp"
#include "sluice/actors/tsan.hpp"

#include "sluice/core/log.hpp"

#include <fmt/format.h>

#include <caf/all.hpp>

#include <memory>
#include <utility>
#include <vector>

namespace sluice {

/// What every node's bridge does with the link's events: channel items and credits go to
/// the local tasks; control messages and lost or refused peers go to `on_control` and
/// `on_peer_failed`.
class bridge_base : public tsan_visible_actor {
public:
  bridge_base(caf::actor_config& cfg, std::shared_ptr<const blueprint> bp,
              std::shared_ptr<cluster_context> c)
    : tsan_visible_actor(cfg), bp_(std::move(bp)), c_(std::move(c)), where_(c_->where()) {
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
    where_ = c_->where(); // the attempt's placement (a re-plan changes it)
    wired_attempt_ = c_->attempt.load();
    c_->inflight.begin_attempt(wired_attempt_); // the old attempt's batches are gone
    // A node that restarts unnoticed fails this attempt (on_peer_up): the link drops what
    // this attempt and older ones queued for it, not a newer attempt's start.
    c_->link->set_current_attempt(wired_attempt_);
    // A node left out by a re-plan gets nothing more; what older attempts queued for it
    // (their starts, while it was away) must not reach it when it comes back.
    for (int n = 0; n < where_->nodes; ++n)
      if (n != c_->node && !where_->runs_on(n))
        c_->link->discard(static_cast<std::uint32_t>(n), wired_attempt_);
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
  std::shared_ptr<const placement> where_; ///< of the attempt wired last
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
        // A lost node that ran tasks fails the attempt wired here (on_peer_failed names
        // its task): what that attempt and older ones queued for it belongs to its run that
        // is gone. A newer attempt's start, queued already, is kept; so is the queue of a
        // node without tasks (the job goes on without restarting, and what node 0 queued
        // for it may be the running attempt's start).
        if (ev.what == k::peer_lost && !c_->where()->tasks_of(peer).empty())
          c_->link->discard(ev.peer, wired_attempt_);
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
          auto records = where_->codec_of_channel[f.channel]->decode(body.payload);
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
          c_->inflight.credited(f.attempt, f.channel, body.credits);
          send<caf::message_priority::high>(dest, msg::credit::value, in.sender_output,
                                            in.sender_target, body.credits);
        } else {
          return bad(peer, fmt::format("a {} frame on channel {}", to_string(f.kind()), f.channel));
        }
        return {};
      },
      f.body);
  }

  int node_of(int task) const { return where_->node_of_task[static_cast<std::size_t>(task)]; }

  error bad(int peer, std::string what) {
    return make_error(error_code::malformed_frame, peer_name(peer) + " sent a frame that does not "
                                                                     "fit the plan: " + std::move(what));
  }

  std::vector<std::pair<int, int>> owner_; ///< per global channel: task, input
  bool wired_ = false;
  std::vector<net::link_event> held_;
  std::uint64_t stale_ = 0;
  std::int64_t wired_attempt_ = -1; ///< the attempt of `tasks_`
};

} // namespace sluice
