#pragma once
/// What a task takes back from a checkpoint when it starts: each operator of its chain its
/// key groups' state, the source at the chain's head its position. CAF-free; private to
/// actors/ (the task actor calls it; tests/actors/task_test.cpp drives it directly).
#include "sluice/checkpoint/store.hpp"
#include "sluice/core/error.hpp"
#include "sluice/operators/chain.hpp"
#include "sluice/sources/source.hpp"

#include <string>
#include <string_view>
#include <vector>

namespace sluice {

/// Where a source node's positions lie in a checkpoint: one piece per instance under this
/// prefix, named by the instance's index. An operator's pieces lie under "<name>/".
inline constexpr std::string_view source_pieces = "source/";
inline std::string source_piece_prefix(const std::string& node_name) {
  return std::string{source_pieces} + node_name + "/";
}
/// Whether piece `name` is a source's position (under some `source_piece_prefix`).
inline bool is_source_piece(std::string_view name) { return name.starts_with(source_pieces); }

/// One task's chain as a snapshot or a restore sees it.
struct chain_view {
  chain* ops = nullptr;           ///< node i's operator; null at a source head
  source_base* source = nullptr;  ///< the source heading the chain, if any
  std::vector<std::string> names; ///< node i's name, the key of its pieces (unique in the job)
  int instance = 0;               ///< this task's instance of the chain
  int parallelism = 1;            ///< the chain's parallelism in this run
};

/// Restores `t` from checkpoint `meta` of `store`; with no checkpoint (`meta` null) only the
/// operators' `restore` runs, with nothing to read, so that two-phase sinks settle what a
/// crashed run left. An operator takes its key groups' state whatever the parallelism that
/// wrote them; a source that `restores_from_all_instances` gets every old instance's
/// position (`seek_all`); any other source seeks to its own instance's position, and a
/// checkpoint written at another parallelism is refused (`restore_conflict`, naming the
/// source and both parallelisms), never guessed. Returns whether the source was positioned,
/// or the first error.
[[nodiscard]] result<bool> restore_chain(checkpoint_store& store, const checkpoint_meta* meta,
                                         const chain_view& t);

} // namespace sluice
