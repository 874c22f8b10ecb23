#pragma once
/// The fixed set of messages between tasks and the coordinator. Private to actors/.
///
/// task -> task:   (data, channel, batch), (eoi, channel), (credit, output, target, n),
///                 (wm, channel, µs since epoch), (idle, channel, bool),
///                 (barrier, channel, epoch, checkpoint?)
/// coord -> task:  (wire, actors), (start), (cancel), (commit, checkpoint)
/// coord -> source task: (prepare, epoch, unlimited, step, end)   [step: trigger_plans::step]
///                 -> (prepared, task, epoch, available, end),
///                 (run, epoch, watermark µs), (inject, epoch, checkpoint?)
/// task -> coord:  (done, task), (failed, task, code, message), (ack, report),
///                 (finishing, task, last epoch), (finalpos, task, piece, bytes)
/// aligned source task -> coord: (wmreport, task, alignment_state, watermark µs);
/// coord -> aligned source task: (wmallow, max watermark µs) (watermark_alignment.hpp);
/// task -> self:   (wmreport) when a report held back by the update interval is due
/// task -> self:   (poll), (flush), (timer), (written, report) from the writer thread,
///                 (poll, wait) ending a source's idle wait, (wake) from a source's own
///                 thread (source_context::wake)
/// coord -> self:  (tick), (restart), (stopwait, attempt)
/// multi-node (remote.hpp): link -> bridge: (drain); coord -> bridge: (wire, actors),
///                 (jobend, error text or ""); a task's stand-in on another node takes every
///                 message a task takes, the coordinator's stand-in every message it takes.
#include "sluice/core/batch.hpp"
#include "sluice/core/epoch.hpp"

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
/// (wake): a source has input again; poll it now if it waits after an idle poll.
using wake = caf::atom_constant<caf::atom("wake")>;
using flush = caf::atom_constant<caf::atom("flush")>;
using timer = caf::atom_constant<caf::atom("timer")>;
using wm = caf::atom_constant<caf::atom("wm")>;
using idle = caf::atom_constant<caf::atom("idle")>;
using barrier = caf::atom_constant<caf::atom("barrier")>;
using prepare = caf::atom_constant<caf::atom("prepare")>;
using prepared = caf::atom_constant<caf::atom("prepared")>;
using run = caf::atom_constant<caf::atom("run")>;
using inject = caf::atom_constant<caf::atom("inject")>;
using ack = caf::atom_constant<caf::atom("ack")>;
using tick = caf::atom_constant<caf::atom("tick")>;
using commit = caf::atom_constant<caf::atom("commit")>;
using restart = caf::atom_constant<caf::atom("restart")>;
/// (stopwait, attempt): a failed attempt's tasks had `stop_timeout` to stop.
using stop_wait = caf::atom_constant<caf::atom("stopwait")>;
using written = caf::atom_constant<caf::atom("written")>;
/// (drain): the link has events waiting for the bridge.
using drain = caf::atom_constant<caf::atom("drain")>;
/// (jobend, error): the job ended on node 0 (error: "" when it succeeded).
using job_end = caf::atom_constant<caf::atom("jobend")>;
/// (joined, code, failure): bridge -> coordinator: every node has joined (failure ""), or
/// one was refused, lost or did not join within the join timeout (failure names it).
using joined = caf::atom_constant<caf::atom("joined")>;
/// (joincheck, attempt): the join timeout of an attempt has passed.
using join_check = caf::atom_constant<caf::atom("joincheck")>;
/// (rejoin, node, loss): the rejoin timeout of a node's `loss`-th loss has passed (-1: the
/// coordinator asks to look again).
using rejoin = caf::atom_constant<caf::atom("rejoin")>;
/// (nodegone, node, why): bridge -> coordinator: a lost node did not come back within the
/// rejoin timeout; the job is to go on without it.
using node_gone = caf::atom_constant<caf::atom("nodegone")>;
using savepoint = caf::atom_constant<caf::atom("savepoint")>;
/// (finishing, task, last epoch): a continuous source's input ended (or it was cancelled);
/// it asks for the barrier that ends its last epoch, numbered by the coordinator like every
/// other barrier (a checkpoint when the job takes checkpoints).
using finishing = caf::atom_constant<caf::atom("finishing")>;
/// (final, task, piece, bytes): a finished source's last position, for later checkpoints.
using final_position = caf::atom_constant<caf::atom("finalpos")>;
/// Watermark alignment (watermark_alignment.hpp): a source task's report to the
/// coordinator, and the watermark the coordinator allows it.
using wm_report = caf::atom_constant<caf::atom("wmreport")>;
using wm_allow = caf::atom_constant<caf::atom("wmallow")>;

} // namespace sluice::msg

// Batches never leave the process through CAF (multi-node uses ZeroMQ with our own
// encoding), so the shared pointer may travel as an unsafe, in-process message type.
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(sluice::batch_ptr)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(sluice::epoch_report_ptr)
