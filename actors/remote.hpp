#pragma once
/// Multi-node runs in the runtime (docs/cluster.md): the bridge between this node's link
/// (net/link.hpp) and its actors, and stand-ins for the actors on other nodes. Private to
/// actors/.
///
/// - A *stand-in* is a local actor that takes the messages of an actor on another node
///   (a task, or on nodes other than 0 the coordinator) and sends each as a frame: channel
///   items as their own frames (global channel numbers, placement.hpp), credits as credit
///   frames, everything else as a control frame (remote_control.hpp). Tasks and the
///   coordinator talk to stand-ins exactly as to local actors, so neither knows about nodes.
/// - The *bridge* takes what the link receives and hands it to the local actor it is for:
///   channel items and credits to tasks, control messages to tasks or (on node 0) to the
///   coordinator, sent as from the sender's stand-in so that the coordinator's checks of
///   who sent what hold. On nodes other than 0 the bridge is also the node's agent: it
///   spawns and wires the node's tasks, and ends the node's run when node 0 says the job
///   ended or node 0 is lost.
/// - Frames name the attempt; frames of another attempt are dropped (counted).
#include "sluice/actors/blueprint.hpp"
#include "sluice/actors/placement.hpp"
#include "sluice/actors/remote_control.hpp"
#include "sluice/net/inflight.hpp"
#include "sluice/net/link.hpp"

#include <caf/fwd.hpp>

#include <atomic>
#include <memory>
#include <mutex>

namespace sluice {

struct job_state;

/// What this node's stand-ins and bridge share.
struct cluster_context {
  int node = 0;
  /// The attempt this node runs now (-1 on a node that has not heard from node 0 yet):
  /// frames of older attempts are dropped, of newer ones held until it starts.
  std::atomic<std::int64_t> attempt{0};
  std::shared_ptr<net::link> link;
  /// Set once the bridge runs: the link's I/O thread wakes it through this.
  std::mutex mtx;
  std::shared_ptr<caf::actor> bridge;
  std::atomic<bool> drain_pending{false};
  /// Tells the bridge, from the link's I/O thread, that events wait.
  void wake();
  /// Bytes sent on each channel to another node and not credited back yet: stand-ins count
  /// what they send, the bridge the credits that come back (net/inflight.hpp).
  net::inflight_meter inflight;

  /// The placement of the current attempt. It changes only between attempts, when node 0
  /// re-plans the job onto the nodes left; stand-ins keep the one of their attempt.
  std::shared_ptr<const placement> where() const;
  void set_where(placement p);

private:
  mutable std::mutex where_mtx_;
  std::shared_ptr<const placement> where_;
};

/// What a node's tasks restore of checkpoint `meta`: the pieces in this node's store, and the
/// source positions (node 0 hands them to every node). An operator instance's key groups
/// are in its own node's pieces: the placement is the one that wrote the checkpoint, or,
/// after a re-plan, node 0 copied the pieces of the nodes left out and handed them to every
/// node, which relabels them as its own (`take_shipped_pieces`).
void keep_pieces_of_this_node(checkpoint_meta& meta, int node);

/// The pieces node 0 shipped with an attempt (`shipped`) are now in `node`'s store too:
/// `meta` lists them as that node's, so that `keep_pieces_of_this_node` keeps them.
void take_shipped_pieces(checkpoint_meta& meta, int node,
                         const std::vector<control_message::shipped_piece>& shipped);

/// Sends control message `m` to `node` at once, from any thread (frames to one node leave
/// in the order they were sent).
[[nodiscard]] result<void> send_to_node(cluster_context& c, int node,
                                        const control_message& m);

/// Starts this node's link for the job `bp` (its cluster options, the job's fingerprint),
/// placed as `where`. Fails when the link cannot start (the port cannot be bound, a key
/// file cannot be read, ...).
[[nodiscard]] result<std::shared_ptr<cluster_context>> start_cluster(const blueprint& bp,
                                                                     placement where);

/// A stand-in for task `task`, which runs on another node. `coordinator` receives the
/// failure when a frame cannot be sent.
caf::actor spawn_task_stand_in(caf::local_actor* parent, std::shared_ptr<const blueprint> bp,
                               std::shared_ptr<cluster_context> cluster, int task,
                               std::int64_t attempt, caf::actor coordinator);

/// Node 0's bridge: delivers what the link receives to `coordinator` and to the tasks the
/// coordinator announces with (wire, actors) at every attempt.
caf::actor spawn_coordinator_bridge(caf::actor_system& sys, std::shared_ptr<const blueprint> bp,
                                    std::shared_ptr<cluster_context> cluster,
                                    caf::actor coordinator);

/// The bridge and agent of a node other than 0: at each attempt node 0 starts, spawns and
/// wires the node's tasks from the checkpoint node 0 names; completes the node's store
/// when node 0 completes a checkpoint; publishes the node's outcome in `state` when the job
/// ends.
caf::actor spawn_node_agent(caf::actor_system& sys, std::shared_ptr<const blueprint> bp,
                            std::shared_ptr<cluster_context> cluster,
                            std::shared_ptr<job_state> state);

} // namespace sluice
