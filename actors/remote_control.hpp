#pragma once
/// The coordinator's messages to and from tasks on other nodes, as the body of a control
/// frame (net/frame.hpp, kind `control`). CAF-free: the bridge (remote.cpp) turns them
/// into and from the actors' messages (messages.hpp), one for one.
///
/// Encoding: CBOR (nlohmann-json), a map with the message's name under "m" and its
/// arguments under short keys. CBOR keeps binary positions byte for byte. Decoding checks
/// every field's presence and type: hostile input gives `malformed_frame` naming the field,
/// never a crash.
#include "sluice/checkpoint/store.hpp"
#include "sluice/core/epoch.hpp"
#include "sluice/core/error.hpp"

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace sluice {

struct control_message {
  enum class kind {
    // coordinator -> a task on another node (the frame's channel names the task)
    wire,     ///< wire the task to every other task (the node builds its own handles)
    start,
    cancel,
    commit,   ///< epoch: the completed checkpoint's id
    prepare,  ///< epoch, flag: unlimited, step, text: the logged end, wall_us: the
              ///< coordinator's wall time (source_base::trigger_time)
    run,      ///< epoch, watermark_us
    inject,   ///< epoch, flag: checkpoint
    // a task -> the coordinator (task: the sender)
    done,
    failed,   ///< code, text
    ack,      ///< report; pieces: the task's source positions, whole (node 0 keeps them)
    finishing,      ///< epoch: the last epoch
    prepared,       ///< epoch, flag: available, text: the end
    final_position, ///< text: the piece, bytes
    // node 0 -> every node: the job ended (text: its error; empty when it succeeded)
    job_ended,
    // node 0 -> every node, before the attempt's tasks hear anything: attempt `epoch`
    // starts from `meta` (none: from scratch), flag: `requested`, first_epoch, on the
    // nodes `nodes` (ascending; after a re-plan not every node), task t on node
    // `task_nodes[t]`; `pieces`: node 0's source positions and the pieces it took over
    // from nodes left out, which the node's tasks may need; job_start_us: the job's start
    // time (source_context::job_start)
    attempt,
    // node 0 -> every node: checkpoint `epoch` is complete (before any task commits it);
    // flag: it is a savepoint (every node's store keeps its pieces of it)
    completed,
    // node 0 -> a node the job was re-planned without, when it joins (text: why)
    removed,
    // watermark alignment (watermark_alignment.hpp): a source task -> the coordinator,
    // code: its alignment_state, watermark_us; the coordinator -> a source task,
    // watermark_us: the watermark it may reach
    wm_report,
    wm_allow,
  };
  /// A piece of node 0's store, sent whole (bytes as the store returns them).
  struct shipped_piece {
    std::string name;
    std::int64_t stored_in = 0;
    std::string bytes;
  };
  control_message(kind k = kind::start) noexcept : what(k) {} // NOLINT: a kind is a message

  kind what;
  int task = 0;
  std::int64_t epoch = 0;
  bool flag = false;
  std::int32_t step = 0;
  std::int64_t watermark_us = 0;
  std::int64_t wall_us = 0;
  int code = 0;
  std::string text;
  std::string bytes;
  std::optional<epoch_report> report;
  std::optional<checkpoint_meta> meta;
  std::int64_t first_epoch = -1;
  std::vector<shipped_piece> pieces;
  std::vector<int> nodes;
  std::vector<int> task_nodes; ///< attempt: the node of every task
  std::optional<std::int64_t> job_start_us; ///< attempt: µs since the epoch
};

/// "wire", "start", ...
std::string_view to_string(control_message::kind k) noexcept;

std::string encode_control(const control_message& m);

/// Fails with `malformed_frame`: "control message: ...".
[[nodiscard]] result<control_message> decode_control(std::string_view bytes);

} // namespace sluice
