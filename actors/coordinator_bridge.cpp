// Node 0's bridge between its link and its coordinator (remote.hpp, docs/cluster.md).
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


/// Node 0's bridge: remote tasks' messages go to the coordinator as from their stand-ins.
class coordinator_bridge final : public bridge_base {
public:
  coordinator_bridge(caf::actor_config& cfg, std::shared_ptr<const blueprint> bp,
                     std::shared_ptr<cluster_context> c, caf::actor coordinator)
    : bridge_base(cfg, std::move(bp), std::move(c)), coordinator_(std::move(coordinator)),
      up_(static_cast<std::size_t>(where_->nodes), false),
      lost_(static_cast<std::size_t>(where_->nodes), false),
      losses_(static_cast<std::size_t>(where_->nodes), 0) {}

  caf::behavior make_behavior() override {
    attach();
    if (where_->live.size() == 1) { // nobody to wait for
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
        for (int n : where_->live)
          if (n != 0 && !c_->link->is_up(static_cast<std::uint32_t>(n)))
            on_peer_failed(n, make_error(error_code::node_lost,
                                         fmt::format("{} did not join within {} ms (join timeout)",
                                                     peer_name(n),
                                                     bp_->options.cluster.join_timeout.count())));
      },
      [this](msg::rejoin, int node, int loss) {
        const auto n = static_cast<std::size_t>(node);
        // loss -1: the coordinator looks again (the node's store was still held).
        if (!lost_[n] || (loss >= 0 && losses_[n] != loss) || !where_->runs_on(node))
          return; // it came back, or the job already goes on without it
        send(coordinator_, msg::node_gone::value, node,
             fmt::format("{} did not come back within {} ms (rejoin timeout)", peer_name(node),
                         bp_->options.cluster.rejoin_timeout->count()));
      },
      [this](msg::job_end, const std::string& failure) {
        logging::get().debug("cluster: the job ended{}{}", failure.empty() ? "" : ": ", failure);
        control_message m{control_kind::job_ended};
        m.task = -1;
        m.text = failure;
        for (int n : c_->where()->live)
          if (n == 0)
            continue;
          else if (auto ok = send_to_node(*c_, n, m); !ok)
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
        where_->node_of_task[static_cast<std::size_t>(m.task)] != peer) {
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
      case control_kind::wm_report:
        caf::send_as(from, coordinator_, msg::wm_report::value, m.task,
                     static_cast<std::int32_t>(m.code), m.watermark_us);
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
    if (!c_->where()->runs_on(peer)) {
      // Left out by a re-plan: its tasks run elsewhere now. It hears so and ends.
      up_[p] = true;
      logging::get().warn("cluster: {} joined, but the job runs on nodes {} without it",
                          peer_name(peer), describe_nodes(c_->where()->live));
      control_message m{control_kind::removed};
      m.task = -1;
      m.text = fmt::format("the job was re-planned onto nodes {} without node {} (it did not "
                           "come back in time); it stays so until the job is started afresh",
                           describe_nodes(c_->where()->live), peer);
      if (auto ok = send_to_node(*c_, peer, m); !ok)
        logging::get().warn("cluster: cannot tell {} it was left out: {}", peer_name(peer),
                            ok.error().message);
      return;
    }
    const bool restarted = up_[p] && !lost_[p];
    up_[p] = true;
    lost_[p] = false;
    logging::get().info("cluster: {} {}", peer_name(peer), restarted ? "restarted" : "joined");
    if (!all_joined_ && std::all_of(where_->live.begin(), where_->live.end(), [&](int n) {
          return n == 0 || up_[static_cast<std::size_t>(n)];
        })) {
      all_joined_ = true;
      logging::get().info("cluster: all {} nodes joined", where_->live.size());
      send(coordinator_, msg::joined::value, 0, std::string{});
    }
    if (restarted)
      on_peer_failed(peer, make_error(error_code::node_lost,
                                      peer_name(peer) + " restarted: its tasks are gone"));
  }

  /// A lost, refused or misbehaving node fails the attempt: its tasks' work is gone. The
  /// coordinator restarts every node from the last checkpoint when its strategy allows.
  void on_peer_failed(int peer, error e) override {
    if (!c_->where()->runs_on(peer)) { // left out: nothing of the job depends on it
      logging::get().info("cluster: {} (left out of the job): {}", peer_name(peer), e.message);
      return;
    }
    if (e.code == error_code::node_lost && !lost_[static_cast<std::size_t>(peer)]) {
      lost_[static_cast<std::size_t>(peer)] = true;
      const auto& rejoin = bp_->options.cluster.rejoin_timeout;
      if (all_joined_ && rejoin && bp_->store) // else the job cannot go on without it
        delayed_send(this, *rejoin, msg::rejoin::value, peer,
                     ++losses_[static_cast<std::size_t>(peer)]);
    }
    if (!all_joined_) { // refused or lost before the job started: it cannot start
      all_joined_ = true;
      send(coordinator_, msg::joined::value, static_cast<int>(e.code), e.message);
      return;
    }
    for (std::size_t t = 0; t < tasks_.size(); ++t)
      if (where_->node_of_task[t] == peer) {
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
    for (int n : where_->live)
      if (n != 0 && !up_[static_cast<std::size_t>(n)])
        out += (out.empty() ? "" : "; ") +
               fmt::format("{} did not join within {} ms (join timeout)", peer_name(n),
                           bp_->options.cluster.join_timeout.count());
    return out;
  }

  caf::actor coordinator_;
  bool all_joined_ = false;
  std::vector<bool> up_;   ///< per node: it was up at some point
  std::vector<bool> lost_; ///< per node: lost since it was last up
  std::vector<int> losses_; ///< per node: how often it was lost (names a rejoin check)
};

} // namespace

caf::actor spawn_coordinator_bridge(caf::actor_system& sys, std::shared_ptr<const blueprint> bp,
                                    std::shared_ptr<cluster_context> cluster,
                                    caf::actor coordinator) {
  return sys.spawn<coordinator_bridge>(std::move(bp), std::move(cluster), std::move(coordinator));
}

} // namespace sluice
