#pragma once
/// Re-planning a multi-node run onto the nodes left (docs/cluster.md): when a lost node
/// has not come back within `cluster_options::rejoin_timeout`, node 0 places the job's
/// tasks on the other nodes (same parallelism, so this is a restore with other owners, not
/// a rescale) and restores the last checkpoint there. The pieces the missing node held lie
/// in its store under the shared checkpoint directory: node 0 copies them into its own
/// store and hands them to every node with the attempt; tasks on the nodes left stay where
/// they are (placement.hpp, `leave_out`), so their pieces need not move. CAF-free; private
/// to actors/.
#include "sluice/actors/placement.hpp"
#include "sluice/actors/remote_control.hpp"
#include "sluice/checkpoint/store.hpp"
#include "sluice/core/error.hpp"

#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace sluice {

/// A checkpoint's properties naming the nodes its run ran on and each task's node, when
/// a re-plan left nodes out: "0,1" and "0,0,1,...". A run restoring it runs so too.
inline constexpr std::string_view live_nodes_property = "cluster_live";
inline constexpr std::string_view task_nodes_property = "cluster_task_nodes";

/// What a checkpoint records of a re-planned run's placement.
struct recorded_placement {
  std::vector<int> live;
  std::vector<int> node_of_task;
};

/// Records `p` in a checkpoint's `properties` when it leaves nodes out (else nothing: the
/// placement of every node follows from the plan).
void record_placement(const placement& p, std::map<std::string, std::string>& properties);

/// The placement `meta` records, if any. Fails (`restore_conflict`) when a property is not
/// a list of node numbers (`place_as` checks that they fit the job and the cluster).
[[nodiscard]] result<std::optional<recorded_placement>> recorded_placement_of(const checkpoint_meta& meta);

/// Node 0 keeps the placement of a re-plan at once in `dir/cluster-placement` (written to a
/// temporary file and renamed): restarted before a checkpoint records it, it must not go
/// back to the nodes left out. Errors name the file.
[[nodiscard]] result<void> write_placement_file(const std::filesystem::path& dir, const placement& p);
/// The placement kept there, if any. Fails (`restore_conflict`) naming the file when it
/// cannot be read or does not parse.
[[nodiscard]] result<std::optional<recorded_placement>>
read_placement_file(const std::filesystem::path& dir);

/// Where node `node` keeps its checkpoint store under the job's checkpoint directory `dir`:
/// node 0 in `dir` itself, node N in `dir/node-N`.
std::filesystem::path node_store_dir(const std::filesystem::path& dir, int node);

/// Whether node 0 could take over node `node`'s pieces now: its store under `dir` exists
/// and no running process holds it (see `adopt_pieces`). Errors as `adopt_pieces`'.
[[nodiscard]] result<void> can_take_over(int node, const std::filesystem::path& dir,
                                         checkpoint_store_options options);

/// Node 0 takes over the pieces of checkpoint `meta` that nodes outside `live` hold (source
/// positions excepted: node 0 keeps them all already): reads each from its node's store
/// under `dir`, stores a copy in `own` (node 0's store, under the id of the checkpoint that
/// wrote it), lists it in `meta` as node 0's, and returns the copies, to hand to every
/// node. The missing node's store must exist (a checkpoint directory every node shares) and
/// be free: a node cut off by the network but still running holds it, and re-planning then
/// fails rather than let two nodes run the same tasks. `options` are the store options the
/// runtime opens stores with (`node` is set here). Errors name the node and the directory.
[[nodiscard]] result<std::vector<control_message::shipped_piece>>
adopt_pieces(checkpoint_store& own, checkpoint_meta& meta, const std::vector<int>& live,
             const std::filesystem::path& dir, checkpoint_store_options options);

} // namespace sluice
