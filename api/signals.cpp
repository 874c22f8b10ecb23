#include "sluice/api/signals.hpp"

#include <csignal>
#include <ctime>

namespace sluice {

result<job_result> run_until_stopped(
  job& j, std::optional<std::chrono::nanoseconds> duration,
  std::function<result<std::shared_ptr<void>>(job_execution&)> attach) {
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  sigset_t previous;
  pthread_sigmask(SIG_BLOCK, &stop_signals, &previous);
  auto running = j.start();
  if (!running) {
    pthread_sigmask(SIG_SETMASK, &previous, nullptr);
    return std::move(running).error();
  }
  auto& exec = **running;
  std::shared_ptr<void> attached;
  if (attach) {
    auto a = attach(exec);
    if (!a) {
      exec.cancel();
      permit_unchecked(exec.wait());
      running->reset();
      pthread_sigmask(SIG_SETMASK, &previous, nullptr);
      return std::move(a).error();
    }
    attached = std::move(*a);
  }
  const auto deadline =
    duration ? std::optional{std::chrono::steady_clock::now() + *duration} : std::nullopt;
  bool stopping = false;
  while (!exec.wait_for(std::chrono::nanoseconds{0})) {
    // Wake at least every 50 ms to notice the job's own end or the deadline.
    timespec tick{0, 50'000'000};
    const bool signalled = sigtimedwait(&stop_signals, nullptr, &tick) > 0;
    const bool expired = deadline && std::chrono::steady_clock::now() >= *deadline;
    if (!stopping && (signalled || expired)) {
      stopping = true;
      exec.cancel();
    }
  }
  auto outcome = exec.wait();
  attached.reset();
  running->reset();
  pthread_sigmask(SIG_SETMASK, &previous, nullptr);
  return outcome;
}

} // namespace sluice
