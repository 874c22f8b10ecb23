// Multi-node runs (remote.hpp): the context a node's actors share, the link's start, and
// the stand-ins for tasks on other nodes. The bridges: bridge.hpp, coordinator_bridge.cpp
// (node 0), node_agent.cpp (the other nodes).
#include "sluice/actors/remote.hpp"

#include "sluice/actors/messages.hpp"
#include "sluice/actors/remote_control.hpp"
#include "sluice/actors/task_restore.hpp"
#include "sluice/actors/tsan.hpp"

#include "sluice/core/log.hpp"
#include "sluice/graph/fingerprint.hpp"
#include "sluice/net/cluster.hpp"

#include <fmt/format.h>

#include <algorithm>

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

std::shared_ptr<const placement> cluster_context::where() const {
  std::lock_guard guard{where_mtx_};
  return where_;
}

void cluster_context::set_where(placement p) {
  auto next = std::make_shared<const placement>(std::move(p));
  std::lock_guard guard{where_mtx_};
  where_ = std::move(next);
}

result<std::shared_ptr<cluster_context>> start_cluster(const blueprint& bp, placement where) {
  const auto& c = bp.options.cluster;
  if (auto ok = c.validate(); !ok)
    return std::move(ok).error();
  auto ctx = std::make_shared<cluster_context>();
  ctx->node = c.node;
  ctx->set_where(std::move(where));
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
  // A peer's link refuses a larger frame by dropping the connection: say so here instead
  // (an attempt carrying a large missing node's state, docs/cluster.md).
  if (const auto size = std::get<net::control_body>(f.body).text.size();
      size > net::default_max_frame_body)
    return make_error(error_code::invalid_option,
                      fmt::format("control message '{}' to node {} is {} bytes, over the frame "
                                  "limit of {} bytes",
                                  to_string(m.what), node, size, net::default_max_frame_body));
  return c.link->send(static_cast<std::uint32_t>(node), f);
}

// -- stand-ins ------------------------------------------------------------------------------

/// Takes the messages of task `task_`, which runs on another node, and sends them there.
class task_stand_in final : public tsan_visible_actor {
public:
  task_stand_in(caf::actor_config& cfg, std::shared_ptr<const blueprint> bp,
                std::shared_ptr<cluster_context> c, int task, std::int64_t attempt,
                caf::actor coordinator)
    : tsan_visible_actor(cfg), bp_(std::move(bp)), c_(std::move(c)), where_(c_->where()),
      task_(task), attempt_(attempt), node_(where_->node_of_task[static_cast<std::size_t>(task)]),
      coordinator_(std::move(coordinator)) {}

  caf::behavior make_behavior() override {
    return {
      [this](msg::data, int channel, const batch_ptr& records) {
        const auto g = where_->channel(task_, channel);
        const auto* codec = where_->codec_of_channel[g];
        std::vector<std::byte> bytes;
        net::encode_data_frame(attempt_, g, bytes,
                               [&](std::vector<std::byte>& out) { codec->encode(*records, out); });
        // The peer would drop a larger frame with the connection: fail here, saying why.
        if (bytes.size() > net::default_max_frame_body) {
          check(make_error(error_code::invalid_option,
                           fmt::format("a batch of {} records is {} bytes encoded, over the frame "
                                       "limit of {} bytes: lower batch_size (now {}) or "
                                       "remote_batch_size (now {})",
                                       records->size(), bytes.size(), net::default_max_frame_body,
                                       bp_->options.batch_size, bp_->options.remote_batch_size)));
          return;
        }
        // Counted before it leaves: its credit may come back before send_encoded returns.
        c_->inflight.sent(attempt_, g, bytes.size());
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
        net::frame f{attempt_, where_->channel(t.to_task, t.receiver_channel),
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
             const std::string& end, std::int64_t wall_us) {
        control_message m{control_kind::prepare};
        m.epoch = epoch;
        m.flag = unlimited;
        m.step = step;
        m.text = end;
        m.wall_us = wall_us;
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
      [this](msg::wm_allow, std::int64_t us) {
        control_message m{control_kind::wm_allow};
        m.watermark_us = us;
        control(std::move(m));
      },
    };
  }

  void on_exit() override { coordinator_ = nullptr; }

private:
  template <class Body>
  void item(int channel, Body body) {
    net::frame f{attempt_, where_->channel(task_, channel), std::move(body)};
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
  std::shared_ptr<const placement> where_; ///< of this stand-in's attempt
  int task_;
  std::int64_t attempt_;
  int node_;
  caf::actor coordinator_;
  bool failed_ = false;
};


} // namespace

void keep_pieces_of_this_node(checkpoint_meta& meta, int node) {
  std::erase_if(meta.pieces, [&](const checkpoint_piece& p) {
    return p.node != node && !is_source_piece(p.name);
  });
}

void take_shipped_pieces(checkpoint_meta& meta, int node,
                         const std::vector<control_message::shipped_piece>& shipped) {
  for (const auto& s : shipped)
    for (auto& p : meta.pieces)
      if (p.name == s.name)
        p.node = node;
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

} // namespace sluice