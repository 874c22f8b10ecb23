#pragma once
/// Where a run begins: opening a job's checkpoint store and choosing the checkpoint to
/// restore. CAF-free; private to actors/.
#include "sluice/actors/runtime.hpp"
#include "sluice/checkpoint/store.hpp"
#include "sluice/core/time.hpp"
#include "sluice/graph/fingerprint.hpp"
#include "sluice/graph/graph.hpp"
#include "sluice/graph/plan.hpp"

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace sluice {

/// Where a (re)started run begins: a complete checkpoint, or nothing.
struct restore_point {
  std::optional<checkpoint_meta> meta;
  /// `meta` was asked for (`checkpoint_options::restore_from`), not found as the latest
  /// usable checkpoint. Sinks may then roll back output committed after it.
  bool requested = false;
  /// The first epoch of the run when it must not follow `meta` directly (savepoints newer
  /// than an explicitly restored checkpoint keep their ids); -1: `meta->id + 1`.
  std::int64_t first_epoch = -1;
  /// When the job first started (`source_context::job_start`): fixed by the coordinator at
  /// its first attempt, kept for later ones and handed to every node.
  std::optional<event_time> job_start;
};

/// A job's opened checkpoint store and the point its first run starts from.
struct opened_checkpoints {
  std::shared_ptr<checkpoint_store> store;
  restore_point from;
  /// What opening the store repaired, deleted or kept, then the newer checkpoints that
  /// could not be used, and why (the coordinator reports them).
  std::vector<std::string> skipped;
};

/// How the log names where a run starts: ", restored from checkpoint 4", and when newer
/// checkpoints were skipped (a fallback) which and why; "" without a checkpoint. A caller
/// logs a fallback (`skipped` not empty) as a warning.
std::string describe_restore(std::optional<std::int64_t> restored,
                             const std::vector<std::string>& skipped);

/// A job with checkpoints: every operator can snapshot its state, and node names (the
/// keys of their state in a checkpoint, like Flink's operator uids) are unique.
[[nodiscard]] result<void> check_checkpointable(const graph& g, const physical_plan& plan);

/// Whether checkpoint `meta` may be restored into the job `job` named `job_name`, by Flink's
/// rules: it was written by a job of that name (or is named by `o.restore_from`, as a Flink
/// savepoint may be restored into another job); every operator that holds state in it is
/// in the job (else refused, unless `o.allow_non_restored_state`: then that state is
/// dropped and logged) with the same state layout and types (else refused, naming both);
/// a stateful operator the checkpoint does not know starts empty (logged). A checkpoint
/// written before fingerprints is checked by the names of its pieces only (logged).
[[nodiscard]] result<void> check_restorable(const checkpoint_meta& meta, const job_fingerprint& job,
                                            const std::string& job_name, const checkpoint_options& o);

/// The checkpoint to start from: the one asked for, else the latest that verifies. A
/// directory with complete checkpoints of which none verifies is an error, never a
/// silent fresh start; so is a checkpoint `check_restorable` refuses.
[[nodiscard]] result<std::optional<checkpoint_meta>>
find_restore_point(checkpoint_store& store, const checkpoint_options& o, const physical_plan& plan,
                   const job_fingerprint& job, const std::string& job_name,
                   std::vector<std::string>& skipped);

/// The options node `node`'s store is opened with, for the job `job`.
checkpoint_store_options store_options(const job_fingerprint& job, const runtime_options& opts,
                                       int node);

/// Opens the store in `opts.checkpoints.dir` (which must be set) for the job `g`/`plan`
/// and chooses where its first run begins. With `restore_from`, a new history starts there:
/// newer checkpoints (not savepoints) are deleted. Every checkpoint the job completes
/// carries its fingerprint.
[[nodiscard]] result<opened_checkpoints> open_checkpoints(const graph& g, const physical_plan& plan,
                                                          const runtime_options& opts);

} // namespace sluice
