#pragma once
/// What a task writes at a checkpoint barrier, in two parts: on the task's thread each
/// operator of its chain hands over its state and the source at the chain's head its
/// position (`snapshot_chain`, the synchronous part: bytes, or functions that make them);
/// on the writer thread those become stored pieces (`store_pieces`). CAF-free; private to
/// actors/ (the task actor calls it; tests/actors/task_test.cpp drives it directly).
#include "sluice/actors/task_restore.hpp"
#include "sluice/checkpoint/store.hpp"
#include "sluice/core/error.hpp"

#include <cstdint>
#include <functional>
#include <string>
#include <unordered_map>
#include <vector>

namespace sluice {

/// A piece of a snapshot on its way to the writer thread: its bytes, the function that
/// makes them there, or a reference to the same piece of the task's previous snapshot.
struct pending_piece {
  std::string name;
  std::string bytes;
  std::function<result<std::string>()> encode;
  bool reused = false;
};

/// Snapshot `id` of `t`: operator pieces named "<node name>/<piece>", the source's position
/// under its `source_piece_prefix`, appended to `pieces`. `has_previous`: this task stored
/// a snapshot before in this run, so operators may refer to its pieces (`reuse`).
[[nodiscard]] result<void> snapshot_chain(std::int64_t id, const chain_view& t, bool has_previous,
                                          std::vector<pending_piece>& pieces);

/// Runs on the writer thread: makes the deferred pieces' bytes, stores them in one write,
/// and resolves references through `previous` (the task's last stored pieces by name, which
/// only the writer thread touches; its jobs run in order), then remembers these. Returns
/// every piece of the snapshot, or what went wrong (naming the piece).
[[nodiscard]] result<std::vector<checkpoint_piece>>
store_pieces(checkpoint_store& store, std::int64_t id, std::vector<pending_piece>& pieces,
             std::unordered_map<std::string, checkpoint_piece>& previous);

} // namespace sluice
