#pragma once
/// Makes CAF's message passing visible to ThreadSanitizer. Private to actors/.
///
/// Debian's libcaf_core is not built with -fsanitize=thread, so TSan cannot see the
/// happens-before edges its lock-free mailboxes and scheduler queues create: without help it
/// reports every message's payload (written by the sender, read by the receiver) and every
/// actor that a worker thread picks up after another worker ran it as a data race, about
/// 2,700 reports in a run of the tests, which hide any real one (docs/sanitizers.md).
///
/// Deriving an actor from `tsan_visible_actor` instead of `caf::event_based_actor` restores
/// those edges around it, using the actor's address as the synchronization object:
/// - `launch` (the spawning thread, after the constructor) and `enqueue` (the sender's
///   thread, before the message enters the mailbox) release;
/// - `resume` (the worker that runs the actor) acquires first and releases before it returns,
///   so the next worker to resume it, perhaps another one, sees what this one wrote;
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

  void on_destroy() override {
    __tsan_acquire(this);
    Base::on_destroy();
  }
};

#else

using tsan_visible_actor = caf::event_based_actor;

#endif

} // namespace sluice
