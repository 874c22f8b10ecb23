#pragma once
/// Makes CAF's message passing visible to ThreadSanitizer. Private to actors/.
///
/// Debian's libcaf_core is not built with -fsanitize=thread, so TSan cannot see the
/// happens-before edges its lock-free mailboxes and scheduler queues create: without help it
/// reports every message's payload (written by the sender, read by the receiver) and every
/// actor that a worker thread picks up after another worker ran it as a data race: over
/// 4,000 reports in engine_test alone, which hide any real one (docs/sanitizers.md).
///
/// Deriving an actor from `tsan_visible_actor` instead of `caf::event_based_actor` restores
/// those edges around it, using the actor's address as the synchronization object:
/// - `launch` (the spawning thread, after the constructor) and `enqueue` (the sender's
///   thread, before the message enters the mailbox) release;
/// - `consume` (the worker that runs the actor, once per message) acquires before the handler
///   and releases after it: a message can arrive while the actor runs, and CAF hands it over
///   in the same `resume`; and the release must come before CAF marks the mailbox empty,
///   since from then on another worker can pick the actor up (a release at the end of
///   `resume` would come too late);
/// - `initialize` (make_behavior, on the first worker) releases after it, for the same reason;
/// - `resume` acquires first and releases before it returns, for CAF's own bookkeeping;
/// - `cleanup` (the actor's last run) acquires: it destroys the messages still queued, which
///   no `consume` acquired;
/// - `on_destroy` (whichever thread drops the last reference, just before the destructor)
///   acquires.
/// So everything a sender did before a send happens-before the receiver's handler, and an
/// actor's runs are ordered as CAF orders them. Messages from threads outside CAF (anon_send
/// from the checkpoint writer or the application) go through the same `enqueue`.
///
/// Compiled in only under -fsanitize=thread; otherwise `tsan_visible_actor` is
/// `caf::event_based_actor`.
/// -DSLUICE_NO_TSAN_ANNOTATIONS turns it off under TSan as well, to see what it hides.
#include <caf/event_based_actor.hpp>

#if defined(__SANITIZE_THREAD__) && !defined(SLUICE_NO_TSAN_ANNOTATIONS)
#  include <sanitizer/tsan_interface.h>
#  define SLUICE_TSAN_ANNOTATE 1
// In libtsan, not declared by GCC 12's tsan_interface.h.
extern "C" void __tsan_ignore_thread_begin();
extern "C" void __tsan_ignore_thread_end();
#endif

namespace sluice {

#ifdef SLUICE_TSAN_ANNOTATE

class tsan_visible_actor : public caf::event_based_actor {
  using Base = caf::event_based_actor;

public:
  using Base::Base;

  void launch(caf::execution_unit* eu, bool lazy, bool hide) override {
    __tsan_release(this);
    Base::launch(eu, lazy, hide);
  }

  using Base::enqueue;

  void enqueue(caf::mailbox_element_ptr ptr, caf::execution_unit* eu) override {
    __tsan_release(this);
    Base::enqueue(std::move(ptr), eu);
  }

  caf::resumable::resume_result resume(caf::execution_unit* eu, std::size_t max) override {
    __tsan_acquire(this);
    auto result = Base::resume(eu, max);
    __tsan_release(this);
    return result;
  }

  void initialize() override {
    Base::initialize();
    __tsan_release(this);
  }

  caf::invoke_message_result consume(caf::mailbox_element& x) override {
    __tsan_acquire(this);
    auto result = Base::consume(x);
    __tsan_release(this);
    return result;
  }

  using Base::consume;

  bool cleanup(caf::error&& reason, caf::execution_unit* host) override {
    __tsan_acquire(this); // drops the messages left in the mailbox, never consumed
    return Base::cleanup(std::move(reason), host);
  }

  void on_destroy() override {
    __tsan_acquire(this);
    Base::on_destroy();
  }
};

/// Runs `f` with this thread's memory accesses hidden from TSan (synchronization still
/// counts), for code outside CAF's workers that works with CAF's own actors, which
/// tsan_visible_actor does not cover:
/// - destroying the actor system: CAF stops its own actors (spawn and config servers, the
///   detached printer), creating their exit messages on this thread for its workers to
///   destroy. Every Sluice actor has quit by then.
/// - a `caf::scoped_actor` on an application thread (job_execution::savepoint): CAF's
///   blocking actor and the answer it receives are shared with the coordinator's worker
///   through CAF's mailbox. `f` then only builds the request and copies out the answer.
template <class F>
void tsan_unchecked(F&& f) {
  __tsan_ignore_thread_begin();
  f();
  __tsan_ignore_thread_end();
}

#else

using tsan_visible_actor = caf::event_based_actor;

template <class F>
void tsan_unchecked(F&& f) {
  f();
}

#endif

} // namespace sluice
