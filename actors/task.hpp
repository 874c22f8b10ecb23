#pragma once
/// The task actor: one parallel instance of a chain. Private to actors/.
#include "sluice/actors/blueprint.hpp"
#include "sluice/actors/placement.hpp"

#include <caf/fwd.hpp>

#include <memory>

namespace sluice {

/// Spawns task `index` of the blueprint for the job's attempt `attempt`; it reports to
/// `coordinator`. `from`: the checkpoint to restore (empty meta: start fresh). `where`: the
/// attempt's placement in a multi-node run (channels to other nodes get the remote credit
/// window), null in one process.
caf::actor spawn_task(caf::local_actor* parent, std::shared_ptr<const blueprint> bp, int index,
                      int attempt, caf::actor coordinator,
                      std::shared_ptr<const restore_point> from,
                      std::shared_ptr<const placement> where = nullptr);

} // namespace sluice
