#define BOOST_TEST_MODULE log_test
// core/log.hpp under concurrency (issue 23, defect 16): the application sends the log to
// stderr while runtime threads are logging. Built twice (tests/CMakeLists.txt): as is, and
// as log_tsan_test with ThreadSanitizer and spdlog compiled in, where a data race on the
// logger's sinks fails the run. The logger is process-wide and its stderr sink is added
// once, so this binary holds this test alone.
#include <boost/test/unit_test.hpp>

#include "sluice/core/log.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <string>
#include <thread>
#include <utility>
#include <vector>

using namespace sluice;

namespace {

/// Takes this process's stderr (fd 2) while alive: lines of the test's log are kept, any
/// other line (a sanitizer's report) goes on to the real stderr at once, so that it shows
/// even when the process dies of the race.
class stderr_capture {
public:
  stderr_capture() {
    int fds[2];
    BOOST_REQUIRE(::pipe2(fds, O_CLOEXEC) == 0);
    std::fflush(stderr);
    saved_ = ::dup(2);
    BOOST_REQUIRE(saved_ >= 0 && ::dup2(fds[1], 2) == 2);
    ::close(fds[1]);
    reader_ = std::thread{[this, in = fds[0]] {
      std::string pending;
      char buf[4096];
      for (ssize_t n; (n = ::read(in, buf, sizeof buf)) != 0;) {
        if (n < 0) {
          if (errno == EINTR)
            continue;
          break;
        }
        pending.append(buf, static_cast<std::size_t>(n));
        for (auto eol = pending.find('\n'); eol != std::string::npos; eol = pending.find('\n')) {
          take(pending.substr(0, eol + 1));
          pending.erase(0, eol + 1);
        }
      }
      if (!pending.empty())
        take(pending);
      ::close(in);
    }};
  }
  /// Gives stderr back and returns the log lines seen.
  std::vector<std::string> finish() {
    std::fflush(stderr);
    ::dup2(saved_, 2); // the pipe's last writer is gone: the reader sees its end
    reader_.join();
    ::close(saved_);
    saved_ = -1;
    return std::move(lines_);
  }
  ~stderr_capture() {
    if (saved_ >= 0)
      static_cast<void>(finish());
  }
  stderr_capture(const stderr_capture&) = delete;
  stderr_capture& operator=(const stderr_capture&) = delete;

private:
  void take(const std::string& line) {
    if (line.find("[sluice] logger ") != std::string::npos)
      lines_.push_back(line);
    else
      static_cast<void>(::write(saved_, line.data(), line.size()));
  }

  int saved_ = -1;
  std::thread reader_;
  std::vector<std::string> lines_;
};

} // namespace

BOOST_AUTO_TEST_SUITE(log_sinks)

BOOST_AUTO_TEST_CASE(to_stderr_while_other_threads_log) {
  constexpr int loggers = 4;
  // Bounds each logger's wait for to_stderr; reached only when the test is broken.
  constexpr long long max_messages_before = 50'000'000;
  constexpr int messages_after = 100;
  std::atomic<int> logging_now{0};
  std::atomic<bool> configured{false};
  result<void> done;
  stderr_capture capture;
  std::vector<std::thread> threads;
  for (int t = 0; t < loggers; ++t)
    threads.emplace_back([&, t] {
      ++logging_now;
      // `error` passes the logger's level before and after to_stderr("warn") below: every
      // call goes through the logger's sinks.
      for (long long i = 0; i < max_messages_before && !configured.load(); ++i)
        logging::get().error("logger {} before, message {}", t, i);
      for (int i = 0; i < messages_after; ++i)
        logging::get().error("logger {} after, message {}", t, i);
    });
  // The loggers are all running when the sink is added.
  while (logging_now.load() < loggers)
    std::this_thread::yield();
  done = logging::to_stderr("warn");
  configured = true;
  for (auto& th : threads)
    th.join();
  const auto lines = capture.finish();
  BOOST_REQUIRE_MESSAGE(done.has_value(), done.error().to_string());

  // Every message logged after to_stderr returned reached stderr, once.
  std::vector<std::vector<int>> seen(loggers, std::vector<int>(messages_after, 0));
  for (auto& line : lines) {
    int t = -1, i = -1;
    if (std::sscanf(line.c_str() + line.find("[sluice] logger "), "[sluice] logger %d after, message %d", &t,
                    &i) == 2 &&
        t >= 0 && t < loggers && i >= 0 && i < messages_after)
      ++seen[static_cast<std::size_t>(t)][static_cast<std::size_t>(i)];
  }
  for (int t = 0; t < loggers; ++t)
    for (int i = 0; i < messages_after; ++i)
      BOOST_TEST(seen[static_cast<std::size_t>(t)][static_cast<std::size_t>(i)] == 1,
                 "logger " << t << " message " << i << " after to_stderr");
  // Quiet again for whatever runs next in this process.
  BOOST_TEST(logging::to_stderr("off").has_value());
}

BOOST_AUTO_TEST_SUITE_END()
