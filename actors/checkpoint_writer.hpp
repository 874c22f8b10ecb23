#pragma once
/// Writes snapshots to the checkpoint store off the tasks' threads, so that a task pauses
/// only to copy its state into bytes (the synchronous part of an asynchronous barrier
/// snapshot) and goes on processing while LevelDB writes. Private to actors/.
#include "sluice/checkpoint/store.hpp"

#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>

namespace sluice {

class checkpoint_writer {
public:
  checkpoint_writer() : thread_([this] { loop(); }) {}
  ~checkpoint_writer() {
    {
      std::lock_guard guard{mtx_};
      stop_ = true;
    }
    cv_.notify_one();
    thread_.join();
  }
  checkpoint_writer(const checkpoint_writer&) = delete;
  checkpoint_writer& operator=(const checkpoint_writer&) = delete;

  /// Runs `job` on the writer thread, after the jobs submitted before it.
  void submit(std::function<void()> job) {
    {
      std::lock_guard guard{mtx_};
      jobs_.push_back(std::move(job));
    }
    cv_.notify_one();
  }

private:
  void loop() {
    for (;;) {
      std::function<void()> job;
      {
        std::unique_lock lock{mtx_};
        cv_.wait(lock, [this] { return stop_ || !jobs_.empty(); });
        if (jobs_.empty())
          return; // stopping, and everything submitted is written
        job = std::move(jobs_.front());
        jobs_.pop_front();
      }
      job();
    }
  }

  std::mutex mtx_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> jobs_;
  bool stop_ = false;
  std::thread thread_;
};

} // namespace sluice
