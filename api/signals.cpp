#include "api/signals.hpp"

#include <csignal>
#include <ctime>

namespace sluice {

result<job_result> run_until_stopped(job& j, std::optional<std::chrono::nanoseconds> duration) {
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
  running->reset();
  pthread_sigmask(SIG_SETMASK, &previous, nullptr);
  return outcome;
}

} // namespace sluice
