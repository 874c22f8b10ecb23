#pragma once
/// The fixed set of messages between tasks and the coordinator. Private to actors/.
///
/// task -> task:   (data, channel, batch), (eoi, channel), (credit, output, target, n),
///                 (wm, channel, µs since epoch), (idle, channel, bool)
/// coord -> task:  (wire, actors), (start), (cancel)
/// task -> coord:  (done, task), (failed, task, code, message)
/// task -> self:   (poll), (flush), (timer)
#include "core/batch.hpp"

#include <caf/all.hpp>

namespace sluice::msg {

using data = caf::atom_constant<caf::atom("data")>;
using eoi = caf::atom_constant<caf::atom("eoi")>;
using credit = caf::atom_constant<caf::atom("credit")>;
using wire = caf::atom_constant<caf::atom("wire")>;
using start = caf::atom_constant<caf::atom("start")>;
using cancel = caf::atom_constant<caf::atom("cancel")>;
using done = caf::atom_constant<caf::atom("done")>;
using failed = caf::atom_constant<caf::atom("failed")>;
using poll = caf::atom_constant<caf::atom("poll")>;
using flush = caf::atom_constant<caf::atom("flush")>;
using timer = caf::atom_constant<caf::atom("timer")>;
using wm = caf::atom_constant<caf::atom("wm")>;
using idle = caf::atom_constant<caf::atom("idle")>;

} // namespace sluice::msg

// Batches never leave the process through CAF (multi-node uses ZeroMQ with our own
// encoding), so the shared pointer may travel as an unsafe, in-process message type.
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(sluice::batch_ptr)
